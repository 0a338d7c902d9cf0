//! Extensions a leaf template adds as they are, and step-ca's provisioner extension, which
//! step-ca writes into every certificate it issues and reads back to authorize renewals.

use x509_cert::der::asn1::{AnyRef, OctetStringRef, PrintableStringRef, Utf8StringRef};
use x509_cert::der::{Decode, Encode, Header, Length, Reader as _, SliceReader, Tag};

use crate::Error;

/// An X.509 extension added to a certificate as given (RFC 5280 §4.1: `extnID`,
/// `critical`, `extnValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomExtension {
    /// The extension's OID, dotted (`1.3.6.1.4.1.37476.9000.64.1`).
    pub oid: String,
    /// Whether it is critical.
    pub critical: bool,
    /// The DER inside `extnValue`.
    pub value: Vec<u8>,
}

/// step-ca's provisioner extension (OID `1.3.6.1.4.1.37476.9000.64.1`, not critical):
/// which provisioner authorized the certificate. Its DER is Go's `encoding/asn1` of
/// `SEQUENCE { type INTEGER, name OCTET STRING, credentialID OCTET STRING,
/// keyValuePairs SEQUENCE OF string OPTIONAL }` (each string a PrintableString when its
/// characters allow, else a UTF8String, as Go writes them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProvisionerExtension {
    /// The provisioner type's number in step-ca (`JWK` 1, `OIDC` 2, `GCP` 3, `AWS` 4,
    /// `Azure` 5, `ACME` 6, `X5C` 7, `K8sSA` 8, `SSHPOP` 9, `SCEP` 10, `Nebula` 11).
    pub type_code: i64,
    /// The provisioner's name.
    pub name: String,
    /// The credential the request was authorized with (a JWK provisioner's key ID …).
    pub credential_id: String,
    /// Further key/value strings (empty: left out).
    pub key_value_pairs: Vec<String>,
}

impl ProvisionerExtension {
    /// The extension's OID, under smallstep's private enterprise number.
    pub const OID: &'static str = "1.3.6.1.4.1.37476.9000.64.1";

    /// The DER of the extension value.
    pub fn to_der(&self) -> Result<Vec<u8>, Error> {
        let bad = |e: x509_cert::der::Error| Error::template(format!("provisioner extension: {e}"));
        let mut body = Vec::new();
        self.type_code.encode_to_vec(&mut body).map_err(bad)?;
        OctetStringRef::new(self.name.as_bytes())
            .map_err(bad)?
            .encode_to_vec(&mut body)
            .map_err(bad)?;
        OctetStringRef::new(self.credential_id.as_bytes())
            .map_err(bad)?
            .encode_to_vec(&mut body)
            .map_err(bad)?;
        if !self.key_value_pairs.is_empty() {
            let mut pairs = Vec::new();
            for pair in &self.key_value_pairs {
                if pair.bytes().all(go_printable) {
                    PrintableStringRef::new(pair).map_err(bad)?.encode_to_vec(&mut pairs)
                } else {
                    Utf8StringRef::new(pair).map_err(bad)?.encode_to_vec(&mut pairs)
                }
                .map_err(bad)?;
            }
            sequence(&mut body, &pairs).map_err(bad)?;
        }
        let mut out = Vec::with_capacity(body.len() + 4);
        sequence(&mut out, &body).map_err(bad)?;
        Ok(out)
    }

    /// The extension, not critical, to put in a [`LeafTemplate`](crate::LeafTemplate).
    pub fn to_extension(&self) -> Result<CustomExtension, Error> {
        Ok(CustomExtension { oid: Self::OID.to_owned(), critical: false, value: self.to_der()? })
    }

    /// Reads the extension's value (DER).
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let bad =
            |e: x509_cert::der::Error| Error::Certificate(format!("provisioner extension: {e}"));
        let mut reader = SliceReader::new(der).map_err(bad)?;
        let extension = reader
            .sequence(|seq| {
                let type_code = i64::decode(seq)?;
                let name = OctetStringRef::decode(seq)?.as_bytes().to_vec();
                let credential_id = OctetStringRef::decode(seq)?.as_bytes().to_vec();
                let mut pairs = Vec::new();
                if !seq.is_finished() {
                    seq.sequence(|list| {
                        while !list.is_finished() {
                            pairs.push(AnyRef::decode(list)?.value().to_vec());
                        }
                        Ok(())
                    })?;
                }
                Ok((type_code, name, credential_id, pairs))
            })
            .map_err(bad)?;
        reader.finish(()).map_err(bad)?;
        let (type_code, name, credential_id, pairs) = extension;
        let text = |bytes: Vec<u8>| {
            String::from_utf8(bytes)
                .map_err(|_| Error::Certificate("provisioner extension: not UTF-8".into()))
        };
        Ok(Self {
            type_code,
            name: text(name)?,
            credential_id: text(credential_id)?,
            key_value_pairs: pairs.into_iter().map(text).collect::<Result<_, _>>()?,
        })
    }

    /// The provisioner extension of a DER certificate, if it has one.
    pub fn from_certificate(certificate_der: &[u8]) -> Result<Option<Self>, Error> {
        let certificate = keystation_x509::Certificate::from_der(certificate_der)?;
        certificate.extension(Self::OID).map(Self::from_der).transpose()
    }
}

/// Go's `isPrintable` for PrintableString, without `*` and `&`.
fn go_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b)
}

/// Appends a DER SEQUENCE holding `contents`.
fn sequence(out: &mut Vec<u8>, contents: &[u8]) -> Result<(), x509_cert::der::Error> {
    Header::new(Tag::Sequence, Length::try_from(contents.len())?)?.encode_to_vec(out)?;
    out.extend_from_slice(contents);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn encodes_as_go_does_and_reads_back() {
        let extension = ProvisionerExtension {
            type_code: 1,
            name: "admin".into(),
            credential_id: "kid".into(),
            key_value_pairs: Vec::new(),
        };
        let der = extension.to_der().unwrap();
        assert_eq!(
            der,
            [
                0x30, 0x0F, 0x02, 0x01, 0x01, 0x04, 0x05, b'a', b'd', b'm', b'i', b'n', 0x04, 0x03,
                b'k', b'i', b'd'
            ]
        );
        assert_eq!(ProvisionerExtension::from_der(&der).unwrap(), extension);
        let with_pairs = ProvisionerExtension {
            type_code: 7,
            key_value_pairs: vec!["a b".into(), "é*".into()],
            ..extension
        };
        let der = with_pairs.to_der().unwrap();
        // PrintableString (0x13) for "a b", UTF8String (0x0C) for "é*".
        assert!(der.windows(5).any(|w| w == [0x13, 0x03, b'a', b' ', b'b']));
        assert!(der.windows(2).any(|w| w == [0x0C, 0x03]));
        assert_eq!(ProvisionerExtension::from_der(&der).unwrap(), with_pairs);
        assert!(ProvisionerExtension::from_der(&der[..der.len() - 1]).is_err());
        assert!(ProvisionerExtension::from_der(&[0x30, 0x00]).is_err());
    }
}
