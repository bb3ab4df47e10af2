//! What an inbox event is to the daemon, from its stored envelope (type, sender, state key): only
//! the content of the types something is done about — memberships, power levels, tombstones, the
//! settings the daemon owns — is read, and quarantined when it cannot be. Chat messages, most of
//! the traffic, are never parsed beyond the envelope the acknowledgement checked; the envelope
//! alone settles them ([`settled`]), so the acknowledgement stores them processed. The repairs and
//! the members' joins and leaves dispatch on [`Observed`].

use ruma::UserId;
use ruma::events::AnyTimelineEvent;
use serde::Deserialize;

use crate::config::Config;
use crate::rooms::settings;
use crate::store::inbox::{Handled, PendingEvent};

/// What an event means to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Content ruma cannot read in an event we would act on (its envelope was fine): quarantined,
    /// with the reason.
    Malformed(String),
    /// Sent by one of our own users: an echo, no reason to act.
    OwnEcho,
    /// A membership change of one of our own users (e.g. a bot invited, kicked or banned).
    OwnMembership(String),
    PowerLevels,
    /// A room setting the daemon owns (name, topic, join rule, …; see `rooms::settings::OWNED`).
    Settings,
    Tombstone,
    Membership,
    Message,
    Other,
}

impl Observed {
    /// The outcome stored with the event.
    pub fn outcome(&self) -> String {
        match self {
            Self::OwnMembership(membership) => format!("own_membership:{membership}"),
            other => other.label().into(),
        }
    }

    /// The outcome without its detail (an own membership's kind).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "quarantined",
            Self::OwnEcho => "own_echo",
            Self::OwnMembership(_) => "own_membership",
            Self::PowerLevels => "power_levels",
            Self::Settings => "settings",
            Self::Tombstone => "tombstone",
            Self::Membership => "membership",
            Self::Message => "message",
            Self::Other => "other",
        }
    }

    /// What the store records for the event, carrying this meaning to the batch's follow-up.
    pub fn handled(self) -> Handled<Self> {
        let quarantine = match &self {
            Self::Malformed(reason) => Some(reason.clone()),
            _ => None,
        };
        Handled {
            outcome: self.outcome(),
            quarantine,
            meaning: self,
        }
    }
}

/// A membership's content, as far as it matters here (an event's other fields are skipped).
#[derive(Deserialize)]
struct MembershipEvent<'a> {
    #[serde(borrow)]
    content: Membership<'a>,
}

#[derive(Deserialize)]
struct Membership<'a> {
    #[serde(borrow)]
    membership: std::borrow::Cow<'a, str>,
}

/// What the envelope alone says of an event the processor would do nothing with — an echo of our
/// own users, a chat message, a type the daemon ignores — or `None` for the events it must look
/// at: memberships (the repairs and the members' joins and leaves read them, echoes included) and
/// the state the daemon acts on. The acknowledgement stores a settled event processed, with this
/// outcome, so the processor never reads it back (most of the traffic, the chat, costs no second
/// write).
pub fn settled(
    config: &Config,
    event_type: &str,
    sender: &str,
    state_key: Option<&str>,
) -> Option<Observed> {
    if event_type == "m.room.member" {
        return None;
    }
    if is_ours(config, sender) {
        return Some(Observed::OwnEcho);
    }
    if acted_on(event_type, state_key) {
        return None;
    }
    Some(match event_type {
        "m.room.message" | "m.room.encrypted" | "m.reaction" | "m.room.redaction" => {
            Observed::Message
        }
        _ => Observed::Other,
    })
}

/// Power levels, tombstones and the room settings the daemon owns (`rooms::settings::OWNED`).
fn acted_on(event_type: &str, state_key: Option<&str>) -> bool {
    matches!(event_type, "m.room.power_levels" | "m.room.tombstone")
        || (settings::OWNED.contains(&event_type) && state_key == Some(""))
}

fn is_ours(config: &Config, user: &str) -> bool {
    <&UserId>::try_from(user).is_ok_and(|user| config.is_own_user(user))
}

pub fn classify(config: &Config, event: &PendingEvent) -> Observed {
    let state_key = event.state_key.as_deref();
    if let Some(observed) = settled(config, &event.event_type, &event.sender, state_key) {
        return observed;
    }
    if event.event_type == "m.room.member" {
        if state_key.is_some_and(|user| is_ours(config, user)) {
            if let Err(malformed) = read_fully(event) {
                return malformed;
            }
            return match read_membership(event) {
                Ok(membership) => Observed::OwnMembership(membership.into_owned()),
                Err(malformed) => malformed,
            };
        }
        if is_ours(config, &event.sender) {
            return Observed::OwnEcho;
        }
        return match read_membership(event) {
            Ok(_) => Observed::Membership,
            Err(malformed) => malformed,
        };
    }
    // What is left is acted on: read it whole, as the repairs will.
    if let Err(malformed) = read_fully(event) {
        return malformed;
    }
    match event.event_type.as_str() {
        "m.room.power_levels" => Observed::PowerLevels,
        "m.room.tombstone" => Observed::Tombstone,
        _ => Observed::Settings,
    }
}

