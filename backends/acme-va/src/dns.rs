//! A stub resolver (RFC 1035): one question per query to one recursive server, over UDP
//! and again over TCP when the answer is truncated (§4.2.1, §4.2.2), the records of the
//! asked type read from the answer section with CNAME chains followed (RFC 1034 §3.6.2).
//! No cache (a retried validation must see the record the client has just fixed), no
//! `/etc/hosts` and no search domains: the name asked is the name validated.
//!
//! [`parse_response`] is total: any bytes give records or an error, never a panic; it is
//! a fuzz target (`acme_dns_response`).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};

/// Record types the validator asks for (RFC 1035 §3.2.2, RFC 3596 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// An IPv4 address.
    A,
    /// An IPv6 address.
    Aaaa,
    /// Text strings.
    Txt,
}

impl RecordType {
    /// The TYPE value on the wire.
    pub const fn code(self) -> u16 {
        match self {
            Self::A => 1,
            Self::Aaaa => 28,
            Self::Txt => 16,
        }
    }

    /// The mnemonic.
    pub const fn name(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Txt => "TXT",
        }
    }
}

/// CNAME's TYPE (RFC 1035 §3.2.2).
const CNAME: u16 = 5;
/// The Internet class.
const CLASS_IN: u16 = 1;
/// The longest name on the wire, length octets included (RFC 1035 §2.3.4).
const MAX_NAME_LEN: usize = 255;
/// The most compression pointers followed in one name; a loop ends here.
const MAX_POINTERS: usize = 32;
/// The longest CNAME chain followed.
const MAX_CHAIN: usize = 8;
/// The largest UDP answer read (EDNS is not offered, so 512 is what a server sends; room
/// for servers that send more anyway).
const UDP_BUFFER: usize = 4096;

/// Why a lookup gave no records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    /// The answer is truncated (TC): ask again over TCP.
    Truncated,
    /// The server answered with an error code: 3 is NXDOMAIN, 2 SERVFAIL, 5 REFUSED.
    ResponseCode(u8),
    /// The answer is not a well-formed response to the question.
    Malformed(String),
    /// No server answered in time, or the exchange failed.
    Unreachable(String),
}

impl core::fmt::Display for DnsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated => f.write_str("the answer was truncated"),
            Self::ResponseCode(3) => f.write_str("NXDOMAIN"),
            Self::ResponseCode(2) => f.write_str("SERVFAIL"),
            Self::ResponseCode(5) => f.write_str("REFUSED"),
            Self::ResponseCode(1) => f.write_str("FORMERR"),
            Self::ResponseCode(4) => f.write_str("NOTIMP"),
            Self::ResponseCode(code) => write!(f, "response code {code}"),
            Self::Malformed(why) => write!(f, "malformed answer: {why}"),
            Self::Unreachable(why) => f.write_str(why),
        }
    }
}

fn malformed(why: impl Into<String>) -> DnsError {
    DnsError::Malformed(why.into())
}

/// `name` (no final dot) in wire form, lowercased: length-prefixed labels and the root.
fn encode_name(name: &str) -> Result<Vec<u8>, DnsError> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(malformed(format!("{name:?} is not a domain name")));
        }
        out.push(label.len() as u8);
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    out.push(0);
    if out.len() > MAX_NAME_LEN {
        return Err(malformed(format!("{name:?} is longer than 255 octets")));
    }
    Ok(out)
}

/// A query (RFC 1035 §4.1): header with `id`, recursion desired, one question for `name`
/// of `record_type` in class IN.
pub fn build_query(id: u16, name: &str, record_type: RecordType) -> Result<Vec<u8>, DnsError> {
    let mut message = Vec::with_capacity(18 + name.len());
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&[0x01, 0x00]); // RD
    message.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QDCOUNT 1
    message.extend_from_slice(&encode_name(name)?);
    message.extend_from_slice(&record_type.code().to_be_bytes());
    message.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(message)
}

