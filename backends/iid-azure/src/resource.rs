//! Azure resource IDs as managed-identity tokens carry them (`xms_mirid`, `xms_az_rid`),
//! parsed by splitting on `/` — exactly one of the two shapes below, nothing else:
//!
//! ```text
//! /subscriptions/<sub>/resourceGroups/<group>/providers/Microsoft.Compute/virtualMachines/<vm>
//! /subscriptions/<sub>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<identity>
//! ```
//!
//! The fixed words are compared case-insensitively (Azure writes `resourcegroups` as well as
//! `resourceGroups`); the segment count is exact (no trailing slash, no empty segment). step-ca
//! matches a regular expression whose `Microsoft.` has an unescaped dot, so it also takes
//! `Microsoft_Compute` or `MicrosoftXCompute`; this parser does not. The values are checked
//! against Azure's naming rules, narrowed where they end up in certificates:
//!
//! * the subscription is a GUID;
//! * the resource group has 1–90 characters, none of them a control character, a space or
//!   `/` (Azure also allows Unicode letters and parentheses, which are kept);
//! * a VM or identity name has 1–128 characters of `A–Z a–z 0–9 - _ .` — Azure's VM names
//!   are narrower still, and the name becomes the certificate's common name and DNS name.

/// What a resource ID names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `Microsoft.Compute/virtualMachines`: a VM (its system-assigned identity).
    VirtualMachine,
    /// `Microsoft.ManagedIdentity/userAssignedIdentities`: a user-assigned identity.
    UserAssignedIdentity,
}

/// A parsed resource ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceId {
    /// The subscription (a GUID, as written).
    pub subscription: String,
    /// The resource group, as written.
    pub resource_group: String,
    /// The kind of resource.
    pub kind: ResourceKind,
    /// The VM's or identity's name.
    pub name: String,
}

impl ResourceId {
    /// The ID in canonical form, lower case (Azure resource IDs are case-insensitive): what
    /// trust on first use records.
    pub fn canonical(&self) -> String {
        let provider = match self.kind {
            ResourceKind::VirtualMachine => "microsoft.compute/virtualmachines",
            ResourceKind::UserAssignedIdentity => {
                "microsoft.managedidentity/userassignedidentities"
            }
        };
        format!(
            "/subscriptions/{}/resourcegroups/{}/providers/{provider}/{}",
            self.subscription, self.resource_group, self.name
        )
        .to_lowercase()
    }
}

fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_group(s: &str) -> bool {
    (1..=90).contains(&s.chars().count())
        && !s.chars().any(|c| c.is_control() || c.is_whitespace() || c == '/')
}

fn is_name(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Parses `text` as one of the two resource ID shapes; `None` for anything else.
pub fn parse_resource_id(text: &str) -> Option<ResourceId> {
    let segments: Vec<&str> = text.split('/').collect();
    let [empty, subscriptions, subscription, groups, group, providers, namespace, kind, name] =
        segments.as_slice()
    else {
        return None;
    };
    let word = |s: &str, w: &str| s.eq_ignore_ascii_case(w);
    if !empty.is_empty()
        || !word(subscriptions, "subscriptions")
        || !word(groups, "resourceGroups")
        || !word(providers, "providers")
    {
        return None;
    }
    let kind = if word(namespace, "Microsoft.Compute") && word(kind, "virtualMachines") {
        ResourceKind::VirtualMachine
    } else if word(namespace, "Microsoft.ManagedIdentity") && word(kind, "userAssignedIdentities") {
        ResourceKind::UserAssignedIdentity
    } else {
        return None;
    };
    if !is_guid(subscription) || !is_group(group) || !is_name(name) {
        return None;
    }
    Some(ResourceId {
        subscription: (*subscription).to_owned(),
        resource_group: (*group).to_owned(),
        kind,
        name: (*name).to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "0b1f6471-1bf0-4dda-aec3-cb9272f09590";

    #[test]
    fn the_two_shapes_parse_case_insensitively() {
        let vm = format!(
            "/subscriptions/{SUB}/resourcegroups/Prod-RG/providers/Microsoft.Compute/virtualMachines/web-1"
        );
        let id = parse_resource_id(&vm);
        assert_eq!(
            id,
            Some(ResourceId {
                subscription: SUB.into(),
                resource_group: "Prod-RG".into(),
                kind: ResourceKind::VirtualMachine,
                name: "web-1".into()
            })
        );
        assert_eq!(id.map(|i| i.canonical()), Some(vm.to_lowercase()));
        let uai = format!(
            "/SUBSCRIPTIONS/{SUB}/resourceGroups/rg/PROVIDERS/microsoft.managedidentity/USERASSIGNEDIDENTITIES/id_1"
        );
        assert_eq!(
            parse_resource_id(&uai).map(|i| i.kind),
            Some(ResourceKind::UserAssignedIdentity)
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let ok = format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
        );
        assert!(parse_resource_id(&ok).is_some());
        for bad in [
            ok.replace("Microsoft.Compute", "Microsoft_Compute"),
            ok.replace("Microsoft.Compute", "MicrosoftXCompute"),
            ok.replace("virtualMachines", "virtualMachineScaleSets"),
            ok.replace(
                "Microsoft.Compute/virtualMachines",
                "Microsoft.ManagedIdentity/virtualMachines",
            ),
            format!("{ok}/"),
            format!("/{ok}"),
            format!("x{ok}"),
            ok.trim_start_matches('/').to_owned(),
            ok.replace("/vm", "/"),
            ok.replace("/rg/", "//"),
            ok.replace("/rg/", "/r g/"),
            ok.replace("/vm", "/v m"),
            ok.replace("/vm", "/vm\n"),
            ok.replace("/vm", "/vm@evil"),
            ok.replace(SUB, "not-a-guid"),
            ok.replace(SUB, ""),
            ok.replace("resourceGroups", "resourceGroup"),
            ok.replace("subscriptions", "subscription"),
            format!("{ok}/extensions/x"),
            format!(
                "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/ss/virtualMachines/0"
            ),
            String::new(),
            "/".into(),
        ] {
            assert_eq!(parse_resource_id(&bad), None, "{bad:?}");
        }
    }
}
