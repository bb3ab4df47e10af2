//! `redact_user`: removes a user's recent events (DESIGN §7.3). With a room, the tenant's bot pages
//! the room's timeline newest first with a sender filter and redacts the user's events one at a
//! time back to `since`; without one (tenant-wide), the job queues one such job per managed room
//! of the tenant, once.
//!
//! What is redacted: the user's message-like events (messages, reactions, stickers, encrypted
//! events…). Never state events (a membership or a power level redacted would change the room),
//! never redactions, never an event already redacted, never anyone else's event — the bots' own
//! least of all (the platform API refuses our users; the job checks every sender again).
//!
//! Resumable: the payload keeps the page being worked (`from`), the count, and the event whose
//! redaction was sent but not yet counted (`pending`), saved before and after each redaction. Each
//! redaction's txnId comes from the job and the event id, so one sent again after a crash or a
//! rate limit (`M_LIMIT_EXCEEDED`: the worker waits `retry_after_ms`) is the same redaction.

use std::sync::Arc;

use ruma::{OwnedTransactionId, OwnedUserId, RoomId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::JobError;
use crate::app::App;
use crate::matrix::{self, RetryKind, RoomConnection};
use crate::store::jobs::{self, Job, NewJob};
use crate::store::rooms as room_store;

pub const KIND: &str = "redact_user";

/// Events asked for per `/messages` page.
const PAGE: u32 = 50;

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    user_id: String,
    /// Unix ms: events stamped earlier stay.
    since_ms: i64,
    reason: String,
    #[serde(default)]
    progress: Progress,
}

/// How far the job got.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    /// Where the page being worked starts (`None`: the newest end of the timeline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(default)]
    redacted: u64,
    /// The event whose redaction was sent last and is not yet counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<String>,
    /// Tenant-wide: the room jobs queued, once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rooms: Option<Vec<Value>>,
}

/// Redacts `user_id`'s events since `since_ms` in the room `room_key`, or (`None`) in every
/// managed room of the tenant.
pub fn new_job(
    tenant_id: &str,
    room_key: Option<i64>,
    user_id: &str,
    since_ms: i64,
    reason: &str,
) -> NewJob {
    NewJob {
        tenant_id: tenant_id.to_owned(),
        room_key,
        kind: KIND.to_owned(),
        payload: json!({"user_id": user_id, "since_ms": since_ms, "reason": reason}),
    }
}

pub async fn run(app: &Arc<App>, job: &Job) -> Result<Value, JobError> {
    let payload: Payload = super::payload(job)?;
    let user = OwnedUserId::try_from(payload.user_id.as_str())
        .map_err(|error| JobError::Permanent(format!("user_id: {error}: cancel the job")))?;
    if app.config().is_own_user(&user) {
        return Err(JobError::Permanent(format!(
            "{user} is one of the appservice's own users, whose events are never redacted: cancel the job"
        )));
    }
    match job.room_key {
        Some(room_key) => in_room(app, job, payload, room_key, &user).await,
        None => fan_out(app, job, payload).await,
    }
}

/// Queues one room job per managed room of the tenant (live, created in Synapse), in the
/// transaction that records them in this job: a second attempt answers with the same jobs.
async fn fan_out(app: &Arc<App>, job: &Job, mut payload: Payload) -> Result<Value, JobError> {
    if let Some(rooms) = &payload.progress.rooms {
        return Ok(json!({"rooms": rooms}));
    }
    let (id, tenant, owner) = (
        job.id,
        job.tenant_id.clone(),
        app.config().jobs.worker_id.clone(),
    );
    let now = crate::store::unix_ms(app.clock.now());
    let claimed: Value = serde_json::from_str(&job.payload).unwrap_or(Value::Null);
    let rooms = app
        .store
        .write_in_background(move |c| {
            c.write(|c| {
                // Confirms the lease (and locks the row) before anything is queued.
                if !jobs::save_progress(c, id, &owner, &claimed)? {
                    return Ok(None);
                }
                let mut managed = room_store::list(c, Some(&tenant), None, i64::MAX)?;
                managed.retain(|room| room.status.is_live() && room.room_id.is_some());
                managed.reverse();
                let mut queued = Vec::new();
                for room in managed {
                    let room_job = new_job(
                        &tenant,
                        Some(room.id),
                        &payload.user_id,
                        payload.since_ms,
                        &payload.reason,
                    );
                    let room_job = jobs::enqueue(c, &room_job, now)?;
                    queued.push(json!({"kind": room.kind, "slug": room.slug, "job": room_job.id}));
                }
                payload.progress.rooms = Some(queued.clone());
                jobs::save_progress(c, id, &owner, &to_value(&payload))?;
                Ok(Some(queued))
            })
        })
        .await?
        .ok_or_else(lease_lapsed)?;
    app.jobs_wakeup.notify_one();
    Ok(json!({"rooms": rooms}))
}

