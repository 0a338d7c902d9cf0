//! Distinguished names for building certificates and requests (RFC 5280 §4.1.2.4), read
//! from and shown as RFC 4514 strings.

use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::der::asn1::{Any, ObjectIdentifier, SetOfVec};
use x509_cert::der::{Encode, Tag};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::{Error, Result};

/// The attribute types a [`DistinguishedName`] can hold, with their RFC 4514 §3 /
/// RFC 4519 short names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameAttribute {
    /// `CN`, commonName (2.5.4.3).
    CommonName,
    /// `O`, organizationName (2.5.4.10); Kubernetes reads groups from it.
    Organization,
    /// `OU`, organizationalUnitName (2.5.4.11).
    OrganizationalUnit,
    /// `C`, countryName (2.5.4.6): two letters, ISO 3166.
    Country,
    /// `L`, localityName (2.5.4.7).
    Locality,
    /// `ST`, stateOrProvinceName (2.5.4.8).
    StateOrProvince,
    /// `STREET`, streetAddress (2.5.4.9).
    Street,
    /// `serialNumber` (2.5.4.5).
    SerialNumber,
    /// `DC`, domainComponent (0.9.2342.19200300.100.1.25, RFC 4519 §2.4).
    DomainComponent,
    /// `UID`, userId (0.9.2342.19200300.100.1.1).
    UserId,
    /// `emailAddress` (1.2.840.113549.1.9.1, PKCS#9; deprecated by RFC 5280 §4.1.2.6 in
    /// favour of the subject alternative name, still common).
    EmailAddress,
}

impl NameAttribute {
    const ALL: [Self; 11] = [
        Self::CommonName,
        Self::Organization,
        Self::OrganizationalUnit,
        Self::Country,
        Self::Locality,
        Self::StateOrProvince,
        Self::Street,
        Self::SerialNumber,
        Self::DomainComponent,
        Self::UserId,
        Self::EmailAddress,
    ];

    /// The short name used in RFC 4514 strings.
    pub const fn short_name(self) -> &'static str {
        match self {
            Self::CommonName => "CN",
            Self::Organization => "O",
            Self::OrganizationalUnit => "OU",
            Self::Country => "C",
            Self::Locality => "L",
            Self::StateOrProvince => "ST",
            Self::Street => "STREET",
            Self::SerialNumber => "serialNumber",
            Self::DomainComponent => "DC",
            Self::UserId => "UID",
            Self::EmailAddress => "emailAddress",
        }
    }

    /// The attribute type's OID in dotted form.
    pub const fn oid(self) -> &'static str {
        match self {
            Self::CommonName => "2.5.4.3",
            Self::Organization => "2.5.4.10",
            Self::OrganizationalUnit => "2.5.4.11",
            Self::Country => "2.5.4.6",
            Self::Locality => "2.5.4.7",
            Self::StateOrProvince => "2.5.4.8",
            Self::Street => "2.5.4.9",
            Self::SerialNumber => "2.5.4.5",
            Self::DomainComponent => "0.9.2342.19200300.100.1.25",
            Self::UserId => "0.9.2342.19200300.100.1.1",
            Self::EmailAddress => "1.2.840.113549.1.9.1",
        }
    }

    /// The attribute with this short name (case-insensitive; `E`, `email`, `S` and `SN`
    /// are not accepted because tools disagree on them).
    pub fn from_short_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.short_name().eq_ignore_ascii_case(name))
    }

    /// The string type used in DER: PrintableString for country and serial number,
    /// IA5String for e-mail and domain components (their ASN.1 definitions), UTF8String
    /// otherwise (RFC 5280 §4.1.2.6 asks for UTF8String in new certificates).
    fn tag(self) -> Tag {
        match self {
            Self::Country | Self::SerialNumber => Tag::PrintableString,
            Self::EmailAddress | Self::DomainComponent => Tag::Ia5String,
            _ => Tag::Utf8String,
        }
    }
}

/// An X.501 name as an ordered list of single-valued attributes, most significant
/// (e.g. `C`, `O`) first as in DER. RFC 4514 strings list them the other way round:
/// `CN=alice,O=team` is the DER sequence `O=team`, `CN=alice`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DistinguishedName {
    attributes: Vec<(NameAttribute, String)>,
}

impl DistinguishedName {
    /// An empty name (allowed as a certificate subject when a subject alternative name
    /// carries the identity, RFC 5280 §4.1.2.6).
    pub fn new() -> Self {
        Self::default()
    }

    /// A name with a single common name.
    pub fn common_name(cn: &str) -> Self {
        Self { attributes: vec![(NameAttribute::CommonName, cn.to_owned())] }
    }

    /// Appends an attribute as the least significant (it will be first in the RFC 4514
    /// string).
    pub fn push(&mut self, attribute: NameAttribute, value: &str) -> &mut Self {
        self.attributes.push((attribute, value.to_owned()));
        self
    }

    /// The attributes in DER order, most significant first.
    pub fn attributes(&self) -> &[(NameAttribute, String)] {
        &self.attributes
    }

