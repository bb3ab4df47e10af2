//! `rooms list|show|reconcile|adopt`: declared rooms for operators, their repair, and the bulk
//! declaration of existing rooms (`adopt.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::bail;
use clap::Subcommand;
use ruma::RoomId;
use serde_json::json;

use super::progress::Progress;
use crate::app::App;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::jobs::diagnose::{self, Finding};
use crate::jobs::ensure_room;
use crate::store::rooms::{self, Room, RoomStatus};
use crate::store::{jobs, unix_ms};

#[derive(Subcommand)]
pub enum RoomsCommand {
    /// Declared rooms, newest first, as JSON lines.
    List {
        #[arg(long)]
        tenant: Option<String>,
        /// Only rooms in this status (pending, ready, failed, lost, deleted).
        #[arg(long, value_parser = room_status)]
        status: Option<RoomStatus>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// One room with its members.
    Show {
        tenant: String,
        kind: String,
        slug: String,
    },
    /// Check managed rooms against the homeserver and queue the jobs that repair them.
    ///
    /// Each room is diagnosed without changing anything: unknown to the homeserver (its database
    /// was reset, or the id came from another environment), the tenant bot not joined or without
    /// power (the sender can often bring it back: adoption of rooms the old single bot created),
    /// or healthy. Then one ensure_room job per room makes Synapse match the declaration again,
    /// replacing rooms that cannot be repaired (new room, alias moved, members invited again; the
    /// old id is reported as previous_room_id). Prints one JSON line per room, a summary on stderr.
    Reconcile {
        /// Only this tenant's rooms.
        #[arg(long)]
        tenant: Option<String>,
        /// Every room that is not deleted (without it, name rooms as TENANT/KIND/SLUG).
        #[arg(long)]
        all: bool,
        /// Diagnose and print what would be done; change nothing and queue nothing.
        #[arg(long)]
        dry_run: bool,
        /// Rooms as TENANT/KIND/SLUG.
        rooms: Vec<String>,
    },
    /// Declare existing rooms in bulk when OpenMeet moves to this daemon (docs/migration.md).
    ///
    /// FILE has one room per line: its PUT body plus "tenant", "kind" and "slug", e.g.
    /// {"tenant": "t", "kind": "event", "slug": "party", "name": "Party Chat", "visibility":
    /// "public", "members": [...]} and, for a room whose alias is not ours, "adopt": {"room_id":
    /// "!…"}. Declares each through the running daemon's platform API and waits for its job;
    /// prints a JSON line per room (adopted, created, unchanged, updated, or refused with the
    /// reason) and the progress on stderr. Running it again after a crash continues: declarations
    /// are idempotent. Exits 1 when any room was refused.
    Adopt {
        /// The rooms, one JSON declaration per line.
        #[arg(long)]
        file: std::path::PathBuf,
        /// Read the database and Synapse and print what each declaration would do; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Declarations in flight at once (the worker still creates rooms at its own pace).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        concurrency: u16,
        /// The daemon's platform API (default: listen.platform of the config).
        #[arg(long)]
        url: Option<String>,
    },
}

pub fn run(config: Config, command: RoomsCommand) -> anyhow::Result<()> {
    let app = App::new(config, Arc::new(SystemClock))?;
    let mut conn = app.store.connection()?;
    match command {
        RoomsCommand::List {
            tenant,
            status,
            limit,
        } => {
            for room in rooms::list(&mut conn, tenant.as_deref(), status, limit)? {
                println!("{}", serde_json::to_string(&room)?);
            }
        }
        RoomsCommand::Show { tenant, kind, slug } => {
            let Some(room) = rooms::find(&mut conn, &tenant, &kind, &slug)? else {
                bail!("no room {tenant}/{kind}/{slug} is declared: see `rooms list`");
            };
            let members = crate::store::members::members(&mut conn, room.id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"room": room, "members": members}))?
            );
        }
        RoomsCommand::Reconcile {
            tenant,
            all,
            dry_run,
            rooms: named,
        } => {
            let targets = targets(&mut conn, tenant.as_deref(), all, &named)?;
            drop(conn);
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(reconcile(&app, targets, dry_run))?;
        }
        RoomsCommand::Adopt {
            file,
            dry_run,
            concurrency,
            url,
        } => {
            drop(conn);
            let runtime = tokio::runtime::Runtime::new()?;
            let adopt = super::adopt::adopt(&app, &file, dry_run, concurrency.into(), url);
            let refused = runtime.block_on(adopt)?;
            if refused > 0 {
                bail!(
                    "{refused} room(s) were refused (see their lines): fix them and run the same file again"
                );
            }
        }
    }
    Ok(())
}

