//! The registration the chart renders: tokens kept across upgrades or read from an existing
//! Secret, byte for byte what `openmeet-appservice registration` prints for the chart's config,
//! and loaded by real Synapses that ping a daemon running on that config.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::render::{
    AWKWARD_TOKENS, BIN, E2E_SECOND_SERVER_NAME, E2E_SERVER_NAME, SECRETS_DIR, config_text,
    materialize, must, registration_text, registrations, rendered, stored_tokens,
};
use crate::support;
use crate::support::python::{free_port, scratch_dir};
use crate::support::synapse::{Synapse, start_both};

#[test]
fn generated_tokens_are_kept_across_upgrades_and_existing_secrets_give_the_registration() {
    let stored = stored_tokens();
    let tokens = &must("upgrade", "Secret", "-tokens")["decoded"];
    assert_eq!(tokens, &stored, "an upgrade must keep every stored token");
    let registration = registration_text("upgrade");
    assert!(
        registration.contains("as_token: stored-as-0123456789abcdef0123\n"),
        "{registration}"
    );
    assert!(
        registration.contains("hs_token: stored-hs-new-0123456789abcdef\n"),
        "{registration}"
    );

    // The tokens come from the operator's Secret: the chart stores none of them itself.
    let own = &must("existing-secret-readable", "Secret", "-tokens")["decoded"];
    assert_eq!(own, &json!({}));
    let dir = scratch_dir("helm");
    for (key, value) in stored.as_object().unwrap() {
        std::fs::write(dir.join(key), value.as_str().unwrap()).unwrap();
    }
    let config =
        config_text("existing-secret-readable").replace(SECRETS_DIR, &dir.display().to_string());
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let output = Command::new(BIN)
        .args(["registration", "-c"])
        .arg(dir.join("config.yaml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        registration_text("existing-secret-readable"),
        String::from_utf8(output.stdout).unwrap()
    );
}

#[test]
fn chart_registration_is_byte_for_byte_what_the_binary_prints() {
    let mut names: Vec<String> = vec![
        "default".into(),
        "fixed".into(),
        "e2e".into(),
        "distinct-sender".into(),
        "homeservers".into(),
        "homeservers-upgrade".into(),
    ];
    names.extend((0..AWKWARD_TOKENS.len()).map(|i| format!("awkward-{i}")));
    let mut compared = 0;
    for name in &names {
        let dir = materialize(name);
        // Every registration Secret of the case: the top-level homeserver's, then one per
        // homeservers[] entry, each against `registration --homeserver ID`.
        for (homeserver, text) in registrations(name) {
            let output = Command::new(BIN)
                .args(["registration", "-c"])
                .arg(dir.join("config.yaml"))
                .args(["--homeserver", &homeserver])
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{name}: registration --homeserver {homeserver} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let printed = String::from_utf8(output.stdout).unwrap();
            assert_eq!(
                text, printed,
                "{name}: the chart's registration of homeserver {homeserver} differs from the binary's"
            );
            compared += 1;
        }
    }
    assert_eq!(
        compared,
        names.len() + 5,
        "homeservers and homeservers-upgrade have two registrations more each, e2e one"
    );
    // A rotation: the current hs_token (first) is registered, the previous one is still accepted.
    assert!(registration_text("fixed").contains("hs_token: hs-current-0123456789abcdef01234567\n"));
    let hs_file = &must("fixed", "Secret", "-tokens")["decoded"]["hs_token"];
    assert_eq!(
        hs_file,
        "hs-current-0123456789abcdef01234567\nhs-previous-0123456789abcdef0123456\n"
    );
}

#[test]
fn synapse_loads_the_chart_registration_and_pings_a_daemon_on_the_chart_config() {
    // Two Synapses, each loading only its own registration Secret's content.
    let dir = materialize("e2e");
    for (id, text) in registrations("e2e") {
        std::fs::write(dir.join(format!("registration-{id}.yaml")), text).unwrap();
    }
    let (synapse, second) = start_both(
        || Synapse::start(E2E_SERVER_NAME, &[dir.join("registration-default.yaml")]),
        || {
            Synapse::start(
                E2E_SECOND_SERVER_NAME,
                &[dir.join("registration-second.yaml")],
            )
        },
    );

    let config = dir.join("config.yaml");
    let metrics_port = free_port();
    // What differs from a pod: the addresses and the database file, overridden the documented way.
    let env = [
        ("OPENMEET_AS__HOMESERVER__URL", synapse.url.clone()),
        (
            "OPENMEET_AS__HOMESERVERS__0__HOMESERVER__URL",
            second.url.clone(),
        ),
        (
            "OPENMEET_AS__LISTEN__APPSERVICE",
            format!("127.0.0.1:{}", rendered().e2e_appservice_port),
        ),
        (
            "OPENMEET_AS__LISTEN__PLATFORM",
            format!("127.0.0.1:{}", free_port()),
        ),
        (
            "OPENMEET_AS__LISTEN__METRICS",
            format!("127.0.0.1:{metrics_port}"),
        ),
        (
            "OPENMEET_AS__DATABASE__URL",
            format!("sqlite://{}", dir.join("appservice.db").display()),
        ),
    ];
    let run = |args: &[&str]| {
        let output = Command::new(BIN)
            .args(args)
            .arg("-c")
            .arg(&config)
            .envs(env.clone())
            .output()
            .unwrap();
        (
            output.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    };
    let (code, output) = run(&["migrate"]);
    assert_eq!(
        code,
        Some(0),
        "the init container's migrate failed:\n{output}"
    );
    let (code, output) = run(&["check"]);
    assert_eq!(
        code,
        Some(0),
        "check (the helm test) failed:\n{output}\nSynapse:\n{}\nSecond Synapse:\n{}",
        synapse.log_tail(30),
        second.log_tail(30)
    );
    assert!(
        output.contains(&format!("homeserver second ({E2E_SECOND_SERVER_NAME}):")),
        "check checks every homeserver:\n{output}"
    );

    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let mut daemon = Command::new(BIN)
        .args(["serve", "-c"])
        .arg(&config)
        .envs(env.clone())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    // Ready, and both homeservers healthy: the second Synapse accepts the second homeserver's
    // as_token (it loaded the registration from its own Secret) and its ping reached the serving
    // daemon with that homeserver's hs_token.
    let wanted = |health: &Value| {
        health["homeservers"]["default"]["healthy"] == true
            && health["homeservers"]["second"]["healthy"] == true
            && health["homeservers"]["second"]["as_token"] == true
            && health["homeservers"]["second"]["reachable"] == true
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        last = http_get(metrics_port, "/health/ready");
        if let Some((200, body)) = &last
            && wanted(&serde_json::from_str(body).unwrap_or_default())
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let live = http_status(metrics_port, "/health/live");
    let _ = daemon.kill();
    let _ = daemon.wait();
    let ready = last.as_ref().is_some_and(|(status, body)| {
        *status == 200 && wanted(&serde_json::from_str(body).unwrap_or_default())
    });
    assert!(
        ready,
        "the daemon on the chart's config never became ready (the readiness probe) with each \
         Synapse holding its registration from the chart (last: {last:?}):\n{}",
        support::python::file_tail(&dir.join("daemon.log"), 40)
    );
    assert_eq!(live, Some(200));
}

/// The status of `GET path` on 127.0.0.1:port, or `None` when nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    http_get(port, path).map(|(status, _)| status)
}

/// The status and body of `GET path` on 127.0.0.1:port, or `None` when nothing answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Some((status, body.to_owned()))
}
