//! Several replicas on one PostgreSQL behind one address (DESIGN §15), against the real Synapse:
//! a round-robin proxy holds the registered appservice port and spreads Synapse's requests over
//! the replicas as a Kubernetes Service would (skipping one that is gone), and a hold proxy in
//! front of Synapse lets a test stop a chosen Matrix call mid-flight.
//!
//! - one `createRoom` per room when an eager creation and just-in-time ones race on three
//!   replicas;
//! - a replica killed between two Matrix steps of a job: another finishes it within one lease;
//! - the leader killed: every role it held is taken within 15 s;
//! - each replica stopped (SIGTERM) in turn while transactions and platform PUTs stream in:
//!   nothing acknowledged lost, no event processed twice, no job left waiting for a lease, every
//!   room converged;
//! - the singletons run once: one replica prunes (another takes over when it stops), one sends
//!   the probe's markers.

use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::MutexGuard;

use crate::environment::{SERVER_NAME, bot_id, environment, fresh_config, port_turn, still_in};
use crate::support::daemon::{Daemon, DaemonConfig};
use crate::support::events;
use crate::support::hold_proxy::HoldProxy;
use crate::support::matrix_client::{encode, http_client, register_user};
use crate::support::python::free_port;
use crate::support::round_robin::RoundRobin;
use crate::support::{eventually, postgres};

/// `jobs.lease_seconds` of the replicas: short, so "within one lease" is quick to see.
const LEASE_SECONDS: u64 = 5;
/// The replicas' `admin_token` where a test reads the status.
const ADMIN_TOKEN: &str = "replicas-admin-token-0123456789";

/// Replicas of one daemon sharing one PostgreSQL database, behind the registered port.
struct Cluster {
    replicas: Vec<Daemon>,
    front: RoundRobin,
    /// In front of Synapse, for every replica.
    synapse: HoldProxy,
    database_url: String,
    /// How many replicas were started so far (each new one gets a new worker id, as a new pod).
    started: usize,
    extra_yaml: String,
    /// `jobs.lease_seconds` and `homeserver.timeout_seconds` of the replicas.
    lease_seconds: u64,
    timeout_seconds: u64,
    _turn: MutexGuard<'static, ()>,
}

impl Cluster {
    /// `count` replicas on a fresh database, each ready; `extra_yaml` is added to every config.
    async fn start(count: usize, extra_yaml: &str, prepare: impl FnOnce(&str)) -> Self {
        Self::start_with(count, extra_yaml, LEASE_SECONDS, 10, prepare).await
    }

    /// Like [`Cluster::start`], with the replicas' lease and homeserver timeout.
    async fn start_with(
        count: usize,
        extra_yaml: &str,
        lease_seconds: u64,
        timeout_seconds: u64,
        prepare: impl FnOnce(&str),
    ) -> Self {
        let turn = port_turn().await;
        let env = environment();
        let database_url = postgres::fresh_database("replicas");
        let synapse = HoldProxy::start(&env.synapse.url).await;
        let mut cluster = Self {
            replicas: Vec::new(),
            front: RoundRobin::start(env.config.appservice_port, vec![String::new(); count]).await,
            synapse,
            database_url,
            started: 0,
            extra_yaml: extra_yaml.to_owned(),
            lease_seconds,
            timeout_seconds,
            _turn: turn,
        };
        let configs: Vec<DaemonConfig> = (0..count).map(|_| cluster.next_config()).collect();
        for (index, config) in configs.iter().enumerate() {
            cluster.front.replace(index, upstream(config));
        }
        // The schema first (as the chart's migration job does), so that `prepare` can seed it.
        let (code, _, stderr) = configs[0].cli(&["migrate"]);
        assert_eq!(code, 0, "migrate: {stderr}");
        prepare(&cluster.database_url);
        let started = futures_join(configs.into_iter().map(Daemon::start)).await;
        for (index, replica) in started.iter().enumerate() {
            cluster.front.replace(index, upstream(&replica.config));
        }
        cluster.replicas = started;
        for replica in &cluster.replicas {
            replica.wait_ready(true, Duration::from_secs(60)).await;
        }
        cluster
    }

