#![allow(dead_code)]
//! A real Synapse for end-to-end tests, run by `tests/support/synapse.py`.
//!
//! Starting one costs a few seconds, so a test binary should share one:
//!
//! ```ignore
//! static SYNAPSE: OnceLock<Synapse> = OnceLock::new();
//! let hs = SYNAPSE.get_or_init(|| Synapse::start("test.local", &[registration]));
//! ```
//!
//! A static is never dropped, but the watchdog (synapse.py stops Synapse when
//! its stdin reaches EOF) still stops it when the test process exits.
//! `Synapse::start` blocks; call it before or outside async code that must not block.

use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use super::python;

/// Upper bound for synapse.py to report READY (it gives Synapse 120 s itself).
const START_TIMEOUT: Duration = Duration::from_secs(150);

/// Where a Synapse runs; every field defaults to something fresh.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    pub port: Option<u16>,
    pub workdir: Option<PathBuf>,
    pub database_dir: Option<PathBuf>,
    /// Delegate authentication to a stand-in Matrix Authentication Service (MSC3861), as
    /// OpenMeet's own Synapse does: humans log in through it ([`Synapse::mas_url`]).
    pub mas: bool,
    /// Let the tenant bots list rooms in the server-wide directory
    /// (`room_list_publication_rules`), as an operator does who opts a tenant into it
    /// (`tenants[].server_directory`, DESIGN §7.5). Without it the homeserver.yaml is Synapse's
    /// defaults plus the registration, which publish nothing.
    pub allow_publication: bool,
    /// Load the `synapse-http-antispam` module pointed at the daemon: `(base_url, token file)`,
    /// with the `modules:` block `docs/operations.md` tells operators to set (DESIGN §7.3).
    pub antispam: Option<(String, PathBuf)>,
}

impl Placement {
    /// Fresh everything, on `port`.
    pub fn at_port(port: u16) -> Self {
        Self {
            port: Some(port),
            ..Self::default()
        }
    }
}

/// One Synapse for [`start_pair`]: its server name, the registrations it loads, where it runs.
pub struct Start<'a>(pub &'a str, pub &'a [PathBuf], pub Placement);

pub struct Synapse {
    /// Client-server API base, e.g. `http://127.0.0.1:38117` (no trailing slash).
    pub url: String,
    pub server_name: String,
    /// homeserver.yaml, homeserver.log, synapse.stderr.log, media_store, ...
    pub workdir: PathBuf,
    /// The stand-in MAS this Synapse delegates authentication to, if started with `mas`.
    pub mas_url: Option<String>,
    /// synapse.py, with our end of its stdin: dropping that stops Synapse.
    child: Child,
}

impl Synapse {
    /// Starts a fresh Synapse (empty SQLite database) for `server_name` on a
    /// free port of 127.0.0.1, with these appservice registration files.
    /// Panics with Synapse's log when it does not come up.
    pub fn start(server_name: &str, registrations: &[PathBuf]) -> Synapse {
        Self::start_with(server_name, registrations, &Placement::default())
    }

    /// Like [`Synapse::start`], at a chosen port and workdir, with the database in a directory
    /// that outlives this process when given (a restart of the same Synapse), or a fresh one (a
    /// Synapse whose database was wiped).
    pub fn start_with(
        server_name: &str,
        registrations: &[PathBuf],
        placement: &Placement,
    ) -> Synapse {
        let workdir = placement
            .workdir
            .clone()
            .unwrap_or_else(|| python::scratch_dir("synapse"));
        let port = placement.port.unwrap_or_else(python::free_port);
        let mut args = vec![
            "--workdir".to_owned(),
            workdir.display().to_string(),
            "--port".to_owned(),
            port.to_string(),
            "--server-name".to_owned(),
            server_name.to_owned(),
        ];
        if let Some(dir) = &placement.database_dir {
            args.push("--database-dir".to_owned());
            args.push(dir.display().to_string());
        }
        for registration in registrations {
            args.push("--registration".to_owned());
            args.push(registration.display().to_string());
        }
        if placement.mas {
            args.push("--mas".to_owned());
        }
        if placement.allow_publication {
            args.push("--allow-publication".to_owned());
        }
        if let Some((base_url, token_file)) = &placement.antispam {
            args.push("--antispam-url".to_owned());
            args.push(base_url.clone());
            args.push("--antispam-token-file".to_owned());
            args.push(token_file.display().to_string());
        }
        let started = std::time::Instant::now();
        match python::spawn_until_ready(
            "synapse.py",
            &args,
            &workdir.join("synapse.py.log"),
            START_TIMEOUT,
        ) {
            Ok((child, url)) => {
                eprintln!(
                    "synapse: {url} ({server_name}{}) ready in {:.1} s, workdir {}",
                    if placement.mas { ", MAS-delegated" } else { "" },
                    started.elapsed().as_secs_f64(),
                    workdir.display()
                );
                let mas_url = placement.mas.then(|| {
                    homeserver_yaml(&workdir)["matrix_authentication_service"]["endpoint"]
                        .as_str()
                        .expect("synapse.py --mas writes the stand-in's endpoint")
                        .trim_end_matches('/')
                        .to_owned()
                });
                Synapse {
                    url,
                    server_name: server_name.to_owned(),
                    workdir,
                    mas_url,
                    child,
                }
            }
            Err(message) => panic!(
                "Synapse did not start: {message}\nThe whole log is {}.",
                workdir.join("homeserver.log").display()
            ),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("the URL ends with the port")
    }

    /// Synapse's own SQLite database, opened beside it.
    fn database(&self) -> diesel::SqliteConnection {
        use diesel::Connection;
        let config = homeserver_yaml(&self.workdir);
        let path = config["database"]["args"]["database"]
            .as_str()
            .expect("Synapse's SQLite path");
        diesel::SqliteConnection::establish(path).expect("open Synapse's database")
    }

    /// Current memberships in `room_id` straight from Synapse's own database
    /// (`local_current_membership`): what is true even when no user can see the room any more.
    pub fn current_memberships(&self, room_id: &str) -> Vec<(String, String)> {
        use diesel::RunQueryDsl;
        use diesel::sql_types::Text;
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            user_id: String,
            #[diesel(sql_type = Text)]
            membership: String,
        }
        let mut conn = self.database();
        diesel::sql_query("SELECT user_id, membership FROM local_current_membership WHERE room_id = ? ORDER BY user_id")
            .bind::<Text, _>(room_id)
            .load::<Row>(&mut conn)
            .expect("read memberships")
            .into_iter()
            .map(|row| (row.user_id, row.membership))
            .collect()
    }

