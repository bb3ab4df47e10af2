//! `rooms adopt --file rooms.jsonl [--dry-run] [--concurrency N]` (DESIGN §14): declares OpenMeet's
//! existing rooms in bulk when it moves to this daemon. Each line is a room's PUT body plus its
//! `tenant`, `kind` and `slug`. The declarations go through the running daemon's platform API (the
//! same checks and jobs as the platform's own PUT), at most N in flight, and each room ends in a
//! JSON line on stdout: `adopted` (an existing Matrix room kept its id and history), `created`,
//! `unchanged` (declared and converged before: a re-run after a crash continues), `updated`, or
//! `refused` with the reason. `--dry-run` changes nothing: it reads the database and Synapse and
//! says what each declaration would do.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::StatusCode;
use ruma::RoomId;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::progress::Progress;
use crate::app::App;
use crate::jobs::diagnose::{self, Finding};
use crate::rooms::{self, RoomKind};
use crate::store::rooms as room_store;

/// One line of the file, read.
struct Line {
    number: usize,
    /// `tenant/kind/slug`.
    name: String,
    tenant: String,
    kind: String,
    slug: String,
    /// The PUT body: the line without `tenant`, `kind` and `slug`.
    body: Value,
}

/// A room's outcome, as printed.
fn outcome(line: &Line, outcome: &str, extra: Value) -> Value {
    let mut printed = json!({"line": line.number, "room": line.name, "outcome": outcome});
    if let (Some(printed), Value::Object(extra)) = (printed.as_object_mut(), extra) {
        printed.extend(extra);
    }
    printed
}

/// Reads the file's non-blank lines; a line that is no declaration is an error naming it.
fn read(path: &std::path::Path) -> anyhow::Result<Vec<Line>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {}: give --file the rooms.jsonl to adopt",
            path.display()
        )
    })?;
    let mut lines = Vec::new();
    for (index, text) in text.lines().enumerate() {
        let number = index + 1;
        if text.trim().is_empty() {
            continue;
        }
        let mut body: Value = serde_json::from_str(text).with_context(|| {
            format!("line {number} is not JSON: write one room per line, e.g. {{\"tenant\": \"t\", \"kind\": \"event\", \"slug\": \"s\", \"name\": \"S Chat\", \"visibility\": \"public\"}}")
        })?;
        let mut field = |key: &str| -> anyhow::Result<String> {
            match body.as_object_mut().and_then(|object| object.remove(key)) {
                Some(Value::String(value)) => Ok(value),
                _ => bail!(
                    "line {number} has no \"{key}\" string: each line is a room's PUT body plus its tenant, kind and slug"
                ),
            }
        };
        let (tenant, kind, slug) = (field("tenant")?, field("kind")?, field("slug")?);
        lines.push(Line {
            number,
            name: format!("{tenant}/{kind}/{slug}"),
            tenant,
            kind,
            slug,
            body,
        });
    }
    Ok(lines)
}

/// Runs the adoption of every room in `file`; returns how many were refused.
pub async fn adopt(
    app: &App,
    file: &std::path::Path,
    dry_run: bool,
    concurrency: usize,
    url: Option<String>,
) -> anyhow::Result<usize> {
    let lines = read(file)?;
    let config = app.config();
    let url = url.unwrap_or_else(|| {
        let platform = config.listen.platform;
        let host = if platform.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            platform.ip().to_string()
        };
        format!("http://{host}:{}", platform.port())
    });
    let mut progress = Progress::new(lines.len(), "rooms");
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut running = JoinSet::new();
    let mut refused = 0;
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    let total = lines.len();
    for line in lines {
        let permit = Arc::clone(&slots).acquire_owned().await?;
        let printed = if dry_run {
            // Sequential: the dry run reads, and a homeserver every tenant shares is not hurried.
            drop(permit);
            Some(dry(app, &line).await)
        } else {
            let token = config
                .tenant(&line.tenant)
                .map(|t| t.api_token.expose().to_owned());
            let (client, url) = (client.clone(), url.clone());
            running.spawn(async move {
                let _permit = permit;
                declare(&client, &url, token, &line).await
            });
            None
        };
        let finished = printed
            .into_iter()
            .map(Ok)
            .chain(drain(&mut running, false).await);
        for printed in finished {
            report(&mut progress, &mut counts, &mut refused, printed?);
        }
    }
    for printed in drain(&mut running, true).await {
        report(&mut progress, &mut counts, &mut refused, printed?);
    }
    progress.finish();
    let summary: Vec<String> = counts.iter().map(|(o, n)| format!("{n} {o}")).collect();
    eprintln!(
        "{total} room(s): {}{}",
        if summary.is_empty() {
            "none".to_owned()
        } else {
            summary.join(", ")
        },
        if dry_run {
            "; dry run: nothing was changed"
        } else {
            ""
        }
    );
    Ok(refused)
}

