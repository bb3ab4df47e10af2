#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! Recovery against a real Synapse of each test's own, which the test stops, restarts and wipes
//! (the shared Synapse of the other end-to-end tests must not be disturbed):
//!
//! - Synapse stopped for a while: jobs queued meanwhile wait (none dead), complete when it is
//!   back; events Synapse could not deliver while the daemon was down arrive right after the
//!   daemon's ping, long before Synapse's own backoff would have retried.
//! - Synapse's database wiped, restarted with the same registration: `rooms reconcile --dry-run`
//!   lists every managed room as unknown and changes nothing; `rooms reconcile` recreates them
//!   with their members and levels; a renamed room comes back with the aliases of all its slugs,
//!   even when Synapse cannot ask the appservice about them.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use support::daemon::{Daemon, DaemonConfig};
use support::eventually;
use support::matrix_client::register_user;
use support::python::{free_port, scratch_dir};
use support::synapse::{Placement, Synapse};

/// One Synapse of a test's own and the daemon config registered with it.
struct Homeserver {
    server_name: String,
    registration: PathBuf,
    placement: Placement,
    config: DaemonConfig,
}

impl Homeserver {
    /// A placement on a fixed port; `keep_database`: restarts find the same database.
    fn new(server_name: &str, keep_database: bool) -> Self {
        let mut config = DaemonConfig::new("recovery", None);
        config.server_name = server_name.into();
        config.check_interval_seconds = 1;
        let registration = config.registration();
        config.appservice_port_registered = true;
        let placement = Placement {
            port: Some(free_port()),
            workdir: Some(scratch_dir("synapse")),
            database_dir: keep_database.then(|| scratch_dir("synapse-db")),
            mas: false,
            allow_publication: false,
            antispam: None,
        };
        config.homeserver_url = format!("http://127.0.0.1:{}", placement.port.unwrap());
        Self {
            server_name: server_name.into(),
            registration,
            placement,
            config,
        }
    }

    /// Starts (or starts again) Synapse; blocks while it comes up.
    fn start(&self) -> Synapse {
        self.start_registered(&self.registration)
    }

    /// Starts Synapse with another registration of the same appservice.
    fn start_registered(&self, registration: &std::path::Path) -> Synapse {
        tokio::task::block_in_place(|| {
            Synapse::start_with(
                &self.server_name,
                &[registration.to_path_buf()],
                &self.placement,
            )
        })
    }

