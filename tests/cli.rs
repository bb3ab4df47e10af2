#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! The command line as operators type it (README, docs/operations.md), without a homeserver.

mod support;

use std::path::PathBuf;

use support::daemon::DaemonConfig;

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
