//! The `lever` command line: `run` (default), `console`, `check`, `store copy`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use lever::app::serve::Stopped;
use lever::config::{example, Config, ConfigError, EMBEDDED};

/// lever: a chat-ops IRC bot for one-step stage and deploy, a shared deploy log, and holds.
#[derive(Parser)]
#[command(name = "lever", version)]
struct Cli {
    /// The config file. Default: bot.toml here; without one, the built-in example config.
    #[arg(long, short, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Connect to IRC and serve (the default).
    Run,
    /// The same bot with this terminal as the channel; you hold every role.
    Console,
    /// Validate the config: exit 0 if usable, else 1 naming the bad key.
    Check,
    /// Work on a store directly.
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy a whole store (deploy log, holds, runs) into an empty one: a SQLite file into
    /// PostgreSQL, or back. Stop lever first. A PostgreSQL URL without a password takes it
    /// from LEVER_STORE__PASSWORD.
    Copy {
        /// The store to copy: a SQLite file, or a postgres:// URL.
        #[arg(long, value_name = "FILE|URL")]
        from: String,
        /// The empty store to copy into: a SQLite file (created), or a postgres:// URL.
        #[arg(long, value_name = "FILE|URL")]
        to: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run);
    init_logging(match command {
        Command::Console | Command::Store(_) => "warn",
        _ => "info",
    });
    if let Command::Store(StoreCommand::Copy { from, to }) = &command {
        return match copy_store(from, to) {
            Ok(said) => {
                println!("{said}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("lever: store copy: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut config = match load(cli.config.as_deref(), !matches!(command, Command::Check)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("lever: {e}");
            return ExitCode::FAILURE;
        }
    };
    if matches!(command, Command::Console) && config.irc.channels.is_empty() {
        // The console is a channel; announcements must have somewhere to go.
        config
            .irc
            .channels
            .push(lever::app::console::DEFAULT_CHANNEL.to_owned());
    }
    let config = Arc::new(config);
    if let Command::Check = command {
        println!(
            "{}: ok ({} {}, {} channel(s), access {})",
            config.origin,
            config.irc.server,
            config.port(),
            config.irc.channels.len(),
            if config.access.is_some() {
                "restricted"
            } else {
                "open to everyone"
            }
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lever: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The work runs as a task on the runtime's workers, not in `block_on` on this thread: this
    // thread polls no sockets, so everything it awaited would be woken through another thread
    // (a futex hop on every line lever reads).
    let work = runtime.spawn(async move {
        let result = match command {
            Command::Console => match lever::app::console::open(config) {
                Ok(bot) => lever::app::console::run(bot)
                    .await
                    .map_err(|e| format!("console: {e}")),
                Err(e) => Err(e),
            },
            _ => match lever::app::serve::run(config).await {
                Ok(Stopped::Asked) => Ok(()),
                Ok(Stopped::LostLease(why)) => {
                    eprintln!(
                        "lever: lost leadership ({why}); exiting 3 to come back as a standby"
                    );
                    return 3;
                }
                Err(e) => Err(e.to_string()),
            },
        };
        match result {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("lever: {e}");
                1
            }
        }
    });
    let code: u8 = runtime.block_on(work).unwrap_or_else(|e| {
        eprintln!("lever: stopped by an internal error: {e}");
        1
    });
    // Everything worth ending cleanly has ended (IRC quit, HTTP drained, runs stopped): exit
    // now, rather than shut the runtime down under tasks caught mid-wait on the store.
    std::process::exit(code.into())
}

/// `lever store copy`: opens both stores and copies; what was copied, in words.
fn copy_store(from: &str, to: &str) -> Result<String, String> {
    let open = |place: &str| {
        let wait = lever::store::DEFAULT_LOCK_WAIT;
        if place.starts_with("postgres://") || place.starts_with("postgresql://") {
            let password = std::env::var("LEVER_STORE__PASSWORD").ok();
            lever::store::Store::open_postgres(place, password.as_deref(), wait)
        } else {
            lever::store::Store::open_with(Path::new(place), wait)
        }
        .map_err(|e| e.to_string())
    };
    let is_url = |place: &str| place.contains("://");
    if !is_url(from) && !Path::new(from).exists() {
        return Err(format!("there is no store at {from} to copy"));
    }
    let (source, target) = (open(from)?, open(to)?);
    let copied = lever::store::copy::copy(&source, &target).map_err(|e| e.to_string())?;
    Ok(format!(
        "copied {} log entries, {} hold(s), {} run(s), {} step(s) and {} flag(s) from {} to {}",
        copied.log,
        copied.holds,
        copied.runs,
        copied.steps,
        copied.flags,
        source.location(),
        target.location()
    ))
}

/// The named config; else `bot.toml` here; else the built-in example. To run the example, its
/// step scripts are written to a folder of lever's own (`install`), which also holds its store.
fn load(path: Option<&Path>, install: bool) -> Result<Config, ConfigError> {
    if let Some(path) = path {
        return Config::load(path);
    }
    let default = Path::new("bot.toml");
    if default.exists() {
        return Config::load(default);
    }
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    if !install {
        return Config::from_toml(EMBEDDED, "built-in bot.toml", here);
    }
    let folder = match example::install() {
        Ok(folder) => folder,
        Err(e) => {
            eprintln!(
                "lever: cannot write the built-in example's steps ({e}); its steps will not run"
            );
            here
        }
    };
    eprintln!(
        "lever: no bot.toml here; using the built-in example config (its steps and lever.db are in {})",
        folder.display()
    );
    Config::from_toml(EMBEDDED, "built-in bot.toml", folder)
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a terminal; a log file gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
