//! Every metric the daemon exports, declared in one place with its help text. Prefix
//! `openmeet_as_`; labels by tenant or homeserver at most (both bounded by the config) — never by
//! user, room or event id.

use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets from 250 µs to 10 s: transaction acks are expected in milliseconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Event types counted by name; any other type is counted as `other` to keep the label bounded.
const COUNTED_EVENT_TYPES: &[&str] = &[
    "m.room.message",
    "m.room.member",
    "m.room.power_levels",
    "m.room.tombstone",
    "m.room.create",
    "m.room.name",
    "m.room.topic",
    "m.room.join_rules",
    "m.room.canonical_alias",
    "m.room.redaction",
    "m.room.encrypted",
    "m.reaction",
];

pub struct Metrics {
    registry: Registry,
    pub transactions_received: IntCounterVec,
    pub transactions_duplicate: IntCounterVec,
    pub transactions_quarantined: IntCounter,
    pub transaction_id_resets: IntCounterVec,
    pub transaction_ack_seconds: Histogram,
    pub events_received: IntCounter,
    pub events_quarantined: IntCounter,
    pub events_processed: IntCounterVec,
    pub inbox_depth: IntGauge,
    pub inbox_oldest_age_seconds: Gauge,
    pub user_queries: IntCounterVec,
    pub alias_queries: IntCounterVec,
    pub homeserver_requests: IntCounterVec,
    pub homeserver_request_seconds: HistogramVec,
    pub last_successful_ping_seconds: GaugeVec,
    pub jobs: IntCounterVec,
    pub job_seconds: HistogramVec,
    pub jobs_queued: IntGaugeVec,
    pub jobs_oldest_queued_age_seconds: GaugeVec,
    pub rate_limit_waits: IntCounterVec,
    pub ready: IntGaugeVec,
    pub homeserver_ready: IntGaugeVec,
    pub token_rejected: IntCounterVec,
    pub homeserver_unreachable: IntCounterVec,
    pub config_reloads: IntCounterVec,
    pub probes_sent: IntCounterVec,
    pub probes_received: IntCounterVec,
    pub probe_delay_seconds: GaugeVec,
    pub probe_last_received_seconds: GaugeVec,
    pub jobs_dead: IntGaugeVec,
    pub jobs_running: IntGaugeVec,
    pub retention_deleted: IntCounterVec,
    pub message_requests: IntCounterVec,
    pub redactions: IntCounterVec,
    pub jobs_scheduled_due: IntGaugeVec,
    pub moderation_actions: IntCounterVec,
    pub directory_refusals: IntCounterVec,
    pub webhook_deliveries: IntCounterVec,
    pub webhook_lag_events: IntGaugeVec,
    pub webhook_oldest_undelivered_age_seconds: GaugeVec,
    pub leader: IntGaugeVec,
    /// The antispam callbacks (DESIGN §7.3, rules before send).
    pub antispam_seconds: HistogramVec,
    pub antispam_refusals: IntCounterVec,
    pub antispam_unrecorded: IntCounter,
    /// SQLite's one writer (`store/writer.rs`).
    pub sqlite_writer: crate::store::writer::TurnMetrics,
    /// Every registered family's name, sorted (see `metric_names`).
    names: Vec<String>,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let mut names = Vec::new();
        macro_rules! register {
            ($metric:expr) => {{
                let metric = $metric.expect("metric definitions are valid");
                names.extend(metric.desc().iter().map(|desc| desc.fq_name.clone()));
                registry
                    .register(Box::new(metric.clone()))
                    .expect("metric names are unique");
                metric
            }};
        }
        let counter = |name: &str, help: &str| IntCounter::new(format!("openmeet_as_{name}"), help);
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(format!("openmeet_as_{name}"), help), labels)
        };
        let latency = |name: &str, help: &str| {
            HistogramOpts::new(format!("openmeet_as_{name}"), help)
                .buckets(LATENCY_BUCKETS.to_vec())
        };
        let mut metrics = Self {
            transactions_received: register!(counter_vec(
                "transactions_received_total",
                "Transactions pushed by Synapse, duplicates included, by homeserver id.",
                &["homeserver"]
            )),
            transactions_duplicate: register!(counter_vec(
                "transactions_duplicate_total",
                "Transactions seen before from the same homeserver (same txnId and events): acknowledged without storing.",
                &["homeserver"]
            )),
            transactions_quarantined: register!(counter(
                "transactions_quarantined_total",
                "Transaction bodies that could not be read at all: acknowledged and quarantined."
            )),
            transaction_id_resets: register!(counter_vec(
                "transaction_id_resets_total",
                "Transactions whose txnId fell far below the homeserver's last one: that Synapse's counter restarted.",
                &["homeserver"]
            )),
            transaction_ack_seconds: register!(Histogram::with_opts(latency(
                "transaction_ack_seconds",
                "Time from a transaction's arrival to its answer."
            ))),
            events_received: register!(counter(
                "events_received_total",
                "Events stored in the inbox (each event once, whatever the number of deliveries)."
            )),
            events_quarantined: register!(counter(
                "events_quarantined_total",
                "Events that could not be understood: acknowledged and quarantined."
            )),
            events_processed: register!(counter_vec(
                "events_processed_total",
                "Inbox events processed, by event type (other types counted as `other`).",
                &["type"]
            )),
            inbox_depth: register!(IntGauge::new(
                "openmeet_as_inbox_depth",
                "Events waiting in the inbox."
            )),
            inbox_oldest_age_seconds: register!(Gauge::new(
                "openmeet_as_inbox_oldest_age_seconds",
                "Age of the oldest event waiting in the inbox (0 when empty)."
            )),
            user_queries: register!(counter_vec(
                "user_queries_total",
                "User queries from Synapse, by outcome (registered, not_ours, failed).",
                &["outcome"]
            )),
            alias_queries: register!(counter_vec(
                "alias_queries_total",
                "Room alias queries from Synapse, by outcome.",
                &["outcome"]
            )),
            homeserver_requests: register!(counter_vec(
                "homeserver_requests_total",
                "Calls to the homeservers, by homeserver id, endpoint and errcode (`ok` on success).",
                &["homeserver", "endpoint", "errcode"]
            )),
            homeserver_request_seconds: register!(HistogramVec::new(
                latency(
                    "homeserver_request_seconds",
                    "Latency of calls to the homeservers, by homeserver id and endpoint."
                ),
                &["homeserver", "endpoint"]
            )),
            last_successful_ping_seconds: register!(GaugeVec::new(
                Opts::new(
                    "openmeet_as_last_successful_ping_timestamp_seconds",
                    "Unix time of the last appservice ping round trip that succeeded, by homeserver id."
                ),
                &["homeserver"]
            )),
            jobs: register!(counter_vec(
                "jobs_total",
                "Job attempts by kind and outcome (succeeded, retry, paused, failed, dead).",
                &["kind", "outcome"]
            )),
            retention_deleted: register!(counter_vec(
                "retention_deleted_total",
                "Rows the pruner deleted once older than the retention window, by table.",
                &["table"]
            )),
            moderation_actions: register!(counter_vec(
                "moderation_actions_total",
                "Moderation calls and liftings, by action (ban, unban, mute, unmute) and outcome: accepted (a platform call stored it), refused (a 4xx, nothing stored), expired (lifted by its expiry).",
                &["action", "outcome"]
            )),
            directory_refusals: register!(counter_vec(
                "directory_refusals_total",
                "Public rooms the homeserver refused to list in its server-wide directory (room_list_publication_rules or a module said no), by tenant; the rooms stay listed in the tenant's own directory.",
                &["tenant"]
            )),
            job_seconds: register!(HistogramVec::new(
                latency("job_seconds", "Duration of one job attempt, by kind."),
                &["kind"]
            )),
            jobs_queued: register!(IntGaugeVec::new(
                Opts::new("openmeet_as_jobs_queued", "Jobs waiting to run, by tenant."),
                &["tenant"]
            )),
            jobs_oldest_queued_age_seconds: register!(GaugeVec::new(
                Opts::new(
                    "openmeet_as_jobs_oldest_queued_age_seconds",
                    "Age of the oldest queued job since it was queued, by tenant (0 when none)."
                ),
                &["tenant"]
            )),
            rate_limit_waits: register!(counter_vec(
                "rate_limit_waits_total",
                "Times a job waited for a homeserver's rate limit (M_LIMIT_EXCEEDED), by homeserver id.",
                &["homeserver"]
            )),
            ready: register!(IntGaugeVec::new(
                Opts::new(
                    "openmeet_as_ready",
                    "1 when the readiness check passes, by check: database, and as_token and ping on at least one homeserver (per homeserver: openmeet_as_homeserver_ready)."
                ),
                &["check"]
            )),
            homeserver_ready: register!(IntGaugeVec::new(
                Opts::new(
                    "openmeet_as_homeserver_ready",
                    "1 when the check passes for the homeserver, by homeserver id and check (as_token, ping, reachable); a homeserver is healthy when as_token and ping are 1."
                ),
                &["homeserver", "check"]
            )),
            token_rejected: register!(counter_vec(
                "token_rejected_total",
                "Checks and calls that found the as_token refused (M_UNKNOWN_TOKEN, M_MISSING_TOKEN), by homeserver id.",
                &["homeserver"]
            )),
            homeserver_unreachable: register!(counter_vec(
                "homeserver_unreachable_total",
                "Checks and calls that could not reach the homeserver (its tenants' jobs wait for it), by homeserver id.",
                &["homeserver"]
            )),
            config_reloads: register!(counter_vec(
                "config_reloads_total",
                "Config reloads on SIGHUP, by outcome (applied, rejected).",
                &["outcome"]
            )),
            probes_sent: register!(counter_vec(
                "probes_sent_total",
                "Loop-back probe markers a homeserver's sender posted in its probe room, by homeserver id.",
                &["homeserver"]
            )),
            probes_received: register!(counter_vec(
                "probes_received_total",
                "Loop-back probe markers that came back in a transaction, by homeserver id.",
                &["homeserver"]
            )),
            probe_delay_seconds: register!(GaugeVec::new(
                Opts::new(
                    "openmeet_as_probe_delay_seconds",
                    "Time from posting the last returned probe marker to its arrival in a transaction, by homeserver id."
                ),
                &["homeserver"]
            )),
            probe_last_received_seconds: register!(GaugeVec::new(
                Opts::new(
                    "openmeet_as_probe_last_received_timestamp_seconds",
                    "Unix time a probe marker of the homeserver last arrived (no series before the first), by homeserver id."
                ),
                &["homeserver"]
            )),
            jobs_dead: register!(IntGaugeVec::new(
                Opts::new(
                    "openmeet_as_jobs_dead",
                    "Dead jobs (attempts spent) in the job table, by tenant, until an operator retries them."
                ),
                &["tenant"]
            )),
            jobs_running: register!(IntGaugeVec::new(
                Opts::new(
                    "openmeet_as_jobs_running",
                    "Jobs running under a lease, by tenant."
                ),
                &["tenant"]
            )),
            message_requests: register!(counter_vec(
                "message_requests_total",
                "Bot messages the platform posted, by outcome (queued; repeated: an Idempotency-Key seen before, answered with its first job). Sends: jobs_total{kind=\"send_message\"}.",
                &["outcome"]
            )),
            redactions: register!(counter_vec(
                "redactions_total",
                "Redactions of a user's events sent by the tenant bots, by outcome (redacted, rate_limited, failed).",
                &["outcome"]
            )),
            jobs_scheduled_due: register!(IntGaugeVec::new(
                Opts::new(
                    "openmeet_as_jobs_scheduled_due",
                    "Scheduled jobs (queued with a key for a later time: the lifting of a timed ban or mute) whose time has come and that no worker has taken yet, by tenant; above 0 for long, liftings are late."
                ),
                &["tenant"]
            )),
            webhook_deliveries: register!(counter_vec(
                "webhook_deliveries_total",
                "Webhook POSTs by tenant and outcome: delivered (2xx), retry (failed, tried again with backoff), failed (given up after failing for 24 h; the next event goes).",
                &["tenant", "outcome"]
            )),
            webhook_lag_events: register!(IntGaugeVec::new(
                Opts::new(
                    "openmeet_as_webhook_lag_events",
                    "Outbox events not yet delivered to the tenant's webhook, by tenant (tenants with a webhook)."
                ),
                &["tenant"]
            )),
            webhook_oldest_undelivered_age_seconds: register!(GaugeVec::new(
                Opts::new(
                    "openmeet_as_webhook_oldest_undelivered_age_seconds",
                    "Age of the oldest event not yet delivered to the tenant's webhook, by tenant (0 when caught up)."
                ),
                &["tenant"]
            )),
            leader: register!(IntGaugeVec::new(
                Opts::new(
                    "openmeet_as_leader",
                    "1 on the replica that runs singleton role `role` (pruner, queue_gauges, watchdog:{homeserver}, probe:{homeserver}), 0 on the others (DESIGN §15); each role is 1 on exactly one replica."
                ),
                &["role"]
            )),
            antispam_seconds: register!(HistogramVec::new(
                latency(
                    "antispam_seconds",
                    "Time to answer a synapse-http-antispam callback, by callback (user_may_join_room, user_may_invite, check_event_for_spam) and outcome (allowed, refused, error: the module's fail_open applied)."
                ),
                &["callback", "outcome"]
            )),
            antispam_refusals: register!(counter_vec(
                "antispam_refusals_total",
                "Joins, invites and messages a rule refused before they were sent, by tenant and rule (ban, invite_level, banned_invitee, blocked_word, blocked_link_domain, rate_limit).",
                &["tenant", "rule"]
            )),
            antispam_unrecorded: register!(counter(
                "antispam_unrecorded_total",
                "Refusals whose audit entry and feed event could not be written after retries (the refusal's warning in the log is their only trace)."
            )),
            sqlite_writer: crate::store::writer::TurnMetrics {
                waited: register!(HistogramVec::new(
                    latency(
                        "sqlite_writer_wait_seconds",
                        "SQLite only: time a write waited for the one writer, by kind (urgent: a transaction's acknowledgement; background: the processor, jobs, housekeeping)."
                    ),
                    &["kind"]
                )),
                held: register!(HistogramVec::new(
                    latency(
                        "sqlite_writer_turn_seconds",
                        "SQLite only: time a write held the one writer, by kind (urgent, background)."
                    ),
                    &["kind"]
                )),
                longest: register!(GaugeVec::new(
                    Opts::new(
                        "openmeet_as_sqlite_writer_longest_turn_seconds",
                        "SQLite only: the longest any write held the one writer since the start, by kind and by holder (the source location that asked for the turn)."
                    ),
                    &["kind", "holder"]
                )),
            },
            registry,
            names: Vec::new(),
        };
        names.sort();
        metrics.names = names;
        metrics
    }

    /// The name of every metric family, also of labelled ones that have no series yet (which
    /// `render` leaves out): what dashboards and alert rules may refer to.
    pub fn metric_names(&self) -> &[String] {
        &self.names
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encoding into memory cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }

    /// The `type` label for an event type.
    pub fn event_type_label(event_type: &str) -> &str {
        COUNTED_EVENT_TYPES
            .iter()
            .find(|t| **t == event_type)
            .copied()
            .unwrap_or("other")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_the_prefix_and_help() {
        let metrics = Metrics::new();
        metrics
            .events_processed
            .with_label_values(&["m.room.message"])
            .inc();
        metrics.ready.with_label_values(&["database"]).set(1);
        let text = metrics.render();
        for line in text.lines().filter(|l| l.starts_with("# HELP")) {
            let name = line.split_whitespace().nth(2).unwrap();
            assert!(name.starts_with("openmeet_as_"), "{name}");
        }
        assert!(text.contains("openmeet_as_events_processed_total{type=\"m.room.message\"} 1"));
    }

    #[test]
    fn unknown_event_types_share_one_label() {
        assert_eq!(Metrics::event_type_label("m.room.member"), "m.room.member");
        assert_eq!(Metrics::event_type_label("com.example.anything"), "other");
    }
}
