//! `forward_report`: makes sure a report stored for the tenant (DESIGN §7.3) also reached the
//! homeserver's admins. Queued with the report, due a minute later; by then the reporter's own
//! forward has normally succeeded (or been refused) and the job ends at once. Otherwise the
//! homeserver did not answer then, and the tenant bot reports the event (or room) itself, naming
//! the reporter in the reason: the reporter's token is never kept. Running again after a success
//! finds the report marked and does nothing.

use std::sync::Arc;

use ruma::{OwnedEventId, OwnedRoomId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::JobError;
use crate::app::App;
use crate::store::jobs::{Job, NewJob};
use crate::store::reports::{self, Report};
use crate::store::unix_ms;

pub const KIND: &str = "forward_report";

/// The label of a report forwarded with the reporter's token in the homeserver metrics.
pub const ENDPOINT: &str = "forward_report";

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    report: i64,
}

/// The job for stored `report`. It names no room: a room's jobs run one at a time, and this one
/// waits a minute before it may run.
pub fn new_job(report: &Report) -> NewJob {
    NewJob {
        tenant_id: report.tenant_id.clone(),
        room_key: None,
        kind: KIND.to_owned(),
        payload: serde_json::to_value(Payload { report: report.id }).expect("a payload serializes"),
    }
}

/// The reason the tenant bot gives when it reports on the reporter's behalf.
pub fn reason_on_behalf(report: &Report) -> String {
    match &report.reason {
        Some(reason) => format!("Reported by {} through OpenMeet: {reason}", report.reporter),
        None => format!("Reported by {} through OpenMeet", report.reporter),
    }
}

pub async fn run(app: &Arc<App>, job: &Job) -> Result<Value, JobError> {
    let Payload { report: id } = super::payload(job)?;
    let Some(report) = app.store.run(move |c| reports::get(c, id)).await? else {
        return Ok(json!({"forwarded": false, "why": "the report is no longer kept"}));
    };
    if report.forwarded_at.is_some() {
        return Ok(json!({"forwarded": true, "by": "reporter"}));
    }
    let room_id = OwnedRoomId::try_from(report.room_id.as_str()).map_err(|error| {
        JobError::Permanent(format!(
            "the report's room id is not valid ({error}): cancel the job"
        ))
    })?;
    let event_id = match &report.event_id {
        Some(event_id) => Some(OwnedEventId::try_from(event_id.as_str()).map_err(|error| {
            JobError::Permanent(format!(
                "the report's event id is not valid ({error}): cancel the job"
            ))
        })?),
        None => None,
    };
    let bot = super::tenant_bot(app, job).await?;
    app.client_for(&bot)
        .report_as(&bot, room_id, event_id, reason_on_behalf(&report))
        .await?;
    let now = unix_ms(app.clock.now());
    app.store
        .write_in_background(move |c| reports::mark_forwarded(c, id, None, now))
        .await?;
    Ok(json!({"forwarded": true, "by": "tenant_bot"}))
}
