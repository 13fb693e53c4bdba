//! Typed configuration: `bot.toml` plus `LEVER_*` environment overrides, validated in one place.
//!
//! Every section is a struct with `deny_unknown_fields`, so a typo is an error that names the
//! key. Defaults live in code; each field's doc comment is its reference documentation (the
//! README's config reference mirrors them). Relative paths resolve against the config file's
//! folder, so the bot behaves the same from any working directory.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use crate::access::{Access, AccessConfig};

mod alerts;
pub mod example;
mod http;
mod jenkins;
mod metrics;
mod plugins;
mod targets;

pub use alerts::{AlertRoute, AlertmanagerConfig, AlertsConfig, AutoHold};
pub use http::HttpConfig;
pub use jenkins::{JenkinsConfig, JenkinsJob};
pub use metrics::{MarkersConfig, MetricsConfig, QueryConfig, SourceConfig, SourceKind, WatchRule};
pub use plugins::{PluginConfig, PluginsConfig};
pub use targets::{
    Announce, BackendKind, DeployConfig, StepConfig, StoreConfig, TargetConfig, PHASES,
};

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
    /// The folder relative paths resolve against: the config file's folder.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Where the config came from, for messages.
    #[serde(skip)]
    pub origin: String,
}

/// `[irc]`: the connection and the IRC identity.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IrcConfig {
    /// Server host name or address. Required.
    pub server: String,
    /// Server port. Default: 6697 with TLS, 6667 without.
    #[serde(default)]
    pub port: Option<u16>,
    /// Connect with TLS. Default: true.
    #[serde(default = "yes")]
    pub tls: bool,
    /// Verify the server's TLS certificate. Default: true. Only turn off on a test network.
    #[serde(default = "yes")]
    pub tls_verify: bool,
    /// A PEM file of CA certificates to trust instead of the built-in web roots (private CA).
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Server password (`PASS`). Better set with `LEVER_IRC__PASSWORD`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// The nick lever wants. Default: "lever".
    #[serde(default = "default_nickname")]
    pub nickname: String,
    /// Nicks to try when the nickname is taken. Default: nickname + "_", nickname + "__".
    #[serde(default)]
    pub alt_nicks: Vec<String>,
    /// The ident/user name. Default: "lever".
    #[serde(default = "default_nickname")]
    pub username: String,
    /// The real name shown in WHOIS. Default: "lever chat-ops bot".
    #[serde(default = "default_realname")]
    pub realname: String,
    /// Channels to join and serve. Default: none.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Keys for channels that need one: `{ "#secret" = "key" }`.
    #[serde(default)]
    pub channel_keys: BTreeMap<String, Secret>,
    /// Services account for SASL PLAIN. Needs `sasl_password`.
    #[serde(default)]
    pub sasl_account: Option<String>,
    /// SASL password. Better set with `LEVER_IRC__SASL_PASSWORD`.
    #[serde(default)]
    pub sasl_password: Option<Secret>,
    /// Password for `PRIVMSG NickServ :IDENTIFY`, used when SASL is not configured or fails.
    #[serde(default)]
    pub nickserv_password: Option<Secret>,
    /// Outgoing lines allowed at once before throttling. Default: 4.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Then one line per this interval; "0s" turns throttling off. Default: "1s".
    #[serde(default = "default_line_interval", with = "duration")]
    pub line_interval: Duration,
    /// Lines the outbox holds (e.g. while disconnected) before dropping the oldest. Default: 1000.
    #[serde(default = "default_queue_limit")]
    pub queue_limit: usize,
    /// After this long without traffic lever pings the server. Default: "60s".
    #[serde(default = "default_ping_interval", with = "duration")]
    pub ping_interval: Duration,
    /// With no answer this long after the ping, lever reconnects. Default: "30s".
    #[serde(default = "default_ping_timeout", with = "duration")]
    pub ping_timeout: Duration,
    /// How often lever tries to take back its nickname when on an alternate. Default: "60s".
    #[serde(default = "default_regain_interval", with = "duration")]
    pub regain_interval: Duration,
    /// The QUIT message on shutdown. Default: "lever shutting down".
    #[serde(default = "default_quit_message")]
    pub quit_message: String,
}

