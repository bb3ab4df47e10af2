//! `GET /_matrix/app/v1/thirdparty/{protocol,user,location}[/{protocol}]`
//!
//! Spec: <https://spec.matrix.org/v1.19/application-service-api/#third-party-networks>
//!
//! The registration declares one protocol, `openmeet`, whose networks are the tenants (DESIGN
//! §7.5): each tenant's public rooms are listed in the appservice room list of network
//! `{tenant id}`, and clients offer that list as "OpenMeet: {tenant name}" once Synapse has the
//! protocol's instances from here. Synapse adds each instance's `instance_id`
//! (`{appservice id}|{network id}`, the `third_party_instance_id` of `POST /publicRooms`). No
//! third-party users or locations exist: lookups find nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;

use super::auth::CallingHomeserver;
use super::error::ApiError;
use crate::app::App;
use crate::rooms::directory::PROTOCOL;

/// A protocol as the spec's `GET /thirdparty/protocol/{protocol}` answers it: no user or location
/// fields, one instance per network.
#[derive(Debug, Serialize)]
struct Protocol {
    user_fields: [&'static str; 0],
    location_fields: [&'static str; 0],
    icon: &'static str,
    field_types: BTreeMap<&'static str, ()>,
    instances: Vec<Instance>,
}

/// One network of the protocol: a tenant's room directory.
#[derive(Debug, Serialize)]
struct Instance {
    desc: String,
    fields: BTreeMap<&'static str, String>,
    network_id: String,
}

/// The `openmeet` protocol with one instance per tenant of the calling homeserver; any other
/// protocol is unknown (404).
pub async fn protocol(
    State(app): State<Arc<App>>,
    Extension(CallingHomeserver(homeserver)): Extension<CallingHomeserver>,
    Path(protocol): Path<String>,
) -> Response {
    if protocol != PROTOCOL {
        return ApiError::NotFound("this appservice has no such protocol; it has openmeet")
            .into_response();
    }
    let config = app.config();
    let instances = config
        .tenants
        .iter()
        .filter(|tenant| tenant.homeserver == homeserver)
        .map(|tenant| Instance {
            desc: tenant.name.clone(),
            fields: BTreeMap::new(),
            network_id: tenant.id.clone(),
        })
        .collect();
    Json(Protocol {
        user_fields: [],
        location_fields: [],
        icon: "",
        field_types: BTreeMap::new(),
        instances,
    })
    .into_response()
}

pub async fn lookup() -> Json<serde_json::Value> {
    Json(serde_json::json!([]))
}
