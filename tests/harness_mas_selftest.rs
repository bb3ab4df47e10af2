#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! Proves the two-homeserver harness (DESIGN §13): two real Synapses with different server names,
//! started at once, the second delegating authentication to the stand-in Matrix Authentication
//! Service (MSC3861) as OpenMeet's own Synapse does. On that one a human's token from the stand-in
//! works and a bogus one is refused by the stand-in, and each Synapse loaded exactly the
//! registration `registration --homeserver ID` printed for it: its as_token works there and not on
//! the other, and `check` passes for both, each ping carrying that homeserver's hs_token.

mod support;

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::json;

use support::daemon::{DaemonConfig, ExtraHomeserver};
use support::matrix_client::{self, TestUser, login_via_mas, mas_introspections};
use support::python::free_port;
use support::synapse::{Placement, Start, start_pair};

const DEFAULT_SERVER: &str = "default.openmeet.test";
const MAS_SERVER: &str = "mas.openmeet.test";

fn as_user(server_name: &str, as_token: &str) -> TestUser {
    TestUser {
        user_id: format!("@openmeet-bot:{server_name}"),
        access_token: as_token.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_synapses_one_delegating_to_mas_each_with_its_own_registration() {
    let (default_port, mas_port) = (free_port(), free_port());
    let mut config = DaemonConfig::new("two-homeservers", None);
    config.server_name = DEFAULT_SERVER.into();
    config.homeserver_url = format!("http://127.0.0.1:{default_port}");
    let mut second = ExtraHomeserver::new(
        "eu-mas",
        &format!("http://127.0.0.1:{mas_port}"),
        MAS_SERVER,
    );
    second.tenants.push("tenantB".into());
    config.tenants.push(("tenantB".into(), "Tenant B".into()));
    config.homeservers.push(second);
    let default_registration = config.registration();
    let mas_registration = config.registration_of("eu-mas");
    let printed: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&mas_registration).unwrap()).unwrap();
    let mas_as_token = printed["as_token"].as_str().unwrap().to_owned();
    assert_eq!(mas_as_token, config.homeservers[0].tokens.as_token);

    let started = Instant::now();
    let (default_hs, mas_hs) = tokio::task::block_in_place(|| {
        start_pair(
            Start(
                DEFAULT_SERVER,
                &[default_registration],
                Placement::at_port(default_port),
            ),
            Start(
                MAS_SERVER,
                &[mas_registration],
                Placement {
                    mas: true,
                    ..Placement::at_port(mas_port)
                },
            ),
        )
    });
    eprintln!(
        "both Synapses ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_ne!(default_hs.server_name, mas_hs.server_name);
    assert!(default_hs.mas_url.is_none());
    let mas_url = mas_hs.mas_url.clone().expect("the stand-in MAS's URL");

    // A human on the MAS homeserver: the stand-in's token works, for whoami and for a room.
    let alice = login_via_mas(&mas_url, "alice").await;
    let (status, answer) = alice.whoami(&mas_hs.url).await;
    assert_eq!(status, StatusCode::OK, "{answer}\n{}", mas_hs.log_tail(30));
    assert_eq!(answer["user_id"], format!("@alice:{MAS_SERVER}"));
    assert!(
        answer["device_id"].as_str().unwrap().starts_with("STANDIN"),
        "{answer}"
    );
    alice
        .create_room(&mas_hs.url, json!({"preset": "private_chat"}))
        .await;
    let (asked, refused) = mas_introspections(&mas_url).await;
    assert!(
        asked >= 1 && refused == 0,
        "introspections {asked}, refused {refused}"
    );

    // A token the stand-in never issued: Synapse asks it, it says inactive, Synapse says 401.
    let bogus = TestUser {
        user_id: format!("@alice:{MAS_SERVER}"),
        access_token: "mas_not-a-token-the-stand-in-issued".into(),
    };
    let (status, answer) = bogus.whoami(&mas_hs.url).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["errcode"], "M_UNKNOWN_TOKEN", "{answer}");
    assert_eq!(mas_introspections(&mas_url).await.1, refused + 1);
    // Humans cannot register on Synapse itself any more: MAS does that.
    let (status, _) = matrix_client::request(
        &mas_hs.url,
        None,
        reqwest::Method::POST,
        "/_matrix/client/v3/register",
        Some(json!({"username": "mallory", "password": "mallory-password"})),
    )
    .await;
    assert!(
        status.is_client_error(),
        "human registration answered {status}"
    );

    // Each Synapse loaded its own registration: its as_token works there (Synapse's appservice
    // auth, not the stand-in), the other homeserver's does not.
    let (asked_before, _) = mas_introspections(&mas_url).await;
    let (status, answer) = as_user(MAS_SERVER, &mas_as_token).whoami(&mas_hs.url).await;
    assert_eq!(status, StatusCode::OK, "{answer}\n{}", mas_hs.log_tail(30));
    assert_eq!(answer["user_id"], format!("@openmeet-bot:{MAS_SERVER}"));
    assert_eq!(
        mas_introspections(&mas_url).await.0,
        asked_before,
        "Synapse asked the stand-in about the as_token"
    );
    let default_as = as_user(DEFAULT_SERVER, &config.tokens.as_token);
    let (status, answer) = default_as.whoami(&default_hs.url).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["user_id"], format!("@openmeet-bot:{DEFAULT_SERVER}"));
    let (status, _) = default_as.whoami(&mas_hs.url).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = as_user(MAS_SERVER, &mas_as_token)
        .whoami(&default_hs.url)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // `check` with no daemon running: one block per homeserver, each ping answered by check's own
    // responder with that homeserver's hs_token.
    let (code, stdout, stderr) = tokio::task::block_in_place(|| config.cli(&["check"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    for block in [
        format!("homeserver default ({DEFAULT_SERVER}):"),
        format!("homeserver eu-mas ({MAS_SERVER}):"),
    ] {
        assert!(stdout.contains(&block), "no {block:?} in {stdout}");
    }
    assert_eq!(
        stdout.matches("ok   appservice ping").count(),
        2,
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("accepted as @openmeet-bot:{MAS_SERVER}")),
        "{stdout}"
    );
}
