//! The report: declared rooms to ready against the direct client, the Matrix calls per run, and
//! the enqueue rate, as markdown tables.

use std::fmt::Write as _;
use std::time::Duration;

use crate::common::daemon::Backend;
use crate::common::{mib, ms, row, table};
use crate::enqueue::enqueue_clients;
use crate::measures::{EndpointStats, Pushed, Usage};
use crate::{
    ENDPOINTS, ENQUEUE_RUN, ENQUEUE_WARMUP, HOMESERVER_TIMEOUT_SECONDS, MAX_PARALLEL, MEMBERS,
    PER_TENANT, Report, TARGET_ENQUEUE_PER_SECOND, TARGET_PERCENT, TENANTS,
};

pub fn render(report: &Report) -> String {
    let mut out = String::from("# Declared rooms benchmark\n\n");
    write_setup(&mut out, report);
    if !report.declared.is_empty() {
        write_declared(&mut out, report);
        write_disturbed(&mut out, report);
        write_calls(&mut out, report);
    }
    if !report.enqueue.is_empty() {
        write_enqueue(&mut out, report);
    }
    write_big(&mut out, report);
    out
}

/// The big room: the daemon's run against the direct client's.
fn write_big(out: &mut String, report: &Report) {
    if report.big.is_empty() {
        return;
    }
    let (declared, late) = (report.big[0].declared, report.big[0].late);
    let members = declared + late;
    let _ = writeln!(
        out,
        "## One big room\n\nA private event room declared with {declared} members in one `PUT`, \
         then {late} single-member `PUT`s one after another (the daemon); the direct client \
         creates the room, reads its state once and invites the same {members} users. Every \
         member user was invited once before, into a warm-up room. Time: first `PUT` (or call) \
         to every job succeeded (every invite made).\n"
    );
    let mut rows = vec![row(&[
        "run",
        "jobs",
        "homeserver calls",
        "calls per member",
        "invites",
        "state reads",
        "time to converge s",
        "members/s",
    ])];
    for run in &report.big {
        let calls = run.total_calls();
        let jobs = if run.jobs == 0 {
            "–".to_owned()
        } else {
            run.jobs.to_string()
        };
        rows.push(vec![
            run.label.clone(),
            jobs,
            format!("{calls:.0}"),
            format!("{:.3}", calls / members as f64),
            format!(
                "{:.0}",
                run.calls.get("invite_user").copied().unwrap_or(0.0)
            ),
            format!(
                "{:.0}",
                run.calls.get("get_state_events").copied().unwrap_or(0.0)
            ),
            format!("{:.1}", run.wall.as_secs_f64()),
            format!("{:.1}", members as f64 / run.wall.as_secs_f64()),
        ]);
    }
    let _ = writeln!(out, "{}", table(&rows));
}

fn rate_of(rooms: usize, wall: Duration) -> f64 {
    rooms as f64 / wall.as_secs_f64()
}

/// What ran where: the machine, the declaration, the bounds, PostgreSQL.
fn write_setup(out: &mut String, report: &Report) {
    let rooms = report.rooms;
    if rooms == 0 {
        let _ = writeln!(
            out,
            "One Synapse 1.163 (SQLite, single process) and the daemon (release build, log level \
             info) on this {}-core machine; only the runs below. Whole benchmark: {:.0} s.\n",
            std::thread::available_parallelism().map_or(0, usize::from),
            report.total.as_secs_f64()
        );
        return;
    }
    let postgres = report.postgres.as_ref().map_or(String::new(), |(version, tls)| {
        let connections = if *tls {
            "over TLS (as TEST_POSTGRES_URL or PGSSLMODE asks, or to a server not on loopback)"
        } else {
            "without TLS (the daemon's default on loopback; `?sslmode=require` in TEST_POSTGRES_URL asks for it)"
        };
        format!(" PostgreSQL {version} on the same machine, connections {connections}.")
    });
    let _ = writeln!(
        out,
        "One Synapse 1.163 (SQLite, single process) and the daemon (release build, log level info) \
         on this {}-core machine. {rooms} private event rooms of {MEMBERS} members each (host, \
         moderator, {} participants; {} distinct registered users per run), over {TENANTS} tenants, \
         declared with one `PUT` each, all at once. Jobs: max_parallel {MAX_PARALLEL}, per_tenant \
         {PER_TENANT}; homeserver timeout {HOMESERVER_TIMEOUT_SECONDS} s. The direct client makes \
         the same Matrix calls as the tenant bots with {MAX_PARALLEL} rooms in flight, at most \
         {PER_TENANT} per tenant.{postgres} Whole benchmark: {:.0} s.\n",
        std::thread::available_parallelism().map_or(0, usize::from),
        MEMBERS - 2,
        rooms * MEMBERS,
        report.total.as_secs_f64()
    );
}

