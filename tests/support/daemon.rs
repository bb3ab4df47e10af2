//! Runs the real `openmeet-appservice` binary with a throwaway config, and talks to it over HTTP.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::matrix_client::http_client;
use super::python::free_port;
pub use super::second_homeserver::ExtraHomeserver;

pub const BIN: &str = env!("CARGO_BIN_EXE_openmeet-appservice");

/// Tokens a test can recognise if they ever leak into a log line.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub as_token: String,
    pub hs_token: String,
    pub tenant_token: String,
}

impl Tokens {
    pub fn fresh() -> Self {
        let nonce = || {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes).expect("random bytes");
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        Self {
            as_token: format!("as{}", nonce()),
            hs_token: format!("hs{}", nonce()),
            tenant_token: format!("tt{}", nonce()),
        }
    }
}

/// Everything that varies between test daemons.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    pub dir: PathBuf,
    pub homeserver_url: String,
    pub server_name: String,
    pub database_url: String,
    pub appservice_port: u16,
    pub platform_port: u16,
    pub metrics_port: u16,
    pub tokens: Tokens,
    /// (id, name) of each tenant; every tenant gets `tokens.tenant_token` with its id appended.
    pub tenants: Vec<(String, String)>,
    pub extra_yaml: String,
    /// `homeserver.timeout_seconds`.
    pub homeserver_timeout_seconds: u64,
    /// `homeserver.room_version`; `None`: the homeserver's default.
    pub room_version: Option<String>,
    /// The appservice port is in a registration Synapse loaded, so it must never change.
    pub appservice_port_registered: bool,
    /// Where the daemon listens for Synapse when not at `appservice_port` (the registered one): a
    /// replica behind a proxy that holds the registered port.
    pub appservice_listen_port: Option<u16>,
    /// `logging.level`; "debug" unless a test (or the benchmark) wants less.
    pub log_level: String,
    /// `logging.format` (`human` or `json`); `None`: the daemon's default.
    pub log_format: Option<String>,
    /// `homeserver.check_interval_seconds`.
    pub check_interval_seconds: u64,
    /// `homeserver.probe_interval_seconds`; 0 (off) unless a test wants the probe, so that test
    /// daemons do not each create a probe room in the shared Synapse.
    pub probe_interval_seconds: u64,
    /// More secrets a test gave the daemon (an admin token, a rotated token): no log line may
    /// carry them either.
    pub extra_secrets: Vec<String>,
    /// hs_tokens accepted after `tokens.hs_token` (a rotation in progress).
    pub previous_hs_tokens: Vec<String>,
    /// `homeservers[]`: more homeservers, each with its own tokens and tenants.
    pub homeservers: Vec<ExtraHomeserver>,
    /// (tenant id, url, secret): the tenant's `webhook`. Its secret must never be logged either.
    pub webhooks: Vec<(String, String, String)>,
    /// The tenants whose public rooms are also listed in the server-wide directory
    /// (`tenants[].server_directory: true`).
    pub server_directory: Vec<String>,
    /// `appservice.antispam_token`: the token Synapse's synapse-http-antispam module presents.
    pub antispam_token: Option<String>,
    /// (tenant id, YAML flow mapping): the tenant's `rules`.
    pub rules: Vec<(String, String)>,
}

impl DaemonConfig {
    /// A config in a fresh directory, on `database_url` (`None`: a SQLite file in that directory),
    /// pointing at a homeserver that is not there unless `homeserver_url` is changed.
    pub fn new(name: &str, database_url: Option<String>) -> Self {
        let _ = name;
        let dir = super::python::scratch_dir("daemon");
        let database_url = database_url
            .unwrap_or_else(|| format!("sqlite://{}", dir.join("appservice.db").display()));
        Self {
            homeserver_url: format!("http://127.0.0.1:{}", free_port()),
            server_name: "test.openmeet.invalid".into(),
            database_url,
            appservice_port: free_port(),
            platform_port: free_port(),
            metrics_port: free_port(),
            tokens: Tokens::fresh(),
            tenants: vec![("tenantA".into(), "Tenant A".into())],
            extra_yaml: String::new(),
            log_level: "debug".into(),
            log_format: None,
            appservice_port_registered: false,
            appservice_listen_port: None,
            room_version: None,
            homeserver_timeout_seconds: 10,
            check_interval_seconds: 60,
            probe_interval_seconds: 0,
            extra_secrets: Vec::new(),
            previous_hs_tokens: Vec::new(),
            homeservers: Vec::new(),
            webhooks: Vec::new(),
            server_directory: Vec::new(),
            antispam_token: None,
            rules: Vec::new(),
            dir,
        }
    }

