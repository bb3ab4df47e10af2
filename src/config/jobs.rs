//! `jobs`: the job workers of this process.

use std::time::Duration;

use super::checks::default_worker_id;
use super::file::JobsSection;

#[derive(Debug, Clone)]
pub struct Jobs {
    /// Whether this process runs jobs; `false`: it serves the APIs and queues jobs that another
    /// replica runs.
    pub enabled: bool,
    /// Names this process's leases; stable across restarts so that a restarted process reclaims
    /// its own jobs at once. Default: `{hostname}:{appservice port}`.
    pub worker_id: String,
    /// Jobs this process runs at once.
    pub max_parallel: usize,
    /// Jobs one tenant may run at once in this process, so one tenant cannot starve the others.
    pub per_tenant: usize,
    /// Attempts before a job that keeps failing transiently is `dead`.
    pub max_attempts: i32,
    /// How long a claim holds without renewal; a crashed worker's jobs are taken again after it.
    pub lease: Duration,
}

impl Jobs {
    /// `appservice_port` names the default worker id.
    pub fn validate(section: JobsSection, appservice_port: u16, p: &mut Vec<String>) -> Self {
        let max_parallel = section.max_parallel.unwrap_or(16);
        let per_tenant = section.per_tenant.unwrap_or(4);
        let max_attempts = section.max_attempts.unwrap_or(10);
        let lease_seconds = section.lease_seconds.unwrap_or(60);
        if max_parallel == 0 || per_tenant == 0 || max_attempts < 1 {
            p.push(
                "jobs.max_parallel, jobs.per_tenant and jobs.max_attempts must be at least 1."
                    .into(),
            );
        }
        if !(5..=60).contains(&lease_seconds) {
            p.push("jobs.lease_seconds must be between 5 and 60: a lapsed lease hands a crashed worker's jobs to another.".into());
        }
        Self {
            enabled: section.enabled.unwrap_or(true),
            worker_id: section
                .worker_id
                .unwrap_or_else(|| default_worker_id(appservice_port)),
            max_parallel,
            per_tenant,
            max_attempts,
            lease: Duration::from_secs(lease_seconds),
        }
    }
}