    /// A new replica's config: a new directory, worker id and listening port, on the shared
    /// database and behind the proxies.
    fn next_config(&mut self) -> DaemonConfig {
        let mut config = fresh_config();
        config.database_url = self.database_url.clone();
        config.homeserver_url = self.synapse.url.clone();
        config.appservice_listen_port = Some(free_port());
        config.platform_port = free_port();
        config.metrics_port = free_port();
        config.log_level = "info".into();
        config.homeserver_timeout_seconds = self.timeout_seconds;
        config.extra_yaml = format!(
            "jobs:\n  worker_id: replica-{}\n  lease_seconds: {}\n{}",
            self.started, self.lease_seconds, self.extra_yaml
        );
        self.started += 1;
        config
    }

    /// Replaces replica `index` (stopped or killed) by a new one, as a new pod.
    async fn replace(&mut self, index: usize) {
        let config = self.next_config();
        let replica = Daemon::start(config).await;
        self.front.replace(index, upstream(&replica.config));
        let mut old = std::mem::replace(&mut self.replicas[index], replica);
        // The database is the others' too: the old replica must not drop it as it goes.
        old.config.database_url = String::new();
    }

    /// Starts one more replica behind the proxy (a scale-up) and waits until it is ready.
    async fn add(&mut self) {
        let config = self.next_config();
        let replica = Daemon::start(config).await;
        self.front.add(upstream(&replica.config));
        replica.wait_ready(true, Duration::from_secs(60)).await;
        self.replicas.push(replica);
    }

    fn db(&self) -> PgConnection {
        PgConnection::establish(&self.database_url).expect("connect to the replicas' database")
    }

    fn count(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        diesel::sql_query(sql)
            .get_result::<Count>(&mut self.db())
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
            .n
    }

    /// The worker id that holds job `id` now, if one does.
    fn lease_owner(&self, id: i64) -> Option<String> {
        #[derive(QueryableByName)]
        struct Owner {
            #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
            lease_owner: Option<String>,
        }
        diesel::sql_query("SELECT lease_owner FROM jobs WHERE id = $1 AND status = 'running'")
            .bind::<BigInt, _>(id)
            .load::<Owner>(&mut self.db())
            .expect("read the job's lease")
            .into_iter()
            .next()
            .and_then(|row| row.lease_owner)
    }

    fn index_of(&self, worker: &str) -> usize {
        self.replicas
            .iter()
            .position(|replica| {
                replica
                    .config
                    .extra_yaml
                    .contains(&format!("worker_id: {worker}\n"))
            })
            .unwrap_or_else(|| panic!("no replica is {worker}"))
    }

    /// The replicas' logs, for a failing assertion.
    fn logs(&self) -> String {
        self.replicas
            .iter()
            .map(|replica| replica.logs())
            .collect::<Vec<_>>()
            .join("\n----\n")
    }
}

fn upstream(config: &DaemonConfig) -> String {
    format!("http://127.0.0.1:{}", config.listening_appservice_port())
}

async fn futures_join<F: std::future::Future<Output = Daemon>>(
    starts: impl Iterator<Item = F>,
) -> Vec<Daemon> {
    let mut daemons = Vec::new();
    for start in starts {
        daemons.push(start.await);
    }
    daemons
}

/// Rooms the bot made, per Synapse's own database.
fn rooms_made_by(bot: &str) -> i64 {
    environment().synapse.events_and_rooms("", bot).1
}

fn member(localpart: &str) -> String {
    format!("@{localpart}:{SERVER_NAME}")
}

