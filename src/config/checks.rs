//! Checks of single values, each recording a sentence saying what is wrong and how to fix it.

use std::net::SocketAddr;

use reqwest::Url;

/// `{hostname}:{port}`: stable across restarts, distinct for daemons sharing one machine.
pub fn default_worker_id(port: u16) -> String {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{hostname}:{port}")
}

pub fn required(problems: &mut Vec<String>, key: &str, value: Option<String>) -> Option<String> {
    match value {
        Some(value) if !value.trim().is_empty() => Some(value.trim().to_owned()),
        _ => {
            problems.push(format!(
                "{key} is missing: see config.sample.yaml for an example."
            ));
            None
        }
    }
}

pub fn http_url(problems: &mut Vec<String>, key: &str, value: &str) -> Option<Url> {
    match Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
                problems.push(format!(
                    "{key} must not carry credentials or a query: give tokens in their own keys."
                ));
                return None;
            }
            Some(url)
        }
        _ => {
            problems.push(format!(
                "{key} {value:?} is not an http(s) URL: write it like http://127.0.0.1:8008."
            ));
            None
        }
    }
}

pub fn localpart_ok(problems: &mut Vec<String>, key: &str, localpart: &str) -> bool {
    let ok = localpart
        .chars()
        .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '=' | '-' | '/'));
    if !ok {
        problems.push(format!("{key} {localpart:?} may only hold lowercase letters, digits and . _ = - /: it forms Matrix user ids."));
    }
    ok
}

pub fn listen_address(
    problems: &mut Vec<String>,
    key: &str,
    value: Option<String>,
) -> Option<SocketAddr> {
    let value = required(problems, key, value)?;
    match value.parse() {
        Ok(address) => Some(address),
        Err(_) => {
            problems.push(format!(
                "{key} {value:?} is not an address: write it as IP:PORT, e.g. 0.0.0.0:8009."
            ));
            None
        }
    }
}