    /// Parses an RFC 4514 string such as `CN=system:admin,O=system:masters`. Attribute
    /// names are matched case-insensitively; values may use RFC 4514 §2.4 escapes (`\,`,
    /// `\+`, `\\`, `\2C` …). Multi-valued RDNs (`+`) and `#`-hex values are refused.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::InvalidName(format!("{why} in {text:?}"));
        let mut attributes = Vec::new();
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        for part in split_unescaped(text, b',').map_err(&bad)? {
            let (key, value) = part.split_once('=').ok_or_else(|| bad("missing '='"))?;
            let key = key.trim();
            let attribute = NameAttribute::from_short_name(key)
                .ok_or_else(|| bad(&format!("unknown attribute type {key:?}")))?;
            if value.starts_with('#') {
                return Err(bad("hex-encoded values are not supported"));
            }
            let value = unescape(value).map_err(&bad)?;
            attributes.push((attribute, value));
        }
        attributes.reverse();
        let name = Self { attributes };
        name.to_der()?;
        Ok(name)
    }

    /// The DER encoding (`Name`, RFC 5280 §4.1.2.4).
    pub fn to_der(&self) -> Result<Vec<u8>> {
        self.to_x509()?.to_der().map_err(|e| Error::InvalidName(e.to_string()))
    }

    pub(crate) fn to_x509(&self) -> Result<Name> {
        let mut rdns = Vec::with_capacity(self.attributes.len());
        for (attribute, value) in &self.attributes {
            check_value(*attribute, value)?;
            let oid = ObjectIdentifier::new(attribute.oid())
                .map_err(|e| Error::InvalidName(e.to_string()))?;
            let invalid = |e: x509_cert::der::Error| {
                Error::InvalidName(format!("{}: {e}", attribute.short_name()))
            };
            let value = Any::new(attribute.tag(), value.as_bytes()).map_err(invalid)?;
            let mut set = SetOfVec::new();
            set.insert(AttributeTypeAndValue { oid, value }).map_err(invalid)?;
            rdns.push(RelativeDistinguishedName(set));
        }
        Ok(RdnSequence(rdns))
    }
}

fn check_value(attribute: NameAttribute, value: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::InvalidName(format!("{}: {why}", attribute.short_name())));
    if value.is_empty() {
        return bad("empty value");
    }
    match attribute.tag() {
        // X.680 §41.4 PrintableString characters.
        Tag::PrintableString
            if !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b)) =>
        {
            bad("not a PrintableString")
        }
        Tag::Ia5String if !value.is_ascii() => bad("not ASCII"),
        _ if attribute == NameAttribute::Country && value.len() != 2 => {
            bad("a country is two letters")
        }
        _ => Ok(()),
    }
}

impl core::fmt::Display for DistinguishedName {
    /// The RFC 4514 string: least significant attribute first, special characters
    /// escaped (§2.4).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, (attribute, value)) in self.attributes.iter().rev().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}=", attribute.short_name())?;
            let last = value.chars().count().saturating_sub(1);
            for (j, c) in value.chars().enumerate() {
                match c {
                    '"' | '+' | ',' | ';' | '<' | '>' | '\\' => write!(f, "\\{c}")?,
                    '#' if j == 0 => f.write_str("\\#")?,
                    ' ' if j == 0 || j == last => f.write_str("\\ ")?,
                    '\0'..='\x1f' | '\x7f' => write!(f, "\\{:02X}", c as u8)?,
                    _ => write!(f, "{c}")?,
                }
            }
        }
        Ok(())
    }
}

/// Splits at `sep` where it is not escaped by a backslash.
fn split_unescaped(text: &str, sep: u8) -> core::result::Result<Vec<&str>, &'static str> {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'+' => return Err("multi-valued RDN ('+')"),
            b if b == sep => {
                parts.push(text.get(start..i).ok_or("bad UTF-8 boundary")?);
                start = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    parts.push(text.get(start..).ok_or("bad UTF-8 boundary")?);
    Ok(parts)
}

/// Undoes RFC 4514 §2.4 escaping; hex pairs must form UTF-8.
fn unescape(value: &str) -> core::result::Result<String, &'static str> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let next = *bytes.get(i + 1).ok_or("dangling '\\'")?;
        let hex = |c: u8| char::from(c).to_digit(16);
        if let (Some(h), Some(l)) = (hex(next), bytes.get(i + 2).and_then(|&c| hex(c))) {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else if b" \"#+,;<=>\\".contains(&next) {
            out.push(next);
            i += 2;
        } else {
            return Err("invalid escape");
        }
    }
    String::from_utf8(out).map_err(|_| "escaped bytes are not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_orders_and_displays() {
        let name = DistinguishedName::parse("CN=system:admin,O=system:masters,O=dev");
        let Ok(name) = name else { panic!("{name:?}") };
        assert_eq!(name.attributes()[0], (NameAttribute::Organization, "dev".to_owned()));
        assert_eq!(name.attributes()[2], (NameAttribute::CommonName, "system:admin".to_owned()));
        assert_eq!(name.to_string(), "CN=system:admin,O=system:masters,O=dev");
        let escaped = DistinguishedName::parse(r"cn=Smith\, John,emailAddress=j@x.org,c=DE");
        let Ok(escaped) = escaped else { panic!("{escaped:?}") };
        assert_eq!(escaped.attributes()[2].1, "Smith, John");
        assert_eq!(escaped.to_string(), r"CN=Smith\, John,emailAddress=j@x.org,C=DE");
        let hex = DistinguishedName::parse(r"CN=caf\C3\A9").map(|n| n.attributes()[0].1.clone());
        assert_eq!(hex.ok().as_deref(), Some("café"));
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["CN", "XX=1", "CN=a+O=b", "C=DEU", "CN=", r"CN=a\", "CN=#0101", "C=D\u{e9}"] {
            assert!(DistinguishedName::parse(bad).is_err(), "{bad}");
        }
    }
}
