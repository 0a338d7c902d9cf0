//! Loopback servers for the validation tests: a DNS server answering from a fixed zone,
//! an HTTP/1.1 responder, a tls-alpn-01 responder, and a listener that never answers.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use keystation_acme_va::{AddressPolicy, ValidationConfig, Validator};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, UdpSocket};

/// One record of the test zone.
#[derive(Debug, Clone)]
pub enum Rec {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// One TXT record of these character-strings.
    Txt(Vec<&'static str>),
    Cname(&'static str),
    /// The server answers SERVFAIL for the name.
    ServFail,
}

/// A DNS server on 127.0.0.1 (UDP) answering from `zone` like a recursive resolver would:
/// CNAMEs followed within the zone, NXDOMAIN for names it does not have, an empty
/// NOERROR answer for names without records of the type asked.
pub async fn dns_server(zone: &[(&str, Rec)]) -> SocketAddr {
    let mut records: HashMap<String, Vec<Rec>> = HashMap::new();
    for (name, rec) in zone {
        records
            .entry(name.trim_end_matches('.').to_ascii_lowercase())
            .or_default()
            .push(rec.clone());
    }
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buffer).await else { return };
            let Ok(query) = Message::from_vec(&buffer[..n]) else { continue };
            let answer = answer(&records, &query);
            let _ = socket.send_to(&answer.to_vec().unwrap(), peer).await;
        }
    });
    address
}

fn answer(zone: &HashMap<String, Vec<Rec>>, query: &Message) -> Message {
    let mut response = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    let Some(question) = query.queries.first() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response;
    };
    response.add_query(question.clone());
    let wanted = question.query_type();
    let mut owner = question.name().clone();
    for _ in 0..8 {
        let key = owner.to_ascii().trim_end_matches('.').to_ascii_lowercase();
        let Some(records) = zone.get(&key) else {
            if response.answers.is_empty() {
                response.metadata.response_code = ResponseCode::NXDomain;
            }
            return response;
        };
        let mut next = None;
        for rec in records {
            let data = match (rec, wanted) {
                (Rec::ServFail, _) => {
                    response.answers.clear();
                    response.metadata.response_code = ResponseCode::ServFail;
                    return response;
                }
                (Rec::A(ip), RecordType::A) => RData::A(A(*ip)),
                (Rec::Aaaa(ip), RecordType::AAAA) => RData::AAAA(AAAA(*ip)),
                (Rec::Txt(strings), RecordType::TXT) => {
                    RData::TXT(TXT::new(strings.iter().map(|s| s.to_string()).collect()))
                }
                (Rec::Cname(target), _) => {
                    let target = Name::from_ascii(format!("{target}.")).unwrap();
                    next = Some(target.clone());
                    RData::CNAME(CNAME(target))
                }
                _ => continue,
            };
            response.add_answer(Record::from_rdata(owner.clone(), 0, data));
        }
        match next {
            Some(target) => owner = target,
            None => return response,
        }
    }
    response
}

/// What the HTTP responder saw of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub path: String,
    pub host: String,
}

/// An HTTP/1.1 responder on 127.0.0.1: `respond(path)` gives the whole raw response; each
/// request's path and Host header are recorded.
pub struct HttpServer {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl HttpServer {
    pub async fn start(respond: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let respond = Arc::new(respond);
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                let record = record.clone();
                let respond = respond.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16384 {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request).into_owned();
                    let path = text.split(' ').nth(1).unwrap_or_default().to_owned();
                    let host = text
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("host").then(|| value.trim().to_owned())
                        })
                        .unwrap_or_default();
                    record.lock().unwrap().push(Seen { path: path.clone(), host });
                    let _ = stream.write_all(&respond(&path)).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { port, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A raw response with `status`, extra header lines and `body`.
pub fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out =
        format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A TCP server on 127.0.0.1 that writes `bytes` as soon as it accepts, then closes.
pub async fn blurting_server(bytes: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(bytes).await;
            let _ = stream.shutdown().await;
        }
    });
    port
}

