//! Progress of a command's long work on stderr: on a terminal a bar redrawn in place, elsewhere (a
//! log, CI) a line every few seconds; both with the rate and the time left. What the work prints
//! for each item goes to stdout, above the bar.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often a line is written when stderr is no terminal.
const EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    total: usize,
    done: usize,
    /// What is counted ("rooms checked").
    unit: &'static str,
    terminal: bool,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    pub fn new(total: usize, unit: &'static str) -> Self {
        let now = Instant::now();
        let progress = Self {
            total,
            done: 0,
            unit,
            terminal: std::io::stderr().is_terminal(),
            started: now,
            last_line: now,
        };
        progress.draw();
        progress
    }

    /// `12/40 rooms checked, 3.1/s, 9 s left`.
    fn status(&self) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut status = format!("{}/{} {}", self.done, self.total, self.unit);
        if self.done > 0 && elapsed > 0.0 {
            let rate = self.done as f64 / elapsed;
            let left = (self.total - self.done) as f64 / rate;
            status.push_str(&format!(", {rate:.1}/s, {} left", duration(left)));
        }
        status
    }

    fn draw(&self) {
        if self.terminal && self.total > 0 {
            let width = 30;
            let filled = width * self.done / self.total;
            eprint!(
                "\r[{}{}] {}",
                "#".repeat(filled),
                ".".repeat(width - filled),
                self.status()
            );
        }
    }

    fn clear(&self) {
        if self.terminal {
            eprint!("\r\x1b[2K");
        }
    }

    pub fn step(&mut self) {
        self.done += 1;
        self.draw();
        if !self.terminal && (self.last_line.elapsed() >= EVERY || self.done == self.total) {
            self.last_line = Instant::now();
            eprintln!("{}", self.status());
        }
    }

    /// A line on stdout, above the bar.
    pub fn print(&self, line: &str) {
        self.clear();
        println!("{line}");
        self.draw();
    }

    /// A line on stderr, above the bar.
    pub fn note(&self, line: &str) {
        self.clear();
        eprintln!("{line}");
        self.draw();
    }

    pub fn finish(&self) {
        self.clear();
    }
}

/// `42 s`, `3 min 5 s`, `2 h 10 min`.
fn duration(seconds: f64) -> String {
    let seconds = seconds.round() as u64;
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_reads_in_the_largest_units() {
        assert_eq!(duration(42.4), "42 s");
        assert_eq!(duration(185.0), "3 min 5 s");
        assert_eq!(duration(7_800.0), "2 h 10 min");
    }
}
