//! The inbox processor: takes stored events oldest first, records what each one is, and marks it
//! processed in the same database transaction (a crash leaves the batch pending, so nothing is
//! lost; a batch is never half-marked). One process works the inbox at a time, which keeps every
//! room in order.
//!
//! Events are classified from their stored envelope (type, sender, state key); only the content of
//! the types something is done about — memberships, power levels, tombstones, the settings the
//! daemon owns — is read, and quarantined when it cannot be. Chat messages, most of the traffic,
//! are never parsed beyond the envelope the acknowledgement checked.
//!
//! Actions on what the events mean (repairs, upgrades, declining invites) come with the rooms work;
//! the classification here is what they will dispatch on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ruma::UserId;
use ruma::events::AnyTimelineEvent;
use serde::Deserialize;
use tokio::sync::watch;

use crate::app::App;
use crate::config::Config;
use crate::observability::metrics::Metrics;
use crate::rooms::settings;
use crate::store::inbox::{self, Handled, PendingEvent};
use crate::store::unix_ms;

/// Events per database transaction.
const BATCH: i64 = 500;
/// How long the processor lets a burst gather once woken: under a steady stream of transactions it
/// would otherwise wake, read, classify and commit once for every one of them.
const GATHER: Duration = Duration::from_millis(3);
/// How often the processor looks for work without being woken (events stored by another replica).
const POLL: Duration = Duration::from_secs(1);
/// How often housekeeping runs while the processor is busy.
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// How often at most when it goes idle (under a steady trickle of transactions it goes idle after
/// every one, and a checkpoint each time would cost more than the events).
const IDLE_HOUSEKEEPING: Duration = Duration::from_millis(100);

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
            Self::Malformed(_) => "quarantined".into(),
            Self::OwnEcho => "own_echo".into(),
            Self::OwnMembership(membership) => format!("own_membership:{membership}"),
            Self::PowerLevels => "power_levels".into(),
            Self::Settings => "settings".into(),
            Self::Tombstone => "tombstone".into(),
            Self::Membership => "membership".into(),
            Self::Message => "message".into(),
            Self::Other => "other".into(),
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

pub fn classify(config: &Config, event: &PendingEvent) -> Observed {
    let is_ours = |user: &str| <&UserId>::try_from(user).is_ok_and(|user| config.is_own_user(user));
    let is_setting = |event_type: &str| {
        settings::OWNED.contains(&event_type) && event.state_key.as_deref() == Some("")
    };
    match event.event_type.as_str() {
        "m.room.member" if event.state_key.as_deref().is_some_and(is_ours) => {
            if let Err(malformed) = read_fully(event) {
                return malformed;
            }
            match read_membership(event) {
                Ok(membership) => Observed::OwnMembership(membership.into_owned()),
                Err(malformed) => malformed,
            }
        }
        _ if is_ours(&event.sender) => Observed::OwnEcho,
        "m.room.member" => match read_membership(event) {
            Ok(_) => Observed::Membership,
            Err(malformed) => malformed,
        },
        acted_on
            if matches!(acted_on, "m.room.power_levels" | "m.room.tombstone")
                || is_setting(acted_on) =>
        {
            if let Err(malformed) = read_fully(event) {
                return malformed;
            }
            match acted_on {
                "m.room.power_levels" => Observed::PowerLevels,
                "m.room.tombstone" => Observed::Tombstone,
                _ => Observed::Settings,
            }
        }
        "m.room.message" | "m.room.encrypted" | "m.reaction" | "m.room.redaction" => {
            Observed::Message
        }
        _ => Observed::Other,
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

/// Works the inbox until `shutdown` turns true.
pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut last_housekeeping = Instant::now();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let worked = match process_batch(&app).await {
            Ok(count) => count,
            Err(error) => {
                tracing::warn!(%error, "the inbox processor could not reach the database; retrying");
                0
            }
        };
        let due = if worked == 0 {
            IDLE_HOUSEKEEPING
        } else {
            HOUSEKEEPING
        };
        if last_housekeeping.elapsed() >= due {
            housekeeping(&app).await;
            last_housekeeping = Instant::now();
        }
        if worked > 0 {
            app.webhooks_wakeup.notify_one();
        }
        if worked == 0 {
            tokio::select! {
                _ = app.inbox_wakeup.notified() => tokio::time::sleep(GATHER).await,
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// Processes one batch; returns how many events it handled.
pub async fn process_batch(app: &Arc<App>) -> Result<usize, crate::store::StoreError> {
    let config = app.config().clone();
    let now = unix_ms(app.clock.now());
    let processed = app
        .store
        .process_inbox(
            BATCH,
            now,
            {
                let config = config.clone();
                move |event| classify(&config, event).handled()
            },
            super::repairs::follow_up(config, now),
        )
        .await?;
    let debug = tracing::enabled!(tracing::Level::DEBUG);
    // Counted per label once per batch, not per event.
    let mut by_label: Vec<(&str, u64)> = Vec::new();
    for (event, handled) in &processed {
        if handled.quarantine.is_some() || debug {
            let _span = tracing::warn_span!("inbox.event", room_id = %event.room_id, event_id = %event.event_id).entered();
            match &handled.quarantine {
                Some(reason) => {
                    app.metrics.events_quarantined.inc();
                    tracing::warn!(%reason, "quarantined");
                }
                None => {
                    tracing::debug!(event_type = %event.event_type, outcome = %handled.outcome, "processed")
                }
            }
        }
        let label = Metrics::event_type_label(&event.event_type);
        match by_label.iter_mut().find(|(known, _)| *known == label) {
            Some((_, count)) => *count += 1,
            None => by_label.push((label, 1)),
        }
    }
    for (label, count) in by_label {
        app.metrics
            .events_processed
            .with_label_values(&[label])
            .inc_by(count);
    }
    Ok(processed.len())
}

/// Between batches, not on the request path: the depth gauges, and SQLite's WAL checkpoint.
async fn housekeeping(app: &Arc<App>) {
    if let Err(error) = app.store.checkpoint().await {
        tracing::warn!(%error, "could not checkpoint the SQLite write-ahead log");
    }
    if let Ok((pending, oldest)) = app.store.run(inbox::pending_summary).await {
        app.metrics.inbox_depth.set(pending);
        let age = oldest.map_or(0.0, |oldest| {
            (unix_ms(app.clock.now()) - oldest).max(0) as f64 / 1000.0
        });
        app.metrics.inbox_oldest_age_seconds.set(age);
    }
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
}
