//! The command line: one binary, a subcommand per operator task. `anyhow` lives here only.

mod adopt;
mod check;
mod inbox;
mod jobs;
mod migrate_db;
mod moderation;
mod progress;
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
    /// Path of the YAML config (see config.sample.yaml); accepted before or after the subcommand.
    #[arg(
        short,
        long,
        global = true,
        env = "OPENMEET_AS_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,
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

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: migrations (if database.migrate_on_start), listeners, inbox processor, preflight.
    Serve,
    /// Print a complete sample config with fresh random tokens (64 hex characters each).
    GenerateConfig {
        /// Leave the tokens empty (this is how config.sample.yaml is made).
        #[arg(long)]
        blank_tokens: bool,
    },
    /// Print one homeserver's registration YAML for its Synapse's app_service_config_files.
    #[command(
        long_about = "Print one homeserver's registration YAML for its Synapse's app_service_config_files.\n\n\
            Each homeserver's Synapse loads its own registration, with namespaces on that homeserver's \
            server_name. Without --homeserver: the top-level (default) homeserver's."
    )]
    Registration {
        /// The homeservers[].id to print the registration of; `default` or absent: the top-level one.
        #[arg(long, value_name = "ID")]
        homeserver: Option<String>,
    },
    /// Print the platform API's OpenAPI 3.1 document (what `GET /v1/openapi.json` serves; `make
    /// openapi` writes it to docs/platform-api.openapi.json).
    Openapi,
    /// Copy the daemon's database to another backend (SQLite to PostgreSQL, or back), every daemon
    /// on it stopped.
    #[command(
        long_about = "Copy the daemon's database to another backend (SQLite to PostgreSQL when one machine is outgrown, or back), with every daemon on it stopped.\n\n\
            The target must be empty (it gets this binary's migrations); the source must be at this binary's migrations. \
            Every table is copied in one transaction on the target, ids and id sequences kept (the events feed continues, a retried Synapse transaction is still a duplicate, due jobs still fire), \
            then counted and checksummed on both sides; nothing is committed unless every table matches. Needs no config. \
            The URLs are database.url's forms (sqlite://PATH, postgres://…); give them in the environment to keep passwords off the command line.\n\n\
            Example: openmeet-appservice migrate-db --from sqlite://./data/openmeet-appservice.db --to postgres://openmeet@db/openmeet_appservice"
    )]
    MigrateDb {
        /// The database to copy.
        #[arg(
            long,
            env = "OPENMEET_AS_MIGRATE_FROM",
            value_name = "URL",
            hide_env_values = true
        )]
        from: String,
        /// The empty database to copy to.
        #[arg(
            long,
            env = "OPENMEET_AS_MIGRATE_TO",
            value_name = "URL",
            hide_env_values = true
        )]
        to: String,
    },
    /// Apply pending database migrations, then exit.
    Migrate {
        /// Instead, revert the N most recently applied migrations (before running an older
        /// binary on this database; see migrations/README.md).
        #[arg(long, value_name = "N")]
        revert: Option<usize>,
    },
    /// Preflight: config, database, and per homeserver: reachable, as_token, sender, and an appservice ping round trip.
    #[command(after_help = check::EXIT_CODES_HELP)]
    Check {
        /// Check only this homeservers[].id (`default`: the top-level one); absent: every homeserver, one block each.
        #[arg(long, value_name = "ID")]
        homeserver: Option<String>,
    },
    /// Operator tools over the job table.
    Jobs {
        #[command(subcommand)]
        command: jobs::JobsCommand,
    },
    /// Operator tools over declared rooms.
    Rooms {
        #[command(subcommand)]
        command: rooms::RoomsCommand,
    },
    /// Per tenant: the bot, whether it is registered, the as_token's state, the job queue, and each
    /// job that failed or died with its last error. Asks the database and the homeserver itself
    /// (works while the daemon is down); `--json` prints what `GET /v1/status` answers.
    Status {
        /// Print JSON (the same as `GET /v1/status`) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Inspect the inbox of events Synapse delivered.
    Inbox {
        #[command(subcommand)]
        command: inbox::InboxCommand,
    },
    /// The moderation audit log (bans, mutes, redactions): who acted, when, what and why.
    Moderation {
        #[command(subcommand)]
        command: moderation::ModerationCommand,
    },
}

