use std::path::Path;
use std::time::Duration;

use super::sample::{SampleTokens, render};
use super::*;

fn load(yaml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Config::from_yaml(Path::new("test.yaml"), yaml, vars)
}

fn problems(result: Result<Config, ConfigError>) -> Vec<String> {
    match result {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected validation problems, got {other:?}"),
    }
}

#[test]
fn generated_config_loads() {
    let config = load(&render(Some(&SampleTokens::random())), &[]).unwrap();
    assert_eq!(config.sender_user_id(), "@openmeet-bot:matrix.openmeet.net");
    assert_eq!(
        config.bot_user_id(&config.tenants[0]),
        "@openmeet-bot-lsdfaopkljdfs:matrix.openmeet.net"
    );
    assert!(config.database.migrate_on_start);
    assert!(matches!(config.database.url, DatabaseUrl::Sqlite(_)));
}

#[test]
fn checked_in_sample_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.sample.yaml");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == render(None),
        "config.sample.yaml is stale: regenerate it with `cargo run -- generate-config --blank-tokens > config.sample.yaml`"
    );
}

#[test]
fn sample_with_blank_tokens_names_every_missing_token() {
    let problems = problems(load(&render(None), &[]));
    for key in [
        "appservice.as_token",
        "appservice.hs_token",
        "tenants[0].api_token",
        "admin_token",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(key)),
            "no problem names {key}: {problems:?}"
        );
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let problems = problems(load(
        "homeserver: {url: 'ftp://x', server_name: 'not a name'}\nlisten: {appservice: nowhere}\n",
        &[],
    ));
    for key in [
        "homeserver.url",
        "homeserver.server_name",
        "appservice.id",
        "listen.appservice",
        "listen.platform",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(key)),
            "no problem starts with {key}: {problems:?}"
        );
    }
}

#[test]
fn unknown_keys_are_rejected_with_the_key_named() {
    let yaml = render(Some(&SampleTokens::random()))
        .replace("  timeout_seconds: 30", "  timeout_secs: 30");
    let error = load(&yaml, &[]).unwrap_err().to_string();
    assert!(error.contains("timeout_secs"), "{error}");
}

#[test]
fn environment_overrides_file_values_including_typed_ones() {
    let config = load(
        &render(Some(&SampleTokens::random())),
        &[
            ("OPENMEET_AS__HOMESERVER__URL", "http://synapse:8008"),
            ("OPENMEET_AS__DATABASE__MIGRATE_ON_START", "false"),
            ("OPENMEET_AS__DATABASE__URL", "postgres://u:p@db/openmeet"),
            ("OPENMEET_AS__RETENTION__INBOX_DAYS", "2"),
        ],
    )
    .unwrap();
    assert_eq!(config.retention.inbox, Duration::from_secs(2 * 86_400));
    assert_eq!(config.retention.jobs, Duration::from_secs(30 * 86_400));
    assert_eq!(config.homeserver.url.as_str(), "http://synapse:8008/");
    assert!(!config.database.migrate_on_start);
    assert_eq!(config.database.url.describe(), "postgres at db/openmeet");
}

#[test]
fn unknown_environment_key_is_an_error() {
    let error = load(
        &render(Some(&SampleTokens::random())),
        &[("OPENMEET_AS__HOMESERVER__NOPE", "1")],
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("nope"), "{error}");
}

#[test]
fn hs_token_may_be_a_list_and_the_first_is_current() {
    let yaml = render(Some(&SampleTokens::random())).replace(
        "  hs_token: ",
        "  hs_token: [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb]\n  # was: ",
    );
    let config = load(&yaml, &[]).unwrap();
    let tokens: Vec<_> = config
        .appservice
        .hs_tokens
        .iter()
        .map(Secret::expose)
        .collect();
    assert_eq!(
        tokens,
        [
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
        ]
    );
}

#[test]
fn reused_tokens_are_refused() {
    let tokens = SampleTokens::random();
    let yaml = render(Some(&tokens)).replace(&tokens.hs_token, &tokens.as_token);
    let problems = problems(load(&yaml, &[]));
    assert!(
        problems.iter().any(|p| p.contains("hold the same token")),
        "{problems:?}"
    );
}