    /// How many events room `room_id` has, and how many rooms `creator` made, straight from
    /// Synapse's database: a run that must change nothing leaves both as they were.
    pub fn events_and_rooms(&self, room_id: &str, creator: &str) -> (i64, i64) {
        use diesel::RunQueryDsl;
        use diesel::sql_types::{BigInt, Text};
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = self.database();
        let mut count = |sql: &str, bind: &str| {
            diesel::sql_query(sql)
                .bind::<Text, _>(bind)
                .get_result::<Count>(&mut conn)
                .expect("count")
                .n
        };
        (
            count(
                "SELECT COUNT(*) AS n FROM events WHERE room_id = ?",
                room_id,
            ),
            count("SELECT COUNT(*) AS n FROM rooms WHERE creator = ?", creator),
        )
    }

    /// Makes `user_id` a server admin in Synapse's own database (what `register_new_matrix_user
    /// --admin` gives an operator). Call it before the user's first admin request: Synapse
    /// caches the answer.
    pub fn make_admin(&self, user_id: &str) {
        use diesel::RunQueryDsl;
        use diesel::sql_types::Text;
        let mut conn = self.database();
        diesel::sql_query("PRAGMA busy_timeout = 10000")
            .execute(&mut conn)
            .expect("set a busy timeout");
        let changed = diesel::sql_query("UPDATE users SET admin = 1 WHERE name = ?")
            .bind::<Text, _>(user_id)
            .execute(&mut conn)
            .expect("make the user an admin");
        assert_eq!(changed, 1, "{user_id} is not a user of this Synapse");
    }

    pub fn log_path(&self) -> PathBuf {
        self.workdir.join("homeserver.log")
    }

    /// The last `lines` lines of Synapse's log, e.g. for a failing test's message.
    pub fn log_tail(&self, lines: usize) -> String {
        python::file_tail(&self.log_path(), lines)
    }

    /// `@localpart:server_name`
    pub fn user_id(&self, localpart: &str) -> String {
        format!("@{localpart}:{}", self.server_name)
    }
}

/// The homeserver.yaml synapse.py wrote into `workdir`.
fn homeserver_yaml(workdir: &std::path::Path) -> serde_yaml::Value {
    let text =
        std::fs::read_to_string(workdir.join("homeserver.yaml")).expect("read homeserver.yaml");
    serde_yaml::from_str(&text).expect("parse homeserver.yaml")
}

/// Runs two start-ups at once (each Synapse start is mostly waiting for its own Python process),
/// e.g. the default homeserver and the MAS-delegated second one.
pub fn start_both<A: Send, B: Send>(
    first: impl FnOnce() -> A + Send,
    second: impl FnOnce() -> B + Send,
) -> (A, B) {
    std::thread::scope(|scope| {
        let second = scope.spawn(second);
        let first = first();
        let second = second
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (first, second)
    })
}

/// Starts two Synapses at once with [`start_both`], e.g. the default homeserver and the
/// MAS-delegated second one.
pub fn start_pair(first: Start<'_>, second: Start<'_>) -> (Synapse, Synapse) {
    start_both(
        || Synapse::start_with(first.0, first.1, &first.2),
        || Synapse::start_with(second.0, second.1, &second.2),
    )
}

impl Drop for Synapse {
    fn drop(&mut self) {
        // EOF on synapse.py's stdin: it stops Synapse (SIGTERM, SIGKILL after 10 s) and exits.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
