//! `rooms list|show|reconcile`: declared rooms for operators.

use std::sync::Arc;

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;

use crate::app::App;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::jobs::ensure_room;
use crate::store::rooms::{self, DELETED};
use crate::store::{jobs, unix_ms};

#[derive(Subcommand)]
pub enum RoomsCommand {
    /// Declared rooms, newest first, as JSON lines.
    List {
        #[arg(long)]
        tenant: Option<String>,
        /// Only rooms in this status (pending, ready, failed, lost, deleted).
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// One room with its members.
    Show {
        tenant: String,
        kind: String,
        slug: String,
    },
    /// Queue a job that makes Synapse match the declaration again (creates, invites, levels).
    Reconcile {
        /// Only this tenant's rooms.
        #[arg(long)]
        tenant: Option<String>,
        /// Every room that is not deleted (without it, name rooms as TENANT/KIND/SLUG).
        #[arg(long)]
        all: bool,
        /// Rooms as TENANT/KIND/SLUG.
        rooms: Vec<String>,
    },
}

pub fn run(config: Config, command: RoomsCommand) -> anyhow::Result<()> {
    let app = App::new(config, Arc::new(SystemClock));
    let mut conn = app.store.connection()?;
    match command {
        RoomsCommand::List {
            tenant,
            status,
            limit,
        } => {
            for room in rooms::list(&mut conn, tenant.as_deref(), status.as_deref(), limit)? {
                println!("{}", serde_json::to_string(&room)?);
            }
        }
        RoomsCommand::Show { tenant, kind, slug } => {
            let Some(room) = rooms::find(&mut conn, &tenant, &kind, &slug)? else {
                bail!("no room {tenant}/{kind}/{slug} is declared: see `rooms list`");
            };
            let members = rooms::members(&mut conn, room.id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"room": room, "members": members}))?
            );
        }
        RoomsCommand::Reconcile {
            tenant,
            all,
            rooms: named,
        } => {
            let targets = if all {
                rooms::list(&mut conn, tenant.as_deref(), None, i64::MAX)?
                    .into_iter()
                    .filter(|room| room.status != DELETED)
                    .collect()
            } else if named.is_empty() {
                bail!(
                    "name rooms as TENANT/KIND/SLUG, or give --all (with --tenant T for one tenant)"
                );
            } else {
                let mut found = Vec::new();
                for name in &named {
                    let parts: Vec<&str> = name.splitn(3, '/').collect();
                    let [tenant, kind, slug] = parts[..] else {
                        bail!("{name:?} is not TENANT/KIND/SLUG");
                    };
                    match rooms::find(&mut conn, tenant, kind, slug)? {
                        Some(room) if room.status != DELETED => found.push(room),
                        _ => bail!(
                            "no room {name} is declared (or it was deleted): see `rooms list`"
                        ),
                    }
                }
                found
            };
            let now = unix_ms(std::time::SystemTime::now());
            for room in targets {
                let job = jobs::enqueue(&mut conn, &ensure_room::new_job(&room), now)?;
                println!(
                    "{}",
                    json!({"room": format!("{}/{}/{}", room.tenant_id, room.kind, room.slug), "job": job.id})
                );
            }
        }
    }
    Ok(())
}
