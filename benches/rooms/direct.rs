//! The limit: the same Matrix calls per room as the daemon's `ensure_room`, made straight to
//! Synapse by a minimal appservice client. The bodies and decisions come from the daemon's library
//! (`create_room_body`, the default role levels, `reconcile`), so that the baseline follows it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openmeet_appservice::rooms::{
    DeclaredRoom, RoomKind, Visibility, Wanted, create_room_body, privileged_creators, reconcile,
};
use reqwest::Method;
use ruma::{OwnedUserId, UserId};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::PER_TENANT;
use crate::common::daemon::SERVER_NAME;
use crate::measures::{EndpointStats, Pushed, Usage, UsageSnapshot};
use crate::plan::{level, room_members, room_name, room_topic, slug, tenant_of};
use crate::setup::send_json;
use crate::support::matrix_client::{encode, http_client};

/// A minimal appservice client: the as_token, identity assertion with `?user_id=`.
#[derive(Clone)]
pub struct Direct {
    client: reqwest::Client,
    hs: String,
    as_token: String,
    calls: Arc<Mutex<BTreeMap<&'static str, EndpointStats>>>,
}

pub struct DirectReport {
    pub label: String,
    pub rooms: usize,
    /// What Synapse pushed to the appservice for the run.
    pub pushed: Pushed,
    pub wall: Duration,
    pub mean_in_flight: f64,
    pub usage: Usage,
    pub endpoints: BTreeMap<String, EndpointStats>,
}

impl Direct {
    pub fn new(hs: &str, as_token: &str) -> Self {
        Self {
            client: http_client(),
            hs: hs.trim_end_matches('/').to_owned(),
            as_token: as_token.to_owned(),
            calls: Arc::default(),
        }
    }

    /// One call as `acting_as` (the appservice's sender when `None`); panics unless it succeeds
    /// or its errcode is `tolerated`.
    async fn call(
        &self,
        endpoint: &'static str,
        method: Method,
        path: &str,
        acting_as: Option<&str>,
        body: Option<&Value>,
        tolerated: Option<&str>,
    ) -> Value {
        let mut url = format!("{}{path}", self.hs);
        if let Some(user) = acting_as {
            url.push_str(if path.contains('?') { "&" } else { "?" });
            let _ = write!(url, "user_id={}", encode(user));
        }
        let started = Instant::now();
        let (status, answer) =
            send_json(&self.client, method, &url, Some(&self.as_token), body).await;
        let seconds = started.elapsed().as_secs_f64();
        let ok = status.is_success();
        {
            let mut calls = self.calls.lock().expect("calls lock");
            let stats = calls.entry(endpoint).or_default();
            stats.calls += 1.0;
            stats.seconds += seconds;
            stats.errors += f64::from(u8::from(!ok));
        }
        if !ok && (tolerated.is_none() || answer["errcode"].as_str() != tolerated) {
            panic!("{endpoint} {path}: {status} {answer}");
        }
        answer
    }

    /// `rooms` rooms of `per_room` members over `tenants` (room r to tenant r % 4),
    /// [`PER_TENANT`] at a time per tenant, so [`MAX_PARALLEL`] in flight in all.
    pub async fn run(
        &self,
        tenants: &[String],
        members: &[String],
        rooms: usize,
        per_room: usize,
        synapse_pid: u32,
    ) -> DirectReport {
        self.calls.lock().expect("calls lock").clear();
        let before = UsageSnapshot::take(None, synapse_pid);
        let started = Instant::now();
        let busy = Arc::new(Mutex::new(Duration::ZERO));
        let mut tenant_tasks = JoinSet::new();
        for (t, tenant) in tenants.iter().enumerate() {
            let queue: Vec<usize> = (0..rooms).filter(|room| tenant_of(*room) == t).collect();
            let queue = Arc::new(Mutex::new(queue.into_iter()));
            let (direct, tenant, members, busy) =
                (self.clone(), tenant.clone(), members.to_vec(), busy.clone());
            tenant_tasks.spawn(async move {
                let bot = format!("@openmeet-bot-{tenant}:{SERVER_NAME}");
                direct.ensure_bot(&bot, &tenant).await;
                let members = Arc::new(members);
                let mut workers = JoinSet::new();
                for _ in 0..PER_TENANT {
                    let (direct, tenant, bot, members, queue, busy) = (
                        direct.clone(),
                        tenant.clone(),
                        bot.clone(),
                        members.clone(),
                        queue.clone(),
                        busy.clone(),
                    );
                    workers.spawn(async move {
                        loop {
                            let Some(room) = queue.lock().expect("queue lock").next() else {
                                break;
                            };
                            let room_started = Instant::now();
                            direct
                                .ensure_room(
                                    &tenant,
                                    &bot,
                                    room,
                                    &room_members(&members, room, per_room),
                                )
                                .await;
                            *busy.lock().expect("busy lock") += room_started.elapsed();
                        }
                    });
                }
                while let Some(done) = workers.join_next().await {
                    done.expect("a direct worker panicked");
                }
            });
        }
        while let Some(done) = tenant_tasks.join_next().await {
            done.expect("a direct tenant panicked");
        }
        let wall = started.elapsed();
        let usage = UsageSnapshot::take(None, synapse_pid).since(&before);
        let busy = *busy.lock().expect("busy lock");
        DirectReport {
            label: String::new(),
            pushed: Pushed::default(),
            rooms,
            wall,
            mean_in_flight: busy.as_secs_f64() / wall.as_secs_f64(),
            usage,
            endpoints: self
                .calls
                .lock()
                .expect("calls lock")
                .iter()
                .map(|(endpoint, stats)| ((*endpoint).to_owned(), *stats))
                .collect(),
        }
    }