    /// The port this daemon's appservice listener is on (not the registered one behind a proxy).
    pub fn listening_appservice_port(&self) -> u16 {
        self.appservice_listen_port.unwrap_or(self.appservice_port)
    }

    pub fn tenant_token(&self, tenant: &str) -> String {
        format!("{}{}", self.tokens.tenant_token, tenant.to_lowercase())
    }

    pub fn yaml(&self) -> String {
        let tenants: String = self
            .tenants
            .iter()
            .map(|(id, name)| {
                let homeserver = ExtraHomeserver::of_tenant(&self.homeservers, id);
                let webhook = self
                    .webhooks
                    .iter()
                    .find(|(tenant, _, _)| tenant == id)
                    .map(|(_, url, secret)| {
                        format!(", webhook: {{url: {url:?}, secret: {secret:?}}}")
                    })
                    .unwrap_or_default();
                let server_directory = if self.server_directory.contains(id) {
                    ", server_directory: true"
                } else {
                    ""
                };
                let rules = self
                    .rules
                    .iter()
                    .find(|(tenant, _)| tenant == id)
                    .map(|(_, rules)| format!(", rules: {rules}"))
                    .unwrap_or_default();
                format!(
                    "  - {{id: {id}, name: {name:?}, api_token: {}{homeserver}{webhook}{server_directory}{rules}}}\n",
                    self.tenant_token(id)
                )
            })
            .collect();
        let homeservers = ExtraHomeserver::section(&self.homeservers, self);
        format!(
            "homeserver:\n  url: {hs}\n  server_name: {server}\n  timeout_seconds: {timeout}\n  \
             check_interval_seconds: {check}\n  probe_interval_seconds: {probe}\n{room_version}\
             appservice:\n  id: openmeet-test\n  sender_localpart: openmeet-bot\n  bot_prefix: openmeet-bot-\n  \
             as_token: {as_token}\n  hs_token: {hs_token}\n  url: http://127.0.0.1:{asp}\n{antispam}\
             listen:\n  appservice: 127.0.0.1:{listen_asp}\n  platform: 127.0.0.1:{pp}\n  metrics: 127.0.0.1:{mp}\n\
             database:\n  url: {db}\n  acquire_timeout_ms: 1000\n\
             tenants:\n{tenants}{homeservers}\
             logging:\n  level: {log_level}\n{log_format}{extra}",
            hs = self.homeserver_url,
            timeout = self.homeserver_timeout_seconds,
            check = self.check_interval_seconds,
            probe = self.probe_interval_seconds,
            room_version = self
                .room_version
                .as_ref()
                .map(|version| format!("  room_version: {version:?}\n"))
                .unwrap_or_default(),
            server = self.server_name,
            as_token = self.tokens.as_token,
            hs_token = if self.previous_hs_tokens.is_empty() {
                self.tokens.hs_token.clone()
            } else {
                format!(
                    "[{}, {}]",
                    self.tokens.hs_token,
                    self.previous_hs_tokens.join(", ")
                )
            },
            asp = self.appservice_port,
            antispam = self
                .antispam_token
                .as_ref()
                .map(|token| format!("  antispam_token: {token}\n"))
                .unwrap_or_default(),
            listen_asp = self.listening_appservice_port(),
            pp = self.platform_port,
            mp = self.metrics_port,
            db = self.database_url,
            log_level = self.log_level,
            log_format = self
                .log_format
                .as_ref()
                .map(|format| format!("  format: {format}\n"))
                .unwrap_or_default(),
            extra = self.extra_yaml,
        )
    }

    /// Writes the config and spawns `serve` on it, its output appended to `log`.
    pub fn spawn_serve(&self, log: &Path) -> Child {
        let config_path = self.write();
        let log = File::options()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the daemon log");
        Command::new(BIN)
            .arg("serve")
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn openmeet-appservice serve")
    }

    /// Writes the config file and returns its path.
    pub fn write(&self) -> PathBuf {
        let path = self.dir.join("config.yaml");
        std::fs::write(&path, self.yaml()).expect("write the daemon's config");
        path
    }

