//! What both benchmarks share: the daemon's backends, config and readiness ([`daemon`]), its
//! metrics ([`metrics`]), the load loop ([`load`]), CPU pinning ([`pin`]), reading a process's CPU
//! time and memory from /proc, latency percentiles, and the padded markdown tables of their reports.
#![allow(dead_code)]

pub mod daemon;
pub mod load;
pub mod metrics;
pub mod pin;

use std::time::Duration;

/// Linux's USER_HZ: the unit of utime and stime in /proc/<pid>/stat.
pub const CLOCK_TICKS: f64 = 100.0;

pub fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|cell| (*cell).to_owned()).collect()
}

/// A markdown table with padded columns, readable as plain text too.
pub fn table(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let mut out = line(&rows[0]);
    out.push_str(&line(&rule));
    for cells in &rows[1..] {
        out.push_str(&line(cells));
    }
    out
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The ids of the processes running now (the numeric entries of /proc).
pub fn pids() -> impl Iterator<Item = u32> {
    let entries = std::fs::read_dir("/proc").expect("read /proc");
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
}

/// utime + stime of a process, in seconds; `None` when it is gone.
pub fn try_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / CLOCK_TICKS)
}

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    try_cpu_seconds(pid).unwrap_or_else(|| panic!("no CPU times in /proc/{pid}/stat"))
}

/// A `kB` line of /proc/<pid>/status, e.g. VmHWM.
pub fn proc_status_kib(pid: u32, key: &str) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// Rooms per run: `OPENMEET_BENCH_ROOMS` when it is a positive number, else `default`.
pub fn rooms_from_env(default: usize) -> usize {
    std::env::var("OPENMEET_BENCH_ROOMS")
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok())
        .filter(|rooms| *rooms > 0)
        .unwrap_or(default)
}

/// The multi-threaded tokio runtime a benchmark drives its load from.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Prints a report and writes it to `target/bench/{file}`.
pub fn write_report(file: &str, markdown: &str) {
    println!("\n{markdown}");
    let dir = crate::support::python::repo_root()
        .join("target")
        .join("bench");
    std::fs::create_dir_all(&dir).expect("create target/bench");
    std::fs::write(dir.join(file), markdown).expect("write the report");
    println!("written to {}", dir.join(file).display());
}
