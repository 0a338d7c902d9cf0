//! Compact JWS (RFC 7515 §7.1): parsing with a size cap, verification with the algorithm of
//! the key, and signing.
//!
//! The parser is total: any input gives a value or an [`Error`], never a panic. Only the
//! JWS Compact Serialization is accepted (three base64url parts); the JSON serializations
//! and unencoded payloads (RFC 7797) are not.

use keystation_core::key::PublicKey;
use serde::{Deserialize, Serialize};

use crate::alg::Algorithm;
use crate::b64;
use crate::claims::Claims;
use crate::error::{Error, Result};
use crate::json;
use crate::jwk::{Jwk, PrivateJwk, Verifier, verify_signature};

/// The longest compact JWS accepted, in bytes. An `x5c` chain of three RSA-4096
/// certificates fits with room to spare.
pub const MAX_COMPACT_LEN: usize = 64 * 1024;

/// The JOSE header of a JWS: the registered parameters keystation uses (RFC 7515 §4.1) and
/// step's `x5cInsecure` and `sshpop`.
///
/// For signing, `alg` may be left empty: [`sign_compact`] sets it from the key (and refuses
/// a different one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Header {
    /// `alg`, as the token names it (checked against the key when verifying).
    pub alg: String,
    /// `kid`: the key ID.
    pub kid: Option<String>,
    /// `typ` (`JWT`).
    pub typ: Option<String>,
    /// `cty`: the payload's content type.
    pub cty: Option<String>,
    /// `x5c`: DER certificates, the signer's first (RFC 7515 §4.1.6).
    pub x5c: Option<Vec<Vec<u8>>>,
    /// `x5cInsecure`: step's chain for renewing an expired certificate; same encoding as
    /// `x5c`.
    pub x5c_insecure: Option<Vec<Vec<u8>>>,
    /// `sshpop`: step's SSH certificate (wire format) whose key signed the token.
    pub sshpop: Option<Vec<u8>>,
    /// `jwk`: the signer's public key (RFC 7515 §4.1.3).
    pub jwk: Option<Jwk>,
    /// `nonce` (RFC 8555 §6.5.2).
    pub nonce: Option<String>,
    /// `url` (RFC 8555 §6.4.1).
    pub url: Option<String>,
}

impl Header {
    /// A header with `typ` `JWT` and the given `kid`.
    pub fn jwt(kid: Option<String>) -> Self {
        Self { typ: Some("JWT".into()), kid, ..Self::default() }
    }

    /// The algorithm `alg` names, or the error that refuses it (`none`, HS*, unknown).
    pub fn algorithm(&self) -> Result<Algorithm> {
        Algorithm::from_name(&self.alg)
    }
}

/// The header as JSON; `crit` is read only to be refused.
#[derive(Deserialize, Serialize)]
struct RawHeader {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x5c: Option<Vec<String>>,
    #[serde(default, rename = "x5cInsecure", skip_serializing_if = "Option::is_none")]
    x5c_insecure: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sshpop: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jwk: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing)]
    crit: Option<serde_json::Value>,
}

fn decode_chain(chain: Option<Vec<String>>, what: &'static str) -> Result<Option<Vec<Vec<u8>>>> {
    chain
        .map(|certs| {
            if certs.is_empty() {
                return Err(Error::malformed("JWS header", format!("{what} is empty")));
            }
            certs.iter().map(|c| b64::decode_std(c, what)).collect()
        })
        .transpose()
}

impl RawHeader {
    fn into_header(self) -> Result<Header> {
        if self.crit.is_some() {
            return Err(Error::CriticalHeader);
        }
        Ok(Header {
            alg: self.alg,
            kid: self.kid,
            typ: self.typ,
            cty: self.cty,
            x5c: decode_chain(self.x5c, "x5c certificate")?,
            x5c_insecure: decode_chain(self.x5c_insecure, "x5cInsecure certificate")?,
            sshpop: self.sshpop.map(|s| b64::decode_std(&s, "sshpop certificate")).transpose()?,
            jwk: self.jwk.as_ref().map(Jwk::from_json_value).transpose()?,
            nonce: self.nonce,
            url: self.url,
        })
    }

