//! `check`: the preflight as a command, with a distinct exit code per failure and a sentence
//! saying how to fix it; one block per homeserver (or the one `--homeserver` names). When nothing
//! listens on `listen.appservice`, `check` answers Synapse's ping itself for the duration, so it
//! also works before the daemon is deployed.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::app::App;
use crate::clock::SystemClock;
use crate::config::{Config, LogFormat};
use crate::matrix::preflight::{self, Step};
use crate::observability::logging;
use crate::store::migrations;

pub const EXIT_CODES_HELP: &str = "Exit codes (with several homeservers: the first failing one's):
  0   every check passed
  2   --homeserver names no configured homeserver
  10  the config is invalid
  11  the database is unreachable
  12  the homeserver does not answer
  13  the homeserver rejects the as_token (the registration Synapse loaded differs)
  14  the as_token belongs to another user, or the sender cannot be registered
  15  Synapse cannot reach the daemon at appservice.url
  16  Synapse reached the daemon but the hs_token differs
  17  the appservice ping failed for another reason";

fn exit_code(step: Step) -> u8 {
    match step {
        Step::Versions => 12,
        Step::Token => 13,
        Step::Sender => 14,
        Step::PingUnreachable => 15,
        Step::PingHsToken => 16,
        Step::Ping => 17,
    }
}

pub fn run(path: &Path, homeserver: Option<&str>, log_format: Option<LogFormat>) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(error) => {
            logging::init("warn", log_format.unwrap_or(LogFormat::Human));
            eprintln!("FAIL config: {error}");
            return ExitCode::from(10);
        }
    };
    logging::init("warn", log_format.unwrap_or(config.logging.format));
    let ids: Vec<String> = match homeserver {
        Some(id) if config.homeserver_by_id(id).is_none() => {
            eprintln!(
                "FAIL --homeserver {id:?} is not in the config: the known homeservers are {} (`default` is the top-level one)",
                config.homeserver_ids().join(", ")
            );
            return ExitCode::from(super::USAGE);
        }
        Some(id) => vec![id.to_owned()],
        None => config
            .homeserver_ids()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    };
    println!("ok   config {} is valid", path.display());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("FAIL cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(code) = runtime.block_on(database(&config)) {
        return code;
    }
    let several = !config.additional_homeservers.is_empty();
    let app = match App::new(config, Arc::new(SystemClock)) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("FAIL {error}");
            return ExitCode::from(exit_code(preflight::Step::Versions));
        }
    };
    let mut outcome = ExitCode::SUCCESS;
    for id in ids {
        if several || homeserver.is_some() {
            let config = app.config();
            let server = &config
                .homeserver_by_id(&id)
                .expect("the ids are the config's own");
            println!("homeserver {id} ({}):", server.homeserver.server_name);
        }
        let code = runtime.block_on(homeserver_checks(app.clone(), &id));
        if outcome == ExitCode::SUCCESS {
            outcome = code;
        }
    }
    outcome
}

async fn database(config: &Config) -> Result<(), ExitCode> {
    let store = crate::store::Store::new(&config.database);
    let described = config.database.url.describe();
    match tokio::task::spawn_blocking(move || {
        store
            .connection()
            .and_then(|mut c| migrations::pending(&mut c))
    })
    .await
    {
        Ok(Ok(pending)) if pending.is_empty() => {
            println!("ok   database {described} is reachable and migrated");
        }
        Ok(Ok(pending)) => println!(
            "ok   database {described} is reachable; {} migration(s) pending (`serve` applies them, or run `migrate`)",
            pending.len()
        ),
        Ok(Err(error)) => {
            eprintln!(
                "FAIL database {described}: {error}: check database.url and that the database server is running."
            );
            return Err(ExitCode::from(11));
        }
        Err(error) => {
            eprintln!("FAIL database check did not finish: {error}");
            return Err(ExitCode::from(11));
        }
    }
    Ok(())
}

/// The preflight against homeserver `id` of `app`'s config.
async fn homeserver_checks(app: Arc<App>, id: &str) -> ExitCode {
    let config = app.config();
    // Answer Synapse's ping ourselves when no daemon listens on the appservice address.
    let responder = match tokio::net::TcpListener::bind(config.listen.appservice).await {
        Ok(listener) => {
            let router = crate::api::appservice::router(app.clone());
            Some(tokio::spawn(
                async move { axum::serve(listener, router).await },
            ))
        }
        Err(_) => None,
    };
    let result = run_steps(&app, id).await;
    if let Some(responder) = responder {
        responder.abort();
        let _ = responder.await;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("FAIL {}", failure.message);
            ExitCode::from(exit_code(failure.step))
        }
    }
}

async fn run_steps(app: &App, id: &str) -> Result<(), preflight::Failure> {
    let config = app.config();
    let homeserver = config
        .homeserver_by_id(id)
        .expect("the ids are the config's own");
    let link = app
        .link(id)
        .expect("every homeserver of the config has its link");
    let client = &link.client;
    let versions = preflight::versions(client, &homeserver).await?;
    println!(
        "ok   homeserver {} answers (spec versions {})",
        homeserver.homeserver.url,
        versions.join(", ")
    );
    let sender = preflight::sender(client, &homeserver).await?;
    println!("ok   the as_token is accepted as {sender}, and the sender is registered");
    let ping = preflight::ping(client, &homeserver).await?;
    println!(
        "ok   appservice ping: Synapse reached {} in {} ms",
        homeserver.appservice.url,
        ping.as_millis()
    );
    Ok(())
}
