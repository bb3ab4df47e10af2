//! `POST /_openmeet/antispam/ping` `{id}` → `{id, status: "ok"}`: the module's `do_ping` at
//! Synapse's start, proving the URL and the token.

use axum::Json;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
pub struct Ping {
    id: String,
}

#[tracing::instrument(name = "antispam.ping", skip_all)]
pub async fn handler(Json(ping): Json<Ping>) -> Json<Value> {
    tracing::info!("answered the antispam module's ping");
    Json(json!({"id": ping.id, "status": "ok"}))
}
