//! Resolution and connections: names become addresses through hickory's resolver, the
//! addresses are checked against the policy, and the validator connects to them itself.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{TokioResolver, net::runtime::TokioRuntimeProvider};
use tokio::net::TcpStream;

use crate::{Error, FailureKind, Identifier, ValidationFailure, policy::AddressPolicy};

/// The resolver: the configured server or the system's, without `/etc/hosts` and without
/// a cache (a retried attempt must see the record the client has just fixed).
pub(crate) struct Resolver {
    inner: TokioResolver,
}

impl Resolver {
    pub(crate) fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Self, Error> {
        let mut builder = match server {
            Some(server) => {
                let mut name_server = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut name_server.connections {
                    connection.port = server.port();
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![name_server]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio().map_err(|e| Error::Resolver(e.to_string()))?,
        };
        let options: &mut ResolverOpts = builder.options_mut();
        options.use_hosts_file = ResolveHosts::Never;
        options.cache_size = 0;
        options.positive_max_ttl = Some(Duration::ZERO);
        options.negative_max_ttl = Some(Duration::ZERO);
        options.timeout = options.timeout.min(timeout);
        let inner = builder.build().map_err(|e| Error::Resolver(e.to_string()))?;
        Ok(Self { inner })
    }

    /// The A and AAAA addresses of `name` (normalized, no final dot), AAAA first.
    pub(crate) async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, ValidationFailure> {
        let fqdn = format!("{name}.");
        let lookup = self
            .inner
            .lookup_ip(fqdn.as_str())
            .await
            .map_err(|e| dns_failure(name, "A/AAAA", &e))?;
        let addresses: Vec<IpAddr> = lookup.iter().collect();
        if addresses.is_empty() {
            return Err(ValidationFailure::new(
                FailureKind::Dns,
                format!("DNS problem: no A or AAAA records found for {name}"),
            ));
        }
        Ok(addresses)
    }

    /// The TXT records at `name` (no final dot), each as its character-strings joined.
    pub(crate) async fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, ValidationFailure> {
        let fqdn = format!("{name}.");
        let lookup = self
            .inner
            .lookup(fqdn.as_str(), RecordType::TXT)
            .await
            .map_err(|e| dns_failure(name, "TXT", &e))?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => Some(txt.txt_data.concat()),
                _ => None,
            })
            .collect())
    }
}

/// A resolution failure as a `dns` problem naming the name and what went wrong.
fn dns_failure(name: &str, kind: &str, error: &NetError) -> ValidationFailure {
    let what = match error {
        NetError::Dns(DnsError::NoRecordsFound(none))
            if none.response_code == ResponseCode::NXDomain =>
        {
            format!("NXDOMAIN looking up {kind} for {name}")
        }
        NetError::Dns(DnsError::NoRecordsFound(_)) => format!("no {kind} records found for {name}"),
        NetError::Dns(DnsError::ResponseCode(code)) => {
            format!("{} looking up {kind} for {name}", mnemonic(*code))
        }
        NetError::Timeout => format!("query timed out looking up {kind} for {name}"),
        other => format!("looking up {kind} for {name}: {other}"),
    };
    ValidationFailure::new(FailureKind::Dns, format!("DNS problem: {what}"))
}

/// RFC 1035 §4.1.1's names for the codes a resolver passes on.
fn mnemonic(code: ResponseCode) -> String {
    match code {
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        other => format!("response code {} ({other})", u16::from(other)),
    }
}

/// The addresses an identifier leads to that the policy permits, in the resolver's order.
/// None permitted is a `rejectedIdentifier` failure naming the refused ones.
pub(crate) async fn permitted_addresses(
    resolver: &Resolver,
    policy: &AddressPolicy,
    identifier: &Identifier,
) -> Result<Vec<IpAddr>, ValidationFailure> {
    let candidates = match identifier {
        Identifier::Ip(ip) => vec![*ip],
        Identifier::Dns(name) => resolver.addresses(name).await?,
    };
    let mut permitted = Vec::with_capacity(candidates.len());
    let mut refusals = Vec::new();
    for ip in candidates {
        match policy.refusal(ip) {
            None => permitted.push(ip),
            Some(why) => {
                tracing::debug!(%identifier, %ip, "address refused by the policy");
                refusals.push(why);
            }
        }
    }
    if permitted.is_empty() {
        let detail = match identifier {
            Identifier::Ip(_) => format!("refused by the address policy: {}", refusals.join("; ")),
            Identifier::Dns(name) => format!(
                "{name} resolves only to addresses refused by the address policy: {}",
                refusals.join("; ")
            ),
        };
        return Err(ValidationFailure::new(FailureKind::RejectedIdentifier, detail));
    }
    Ok(permitted)
}

/// A TCP connection to the first of `addresses` on `port` that accepts one. While other
/// addresses remain, one try gets at most `per_try`, so an unreachable first address (a
/// broken IPv6 route) leaves time for the next.
pub(crate) async fn connect(
    addresses: &[IpAddr],
    port: u16,
    what: &str,
    per_try: Duration,
) -> Result<(TcpStream, SocketAddr), ValidationFailure> {
    let mut last = None;
    for (i, &ip) in addresses.iter().enumerate() {
        let address = SocketAddr::new(ip, port);
        let attempt = TcpStream::connect(address);
        let outcome = if i + 1 < addresses.len() {
            match tokio::time::timeout(per_try, attempt).await {
                Ok(outcome) => outcome,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {per_try:?}"),
                )),
            }
        } else {
            attempt.await
        };
        match outcome {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, address));
            }
            Err(e) => {
                tracing::debug!(%address, error = %e, "connection failed");
                last = Some(format!("{address}: {e}"));
            }
        }
    }
    Err(ValidationFailure::new(
        FailureKind::Connection,
        format!("cannot connect to {what} ({})", last.unwrap_or_else(|| "no address".into())),
    ))
}
