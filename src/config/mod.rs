//! Typed configuration: `bot.toml` plus `LEVER_*` environment overrides, then validated: each
//! section by its own `validate` (in its file), what ties sections together in `cross`.
//!
//! Every section is a struct with `deny_unknown_fields`, so a typo is an error that names the
//! key. Defaults live in code; each field's doc comment is its reference documentation (the
//! README's config reference mirrors them). Relative paths resolve against the config file's
//! folder, so the bot behaves the same from any working directory.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;

use crate::access::{Access, AccessConfig};

mod alerts;
mod bot;
mod cross;
mod dashboard;
pub mod example;
mod flags;
mod http;
mod irc;
mod jenkins;
mod metrics;
mod plugins;
mod queue;
mod shared;
mod targets;
mod windows;

pub use alerts::{AlertRoute, AlertmanagerConfig, AlertsConfig, AutoHold};
pub use bot::BotConfig;
pub use dashboard::DashboardConfig;
pub use flags::{is_flag_name, FlagConfig, FlagDefault, FlagsConfig, RESERVED_WORDS};
pub use http::HttpConfig;
pub use irc::{IrcConfig, SaslMechanism};
pub use jenkins::{JenkinsConfig, JenkinsJob};
pub use metrics::{MarkersConfig, MetricsConfig, QueryConfig, SourceConfig, SourceKind, WatchRule};
pub use plugins::{PluginConfig, PluginsConfig};
pub use queue::QueueConfig;
pub use shared::Secret;
pub use targets::{
    Announce, BackendKind, DeployConfig, StepConfig, StoreConfig, TargetConfig, PHASES,
};
pub use windows::{weekday_name, Closed, FreezeConfig, Schedule};

pub(crate) use shared::{duration, is_word, resolve, yes, Invalid};

/// The example config shipped with lever, used when no `bot.toml` is found and none was named.
pub const EMBEDDED: &str = include_str!("../../bot.toml");

/// The whole configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How to reach the IRC network.
    pub irc: IrcConfig,
    /// How people talk to the bot.
    #[serde(default)]
    pub bot: BotConfig,
    /// Who may do what. Without this section everyone may do everything.
    #[serde(default)]
    pub access: Option<AccessConfig>,
    /// Where the deploy log, holds and runs are kept.
    #[serde(default)]
    pub store: StoreConfig,
    /// Settings shared by every target.
    #[serde(default)]
    pub deploy: DeployConfig,
    /// What lever stages and deploys, in order; the first is the default.
    #[serde(default)]
    pub targets: IndexMap<String, TargetConfig>,
    /// Webhooks in, the JSON API and health checks; no section, no HTTP server.
    #[serde(default)]
    pub http: Option<HttpConfig>,
    /// Who may act on the deploy page (a trusted proxy names them); no section, read-only.
    #[serde(default)]
    pub dashboard: Option<DashboardConfig>,
    /// How alerts from Alertmanager are announced.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Where `!alerts`, `!ack` and `!silence` reach Alertmanager.
    #[serde(default)]
    pub alertmanager: Option<AlertmanagerConfig>,
    /// Where `!build` reaches Jenkins, and the jobs it may start.
    #[serde(default)]
    pub jenkins: Option<JenkinsConfig>,
    /// Where `!metric` and `!graph` read numbers, and where deploys are marked.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Commands from executables in any language; no section, no plugins.
    #[serde(default)]
    pub plugins: Option<PluginsConfig>,
    /// Feature flags and contingency switches (`!flag`, `!kill`, OFREP).
    #[serde(default)]
    pub flags: FlagsConfig,
    /// The push queue: whose turn it is to stage and deploy.
    #[serde(default)]
    pub queue: QueueConfig,
    /// The folder relative paths resolve against: the config file's folder.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Where the config came from, for messages.
    #[serde(skip)]
    pub origin: String,
}

/// Why a config could not be used. The message names the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    #[error("{origin}: {key}: {message}")]
    Invalid {
        origin: String,
        key: String,
        message: String,
    },
}

/// Keys whose environment values are comma-separated lists.
const LIST_KEYS: &[&str] = &[
    "irc.channels",
    "irc.alt_nicks",
    "access.stage",
    "access.deploy",
    "access.hold",
    "access.admin",
    "access.metrics",
    "access.alerts",
    "access.flags",
];

