//! Reports that reach the tenant (DESIGN §7.3 "Across the tenant"). A reverse proxy routes
//! Synapse's three report endpoints to the daemon (`api/client`); this decides what becomes of a
//! report:
//!
//! - A room we do not manage, a user report, or a body the homeserver would refuse is passed
//!   straight through (`pass_through`): the homeserver's answer is the answer.
//! - For a managed room: the reporter's token is checked with the room's homeserver (`whoami`),
//!   their membership and the reported event are read as the tenant bot, and the report is stored
//!   with its `report.created` event and a `forward_report` job in one transaction. Then it is
//!   forwarded with the reporter's own token and the homeserver's answer is the answer. When the
//!   homeserver does not answer, the report stays stored, the client gets `200 {}`, and the job
//!   reports it as the tenant bot at once, retried until the homeserver answers (the reporter's
//!   token is never stored). Queued for a minute later, the job also covers a crash between
//!   storing and forwarding.

mod check;
mod homeserver;

use std::sync::Arc;
use std::time::Duration;

use ruma::{OwnedEventId, OwnedRoomId};
use serde_json::Value;

use crate::app::App;
use crate::jobs::forward_report;
use crate::matrix;
pub use crate::matrix::FORWARDED_HEADER;
use crate::store::outbox_data::{EventData, ReportCreated, ReportedEvent};
use crate::store::reports::{self, NewReport};
use crate::store::{StoreError, unix_ms};

/// How long the `forward_report` job waits before it checks that the report reached the
/// homeserver: the reporter's own forward is done well within it.
pub const FORWARD_CHECK_AFTER: Duration = Duration::from_secs(60);

/// Synapse's answer to a report of an event that does not exist or the reporter may not see.
pub const EVENT_NOT_FOUND: &str =
    "Unable to report event: it does not exist or you aren't able to see it.";

/// A report as the client sent it.
pub struct Report {
    /// The room id from the path, as sent.
    pub room_id: String,
    /// The event id from the path, as sent; `None`: the room itself is reported.
    pub event_id: Option<String>,
    /// The request's path (`/_matrix/client/v3/…`), forwarded as it is.
    pub path: String,
    /// The reporter's access token. Never logged, never stored.
    pub access_token: String,
    /// The request's `Host`, which picks the homeserver of a report passed through.
    pub host: Option<String>,
    pub body: Vec<u8>,
}

