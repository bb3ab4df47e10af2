//! Operating the daemon against the real Synapse: a token Synapse does not know, config reloads on
//! SIGHUP (a token fixed, an hs_token rotation, a broken file, a new tenant), the loop-back probe,
//! and `rooms reconcile` repairing rooms: one whose id this homeserver never had, and one the
//! appservice's sender created without the tenant bot (adoption).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::environment::{
    SERVER_NAME, bot_id, environment, fresh_config, port_turn, ready_daemon_with,
};
use crate::rooms::declare;
use crate::support::daemon::Daemon;
use crate::support::eventually;
use crate::support::matrix_client::{TestUser, register_user};

fn user(localpart: &str) -> String {
    format!("@{localpart}:{SERVER_NAME}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_as_token_is_reported_once_and_jobs_resume_after_a_reload_fixes_it() {
    let _turn = port_turn().await;
    let mut config = fresh_config();
    let good = config.tokens.as_token.clone();
    config.tokens.as_token = format!("unknown{good}");
    config.extra_secrets.push(good.clone());
    config.check_interval_seconds = 1;
    let mut daemon = Daemon::start(config).await;

    // Not ready, no crash, checked again once per interval.
    daemon
        .wait_metric(
            "openmeet_as_token_rejected_total",
            "",
            3.0,
            Duration::from_secs(20),
        )
        .await;
    let (status, body) = daemon.readiness().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["as_token"], false);
    assert!(daemon.pid().is_some());

    // A room declared meanwhile waits: queued, no attempt spent.
    let token = daemon.config.tenant_token("tenantA");
    let body = json!({"name": "Token Fixed", "visibility": "private"});
    let job_id = daemon
        .put_room("tenantA", "event", "token-fixed", body)
        .await;
    // No retry storm: while refused, about one homeserver call per check interval.
    let before = daemon
        .metric("openmeet_as_homeserver_requests_total", "")
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let calls = daemon
        .metric("openmeet_as_homeserver_requests_total", "")
        .await
        - before;
    assert!(
        calls <= 6.0,
        "{calls} homeserver calls in 4 s with the token refused"
    );
    let (_, job) = daemon
        .platform(
            Method::GET,
            &format!("/v1/jobs/{job_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(job["status"], "queued", "{job}");
    assert_eq!(job["attempts"], 0, "{job}");

    // One log line for the state change, with the fix.
    let logs = daemon.logs();
    assert_eq!(
        logs.matches("Synapse has not loaded this registration")
            .count(),
        1,
        "{logs}"
    );

    // The right token, reloaded: ready again and the job runs by itself.
    daemon.config.tokens.as_token = good;
    daemon.reload();
    let job = daemon.wait_for_job(job_id, &token).await;
    assert_eq!(job["status"], "succeeded", "{job}\n{}", daemon.logs());
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    assert!(daemon.logs().contains("SIGHUP: reloaded the config"));
    daemon.stop();
}

/// An empty transaction presented with `token`.
async fn push(daemon: &Daemon, token: &str, txn: &str) -> StatusCode {
    daemon
        .appservice(
            Method::PUT,
            &format!("/_matrix/app/v1/transactions/{txn}"),
            Some(token),
            Some(r#"{"events": []}"#.to_owned()),
        )
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hs_token_rotation_accepts_both_tokens_until_the_old_one_is_removed() {
    let _turn = port_turn().await;
    let mut config = fresh_config();
    // Synapse presents the registered token; the new one is listed first, the old one after.
    let registered = config.tokens.hs_token.clone();
    let new = format!("rotated{registered}");
    config.tokens.hs_token = new.clone();
    config.previous_hs_tokens = vec![registered.clone()];
    let mut daemon = ready_daemon_with(config).await;
    assert_eq!(push(&daemon, &new, "rot-1").await, StatusCode::OK);
    assert_eq!(push(&daemon, &registered, "rot-2").await, StatusCode::OK);

    daemon.config.previous_hs_tokens.clear();
    daemon.reload();
    eventually(
        "the old hs_token refused",
        Duration::from_secs(10),
        || async {
            (push(&daemon, &registered, "rot-3").await == StatusCode::FORBIDDEN).then_some(())
        },
    )
    .await;
    assert_eq!(push(&daemon, &new, "rot-4").await, StatusCode::OK);
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_keeps_the_running_config_when_the_file_is_broken_and_adds_a_new_tenant() {
    let _turn = port_turn().await;
    let mut daemon = ready_daemon_with(fresh_config()).await;

    // A broken file: refused whole, the daemon keeps serving on the old config.
    let path = daemon.config.dir.join("config.yaml");
    std::fs::write(&path, "homeserver: [this is not\n").unwrap();
    daemon.hangup();
    daemon
        .wait_metric(
            "openmeet_as_config_reloads_total",
            "rejected",
            1.0,
            Duration::from_secs(10),
        )
        .await;
    assert!(daemon.logs().contains("SIGHUP: kept the running config"));
    let token = daemon.config.tenant_token("tenantA");
    let path = "/v1/tenants/tenantA/rooms/event/none-here";
    let (status, _) = daemon.platform(Method::GET, path, Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(daemon.readiness().await.0, StatusCode::OK);

    // A new tenant: its token works at once and its bot makes its room.
    daemon
        .config
        .tenants
        .push(("tenantC".into(), "Tenant C".into()));
    daemon.reload();
    daemon
        .wait_metric(
            "openmeet_as_config_reloads_total",
            "applied",
            1.0,
            Duration::from_secs(10),
        )
        .await;
    let job = declare(
        &daemon,
        "tenantC",
        "group",
        "reloaded",
        json!({"name": "Reloaded", "visibility": "public"}),
    )
    .await;
    let room_id = job["result"]["room_id"].as_str().unwrap();
    let members = environment().synapse.current_memberships(room_id);
    assert!(
        members.contains(&(bot_id("tenantC"), "join".to_owned())),
        "{members:?}"
    );
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_back_probe_measures_delivery() {
    let _turn = port_turn().await;
    let mut config = fresh_config();
    config.probe_interval_seconds = 1;
    let mut daemon = ready_daemon_with(config).await;
    eventually(
        "two probe markers back",
        Duration::from_secs(30),
        || async {
            (daemon.metric("openmeet_as_probes_received_total", "").await >= 2.0).then_some(())
        },
    )
    .await;
    let delay = daemon.metric("openmeet_as_probe_delay_seconds", "").await;
    eprintln!("probe: marker back after {:.1} ms", delay * 1000.0);
    assert!(delay > 0.0 && delay < 10.0, "probe delay {delay} s");
    let last = daemon
        .metric("openmeet_as_probe_last_received_timestamp_seconds", "")
        .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - last).abs() < 30.0, "last probe at {last}, now {now}");
    assert!(daemon.metric("openmeet_as_probes_sent_total", "").await >= 2.0);
    daemon.stop();
}

/// The stored room id of a declared room, overwritten as an import of another environment's
/// data would leave it.
pub(crate) fn import_foreign_room_id(daemon: &Daemon, slug: &str, foreign: &str) {
    use diesel::RunQueryDsl;
    use diesel::sql_types::Text;
    let path = daemon
        .config
        .database_url
        .strip_prefix("sqlite://")
        .expect("a SQLite test database");
    let mut conn = crate::support::sqlite_beside(path);
    let changed = diesel::sql_query("UPDATE rooms SET room_id = ? WHERE slug = ?")
        .bind::<Text, _>(foreign)
        .bind::<Text, _>(slug)
        .execute(&mut conn)
        .unwrap();
    assert_eq!(changed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_id_this_homeserver_never_had_is_found_and_replaced() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let mut daemon = ready_daemon_with(fresh_config()).await;
    let alice = register_user(hs, "import-host").await;
    let body = json!({
        "name": "Imported",
        "visibility": "private",
        "members": [{"user_id": user("import-host"), "role": "host"}],
    });
    let first = declare(&daemon, "tenantA", "event", "imported", body).await;
    let original = first["result"]["room_id"].as_str().unwrap().to_owned();
    let foreign = "!importedFromStaging:staging.openmeet.example";
    import_foreign_room_id(&daemon, "imported", foreign);

    // The dry run finds it and changes nothing.
    let (code, stdout, stderr) = daemon
        .config
        .cli(&["rooms", "reconcile", "--all", "--dry-run"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let line: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        line["diagnosis"]["finding"], "unknown_to_homeserver",
        "{line}"
    );
    assert!(line.get("job").is_none(), "{line}");
    assert!(stderr.contains("dry run: nothing was changed"), "{stderr}");
    let token = daemon.config.tenant_token("tenantA");
    let room = daemon.get_room("tenantA", "event", "imported").await;
    assert_eq!(room["room_id"], foreign);

    // The real run replaces it: new room, alias moved, the member invited again.
    let (code, stdout, stderr) = daemon.config.cli(&["rooms", "reconcile", "--all"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let line: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let job = daemon
        .wait_for_job(line["job"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(job["status"], "succeeded", "{job}\n{}", daemon.logs());
    assert_eq!(job["result"]["repair"]["action"], "replaced", "{job}");
    assert_eq!(job["result"]["repair"]["previous_room_id"], foreign);
    let room = daemon.get_room("tenantA", "event", "imported").await;
    let replacement = room["room_id"].as_str().unwrap().to_owned();
    assert_eq!(room["previous_room_id"], foreign, "{room}");
    assert_eq!(room["status"], "ready", "{room}");
    assert!(replacement != foreign && replacement != original);
    let alias = format!("#event-imported-tenantA:{SERVER_NAME}");
    let (status, resolved) = alice.resolve_alias(hs, &alias).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resolved["room_id"], replacement.as_str());
    alice.join(hs, &replacement).await;
    let levels = alice
        .state_event(hs, &replacement, "m.room.power_levels", "")
        .await
        .unwrap();
    assert_eq!(levels["users"][user("import-host")], 100, "{levels}");
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_the_sender_created_without_the_tenant_bot_is_adopted() {
    let _turn = port_turn().await;
    let env = environment();
    let hs = env.synapse.url.as_str();
    let mut daemon = ready_daemon_with(fresh_config()).await;
    register_user(hs, "adopt-host").await;
    // As OpenMeet's single bot made rooms before tenant bots: the sender creates it, alias and all.
    let sender = TestUser {
        user_id: format!("@openmeet-bot:{SERVER_NAME}"),
        access_token: daemon.config.tokens.as_token.clone(),
    };
    let legacy = sender
        .create_room(
            hs,
            json!({
                "name": "Legacy Event Chat",
                "preset": "private_chat",
                "room_alias_name": "event-legacy-tenantA",
            }),
        )
        .await;
    let bot = bot_id("tenantA");
    assert!(
        !env.synapse
            .current_memberships(&legacy)
            .iter()
            .any(|(user, _)| *user == bot)
    );

    // The platform declares it as usual: the bot is brought in with power and manages it.
    let job = declare(
        &daemon,
        "tenantA",
        "event",
        "legacy",
        json!({
            "name": "Legacy Event Chat",
            "visibility": "private",
            "members": [{"user_id": user("adopt-host"), "role": "host"}],
        }),
    )
    .await;
    assert_eq!(job["result"]["room_id"], legacy.as_str(), "{job}");
    assert_eq!(job["result"]["repair"]["action"], "restored", "{job}");
    let members = env.synapse.current_memberships(&legacy);
    assert!(
        members.contains(&(bot.clone(), "join".to_owned())),
        "{members:?}"
    );
    assert!(
        members.contains(&(user("adopt-host"), "invite".to_owned())),
        "{members:?}"
    );
    let levels = sender
        .state_event(hs, &legacy, "m.room.power_levels", "")
        .await
        .unwrap();
    assert_eq!(levels["users"][bot.as_str()], 100, "{levels}");
    assert_eq!(levels["users"][user("adopt-host")], 100, "{levels}");

    // From then on a reconcile finds it healthy.
    let (code, stdout, stderr) =
        daemon
            .config
            .cli(&["rooms", "reconcile", "--dry-run", "tenantA/event/legacy"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains(r#""finding":"healthy""#), "{stdout}");
    daemon.stop();
}