fn room_status(text: &str) -> Result<RoomStatus, String> {
    RoomStatus::parse(text).ok_or_else(|| {
        format!("{text:?} is not a room status: use pending, ready, failed, lost or deleted")
    })
}

fn targets(
    conn: &mut crate::store::DbConnection,
    tenant: Option<&str>,
    all: bool,
    named: &[String],
) -> anyhow::Result<Vec<Room>> {
    if all {
        return Ok(rooms::list(conn, tenant, None, i64::MAX)?
            .into_iter()
            .filter(|room| room.status.is_live())
            .collect());
    }
    if named.is_empty() {
        bail!("name rooms as TENANT/KIND/SLUG, or give --all (with --tenant T for one tenant)");
    }
    let mut found = Vec::new();
    for name in named {
        let parts: Vec<&str> = name.splitn(3, '/').collect();
        let [tenant, kind, slug] = parts[..] else {
            bail!("{name:?} is not TENANT/KIND/SLUG");
        };
        match rooms::find_live(conn, tenant, kind, slug)? {
            Some(room) => found.push(room),
            _ => bail!("no room {name} is declared (or it was deleted): see `rooms list`"),
        }
    }
    Ok(found)
}

/// Diagnoses every room (a progress bar on a terminal), prints a line each, queues the jobs
/// unless `dry_run`, and ends with a summary.
async fn reconcile(app: &App, targets: Vec<Room>, dry_run: bool) -> anyhow::Result<()> {
    let config = app.config();
    let mut progress = Progress::new(targets.len(), "rooms checked");
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems = 0;
    let mut queued = 0;
    for room in &targets {
        let name = format!("{}/{}/{}", room.tenant_id, room.kind, room.slug);
        let Some(tenant) = config.tenant(&room.tenant_id) else {
            problems += 1;
            progress.note(&format!(
                "{name}: tenant {} is not configured; skipped",
                room.tenant_id
            ));
            continue;
        };
        let bot = config.bot_user_id(tenant);
        let room_id = room
            .room_id
            .as_deref()
            .and_then(|id| RoomId::parse(id).ok());
        let finding = match diagnose::diagnose(app, &bot, room_id.as_deref()).await {
            Ok(finding) => finding,
            Err(error) => {
                problems += 1;
                progress.note(&format!("{name}: could not be diagnosed: {error}"));
                progress.step();
                continue;
            }
        };
        *counts.entry(label(finding)).or_default() += 1;
        let mut line = json!({
            "room": name,
            "room_id": room.room_id,
            "diagnosis": finding,
            "action": finding.action(),
        });
        if !dry_run {
            let job = ensure_room::new_job(room);
            let now = unix_ms(std::time::SystemTime::now());
            let job = app
                .store
                .write(move |c| jobs::enqueue(c, &job, now))
                .await?;
            line["job"] = job.id.into();
            queued += 1;
        }
        progress.print(&line.to_string());
        progress.step();
    }
    progress.finish();
    let summary: Vec<String> = counts
        .iter()
        .map(|(label, n)| format!("{n} {label}"))
        .collect();
    eprintln!(
        "checked {} room(s): {}{}; {}",
        targets.len(),
        if summary.is_empty() {
            "none".to_owned()
        } else {
            summary.join(", ")
        },
        if problems > 0 {
            format!(", {problems} not diagnosed")
        } else {
            String::new()
        },
        if dry_run {
            "dry run: nothing was changed or queued".to_owned()
        } else {
            format!(
                "queued {queued} ensure_room job(s); follow them with `jobs show ID` or GET /v1/jobs/ID (a replaced room reports previous_room_id)"
            )
        }
    );
    if problems > 0 {
        bail!("{problems} room(s) could not be diagnosed (see above)");
    }
    Ok(())
}

fn label(finding: Finding) -> String {
    match serde_json::to_value(finding) {
        Ok(value) => value["finding"]
            .as_str()
            .unwrap_or("unknown")
            .replace('_', " "),
        Err(_) => "unknown".into(),
    }
}