#[test]
fn tenant_ids_with_a_dash_or_duplicated_by_case_are_refused() {
    let yaml = render(Some(&SampleTokens::random())).replace(
        "tenants:\n",
        "tenants:\n  - {id: a-b, name: A, api_token: cccccccccccccccccccccccccccccccc}\n  - {id: LSDFAOPKLJDFS, name: B, api_token: dddddddddddddddddddddddddddddddd}\n",
    );
    let problems = problems(load(&yaml, &[]));
    assert!(
        problems.iter().any(|p| p.contains("\"a-b\"")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("listed twice")),
        "{problems:?}"
    );
}

#[test]
fn problems_never_contain_a_token() {
    let tokens = SampleTokens::random();
    let yaml = render(Some(&tokens)).replace("server_name: matrix.openmeet.net", "server_name: ''");
    let error = load(&yaml, &[]).unwrap_err().to_string();
    assert!(
        !error.contains(&tokens.as_token) && !error.contains(&tokens.hs_token),
        "{error}"
    );
    assert!(error.contains("homeserver.server_name"), "{error}");
}

#[test]
fn roles_merge_over_the_defaults_and_are_checked() {
    let yaml = render(Some(&SampleTokens::random()));
    let start = yaml.find("roles:").unwrap();
    let end = yaml[start..].find("\n\n").unwrap() + start;
    let custom = format!(
        "{}roles:\n  event: {{speaker: 10}}{}",
        &yaml[..start],
        &yaml[end..]
    );
    let config = load(&custom, &[]).unwrap();
    let kind = crate::rooms::RoomKind::Event;
    assert_eq!(config.roles.level(kind, "speaker").unwrap(), 10);
    assert_eq!(
        config.roles.level(kind, "host").unwrap(),
        100,
        "unlisted roles keep their default"
    );

    let too_high = format!(
        "{}roles:\n  group: {{owner: 150}}{}",
        &yaml[..start],
        &yaml[end..]
    );
    let problems = problems(load(&too_high, &[]));
    assert!(
        problems.iter().any(|p| p.starts_with("roles.")),
        "{problems:?}"
    );
}

#[test]
fn environment_overrides_a_file_secret_and_a_role_level() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("as_token");
    std::fs::write(&secret, "a".repeat(64)).unwrap();
    let yaml = render(Some(&SampleTokens::random()));
    let as_token = yaml
        .lines()
        .find(|line| line.trim_start().starts_with("as_token:"))
        .unwrap();
    let indent = &as_token[..as_token.len() - as_token.trim_start().len()];
    let with_file = yaml.replace(
        as_token,
        &format!("{indent}as_token_file: {}", secret.display()),
    );
    let config = load(
        &with_file,
        &[
            ("OPENMEET_AS__APPSERVICE__AS_TOKEN", &"b".repeat(64)),
            ("OPENMEET_AS__ROLES__EVENT__SPEAKER", "30"),
        ],
    )
    .unwrap();
    assert_eq!(config.appservice.as_token.expose(), "b".repeat(64));
    assert_eq!(
        config
            .roles
            .level(crate::rooms::RoomKind::Event, "speaker")
            .unwrap(),
        30
    );
    let refused = load(&yaml, &[("OPENMEET_AS__ROLES__EVENT__SPEAKER", "loud")]).unwrap_err();
    assert!(
        refused.to_string().contains("not a power level"),
        "{refused}"
    );
}

#[test]
fn retention_defaults_to_a_week_and_a_month_and_refuses_zero() {
    let sample = render(Some(&SampleTokens::random()));
    let without: String = sample
        .split("\nretention:")
        .next()
        .map(str::to_owned)
        .unwrap();
    let config = load(&without, &[]).unwrap();
    assert_eq!(config.retention, Retention::default());
    assert_eq!(config.retention.inbox, Duration::from_secs(7 * 86_400));
    assert_eq!(config.retention.jobs, Duration::from_secs(30 * 86_400));
    let problems = problems(load(&sample, &[("OPENMEET_AS__RETENTION__JOBS_DAYS", "0")]));
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("retention.jobs_days is 0")),
        "{problems:?}"
    );
}