/// Where a job's progress is kept between its attempts.
#[allow(
    async_fn_in_trait,
    reason = "used by the crate's own jobs, never as a trait object"
)]
trait Checkpoint {
    /// Saves `payload` as the job's; the job's failure when this worker no longer holds it.
    async fn save(&self, payload: &Payload) -> Result<(), JobError>;
}

/// The job's row, while this worker holds its lease.
struct JobRow<'a> {
    app: &'a App,
    job: &'a Job,
}

impl Checkpoint for JobRow<'_> {
    async fn save(&self, payload: &Payload) -> Result<(), JobError> {
        let (id, owner) = (self.job.id, self.app.config().jobs.worker_id.clone());
        let payload = to_value(payload);
        let held = (self.app.store)
            .write_in_background(move |c| jobs::save_progress(c, id, &owner, &payload))
            .await?;
        if held { Ok(()) } else { Err(lease_lapsed()) }
    }
}

async fn in_room(
    app: &Arc<App>,
    job: &Job,
    payload: Payload,
    room_key: i64,
    user: &OwnedUserId,
) -> Result<Value, JobError> {
    let room = app.store.run(move |c| room_store::get(c, room_key)).await?;
    let Some(room_id) = room
        .filter(|room| room.status.is_live())
        .and_then(|room| room.room_id)
    else {
        return Ok(json!({
            "redacted": payload.progress.redacted,
            "note": "the room is deleted or was never created in Synapse: nothing to redact",
        }));
    };
    let room_id =
        RoomId::parse(&room_id).map_err(|error| JobError::Permanent(error.to_string()))?;
    let bot = super::tenant_bot(app, job).await?;
    let homeserver = app.client_for(&bot);
    Redaction {
        homeserver: &*homeserver,
        checkpoint: &JobRow { app, job },
        outcomes: &app.metrics.redactions,
        bot: &bot,
        room_id: &room_id,
        user,
        txn_prefix: &job.txn_prefix,
        page: PAGE,
        payload,
    }
    .run()
    .await
}

/// One room's redaction, with the job's progress.
struct Redaction<'a, H, C> {
    homeserver: &'a H,
    checkpoint: &'a C,
    /// `redactions_total` by outcome.
    outcomes: &'a prometheus::IntCounterVec,
    bot: &'a UserId,
    room_id: &'a RoomId,
    user: &'a OwnedUserId,
    txn_prefix: &'a str,
    /// Events asked for per page.
    page: u32,
    payload: Payload,
}