/// An eager `PUT` and just-in-time alias queries of one room reach three replicas while Synapse
/// holds the first `createRoom`: the others wait for it and take its room; one room is made, with
/// its alias, and a user joining by the alias lands in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eager_and_just_in_time_creations_on_three_replicas_make_one_room() {
    let mut cluster = Cluster::start(3, "", |_| {}).await;
    let hs = environment().synapse.url.clone();
    let joiner = register_user(&hs, "replicas-joiner").await;
    let bot = bot_id("tenantA");
    let before = rooms_made_by(&bot);
    cluster.synapse.hold("/createRoom");
    let body = json!({"name": "Raced", "visibility": "public", "members": []});
    let job = cluster.replicas[0]
        .put_room("tenantA", "event", "raced", body)
        .await;
    cluster.synapse.wait_held(1).await;

    // Synapse asks whichever replica the proxy picks when a user joins by the alias; ask each
    // replica directly too, as concurrent joins would.
    let alias = format!("#event-raced-tenantA:{SERVER_NAME}");
    let path = format!("/_matrix/app/v1/rooms/{}", encode(&alias));
    let hs_token = cluster.replicas[0].config.tokens.hs_token.clone();
    let mut queries = tokio::task::JoinSet::new();
    for replica in &cluster.replicas {
        let (port, path, token) = (
            replica.config.listening_appservice_port(),
            path.clone(),
            hs_token.clone(),
        );
        queries.spawn(async move {
            http_client()
                .get(format!("http://127.0.0.1:{port}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .map(|answer| answer.status())
        });
    }
    let join = {
        let (joiner, hs, alias) = (joiner.clone(), hs.clone(), alias.clone());
        tokio::spawn(async move { joiner.join(&hs, &alias).await })
    };
    // The two replicas that are not making the room wait for the one that is (or, were there no
    // lock across replicas, send their own createRoom).
    eventually(
        "two replicas to wait for the one making the room",
        Duration::from_secs(30),
        || async {
            let waiting = cluster
                .replicas
                .iter()
                .filter(|replica| {
                    replica
                        .logs()
                        .contains("another replica is making this room now")
                })
                .count();
            (waiting >= 2 || cluster.synapse.seen("/createRoom") > 1).then_some(())
        },
    )
    .await;
    assert_eq!(
        cluster.synapse.seen("/createRoom"),
        1,
        "more than one replica asked Synapse to make the room"
    );
    cluster.synapse.release();

    while let Some(answer) = queries.join_next().await {
        assert_eq!(
            answer.unwrap().unwrap(),
            StatusCode::OK,
            "{}",
            cluster.logs()
        );
    }
    let joined = join.await.unwrap();
    let done = cluster.replicas[1]
        .wait_for_job(job, &cluster.replicas[1].config.tenant_token("tenantA"))
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let room_id = done["result"]["room_id"].as_str().unwrap().to_owned();
    assert_eq!(joined, room_id, "the join by alias landed in another room");
    assert_eq!(cluster.synapse.seen("/createRoom"), 1, "{}", cluster.logs());
    assert_eq!(rooms_made_by(&bot) - before, 1, "{}", cluster.logs());
    let (status, resolved) = joiner.resolve_alias(&hs, &alias).await;
    assert_eq!(
        (status, resolved["room_id"].as_str()),
        (StatusCode::OK, Some(room_id.as_str()))
    );
    cluster.replicas.iter_mut().for_each(Daemon::stop);
}

/// A private room `slug` made with `localpart` as a participant, then a job promoting them to
/// moderator held between its two Matrix steps: it has read the room's state, and its power-level
/// write waits in the proxy. Returns that job's id.
async fn promotion_held_mid_way(cluster: &Cluster, slug: &str, localpart: &str) -> i64 {
    let hs = environment().synapse.url.clone();
    register_user(&hs, localpart).await;
    let first = &cluster.replicas[0];
    let body = json!({
        "name": slug,
        "visibility": "private",
        "members": [{"user_id": member(localpart), "role": "participant"}],
    });
    let made = first.put_room("tenantA", "event", slug, body.clone()).await;
    let done = first
        .wait_for_job(made, &first.config.tenant_token("tenantA"))
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    cluster.synapse.hold("/state/m.room.power_levels");
    let mut promoted = body;
    promoted["members"][0]["role"] = json!("moderator");
    let job = cluster.replicas[1]
        .put_room("tenantA", "event", slug, promoted)
        .await;
    cluster.synapse.wait_held(1).await;
    job
}

/// The replica running a room's job is killed between two Matrix steps (its power-level write
/// held in the proxy): another replica finishes the job within one lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_replica_is_killed_mid_way_is_finished_by_another_within_a_lease() {
    let mut cluster = Cluster::start(3, "", |_| {}).await;
    let token = cluster.replicas[0].config.tenant_token("tenantA");
    let job = promotion_held_mid_way(&cluster, "killed", "replicas-promoted").await;
    let owner = cluster.lease_owner(job).expect("a replica runs the job");
    let index = cluster.index_of(&owner);
    cluster.replicas[index].kill();
    let killed_at = Instant::now();
    cluster.synapse.release();

    let survivor = &cluster.replicas[(index + 1) % 3];
    let done = survivor.wait_for_job(job, &token).await;
    let took = killed_at.elapsed();
    assert_eq!(done["status"], "succeeded", "{done}\n{}", cluster.logs());
    assert!(
        took < Duration::from_secs(LEASE_SECONDS + 3),
        "the job took {took:?} after the kill; one lease is {LEASE_SECONDS} s"
    );
    let room_id = done["result"]["room_id"].as_str().unwrap();
    let levels: Value = environment()
        .synapse
        .current_memberships(room_id)
        .iter()
        .map(|(user, membership)| json!([user, membership]))
        .collect();
    assert!(
        levels.to_string().contains("replicas-promoted"),
        "the member is not in the room: {levels}"
    );
    for replica in cluster.replicas.iter_mut() {
        replica.stop();
    }
}

