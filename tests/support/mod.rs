//! Shared by every integration and end-to-end test binary (`mod support;`).
#![allow(dead_code)]

pub mod daemon;
pub mod events;
pub mod fake_homeserver;
pub mod matrix_client;
pub mod postgres;
pub mod proxy;
pub mod python;
pub mod synapse;

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` until it yields `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