    /// Every secret this config holds.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![self.tokens.as_token.clone(), self.tokens.hs_token.clone()];
        secrets.extend(self.tenants.iter().map(|(id, _)| self.tenant_token(id)));
        secrets.extend(self.extra_secrets.iter().cloned());
        for homeserver in &self.homeservers {
            secrets.push(homeserver.tokens.as_token.clone());
            secrets.push(homeserver.tokens.hs_token.clone());
        }
        secrets.extend(self.previous_hs_tokens.iter().cloned());
        secrets.extend(self.webhooks.iter().map(|(_, _, secret)| secret.clone()));
        secrets.extend(self.antispam_token.iter().cloned());
        secrets
    }

    /// Panics when `text` (a log, or what a command printed on stderr) carries a secret.
    pub fn assert_no_secret_in(&self, what: &str, text: &str) {
        for secret in self.secrets() {
            assert!(
                !text.contains(&secret),
                "a secret leaked into {what}:\n{}",
                text.replace(&secret, "<THE SECRET>")
            );
        }
    }

    /// Runs a CLI subcommand on this config and returns (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let config = self.write();
        let mut command = Command::new(BIN);
        command.arg(args[0]).arg("-c").arg(&config).args(&args[1..]);
        self.output(command, args)
    }

    /// Runs a command line as written, `{config}` standing for the config file's path.
    pub fn cli_as_written(&self, args: &[&str]) -> (i32, String, String) {
        let config = self.write();
        let config = config.to_str().expect("a UTF-8 path");
        let mut command = Command::new(BIN);
        command.env_remove("OPENMEET_AS_CONFIG");
        command.args(args.iter().map(|arg| arg.replace("{config}", config)));
        self.output(command, args)
    }

    fn output(&self, mut command: Command, args: &[&str]) -> (i32, String, String) {
        let output = command.output().expect("run openmeet-appservice");
        use std::os::unix::process::ExitStatusExt;
        // stdout may carry tokens by design (`registration`); stderr is log lines and errors.
        self.assert_no_secret_in(
            &format!("the stderr of `{}`", args.join(" ")),
            &String::from_utf8_lossy(&output.stderr),
        );
        (
            output
                .status
                .code()
                .unwrap_or_else(|| -output.status.signal().unwrap_or(1000)),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// The registration YAML the daemon prints for this config, written next to it.
    pub fn registration(&self) -> PathBuf {
        let (code, stdout, stderr) = self.cli(&["registration"]);
        assert_eq!(code, 0, "registration failed: {stderr}");
        let path = self.dir.join("registration.yaml");
        std::fs::write(&path, stdout).expect("write the registration");
        path
    }

    /// The registration `registration --homeserver ID` prints, written next to the config.
    pub fn registration_of(&self, homeserver: &str) -> PathBuf {
        let (code, stdout, stderr) = self.cli(&["registration", "--homeserver", homeserver]);
        assert_eq!(
            code, 0,
            "registration --homeserver {homeserver} failed: {stderr}"
        );
        let path = self.dir.join(format!("registration-{homeserver}.yaml"));
        std::fs::write(&path, stdout).expect("write the registration");
        path
    }
}

/// A running daemon; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Daemon {
    pub config: DaemonConfig,
    child: Option<Child>,
    log_path: PathBuf,
    starts: u32,
}

impl Daemon {
    pub async fn start(config: DaemonConfig) -> Self {
        let mut daemon = Self {
            log_path: config.dir.join("daemon.log"),
            config,
            child: None,
            starts: 0,
        };
        // A port picked by `free_port` may be taken by someone else before the daemon binds it:
        // then pick new ones (only here: a restart must keep its ports).
        for _ in 0..3 {
            match daemon.try_start().await {
                Ok(()) => return daemon,
                Err(logs) if logs.contains("for listen.platform:") => {
                    daemon.config.platform_port = free_port();
                }
                Err(logs) if logs.contains("for listen.metrics:") => {
                    daemon.config.metrics_port = free_port();
                }
                Err(logs)
                    if logs.contains("for listen.appservice:")
                        && daemon.config.appservice_listen_port.is_some() =>
                {
                    daemon.config.appservice_listen_port = Some(free_port());
                }
                Err(logs)
                    if logs.contains("for listen.appservice:")
                        && !daemon.config.appservice_port_registered =>
                {
                    daemon.config.appservice_port = free_port();
                }
                Err(logs) => panic!("the daemon exited at start:\n{logs}"),
            }
        }
        panic!(
            "the daemon found no free ports in 3 attempts:\n{}",
            daemon.logs()
        );
    }

    /// Starts the process (again) on the same config and database; waits until it answers.
    pub async fn restart(&mut self) {
        if let Err(logs) = self.try_start().await {
            panic!("the daemon exited at start:\n{logs}");
        }
    }