/// A replica stopped (SIGTERM) while a job it runs cannot finish within the grace period (its
/// power-level write held past it) hands the job back: queued again with its attempt not
/// counted, and another replica finishes it at once, not after the 60 s lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_replica_hands_back_the_job_it_cannot_finish() {
    let mut cluster = Cluster::start_with(2, "", 60, 30, |_| {}).await;
    let token = cluster.replicas[0].config.tenant_token("tenantA");
    let job = promotion_held_mid_way(&cluster, "handed", "replicas-handed").await;
    let owner = cluster.lease_owner(job).expect("a replica runs the job");
    let index = cluster.index_of(&owner);
    let attempts = cluster.count(&format!(
        "SELECT attempts::BIGINT AS n FROM jobs WHERE id = {job}"
    ));
    // Stopping waits out the 10 s grace (the write stays held), then hands the job back.
    cluster.replicas[index].stop();
    let stopped_at = Instant::now();
    assert!(
        cluster.replicas[index]
            .logs()
            .contains("handed back the jobs not finished within the grace period"),
        "{}",
        cluster.replicas[index].logs()
    );
    assert_eq!(
        cluster.lease_owner(job),
        None,
        "the job is still leased to the stopped replica"
    );
    cluster.synapse.release();
    let survivor = &cluster.replicas[1 - index];
    let done = survivor.wait_for_job(job, &token).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(
        stopped_at.elapsed() < Duration::from_secs(20),
        "the job waited {:?} after the stop: its 60 s lease?",
        stopped_at.elapsed()
    );
    assert_eq!(
        done["attempts"].as_i64(),
        Some(attempts),
        "the handed-back attempt counted: {done}"
    );
    // The survivor drops the shared database as it goes; the stopped one must not before.
    cluster.replicas[index].config.database_url = String::new();
    for replica in cluster.replicas.iter_mut() {
        replica.stop();
    }
}