    fn from_header(header: &Header, alg: Algorithm) -> Self {
        let chain = |c: &Option<Vec<Vec<u8>>>| {
            c.as_ref().map(|certs| certs.iter().map(|d| b64::encode_std(d)).collect())
        };
        Self {
            alg: alg.name().into(),
            kid: header.kid.clone(),
            typ: header.typ.clone(),
            cty: header.cty.clone(),
            x5c: chain(&header.x5c),
            x5c_insecure: chain(&header.x5c_insecure),
            sshpop: header.sshpop.as_deref().map(b64::encode_std),
            jwk: header.jwk.as_ref().map(Jwk::to_json_value),
            nonce: header.nonce.clone(),
            url: header.url.clone(),
            crit: None,
        }
    }
}

/// A parsed compact JWS whose signature has not been checked. Its header and payload may
/// be read to route the token (which key, which provisioner), never to decide anything.
#[derive(Debug, Clone)]
pub struct UnverifiedJws {
    header: Header,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)` (RFC 7515 §5.2 step 8).
    signing_input: String,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// A JWS whose signature verified with the key it was checked against.
#[derive(Debug, Clone)]
pub struct VerifiedJws {
    header: Header,
    algorithm: Algorithm,
    payload: Vec<u8>,
}

/// Parses a compact JWS (RFC 7515 §7.1): three base64url parts (no padding) separated by
/// dots, a JSON object header with a string `alg`, no `crit`. Tokens longer than
/// [`MAX_COMPACT_LEN`] are refused before anything is decoded. Never panics.
pub fn parse_compact(token: &str) -> Result<UnverifiedJws> {
    if token.len() > MAX_COMPACT_LEN {
        return Err(Error::TooLong { what: "compact JWS", len: token.len(), max: MAX_COMPACT_LEN });
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        let n = token.split('.').count();
        return Err(Error::malformed("compact JWS", format!("{n} parts, 3 expected")));
    };
    let header_json = b64::decode(header_b64, "protected header")?;
    let raw: RawHeader = json::object(&header_json, "JWS header")?;
    let header = raw.into_header()?;
    let payload_bytes = b64::decode(payload, "payload")?;
    let signature = b64::decode(signature, "signature")?;
    let signing_input = token.get(..header_b64.len() + 1 + payload.len()).unwrap_or_default();
    Ok(UnverifiedJws {
        header,
        signing_input: signing_input.to_owned(),
        payload: payload_bytes,
        signature,
    })
}

impl UnverifiedJws {
    /// The header (unverified).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The payload bytes, **unverified**: for routing only.
    pub fn unverified_payload(&self) -> &[u8] {
        &self.payload
    }

    /// The payload parsed as JWT claims, **unverified**: for routing only (which
    /// provisioner, by `iss` and `kid`).
    pub fn unverified_claims(&self) -> Result<Claims> {
        Claims::from_json(&self.payload)
    }

    /// The signing input, `BASE64URL(header) '.' BASE64URL(payload)`.
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    /// The signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Verifies the signature with `key`, under the key's algorithm ([`Jwk::algorithm`]).
    ///
    /// The header's `alg` is refused first if it is `none` ([`Error::NoneAlgorithm`]) or
    /// HS* ([`Error::SymmetricAlgorithm`]), and must then equal the key's algorithm
    /// ([`Error::AlgorithmMismatch`]); the header never chooses the algorithm.
    pub fn verify(&self, key: &Jwk) -> Result<VerifiedJws> {
        self.verify_inner(key.verifier(), key.algorithm())
    }

    /// Verifies with a public key from elsewhere (an `x5c` leaf, an `sshpop` certificate)
    /// under `algorithm`, which the caller chooses from the key (see
    /// [`Algorithm::default_for`]); the same refusals as [`verify`](Self::verify) apply,
    /// and an `algorithm` that does not fit the key is [`Error::KeyAlgorithmMismatch`].
    pub fn verify_with(&self, key: &PublicKey, algorithm: Algorithm) -> Result<VerifiedJws> {
        if !algorithm.fits(key.algorithm()) {
            return Err(Error::KeyAlgorithmMismatch {
                alg: algorithm,
                kty: key.algorithm().to_string(),
            });
        }
        let jwk = Jwk::from_public_key(key.clone())?;
        self.verify_inner(jwk.verifier(), algorithm)
    }

    fn verify_inner(&self, verifier: &Verifier, algorithm: Algorithm) -> Result<VerifiedJws> {
        let named = self.header.algorithm()?;
        if named != algorithm {
            return Err(Error::AlgorithmMismatch {
                header: self.header.alg.clone(),
                key: algorithm,
            });
        }
        verify_signature(verifier, algorithm, self.signing_input.as_bytes(), &self.signature)?;
        Ok(VerifiedJws { header: self.header.clone(), algorithm, payload: self.payload.clone() })
    }
}

impl VerifiedJws {
    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The algorithm the signature verified under.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The payload parsed as JWT claims (RFC 7519 §4.1 and step's).
    pub fn claims(&self) -> Result<Claims> {
        Claims::from_json(&self.payload)
    }
}

/// Signs `payload` with `key` into a compact JWS. `header.alg` is set to the key's
/// algorithm (an empty `alg` is filled in; a different one is [`Error::AlgorithmMismatch`]);
/// `kid` defaults to the key's `kid`.
pub fn sign_compact(key: &PrivateJwk, header: &Header, payload: &[u8]) -> Result<String> {
    let alg = key.algorithm();
    if !header.alg.is_empty() && header.alg != alg.name() {
        return Err(Error::AlgorithmMismatch { header: header.alg.clone(), key: alg });
    }
    let mut raw = RawHeader::from_header(header, alg);
    if raw.kid.is_none() {
        raw.kid = key.public().kid().map(str::to_owned);
    }
    let header_json = serde_json::to_vec(&raw).map_err(|_| Error::Signing)?;
    let mut token = b64::encode(&header_json);
    token.push('.');
    token.push_str(&b64::encode(payload));
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&b64::encode(&signature));
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7515 Appendix A.3: ES256 example, with the key of A.3.1.
    const A3_TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
    const A3_KEY: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    /// RFC 7515 Appendix A.2: RS256 example, with the key of A.2.1.
    const A2_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
    const A2_KEY: &str = r#"{"kty":"RSA","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ","e":"AQAB"}"#;

    fn jwk(json: &str) -> Jwk {
        let key = Jwk::from_json(json);
        let Ok(key) = key else { panic!("{key:?}") };
        key
    }

    #[test]
    fn rfc7515_a3_es256_verifies() {
        let jws = parse_compact(A3_TOKEN).map_err(|e| e.to_string());
        let Ok(jws) = jws else { panic!("{jws:?}") };
        let verified = jws.verify(&jwk(A3_KEY)).map_err(|e| e.to_string());
        let Ok(verified) = verified else { panic!("{verified:?}") };
        assert_eq!(verified.algorithm(), Algorithm::Es256);
        let claims = verified.claims().map_err(|e| e.to_string());
        assert_eq!(claims.as_ref().ok().and_then(|c| c.iss.as_deref()), Some("joe"));
        assert_eq!(claims.ok().and_then(|c| c.exp), Some(1_300_819_380));
        // A flipped payload bit fails.
        let tampered = A3_TOKEN.replacen("eyJpc3Mi", "eyJpc3Ni", 1);
        let jws = parse_compact(&tampered).map_err(|e| e.to_string());
        assert!(matches!(jws.map(|j| j.verify(&jwk(A3_KEY))), Ok(Err(Error::BadSignature))));
    }

    #[test]
    fn rfc7515_a2_rs256_verifies_and_ps256_key_refuses_it() {
        let jws = parse_compact(A2_TOKEN).map_err(|e| e.to_string());
        let Ok(jws) = jws else { panic!("{jws:?}") };
        assert!(jws.verify(&jwk(A2_KEY)).is_ok());
        let pss = jwk(A2_KEY).with_alg(Algorithm::Ps256).map_err(|e| e.to_string());
        let Ok(pss) = pss else { panic!("{pss:?}") };
        assert!(matches!(
            jws.verify(&pss),
            Err(Error::AlgorithmMismatch { key: Algorithm::Ps256, .. })
        ));
        // The ES256 key cannot verify the RS256 token either.
        assert!(matches!(jws.verify(&jwk(A3_KEY)), Err(Error::AlgorithmMismatch { .. })));
    }

    #[test]
    fn none_and_hmac_are_refused_with_their_own_errors() {
        let claims = b64::encode(br#"{"iss":"joe"}"#);
        let none = format!("{}.{claims}.", b64::encode(br#"{"alg":"none"}"#));
        let jws = parse_compact(&none).map_err(|e| e.to_string());
        assert!(matches!(jws.map(|j| j.verify(&jwk(A3_KEY))), Ok(Err(Error::NoneAlgorithm))));
        // HS256 keyed with the public key's JSON (the classic key-confusion forgery): refused
        // before any MAC is computed.
        use hmac::Mac as _;
        let input = format!("{}.{claims}", b64::encode(br#"{"alg":"HS256"}"#));
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(A3_KEY.as_bytes())
            .map_err(|e| e.to_string());
        let Ok(ref mut mac) = mac else { panic!("{mac:?}") };
        mac.update(input.as_bytes());
        let hs = format!("{input}.{}", b64::encode(&mac.clone().finalize().into_bytes()));
        let jws = parse_compact(&hs).map_err(|e| e.to_string());
        assert!(matches!(
            jws.map(|j| j.verify(&jwk(A3_KEY))),
            Ok(Err(Error::SymmetricAlgorithm(a))) if a == "HS256"
        ));
    }

    #[test]
    fn sign_and_verify_each_algorithm() {
        for alg in Algorithm::ALL {
            let key = PrivateJwk::generate(alg).map_err(|e| e.to_string());
            let Ok(key) = key else { panic!("{key:?}") };
            let mut header = Header::jwt(None);
            header.x5c = Some(vec![vec![0x30, 0x03, 1, 2, 3]]);
            header.sshpop = Some(b"ssh".to_vec());
            header.jwk = Some(key.public().clone());
            let token = sign_compact(&key, &header, br#"{"sub":"x"}"#).map_err(|e| e.to_string());
            let Ok(token) = token else { panic!("{token:?}") };
            let jws = parse_compact(&token).map_err(|e| e.to_string());
            let Ok(jws) = jws else { panic!("{jws:?}") };
            assert_eq!(jws.header().kid.as_deref(), key.public().kid());
            assert_eq!(jws.header().x5c, header.x5c);
            assert_eq!(jws.header().sshpop, header.sshpop);
            assert_eq!(jws.header().jwk.as_ref(), Some(key.public()));
            let verified = jws.verify(key.public()).map_err(|e| e.to_string());
            assert_eq!(
                verified.map(|v| v.payload().to_vec()).ok(),
                Some(br#"{"sub":"x"}"#.to_vec())
            );
            let by_core = jws.verify_with(key.public().public_key(), alg);
            assert!(by_core.is_ok(), "{alg}");
            // Another key of the same type fails.
            let other = PrivateJwk::generate(alg).map_err(|e| e.to_string());
            let Ok(other) = other else { panic!("{other:?}") };
            assert!(matches!(jws.verify(other.public()), Err(Error::BadSignature)), "{alg}");
        }
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let cases = [
            "",
            ".",
            "..",
            "a.b",
            "a.b.c.d",
            "a.b.c.d.e",
            "WyJFUzI1NiJd.e30.AA", // header ["ES256"]
            "eyJhbGciOiJFUzI1NiJ9=.e30.AA",
            "e30.e30.AA",                                      // no alg
            "WyJhbGciXQ.e30.AA",                               // header is an array
            "eyJhbGciOjF9.e30.AA",                             // alg not a string
            "eyJhbGciOiJFUzI1NiIsImFsZyI6Im5vbmUifQ.e30.AA",   // duplicate alg
            "eyJhbGciOiJFUzI1NiIsImNyaXQiOlsiYjY0Il19.e30.AA", // crit
            "eyJhbGciOiJFUzI1NiIsIng1YyI6W119.e30.AA",         // empty x5c
            "eyJhbGciOiJFUzI1NiIsIng1YyI6WyIqIl19.e30.AA",     // x5c not base64
        ];
        for case in cases {
            assert!(parse_compact(case).is_err(), "{case:?}");
        }
        let long = "a".repeat(MAX_COMPACT_LEN + 1);
        assert!(matches!(parse_compact(&long), Err(Error::TooLong { .. })));
    }
}
