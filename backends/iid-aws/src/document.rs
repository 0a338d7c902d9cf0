//! The instance identity document: the JSON object the metadata service serves at
//! `/latest/dynamic/instance-identity/document`
//! (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-identity-documents.html>):
//! `accountId`, `architecture`, `availabilityZone`, `billingProducts`,
//! `devpayProductCodes`, `marketplaceProductCodes`, `imageId`, `instanceId`,
//! `instanceType`, `kernelId`, `pendingTime`, `privateIp`, `ramdiskId`, `region`,
//! `version`. Only what the provisioner checks is read; other fields are ignored, so that
//! fields AWS adds do not break verification.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::Deserialize;

/// The fields of an identity document the provisioner uses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdentityDocument {
    /// `accountId`: the AWS account the instance runs in.
    pub account_id: String,
    /// `instanceId` (`i-…`).
    pub instance_id: String,
    /// `privateIp`: the instance's primary private address.
    pub private_ip: IpAddr,
    /// `region` (`us-east-1`).
    pub region: String,
    /// `pendingTime`: when the instance was (last) started, Unix seconds; `None` when the
    /// document has none or it is not an RFC 3339 time.
    pub pending_time: Option<i64>,
}

/// The fields read, borrowed from the document where JSON has no escapes.
#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(rename = "accountId", default, borrow)]
    account_id: Option<Cow<'a, str>>,
    #[serde(rename = "instanceId", default, borrow)]
    instance_id: Option<Cow<'a, str>>,
    #[serde(rename = "privateIp", default, borrow)]
    private_ip: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    region: Option<Cow<'a, str>>,
    #[serde(rename = "pendingTime", default, borrow)]
    pending_time: Option<Cow<'a, str>>,
}

impl IdentityDocument {
    /// Parses a document: `accountId`, `instanceId`, `privateIp` and `region` must be
    /// present and not empty (as step-ca requires); beyond step-ca, `privateIp` must be an
    /// IP address, the region a DNS label of lowercase letters, digits and dashes, and
    /// the instance ID printable ASCII without spaces (it names a trust-on-first-use
    /// record and goes into a certificate extension).
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let raw: Raw<'_> =
            serde_json::from_slice(json).map_err(|e| format!("not a JSON document: {e}"))?;
        fn field<'a>(name: &str, value: Option<Cow<'a, str>>) -> Result<Cow<'a, str>, String> {
            value.filter(|v| !v.is_empty()).ok_or_else(|| format!("the document has no {name}"))
        }
        let account_id = field("accountId", raw.account_id)?;
        let instance_id = field("instanceId", raw.instance_id)?;
        let private_ip = field("privateIp", raw.private_ip)?;
        let region = field("region", raw.region)?;
        let private_ip: IpAddr = private_ip
            .parse()
            .map_err(|_| format!("privateIp {private_ip:?} is not an IP address"))?;
        if region.len() > 63
            || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!("region {region:?} is not a region name"));
        }
        if instance_id.len() > 128 || !instance_id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("instanceId {instance_id:?} is not an instance ID"));
        }
        let pending_time = raw
            .pending_time
            .as_deref()
            .and_then(|t| keystation_jose::step_time::parse_rfc3339(t).ok());
        Ok(Self {
            account_id: account_id.into_owned(),
            instance_id: instance_id.into_owned(),
            private_ip,
            region: region.into_owned(),
            pending_time,
        })
    }

    /// The instance's private DNS name as EC2 gives it, `ip-a-b-c-d.<region>.compute.internal`
    /// (the form step-ca allows under `disableCustomSANs`).
    pub fn private_dns_name(&self) -> String {
        let address = match self.private_ip {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                format!("{a}-{b}-{c}-{d}")
            }
            IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
        };
        format!("ip-{address}.{}.compute.internal", self.region)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// AWS's example document (instance-identity-documents.html), fields in its order.
    const EXAMPLE: &str = r#"{
    "accountId" : "123456789012",
    "architecture" : "x86_64",
    "availabilityZone" : "us-east-1a",
    "billingProducts" : null,
    "devpayProductCodes" : null,
    "marketplaceProductCodes" : null,
    "imageId" : "ami-0b69ea66ff7391e80",
    "instanceId" : "i-1234567890abcdef0",
    "instanceType" : "t2.micro",
    "kernelId" : null,
    "pendingTime" : "2022-11-19T16:32:11Z",
    "privateIp" : "10.158.112.84",
    "ramdiskId" : null,
    "region" : "us-east-1",
    "version" : "2017-09-30"
}"#;

    #[test]
    fn parses_aws_example() {
        let d = IdentityDocument::parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(d.account_id, "123456789012");
        assert_eq!(d.instance_id, "i-1234567890abcdef0");
        assert_eq!(d.pending_time, Some(1_668_875_531));
        assert_eq!(d.private_dns_name(), "ip-10-158-112-84.us-east-1.compute.internal");
        for (field, bad) in [
            ("\"accountId\" : \"123456789012\"", "\"accountId\" : \"\""),
            ("\"privateIp\" : \"10.158.112.84\"", "\"privateIp\" : \"10.158.112\""),
            ("\"region\" : \"us-east-1\"", "\"region\" : \"us-east-1.evil.com\""),
            ("\"instanceId\" : \"i-1234567890abcdef0\"", "\"instanceId\" : \"i-1 2\""),
        ] {
            let doc = EXAMPLE.replace(field, bad);
            assert!(IdentityDocument::parse(doc.as_bytes()).is_err(), "{bad}");
        }
    }
}