/// A reader over a whole message (compression pointers are offsets into it).
struct Reader<'a> {
    message: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DnsError> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.message.len());
        let end = end.ok_or_else(|| malformed("the message ends early"))?;
        let bytes = &self.message[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn u16(&mut self) -> Result<u16, DnsError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A name at the cursor, decompressed (RFC 1035 §4.1.4), lowercased, dot-separated
    /// without the final dot; the cursor moves past its in-place part.
    fn name(&mut self) -> Result<String, DnsError> {
        let (name, next) = read_name(self.message, self.at)?;
        self.at = next;
        Ok(name)
    }
}

/// The name at `start` of `message` and the offset after its in-place part.
fn read_name(message: &[u8], start: usize) -> Result<(String, usize), DnsError> {
    let mut labels: Vec<String> = Vec::new();
    let mut at = start;
    let mut after = None;
    let mut pointers = 0;
    let mut wire_len = 1;
    loop {
        let &len = message.get(at).ok_or_else(|| malformed("a name runs past the message"))?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                return Ok((labels.join("."), after.unwrap_or(at + 1)));
            }
            0x00 => {
                let label = message
                    .get(at + 1..at + 1 + usize::from(len))
                    .ok_or_else(|| malformed("a label runs past the message"))?;
                wire_len += 1 + usize::from(len);
                if wire_len > MAX_NAME_LEN {
                    return Err(malformed("a name is longer than 255 octets"));
                }
                labels.push(label.iter().map(|b| char::from(b.to_ascii_lowercase())).collect());
                at += 1 + usize::from(len);
            }
            0xc0 => {
                let &low = message.get(at + 1).ok_or_else(|| malformed("a pointer is cut"))?;
                pointers += 1;
                if pointers > MAX_POINTERS {
                    return Err(malformed("compression pointers loop"));
                }
                after.get_or_insert(at + 2);
                at = (usize::from(len & 0x3f) << 8) | usize::from(low);
            }
            _ => return Err(malformed("a label type that RFC 1035 does not define")),
        }
    }
}

/// The RDATA of the records of `record_type` that answer `name` in `message`, a response
/// to the query `id`: the answer section's records owned by `name`, or by the end of a CNAME
/// chain from it. An error code, a truncated answer or a malformed one is an error; a
/// successful answer without such records gives an empty list.
pub fn parse_response(
    message: &[u8],
    id: u16,
    name: &str,
    record_type: RecordType,
) -> Result<Vec<Vec<u8>>, DnsError> {
    let mut reader = Reader { message, at: 0 };
    let header = reader.take(12)?;
    if u16::from_be_bytes([header[0], header[1]]) != id {
        return Err(malformed("the answer's id is not the query's"));
    }
    let flags = u16::from_be_bytes([header[2], header[3]]);
    if flags & 0x8000 == 0 {
        return Err(malformed("the message is a query, not a response"));
    }
    if flags & 0x0200 != 0 {
        return Err(DnsError::Truncated);
    }
    let rcode = (flags & 0x000f) as u8;
    if rcode != 0 {
        return Err(DnsError::ResponseCode(rcode));
    }
    let questions = u16::from_be_bytes([header[4], header[5]]);
    let answers = u16::from_be_bytes([header[6], header[7]]);
    for _ in 0..questions {
        reader.name()?;
        reader.take(4)?;
    }
    let mut records: Vec<(String, u16, &[u8], usize)> = Vec::new();
    for _ in 0..answers {
        let owner = reader.name()?;
        let kind = reader.u16()?;
        let class = reader.u16()?;
        reader.take(4)?; // TTL
        let length = reader.u16()?;
        let offset = reader.at;
        let rdata = reader.take(usize::from(length))?;
        if class == CLASS_IN {
            records.push((owner, kind, rdata, offset));
        }
    }
    let mut current = name.trim_end_matches('.').to_ascii_lowercase();
    for _ in 0..=MAX_CHAIN {
        let found: Vec<Vec<u8>> = records
            .iter()
            .filter(|(owner, kind, ..)| *owner == current && *kind == record_type.code())
            .map(|(_, _, rdata, _)| rdata.to_vec())
            .collect();
        if !found.is_empty() {
            return Ok(found);
        }
        match records.iter().find(|(owner, kind, ..)| *owner == current && *kind == CNAME) {
            Some((_, _, _, offset)) => current = read_name(message, *offset)?.0,
            None => return Ok(Vec::new()),
        }
    }
    Err(malformed(format!("the CNAME chain from {name} is longer than {MAX_CHAIN}")))
}

