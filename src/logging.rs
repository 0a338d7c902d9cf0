//! Logging: `tracing` events to stderr (stdout is for command output), as text or JSON
//! lines, at the configured level.
//!
//! `--log-level trace` shows every APDU (target `keystation::apdu`, logged by
//! keystation-core with secrets redacted). The HTTP/2 and gRPC transport crates are held
//! at `info` whatever the level: at `trace` they dump request headers, and the
//! `authorization` header carries the token.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LogLevel};

/// Crates whose verbose logs can contain request headers (and so the token).
const TRANSPORT_TARGETS: &[&str] = &["h2", "hyper", "hyper_util", "tonic", "tower", "rustls"];

/// The tracing level for a configured [`LogLevel`].
pub fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    }
}

/// What is logged at `level`: everything up to `level`, transport crates up to `info`.
pub fn filter(level: LogLevel) -> Targets {
    let level = level_filter(level);
    let transport = level.min(LevelFilter::INFO);
    Targets::new()
        .with_default(level)
        .with_targets(TRANSPORT_TARGETS.iter().map(|target| (*target, transport)))
}

/// Installs the global subscriber: events up to `level` (see [`filter`]) to stderr, in
/// `format`. Returns `false`, changing nothing, if a global subscriber is already
/// installed (as happens when tests call this more than once); never panics.
pub fn init(level: LogLevel, format: LogFormat) -> bool {
    let registry = tracing_subscriber::registry().with(filter(level));
    let result = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
    };
    result.is_ok()
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn trace_shows_apdus() {
        assert!(filter(LogLevel::Trace).would_enable("keystation::apdu", &Level::TRACE));
        assert!(!filter(LogLevel::Debug).would_enable("keystation::apdu", &Level::TRACE));
        assert!(filter(LogLevel::Info).would_enable("keystation", &Level::INFO));
        assert!(!filter(LogLevel::Info).would_enable("keystation", &Level::DEBUG));
    }

    #[test]
    fn transport_crates_stay_at_info() {
        let trace = filter(LogLevel::Trace);
        assert!(!trace.would_enable("h2::codec", &Level::TRACE));
        assert!(!trace.would_enable("hyper", &Level::DEBUG));
        assert!(trace.would_enable("tonic::transport", &Level::INFO));
        assert!(!filter(LogLevel::Error).would_enable("tonic", &Level::INFO));
    }

    #[test]
    fn init_twice_does_not_panic() {
        let first = init(LogLevel::Info, LogFormat::Text);
        let second = init(LogLevel::Trace, LogFormat::Json);
        assert!(!second || !first, "only one init can install a subscriber");
        assert!(!second);
    }
}