fn report(
    progress: &mut Progress,
    counts: &mut std::collections::BTreeMap<String, usize>,
    refused: &mut usize,
    printed: Value,
) {
    let outcome = printed["outcome"].as_str().unwrap_or("refused").to_owned();
    if outcome == "refused" {
        *refused += 1;
    }
    *counts.entry(outcome).or_default() += 1;
    progress.print(&printed.to_string());
    progress.step();
}

/// The declarations that ended (all of them with `wait`).
async fn drain(
    running: &mut JoinSet<anyhow::Result<Value>>,
    wait: bool,
) -> Vec<anyhow::Result<Value>> {
    let mut finished = Vec::new();
    loop {
        let next = if wait {
            running.join_next().await
        } else {
            running.try_join_next()
        };
        match next {
            Some(Ok(printed)) => finished.push(printed),
            Some(Err(error)) => finished.push(Err(error.into())),
            None => return finished,
        }
    }
}

/// PUTs the declaration and waits for its job.
async fn declare(
    client: &reqwest::Client,
    url: &str,
    token: Option<String>,
    line: &Line,
) -> anyhow::Result<Value> {
    let Some(token) = token else {
        return Ok(outcome(
            line,
            "refused",
            json!({"reason": format!("tenant {} is not configured: add it to tenants, or leave its rooms out", line.tenant)}),
        ));
    };
    let path = format!(
        "{url}/v1/tenants/{}/rooms/{}/{}",
        line.tenant, line.kind, line.slug
    );
    let unreachable = || {
        format!(
            "the daemon's platform API at {url} does not answer: `rooms adopt` declares through it, so start `serve` first (or give --url)"
        )
    };
    let answer = client
        .put(&path)
        .bearer_auth(&token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(line.body.to_string())
        .send()
        .await
        .with_context(unreachable)?;
    let status = answer.status();
    let answer = json_of(answer).await.with_context(unreachable)?;
    if status != StatusCode::ACCEPTED {
        let reason = answer["error"].as_str().unwrap_or("refused").to_owned();
        return Ok(outcome(
            line,
            "refused",
            json!({"status": status.as_u16(), "reason": reason}),
        ));
    }
    let mut job = answer["job"].clone();
    if job["status"] == "succeeded" {
        return Ok(outcome(
            line,
            "unchanged",
            json!({"room_id": job["result"]["room_id"], "job": job["id"]}),
        ));
    }
    let id = job["id"]
        .as_i64()
        .context("the daemon answered a job without an id")?;
    while !matches!(
        job["status"].as_str(),
        Some("succeeded" | "failed" | "dead" | "cancelled")
    ) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let answer = client
            .get(format!("{url}/v1/jobs/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .with_context(unreachable)?;
        job = json_of(answer).await.with_context(unreachable)?;
    }
    if job["status"] != "succeeded" {
        let reason = job["last_error"]
            .as_str()
            .unwrap_or("the job ended without success");
        return Ok(outcome(
            line,
            "refused",
            json!({"reason": reason, "job": id}),
        ));
    }
    // A room declared and made before, whose declaration changed: "existing".
    let made = (job["result"]["made"].as_str())
        .filter(|made| matches!(*made, "created" | "adopted"))
        .unwrap_or("updated");
    Ok(outcome(
        line,
        made,
        json!({"room_id": job["result"]["room_id"], "job": id}),
    ))
}

async fn json_of(response: reqwest::Response) -> anyhow::Result<Value> {
    Ok(serde_json::from_slice(&response.bytes().await?)?)
}

/// What the declaration would do, read from the database and Synapse; changes nothing.
async fn dry(app: &App, line: &Line) -> Value {
    match dry_outcome(app, line).await {
        Ok((made, extra)) => {
            let mut printed = outcome(line, made, extra);
            printed["dry_run"] = true.into();
            printed
        }
        Err(reason) => {
            let mut printed = outcome(line, "refused", json!({"reason": reason}));
            printed["dry_run"] = true.into();
            printed
        }
    }
}

async fn dry_outcome(app: &App, line: &Line) -> Result<(&'static str, Value), String> {
    let config = app.config();
    let tenant = config.tenant(&line.tenant).ok_or_else(|| {
        format!(
            "tenant {} is not configured: add it to tenants, or leave its rooms out",
            line.tenant
        )
    })?;
    let kind = RoomKind::parse(&line.kind).map_err(|e| e.to_string())?;
    let server = &config.home_of(tenant).homeserver.server_name;
    let alias = rooms::alias(kind, &line.slug, &tenant.id, server).map_err(|e| e.to_string())?;
    let (tenant_id, kind_name, slug) = (line.tenant.clone(), line.kind.clone(), line.slug.clone());
    let declared = app
        .store
        .run(move |c| room_store::find_live(c, &tenant_id, &kind_name, &slug))
        .await
        .map_err(|e| e.to_string())?;
    if let Some(room) =
        declared.filter(|room| room.room_id.is_some() && room.room_version.is_some())
    {
        return Ok(("unchanged", json!({"room_id": room.room_id})));
    }
    let bot = config.bot_user_id(tenant);
    let sender = config.sender_beside(&bot);
    let homeserver = app.client_for(&bot);
    let target = match line.body["adopt"]["room_id"].as_str() {
        Some(room_id) => {
            Some(RoomId::parse(room_id).map_err(|e| format!("adopt.room_id {room_id:?}: {e}"))?)
        }
        None => homeserver
            .resolve_alias(&sender, alias.clone())
            .await
            .map_err(|e| format!("cannot resolve {alias}: {e}"))?,
    };
    let Some(room_id) = target else {
        return Ok(("created", json!({"alias": alias})));
    };
    let finding = match diagnose::diagnose(app, &bot, Some(&room_id)).await {
        Ok(finding) => finding,
        // The tenant bot is not registered yet (the old appservice had one sender): the sender
        // alone decides whether the room can be taken over.
        Err(error) if error.retry_kind() == crate::matrix::RetryKind::UserNotRegistered => {
            match diagnose::sender_can_repair(app, &bot, &room_id).await {
                Ok(can) => Finding::BotNotJoined {
                    sender_can_repair: can,
                },
                Err(error) => return Err(format!("cannot read {room_id}: {error}")),
            }
        }
        Err(error) => return Err(format!("cannot read {room_id}: {error}")),
    };
    match finding {
        Finding::Healthy
        | Finding::BotNotJoined {
            sender_can_repair: true,
        }
        | Finding::BotLacksPower {
            sender_can_repair: true,
        } => Ok(("adopted", json!({"room_id": room_id, "finding": finding}))),
        Finding::UnknownToHomeserver => Err(format!(
            "the homeserver does not know {room_id}: check the room id"
        )),
        _ => Err(format!(
            "none of the appservice's users holds the power in {room_id}: a member allowed to change its m.room.power_levels must invite {bot} and raise it to 100"
        )),
    }
}