impl<H: RoomConnection, C: Checkpoint> Redaction<'_, H, C> {
    async fn run(mut self) -> Result<Value, JobError> {
        let user = self.user;
        loop {
            let from = self.payload.progress.from.clone();
            let page = (self.homeserver)
                .events_by_sender(self.bot, self.room_id, user, from.clone(), self.page)
                .await?;
            for event in &page.events {
                if event.origin_server_ts < self.payload.since_ms {
                    return Ok(self.done());
                }
                if event.sender != *user
                    || event.is_state()
                    || event.event_type == "m.room.redaction"
                {
                    continue;
                }
                self.redact(event).await?;
            }
            match page.end {
                Some(end) if Some(&end) != from.as_ref() => {
                    self.payload.progress.from = Some(end);
                    self.checkpoint.save(&self.payload).await?;
                }
                _ => return Ok(self.done()),
            }
        }
    }

    /// Redacts `event` unless it is already; counts it once, whichever attempt sent it.
    async fn redact(&mut self, event: &matrix::TimelineEvent) -> Result<(), JobError> {
        let event_id = event.event_id.to_string();
        let was_pending = self.payload.progress.pending.as_deref() == Some(event_id.as_str());
        if event.is_redacted() {
            if was_pending {
                // Sent by an attempt that stopped before it could count it.
                self.payload.progress.pending = None;
                self.payload.progress.redacted += 1;
                self.checkpoint.save(&self.payload).await?;
            }
            return Ok(());
        }
        if !was_pending {
            self.payload.progress.pending = Some(event_id.clone());
            self.checkpoint.save(&self.payload).await?;
        }
        let txn_id = txn_id(self.txn_prefix, &event_id);
        let reason = &self.payload.reason;
        match (self.homeserver)
            .redact(self.bot, self.room_id, &event.event_id, txn_id, reason)
            .await
        {
            Ok(_) => self.outcomes.with_label_values(&["redacted"]).inc(),
            Err(error) => {
                let outcome = match error.retry_kind() {
                    RetryKind::RateLimited(_) => "rate_limited",
                    _ => "failed",
                };
                self.outcomes.with_label_values(&[outcome]).inc();
                return Err(error.into());
            }
        }
        self.payload.progress.pending = None;
        self.payload.progress.redacted += 1;
        self.checkpoint.save(&self.payload).await
    }

    fn done(&self) -> Value {
        json!({"redacted": self.payload.progress.redacted})
    }
}

fn to_value(payload: &Payload) -> Value {
    serde_json::to_value(payload).unwrap_or(Value::Null)
}