impl Config {
    /// Reads the config at `path`, applies `LEVER_*` environment overrides, and validates it.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let base_dir = path
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_toml(&text, &path.display().to_string(), base_dir)
    }

    /// Parses config text (with environment overrides); relative paths resolve against `base_dir`.
    pub fn from_toml(text: &str, origin: &str, base_dir: PathBuf) -> Result<Self, ConfigError> {
        let mut env = config::Environment::with_prefix("LEVER")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .list_separator(",");
        for key in LIST_KEYS {
            env = env.with_list_parse_key(key);
        }
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .add_source(env);
        // The environment source turns number-like text into numbers, which would mangle a
        // secret such as "0123…" (leading zero lost). Every value that is not a list is set
        // again as the exact text; typed keys still parse it ("4" into a burst of 4).
        for (name, value) in std::env::vars() {
            let Some(rest) = name.strip_prefix("LEVER_") else {
                continue;
            };
            let key = rest.to_lowercase().replace("__", ".");
            if !LIST_KEYS.contains(&key.as_str()) {
                builder = builder
                    .set_override(key, value)
                    .map_err(|e| ConfigError::Syntax {
                        origin: origin.to_owned(),
                        message: e.to_string(),
                    })?;
            }
        }
        let merged = builder.build().map_err(|e| ConfigError::Syntax {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        let mut cfg: Config = serde_path_to_error::deserialize(merged)
            .map_err(|e| {
                let key = e.path().to_string();
                let message = e.inner().to_string();
                // The key is already named in front; drop the config crate's " for key `irc`".
                let message = strip_key_note(&message);
                // serde reports a missing field at its parent; name the field itself.
                let (key, message) = match missing_field(&message) {
                    // The config crate already names the full path ("irc.server").
                    Some(field) if key == "." || field.contains('.') => {
                        (field.to_owned(), "missing (required)".to_owned())
                    }
                    Some(field) => (format!("{key}.{field}"), "missing (required)".to_owned()),
                    None => (key, message),
                };
                ConfigError::Invalid {
                    origin: origin.to_owned(),
                    key,
                    message,
                }
            })
            .map_err(name_env_source)?;
        cfg.base_dir = base_dir;
        cfg.origin = origin.to_owned();
        cfg.validate().map_err(name_env_source)?;
        Ok(cfg)
    }

    /// Resolves a path from the config against the config file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        shared::resolve(&self.base_dir, path)
    }

    /// The default target: the first one configured.
    pub fn default_target(&self) -> Option<&str> {
        self.targets.keys().next().map(String::as_str)
    }

    /// The channels that hear about `target` (all of lever's channels unless it names some).
    pub fn target_channels(&self, target: &str) -> &[String] {
        match self.targets.get(target) {
            Some(t) if !t.channels.is_empty() => &t.channels,
            _ => &self.irc.channels,
        }
    }

    /// The port to connect to, defaulting by TLS.
    pub fn port(&self) -> u16 {
        self.irc.port()
    }

    /// The nicks to try, in order: the nickname, then the alternates.
    pub fn nicks(&self) -> Vec<String> {
        self.irc.nicks()
    }

    /// Checks what types alone cannot, naming where the config came from in a refusal.
    fn validate(&self) -> Result<(), ConfigError> {
        self.check_sections()
            .map_err(|Invalid { key, message }| ConfigError::Invalid {
                origin: self.origin.clone(),
                key,
                message,
            })
    }

    /// Each section checks its own keys (given the names it may refer to); the checks in
    /// `cross` tie one section to another's settings. The first refusal is the one reported,
    /// so this order is the order errors have always come in.
    fn check_sections(&self) -> Result<(), Invalid> {
        let channels = &self.irc.channels;
        let targets: Vec<&str> = self.targets.keys().map(String::as_str).collect();
        self.irc.validate(&self.base_dir)?;
        self.bot.validate()?;
        // `crate::access` owns the rules, so it checks them as it builds them.
        Access::from_config(self.access.as_ref())?;
        self.store.validate()?;
        for (name, target) in &self.targets {
            target.validate(name, channels)?;
            self.target_jobs_are_jenkins_jobs(name, target)?;
        }
        if let Some(http) = &self.http {
            http.validate()?;
        }
        if let Some(dashboard) = &self.dashboard {
            dashboard.validate()?;
            self.dashboard_is_served()?;
        }
        self.alerts.validate(channels, &targets)?;
        self.alerts_fit_the_throttle()?;
        if let Some(alertmanager) = &self.alertmanager {
            alertmanager.validate()?;
        }
        if let Some(jenkins) = &self.jenkins {
            jenkins.validate(channels)?;
        }
        self.metrics.validate(&targets)?;
        self.watch_rules_name_queries()?;
        if let Some(plugins) = &self.plugins {
            plugins.validate()?;
        }
        self.flags.validate()?;
        self.queue.validate()?;
        Ok(())
    }
}

