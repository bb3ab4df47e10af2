//! `homeservers[]`, `tenants[].homeserver` and the resolved per-homeserver view.

use std::path::Path;

use super::sample::{SampleTokens, render};
use super::*;

const SECOND_AS: &str = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
const SECOND_HS: &str = "ffffffffffffffffffffffffffffffff";

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

/// The sample with `entries` as `homeservers:` and a second tenant on `tenant_homeserver`.
fn with_homeservers(tokens: &SampleTokens, entries: &str, tenant_homeserver: &str) -> String {
    render(Some(tokens))
        .replace(
            "tenants:\n",
            &format!("tenants:\n  - {{id: TenantB, name: B, api_token: tenantb-token-tenantb-token, homeserver: {tenant_homeserver}}}\n"),
        )
        + &format!("homeservers:\n{entries}")
}

fn second(id: &str, server_name: &str, as_token: &str, hs_token: &str) -> String {
    format!(
        "  - id: {id}\n    homeserver: {{url: 'http://127.0.0.1:8448', server_name: {server_name}}}\n    appservice: {{as_token: {as_token}, hs_token: {hs_token}, url: 'http://127.0.0.1:8009'}}\n"
    )
}

#[test]
fn a_config_without_homeservers_serves_the_default_only() {
    let tokens = SampleTokens::random();
    let config = load(&render(Some(&tokens)), &[]).unwrap();
    let ids: Vec<_> = config.homeservers().map(|h| h.id).collect();
    assert_eq!(ids, [DEFAULT_ID]);
    assert_eq!(config.tenants[0].homeserver, DEFAULT_ID);
    assert_eq!(
        config.homeserver_of("lsdfaopkljdfs").unwrap().id,
        DEFAULT_ID
    );
    assert!(config.homeserver_of("nobody").is_none());
    assert_eq!(
        config.homeserver_by_hs_token(&tokens.hs_token).unwrap().id,
        DEFAULT_ID
    );
    assert!(config.homeserver_by_hs_token(&tokens.as_token).is_none());
}

#[test]
fn a_second_homeserver_inherits_the_names_and_claims_its_own_server() {
    let tokens = SampleTokens::random();
    let yaml = with_homeservers(
        &tokens,
        &second("eu-a", "matrix-a.example.org", SECOND_AS, SECOND_HS),
        "eu-a",
    );
    let config = load(&yaml, &[]).unwrap();
    let ids: Vec<_> = config.homeservers().map(|h| h.id).collect();
    assert_eq!(ids, [DEFAULT_ID, "eu-a"]);
    let eu = config.homeserver_by_id("eu-a").unwrap();
    assert_eq!(eu.appservice.id, "openmeet");
    assert_eq!(eu.appservice.sender_localpart, "openmeet-bot");
    assert_eq!(eu.appservice.bot_prefix, "openmeet-bot-");
    assert_eq!(eu.sender_user_id(), "@openmeet-bot:matrix-a.example.org");
    assert!(
        eu.namespaces
            .is_our_user("@openmeet-bot-tenantb:matrix-a.example.org")
    );
    assert!(
        !eu.namespaces
            .is_our_user("@openmeet-bot-tenantb:matrix.openmeet.net")
    );
    assert!(
        !config
            .namespaces
            .is_our_user("@openmeet-bot-tenantb:matrix-a.example.org")
    );

    let tenant_b = config.tenant("TenantB").unwrap();
    assert_eq!(config.homeserver_of("TenantB").unwrap().id, "eu-a");
    assert_eq!(
        config.bot_user_id(tenant_b),
        "@openmeet-bot-tenantb:matrix-a.example.org"
    );
    assert_eq!(
        config
            .tenant_of_bot(&config.bot_user_id(tenant_b))
            .unwrap()
            .id,
        "TenantB"
    );
    assert!(config.is_own_user(&eu.sender_user_id()));
    assert_eq!(config.homeserver_by_hs_token(SECOND_HS).unwrap().id, "eu-a");
    assert_eq!(
        config.homeserver_by_hs_token(&tokens.hs_token).unwrap().id,
        DEFAULT_ID
    );

    // Its messages name the command that prints its own registration.
    let eu = config.homeserver_by_id("eu-a").unwrap();
    assert_eq!(eu.homeserver.server_name, "matrix-a.example.org");
    assert_eq!(eu.appservice.as_token.expose(), SECOND_AS);
    assert_eq!(
        eu.registration_command(),
        "openmeet-appservice registration -c <config> --homeserver eu-a"
    );
    assert_eq!(
        config.default_homeserver().registration_command(),
        "openmeet-appservice registration -c <config>"
    );
}

