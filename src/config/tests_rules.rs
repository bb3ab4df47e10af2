//! `tenants[].rules` and `appservice.antispam_token` (DESIGN §7.3, rules before send).

use std::path::Path;

use super::sample::{SampleTokens, render};
use super::*;

const ANTISPAM: &str = "antispamantispamantispam01234567";

/// The sample with `rules` (a YAML flow mapping) on its tenant and the antispam token set.
fn with_rules(rules: &str) -> Result<Config, ConfigError> {
    let yaml = render(Some(&SampleTokens::random()))
        .replace(
            "  # antispam_token_file: /run/secrets/antispam_token\n",
            &format!("  antispam_token: {ANTISPAM}\n"),
        )
        .replace(
            "    server_directory: false\n",
            &format!("    server_directory: false\n    rules: {rules}\n"),
        );
    Config::from_yaml(Path::new("test.yaml"), &yaml, Vec::new())
}

fn problems(rules: &str) -> Vec<String> {
    match with_rules(rules) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected validation problems, got {other:?}"),
    }
}

#[test]
fn rules_load_normalised_with_their_defaults_and_the_token_names_its_homeserver() {
    let config = with_rules(
        "{blocked_words: [' Casino ', casino], blocked_link_domains: [Spam.Example.], rate_limit: {messages: '10', per_seconds: 60}}",
    )
    .unwrap();
    let rules = config.tenants[0].rules.clone().unwrap();
    assert_eq!(rules.blocked_words, ["casino"]);
    assert_eq!(rules.blocked_link_domains, ["spam.example"]);
    assert_eq!(rules.applies_below_level, 50);
    assert_eq!(
        rules.rate_limit,
        Some(RateLimit {
            messages: 10,
            per_seconds: 60
        })
    );
    assert_eq!(
        config.homeserver_by_antispam_token(ANTISPAM).unwrap().id,
        DEFAULT_ID
    );
    assert!(config.homeserver_by_antispam_token("antispam").is_none());
    let hs_token = config.appservice.hs_tokens[0].expose().to_owned();
    assert!(
        config.homeserver_by_antispam_token(&hs_token).is_none(),
        "the hs_token is not the antispam token"
    );
}

#[test]
fn bad_rules_are_each_named_with_how_to_fix_them() {
    let problems = problems(
        "{blocked_words: [''], blocked_link_domains: ['https://spam.example/x'], applies_below_level: 0, rate_limit: {messages: 10}}",
    );
    for expected in [
        "tenants[0].rules.blocked_words holds an empty entry",
        "tenants[0].rules.blocked_link_domains entry \"https://spam.example/x\" is not a domain name: write the host alone",
        "tenants[0].rules.applies_below_level 0 is out of range",
        "tenants[0].rules.rate_limit needs both messages and per_seconds",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "no problem says {expected:?}: {problems:?}"
        );
    }
    let problems = self::problems("{rate_limit: {messages: 0, per_seconds: 999999}}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("rate_limit.messages 0 is out of range")),
        "{problems:?}"
    );
}

#[test]
fn an_antispam_token_equal_to_another_token_is_refused() {
    let tokens = SampleTokens::random();
    let yaml = render(Some(&tokens)).replace(
        "  # antispam_token_file: /run/secrets/antispam_token\n",
        &format!("  antispam_token: {}\n", tokens.hs_token),
    );
    let error = Config::from_yaml(Path::new("test.yaml"), &yaml, Vec::new())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("appservice.hs_token and appservice.antispam_token hold the same token"),
        "{error}"
    );
    assert!(!error.contains(&tokens.hs_token), "{error}");
}

#[test]
fn without_rules_or_a_token_the_callbacks_have_nothing_to_apply() {
    let config = Config::from_yaml(
        Path::new("test.yaml"),
        &render(Some(&SampleTokens::random())),
        Vec::new(),
    )
    .unwrap();
    assert!(config.tenants[0].rules.is_none());
    assert!(config.appservice.antispam_token.is_none());
}
