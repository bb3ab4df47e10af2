//! CPU pinning for the pinned measurements: the servers under measurement on one core, the load
//! generator on the other (issue 24's method).
//!
//! A thread's CPU affinity is inherited by the threads it makes and by the processes it spawns, so
//! [`pin_this_thread`] first thing in `main` pins the whole benchmark, and a process spawned from
//! inside [`on_cpu`] starts on that CPU as under `taskset -c` — before its first instruction, so a
//! tokio runtime inside sees one CPU and sizes itself for it. [`placement`] reads back where every
//! thread of a process may run (what `taskset -p` prints for each of `/proc/<pid>/task/*`), and
//! [`cpu_busy_seconds`] how busy one CPU was, whoever ran there.

use rustix::thread::{CpuSet, Pid, sched_getaffinity, sched_setaffinity};

/// Panics unless this process may run on both `cpus`.
pub fn require_cpus(cpus: [usize; 2]) {
    let allowed = sched_getaffinity(None).expect("read this process's CPU affinity");
    assert!(
        cpus.iter().all(|cpu| allowed.is_set(*cpu)),
        "the pinned mode needs 2 CPUs ({} and {}: the servers on one, the load generator on the \
         other), and this process may run on {} ({})",
        cpus[0],
        cpus[1],
        allowed.count(),
        cpu_list(&allowed),
    );
}

/// Pins the calling thread to `cpu`; threads and processes it makes later start there too.
pub fn pin_this_thread(cpu: usize) {
    sched_setaffinity(None, &only(cpu)).unwrap_or_else(|e| panic!("pin to CPU {cpu}: {e}"));
}

/// Runs `f` on a new thread pinned to `cpu` and returns what it returns: whatever `f` spawns runs
/// on `cpu` from its start. `f` may block (a runtime of its own, if it awaits).
pub fn on_cpu<T: Send>(cpu: usize, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let thread = scope.spawn(|| {
            pin_this_thread(cpu);
            f()
        });
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Where the threads of process `pid` may run.
pub struct Placement {
    pub threads: usize,
    /// The threads allowed elsewhere than on the CPU asked about: (thread id, CPUs allowed).
    pub astray: Vec<(u32, String)>,
}

impl Placement {
    /// "9 threads, all on CPU 0", or which ones are not.
    pub fn describe(&self, cpu: usize) -> String {
        if self.astray.is_empty() {
            return format!("{} threads, all on CPU {cpu} only", self.threads);
        }
        let astray: Vec<String> = self
            .astray
            .iter()
            .map(|(tid, cpus)| format!("thread {tid} on {cpus}"))
            .collect();
        format!(
            "{} threads, NOT all on CPU {cpu} only: {}",
            self.threads,
            astray.join(", ")
        )
    }
}

/// Reads the affinity of every thread of `pid` (`/proc/<pid>/task/*`) against `cpu`.
pub fn placement(pid: u32, cpu: usize) -> Placement {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| panic!("list the threads of {pid}: {e}"));
    let mut threads = 0;
    let mut astray = Vec::new();
    for tid in tasks
        .flatten()
        .filter_map(|task| task.file_name().to_str()?.parse::<u32>().ok())
    {
        // A thread that ended between the listing and the read is not counted.
        let Some(allowed) =
            Pid::from_raw(tid as i32).and_then(|tid| sched_getaffinity(Some(tid)).ok())
        else {
            continue;
        };
        threads += 1;
        if !(allowed.count() == 1 && allowed.is_set(cpu)) {
            astray.push((tid, cpu_list(&allowed)));
        }
    }
    Placement { threads, astray }
}

/// The time `cpu` has been busy since boot, in seconds: its line of /proc/stat, all but idle and
/// iowait.
pub fn cpu_busy_seconds(cpu: usize) -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("read /proc/stat");
    let prefix = format!("cpu{cpu} ");
    let line = stat
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no CPU {cpu} in /proc/stat"));
    let jiffies: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|value| value.parse().expect("a jiffies count"))
        .collect();
    let idle = jiffies[3] + jiffies.get(4).copied().unwrap_or(0);
    (jiffies.iter().sum::<u64>() - idle) as f64 / super::CLOCK_TICKS
}

fn only(cpu: usize) -> CpuSet {
    let mut set = CpuSet::new();
    set.set(cpu);
    set
}

/// "0,1": the CPUs of a set.
fn cpu_list(set: &CpuSet) -> String {
    let cpus: Vec<String> = (0..CpuSet::MAX_CPU)
        .filter(|cpu| set.is_set(*cpu))
        .map(|cpu| cpu.to_string())
        .collect();
    cpus.join(",")
}
