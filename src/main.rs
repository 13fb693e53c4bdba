//! The `lever` command line: `run` (default), `console`, `check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run);
    init_logging(match command {
        Command::Console => "warn",
        _ => "info",
    });
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
    let result = runtime.block_on(async {
        match command {
            Command::Console => match lever::bot::Bot::open(config) {
                Ok(bot) => lever::app::console::run(bot)
                    .await
                    .map_err(|e| format!("console: {e}")),
                Err(e) => Err(e.to_string()),
            },
            _ => lever::app::serve::run(config)
                .await
                .map_err(|e| e.to_string()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lever: {e}");
            ExitCode::FAILURE
        }
    }
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
