//! Synapse's `synapse-http-antispam` module → us (DESIGN §7.3, "Rules before send"): the callbacks
//! it POSTs to `{base_url}/{callback}`, served on the appservice listener under
//! `/_openmeet/antispam/`.
//!
//! Module: <https://pypi.org/project/synapse-http-antispam/> (0.5.1). Any 2xx allows; another
//! status with a JSON body refuses, the body going to the client; anything else (a non-JSON
//! answer, no answer) is a failure, on which Synapse does what the operator's `fail_open` says.
//! So every decision is JSON, and every non-decision (a wrong token, an unreadable body, the
//! database away) is plain text: the daemon never decides by accident what `fail_open` should.
//!
//! Callbacks other than the four below (an operator who left `enabled_callbacks` out) are allowed.

mod auth;
mod check_event_for_spam;
mod decision;
mod ping;
mod user_may_invite;
mod user_may_join_room;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;

use crate::app::App;

/// The path prefix the module's `base_url` ends with.
pub const PREFIX: &str = "/_openmeet/antispam";

/// `check_event_for_spam` carries a whole event (Synapse caps them at 64 KiB), as client JSON.
const BODY_LIMIT: usize = 256 * 1024;

/// The callbacks' routes, behind the antispam token; merged into the appservice listener.
pub fn routes(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route(&format!("{PREFIX}/ping"), post(ping::handler))
        .route(
            &format!("{PREFIX}/user_may_join_room"),
            post(user_may_join_room::handler),
        )
        .route(
            &format!("{PREFIX}/user_may_invite"),
            post(user_may_invite::handler),
        )
        .route(
            &format!("{PREFIX}/check_event_for_spam"),
            post(check_event_for_spam::handler),
        )
        .route(
            &format!("{PREFIX}/{{callback}}"),
            post(decision::allow_other),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            app,
            auth::require_antispam_token,
        ))
}
