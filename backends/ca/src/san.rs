//! Subject alternative names from plain strings, classified as step-ca's
//! `x509util.SplitSANs` does: an IP address, else a URI (a string with a URL scheme),
//! else an e-mail address (a string with `@`), else a DNS name.

use std::net::IpAddr;

use keystation_x509::SubjectAltName;

/// The kind of SAN `value` is, as step-ca decides it (the checks in this order):
///
/// 1. an IP address (IPv4 dotted quad or IPv6; an IPv4-mapped IPv6 address becomes the
///    IPv4 address, as Go's `net.IP` does);
/// 2. a URI: a string Go's `url.Parse` accepts with a non-empty scheme — a letter, then
///    letters, digits, `+`, `-` or `.`, then `:` (so `host:8080` is a URI, as in
///    step-ca) — with no control characters, and for `scheme://` forms a valid host, port
///    and `%` escapes;
/// 3. an e-mail address: anything else with an `@`;
/// 4. a DNS name: everything else.
pub fn classify_san(value: &str) -> SubjectAltName {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return SubjectAltName::Ip(ip.to_canonical());
    }
    if has_url_scheme(value) {
        return SubjectAltName::Uri(value.to_owned());
    }
    if value.contains('@') {
        return SubjectAltName::Email(value.to_owned());
    }
    SubjectAltName::Dns(value.to_owned())
}

/// Classifies each of `values` with [`classify_san`], in order.
pub fn classify_sans<S: AsRef<str>>(values: &[S]) -> Vec<SubjectAltName> {
    values.iter().map(|v| classify_san(v.as_ref())).collect()
}

/// The SAN's value as a string (an IP address in its usual text form), as step-ca lists
/// SANs in tokens and responses.
pub fn san_value(san: &SubjectAltName) -> String {
    match san {
        SubjectAltName::Dns(s) | SubjectAltName::Email(s) | SubjectAltName::Uri(s) => s.clone(),
        SubjectAltName::Ip(ip) => ip.to_string(),
        SubjectAltName::PermanentIdentifier(v) => format!("permanentIdentifier:{v}"),
        // A kind keystation-x509 gained later: its Debug form names it.
        other => format!("{other:?}"),
    }
}

/// Whether Go's `url.Parse` accepts `raw` and finds a non-empty scheme: the decisions of
/// Go's parser that can fail, reduced to this question.
fn has_url_scheme(raw: &str) -> bool {
    // Control characters are refused anywhere.
    if raw.bytes().any(|b| b < 0x20 || b == 0x7F) {
        return false;
    }
    let (url, fragment) = raw.split_once('#').unwrap_or((raw, ""));
    // The scheme: a letter, then letters, digits, `+`, `-`, `.`, up to the first `:`.
    // Any other character first means no scheme.
    let Some(colon) = url.find(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c))) else {
        return false;
    };
    if colon == 0 || url.as_bytes()[colon] != b':' || !url.as_bytes()[0].is_ascii_alphabetic() {
        return false;
    }
    if !escapes_well_formed(fragment) {
        return false;
    }
    let rest = &url[colon + 1..];
    let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
    if !rest.starts_with('/') {
        // An opaque URI (`mailto:…`, `urn:…`, `host:8080`): accepted as it is.
        return true;
    }
    let path = match rest.strip_prefix("//") {
        Some(after) => {
            let (authority, path) = after.find('/').map_or((after, ""), |i| after.split_at(i));
            if !authority_valid(authority) {
                return false;
            }
            path
        }
        None => rest,
    };
    escapes_well_formed(path)
}

/// Go's `parseAuthority`: optional userinfo before the last `@`, then the host with an
/// optional numeric port.
fn authority_valid(authority: &str) -> bool {
    let host = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let allowed = |c: char| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c);
            if !userinfo.chars().all(allowed) {
                return false;
            }
            host
        }
        None => authority,
    };
    let port_valid = |port: &str| {
        port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
    };
    let name = if let Some(literal) = host.strip_prefix('[') {
        let Some(close) = literal.find(']') else { return false };
        if !port_valid(&literal[close + 1..]) {
            return false;
        }
        &literal[..close]
    } else {
        match host.rfind(':') {
            Some(i) if !port_valid(&host[i..]) => return false,
            Some(i) => &host[..i],
            None => host,
        }
    };
    let allowed = |c: char| {
        !c.is_ascii() || c.is_ascii_alphanumeric() || "-_.~!$&'()*+,;=:[]<>\"%".contains(c)
    };
    escapes_well_formed(name) && name.chars().all(allowed)
}

/// Every `%` is followed by two hex digits.
fn escapes_well_formed(value: &str) -> bool {
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !hex(i + 1) || !hex(i + 2) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn classified_as_step_does() {
        let cases = [
            ("192.0.2.1", SubjectAltName::Ip("192.0.2.1".parse().unwrap())),
            ("2001:db8::1", SubjectAltName::Ip("2001:db8::1".parse().unwrap())),
            ("::ffff:192.0.2.9", SubjectAltName::Ip("192.0.2.9".parse().unwrap())),
            ("spiffe://example.test/a", SubjectAltName::Uri("spiffe://example.test/a".into())),
            ("mailto:a@example.test", SubjectAltName::Uri("mailto:a@example.test".into())),
            ("localhost:8080", SubjectAltName::Uri("localhost:8080".into())),
            ("alice@example.test", SubjectAltName::Email("alice@example.test".into())),
            ("1http://x@y", SubjectAltName::Email("1http://x@y".into())),
            ("bad%zz:x@y", SubjectAltName::Email("bad%zz:x@y".into())),
            ("http://a b/@", SubjectAltName::Email("http://a b/@".into())),
            ("host.example.test", SubjectAltName::Dns("host.example.test".into())),
            ("*.example.test", SubjectAltName::Dns("*.example.test".into())),
            // Go: scheme "fe80", an opaque rest; a URI.
            ("fe80::1%eth0", SubjectAltName::Uri("fe80::1%eth0".into())),
            ("https://[::1]:x/", SubjectAltName::Dns("https://[::1]:x/".into())),
            ("https://h:443/p%2", SubjectAltName::Dns("https://h:443/p%2".into())),
            ("https://u@h:443/p#f", SubjectAltName::Uri("https://u@h:443/p#f".into())),
            (":8080", SubjectAltName::Dns(":8080".into())),
        ];
        for (input, expected) in cases {
            assert_eq!(classify_san(input), expected, "{input}");
        }
        let values: Vec<String> =
            classify_sans(&["192.0.2.1", "a.test"]).iter().map(san_value).collect();
        assert_eq!(values, ["192.0.2.1", "a.test"]);
    }
}
