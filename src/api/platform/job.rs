//! `GET /v1/jobs/{id}`, and the job representation every mutating call answers with.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::auth;
use super::error::PlatformError;
use crate::app::App;
use crate::store::jobs::{self, Job};

/// `{id, kind, status, attempts, last_error, result}`.
pub fn representation(job: &Job) -> Value {
    let result = job
        .result
        .as_deref()
        .and_then(|text| serde_json::from_str::<Value>(text).ok());
    json!({
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "attempts": job.attempts,
        "last_error": job.last_error,
        "result": result,
    })
}

pub async fn get(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Json<Value>, PlatformError> {
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
