//! What operators watch: Prometheus metrics, health, and logs.

pub(crate) mod health;
pub(crate) mod logging;
pub mod metrics;
pub(crate) mod queue_stats;
pub(crate) mod routes;