    /// The registration without a `url`: Synapse sends the appservice nothing and asks it
    /// nothing (no alias queries), so only what the daemon does by itself counts.
    fn registration_without_url(&self) -> PathBuf {
        let yaml = std::fs::read_to_string(&self.registration).unwrap();
        let without: String = yaml
            .lines()
            .map(|line| {
                if line.starts_with("url:") {
                    "url: null"
                } else {
                    line
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_ne!(
            without,
            yaml.trim_end(),
            "no url in the registration:\n{yaml}"
        );
        let path = self
            .registration
            .with_file_name("registration-without-url.yaml");
        std::fs::write(&path, without + "\n").unwrap();
        path
    }

    fn user(&self, localpart: &str) -> String {
        format!("@{localpart}:{}", self.server_name)
    }
}

/// Stops Synapse (SIGTERM through its runner) and waits for it to be gone.
fn stop(synapse: Synapse) {
    tokio::task::block_in_place(|| drop(synapse));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_wait_out_a_synapse_outage_and_the_backlog_follows_the_ping() {
    let home = Homeserver::new("outage.openmeet.test", true);
    let synapse = home.start();
    let hs = synapse.url.clone();
    let mut daemon = Daemon::start(home.config.clone()).await;
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    let alice = register_user(&hs, "outage-host").await;
    let job = daemon
        .declare(
            "tenantA",
            "event",
            "before-outage",
            json!({"name": "Before", "visibility": "private",
                   "members": [{"user_id": home.user("outage-host"), "role": "host"}]}),
        )
        .await;
    let room = job["result"]["room_id"].as_str().unwrap().to_owned();
    alice.join(&hs, &room).await;

    // Synapse goes away; the platform keeps declaring rooms.
    stop(synapse);
    let token = daemon.config.tenant_token("tenantA");
    let mut waiting = Vec::new();
    for slug in ["during-outage-1", "during-outage-2"] {
        let body = json!({"name": slug, "visibility": "public"});
        waiting.push(daemon.put_room("tenantA", "group", slug, body).await);
    }
    daemon.wait_ready(false, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    for id in &waiting {
        let (_, job) = daemon
            .platform(
                reqwest::Method::GET,
                &format!("/v1/jobs/{id}"),
                Some(&token),
                None,
            )
            .await;
        assert!(
            job["status"] == "queued" || job["status"] == "running",
            "a job did not wait for Synapse: {job}"
        );
    }
    assert!(
        daemon
            .metric("openmeet_as_homeserver_unreachable_total", "")
            .await
            >= 1.0
    );
    let logs = daemon.logs();
    assert_eq!(
        logs.matches("homeserver unhealthy: the homeserver at")
            .count(),
        1,
        "the outage should be logged once:\n{logs}"
    );

    // Synapse is back: every job completes, none died.
    let synapse = home.start();
    for id in &waiting {
        let job = daemon.wait_for_job(*id, &token).await;
        assert_eq!(job["status"], "succeeded", "{job}\n{}", daemon.logs());
    }
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    assert_eq!(daemon.metric("openmeet_as_jobs_total", "dead").await, 0.0);

    // The daemon is down while a member talks: Synapse backs off (2, 4, 8, 16 s, ...). When the
    // daemon is back and ready, its ping makes Synapse send the backlog at once.
    daemon.stop();
    let sent_at = Instant::now();
    let event_id = alice.send_message(&hs, &room, "while you were away").await;
    tokio::time::sleep(Duration::from_secs(16)).await;
    daemon.restart().await;
    daemon.wait_ready(true, Duration::from_secs(10)).await;
    eventually(
        "the backlog after the ping",
        Duration::from_secs(10),
        || async {
            daemon
                .inbox_events()
                .iter()
                .any(|e| e["event_id"] == event_id.as_str())
                .then_some(())
        },
    )
    .await;
    // Synapse's own next retry would have come 30 s after the first failure.
    eprintln!(
        "backlog: delivered {:.1} s after the first failed push (daemon back at 16 s)",
        sent_at.elapsed().as_secs_f64()
    );
    assert!(
        sent_at.elapsed() < Duration::from_secs(28),
        "the backlog came only after {:?}: Synapse's backoff, not the ping",
        sent_at.elapsed()
    );
    daemon.stop();
    stop(synapse);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_synapse_loses_its_database_reconcile_recreates_every_room() {
    let home = Homeserver::new("reset.openmeet.test", false);
    let synapse = home.start();
    let mut daemon = Daemon::start(home.config.clone()).await;
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    register_user(&synapse.url, "reset-host").await;
    register_user(&synapse.url, "reset-guest").await;
    // The group first: the event is open to its members (DESIGN §7.5).
    let rooms = [
        ("group", "reset-club", "public", "owner", "member"),
        ("event", "reset-party", "private", "host", "participant"),
    ];
    let mut before = Vec::new();
    for (kind, slug, visibility, first, second) in rooms {
        let mut body = json!({"name": slug, "visibility": visibility, "members": [
            {"user_id": home.user("reset-host"), "role": first},
            {"user_id": home.user("reset-guest"), "role": second},
        ]});
        if kind == "event" {
            body["open_to"] = json!({"kind": "group", "slug": "reset-club"});
        }
        let job = daemon.declare("tenantA", kind, slug, body).await;
        before.push(job["result"]["room_id"].as_str().unwrap().to_owned());
    }

    // The database is gone: the same registration, an empty Synapse.
    stop(synapse);
    let synapse = home.start();
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    let host = register_user(&synapse.url, "reset-host").await;
    register_user(&synapse.url, "reset-guest").await;

    // The dry run lists every room as unknown to the homeserver and changes nothing.
    let (code, stdout, stderr) = daemon
        .config
        .cli(&["rooms", "reconcile", "--all", "--dry-run"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for line in &lines {
        assert_eq!(
            line["diagnosis"]["finding"], "unknown_to_homeserver",
            "{line}"
        );
        assert!(line.get("job").is_none());
    }
    assert!(stderr.contains("2 unknown to homeserver"), "{stderr}");
    for ((kind, slug, ..), old) in rooms.iter().zip(&before) {
        assert_eq!(
            daemon.get_room("tenantA", kind, slug).await["room_id"],
            old.as_str()
        );
    }

    // The real run recreates them, with members and levels.
    let (code, stdout, stderr) = daemon.config.cli(&["rooms", "reconcile", "--all"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let token = daemon.config.tenant_token("tenantA");
    for line in stdout.lines() {
        let line: Value = serde_json::from_str(line).unwrap();
        let job = daemon
            .wait_for_job(line["job"].as_i64().unwrap(), &token)
            .await;
        assert_eq!(job["status"], "succeeded", "{job}\n{}", daemon.logs());
        assert_eq!(job["result"]["repair"]["action"], "replaced", "{job}");
    }
    for ((kind, slug, ..), old) in rooms.iter().zip(&before) {
        let room = daemon.get_room("tenantA", kind, slug).await;
        let new = room["room_id"].as_str().unwrap().to_owned();
        assert_ne!(&new, old);
        assert_eq!(room["previous_room_id"], old.as_str(), "{room}");
        assert_eq!(room["status"], "ready", "{room}");
        let members = synapse.current_memberships(&new);
        let bot = format!("@openmeet-bot-tenanta:{}", home.server_name);
        for (user, membership) in [
            (bot.as_str(), "join"),
            (host.user_id.as_str(), "invite"),
            (&home.user("reset-guest"), "invite"),
        ] {
            assert!(
                members.contains(&(user.to_owned(), membership.to_owned())),
                "{user} {membership} in {members:?}"
            );
        }
        host.join(&synapse.url, &new).await;
        let levels = host
            .state_event(&synapse.url, &new, "m.room.power_levels", "")
            .await
            .unwrap();
        assert_eq!(levels["users"][host.user_id.as_str()], 100, "{levels}");
    }
    // The event open to the group follows the group's new room, whichever was made again first.
    let room_of = |kind: &'static str, slug: &'static str| {
        let daemon = &daemon;
        async move { daemon.get_room("tenantA", kind, slug).await["room_id"].clone() }
    };
    let (group, event) = (
        room_of("group", "reset-club").await,
        room_of("event", "reset-party").await,
    );
    let event = event.as_str().unwrap();
    eventually(
        "the event to admit the new group room's members",
        Duration::from_secs(30),
        || async {
            let rules = host
                .state_event(&synapse.url, event, "m.room.join_rules", "")
                .await
                .unwrap_or_default();
            (rules["join_rule"] == "restricted" && rules["allow"][0]["room_id"] == group)
                .then_some(())
        },
    )
    .await;
    daemon.stop();
    stop(synapse);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_room_is_recreated_with_the_aliases_of_all_its_slugs() {
    let home = Homeserver::new("renamed.openmeet.test", false);
    let synapse = home.start();
    let mut daemon = Daemon::start(home.config.clone()).await;
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    register_user(&synapse.url, "renamed-owner").await;
    let body = json!({"name": "Renamed Club", "visibility": "private", "members": [
        {"user_id": home.user("renamed-owner"), "role": "owner"},
    ]});
    let job = daemon
        .declare("tenantA", "group", "club-before", body)
        .await;
    let old = job["result"]["room_id"].as_str().unwrap().to_owned();
    let token = daemon.config.tenant_token("tenantA");
    let (status, answer) = daemon
        .platform(
            reqwest::Method::POST,
            "/v1/tenants/tenantA/rooms/group/club-before/rename",
            Some(&token),
            Some(json!({"new_slug": "club-after"})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{answer}");
    let renamed = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(renamed["status"], "succeeded", "{renamed}");

    // Synapse loses its database, and this time cannot call the appservice back either.
    stop(synapse);
    let synapse = home.start_registered(&home.registration_without_url());
    let owner = register_user(&synapse.url, "renamed-owner").await;
    let (code, stdout, stderr) = daemon.config.cli(&["rooms", "reconcile", "--all"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let line: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let job = daemon
        .wait_for_job(line["job"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(job["status"], "succeeded", "{job}\n{}", daemon.logs());

    let room = daemon.get_room("tenantA", "group", "club-after").await;
    assert_eq!(room["status"], "ready", "{room}");
    let new = room["room_id"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(
        synapse
            .current_memberships(&new)
            .contains(&(owner.user_id.clone(), "invite".to_owned())),
        "the owner was not invited: {:?}",
        synapse.current_memberships(&new)
    );
    let aliases = ["club-after", "club-before"]
        .map(|slug| format!("#group-{slug}-tenantA:{}", home.server_name));
    for alias in &aliases {
        let (status, resolved) = owner.resolve_alias(&synapse.url, alias).await;
        assert_eq!(
            (status, resolved["room_id"].as_str()),
            (reqwest::StatusCode::OK, Some(new.as_str())),
            "{alias}"
        );
    }
    owner.join(&synapse.url, &new).await;
    let canonical = owner
        .state_event(&synapse.url, &new, "m.room.canonical_alias", "")
        .await
        .unwrap();
    assert_eq!(
        canonical,
        json!({"alias": aliases[0], "alt_aliases": [aliases[1]]})
    );
    daemon.stop();
    stop(synapse);
}