/// The replica holding the roles is killed: each role it held is run by another within 15 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_is_killed_another_takes_each_role_within_15_s() {
    let mut cluster = Cluster::start(3, &format!("admin_token: {ADMIN_TOKEN}\n"), |_| {}).await;
    let roles = [
        "pruner",
        "queue_gauges",
        "watchdog:default",
        "probe:default",
    ];
    let holders = eventually("every role held", Duration::from_secs(20), || async {
        let mut holders = Vec::new();
        for role in roles {
            let mut holding = Vec::new();
            for (index, replica) in cluster.replicas.iter().enumerate() {
                if replica
                    .metric("openmeet_as_leader", &format!("role=\"{role}\""))
                    .await
                    == 1.0
                {
                    holding.push(index);
                }
            }
            match holding[..] {
                [one] => holders.push(one),
                _ => return None,
            }
        }
        Some(holders)
    })
    .await;
    let leader = holders[0];
    cluster.replicas[leader].kill();
    let killed_at = Instant::now();
    let moved = eventually(
        "every role held by a live replica",
        Duration::from_secs(30),
        || async {
            for role in roles {
                let mut holding = 0;
                for (index, replica) in cluster.replicas.iter().enumerate() {
                    if index != leader
                        && replica
                            .metric("openmeet_as_leader", &format!("role=\"{role}\""))
                            .await
                            == 1.0
                    {
                        holding += 1;
                    }
                }
                if holding != 1 {
                    return None;
                }
            }
            Some(killed_at.elapsed())
        },
    )
    .await;
    eprintln!("the roles moved {moved:?} after the leader was killed");
    assert!(
        moved < Duration::from_secs(15),
        "the roles moved after {moved:?}"
    );
    // The status says who runs each role.
    let survivor = &cluster.replicas[(leader + 1) % 3];
    let (status, report) = survivor
        .platform(Method::GET, "/v1/status", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let leaders = report["leaders"].as_array().expect("leaders in the status");
    assert_eq!(leaders.len(), roles.len(), "{report}");
    for leader_row in leaders {
        let holder = leader_row["holder"].as_str().unwrap_or_default();
        assert!(
            holder.starts_with("replica-") && holder != format!("replica-{leader}"),
            "{report}"
        );
    }
    for (index, replica) in cluster.replicas.iter_mut().enumerate() {
        if index != leader {
            replica.stop();
        }
    }
}

