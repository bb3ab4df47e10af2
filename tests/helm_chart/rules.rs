//! Rules before send: the antispam token from the operator's Secret and the tenants' rules, in a
//! config the daemon accepts.

use std::process::Command;

use crate::render::{BIN, config_value, materialize, projected};

#[test]
fn the_antispam_token_and_a_tenants_rules_reach_a_config_the_daemon_accepts() {
    let projected = projected("rules");
    assert_eq!(
        projected["antispam_token"],
        "antispam-secret/antispam_token"
    );
    let config = config_value("rules");
    assert_eq!(
        config["appservice"]["antispam_token_file"],
        "/run/secrets/openmeet-appservice/antispam_token"
    );
    assert_eq!(
        config["tenants"][0]["rules"]["blocked_link_domains"][0],
        "spam.example"
    );
    assert_eq!(config["tenants"][0]["rules"]["rate_limit"]["messages"], 10);
    assert!(config["tenants"][1].get("rules").is_none(), "{config}");
    assert!(
        !crate::render::projected("webhooks").contains_key("antispam_token"),
        "no antispam Secret, no token"
    );

    let dir = materialize("rules");
    std::fs::write(
        dir.join("secrets/antispam_token"),
        "antispam-token-0123456789abcdef\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["registration", "-c"])
        .arg(dir.join("config.yaml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the daemon refused the chart's config: {stderr}"
    );
    assert!(!stderr.contains("antispam-token-0123456789abcdef"));
}