/// The strings of a TXT record's RDATA (RFC 1035 §3.3.14) joined into one value, as
/// RFC 8555 §8.4 reads a record split into several strings.
pub fn txt_value(rdata: &[u8]) -> Result<Vec<u8>, DnsError> {
    let mut value = Vec::with_capacity(rdata.len());
    let mut at = 0;
    while at < rdata.len() {
        let len = usize::from(rdata[at]);
        let part = rdata
            .get(at + 1..at + 1 + len)
            .ok_or_else(|| malformed("a TXT string runs past its record"))?;
        value.extend_from_slice(part);
        at += 1 + len;
    }
    Ok(value)
}

/// The recursive server the system uses: the first `nameserver` of `/etc/resolv.conf`,
/// else 127.0.0.1 (what the C library falls back to).
pub(crate) fn system_server() -> SocketAddr {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().split('%').next()?.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 53)))
}

fn random_id() -> u16 {
    use rand_core::RngCore as _;
    let mut bytes = [0u8; 2];
    // An id the OS cannot make is still an id; the answer is matched by socket too.
    let _ = rand_core::OsRng.try_fill_bytes(&mut bytes);
    u16::from_be_bytes(bytes)
}

/// Asks `server` for the `record_type` records of `name` within `timeout`: over UDP (from
/// a fresh socket connected to the server, so only its datagrams are read), then over TCP
/// if the answer is truncated.
pub(crate) async fn lookup(
    server: SocketAddr,
    name: &str,
    record_type: RecordType,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, DnsError> {
    let id = random_id();
    let query = build_query(id, name, record_type)?;
    let exchange = async {
        match udp_exchange(server, &query, id, name, record_type).await {
            Err(DnsError::Truncated) => tcp_exchange(server, &query, id, name, record_type).await,
            other => other,
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(DnsError::Unreachable(format!(
            "no answer from {server} within {:.1} s",
            timeout.as_secs_f64()
        ))),
    }
}

async fn udp_exchange(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    name: &str,
    record_type: RecordType,
) -> Result<Vec<Vec<u8>>, DnsError> {
    let unreachable = |e: std::io::Error| DnsError::Unreachable(format!("{server}: {e}"));
    let local: SocketAddr =
        if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(local).await.map_err(unreachable)?;
    socket.connect(server).await.map_err(unreachable)?;
    socket.send(query).await.map_err(unreachable)?;
    let mut buffer = vec![0u8; UDP_BUFFER];
    loop {
        let n = socket.recv(&mut buffer).await.map_err(unreachable)?;
        match parse_response(&buffer[..n], id, name, record_type) {
            // A stray datagram (an earlier query's late answer): keep waiting.
            Err(DnsError::Malformed(why)) if why.contains("id") => continue,
            other => return other,
        }
    }
}

async fn tcp_exchange(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    name: &str,
    record_type: RecordType,
) -> Result<Vec<Vec<u8>>, DnsError> {
    let unreachable = |e: std::io::Error| DnsError::Unreachable(format!("{server} (TCP): {e}"));
    let mut stream = TcpStream::connect(server).await.map_err(unreachable)?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await.map_err(unreachable)?;
    let length = stream.read_u16().await.map_err(unreachable)?;
    let mut message = vec![0u8; usize::from(length)];
    stream.read_exact(&mut message).await.map_err(unreachable)?;
    parse_response(&message, id, name, record_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response to `query` carrying `answers` as (owner, type, rdata), names uncompressed.
    fn response(query: &[u8], flags: u16, answers: &[(&str, u16, Vec<u8>)]) -> Vec<u8> {
        let mut m = query[..2].to_vec();
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(&(answers.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend_from_slice(&query[12..]);
        for (owner, kind, rdata) in answers {
            m.extend_from_slice(&encode_name(owner).unwrap());
            m.extend_from_slice(&kind.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            m.extend_from_slice(rdata);
        }
        m
    }

    #[test]
    fn a_query_is_rfc_1035_wire_form() {
        let q = build_query(0xabcd, "Www.Example.TEST.", RecordType::Aaaa).unwrap();
        assert_eq!(&q[..12], &[0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&q[12..], b"\x03www\x07example\x04test\x00\x00\x1c\x00\x01");
        assert!(build_query(1, "a..b", RecordType::A).is_err());
        assert!(build_query(1, &"x".repeat(64), RecordType::A).is_err());
        assert!(build_query(1, &["abcdefgh"; 40].join("."), RecordType::A).is_err());
    }

    #[test]
    fn answers_follow_cnames_and_skip_other_names() {
        let q = build_query(7, "_acme-challenge.a.test", RecordType::Txt).unwrap();
        let cname = encode_name("b.test").unwrap();
        let r = response(
            &q,
            0x8180,
            &[
                ("other.test", 16, b"\x03bad".to_vec()),
                ("_acme-challenge.a.test", CNAME, cname),
                ("b.test", 16, b"\x02ab\x02cd".to_vec()),
            ],
        );
        let records = parse_response(&r, 7, "_acme-challenge.a.test", RecordType::Txt).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(txt_value(&records[0]).unwrap(), b"abcd");
    }

    #[test]
    fn compressed_owner_names_are_read() {
        let q = build_query(9, "a.test", RecordType::A).unwrap();
        let mut r = response(&q, 0x8180, &[]);
        r[7] = 1; // ANCOUNT 1
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
        assert_eq!(
            parse_response(&r, 9, "a.test", RecordType::A).unwrap(),
            vec![vec![127, 0, 0, 1]]
        );
    }

    #[test]
    fn errors_truncation_and_garbage_are_refused() {
        let q = build_query(3, "a.test", RecordType::A).unwrap();
        let nx = response(&q, 0x8183, &[]);
        assert_eq!(parse_response(&nx, 3, "a.test", RecordType::A), Err(DnsError::ResponseCode(3)));
        let tc = response(&q, 0x8380, &[]);
        assert_eq!(parse_response(&tc, 3, "a.test", RecordType::A), Err(DnsError::Truncated));
        let ok = response(&q, 0x8180, &[]);
        assert!(matches!(
            parse_response(&ok, 4, "a.test", RecordType::A),
            Err(DnsError::Malformed(_))
        ));
        assert!(matches!(
            parse_response(&q, 3, "a.test", RecordType::A),
            Err(DnsError::Malformed(_))
        ));
        assert_eq!(parse_response(&ok, 3, "a.test", RecordType::A), Ok(Vec::new()));
        // A pointer to itself loops; it is refused, not followed forever.
        let mut looped = response(&q, 0x8180, &[]);
        looped[7] = 1;
        let at = looped.len() as u8;
        looped.extend_from_slice(&[0xc0, at]);
        assert!(matches!(
            parse_response(&looped, 3, "a.test", RecordType::A),
            Err(DnsError::Malformed(_))
        ));
        for cut in 0..ok.len() {
            let _ = parse_response(&ok[..cut], 3, "a.test", RecordType::A);
        }
        assert!(txt_value(b"\x05ab").is_err());
    }
}