/// Parses the whole event with ruma, as the repairs will; reserved for the few events acted on.
fn read_fully(event: &PendingEvent) -> Result<(), Observed> {
    serde_json::from_str::<AnyTimelineEvent>(&event.event_json)
        .map(drop)
        .map_err(|error| malformed(event, error))
}

fn read_membership(event: &PendingEvent) -> Result<std::borrow::Cow<'_, str>, Observed> {
    serde_json::from_str::<MembershipEvent>(&event.event_json)
        .map(|event| event.content.membership)
        .map_err(|error| malformed(event, error))
}

fn malformed(event: &PendingEvent, error: serde_json::Error) -> Observed {
    Observed::Malformed(format!(
        "the {} event is malformed ({error})",
        event.event_type
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::sample::{SampleTokens, render};

    fn config() -> Config {
        Config::from_yaml(
            std::path::Path::new("t.yaml"),
            &render(Some(&SampleTokens::random())),
            [],
        )
        .unwrap()
    }

    fn event(
        event_type: &str,
        sender: &str,
        state_key: Option<&str>,
        content: &str,
    ) -> PendingEvent {
        PendingEvent {
            id: 1,
            homeserver: crate::config::DEFAULT_ID.into(),
            txn_id: "1".into(),
            event_id: "$e".into(),
            room_id: "!r:matrix.openmeet.net".into(),
            event_type: event_type.into(),
            sender: sender.into(),
            state_key: state_key.map(Into::into),
            event_json: {
                let mut json = serde_json::json!({
                    "type": event_type,
                    "event_id": "$e",
                    "room_id": "!r:matrix.openmeet.net",
                    "sender": sender,
                    "origin_server_ts": 1,
                    "content": serde_json::from_str::<serde_json::Value>(content).unwrap(),
                });
                if let Some(state_key) = state_key {
                    json["state_key"] = state_key.into();
                }
                json.to_string()
            },
        }
    }

    #[test]
    fn a_bot_invited_by_a_human_is_its_own_membership() {
        let bot = "@openmeet-bot-lsdfaopkljdfs:matrix.openmeet.net";
        let e = event(
            "m.room.member",
            "@alice:matrix.openmeet.net",
            Some(bot),
            r#"{"membership":"invite"}"#,
        );
        assert_eq!(
            classify(&config(), &e),
            Observed::OwnMembership("invite".into())
        );
    }

    #[test]
    fn our_own_events_are_echoes() {
        let e = event(
            "m.room.power_levels",
            "@openmeet-bot:matrix.openmeet.net",
            Some(""),
            "{}",
        );
        assert_eq!(classify(&config(), &e), Observed::OwnEcho);
    }

    #[test]
    fn a_bot_of_an_unconfigured_tenant_is_not_ours() {
        let stranger = "@openmeet-bot-unknown:matrix.openmeet.net";
        let e = event(
            "m.room.member",
            "@alice:matrix.openmeet.net",
            Some(stranger),
            r#"{"membership":"invite"}"#,
        );
        assert_eq!(classify(&config(), &e), Observed::Membership);
    }

    #[test]
    fn human_events_are_classified_by_type() {
        let alice = "@alice:matrix.openmeet.net";
        assert_eq!(
            classify(
                &config(),
                &event(
                    "m.room.message",
                    alice,
                    None,
                    r#"{"msgtype":"m.text","body":"hi"}"#
                )
            ),
            Observed::Message
        );
        assert_eq!(
            classify(
                &config(),
                &event("m.room.power_levels", alice, Some(""), "{}")
            ),
            Observed::PowerLevels
        );
        assert_eq!(
            classify(
                &config(),
                &event(
                    "m.room.tombstone",
                    alice,
                    Some(""),
                    r#"{"body":"moved","replacement_room":"!new:matrix.openmeet.net"}"#
                )
            ),
            Observed::Tombstone
        );
        assert_eq!(
            classify(&config(), &event("com.example", alice, None, "{}")),
            Observed::Other
        );
    }

    #[test]
    fn owned_settings_changed_by_a_human_are_settings_and_the_bots_own_are_echoes() {
        let alice = "@alice:matrix.openmeet.net";
        let bot = "@openmeet-bot-lsdfaopkljdfs:matrix.openmeet.net";
        for (event_type, content) in [
            ("m.room.name", r#"{"name":"A host's name"}"#),
            ("m.room.topic", r#"{"topic":"A host's topic"}"#),
            ("m.room.join_rules", r#"{"join_rule":"public"}"#),
            (
                "m.room.history_visibility",
                r#"{"history_visibility":"world_readable"}"#,
            ),
            ("m.room.guest_access", r#"{"guest_access":"can_join"}"#),
            (
                "m.room.canonical_alias",
                r##"{"alias":"#x:matrix.openmeet.net"}"##,
            ),
        ] {
            let by_host = event(event_type, alice, Some(""), content);
            assert_eq!(
                classify(&config(), &by_host),
                Observed::Settings,
                "{event_type}"
            );
            let by_bot = event(event_type, bot, Some(""), content);
            assert_eq!(
                classify(&config(), &by_bot),
                Observed::OwnEcho,
                "{event_type}"
            );
        }
        for (event_type, content) in [
            ("m.room.avatar", r#"{"url":"mxc://matrix.openmeet.net/a"}"#),
            ("m.room.pinned_events", r#"{"pinned":[]}"#),
        ] {
            let other = event(event_type, alice, Some(""), content);
            assert_eq!(classify(&config(), &other), Observed::Other, "{event_type}");
        }
    }

    #[test]
    fn content_we_would_act_on_is_quarantined_when_ruma_cannot_read_it() {
        let alice = "@alice:matrix.openmeet.net";
        let bot = "@openmeet-bot-lsdfaopkljdfs:matrix.openmeet.net";
        for (event_type, state_key, content) in [
            ("m.room.power_levels", "", r#"{"users":5}"#),
            ("m.room.tombstone", "", r#"{"body":"moved"}"#),
            ("m.room.name", "", r#"{"name":5}"#),
            ("m.room.member", alice, r#"{"displayname":"no membership"}"#),
            ("m.room.member", bot, r#"{"membership":5}"#),
        ] {
            let observed = classify(
                &config(),
                &event(event_type, alice, Some(state_key), content),
            );
            let handled = observed.handled();
            assert_eq!(handled.outcome, "quarantined", "{event_type} {content}");
            assert!(
                handled
                    .quarantine
                    .is_some_and(|reason| reason.contains(event_type)),
                "{event_type}"
            );
        }
    }

    #[test]
    fn chat_events_are_not_parsed_beyond_the_envelope() {
        let alice = "@alice:matrix.openmeet.net";
        for content in [r#"{"body":"no msgtype"}"#, r#"{"msgtype":5,"body":"x"}"#] {
            let observed = classify(&config(), &event("m.room.message", alice, None, content));
            assert_eq!(observed, Observed::Message, "{content}");
        }
        let unknown = classify(
            &config(),
            &event("com.example", alice, None, r#"{"x":[1]}"#),
        );
        assert_eq!(unknown, Observed::Other);
    }

    #[test]
    fn the_envelope_settles_exactly_what_the_processor_would_do_nothing_with() {
        let alice = "@alice:matrix.openmeet.net";
        let bot = "@openmeet-bot-lsdfaopkljdfs:matrix.openmeet.net";
        let cases = [
            (
                "m.room.message",
                alice,
                None,
                r#"{"body":"no msgtype"}"#,
                true,
            ),
            ("m.reaction", alice, None, "{}", true),
            ("com.example", alice, None, "{}", true),
            ("m.room.avatar", alice, Some(""), "{}", true),
            ("m.room.name", bot, Some(""), r#"{"name":"x"}"#, true),
            ("m.room.power_levels", bot, Some(""), "{}", true),
            // The processor looks at these (members_seen reads the bots' kicks too).
            (
                "m.room.member",
                alice,
                Some(alice),
                r#"{"membership":"join"}"#,
                false,
            ),
            (
                "m.room.member",
                bot,
                Some(alice),
                r#"{"membership":"ban"}"#,
                false,
            ),
            (
                "m.room.member",
                alice,
                Some(bot),
                r#"{"membership":"invite"}"#,
                false,
            ),
            ("m.room.power_levels", alice, Some(""), "{}", false),
            ("m.room.tombstone", alice, Some(""), "{}", false),
            ("m.room.name", alice, Some(""), r#"{"name":"x"}"#, false),
        ];
        let config = config();
        for (event_type, sender, state_key, content, settles) in cases {
            let settled = settled(&config, event_type, sender, state_key);
            assert_eq!(settled.is_some(), settles, "{event_type} by {sender}");
            if let Some(settled) = settled {
                let e = event(event_type, sender, state_key, content);
                assert_eq!(settled, classify(&config, &e), "{event_type} by {sender}");
            }
        }
    }
}