/// A listener on 127.0.0.1 that accepts connections and never answers.
pub async fn silent_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    port
}

/// A port on 127.0.0.1 where nothing listens.
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A tls-alpn-01 responder on 127.0.0.1 presenting `certificate` (DER, with its PKCS#8
/// key), selecting from `alpn`, with the protocol versions given; records each SNI. With
/// `http_body`, it answers an HTTP request over the connection with `200` and that body.
pub struct TlsServer {
    pub port: u16,
    pub sni: Arc<Mutex<Vec<Option<String>>>>,
}

impl TlsServer {
    pub async fn start(
        certificate: Vec<u8>,
        key: Vec<u8>,
        alpn: &[&[u8]],
        versions: &[&'static rustls::SupportedProtocolVersion],
        http_body: Option<&'static [u8]>,
    ) -> Self {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let sni = Arc::new(Mutex::new(Vec::new()));
        // A resolver rather than `with_single_cert`: that one has webpki parse the
        // certificate, which refuses the acmeIdentifier extension as an unknown critical one.
        let signing_key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
            .unwrap();
        let certified =
            rustls::sign::CertifiedKey::new(vec![CertificateDer::from(certificate)], signing_key);
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(RecordingResolver {
                certified: Arc::new(certified),
                sni: sni.clone(),
            }));
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else { return };
                    let mut request = Vec::new();
                    let mut chunk = [0u8; 1024];
                    let read = async {
                        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                            match tls.read(&mut chunk).await {
                                Ok(0) | Err(_) => return false,
                                Ok(n) => request.extend_from_slice(&chunk[..n]),
                            }
                        }
                        true
                    };
                    let answered = tokio::time::timeout(Duration::from_secs(5), read).await;
                    if answered == Ok(true)
                        && let Some(body) = http_body
                    {
                        let _ = tls.write_all(&response(200, &[], body)).await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        Self { port, sni }
    }
}

/// Presents one certificate, recording the SNI of each ClientHello (before the
/// certificate is sent, so before the client can have finished).
#[derive(Debug)]
struct RecordingResolver {
    certified: Arc<rustls::sign::CertifiedKey>,
    sni: Arc<Mutex<Vec<Option<String>>>>,
}

impl rustls::server::ResolvesServerCert for RecordingResolver {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.sni.lock().unwrap().push(hello.server_name().map(str::to_owned));
        Some(self.certified.clone())
    }
}

/// The key authorization the tests use.
pub const KEY_AUTHORIZATION: &str =
    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ";

/// The token of [`KEY_AUTHORIZATION`].
pub const TOKEN: &str = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";

/// A validator against the loopback servers: `dns` as resolver, loopback allowed.
pub fn validator(dns: SocketAddr, http01_port: u16, tls_alpn01_port: u16) -> Validator {
    validator_with(dns, http01_port, tls_alpn01_port, |_| {})
}

pub fn validator_with(
    dns: SocketAddr,
    http01_port: u16,
    tls_alpn01_port: u16,
    adjust: impl FnOnce(&mut ValidationConfig),
) -> Validator {
    let mut config = ValidationConfig {
        http01_port,
        tls_alpn01_port,
        resolver: Some(dns),
        policy: loopback_allowed(),
        timeout: Duration::from_secs(5),
        ..ValidationConfig::default()
    };
    adjust(&mut config);
    Validator::new(config).unwrap()
}

pub fn loopback_allowed() -> AddressPolicy {
    AddressPolicy::parse(&["127.0.0.0/8".to_owned(), "::1".to_owned()], &[]).unwrap()
}

/// A zone where `a.test` and `b.test` are loopback.
pub fn loopback_zone() -> Vec<(&'static str, Rec)> {
    vec![("a.test", Rec::A(Ipv4Addr::LOCALHOST)), ("b.test", Rec::A(Ipv4Addr::LOCALHOST))]
}

pub fn localhost() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}
