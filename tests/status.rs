#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! What operators see of a dead job (failed ones are listed the same way: tests/failed_rooms.rs): `GET /v1/status`, `openmeet-appservice status` (table and
//! `--json`, with the daemon up, down, and the homeserver unreachable), the
//! `openmeet_as_jobs_dead` gauge; and JSON logs whose job lines carry the job's tenant, room and
//! id. The job dies against the fake homeserver (a 500 on createRoom; Synapse will not produce
//! one on demand), on SQLite and on PostgreSQL.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use support::daemon::{Daemon, DaemonConfig, Tokens};
use support::fake_homeserver::{Endpoint, FakeHomeserver, Fault};
use support::{Backend, eventually, python};

const SERVER: &str = "fake.openmeet.test";

on_both_backends!(status_endpoint_and_command_show_a_dead_job_and_its_error);

/// A ready daemon on `backend` using a fake homeserver, with tenants A and B, one attempt per
/// job, JSON logs and `admin_token`.
async fn setup(name: &str, backend: Backend, admin_token: &str) -> (FakeHomeserver, Daemon) {
    let mut config = DaemonConfig::new(name, backend.database_url(name));
    config.server_name = SERVER.into();
    config.room_version = Some("10".into());
    config.tenants = vec![
        ("tenantA".into(), "Tenant A".into()),
        ("tenantB".into(), "Tenant B".into()),
    ];
    config.log_format = Some("json".into());
    config.extra_yaml = format!("jobs:\n  max_attempts: 1\nadmin_token: {admin_token}\n");
    config.extra_secrets = vec![admin_token.to_owned()];
    let fake = FakeHomeserver::start(SERVER, &config.tokens.as_token, "openmeet-bot").await;
    config.homeserver_url = fake.url.clone();
    let daemon = Daemon::start(config).await;
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    (fake, daemon)
}

/// Declares tenantA's room `slug` while createRoom answers 500; returns the dead job.
async fn dead_job(fake: &FakeHomeserver, daemon: &Daemon, slug: &str) -> Value {
    fake.fail_next(Endpoint::CreateRoom, 5, Fault::Status(500));
    let token = daemon.config.tenant_token("tenantA");
    let body = json!({"name": "Chat", "visibility": "private"});
    let id = daemon.put_room("tenantA", "event", slug, body).await;
    let job = daemon.wait_for_job(id, &token).await;
    assert_eq!(job["status"], "dead", "{job}");
    assert!(
        job["last_error"]
            .as_str()
            .unwrap()
            .starts_with("gave up after 1 attempts"),
        "{job}"
    );
    job
}

fn tenant<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no tenant {id} in {status:#}"))
}