    /// One room of `members` as tenant `tenant`'s bot (room index `room` names it): the bot
    /// registered and named, then the room's `ensure_room`. Returns the time and the calls.
    pub async fn one_room(
        &self,
        tenant: &str,
        room: usize,
        members: &[(String, &str)],
    ) -> (Duration, BTreeMap<String, f64>) {
        self.calls.lock().expect("calls lock").clear();
        let started = Instant::now();
        let bot = format!("@openmeet-bot-{tenant}:{SERVER_NAME}");
        self.ensure_bot(&bot, tenant).await;
        self.ensure_room(tenant, &bot, room, members).await;
        let wall = started.elapsed();
        let calls = self.calls.lock().expect("calls lock");
        let calls = calls
            .iter()
            .map(|(endpoint, stats)| ((*endpoint).to_owned(), stats.calls))
            .collect();
        (wall, calls)
    }

    /// As the daemon's `ensure_bot`: register the bot (already registered is fine), name it.
    async fn ensure_bot(&self, bot: &str, tenant: &str) {
        let localpart = bot
            .strip_prefix('@')
            .and_then(|rest| rest.split(':').next())
            .expect("a user id");
        let body = json!({
            "type": "m.login.application_service",
            "username": localpart,
            "inhibit_login": true,
        });
        self.call(
            "register",
            Method::POST,
            "/_matrix/client/v3/register",
            None,
            Some(&body),
            Some("M_USER_IN_USE"),
        )
        .await;
        let path = format!("/_matrix/client/v3/profile/{}/displayname", encode(bot));
        let body = json!({"displayname": format!("OpenMeet (Bench {tenant})")});
        self.call(
            "set_display_name",
            Method::PUT,
            &path,
            Some(bot),
            Some(&body),
            None,
        )
        .await;
    }

    /// What one `ensure_room` job of a new room does in Synapse.
    async fn ensure_room(&self, tenant: &str, bot: &str, room: usize, members: &[(String, &str)]) {
        let capabilities = self
            .call(
                "get_capabilities",
                Method::GET,
                "/_matrix/client/v3/capabilities",
                Some(bot),
                None,
                None,
            )
            .await;
        let version = capabilities["capabilities"]["m.room_versions"]["default"]
            .as_str()
            .expect("a default room version")
            .to_owned();
        let bot_id = UserId::parse(bot).expect("the bot's user id");
        let desired: BTreeMap<OwnedUserId, i64> = members
            .iter()
            .map(|(user, role)| {
                (
                    UserId::parse(user.as_str()).expect("a member's user id"),
                    level(role),
                )
            })
            .collect();
        let declared = DeclaredRoom {
            kind: RoomKind::Event,
            slug: slug(room),
            tenant: tenant.to_owned(),
            name: room_name(room),
            topic: Some(room_topic(room)),
            visibility: Visibility::Private,
            open_to: None,
        };
        let body = create_room_body(&declared, &bot_id, &version, &desired);
        let created = self
            .call(
                "create_room",
                Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(bot),
                Some(&body),
                None,
            )
            .await;
        let room_id = created["room_id"].as_str().expect("a room id").to_owned();
        let state = self
            .call(
                "get_state_events",
                Method::GET,
                &format!("/_matrix/client/v3/rooms/{}/state", encode(&room_id)),
                Some(bot),
                None,
                None,
            )
            .await;
        let events = state.as_array().cloned().unwrap_or_default();
        let membership = |user: &str| {
            events
                .iter()
                .find(|e| e["type"] == "m.room.member" && e["state_key"] == user)
                .and_then(|e| e["content"]["membership"].as_str())
                .map(str::to_owned)
        };
        for (user, _) in members {
            if !matches!(membership(user).as_deref(), Some("join" | "invite")) {
                self.call(
                    "invite_user",
                    Method::POST,
                    &format!("/_matrix/client/v3/rooms/{}/invite", encode(&room_id)),
                    Some(bot),
                    Some(&json!({"user_id": user})),
                    None,
                )
                .await;
            }
        }
        // The daemon's reconcile: write the power levels only when the declared ones are not in.
        let state_event = |event_type: &str| {
            events
                .iter()
                .find(|e| e["type"] == event_type && e["state_key"] == "")
        };
        let current = state_event("m.room.power_levels")
            .map(|e| e["content"].clone())
            .unwrap_or_else(|| json!({}));
        let creators = state_event("m.room.create")
            .map(|e| {
                let sender = UserId::parse(e["sender"].as_str().expect("a sender"))
                    .expect("the creator's user id");
                privileged_creators(&version, &sender, &e["content"])
            })
            .unwrap_or_default();
        let wanted = Wanted {
            desired: &desired,
            muted: &BTreeSet::new(),
            owned: &BTreeSet::new(),
        };
        if let Some(wanted) = reconcile(&current, wanted, &bot_id, &creators).content {
            self.call(
                "send_state_event",
                Method::PUT,
                &format!(
                    "/_matrix/client/v3/rooms/{}/state/m.room.power_levels/",
                    encode(&room_id)
                ),
                Some(bot),
                Some(&wanted),
                None,
            )
            .await;
        }
    }
}
