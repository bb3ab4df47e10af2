//! `logging`: the tracing filter and the log format.

use super::file::LoggingSection;

#[derive(Debug, Clone)]
pub struct Logging {
    /// A tracing filter such as `info` or `openmeet_appservice=debug,info`.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

impl Logging {
    pub fn validate(section: LoggingSection, p: &mut Vec<String>) -> Self {
        let level = section.level.unwrap_or_else(|| "info".to_owned());
        if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
            p.push(format!("logging.level {level:?} is not a tracing filter: use e.g. info, debug or openmeet_appservice=debug,info."));
        }
        let format = match section.format.as_deref() {
            None | Some("human") => LogFormat::Human,
            Some("json") => LogFormat::Json,
            Some(other) => {
                p.push(format!(
                    "logging.format {other:?} is unknown: use human or json."
                ));
                LogFormat::Human
            }
        };
        Self { level, format }
    }
}