/// Declared rooms to ready: each daemon run against the direct runs around it, then the direct runs.
fn write_declared(out: &mut String, report: &Report) {
    let direct_rate = report
        .directs
        .iter()
        .map(|run| rate_of(run.rooms, run.wall))
        .sum::<f64>()
        / report.directs.len().max(1) as f64;
    let _ = writeln!(out, "## Declared rooms to ready\n");
    let mut table_rows = vec![row(&[
        "run",
        "rooms",
        "wall s",
        "rooms/s",
        "% of direct: neighbours; all",
        "all PUTs answered ms",
        "job p50 / max s",
        "mean in flight",
        "retries",
        "daemon CPU ms/job",
        "Synapse CPU s (per room)",
        "Synapse CPU % of a core",
        "machine busy %",
        "Synapse pushed: txns (events), mean ack",
        "peak RSS MiB",
    ])];
    for (k, run) in report.declared.iter().enumerate() {
        let rate = run.rooms as f64 / run.wall.as_secs_f64();
        // The direct runs just before and after this one (they alternate).
        let neighbours: Vec<f64> = report.directs[k.min(report.directs.len())..]
            .iter()
            .take(2)
            .map(|direct| rate_of(direct.rooms, direct.wall))
            .collect();
        let limit = if neighbours.is_empty() {
            direct_rate
        } else {
            neighbours.iter().sum::<f64>() / neighbours.len() as f64
        };
        let percent = rate * 100.0 / limit;
        let wall = run.wall.as_secs_f64();
        let retries = if run.unsuccessful_attempts.is_empty() {
            run.extra_attempts.to_string()
        } else {
            let outcomes: Vec<String> = run
                .unsuccessful_attempts
                .iter()
                .map(|(outcome, count)| format!("{count} {outcome}"))
                .collect();
            format!("{} ({})", run.extra_attempts, outcomes.join(", "))
        };
        let mut cells = row(&[
            &format!("daemon, {}", run.backend.name()),
            &run.rooms.to_string(),
            &format!("{wall:.1}"),
            &format!("{rate:.2}"),
            &format!(
                "{percent:.0} % of {limit:.2} ({}); {:.0} % of {direct_rate:.2}",
                if percent >= TARGET_PERCENT {
                    "met"
                } else {
                    "MISSED"
                },
                rate * 100.0 / direct_rate
            ),
            &format!("{:.0}", ms(run.enqueued)),
            &format!(
                "{:.1} / {:.1}",
                run.job_p50.as_secs_f64(),
                run.job_max.as_secs_f64()
            ),
            &format!("{:.1}", run.mean_in_flight),
            &retries,
            &format!(
                "{:.1}",
                run.usage.daemon_cpu_seconds * 1000.0 / run.rooms as f64
            ),
        ]);
        cells.extend(synapse_cells(&run.usage, run.rooms, wall, &run.pushed));
        cells.push(format!("{:.1}", mib(run.peak_rss_kib)));
        table_rows.push(cells);
    }
    for direct in &report.directs {
        let wall = direct.wall.as_secs_f64();
        let rate = rate_of(direct.rooms, direct.wall);
        let mut cells = row(&[
            &format!("direct client, {}", direct.label),
            &direct.rooms.to_string(),
            &format!("{wall:.1}"),
            &format!("{rate:.2}"),
            &format!("{:.0} % of all", rate * 100.0 / direct_rate),
            "",
            "",
            &format!("{:.1}", direct.mean_in_flight),
            "0",
            &format!(
                "({:.1}: the bench client)",
                direct.usage.own_cpu_seconds * 1000.0 / direct.rooms as f64
            ),
        ]);
        cells.extend(synapse_cells(
            &direct.usage,
            direct.rooms,
            wall,
            &direct.pushed,
        ));
        cells.push(String::new());
        table_rows.push(cells);
    }
    out.push_str(&table(&table_rows));
    let _ = writeln!(
        out,
        "\nWall: first `PUT` until every job `succeeded` (the daemon's `jobs_total`, polled every \
         50 ms); job latency: queued → succeeded per the job table; mean in flight: Σ job_seconds \
         (direct: Σ room time) ÷ wall; retries: attempts beyond the first; CPU: utime + stime \
         from /proc over the wall time (daemon CPU includes answering the `PUT`s and Synapse's \
         transaction pushes); machine busy: all cores, from /proc/stat. Target: the daemon at ≥ \
         {TARGET_PERCENT} % of the direct client's rooms/s. The direct client runs {} times, taking \
         turns with the daemon; Synapse slows down as its database grows, so each daemon run is \
         compared with the mean of the direct runs just before and after it (neighbours), and with \
         the mean of all ({direct_rate:.2} rooms/s). Synapse pushed: the appservice transactions \
         (and events) Synapse sent for the run's rooms, and the daemon's mean time to acknowledge \
         one.\n",
        report.directs.len()
    );
}

