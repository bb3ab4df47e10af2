//! `tenants[].rules`: what `check_event_for_spam` refuses in the tenant's managed rooms (DESIGN
//! §7.3, "Rules before send"): blocked words and link domains in messages, and a message rate per
//! user and room, for users below a power level.

use super::file::{RateLimitSection, RulesSection};

/// The level below which rules apply when `applies_below_level` is left out: moderators (50) and
/// above are trusted.
pub const DEFAULT_APPLIES_BELOW_LEVEL: i64 = 50;

/// A tenant's rules, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Lowercase; matched as whole words (or phrases), case-insensitively.
    pub blocked_words: Vec<String>,
    /// Lowercase host names; each also blocks its subdomains.
    pub blocked_link_domains: Vec<String>,
    /// Users whose level in the room is below this are held to the rules.
    pub applies_below_level: i64,
    pub rate_limit: Option<RateLimit>,
}

/// At most `messages` messages per user and room in any `per_seconds` window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub messages: u32,
    pub per_seconds: u64,
}

/// The longest rate window accepted: a day. Longer windows would keep a day's timestamps per user.
const MAX_WINDOW_SECONDS: u64 = 86_400;

impl Rules {
    /// The section at `at` (`tenants[N].rules`), or `None` with the problems recorded.
    pub fn validate(section: RulesSection, at: &str, p: &mut Vec<String>) -> Option<Self> {
        let before = p.len();
        let mut blocked_words = Vec::new();
        for word in section.blocked_words {
            let word = word.trim().to_lowercase();
            if word.is_empty() {
                p.push(format!(
                    "{at}.blocked_words holds an empty entry: remove it."
                ));
            } else if !blocked_words.contains(&word) {
                blocked_words.push(word);
            }
        }
        let mut blocked_link_domains = Vec::new();
        for domain in section.blocked_link_domains {
            let domain = domain.trim().trim_end_matches('.').to_lowercase();
            let labels_ok = domain.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
            if domain.contains("://") || domain.contains('/') || !labels_ok {
                p.push(format!(
                    "{at}.blocked_link_domains entry {domain:?} is not a domain name: write the host alone, like spam.example (it also blocks its subdomains)."
                ));
            } else if !blocked_link_domains.contains(&domain) {
                blocked_link_domains.push(domain);
            }
        }
        let applies_below_level = section
            .applies_below_level
            .unwrap_or(DEFAULT_APPLIES_BELOW_LEVEL);
        if !(1..=100).contains(&applies_below_level) {
            p.push(format!(
                "{at}.applies_below_level {applies_below_level} is out of range: give a power level from 1 to 100 (users below it are held to the rules)."
            ));
        }
        let rate_limit = section
            .rate_limit
            .and_then(|rate| validate_rate(rate, &format!("{at}.rate_limit"), p));
        (p.len() == before).then_some(Self {
            blocked_words,
            blocked_link_domains,
            applies_below_level,
            rate_limit,
        })
    }

    /// Whether any rule is set (a tenant without rules answers `check_event_for_spam` at once).
    pub fn is_empty(&self) -> bool {
        self.blocked_words.is_empty()
            && self.blocked_link_domains.is_empty()
            && self.rate_limit.is_none()
    }
}

fn validate_rate(section: RateLimitSection, at: &str, p: &mut Vec<String>) -> Option<RateLimit> {
    let (Some(messages), Some(per_seconds)) = (section.messages, section.per_seconds) else {
        p.push(format!(
            "{at} needs both messages and per_seconds, like {{messages: 10, per_seconds: 60}}."
        ));
        return None;
    };
    if messages == 0 || messages > 10_000 {
        p.push(format!(
            "{at}.messages {messages} is out of range: give 1 to 10000 messages per window."
        ));
        return None;
    }
    if per_seconds == 0 || per_seconds > MAX_WINDOW_SECONDS {
        p.push(format!(
            "{at}.per_seconds {per_seconds} is out of range: give a window of 1 to {MAX_WINDOW_SECONDS} seconds."
        ));
        return None;
    }
    Some(RateLimit {
        messages,
        per_seconds,
    })
}