/// What the client is answered.
#[derive(Debug)]
pub enum Answer {
    /// The homeserver's own answer (status and JSON body), passed back as it is.
    Homeserver { status: u16, body: Vec<u8> },
    /// Stored for the tenant while the homeserver did not answer; `forward_report` forwards it.
    Stored,
    /// The report is refused as the homeserver would refuse it: 404 `M_NOT_FOUND`.
    NotFound(&'static str),
    /// The homeserver could not be reached, so the reporter could not be checked.
    Unavailable(String),
    /// The database could not be reached.
    Database(StoreError),
}

/// Carries out a report of a room or one of its events.
pub async fn report_room(app: &Arc<App>, report: Report) -> Answer {
    // Ids the homeserver cannot know get its own answer.
    let Ok(room_id) = OwnedRoomId::try_from(report.room_id.as_str()) else {
        return pass_through(app, &report).await;
    };
    let event_id = match report.event_id.as_deref().map(OwnedEventId::try_from) {
        Some(Ok(event_id)) => Some(event_id),
        Some(Err(_)) => return pass_through(app, &report).await,
        None => None,
    };
    let room_id_text = room_id.to_string();
    let managed = app
        .store
        .run(move |c| crate::store::rooms::find_live_by_room_id(c, &room_id_text))
        .await;
    let room = match managed {
        Ok(Some(room)) => room,
        Ok(None) => return pass_through(app, &report).await,
        Err(error) => return Answer::Database(error),
    };
    let config = app.config();
    let Some(tenant) = config.tenant(&room.tenant_id) else {
        return pass_through(app, &report).await;
    };
    let Some(body) = check::Body::parse(&report.body, report.event_id.is_some()) else {
        // Synapse answers a body it cannot use with its own error.
        return pass_through(app, &report).await;
    };
    let client = homeserver::of_room(app, &room.homeserver);
    let reporter = match client.whoami_with_token(&report.access_token).await {
        Ok(user_id) => user_id,
        Err(error) => return homeserver_refusal(error),
    };
    let bot = config.bot_user_id(tenant);
    let event = match check::reporter_and_event(&client, &bot, &room_id, event_id, &reporter).await
    {
        Ok(check::Checked::Event(event)) => event,
        Ok(check::Checked::NotAMember) if report.event_id.is_none() => {
            // Anyone may report a room to Synapse; the tenant hears from its members only.
            return pass_through(app, &report).await;
        }
        Ok(check::Checked::NotAMember | check::Checked::NoEvent) => {
            return Answer::NotFound(EVENT_NOT_FOUND);
        }
        // The tenant bot may not look (it lost the room): Synapse decides alone.
        Err(error)
            if error
                .status()
                .is_some_and(|status| (400..500).contains(&status)) =>
        {
            tracing::warn!(%error, "the tenant bot could not check a report; passed through");
            return pass_through(app, &report).await;
        }
        Err(error) => return Answer::Unavailable(error.to_string()),
    };
    let stored = NewReport {
        tenant_id: room.tenant_id.clone(),
        room_kind: room.kind.as_str().to_owned(),
        room_slug: room.slug.clone(),
        room_id: room_id.to_string(),
        event_id: report.event_id.clone(),
        reporter: reporter.to_string(),
        reason: body.reason.clone(),
        score: body.score,
        event_sender: event.as_ref().map(|e| e.sender.clone()),
        event_type: event.as_ref().map(|e| e.event_type.clone()),
        event_content: event.as_ref().map(|e| e.content.to_string()),
    };
    let now = unix_ms(app.clock.now());
    let forward_at = now + FORWARD_CHECK_AFTER.as_millis() as i64;
    let created = app
        .store
        .write(move |c| {
            reports::create(
                c,
                &stored,
                |report| created_event(report, event),
                forward_report::new_job,
                now,
                forward_at,
            )
        })
        .await;
    let (report_id, job_id) = match created {
        Ok((stored, job)) => (stored.id, job.id),
        Err(error) => return Answer::Database(error),
    };
    app.webhooks_wakeup.notify_one();
    tracing::info!(report = report_id, tenant = %room.tenant_id, "a member reported a managed room or event");
    forward(app, &client, &report, report_id, job_id).await
}

/// Passes a user report straight through: the homeserver keeps it (DESIGN §7.3; the tenant is
/// not told, as a user is not a room of the tenant).
pub async fn report_user(app: &Arc<App>, report: Report) -> Answer {
    pass_through(app, &report).await
}

/// Forwards stored report `report_id` with the reporter's token and records how that ended;
/// when the homeserver does not answer, its `forward_report` job `job_id` takes over now.
async fn forward(
    app: &Arc<App>,
    client: &matrix::Client,
    report: &Report,
    report_id: i64,
    job_id: i64,
) -> Answer {
    let forwarded = client
        .forward_as_user(
            forward_report::ENDPOINT,
            &report.path,
            &report.access_token,
            report.body.clone(),
        )
        .await;
    let (status, body) = match forwarded {
        Ok(answer) => answer,
        Err(error) => {
            tracing::warn!(report = report_id, %error, "the homeserver did not take the report; it is stored and forward_report reports it");
            let now = unix_ms(app.clock.now());
            let due = app
                .store
                .write(move |c| reports::forward_now(c, job_id, now))
                .await;
            if let Err(error) = due {
                tracing::warn!(report = report_id, %error, "could not make forward_report due now; it runs at its time");
            }
            app.jobs_wakeup.notify_one();
            return Answer::Stored;
        }
    };
    let refusal = (!(200..300).contains(&status)).then(|| {
        format!(
            "{status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )
    });
    let now = unix_ms(app.clock.now());
    let marked = app
        .store
        .write(move |c| reports::mark_forwarded(c, report_id, refusal.as_deref(), now))
        .await;
    if let Err(error) = marked {
        // The job finds it unmarked and reports it again as the tenant bot: a duplicate for the
        // homeserver's admins, nothing lost.
        tracing::warn!(report = report_id, %error, "could not record that the report was forwarded");
    }
    Answer::Homeserver { status, body }
}

/// Sends the request on to the homeserver as it came, with the reporter's token.
async fn pass_through(app: &Arc<App>, report: &Report) -> Answer {
    let client = homeserver::for_host(app, report.host.as_deref());
    match client
        .forward_as_user(
            forward_report::ENDPOINT,
            &report.path,
            &report.access_token,
            report.body.clone(),
        )
        .await
    {
        Ok((status, body)) => Answer::Homeserver { status, body },
        Err(error) => Answer::Unavailable(error.to_string()),
    }
}

/// The homeserver's refusal passed back as it is (an unknown token: 401 `M_UNKNOWN_TOKEN`), or
/// unavailability when it did not answer.
fn homeserver_refusal(error: matrix::Error) -> Answer {
    match error {
        matrix::Error::Matrix { status, body, .. } if (400..500).contains(&status) => {
            Answer::Homeserver {
                status,
                body: body.to_string().into_bytes(),
            }
        }
        other => Answer::Unavailable(other.to_string()),
    }
}

fn created_event(report: &reports::Report, event: Option<ReportedEvent>) -> EventData {
    EventData::ReportCreated(ReportCreated {
        report: report.id,
        room_id: report.room_id.clone(),
        event_id: report.event_id.clone(),
        reporter: report.reporter.clone(),
        reason: report.reason.clone(),
        score: report.score,
        event,
    })
}

/// The reported event's parts the tenant is told.
fn reported_event(event: &Value) -> ReportedEvent {
    ReportedEvent {
        sender: event["sender"].as_str().unwrap_or_default().to_owned(),
        event_type: event["type"].as_str().unwrap_or_default().to_owned(),
        content: event
            .get("content")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({})),
    }
}