/// The txnId of the job's redaction of `event_id`: the same on every attempt, distinct across
/// jobs (the prefix is the job's own) and events.
fn txn_id(txn_prefix: &str, event_id: &str) -> OwnedTransactionId {
    let digest = Sha256::digest(event_id.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    OwnedTransactionId::from(format!("{txn_prefix}.redact.{hex}"))
}

fn lease_lapsed() -> JobError {
    JobError::Permanent(
        "this worker's lease on the job lapsed and another worker continues it".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_ids_are_per_job_and_event_and_stable() {
        let one = txn_id("abc", "$event1");
        assert_eq!(one, txn_id("abc", "$event1"));
        assert_ne!(one, txn_id("abc", "$event2"));
        assert_ne!(one, txn_id("abd", "$event1"));
        assert!(
            one.as_str()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.'),
            "{one}"
        );
    }

    #[test]
    fn payload_reads_with_or_without_progress() {
        let job = new_job("t", Some(1), "@u:s", 5, "spam");
        let payload: Payload = serde_json::from_value(job.payload).unwrap();
        assert_eq!(payload.progress.redacted, 0);
        let saved = json!({"user_id": "@u:s", "since_ms": 5, "reason": "spam",
            "progress": {"from": "t1", "redacted": 3, "pending": "$e"}});
        let payload: Payload = serde_json::from_value(saved).unwrap();
        assert_eq!(payload.progress.from.as_deref(), Some("t1"));
        assert_eq!(payload.progress.pending.as_deref(), Some("$e"));
    }

    mod resumed {
        use std::sync::Mutex;

        use super::super::*;
        use crate::matrix::memory::{Event, Fault, Homeserver, World};

        const BOT: &str = "@openmeet-bot-tenanta:hs.test";
        const SPAMMER: &str = "@spammer:hs.test";
        const SINCE: i64 = 1_000;

        /// The job's row: the payload as last saved.
        struct Saved(Mutex<Value>);

        impl Checkpoint for Saved {
            async fn save(&self, payload: &Payload) -> Result<(), JobError> {
                *self.0.lock().unwrap() = to_value(payload);
                Ok(())
            }
        }

        fn event(n: usize, sender: &str, event_type: &str, ts: i64, state: bool) -> Event {
            Event {
                event_id: format!("$e{n}"),
                sender: sender.to_owned(),
                event_type: event_type.to_owned(),
                origin_server_ts: ts,
                state,
                redactions: 0,
            }
        }

        /// Newest first: the spammer's five messages and reaction since `SINCE`, among their
        /// membership, an earlier redaction of theirs, someone else's message and one message
        /// from before `SINCE`.
        fn timeline() -> World {
            let mut timeline = Vec::new();
            for n in 0..5 {
                timeline.push(event(n, SPAMMER, "m.room.message", 2_000 - n as i64, false));
            }
            timeline.insert(2, event(10, SPAMMER, "m.room.member", 1_990, true));
            timeline.insert(
                3,
                event(11, "@host:hs.test", "m.room.message", 1_985, false),
            );
            timeline.insert(4, event(12, SPAMMER, "m.room.redaction", 1_980, false));
            timeline.push(event(13, SPAMMER, "m.reaction", 1_500, false));
            timeline.push(event(14, SPAMMER, "m.room.message", 999, false));
            World {
                timeline,
                ..World::default()
            }
        }

        /// The ids of the events the job must redact.
        const DUE: [&str; 6] = ["$e0", "$e1", "$e2", "$e3", "$e4", "$e13"];

        fn payload() -> Value {
            json!({"user_id": SPAMMER, "since_ms": SINCE, "reason": "spam"})
        }

        /// One attempt of the job from the payload last saved.
        async fn attempt(homeserver: &Homeserver, saved: &Saved) -> Result<Value, JobError> {
            let payload = serde_json::from_value(saved.0.lock().unwrap().clone()).unwrap();
            let outcomes = prometheus::IntCounterVec::new(
                prometheus::Opts::new("redactions_total", "test"),
                &["outcome"],
            )
            .unwrap();
            let (bot, user) = (UserId::parse(BOT).unwrap(), UserId::parse(SPAMMER).unwrap());
            let room_id = RoomId::parse("!party:hs.test").unwrap();
            Redaction {
                homeserver,
                checkpoint: saved,
                outcomes: &outcomes,
                bot: &bot,
                room_id: &room_id,
                user: &user,
                txn_prefix: "job7",
                page: 2,
                payload,
            }
            .run()
            .await
        }

        fn redactions(world: &World) -> Vec<(String, usize)> {
            (world.timeline.iter())
                .filter(|e| e.redactions > 0)
                .map(|e| (e.event_id.clone(), e.redactions))
                .collect()
        }

        #[tokio::test]
        async fn only_the_users_message_like_events_since_the_date_are_redacted_once() {
            let homeserver = Homeserver::new(timeline(), None);
            let saved = Saved(Mutex::new(payload()));
            let result = attempt(&homeserver, &saved).await.unwrap();
            assert_eq!(result, json!({"redacted": 6}));
            let expected: Vec<(String, usize)> = DUE.iter().map(|id| (id.to_string(), 1)).collect();
            assert_eq!(redactions(&homeserver.world()), expected);
            let again = attempt(&homeserver, &saved).await.unwrap();
            assert_eq!(
                again,
                json!({"redacted": 6}),
                "a finished job counts nothing twice"
            );
            assert_eq!(redactions(&homeserver.world()), expected);
        }

        #[tokio::test]
        async fn a_redaction_cut_short_at_any_call_resumes_and_redacts_and_counts_each_event_once()
        {
            let calls = {
                let homeserver = Homeserver::new(timeline(), None);
                let saved = Saved(Mutex::new(payload()));
                attempt(&homeserver, &saved).await.unwrap();
                homeserver.calls()
            };
            assert!(calls > DUE.len(), "{calls}");
            let expected: Vec<(String, usize)> = DUE.iter().map(|id| (id.to_string(), 1)).collect();
            for n in 0..calls {
                for fault in [Fault::Before(n), Fault::After(n)] {
                    let homeserver = Homeserver::new(timeline(), Some(fault));
                    let saved = Saved(Mutex::new(payload()));
                    assert!(attempt(&homeserver, &saved).await.is_err(), "{fault:?}");
                    // The worker runs the job again, from what the failed attempt saved.
                    let resumed = Homeserver::new(homeserver.world(), None);
                    let result = attempt(&resumed, &saved).await.unwrap();
                    assert_eq!(result, json!({"redacted": 6}), "{fault:?}");
                    assert_eq!(redactions(&resumed.world()), expected, "{fault:?}");
                }
            }
        }
    }
}
