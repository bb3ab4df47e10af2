//! Logs through tracing: human-readable by default, JSON for log pipelines, always on stderr
//! (stdout carries the output of `registration` and `generate-config`).
//!
//! No secret reaches a log line at any level: tokens live in [`crate::config::Secret`], whose
//! `Debug` and `Display` are redacted, and requests to the homeserver carry the token in a header
//! that is never logged.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; later calls are ignored (tests may call it more than once).
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