/// `[bot]`: how commands are recognised.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotConfig {
    /// What starts a command in a channel. Default: "!".
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

impl Default for BotConfig {
    fn default() -> Self {
        Self {
            prefix: default_prefix(),
        }
    }
}

pub(crate) fn yes() -> bool {
    true
}
fn default_nickname() -> String {
    "lever".into()
}
fn default_realname() -> String {
    "lever chat-ops bot".into()
}
fn default_burst() -> u32 {
    4
}
fn default_line_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_queue_limit() -> usize {
    1000
}
fn default_ping_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_ping_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_regain_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_quit_message() -> String {
    "lever shutting down".into()
}
fn default_prefix() -> String {
    "!".into()
}

/// A password or token: deserializes like a string, never prints.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Durations written as "1s", "500ms", "5m", "2h 30m".
pub(crate) mod duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "'{text}' is not a duration ({e}); write e.g. \"1s\", \"500ms\", \"5m\""
            ))
        })
    }
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
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
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
        self.irc
            .port
            .unwrap_or(if self.irc.tls { 6697 } else { 6667 })
    }

    /// The nicks to try, in order: the nickname, then the alternates.
    pub fn nicks(&self) -> Vec<String> {
        let nick = &self.irc.nickname;
        let mut nicks = vec![nick.clone()];
        if self.irc.alt_nicks.is_empty() {
            nicks.push(format!("{nick}_"));
            nicks.push(format!("{nick}__"));
        } else {
            nicks.extend(self.irc.alt_nicks.iter().cloned());
        }
        nicks
    }

    fn invalid(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// Checks what types alone cannot: names, ranges, pairs of keys, files that must exist.
    fn validate(&self) -> Result<(), ConfigError> {
        let irc = &self.irc;
        if irc.server.trim().is_empty() || irc.server.contains(char::is_whitespace) {
            return Err(self.invalid("irc.server", "must be a host name or address"));
        }
        if irc.port == Some(0) {
            return Err(self.invalid("irc.port", "must be between 1 and 65535"));
        }
        for (i, nick) in std::iter::once(&irc.nickname)
            .chain(&irc.alt_nicks)
            .enumerate()
        {
            if let Err(why) = check_nick(nick) {
                let key = if i == 0 {
                    "irc.nickname".to_owned()
                } else {
                    format!("irc.alt_nicks[{}]", i - 1)
                };
                return Err(self.invalid(key, format!("'{nick}' {why}")));
            }
        }
        if !is_word(&irc.username) {
            return Err(self.invalid("irc.username", "must be one word without spaces"));
        }
        if irc.realname.chars().any(|c| c.is_ascii_control()) {
            return Err(self.invalid("irc.realname", "must not contain control characters"));
        }
        for (i, channel) in irc.channels.iter().enumerate() {
            if let Err(why) = check_channel(channel) {
                return Err(
                    self.invalid(format!("irc.channels[{i}]"), format!("'{channel}' {why}"))
                );
            }
        }
        for (channel, key) in &irc.channel_keys {
            if !irc.channels.contains(channel) {
                return Err(self.invalid(
                    format!("irc.channel_keys.{channel}"),
                    "is not one of irc.channels",
                ));
            }
            if !is_word(key.expose()) {
                return Err(self.invalid(
                    format!("irc.channel_keys.{channel}"),
                    "must be one word without spaces",
                ));
            }
        }
        match (&irc.sasl_account, &irc.sasl_password) {
            (Some(_), None) => {
                return Err(self.invalid(
                    "irc.sasl_password",
                    "missing: sasl_account is set (set LEVER_IRC__SASL_PASSWORD)",
                ))
            }
            (None, Some(_)) => {
                return Err(self.invalid("irc.sasl_account", "missing: sasl_password is set"))
            }
            (Some(account), Some(_)) if !is_word(account) => {
                return Err(self.invalid("irc.sasl_account", "must be one word without spaces"))
            }
            _ => {}
        }
        if irc.burst == 0 {
            return Err(self.invalid("irc.burst", "must be at least 1"));
        }
        if irc.queue_limit < 10 {
            return Err(self.invalid("irc.queue_limit", "must be at least 10"));
        }
        if irc.ping_interval < Duration::from_secs(1) || irc.ping_timeout < Duration::from_secs(1) {
            return Err(self.invalid(
                "irc.ping_interval",
                "ping_interval and ping_timeout must be at least 1s",
            ));
        }
        if irc.quit_message.chars().any(|c| c.is_ascii_control()) {
            return Err(self.invalid("irc.quit_message", "must not contain control characters"));
        }
        if let Some(ca) = &irc.tls_ca_file {
            let path = self.resolve(ca);
            if !path.is_file() {
                return Err(self.invalid(
                    "irc.tls_ca_file",
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
        let prefix = &self.bot.prefix;
        if prefix.is_empty() || prefix.chars().count() > 3 || !is_word(prefix) {
            return Err(self.invalid("bot.prefix", "must be 1 to 3 characters without spaces"));
        }
        Access::from_config(self.access.as_ref()).map_err(|(key, why)| self.invalid(key, why))?;
        for (name, target) in &self.targets {
            targets::check_target(name, target, &irc.channels)
                .map_err(|(key, why)| self.invalid(key, why))?;
            for (phase, job) in &target.jobs {
                let known = self
                    .jenkins
                    .as_ref()
                    .is_some_and(|j| j.jobs.contains_key(job));
                if !known {
                    return Err(self.invalid(
                        format!("targets.{name}.jobs.{phase}"),
                        format!("'{job}' is not a [jenkins.jobs] entry"),
                    ));
                }
            }
        }
        if let Some(http) = &self.http {
            http.check().map_err(|(key, why)| self.invalid(key, why))?;
        }
        let targets: Vec<&str> = self.targets.keys().map(String::as_str).collect();
        alerts::check(&self.alerts, &irc.channels, &targets)
            .map_err(|(key, why)| self.invalid(key, why))?;
        if !irc.line_interval.is_zero() {
            // More alert lines than the throttle can say would only pile up in the outbox.
            let sayable = (60.0 / irc.line_interval.as_secs_f64()) as usize + irc.burst as usize;
            if self.alerts.lines_per_minute > sayable {
                return Err(self.invalid(
                    "alerts.lines_per_minute",
                    format!(
                        "is more than irc.line_interval lets lever say in a minute ({sayable})"
                    ),
                ));
            }
        }
        if let Some(am) = &self.alertmanager {
            am.check().map_err(|(key, why)| self.invalid(key, why))?;
        }
        if let Some(jenkins) = &self.jenkins {
            jenkins
                .check(&irc.channels)
                .map_err(|(key, why)| self.invalid(key, why))?;
        }
        self.metrics
            .check(&targets)
            .map_err(|(key, why)| self.invalid(key, why))?;
        for (name, target) in &self.targets {
            self.metrics
                .check_watch(name, &target.watch)
                .map_err(|(key, why)| self.invalid(key, why))?;
        }
        if let Some(plugins) = &self.plugins {
            plugins
                .check()
                .map_err(|(key, why)| self.invalid(key, why))?;
        }
        Ok(())
    }
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A nick a server will accept: no spaces or protocol characters, not starting with a digit,
/// `-` or a channel sigil.
fn check_nick(nick: &str) -> Result<(), &'static str> {
    let first = nick.chars().next().ok_or("is empty")?;
    if nick.len() > 30 {
        return Err("is longer than 30 characters");
    }
    if first.is_ascii_digit() || matches!(first, '-' | '#' | '&' | '+' | '!' | ':' | '$') {
        return Err("cannot start with a digit, '-', ':' or a channel sigil");
    }
    if nick
        .chars()
        .any(|c| !c.is_ascii_graphic() || matches!(c, ',' | '*' | '?' | '!' | '@' | '.' | ':'))
    {
        return Err("may only hold letters, digits and []\\`_^{|}-");
    }
    Ok(())
}

fn check_channel(channel: &str) -> Result<(), &'static str> {
    if !channel.starts_with(['#', '&', '+', '!']) {
        return Err("must start with '#' (or & + !)");
    }
    if channel.len() < 2 || channel.len() > 50 {
        return Err("must be 2 to 50 characters");
    }
    if channel
        .chars()
        .any(|c| c == ' ' || c == ',' || c == ':' || c.is_control())
    {
        return Err("cannot hold spaces, commas, ':' or control characters");
    }
    Ok(())
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