/// Each replica in turn is stopped (SIGTERM) and replaced by a new pod while 1,000 transactions
/// and 300 platform PUTs stream in: every acknowledged event is stored and processed once, no
/// stopped replica leaves a job waiting for its lease, and every room converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_loses_nothing_doubles_nothing_and_converges() {
    const TRANSACTIONS: usize = 1_000;
    const ROOMS: usize = 30;
    const PUTS_PER_ROOM: usize = 10;
    let mut cluster = Cluster::start(3, "", |_| {}).await;
    let hs = environment().synapse.url.clone();
    let members: Vec<String> = (0..PUTS_PER_ROOM - 1)
        .map(|i| format!("replicas-roll-{i}"))
        .collect();
    for localpart in &members {
        register_user(&hs, localpart).await;
    }
    let token = cluster.replicas[0].config.tenant_token("tenantA");
    // The room the transactions' joins are in: declared and made before the stream starts.
    let joiner = member("replicas-roll-0");
    let home = cluster.replicas[0]
        .declare(
            "tenantA",
            "group",
            "rolling-home",
            json!({"name": "Home", "visibility": "private",
                   "members": [{"user_id": joiner, "role": "member"}]}),
        )
        .await;
    let home_room = home["result"]["room_id"].as_str().unwrap().to_owned();

    // Synapse's side: one transaction at a time through the registered port, each a join of
    // the declared member (a news item for the feed each time, as no prev_content says it was in).
    let front = format!("http://127.0.0.1:{}", environment().config.appservice_port);
    let hs_token = cluster.replicas[0].config.tokens.hs_token.clone();
    let transactions = {
        let (front, hs_token, home_room, joiner) = (
            front.clone(),
            hs_token.clone(),
            home_room.clone(),
            joiner.clone(),
        );
        tokio::spawn(async move {
            let mut acknowledged = 0;
            for i in 0..TRANSACTIONS {
                let event =
                    events::member(&format!("$roll-{i}"), &home_room, &joiner, &joiner, "join");
                let body = events::transaction(&[event]);
                // Synapse sends a transaction again until it is acknowledged.
                loop {
                    let answer = http_client()
                        .put(format!("{front}/_matrix/app/v1/transactions/roll-{i}"))
                        .bearer_auth(&hs_token)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    if answer.is_ok_and(|answer| answer.status() == StatusCode::OK) {
                        acknowledged += 1;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            acknowledged
        })
    };
    // The platform's side: 300 PUTs over 30 rooms, each to a replica in turn (skipping one that
    // is gone, as the Service does), again until answered 202.
    let platform_ports: Vec<u16> = cluster
        .replicas
        .iter()
        .map(|r| r.config.platform_port)
        .collect();
    let puts = {
        let (token, members) = (token.clone(), members.clone());
        let ports = std::sync::Arc::new(std::sync::Mutex::new(platform_ports));
        let shared = ports.clone();
        let handle = tokio::spawn(async move {
            let mut turn = 0usize;
            for step in 0..PUTS_PER_ROOM {
                for room in 0..ROOMS {
                    let (path, body) = if step == 0 {
                        (
                            format!("/v1/tenants/tenantA/rooms/event/rolling-{room}"),
                            json!({"name": format!("Rolling {room}"), "visibility": "private", "members": []}),
                        )
                    } else {
                        (
                            format!(
                                "/v1/tenants/tenantA/rooms/event/rolling-{room}/members/{}",
                                encode(&member(&members[step - 1]))
                            ),
                            json!({"role": "participant"}),
                        )
                    };
                    loop {
                        let port = {
                            let ports = shared.lock().unwrap();
                            ports[turn % ports.len()]
                        };
                        turn += 1;
                        let answer = http_client()
                            .put(format!("http://127.0.0.1:{port}{path}"))
                            .bearer_auth(&token)
                            .header("content-type", "application/json")
                            .body(body.to_string())
                            .send()
                            .await;
                        if answer.is_ok_and(|answer| answer.status() == StatusCode::ACCEPTED) {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        });
        (handle, ports)
    };

    // Roll: each replica stopped, its jobs handed back, and a new pod in its place.
    for index in 0..3 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stopped_worker = cluster.replicas[index]
            .config
            .extra_yaml
            .lines()
            .find_map(|line| line.trim().strip_prefix("worker_id: ").map(str::to_owned))
            .unwrap();
        cluster.replicas[index].stop();
        let left = cluster.count(&format!(
            "SELECT COUNT(*) AS n FROM jobs WHERE status = 'running' AND lease_owner = '{stopped_worker}'"
        ));
        assert_eq!(
            left, 0,
            "{stopped_worker} stopped with jobs still leased to it"
        );
        cluster.replace(index).await;
        puts.1.lock().unwrap()[index] = cluster.replicas[index].config.platform_port;
    }
    assert_eq!(transactions.await.unwrap(), TRANSACTIONS);
    puts.0.await.unwrap();

    // Nothing acknowledged lost, nothing processed twice.
    let survivor = &cluster.replicas[0];
    eventually("every event processed", Duration::from_secs(60), || async {
        (cluster.count(
            "SELECT COUNT(*) AS n FROM inbox_events WHERE event_id LIKE '$roll-%' AND processed_at IS NOT NULL",
        ) == TRANSACTIONS as i64)
            .then_some(())
    })
    .await;
    assert_eq!(
        cluster.count("SELECT COUNT(*) AS n FROM inbox_events WHERE event_id LIKE '$roll-%'"),
        TRANSACTIONS as i64
    );
    let joined = cluster.count(&format!(
        "SELECT COUNT(*) AS n FROM outbox_events WHERE type = 'member.joined' AND data LIKE '%{home_room}%'"
    ));
    assert_eq!(joined, TRANSACTIONS as i64, "each join told once");

    // Every room converged: its latest job succeeded and every declared member is in.
    for room in 0..ROOMS {
        let slug = format!("rolling-{room}");
        eventually(
            &format!("{slug} converged"),
            Duration::from_secs(240),
            || async {
                let room = survivor.get_room("tenantA", "event", &slug).await;
                let room_id = room["room_id"].as_str()?;
                let inside = still_in(room_id);
                let all_in = members
                    .iter()
                    .all(|localpart| inside.contains(&member(localpart)));
                (room["status"] == "ready" && all_in).then_some(())
            },
        )
        .await;
    }
    for replica in cluster.replicas.iter_mut() {
        replica.stop();
    }
}

/// Old rows to prune, as jobs that ended long ago.
fn seed_old_jobs(database_url: &str, count: i64, tag: &str) {
    let mut db = PgConnection::establish(database_url).unwrap();
    diesel::sql_query(format!(
        "INSERT INTO jobs (tenant_id, kind, payload, status, attempts, run_after, txn_prefix, created_at, updated_at) \
         SELECT 'tenantA', 'send_message', '{{}}', 'succeeded', 1, 0, '{tag}-' || n, 1000, 1000 \
         FROM generate_series(1, {count}) AS n"
    ))
    .execute(&mut db)
    .unwrap();
}

/// The jobs replica `replica` pruned.
async fn pruned(replica: &Daemon) -> i64 {
    replica
        .metric("openmeet_as_retention_deleted_total", "table=\"jobs\"")
        .await as i64
}

/// The pruner runs on one replica: replicas that join while it holds the role prune nothing
/// (each replica used to prune at its start), and when it stops another takes over and prunes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_prunes_and_another_takes_over_when_it_stops() {
    let mut cluster = Cluster::start(1, "", |url| seed_old_jobs(url, 1_200, "first")).await;
    let old = "SELECT COUNT(*) AS n FROM jobs WHERE created_at = 1000";
    eventually(
        "the first old jobs pruned",
        Duration::from_secs(60),
        || async { (cluster.count(old) == 0).then_some(()) },
    )
    .await;
    seed_old_jobs(&cluster.database_url, 600, "second");
    cluster.add().await;
    cluster.add().await;
    // A replica that pruned at its start did so before it was ready; give them the time anyway.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(cluster.count(old), 600, "a joining replica pruned");
    assert_eq!(
        (
            pruned(&cluster.replicas[1]).await,
            pruned(&cluster.replicas[2]).await
        ),
        (0, 0)
    );
    assert_eq!(pruned(&cluster.replicas[0]).await, 1_200);

    // The pruner stops; another replica takes the role at once and prunes what is left.
    cluster.replicas[0].stop();
    cluster.replicas[0].config.database_url = String::new();
    eventually(
        "the second old jobs pruned",
        Duration::from_secs(30),
        || async { (cluster.count(old) == 0).then_some(()) },
    )
    .await;
    let counts = (
        pruned(&cluster.replicas[1]).await,
        pruned(&cluster.replicas[2]).await,
    );
    assert!(counts == (600, 0) || counts == (0, 600), "{counts:?}");
    for replica in cluster.replicas.iter_mut() {
        replica.stop();
    }
}

/// The probe, every second on three replicas: one replica sends the markers, one per interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_sends_one_marker_per_interval_across_three_replicas() {
    let mut cluster = Cluster::start(3, "", |_| {}).await;
    let _ = &mut cluster;
    // (The probe interval is a homeserver setting: restart the replicas with it on.)
    for replica in cluster.replicas.iter_mut() {
        replica.stop();
        replica.config.probe_interval_seconds = 1;
    }
    for replica in cluster.replicas.iter_mut() {
        replica.restart().await;
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut sent = Vec::new();
    for replica in &cluster.replicas {
        sent.push(replica.metric("openmeet_as_probes_sent_total", "").await as u64);
    }
    let elapsed = started.elapsed().as_secs();
    assert_eq!(
        sent.iter().filter(|count| **count > 0).count(),
        1,
        "more than one replica probed: {sent:?}"
    );
    let total: u64 = sent.iter().sum();
    assert!(
        total >= 3 && total <= elapsed + 2,
        "{total} markers in {elapsed} s at one per second: {sent:?}"
    );
    for replica in cluster.replicas.iter_mut() {
        replica.stop();
    }
}
