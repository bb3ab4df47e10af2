//! Logs through tracing: human-readable by default, JSON for log pipelines, always on stderr
//! (stdout carries the output of `registration` and `generate-config`).
//!
//! No secret reaches a log line at any level: tokens live in [`crate::config::Secret`], whose
//! `Debug` and `Display` are redacted, and requests to the homeserver carry the token in a header
//! that is never logged.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

type SetFilter = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

/// Swaps the installed subscriber's filter (a reload changes `logging.level`).
static SET_FILTER: OnceLock<SetFilter> = OnceLock::new();

/// Installs the global subscriber; later calls are ignored (tests may call it more than once).
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    macro_rules! install {
        ($builder:expr) => {{
            let builder = $builder.with_filter_reloading();
            let handle = builder.reload_handle();
            if builder.try_init().is_ok() {
                let _ = SET_FILTER.set(Box::new(move |filter| {
                    handle.reload(filter).map_err(|error| error.to_string())
                }));
            }
        }};
    }
    match format {
        LogFormat::Human => install!(builder),
        LogFormat::Json => install!(builder.json().with_current_span(true).with_span_list(false)),
    }
}

/// Changes the level of the running subscriber, e.g. `debug` or `info,openmeet_appservice=trace`.
pub fn set_level(level: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(level)
        .map_err(|error| format!("logging.level {level:?} is not a valid filter ({error})"))?;
    match SET_FILTER.get() {
        Some(set) => set(filter),
        None => Err("no log subscriber of ours is installed".into()),
    }
}