    /// Starts the process; `Err` with its logs when it exits before answering.
    async fn try_start(&mut self) -> Result<(), String> {
        assert!(
            self.child.is_none(),
            "stop the daemon before starting it again"
        );
        // Only this attempt's lines tell why it failed: the log is appended to across restarts.
        let offset = std::fs::metadata(&self.log_path).map_or(0, |m| m.len() as usize);
        self.child = Some(self.config.spawn_serve(&self.log_path));
        self.starts += 1;
        let url = format!("http://127.0.0.1:{}/health/live", self.config.metrics_port);
        for _ in 0..400 {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                let logs = self.logs();
                return Err(format!(
                    "({status})\n{}",
                    logs.get(offset..).unwrap_or(&logs)
                ));
            }
            if http_client()
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "the daemon did not answer /health/live within 10 s:\n{}",
            self.logs()
        );
    }

    /// SIGTERM, and waits for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            // The worker's and webhooks' grace period is 10 s.
            for _ in 0..600 {
                if let Ok(Some(status)) = child.try_wait() {
                    assert!(
                        status.success(),
                        "the daemon did not exit cleanly on SIGTERM ({status}):\n{}",
                        self.logs()
                    );
                    return;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the daemon did not stop within 15 s of SIGTERM:\n{}",
                self.logs()
            );
        }
    }

    /// SIGKILL: a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Rewrites the config file from `self.config` and sends SIGHUP: the daemon reloads it.
    pub fn reload(&self) {
        self.config.write();
        self.hangup();
    }

    /// SIGHUP: the daemon re-reads its config file as it is on disk.
    pub fn hangup(&self) {
        let pid = self.pid().expect("the daemon runs");
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -HUP {pid} failed");
    }

    /// `/health/ready`: its status and body.
    pub async fn readiness(&self) -> (StatusCode, Value) {
        let response = http_client()
            .get(format!(
                "{}/health/ready",
                self.base(self.config.metrics_port)
            ))
            .send()
            .await
            .expect("readiness answers");
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Whether `/health/ready` answers 200 (false also when nothing answers).
    pub async fn is_ready(&self) -> bool {
        http_client()
            .get(format!(
                "{}/health/ready",
                self.base(self.config.metrics_port)
            ))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    }

    /// Waits until readiness is `want`.
    pub async fn wait_ready(&self, want: bool, within: Duration) {
        super::eventually(&format!("readiness to be {want}"), within, || async {
            (self.is_ready().await == want).then_some(())
        })
        .await;
    }

    /// Waits until the metric (summed over series matching `labels`) is at least `value`.
    pub async fn wait_metric(&self, name: &str, labels: &str, value: f64, within: Duration) {
        super::eventually(
            &format!("{name}{{{labels}}} >= {value}"),
            within,
            || async { (self.metric(name, labels).await >= value).then_some(()) },
        )
        .await;
    }

    /// The process id while the daemon runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    fn base(&self, port: u16) -> String {
        format!("http://127.0.0.1:{port}")
    }

    /// A request to the appservice listener with `token` as Bearer (none when `None`).
    pub async fn appservice(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut request = http_client().request(
            method,
            format!(
                "{}{path}",
                self.base(self.config.listening_appservice_port())
            ),
        );
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request
            .send()
            .await
            .expect("the appservice listener answers");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("answer is not JSON ({status}): {text:?}"));
        (status, json)
    }

    /// A request to the platform listener with `token` as Bearer (none when `None`).
    pub async fn platform(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.platform_raw(method, path, token, &[], body.map(|body| body.to_string()))
            .await
    }

    /// Like [`Daemon::platform`], with more headers (`X-OpenMeet-Actor`, `Idempotency-Key`) and
    /// a body sent as it is (it need not be JSON). The answer must be JSON.
    pub async fn platform_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut request = http_client().request(
            method,
            format!("{}{path}", self.base(self.config.platform_port)),
        );
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("the platform listener answers");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("answer is not JSON ({status}): {text:?}"));
        (status, json)
    }

    /// Waits until job `id` has ended (any status but queued and running) and returns it.
    pub async fn wait_for_job(&self, id: i64, token: &str) -> Value {
        self.wait_for_job_within(id, token, Duration::from_secs(60))
            .await
    }

    /// Like [`Daemon::wait_for_job`], failing after `within` (a big room's job takes minutes).
    pub async fn wait_for_job_within(&self, id: i64, token: &str, within: Duration) -> Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let (status, job) = self
                .platform(Method::GET, &format!("/v1/jobs/{id}"), Some(token), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{job}");
            if job["status"] != "queued" && job["status"] != "running" {
                return job;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "job {id} did not end within {within:?}: {job}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `PUT`s a room as `tenant` and returns its job id (the platform answered 202).
    pub async fn put_room(&self, tenant: &str, kind: &str, slug: &str, body: Value) -> i64 {
        let token = self.config.tenant_token(tenant);
        let path = format!("/v1/tenants/{tenant}/rooms/{kind}/{slug}");
        let (status, answer) = self
            .platform(Method::PUT, &path, Some(&token), Some(body))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        answer["job"]["id"].as_i64().expect("the job's id")
    }

    /// `PUT`s a room as `tenant`, waits for its job and asserts it succeeded; returns the job.
    pub async fn declare(&self, tenant: &str, kind: &str, slug: &str, body: Value) -> Value {
        let id = self.put_room(tenant, kind, slug, body).await;
        let job = self
            .wait_for_job(id, &self.config.tenant_token(tenant))
            .await;
        assert_eq!(job["status"], "succeeded", "{job}\n{}", self.logs());
        job
    }

    /// `DELETE`s a room as `tenant` and returns the teardown's job id (the platform answered 202).
    pub async fn delete_room(&self, tenant: &str, kind: &str, slug: &str) -> i64 {
        let token = self.config.tenant_token(tenant);
        let path = format!("/v1/tenants/{tenant}/rooms/{kind}/{slug}");
        let (status, answer) = self
            .platform(Method::DELETE, &path, Some(&token), None)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        answer["job"]["id"].as_i64().expect("the job's id")
    }

    /// `GET` a declared room as its tenant.
    pub async fn get_room(&self, tenant: &str, kind: &str, slug: &str) -> Value {
        let token = self.config.tenant_token(tenant);
        let path = format!("/v1/tenants/{tenant}/rooms/{kind}/{slug}");
        let (status, room) = self.platform(Method::GET, &path, Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{room}");
        room
    }

    /// Pushes a transaction as Synapse does.
    pub async fn push(&self, txn_id: &str, body: impl Into<String>) -> (StatusCode, Value) {
        let token = self.config.tokens.hs_token.clone();
        self.appservice(
            Method::PUT,
            &format!("/_matrix/app/v1/transactions/{txn_id}"),
            Some(&token),
            Some(body.into()),
        )
        .await
    }

    /// Pushes a transaction and asserts it was acknowledged with `{}`.
    pub async fn push_ok(&self, txn_id: &str, body: impl Into<String>) {
        let (status, answer) = self.push(txn_id, body).await;
        assert_eq!(
            (status, &answer),
            (StatusCode::OK, &serde_json::json!({})),
            "txn {txn_id}"
        );
    }

    /// The whole `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        http_client()
            .get(format!("{}/metrics", self.base(self.config.metrics_port)))
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics body")
    }

    /// The value of one sample of `/metrics` (summed over label sets matching `labels`).
    pub async fn metric(&self, name: &str, labels: &str) -> f64 {
        let text = self.metrics_text().await;
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
            .filter(|line| line.contains(labels))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// `inbox events`: the stored events, newest first.
    pub fn inbox_events(&self) -> Vec<Value> {
        self.json_lines(&["inbox", "events", "--limit", "10000"])
    }

    /// `inbox quarantine`: quarantined entries, newest first.
    pub fn quarantine(&self) -> Vec<Value> {
        self.json_lines(&["inbox", "quarantine", "--limit", "10000"])
    }

    fn json_lines(&self, args: &[&str]) -> Vec<Value> {
        let (code, stdout, stderr) = self.config.cli(args);
        assert_eq!(code, 0, "{args:?} failed: {stderr}");
        stdout
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            std::thread::sleep(Duration::from_millis(100));
            let _ = child.kill();
            let _ = child.wait();
        }
        // Leave no test database behind on a shared server (never panic while unwinding).
        if self.config.database_url.starts_with("postgres") {
            let url = self.config.database_url.clone();
            let _ = std::panic::catch_unwind(|| super::postgres::drop_database(&url));
        }
        // Every daemon of every test: no secret in any line it logged, at any level.
        if !std::thread::panicking() {
            self.config.assert_no_secret_in(
                &format!("the daemon log {}", self.log_path.display()),
                &self.logs(),
            );
        }
    }
}