/// The cells both kinds of run have: Synapse's CPU seconds (and per room), Synapse's share of a
/// core, how busy the machine was, and what Synapse pushed to the daemon.
fn synapse_cells(usage: &Usage, rooms: usize, wall: f64, pushed: &Pushed) -> [String; 4] {
    [
        format!(
            "{:.1} ({:.3})",
            usage.synapse_cpu_seconds,
            usage.synapse_cpu_seconds / rooms as f64
        ),
        format!("{:.0}", usage.synapse_cpu_seconds * 100.0 / wall),
        format!("{:.0}", usage.machine_busy_percent),
        pushed.cell(),
    ]
}

/// The runs during which other processes took more than a tenth of a core.
fn write_disturbed(out: &mut String, report: &Report) {
    let mut disturbed: Vec<String> = Vec::new();
    let mut check = |run: String, usage: &Usage, wall: Duration| {
        let share = usage.other_cpu_seconds / wall.as_secs_f64();
        if share > 0.1 {
            disturbed.push(format!("{run} ({:.0} % of a core)", share * 100.0));
        }
    };
    for run in &report.declared {
        check(
            format!("daemon, {}", run.backend.name()),
            &run.usage,
            run.wall,
        );
    }
    for run in &report.directs {
        check(
            format!("direct client, {}", run.label),
            &run.usage,
            run.wall,
        );
    }
    for run in &report.enqueue {
        check(
            format!(
                "enqueue, {} with {} members",
                run.backend.name(),
                run.members
            ),
            &run.usage,
            run.wall,
        );
    }
    if !disturbed.is_empty() {
        let _ = writeln!(
            out,
            "**Other processes used the CPU during** {}: those numbers are disturbed; run the \
             benchmark on an otherwise idle machine.\n",
            disturbed.join(", ")
        );
    }
}