/// Exit status for a command line that lacks something (clap's own usage errors exit 2 too).
pub(crate) const USAGE: u8 = 2;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = cli.log_format.map(|format| match format {
        LogFormatArg::Human => LogFormat::Human,
        LogFormatArg::Json => LogFormat::Json,
    });
    if let Command::GenerateConfig { blank_tokens } = cli.command {
        let tokens = (!blank_tokens).then(SampleTokens::random);
        print!("{}", render(tokens.as_ref()));
        return ExitCode::SUCCESS;
    }
    if let Command::Openapi = cli.command {
        print!("{}", crate::api::platform::openapi::document());
        return ExitCode::SUCCESS;
    }
    if let Command::MigrateDb { from, to } = &cli.command {
        return finish(migrate_db::run(from, to));
    }
    let Some(path) = cli.config else {
        eprintln!(
            "error: this command needs the config: give -c FILE (before or after the subcommand) or set OPENMEET_AS_CONFIG; `openmeet-appservice generate-config > config.yaml` writes one"
        );
        return ExitCode::from(USAGE);
    };
    match cli.command {
        Command::GenerateConfig { .. } | Command::Openapi | Command::MigrateDb { .. } => {
            unreachable!("answered above")
        }
        Command::Check { homeserver } => check::run(&path, homeserver.as_deref(), log_format),
        Command::Registration { homeserver } => match load(&path, log_format) {
            Err(error) => finish(Err(error)),
            Ok(config) => match pick_homeserver(&config, homeserver.as_deref()) {
                Ok(homeserver) => {
                    print!("{}", Registration::of(&homeserver).to_yaml());
                    ExitCode::SUCCESS
                }
                Err(message) => {
                    eprintln!("error: {message}");
                    ExitCode::from(USAGE)
                }
            },
        },
        Command::Migrate { revert } => finish(load(&path, log_format).and_then(|config| {
            let app = App::new(config, Arc::new(SystemClock))?;
            if let Some(count) = revert {
                for name in app.store.revert_migrations(count)? {
                    eprintln!("reverted {name}");
                }
                return Ok(());
            }
            let applied = app.store.migrate()?;
            if applied.is_empty() {
                eprintln!("the database is up to date");
            }
            for name in applied {
                eprintln!("applied {name}");
            }
            Ok(())
        })),
        Command::Serve => finish(load(&path, log_format).and_then(|config| {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(crate::server::serve(
                App::new(config, Arc::new(SystemClock))?,
                path.clone(),
            ))
        })),
        Command::Jobs { command } => finish(
            load_existing_database(&path, log_format).and_then(|config| jobs::run(config, command)),
        ),
        Command::Rooms { command } => finish(
            load_existing_database(&path, log_format)
                .and_then(|config| rooms::run(config, command)),
        ),
        Command::Status { json } => finish(
            load_existing_database(&path, log_format).and_then(|config| status::run(config, json)),
        ),
        Command::Inbox { command } => finish(
            load_existing_database(&path, log_format)
                .and_then(|config| inbox::run(config, command)),
        ),
        Command::Moderation { command } => finish(
            load_existing_database(&path, log_format)
                .and_then(|config| moderation::run(config, command)),
        ),
    }
}

/// The homeserver `--homeserver ID` names (absent: the default one), or a sentence listing the
/// known ids.
fn pick_homeserver<'c>(
    config: &'c Config,
    id: Option<&str>,
) -> Result<crate::config::HomeserverConfig<'c>, String> {
    let id = id.unwrap_or(crate::config::DEFAULT_ID);
    config.homeserver_by_id(id).ok_or_else(|| {
        format!(
            "--homeserver {id:?} is not in the config: the known homeservers are {} (`default` is the top-level one)",
            config.homeserver_ids().join(", ")
        )
    })
}

/// Like [`load`], for commands that read what the daemon stored: a SQLite file that is not there
/// is an error that says so, instead of an empty database created behind the operator's back.
fn load_existing_database(path: &Path, log_format: Option<LogFormat>) -> anyhow::Result<Config> {
    let config = load(path, log_format)?;
    if let crate::config::DatabaseUrl::Sqlite(file) = &config.database.url
        && !file.exists()
    {
        anyhow::bail!(
            "the database {} does not exist: check database.url in {} (a relative path is relative to the directory the command runs in), or create it with `openmeet-appservice migrate -c {}`",
            file.display(),
            path.display(),
            path.display()
        );
    }
    // An unreachable database is reported by the command itself, in its own words.
    if let Ok(mut conn) = crate::store::Store::new(&config.database).connection() {
        let pending = crate::store::migrations::pending(&mut conn)?;
        if !pending.is_empty() {
            anyhow::bail!(
                "the database ({}) lacks {} migration(s) this version needs ({}): apply them with `openmeet-appservice migrate -c {}` (serve applies them at start when database.migrate_on_start is true)",
                config.database.url.describe(),
                pending.len(),
                pending.join(", "),
                path.display()
            );
        }
    }
    Ok(config)
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
