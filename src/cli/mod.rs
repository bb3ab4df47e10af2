//! The command line: one binary, a subcommand per operator task. `anyhow` lives here only.

mod check;
mod inbox;
mod jobs;
mod rooms;
mod status;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

use crate::app::App;
use crate::clock::SystemClock;
use crate::config::sample::{SampleTokens, render};
use crate::config::{Config, LogFormat};
use crate::observability::logging;
use crate::registration::Registration;

#[derive(Parser)]
#[command(
    name = "openmeet-appservice",
    version,
    about = "The Matrix application service behind OpenMeet's chat rooms.",
    long_about = "The Matrix application service behind OpenMeet's chat rooms.\n\n\
        Synapse loads it as an appservice (see `registration`); OpenMeet core declares rooms through \
        its platform API; per-tenant bots act through the appservice token.\n\n\
        First run: `openmeet-appservice generate-config > config.yaml`, edit it, \
        `openmeet-appservice registration -c config.yaml > registration.yaml` for Synapse, \
        then `openmeet-appservice check -c config.yaml` and `serve`."
)]
struct Cli {
    /// Log format, overriding logging.format from the config.
    #[arg(long, global = true, value_enum, env = "OPENMEET_AS_LOG_FORMAT")]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Human,
    Json,
}

#[derive(clap::Args)]
struct ConfigArg {
    /// Path of the YAML config (see config.sample.yaml).
    #[arg(short, long, env = "OPENMEET_AS_CONFIG", value_name = "FILE")]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: migrations (if database.migrate_on_start), listeners, inbox processor, preflight.
    Serve(ConfigArg),
    /// Print a complete sample config with fresh random tokens (64 hex characters each).
    GenerateConfig {
        /// Leave the tokens empty (this is how config.sample.yaml is made).
        #[arg(long)]
        blank_tokens: bool,
    },
    /// Print the registration YAML for Synapse's app_service_config_files.
    Registration(ConfigArg),
    /// Apply pending database migrations, then exit.
    Migrate(ConfigArg),
    /// Preflight: config, database, homeserver, as_token, sender, and an appservice ping round trip.
    #[command(after_help = check::EXIT_CODES_HELP)]
    Check(ConfigArg),
    /// Operator tools over the job table.
    Jobs {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: jobs::JobsCommand,
    },
    /// Operator tools over declared rooms.
    Rooms {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: rooms::RoomsCommand,
    },
    /// Per tenant: the bot, whether it is registered, the as_token's state, the job queue, and each
    /// dead job with its last error. Asks the database and the homeserver itself (works while the
    /// daemon is down); `--json` prints what `GET /v1/status` answers.
    Status {
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON (the same as `GET /v1/status`) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Inspect the inbox of events Synapse delivered.
    Inbox {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: inbox::InboxCommand,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = cli.log_format.map(|format| match format {
        LogFormatArg::Human => LogFormat::Human,
        LogFormatArg::Json => LogFormat::Json,
    });
    match cli.command {
        Command::GenerateConfig { blank_tokens } => {
            let tokens = (!blank_tokens).then(SampleTokens::random);
            print!("{}", render(tokens.as_ref()));
            ExitCode::SUCCESS
        }
        Command::Check(args) => check::run(&args.config, log_format),
        Command::Registration(args) => finish(load(&args.config, log_format).map(|config| {
            print!("{}", Registration::from_config(&config).to_yaml());
        })),
        Command::Migrate(args) => finish(load(&args.config, log_format).and_then(|config| {
            let app = App::new(config, Arc::new(SystemClock))?;
            let applied = app.store.migrate()?;
            if applied.is_empty() {
                eprintln!("the database is up to date");
            }
            for name in applied {
                eprintln!("applied {name}");
            }
            Ok(())
        })),
        Command::Serve(args) => finish(load(&args.config, log_format).and_then(|config| {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(crate::server::serve(
                App::new(config, Arc::new(SystemClock))?,
                args.config.clone(),
            ))
        })),
        Command::Jobs { config, command } => {
            finish(load(&config.config, log_format).and_then(|config| jobs::run(config, command)))
        }
        Command::Rooms { config, command } => {
            finish(load(&config.config, log_format).and_then(|config| rooms::run(config, command)))
        }
        Command::Status { config, json } => {
            finish(load(&config.config, log_format).and_then(|config| status::run(config, json)))
        }
        Command::Inbox { config, command } => {
            finish(load(&config.config, log_format).and_then(|config| inbox::run(config, command)))
        }
    }
}

/// Loads the config and starts logging as it says (the flag wins over the file).
fn load(path: &Path, log_format: Option<LogFormat>) -> anyhow::Result<Config> {
    let config = Config::load(path);
    let (level, format) = match &config {
        Ok(config) => (
            config.logging.level.as_str(),
            log_format.unwrap_or(config.logging.format),
        ),
        Err(_) => ("info", log_format.unwrap_or(LogFormat::Human)),
    };
    logging::init(level, format);
    Ok(config?)
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