#[test]
fn every_problem_across_homeservers_is_reported_at_once() {
    let tokens = SampleTokens::random();
    let entries = [
        // shares the default's hs_token and server_name
        second("eu-a", "matrix.openmeet.net", SECOND_AS, &tokens.hs_token),
        // listed twice, and its as_token is eu-a's
        second("eu-a", "matrix-b.example.org", SECOND_AS, SECOND_HS),
        second(
            "default",
            "matrix-c.example.org",
            "token-a-token-a-token-a-token",
            "token-b-token-b-token-b-token",
        ),
        second(
            "EU_D",
            "matrix-d.example.org",
            "token-c-token-c-token-c-token",
            "token-d-token-d-token-d-token",
        ),
    ]
    .concat();
    let problems = problems(load(&with_homeservers(&tokens, &entries, "nowhere"), &[]));
    let expect = [
        "tenants[0].homeserver \"nowhere\" is not a configured homeserver: use one of default, eu-a",
        "homeservers[1].id \"eu-a\" is listed twice",
        "homeservers[2].id \"default\" names the top-level homeserver",
        "homeservers[3].id \"EU_D\" may only hold lowercase letters, digits and -",
        "appservice.hs_token and homeserver \"eu-a\"'s appservice.hs_token hold the same token",
        "homeservers \"default\" and \"eu-a\" have the same server_name matrix.openmeet.net",
    ];
    for expected in expect {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "no problem says {expected:?}: {problems:#?}"
        );
    }
    let joined = problems.join("\n");
    assert!(
        !joined.contains(&tokens.hs_token) && !joined.contains(SECOND_AS),
        "{joined}"
    );
}

#[test]
fn as_tokens_shared_between_homeservers_are_refused() {
    let tokens = SampleTokens::random();
    let entries = second("eu-a", "matrix-a.example.org", &tokens.as_token, SECOND_HS);
    let problems = problems(load(&with_homeservers(&tokens, &entries, "eu-a"), &[]));
    assert!(
        problems.iter().any(|p| p.contains(
            "appservice.as_token and homeserver \"eu-a\"'s appservice.as_token hold the same token"
        )),
        "{problems:?}"
    );
}

#[test]
fn environment_overrides_reach_an_entry_by_index_but_add_none() {
    let tokens = SampleTokens::random();
    let yaml = with_homeservers(
        &tokens,
        &second("eu-a", "matrix-a.example.org", SECOND_AS, SECOND_HS),
        "eu-a",
    );
    let new_token = "abababababababababababababababab";
    let config = load(
        &yaml,
        &[
            (
                "OPENMEET_AS__HOMESERVERS__0__APPSERVICE__AS_TOKEN",
                new_token,
            ),
            (
                "OPENMEET_AS__HOMESERVERS__0__HOMESERVER__URL",
                "http://synapse-a:8008",
            ),
        ],
    )
    .unwrap();
    let eu = config.homeserver_by_id("eu-a").unwrap();
    assert_eq!(eu.appservice.as_token.expose(), new_token);
    assert_eq!(eu.homeserver.url.as_str(), "http://synapse-a:8008/");
    let error = load(&yaml, &[("OPENMEET_AS__HOMESERVERS__1__ID", "eu-b")])
        .unwrap_err()
        .to_string();
    assert!(error.contains("index 1 does not exist"), "{error}");
}

#[test]
fn a_bot_prefix_that_covers_humans_on_a_second_homeserver_names_that_homeserver() {
    let tokens = SampleTokens::random();
    let entries = second("eu-a", "matrix-a.example.org", SECOND_AS, SECOND_HS)
        .replace("appservice: {", "appservice: {bot_prefix: a, ");
    let problems = problems(load(&with_homeservers(&tokens, &entries, "eu-a"), &[]));
    assert!(
        problems
            .iter()
            .any(|p| p.contains("@alice:matrix-a.example.org")
                && p.starts_with("on homeserver \"eu-a\", ")),
        "{problems:?}"
    );
}
