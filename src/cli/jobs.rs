//! `jobs list|show|retry|cancel`: the job table for operators, as JSON lines.

use std::sync::Arc;

use anyhow::bail;
use clap::Subcommand;

use crate::app::App;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::store::{jobs, unix_ms};

#[derive(Subcommand)]
pub enum JobsCommand {
    /// Jobs newest first.
    List {
        /// Only jobs in this status (queued, running, succeeded, failed, dead, cancelled).
        #[arg(long)]
        status: Option<jobs::JobStatus>,
        /// Only jobs of this kind (ensure_room, teardown_room).
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One job, whole.
    Show { id: i64 },
    /// Queue a failed, dead or cancelled job again with fresh attempts.
    Retry { id: i64 },
    /// Cancel a queued job.
    Cancel { id: i64 },
}

pub fn run(config: Config, command: JobsCommand) -> anyhow::Result<()> {
    let app = App::new(config, Arc::new(SystemClock))?;
    let mut conn = app.store.connection()?;
    let now = unix_ms(std::time::SystemTime::now());
    match command {
        JobsCommand::List {
            status,
            kind,
            limit,
        } => {
            for job in jobs::list(&mut conn, status, kind.as_deref(), limit)? {
                println!("{}", serde_json::to_string(&job)?);
            }
        }
        JobsCommand::Show { id } => match jobs::get(&mut conn, id)? {
            Some(job) => println!("{}", serde_json::to_string_pretty(&job)?),
            None => bail!("there is no job {id}: see `jobs list`"),
        },
        JobsCommand::Retry { id } => {
            if !jobs::retry(&mut conn, id, now)? {
                bail!(
                    "job {id} is not failed, dead or cancelled, so there is nothing to retry: see `jobs show {id}`"
                );
            }
            eprintln!("job {id} is queued again");
        }
        JobsCommand::Cancel { id } => {
            if !jobs::cancel(&mut conn, id, now)? {
                bail!("job {id} is not queued, so it cannot be cancelled: see `jobs show {id}`");
            }
            eprintln!("job {id} is cancelled");
        }
    }
    Ok(())
}
