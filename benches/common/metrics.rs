//! The daemon's Prometheus metrics as a benchmark reads them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::support::daemon::Daemon;

pub async fn metrics_text(client: &reqwest::Client, daemon: &Daemon) -> String {
    metrics_text_at(client, daemon.config.metrics_port).await
}

/// The metrics a daemon serves on `port` (for a task that cannot borrow the [`Daemon`]).
pub async fn metrics_text_at(client: &reqwest::Client, port: u16) -> String {
    client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics body")
}

/// The samples of metric `name` in Prometheus' text format: (labels between the braces, value).
pub fn samples(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(rest) => rest.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            Some((labels.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Metric `name` summed over its labels.
pub fn sum(text: &str, name: &str) -> f64 {
    samples(text, name).iter().map(|(_, value)| value).sum()
}

/// The value of label `key` in a sample's label string.
pub fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
    let end = labels[start..].find('"')? + start;
    Some(&labels[start..end])
}

/// Metric `name` summed by the value of label `key`.
pub fn by_label(text: &str, name: &str, key: &str) -> HashMap<String, f64> {
    let mut sums = HashMap::new();
    for (labels, value) in samples(text, name) {
        *sums
            .entry(label(&labels, key).unwrap_or("").to_owned())
            .or_default() += value;
    }
    sums
}

/// Waits until the daemon's inbox processor has worked off every stored event (every 5 ms, one
/// scrape of the metrics each time, so that both counters are of one moment; at most 120 s).
pub async fn wait_inbox_processed(client: &reqwest::Client, daemon: &Daemon) {
    wait_inbox_processed_within(client, daemon, Duration::from_secs(120)).await;
}

/// [`wait_inbox_processed`], for at most `within`.
pub async fn wait_inbox_processed_within(
    client: &reqwest::Client,
    daemon: &Daemon,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let text = metrics_text(client, daemon).await;
        let received = sum(&text, "openmeet_as_events_received_total");
        if sum(&text, "openmeet_as_events_processed_total") >= received {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the inbox did not drain in {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
