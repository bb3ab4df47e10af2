//! `inbox status|events|quarantine`: what Synapse delivered and what became of it, as JSON lines.

use std::sync::Arc;

use clap::Subcommand;

use crate::app::App;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::store::inbox_views;

#[derive(Subcommand)]
pub enum InboxCommand {
    /// Pending events and the age of the oldest.
    Status,
    /// The most recent stored events with their outcomes, newest first.
    Events {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// The most recent quarantined bodies and events, newest first.
    Quarantine {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

pub fn run(config: Config, command: InboxCommand) -> anyhow::Result<()> {
    let app = App::new(config, Arc::new(SystemClock))?;
    let mut conn = app.store.connection()?;
    match command {
        InboxCommand::Status => {
            let (pending, oldest) = inbox_views::pending_summary(&mut conn)?;
            println!(
                "{}",
                serde_json::json!({"pending": pending, "oldest_received_at_ms": oldest})
            );
        }
        InboxCommand::Events { limit } => {
            for event in inbox_views::recent_events(&mut conn, limit)? {
                println!("{}", serde_json::to_string(&event)?);
            }
        }
        InboxCommand::Quarantine { limit } => {
            for entry in inbox_views::recent_quarantine(&mut conn, limit)? {
                println!("{}", serde_json::to_string(&entry)?);
            }
        }
    }
    Ok(())
}
