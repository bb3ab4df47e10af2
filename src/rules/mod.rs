//! Rules before send (DESIGN §7.3), pure: what the antispam callbacks refuse in a managed room,
//! given the facts the store read. `api/antispam` asks; nothing here does I/O.

pub(crate) mod content;
pub(crate) mod rate;

use crate::config::Rules;
use crate::rooms::power_levels::PINNED_LEVELS;

pub use rate::MessageRates;

/// Which rule refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The user is banned in the room or tenant-wide.
    Ban,
    /// The inviter is below the room's invite level.
    InviteLevel,
    /// The invited user is banned in the room or tenant-wide.
    BannedInvitee,
    BlockedWord,
    BlockedLinkDomain,
    RateLimit,
}

impl Rule {
    /// The name the audit log, the feed and the metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ban => "ban",
            Self::InviteLevel => "invite_level",
            Self::BannedInvitee => "banned_invitee",
            Self::BlockedWord => "blocked_word",
            Self::BlockedLinkDomain => "blocked_link_domain",
            Self::RateLimit => "rate_limit",
        }
    }
}

/// A refusal: the rule, and the sentence Synapse shows the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: Rule,
    pub reason: String,
}

impl Refusal {
    fn new(rule: Rule, reason: impl Into<String>) -> Self {
        Self {
            rule,
            reason: reason.into(),
        }
    }
}

/// The level the daemon pins `invite` at in managed rooms (`rooms::power_levels`).
pub fn invite_level() -> i64 {
    PINNED_LEVELS
        .iter()
        .find(|(key, _)| *key == "invite")
        .map_or(50, |(_, level)| *level)
}

/// `user_may_join_room`: a banned user stays out, invited or not (an invite made by hand by a
/// moderator does not lift a ban the platform declared).
pub fn join(banned: bool) -> Option<Refusal> {
    banned.then(|| {
        Refusal::new(
            Rule::Ban,
            "You are banned from this room by its community's moderators.",
        )
    })
}

/// `user_may_invite`: only users at the invite level or above invite into a managed room, and no
/// one invites a banned user.
pub fn invite(inviter_level: i64, invitee_banned: bool) -> Option<Refusal> {
    let needed = invite_level();
    if inviter_level < needed {
        return Some(Refusal::new(
            Rule::InviteLevel,
            format!(
                "Only moderators (power level {needed} or above) may invite people into this room; its members are managed by its community."
            ),
        ));
    }
    invitee_banned.then(|| {
        Refusal::new(
            Rule::BannedInvitee,
            "This user is banned from this room by its community's moderators.",
        )
    })
}

/// What `check_event_for_spam` decides about a message from a user at `level`; `admit` asks the
/// rate limiter last, only for a message no content rule refused (so refused messages do not
/// use up the user's allowance).
pub fn message(
    rules: &Rules,
    level: i64,
    content: &serde_json::Value,
    admit: impl FnOnce(crate::config::RateLimit) -> bool,
) -> Option<Refusal> {
    if level >= rules.applies_below_level {
        return None;
    }
    if let Some(refusal) = content::refusal(rules, content) {
        return Some(refusal);
    }
    let limit = rules.rate_limit?;
    (!admit(limit)).then(|| {
        Refusal::new(
            Rule::RateLimit,
            format!(
                "You are sending messages too fast: at most {} every {} seconds in this room. Wait a little and send it again.",
                limit.messages, limit.per_seconds
            ),
        )
    })
}

/// Whether `check_event_for_spam` looks at events of this type: messages for the content rules,
/// and everything a user posts as a message for the rate limit.
pub fn is_message(event_type: &str) -> bool {
    matches!(
        event_type,
        "m.room.message" | "m.sticker" | "m.room.encrypted"
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::RateLimit;

    fn rules() -> Rules {
        Rules {
            blocked_words: vec!["casino".into()],
            blocked_link_domains: vec!["spam.example".into()],
            applies_below_level: 50,
            rate_limit: Some(RateLimit {
                messages: 2,
                per_seconds: 60,
            }),
        }
    }

    #[test]
    fn a_banned_user_is_refused_and_anyone_else_joins() {
        assert_eq!(join(true).unwrap().rule, Rule::Ban);
        assert_eq!(join(false), None);
    }

    #[test]
    fn invites_need_the_invite_level_and_an_unbanned_invitee() {
        assert_eq!(invite(0, false).unwrap().rule, Rule::InviteLevel);
        assert_eq!(invite(49, true).unwrap().rule, Rule::InviteLevel);
        assert_eq!(invite(50, false), None);
        assert_eq!(invite(100, true).unwrap().rule, Rule::BannedInvitee);
    }

    #[test]
    fn rules_hold_below_the_level_only_and_refused_messages_use_no_allowance() {
        let spam = json!({"msgtype": "m.text", "body": "see https://www.spam.example/x"});
        let fine = json!({"msgtype": "m.text", "body": "hello"});
        let never = |_| panic!("a refused or exempt message must not reach the rate limiter");
        assert_eq!(
            message(&rules(), 0, &spam, never).unwrap().rule,
            Rule::BlockedLinkDomain
        );
        assert_eq!(message(&rules(), 50, &spam, never), None);
        assert_eq!(message(&rules(), 0, &fine, |_| true), None);
        let limited = message(&rules(), 0, &fine, |_| false).unwrap();
        assert_eq!(limited.rule, Rule::RateLimit);
        assert!(
            limited.reason.contains("at most 2 every 60 seconds"),
            "{limited:?}"
        );
    }
}
