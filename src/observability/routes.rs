//! The metrics listener: `/metrics`, `/health/live`, `/health/ready`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::App;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route(
            "/health/live",
            get(|| async { Json(json!({"status": "live"})) }),
        )
        .route("/health/ready", get(ready))
        .with_state(app)
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    // The readiness gauges are fresh on every scrape, not only when a probe asked.
    readiness(&app).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}

async fn ready(State(app): State<Arc<App>>) -> impl IntoResponse {
    let readiness = readiness(&app).await;
    let status = if readiness.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let homeservers: serde_json::Map<String, serde_json::Value> = readiness
        .homeservers
        .iter()
        .map(|homeserver| {
            (
                homeserver.id.clone(),
                json!({
                    "healthy": homeserver.healthy(),
                    "as_token": homeserver.as_token,
                    "ping": homeserver.ping,
                    "reachable": homeserver.reachable,
                }),
            )
        })
        .collect();
    let body = json!({
        "ready": status == StatusCode::OK,
        "database": readiness.database,
        "as_token": readiness.as_token(),
        "ping": readiness.ping(),
        "homeservers": homeservers,
    });
    (status, Json(body))
}

/// What readiness is made of: the database, and each homeserver's health.
struct Readiness {
    database: bool,
    homeservers: Vec<HomeserverReadiness>,
}

struct HomeserverReadiness {
    id: String,
    as_token: bool,
    ping: bool,
    reachable: bool,
}

impl HomeserverReadiness {
    fn healthy(&self) -> bool {
        self.as_token && self.ping
    }
}

impl Readiness {
    /// The database reachable and at least one homeserver healthy (DESIGN §13; with one
    /// homeserver: database, as_token and ping, as before there were several).
    fn ready(&self) -> bool {
        self.database && self.ping()
    }

    /// Some homeserver accepts our as_token.
    fn as_token(&self) -> bool {
        self.any(|homeserver| homeserver.as_token)
    }

    /// Some homeserver that accepts our as_token made its last ping round trip: with `database`,
    /// exactly [`Readiness::ready`] (a token accepted by one homeserver and a ping made by
    /// another do not make the daemon ready).
    fn ping(&self) -> bool {
        self.any(HomeserverReadiness::healthy)
    }

    fn any(&self, check: impl Fn(&HomeserverReadiness) -> bool) -> bool {
        self.homeservers.iter().any(check)
    }
}

/// Reads readiness, and sets it as `openmeet_as_ready{check}` (the whole) and
/// `openmeet_as_homeserver_ready{homeserver, check}` (each homeserver).
async fn readiness(app: &App) -> Readiness {
    let database = matches!(
        tokio::time::timeout(Duration::from_secs(2), app.store.ping()).await,
        Ok(Ok(()))
    );
    let homeservers: Vec<HomeserverReadiness> = app
        .links()
        .iter()
        .map(|link| HomeserverReadiness {
            id: link.id.clone(),
            as_token: link.health.token_accepted(),
            ping: link.health.ping_ok(),
            reachable: link.health.reachable(),
        })
        .collect();
    let readiness = Readiness {
        database,
        homeservers,
    };
    for (check, ok) in [
        ("database", database),
        ("as_token", readiness.as_token()),
        ("ping", readiness.ping()),
    ] {
        app.metrics
            .ready
            .with_label_values(&[check])
            .set(i64::from(ok));
    }
    app.metrics.homeserver_ready.reset();
    for homeserver in &readiness.homeservers {
        for (check, ok) in [
            ("as_token", homeserver.as_token),
            ("ping", homeserver.ping),
            ("reachable", homeserver.reachable),
        ] {
            app.metrics
                .homeserver_ready
                .with_label_values(&[&homeserver.id, check])
                .set(i64::from(ok));
        }
    }
    readiness
}

#[cfg(test)]
mod tests {
    use super::*;

    fn homeserver(id: &str, as_token: bool, ping: bool) -> HomeserverReadiness {
        HomeserverReadiness {
            id: id.into(),
            as_token,
            ping,
            reachable: true,
        }
    }

    #[test]
    fn one_homeserver_is_ready_with_the_database_its_token_and_its_ping() {
        for (database, as_token, ping) in [
            (true, true, true),
            (false, true, true),
            (true, false, true),
            (true, true, false),
        ] {
            let readiness = Readiness {
                database,
                homeservers: vec![homeserver("default", as_token, ping)],
            };
            assert_eq!(readiness.ready(), database && as_token && ping);
            assert_eq!(readiness.as_token(), as_token);
        }
    }

    #[test]
    fn several_homeservers_are_ready_while_one_is_healthy() {
        let ready = |homeservers| {
            Readiness {
                database: true,
                homeservers,
            }
            .ready()
        };
        assert!(ready(vec![
            homeserver("default", true, true),
            homeserver("eu", false, false)
        ]));
        assert!(ready(vec![
            homeserver("default", false, false),
            homeserver("eu", true, true)
        ]));
        // A token accepted by one and a ping made by the other make no healthy homeserver.
        assert!(!ready(vec![
            homeserver("default", true, false),
            homeserver("eu", false, true)
        ]));
    }
}
