//! `retention`: how long delivered events and finished jobs are kept (DESIGN §7.1).

use std::time::Duration;

use super::file::RetentionSection;

const DAY: Duration = Duration::from_secs(86_400);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Processed inbox events (the chat the bots saw), transactions and quarantine rows.
    pub inbox: Duration,
    /// Jobs that ended (succeeded, failed, dead, cancelled), a room's latest job excepted,
    /// moderation audit entries and outbox events (the events feed).
    pub jobs: Duration,
}

impl Retention {
    /// Turns the section into whole days (defaults 7 and 30), recording a problem for 0.
    pub(super) fn validate(section: RetentionSection, problems: &mut Vec<String>) -> Self {
        let mut days = |key: &str, value: Option<u32>, default: u32| match value.unwrap_or(default)
        {
            0 => {
                problems.push(format!(
                    "retention.{key} is 0: give the days to keep rows (at least 1, default {default})."
                ));
                DAY * default
            }
            days => DAY * days,
        };
        Self {
            inbox: days("inbox_days", section.inbox_days, 7),
            jobs: days("jobs_days", section.jobs_days, 30),
        }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self::validate(RetentionSection::default(), &mut Vec::new())
    }
}
