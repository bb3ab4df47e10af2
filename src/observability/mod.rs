//! What operators watch: Prometheus metrics, health, and logs.

pub mod health;
pub mod logging;
pub mod metrics;
pub mod queue_stats;
pub mod routes;
