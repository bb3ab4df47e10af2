//! `moderation list`: the moderation audit log for operators, oldest first, as JSON lines (the
//! entries `GET moderation` answers, with their tenant).

use std::sync::Arc;

use clap::Subcommand;

use crate::api::platform::moderation::moderation_log::{MAX_LIMIT, representation};
use crate::app::App;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::store::moderation_log;

#[derive(Subcommand)]
pub enum ModerationCommand {
    /// Audit entries oldest first: who acted (X-OpenMeet-Actor), when, what, where, why, until
    /// when, and which job carries it out.
    List {
        /// Only this tenant's entries.
        #[arg(long)]
        tenant: Option<String>,
        /// Only entries about this user (a full Matrix user id).
        #[arg(long)]
        user: Option<String>,
        /// Only entries after this id (the last one printed, to page on).
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=MAX_LIMIT))]
        limit: i64,
    },
}

pub fn run(config: Config, command: ModerationCommand) -> anyhow::Result<()> {
    let app = App::new(config, Arc::new(SystemClock))?;
    let mut conn = app.store.connection()?;
    match command {
        ModerationCommand::List {
            tenant,
            user,
            after,
            limit,
        } => {
            let entries =
                moderation_log::list(&mut conn, tenant.as_deref(), user.as_deref(), after, limit)?;
            for entry in entries {
                let mut line = serde_json::to_value(representation(&entry))?;
                line["tenant"] = entry.tenant_id.into();
                println!("{}", serde_json::to_string(&line)?);
            }
        }
    }
    Ok(())
}