/// The Matrix calls of each run, by endpoint.
fn write_calls(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## Matrix calls per run\n");
    let mut header = vec!["endpoint".to_owned()];
    for run in &report.declared {
        header.push(format!("daemon {}: calls", run.backend.name()));
        header.push("mean ms".to_owned());
    }
    header.push("direct, per run: calls".to_owned());
    header.push("mean ms".to_owned());
    let mut calls_rows = vec![header];
    let mut endpoints: Vec<String> = ENDPOINTS.iter().map(|e| (*e).to_owned()).collect();
    for run in &report.declared {
        for endpoint in run.endpoints.keys() {
            if !endpoints.contains(endpoint) {
                endpoints.push(endpoint.clone());
            }
        }
    }
    let cell = |stats: Option<&EndpointStats>| match stats {
        Some(stats) if stats.calls > 0.0 => {
            let errors = if stats.errors > 0.0 {
                format!(" ({} errors)", stats.errors)
            } else {
                String::new()
            };
            (
                format!("{}{errors}", stats.calls),
                format!("{:.0}", stats.mean_ms()),
            )
        }
        _ => ("0".to_owned(), String::new()),
    };
    for endpoint in &endpoints {
        let mut cells = vec![endpoint.clone()];
        for run in &report.declared {
            let (calls, mean) = cell(run.endpoints.get(endpoint));
            cells.push(calls);
            cells.push(mean);
        }
        let mut direct = EndpointStats::default();
        for run in &report.directs {
            if let Some(stats) = run.endpoints.get(endpoint) {
                direct.calls += stats.calls;
                direct.errors += stats.errors;
                direct.seconds += stats.seconds;
            }
        }
        let runs = report.directs.len().max(1) as f64;
        direct.calls /= runs;
        direct.errors /= runs;
        direct.seconds /= runs;
        let (calls, mean) = cell(Some(&direct));
        cells.push(calls);
        cells.push(mean);
        calls_rows.push(cells);
    }
    out.push_str(&table(&calls_rows));
    let kinds: Vec<String> = report
        .declared
        .iter()
        .map(|run| {
            let kinds: Vec<String> = run
                .jobs_by_kind
                .iter()
                .map(|(kind, count)| format!("{count} {kind}"))
                .collect();
            format!("{}: {}", run.backend.name(), kinds.join(", "))
        })
        .collect();
    let _ = writeln!(
        out,
        "\nMean ms: the call's latency as the caller saw it (the daemon's \
         `homeserver_request_seconds`). `register` answers `M_USER_IN_USE` when the bot exists \
         (counted as errors). Jobs in the table after each run: {}.\n",
        kinds.join("; ")
    );
}

fn write_enqueue(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## Platform API enqueue rate\n");
    let mut enqueue_rows = vec![row(&[
        "backend",
        "members",
        "clients",
        "calls",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "daemon CPU µs/call",
        "PostgreSQL server CPU µs/call",
        "load generator CPU µs/call",
        "machine busy %",
        "peak RSS MiB",
        "target",
    ])];
    for run in &report.enqueue {
        let rate = run.calls as f64 / run.wall.as_secs_f64();
        let per_call = |seconds: f64| format!("{:.0}", seconds * 1e6 / run.calls.max(1) as f64);
        let target = if run.backend == Backend::Postgres {
            let wanted = TARGET_ENQUEUE_PER_SECOND[usize::from(run.members > 0)];
            format!(
                "≥ {wanted:.0}/s: {}",
                if rate >= wanted { "met" } else { "MISSED" }
            )
        } else {
            String::new()
        };
        enqueue_rows.push(row(&[
            run.backend.name(),
            &run.members.to_string(),
            &enqueue_clients().to_string(),
            &run.calls.to_string(),
            &format!("{rate:.0}"),
            &format!("{:.2}", ms(run.p50)),
            &format!("{:.2}", ms(run.p99)),
            &run.errors.to_string(),
            &per_call(run.usage.daemon_cpu_seconds),
            &per_call(run.usage.postgres_cpu_seconds),
            &per_call(run.usage.own_cpu_seconds),
            &format!("{:.0}", run.usage.machine_busy_percent),
            &format!("{:.1}", mib(run.peak_rss_kib)),
            &target,
        ]));
    }
    out.push_str(&table(&enqueue_rows));
    let _ = writeln!(
        out,
        "\n`PUT /v1/tenants/{{tenant}}/rooms/event/{{slug}}`, a new slug each call, over {TENANTS} \
         tenants, on a daemon with `jobs.enabled: false`; {} keep-alive clients for {} s after \
         a {} s warm-up. The load generator runs on the same cores.",
        enqueue_clients(),
        ENQUEUE_RUN.as_secs(),
        ENQUEUE_WARMUP.as_secs()
    );
}