/// A value that came from the environment is not in the file: say which variable set it.
fn name_env_source(error: ConfigError) -> ConfigError {
    match error {
        ConfigError::Invalid {
            origin,
            key,
            message,
        } => {
            let var = env_var_for(&key);
            let message = if std::env::var_os(&var).is_some() {
                format!("{message} (set in the environment by {var})")
            } else {
                message
            };
            ConfigError::Invalid {
                origin,
                key,
                message,
            }
        }
        other => other,
    }
}

/// The environment variable that overrides `key`: `irc.sasl_password` → `LEVER_IRC__SASL_PASSWORD`.
pub fn env_var_for(key: &str) -> String {
    let key = key.split('[').next().unwrap_or(key);
    format!("LEVER_{}", key.replace('.', "__").to_uppercase())
}

/// Removes the config crate's " for key `irc.burst`" (the key is already named in front),
/// keeping what follows it, such as " in the environment".
fn strip_key_note(message: &str) -> String {
    let Some(at) = message.find(" for key `") else {
        return message.to_owned();
    };
    let after = &message[at + " for key `".len()..];
    let rest = after.split_once('`').map_or("", |(_, rest)| rest);
    format!("{}{rest}", &message[..at])
}

/// Pulls `x` out of serde's "missing field `x`".
fn missing_field(message: &str) -> Option<&str> {
    let (rest, end) = if let Some(rest) = message.strip_prefix("missing field `") {
        (rest, '`')
    } else {
        (message.strip_prefix("missing configuration field \"")?, '"')
    };
    rest.split(end).next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, "test.toml", PathBuf::from("/etc/lever"))
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn the_shipped_bot_toml_parses() {
        let cfg = parse(EMBEDDED).expect("bot.toml is valid");
        assert_eq!(cfg.irc.nickname, "lever");
        assert_eq!(cfg.bot.prefix, "!");
    }

    #[test]
    fn defaults_fill_everything_but_the_server() {
        let cfg = parse("[irc]\nserver = \"irc.example.net\"\n").unwrap();
        assert!(cfg.irc.tls);
        assert_eq!(cfg.port(), 6697);
        assert_eq!(cfg.irc.burst, 4);
        assert_eq!(cfg.irc.line_interval, Duration::from_secs(1));
        assert_eq!(cfg.nicks(), ["lever", "lever_", "lever__"]);
        assert!(cfg.access.is_none());
        let plain = parse("[irc]\nserver = \"h\"\ntls = false\nline_interval = \"0s\"\n").unwrap();
        assert_eq!(plain.port(), 6667);
        assert_eq!(plain.irc.line_interval, Duration::ZERO);
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(error(""), "test.toml: irc: missing (required)");
        assert_eq!(
            error("[irc]\n"),
            "test.toml: irc.server: missing (required)"
        );
        let e = error("[irc]\nserver = \"h\"\nnickame = \"x\"\n");
        assert!(
            e.starts_with("test.toml: irc.nickame: unknown field `nickame`, expected one of"),
            "{e}"
        );
        assert!(!e.contains("for key"), "{e}");
        let e = error("[irc]\nserver = \"h\"\nburst = \"lots\"\n");
        assert!(e.starts_with("test.toml: irc.burst: "), "{e}");
        let e = error("[irc]\nserver = \"h\"\nline_interval = \"1 fortnight\"\n");
        assert!(
            e.starts_with("test.toml: irc.line_interval: '1 fortnight' is not a duration"),
            "{e}"
        );
        let e = error("[irc]\nserver = \"h\"\nchannels = [\"#ok\", \"nohash\"]\n");
        assert_eq!(
            e,
            "test.toml: irc.channels[1]: 'nohash' must start with '#' (or & + !)"
        );
        let e = error("[irc]\nserver = \"h\"\n[bot]\nprefix = \"\"\n");
        assert!(e.starts_with("test.toml: bot.prefix: "), "{e}");
        let e = error("[irc]\nserver = \"h\"\nsasl_account = \"lever\"\n");
        assert!(
            e.starts_with("test.toml: irc.sasl_password: missing"),
            "{e}"
        );
        let e = error("[irc]\nserver = \"h\"\nnickname = \"9lives\"\n");
        assert!(e.starts_with("test.toml: irc.nickname: '9lives'"), "{e}");
        let e = error("[irc]\nserver = \"h\"\n[acces]\ndeploy = []\n");
        assert!(e.contains("unknown field `acces`"), "{e}");
        let e = error("not toml at all [");
        assert!(e.starts_with("test.toml: "), "{e}");
    }

    #[test]
    fn access_rules_are_checked_at_load() {
        let e = error("[irc]\nserver = \"h\"\n[access]\ndeploy = [\"account:alice\", \"alice\"]\n");
        assert!(e.starts_with("test.toml: access.deploy[1]: "), "{e}");
        let e = error("[irc]\nserver = \"h\"\n[access]\ndeploy = [\"alice!*@*\"]\n");
        assert!(e.contains("account:alice"), "{e}");
        let e = error("[irc]\nserver = \"h\"\n[access]\ndeplyo = []\n");
        assert!(e.contains("unknown field `deplyo`"), "{e}");
    }

    #[test]
    fn secrets_never_print() {
        let cfg = parse("[irc]\nserver = \"h\"\npassword = \"hunter2\"\n").unwrap();
        assert_eq!(cfg.irc.password.as_ref().unwrap().expose(), "hunter2");
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }

    #[test]
    fn plugins_take_a_folder_and_settings_per_plugin() {
        let cfg = parse("[irc]\nserver = \"h\"\n").unwrap();
        assert!(cfg.plugins.is_none(), "no section, no plugins");
        let cfg = parse("[irc]\nserver = \"h\"\n[plugins]\n").unwrap();
        let plugins = cfg.plugins.unwrap();
        assert_eq!(plugins.dir, Path::new("plugins"));
        assert!(plugins.plugins.is_empty());
        let cfg = parse(
            "[irc]\nserver = \"h\"\n[plugins]\ndir = \"/opt/p\"\n\
             [plugins.oncall]\nrun = [\"./oncall\", \"--team\", \"web\"]\n\
             pass_env = [\"PAGER_TOKEN\"]\nenv = { SCHEDULE = \"s.txt\" }\n\
             [plugins.runbook]\nenabled = false\n",
        )
        .unwrap();
        let plugins = cfg.plugins.unwrap();
        assert_eq!(plugins.dir, Path::new("/opt/p"));
        let oncall = &plugins.plugins["oncall"];
        assert_eq!(
            oncall.run.as_deref().unwrap(),
            ["./oncall", "--team", "web"]
        );
        assert_eq!(oncall.pass_env, ["PAGER_TOKEN"]);
        assert_eq!(oncall.env["SCHEDULE"], "s.txt");
        assert!(oncall.enabled);
        assert!(!plugins.plugins["runbook"].enabled);
        let e = error("[irc]\nserver = \"h\"\n[plugins.x]\nrun = []\n");
        assert!(
            e.starts_with("test.toml: plugins.x.run: names no program"),
            "{e}"
        );
        let e = error("[irc]\nserver = \"h\"\n[plugins.x]\npass_env = [\"A B\"]\n");
        assert_eq!(
            e,
            "test.toml: plugins.x.pass_env: 'A B' is not an environment variable name"
        );
        let e = error("[irc]\nserver = \"h\"\n[plugins.x]\nrnu = [\"a\"]\n");
        assert!(e.contains("unknown field `rnu`"), "{e}");
        let e = error("[irc]\nserver = \"h\"\n[plugins]\ndri = \"p\"\n");
        assert_eq!(
            e,
            "test.toml: plugins: invalid type: string \"p\", \
             expected `dir`, or a [plugins.NAME] table (run, pass_env, env, enabled)"
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_config_folder() {
        let cfg = parse("[irc]\nserver = \"h\"\n").unwrap();
        assert_eq!(
            cfg.resolve(Path::new("lever.db")),
            Path::new("/etc/lever/lever.db")
        );
        assert_eq!(cfg.resolve(Path::new("/var/x.db")), Path::new("/var/x.db"));
    }
}