/// Runs `status` (with `args`) and returns stdout and what stderr says besides the (JSON, debug)
/// log lines, asserting it succeeded.
fn status_command(config: &DaemonConfig, args: &[&str], outputs: &mut String) -> (String, String) {
    let mut all = vec!["status"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = config.cli(&all);
    outputs.push_str(&stdout);
    outputs.push_str(&stderr);
    assert_eq!(code, 0, "status {args:?} failed:\n{stdout}\n{stderr}");
    let said: Vec<&str> = stderr.lines().filter(|l| !l.starts_with('{')).collect();
    (stdout, said.join("\n"))
}

async fn status_endpoint_and_command_show_a_dead_job_and_its_error(backend: Backend) {
    let admin = format!("adm{}", Tokens::fresh().as_token);
    let (fake, mut daemon) = setup("status", backend, &admin).await;
    let job = dead_job(&fake, &daemon, "doomed").await;
    let id = job["id"].as_i64().unwrap();
    let error = job["last_error"].as_str().unwrap().to_owned();

    // The endpoint: admin only.
    let (status, answer) = daemon.platform(Method::GET, "/v1/status", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let wrong = format!("{admin}x");
    let (status, answer) = daemon
        .platform(Method::GET, "/v1/status", Some(&wrong), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let tenant_token = daemon.config.tenant_token("tenantA");
    let (status, answer) = daemon
        .platform(Method::GET, "/v1/status", Some(&tenant_token), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, endpoint) = daemon
        .platform(Method::GET, "/v1/status", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{endpoint}");
    assert_eq!(endpoint["as_token"], "accepted", "{endpoint:#}");
    assert_eq!(endpoint["ready"], json!({"as_token": true, "ping": true}));
    let a = tenant(&endpoint, "tenantA");
    assert_eq!(a["name"], "Tenant A");
    assert_eq!(a["bot"], format!("@openmeet-bot-tenanta:{SERVER}"));
    assert_eq!(a["bot_registered"], true, "the job registered it: {a:#}");
    assert_eq!(a["as_token"], "accepted");
    assert_eq!(
        a["queue"],
        json!({"queued": 0, "running": 0, "failed": 0, "dead": 1, "oldest_queued_age_seconds": null}),
        "{a:#}"
    );
    assert_eq!(
        a["failed_jobs"],
        json!([{"id": id, "kind": "ensure_room", "status": "dead", "room": "tenantA/event/doomed", "attempts": 1,
            "last_error": error, "updated_at_ms": a["failed_jobs"][0]["updated_at_ms"]}]),
        "{a:#}"
    );
    assert!(a["failed_jobs"][0]["updated_at_ms"].as_i64().unwrap() > 0);
    let b = tenant(&endpoint, "tenantB");
    assert_eq!(b["bot"], format!("@openmeet-bot-tenantb:{SERVER}"));
    assert_eq!(
        b["bot_registered"], false,
        "nothing registered it yet: {b:#}"
    );
    assert_eq!(b["queue"]["dead"], 0);
    assert_eq!(b["failed_jobs"], json!([]));

    // The gauge, refreshed from the database every 15 s.
    eventually(
        "openmeet_as_jobs_dead{tenant=\"tenantA\"} to be 1",
        Duration::from_secs(20),
        || async {
            let dead = daemon
                .metric("openmeet_as_jobs_dead", "tenant=\"tenantA\"")
                .await;
            (dead == 1.0).then_some(())
        },
    )
    .await;
    assert_eq!(
        daemon
            .metric("openmeet_as_jobs_queued", "tenant=\"tenantA\"")
            .await,
        0.0
    );

    // The command, while the daemon runs: asks the homeserver itself, prints a table...
    let mut outputs = String::new();
    let (table, stderr) = status_command(&daemon.config, &[], &mut outputs);
    assert_eq!(
        stderr.trim(),
        "",
        "the homeserver answered: nothing to explain"
    );
    let row = |tenant: &str| {
        table
            .lines()
            .find(|line| line.starts_with(&format!("{tenant} ")))
            .unwrap_or_else(|| panic!("no row for {tenant}:\n{table}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    let bot_a = format!("@openmeet-bot-tenanta:{SERVER}");
    assert_eq!(
        row("tenantA"),
        [
            "tenantA", &bot_a, "yes", "accepted", "0", "0", "0", "1", "-"
        ],
        "{table}"
    );
    let bot_b = format!("@openmeet-bot-tenantb:{SERVER}");
    assert_eq!(
        row("tenantB"),
        ["tenantB", &bot_b, "no", "accepted", "0", "0", "0", "0", "-"],
        "{table}"
    );
    assert!(table.contains(&format!("job {id}  dead ")), "{table}");
    assert!(table.contains(&error), "the dead job's error:\n{table}");

    // ... and with --json what the endpoint answers (the command cannot know the daemon's ping).
    let (json_out, _) = status_command(&daemon.config, &["--json"], &mut outputs);
    let command: Value = serde_json::from_str(&json_out).expect("status --json prints JSON");
    assert_eq!(command["tenants"], endpoint["tenants"], "{command:#}");
    assert_eq!(command["as_token"], endpoint["as_token"]);
    assert_eq!(command["database"], endpoint["database"]);
    assert_eq!(command["version"], endpoint["version"]);
    assert_eq!(command["ready"], json!({"as_token": true, "ping": null}));

    // With the daemon down: the job retried by hand is queued again.
    daemon.stop();
    let (code, _, stderr) = daemon.config.cli(&["jobs", "retry", &id.to_string()]);
    assert_eq!(code, 0, "{stderr}");
    let (json_out, _) = status_command(&daemon.config, &["--json"], &mut outputs);
    let command: Value = serde_json::from_str(&json_out).unwrap();
    let a = tenant(&command, "tenantA");
    assert_eq!(
        (
            &a["queue"]["queued"],
            &a["queue"]["dead"],
            &a["failed_jobs"]
        ),
        (&json!(1), &json!(0), &json!([])),
        "{a:#}"
    );
    assert!(a["queue"]["oldest_queued_age_seconds"].as_f64().unwrap() >= 0.0);

    // With the homeserver unreachable: still a status, "unknown" where it could not ask, and one
    // line on stderr saying why.
    let mut offline = daemon.config.clone();
    offline.homeserver_url = format!("http://127.0.0.1:{}", python::free_port());
    let (table, stderr) = status_command(&offline, &[], &mut outputs);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("could not be asked"), "{stderr}");
    let row: Vec<&str> = table
        .lines()
        .find(|line| line.starts_with("tenantA "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row[2..5], ["unknown", "unknown", "1"], "{table}");
    let (json_out, _) = status_command(&offline, &["--json"], &mut outputs);
    let command: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(command["as_token"], "unknown");
    assert_eq!(tenant(&command, "tenantA")["bot_registered"], Value::Null);

    // No secret (as, hs, tenant or admin token) in what the command printed or the daemon logged.
    assert!(daemon.config.secrets().contains(&admin));
    daemon
        .config
        .assert_no_secret_in("what `status` printed", &outputs);
    daemon
        .config
        .assert_no_secret_in("the daemon's log", &daemon.logs());
    drop(fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_of_a_job_carry_its_tenant_room_and_id() {
    let admin = format!("adm{}", Tokens::fresh().as_token);
    let (fake, daemon) = setup("json_logs", Backend::Sqlite, &admin).await;
    let job = dead_job(&fake, &daemon, "logged").await;
    let id = job["id"].as_i64().unwrap();
    let logs = daemon.logs();
    let lines: Vec<Value> = logs
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"))
        })
        .collect();
    let of_job: Vec<&Value> = lines
        .iter()
        .filter(|line| line["span"]["job_id"] == id)
        .collect();
    let dead = of_job
        .iter()
        .find(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("job is dead"))
        })
        .unwrap_or_else(|| panic!("no line says job {id} is dead:\n{logs}"));
    assert_eq!(dead["span"]["tenant"], "tenantA", "{dead}");
    assert!(dead["span"]["room_key"].is_i64(), "{dead}");
    assert!(
        of_job.len() >= 2,
        "the failed createRoom call is logged in the job's span too:\n{logs}"
    );
    for line in &of_job {
        assert_eq!(line["span"]["tenant"], "tenantA", "{line}");
    }
    drop(fake);
}
