//! `redact_user`: redacts a user's recent events in a room or in every managed room of the
//! tenant. Built on another branch; this placeholder gives the moderation calls its constructor.

use std::sync::Arc;

use serde_json::{Value, json};

use super::JobError;
use crate::app::App;
use crate::store::jobs::{Job, NewJob};

pub const KIND: &str = "redact_user";

/// The job that redacts `user_id`'s events since `since_ms` in room `room_key` (`None`: every
/// managed room of the tenant).
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

pub async fn run(_app: &Arc<App>, _job: &Job) -> Result<Value, JobError> {
    Err(JobError::Permanent(
        "redaction is not built yet in this version of the daemon".into(),
    ))
}
