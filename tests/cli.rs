#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! The command line as operators type it (README, docs/operations.md), without a homeserver.

mod support;

use std::path::PathBuf;

use support::daemon::{DaemonConfig, ExtraHomeserver};

fn sqlite_file(config: &DaemonConfig) -> PathBuf {
    PathBuf::from(config.database_url.strip_prefix("sqlite://").unwrap())
}

#[test]
fn the_config_flag_is_accepted_before_and_after_the_subcommand() {
    let config = DaemonConfig::new("cli", None);
    let (code, _, stderr) = config.cli_as_written(&["migrate", "-c", "{config}"]);
    assert_eq!(code, 0, "{stderr}");
    for line in [
        &["rooms", "reconcile", "-c", "{config}", "--all"][..],
        &["rooms", "reconcile", "--all", "--config", "{config}"],
        &["-c", "{config}", "rooms", "list"],
        &["rooms", "-c", "{config}", "list"],
        &["jobs", "list", "-c", "{config}"],
        &["inbox", "status", "-c", "{config}"],
        &["registration", "-c", "{config}"],
    ] {
        let (code, _, stderr) = config.cli_as_written(line);
        assert_eq!(code, 0, "`{}` failed: {stderr}", line.join(" "));
    }
    let (code, _, stderr) = config.cli_as_written(&["rooms", "list"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("-c FILE") && stderr.contains("OPENMEET_AS_CONFIG"),
        "no fix in: {stderr}"
    );
}

#[test]
fn a_command_on_a_missing_sqlite_file_says_so_and_creates_nothing() {
    let config = DaemonConfig::new("cli-missing", None);
    let file = sqlite_file(&config);
    assert!(!file.exists());
    for line in [
        &["rooms", "list", "-c", "{config}"][..],
        &["jobs", "list", "-c", "{config}"],
        &["inbox", "status", "-c", "{config}"],
    ] {
        let (code, _, stderr) = config.cli_as_written(line);
        assert_ne!(code, 0, "`{}` succeeded on no database", line.join(" "));
        assert!(
            stderr.contains("does not exist") && stderr.contains("migrate"),
            "`{}` said: {stderr}",
            line.join(" ")
        );
        assert!(!stderr.contains("no such table"), "{stderr}");
        assert!(!file.exists(), "`{}` created the file", line.join(" "));
    }
}

#[test]
fn a_command_on_an_unmigrated_database_says_to_migrate() {
    let config = DaemonConfig::new("cli-unmigrated", None);
    let file = sqlite_file(&config);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::File::create(&file).unwrap();
    let (code, _, stderr) = config.cli_as_written(&["jobs", "list", "-c", "{config}"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("openmeet-appservice migrate -c") && !stderr.contains("no such table"),
        "{stderr}"
    );
    let (code, _, stderr) = config.cli_as_written(&["migrate", "-c", "{config}"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = config.cli_as_written(&["jobs", "list", "-c", "{config}"]);
    assert_eq!(code, 0, "{stderr}");
}

/// `migrate --revert 1` undoes the newest migration, and `migrate` applies it again.
#[test]
fn the_newest_migration_can_be_reverted_and_applied_again() {
    let config = DaemonConfig::new("cli-revert", None);
    let (code, _, stderr) = config.cli_as_written(&["migrate", "-c", "{config}"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = config.cli_as_written(&["migrate", "--revert", "1", "-c", "{config}"]);
    assert_eq!(code, 0, "{stderr}");
    let newest = std::fs::read_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite"),
    )
    .unwrap()
    .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
    .filter(|name| !name.ends_with(".md"))
    .max()
    .unwrap();
    // diesel names a migration by its version: the folder's date and number without dashes.
    let (version, _) = newest.split_once('_').unwrap();
    assert!(
        stderr.contains(&format!("reverted {}", version.replace('-', ""))),
        "{stderr}"
    );
    let (code, _, stderr) = config.cli_as_written(&["migrate", "-c", "{config}"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("applied"), "{stderr}");
}

/// A config with a second homeserver `eu-b` (not running), tenant B on it.
fn two_homeservers(name: &str) -> DaemonConfig {
    let mut config = DaemonConfig::new(name, None);
    let mut second = ExtraHomeserver::new(
        "eu-b",
        &format!("http://127.0.0.1:{}", support::python::free_port()),
        "matrix-b.test",
    );
    second.tenants.push("tenantB".into());
    config.tenants.push(("tenantB".into(), "Tenant B".into()));
    config.homeservers.push(second);
    config
}

#[test]
fn registration_prints_each_homeservers_own_registration() {
    let config = two_homeservers("cli-registrations");
    let second = &config.homeservers[0];
    let (code, default, stderr) = config.cli(&["registration"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, explicit, stderr) = config.cli(&["registration", "--homeserver", "default"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(default, explicit);
    assert!(
        default.contains(&format!("as_token: {}", config.tokens.as_token))
            && default.contains(r"test\.openmeet\.invalid")
            && !default.contains("matrix-b"),
        "{default}"
    );
    let (code, of_b, stderr) = config.cli(&["registration", "--homeserver", "eu-b"]);
    assert_eq!(code, 0, "{stderr}");
    let of_b: serde_yaml::Value = serde_yaml::from_str(&of_b).unwrap();
    assert_eq!(
        of_b["as_token"].as_str(),
        Some(second.tokens.as_token.as_str())
    );
    assert_eq!(
        of_b["hs_token"].as_str(),
        Some(second.tokens.hs_token.as_str())
    );
    assert_eq!(of_b["sender_localpart"].as_str(), Some("openmeet-bot"));
    assert_eq!(
        of_b["namespaces"]["users"][0]["regex"].as_str(),
        Some(r"@openmeet-bot(-[a-z0-9._=/-]+)?:matrix-b\.test")
    );
    assert_eq!(
        of_b["namespaces"]["aliases"][0]["regex"].as_str(),
        Some(r"#(event|group)-.+:matrix-b\.test")
    );
}

#[test]
fn an_unknown_homeserver_id_exits_2_and_lists_the_known_ones() {
    let config = two_homeservers("cli-unknown-homeserver");
    for line in [
        &["registration", "--homeserver", "eu-c"][..],
        &["check", "--homeserver", "eu-c"],
    ] {
        let (code, stdout, stderr) = config.cli(line);
        assert_eq!(code, 2, "`{}`: {stdout}{stderr}", line.join(" "));
        assert!(
            stderr.contains("\"eu-c\"")
                && stderr.contains("the known homeservers are default, eu-b"),
            "`{}` said: {stderr}",
            line.join(" ")
        );
        assert!(!stdout.contains("as_token"), "{stdout}");
    }
}

#[test]
fn check_reports_one_block_per_homeserver() {
    // Neither homeserver runs: each block fails at its first step, and the exit code is the
    // first failing homeserver's (12: the homeserver does not answer).
    let config = two_homeservers("cli-check-blocks");
    let (code, stdout, stderr) = config.cli(&["check"]);
    assert_eq!(code, 12, "{stdout}{stderr}");
    let default_block = stdout.find("homeserver default (test.openmeet.invalid):");
    let second_block = stdout.find("homeserver eu-b (matrix-b.test):");
    assert!(
        matches!((default_block, second_block), (Some(a), Some(b)) if a < b),
        "{stdout}"
    );
    assert_eq!(
        stderr.matches("FAIL the homeserver at").count(),
        2,
        "one failure per homeserver: {stderr}"
    );
    assert!(stderr.contains(&config.homeservers[0].url), "{stderr}");

    let (code, stdout, stderr) = config.cli(&["check", "--homeserver", "eu-b"]);
    assert_eq!(code, 12, "{stdout}{stderr}");
    assert!(!stdout.contains("homeserver default"), "{stdout}");
    assert_eq!(stderr.matches("FAIL").count(), 1, "{stderr}");
}

#[test]
fn rooms_adopt_names_the_line_that_is_no_declaration_and_a_daemon_that_does_not_answer() {
    let config = DaemonConfig::new("cli-adopt", None);
    let (code, _, stderr) = config.cli_as_written(&["migrate", "-c", "{config}"]);
    assert_eq!(code, 0, "{stderr}");
    let file = config.dir.join("rooms.jsonl");
    std::fs::write(&file, "{\"tenant\": \"tenantA\", \"kind\": \"event\", \"slug\": \"a\", \"name\": \"A\", \"visibility\": \"public\"}\n\nnot json\n").unwrap();
    let file = file.to_str().unwrap();
    let (code, stdout, stderr) = config.cli(&["rooms", "adopt", "--file", file]);
    assert_ne!(code, 0, "{stdout}");
    assert!(stderr.contains("line 3 is not JSON"), "{stderr}");

    std::fs::write(
        file,
        "{\"tenant\": \"tenantA\", \"kind\": \"event\", \"name\": \"A\"}\n",
    )
    .unwrap();
    let (code, _, stderr) = config.cli(&["rooms", "adopt", "--file", file]);
    assert_ne!(code, 0);
    assert!(stderr.contains("line 1 has no \"slug\" string"), "{stderr}");

    // No daemon listens on the config's platform port.
    std::fs::write(file, "{\"tenant\": \"tenantA\", \"kind\": \"event\", \"slug\": \"a\", \"name\": \"A\", \"visibility\": \"public\"}\n").unwrap();
    let (code, stdout, stderr) = config.cli(&["rooms", "adopt", "--file", file]);
    assert_ne!(code, 0, "{stdout}");
    assert!(
        stderr.contains("does not answer") && stderr.contains("start `serve` first"),
        "{stderr}"
    );
    config.assert_no_secret_in("rooms adopt's errors", &stderr);
}

#[test]
fn migrate_db_refuses_a_source_at_other_migrations_and_the_same_database_twice() {
    let config = DaemonConfig::new("cli-migrate-db", None);
    let (code, _, stderr) = config.cli_as_written(&["migrate", "-c", "{config}"]);
    assert_eq!(code, 0, "{stderr}");
    let source = config.database_url.clone();
    let target = format!("sqlite://{}", config.dir.join("target.db").display());
    let (code, _, stderr) =
        config.cli_as_written(&["migrate-db", "--from", &source, "--to", &source]);
    assert_ne!(code, 0);
    assert!(stderr.contains("name the same database"), "{stderr}");

    let (code, _, stderr) = config.cli_as_written(&["migrate", "--revert", "1", "-c", "{config}"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) =
        config.cli_as_written(&["migrate-db", "--from", &source, "--to", &target]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("lacks 1 migration(s)") && stderr.contains("`openmeet-appservice migrate`"),
        "{stderr}"
    );

    let (code, _, stderr) = config.cli_as_written(&["migrate", "-c", "{config}"]);
    assert_eq!(code, 0, "{stderr}");
    {
        use diesel::{Connection, RunQueryDsl, SqliteConnection};
        let mut conn = SqliteConnection::establish(sqlite_file(&config).to_str().unwrap()).unwrap();
        diesel::sql_query(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('20991231000099')",
        )
        .execute(&mut conn)
        .unwrap();
    }
    let (code, _, stderr) =
        config.cli_as_written(&["migrate-db", "--from", &source, "--to", &target]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("does not know (20991231000099)"),
        "{stderr}"
    );
}
