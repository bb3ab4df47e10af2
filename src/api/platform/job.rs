//! `GET /v1/jobs/{id}`, and the job representation every mutating call answers with.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::auth;
use super::error::PlatformError;
use super::params::TenantErrors;
use crate::app::App;
use crate::store::jobs::{self, Job, JobStatus};

/// A job: what a mutating call queued to carry itself out, and how far it got.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: i64,
    /// What the job does, e.g. `ensure_room`, `teardown_room`, `send_message`, `redact_user`.
    pub kind: String,
    pub status: JobStatus,
    /// How many times it ran.
    pub attempts: i32,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// What a succeeded job produced: `{"event_id"}` for a message, `{"redacted"}` for a
    /// redaction; `null` for the others.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
}

/// The answer of every mutating call: 202 with the job that carries it out.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobAccepted {
    pub job: JobView,
}

/// `{id, kind, status, attempts, last_error, result}`.
pub fn representation(job: &Job) -> JobView {
    let result = job
        .result
        .as_deref()
        .and_then(|text| serde_json::from_str::<Value>(text).ok());
    JobView {
        id: job.id,
        kind: job.kind.clone(),
        status: job.status,
        attempts: job.attempts,
        last_error: job.last_error.clone(),
        result,
    }
}

/// One of the caller's jobs. A job of another tenant is a 403, like the tenant's other calls.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    operation_id = "get_job",
    tag = "jobs",
    params(("id" = i64, Path, description = "The job's id, as a mutating call answered it.")),
    responses(
        (status = 200, description = "The job.", body = JobView),
        TenantErrors,
    ),
    security(("tenant_token" = [])),
)]
pub async fn get(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Json<JobView>, PlatformError> {
    let caller = auth::tenant(&app.config(), &headers)?.id.clone();
    let job = app
        .store
        .run(move |c| jobs::get(c, id))
        .await?
        .ok_or_else(|| PlatformError::NotFound(format!("no job {id}")))?;
    if job.tenant_id != caller {
        return Err(PlatformError::OtherTenant(caller));
    }
    Ok(Json(representation(&job)))
}
