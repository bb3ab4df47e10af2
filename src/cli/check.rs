//! `check`: the preflight as a command, with a distinct exit code per failure and a sentence
//! saying how to fix it. When nothing listens on `listen.appservice`, `check` answers Synapse's
//! ping itself for the duration, so it also works before the daemon is deployed.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::app::App;
use crate::clock::SystemClock;
use crate::config::{Config, LogFormat};
use crate::matrix::preflight::{self, Step};
use crate::observability::logging;
use crate::store::migrations;

pub const EXIT_CODES_HELP: &str = "Exit codes:
  0   every check passed
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

pub fn run(path: &Path, log_format: Option<LogFormat>) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(error) => {
            logging::init("warn", log_format.unwrap_or(LogFormat::Human));
            eprintln!("FAIL config: {error}");
            return ExitCode::from(10);
        }
    };
    logging::init("warn", log_format.unwrap_or(config.logging.format));
    println!("ok   config {} is valid", path.display());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("FAIL cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match App::new(config, Arc::new(SystemClock)) {
        Ok(app) => runtime.block_on(checks(app)),
        Err(error) => {
            eprintln!("FAIL {error}");
            ExitCode::from(exit_code(preflight::Step::Versions))
        }
    }
}

async fn checks(app: Arc<App>) -> ExitCode {
    let config = app.config().clone();
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || {
        store
            .connection()
            .and_then(|mut c| migrations::pending(&mut c))
    })
    .await
    {
        Ok(Ok(pending)) if pending.is_empty() => println!(
            "ok   database {} is reachable and migrated",
            config.database.url.describe()
        ),
        Ok(Ok(pending)) => println!(
            "ok   database {} is reachable; {} migration(s) pending (`serve` applies them, or run `migrate`)",
            config.database.url.describe(),
            pending.len()
        ),
        Ok(Err(error)) => {
            eprintln!(
                "FAIL database {}: {error}: check database.url and that the database server is running.",
                config.database.url.describe()
            );
            return ExitCode::from(11);
        }
        Err(error) => {
            eprintln!("FAIL database check did not finish: {error}");
            return ExitCode::from(11);
        }
    }
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
    let result = run_steps(&app).await;
    if let Some(responder) = responder {
        responder.abort();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("FAIL {}", failure.message);
            ExitCode::from(exit_code(failure.step))
        }
    }
}

async fn run_steps(app: &App) -> Result<(), preflight::Failure> {
    let (client, config) = (&app.homeserver(), &app.config());
    let versions = preflight::versions(client, config).await?;
    println!(
        "ok   homeserver {} answers (spec versions {})",
        config.homeserver.url,
        versions.join(", ")
    );
    let sender = preflight::sender(client, config).await?;
    println!("ok   the as_token is accepted as {sender}, and the sender is registered");
    let ping = preflight::ping(client, config).await?;
    println!(
        "ok   appservice ping: Synapse reached {} in {} ms",
        config.appservice.url,
        ping.as_millis()
    );
    Ok(())
}
