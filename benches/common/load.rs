//! The load loop: `PUT`s from one source, a fixed number in flight, each one's latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;

/// One request of a load: a JSON body `PUT` with a bearer token.
pub struct Put {
    pub url: String,
    pub token: String,
    pub body: Bytes,
}

/// Sends the `PUT`s `next` gives, `in_flight` at a time over keep-alive clones of `client`, until
/// it gives `None`; returns each request's latency (body read included) and the number of
/// answers other than `expected`.
pub async fn put_all<F>(
    client: &reqwest::Client,
    in_flight: usize,
    expected: StatusCode,
    next: F,
) -> (Vec<Duration>, usize)
where
    F: Fn() -> Option<Put> + Send + Sync + 'static,
{
    let next = Arc::new(next);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (client, next) = (client.clone(), next.clone());
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while let Some(Put { url, token, body }) = next() {
                let started = Instant::now();
                let response = client
                    .put(url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let ok = match response {
                    Ok(response) => {
                        let status = response.status();
                        let _ = response.bytes().await;
                        status == expected
                    }
                    Err(_) => false,
                };
                latencies.push(started.elapsed());
                errors += usize::from(!ok);
            }
            (latencies, errors)
        });
    }
    let mut all = Vec::new();
    let mut errors = 0;
    while let Some(result) = workers.join_next().await {
        let (latencies, worker_errors) = result.expect("a load worker panicked");
        all.extend(latencies);
        errors += worker_errors;
    }
    (all, errors)
}
