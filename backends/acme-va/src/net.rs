//! Resolution and connections: names become addresses through the stub resolver
//! ([`crate::dns`]), the addresses are checked against the policy, and the validator
//! connects to them itself.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;

use crate::dns::{self, DnsError, RecordType};
use crate::{Error, FailureKind, Identifier, ValidationFailure, policy::AddressPolicy};

/// The resolver: the configured server or the system's first, asked afresh every time.
pub(crate) struct Resolver {
    server: SocketAddr,
    timeout: Duration,
}

impl Resolver {
    pub(crate) fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Self, Error> {
        Ok(Self { server: server.unwrap_or_else(dns::system_server), timeout })
    }

    /// The A and AAAA addresses of `name` (normalized, no final dot), AAAA first.
    pub(crate) async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, ValidationFailure> {
        let (v6, v4) = tokio::join!(
            dns::lookup(self.server, name, RecordType::Aaaa, self.timeout),
            dns::lookup(self.server, name, RecordType::A, self.timeout),
        );
        let mut addresses = Vec::new();
        let mut errors = Vec::new();
        for (answer, len) in [(v6, 16), (v4, 4)] {
            match answer {
                Ok(records) => addresses.extend(records.iter().filter_map(|r| match r.len() {
                    16 if len == 16 => <[u8; 16]>::try_from(r.as_slice()).ok().map(IpAddr::from),
                    4 if len == 4 => <[u8; 4]>::try_from(r.as_slice()).ok().map(IpAddr::from),
                    _ => None,
                })),
                Err(e) => errors.push(e),
            }
        }
        if addresses.is_empty() {
            return Err(match errors.into_iter().next() {
                Some(e) => dns_failure(name, "A/AAAA", &e),
                None => ValidationFailure::new(
                    FailureKind::Dns,
                    format!("DNS problem: no A or AAAA records found for {name}"),
                ),
            });
        }
        Ok(addresses)
    }

    /// The TXT records at `name` (no final dot), each as its character-strings joined.
    pub(crate) async fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, ValidationFailure> {
        let records = dns::lookup(self.server, name, RecordType::Txt, self.timeout)
            .await
            .map_err(|e| dns_failure(name, "TXT", &e))?;
        records
            .iter()
            .map(|r| dns::txt_value(r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| dns_failure(name, "TXT", &e))
    }
}

/// A resolution failure as a `dns` problem naming the name and what went wrong.
fn dns_failure(name: &str, kind: &str, error: &DnsError) -> ValidationFailure {
    ValidationFailure::new(
        FailureKind::Dns,
        format!("DNS problem: {error} looking up {kind} for {name}"),
    )
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
