//! The server-wide room directory of each homeserver, for tenants that opted in.

use std::time::Duration;

use serde_json::{Value, json};

use super::{environment, fresh_config, turn};
use crate::support::daemon::Daemon;
use crate::support::eventually;
use crate::support::matrix_client::login_via_mas;

/// DESIGN §7.5: a tenant that opted into the server-wide directory (`server_directory: true`) on
/// a Synapse whose operator allows the tenant bots to publish (`room_list_publication_rules`, as
/// the runbook says) has its public rooms listed there as well as in its own directory, and a room
/// that stops being public leaves both. Each homeserver offers the directories of its own tenants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_that_opted_in_is_listed_server_wide_where_synapse_allows_it() {
    let env = environment();
    let _turn = turn().await;
    let mut config = fresh_config();
    config.server_directory = vec!["tenantB".into()];
    let daemon = Daemon::start(config).await;
    daemon.wait_ready(true, Duration::from_secs(60)).await;
    let bob = login_via_mas(&env.mas_url(), "directory-bob").await;
    let hs = env.second_url.as_str();
    let public = json!({"name": "Listed B", "visibility": "public"});
    let job = daemon.declare("tenantB", "event", "listed", public).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    let room = daemon.get_room("tenantB", "event", "listed").await;
    assert_eq!(room["directory_note"], Value::Null, "{room}");

    let protocols = bob.protocols(hs).await;
    let instances = protocols["openmeet"]["instances"].as_array().unwrap();
    assert_eq!(
        instances.len(),
        1,
        "only this homeserver's tenant: {protocols}"
    );
    assert_eq!(instances[0]["network_id"], "tenantB", "{protocols}");
    let instance = instances[0]["instance_id"].as_str().unwrap().to_owned();
    let listed = |instance: Option<String>, want: bool| {
        let (bob, room_id) = (&bob, room_id.clone());
        async move {
            eventually("the listing", Duration::from_secs(15), || async {
                let rooms = bob.public_rooms(hs, instance.as_deref()).await;
                (rooms.contains(&room_id) == want).then_some(())
            })
            .await
        }
    };
    listed(Some(instance.clone()), true).await;
    listed(None, true).await;

    let private = json!({"name": "Listed B", "visibility": "private"});
    daemon.declare("tenantB", "event", "listed", private).await;
    listed(Some(instance), false).await;
    listed(None, false).await;
}
