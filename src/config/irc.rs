//! `[irc]`: the connection to the IRC network and lever's identity on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{duration, is_word, resolve, yes, Invalid, Secret};

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
    /// Trust exactly the server certificate with this SHA-256 fingerprint, instead of a CA:
    /// "sha256:<64 hex digits>" (colons between bytes allowed, as `openssl x509 -fingerprint
    /// -sha256` prints it). For a private network's self-signed server.
    #[serde(default)]
    pub tls_fingerprint: Option<String>,
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
    /// Services account for a SASL login with a password (SCRAM or PLAIN). Needs
    /// `sasl_password`.
    #[serde(default)]
    pub sasl_account: Option<String>,
    /// SASL password. Better set with `LEVER_IRC__SASL_PASSWORD`.
    #[serde(default)]
    pub sasl_password: Option<Secret>,
    /// How lever logs in with SASL: "auto" (default: the strongest both sides have, EXTERNAL
    /// with a client certificate, then SCRAM-SHA-256, SCRAM-SHA-1, PLAIN), or one of those.
    #[serde(default)]
    pub sasl_mechanism: SaslMechanism,
    /// A PEM client certificate lever presents over TLS: its login with SASL EXTERNAL, and its
    /// CertFP for services. Needs `client_key` and `tls`.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// The PEM private key of `client_cert`.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Stay off the channels unless logged in to services (by SASL or NickServ). Default: false
    /// (lever joins unidentified, and says why in its log).
    #[serde(default)]
    pub require_login: bool,
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
    /// What lever asks NickServ, once logged in to services under an alternate nick, to free
    /// its nickname from whoever holds it (a ghost of an old connection, a lever that lost its
    /// lease): `{nick}` is the nickname. Default: "GHOST {nick}" (Atheme, Anope); "REGAIN
    /// {nick}" where services offer it; "" asks nothing (lever then takes the nick back when it
    /// is freed, and every `regain_interval`).
    #[serde(default = "default_regain_command")]
    pub regain_command: String,
    /// The QUIT message on shutdown. Default: "lever shutting down".
    #[serde(default = "default_quit_message")]
    pub quit_message: String,
}

/// `irc.sasl_mechanism`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "EXTERNAL")]
    External,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-1")]
    ScramSha1,
    #[serde(rename = "PLAIN")]
    Plain,
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
fn default_regain_command() -> String {
    "GHOST {nick}".into()
}
fn default_quit_message() -> String {
    "lever shutting down".into()
}

impl IrcConfig {
    /// The port to connect to, defaulting by TLS.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(if self.tls { 6697 } else { 6667 })
    }

    /// The pinned certificate's SHA-256, if `tls_fingerprint` is set (and valid: `validate`
    /// refuses one that is not).
    pub fn tls_pin(&self) -> Option<[u8; 32]> {
        parse_fingerprint(self.tls_fingerprint.as_deref()?).ok()
    }

    /// The nicks to try, in order: the nickname, then the alternates.
    pub fn nicks(&self) -> Vec<String> {
        let nick = &self.nickname;
        let mut nicks = vec![nick.clone()];
        if self.alt_nicks.is_empty() {
            nicks.push(format!("{nick}_"));
            nicks.push(format!("{nick}__"));
        } else {
            nicks.extend(self.alt_nicks.iter().cloned());
        }
        nicks
    }

    /// Checks names, ranges and pairs of keys; `tls_ca_file` resolves against `base_dir`.
    pub(super) fn validate(&self, base_dir: &Path) -> Result<(), Invalid> {
        if self.server.trim().is_empty() || self.server.contains(char::is_whitespace) {
            return Err(Invalid::new("irc.server", "must be a host name or address"));
        }
        if self.port == Some(0) {
            return Err(Invalid::new("irc.port", "must be between 1 and 65535"));
        }
        for (i, nick) in std::iter::once(&self.nickname)
            .chain(&self.alt_nicks)
            .enumerate()
        {
            if let Err(why) = check_nick(nick) {
                let key = if i == 0 {
                    "irc.nickname".to_owned()
                } else {
                    format!("irc.alt_nicks[{}]", i - 1)
                };
                return Err(Invalid::new(key, format!("'{nick}' {why}")));
            }
        }
        if !is_word(&self.username) {
            return Err(Invalid::new(
                "irc.username",
                "must be one word without spaces",
            ));
        }
        if self.realname.chars().any(|c| c.is_ascii_control()) {
            return Err(Invalid::new(
                "irc.realname",
                "must not contain control characters",
            ));
        }
        for (i, channel) in self.channels.iter().enumerate() {
            if let Err(why) = check_channel(channel) {
                return Err(Invalid::new(
                    format!("irc.channels[{i}]"),
                    format!("'{channel}' {why}"),
                ));
            }
        }
        for (channel, key) in &self.channel_keys {
            if !self.channels.contains(channel) {
                return Err(Invalid::new(
                    format!("irc.channel_keys.{channel}"),
                    "is not one of irc.channels",
                ));
            }
            if !is_word(key.expose()) {
                return Err(Invalid::new(
                    format!("irc.channel_keys.{channel}"),
                    "must be one word without spaces",
                ));
            }
        }
        match (&self.sasl_account, &self.sasl_password) {
            (Some(_), None) => {
                return Err(Invalid::new(
                    "irc.sasl_password",
                    "missing: sasl_account is set (set LEVER_IRC__SASL_PASSWORD)",
                ))
            }
            (None, Some(_)) => {
                return Err(Invalid::new(
                    "irc.sasl_account",
                    "missing: sasl_password is set",
                ))
            }
            (Some(account), Some(_)) if !is_word(account) => {
                return Err(Invalid::new(
                    "irc.sasl_account",
                    "must be one word without spaces",
                ))
            }
            _ => {}
        }
        self.check_login(base_dir)?;
        if let Some(pin) = &self.tls_fingerprint {
            parse_fingerprint(pin).map_err(|why| Invalid::new("irc.tls_fingerprint", why))?;
            if !self.tls {
                return Err(Invalid::new(
                    "irc.tls_fingerprint",
                    "pins a TLS certificate: set irc.tls = true",
                ));
            }
        }
        if self.burst == 0 {
            return Err(Invalid::new("irc.burst", "must be at least 1"));
        }
        if self.queue_limit < 10 {
            return Err(Invalid::new("irc.queue_limit", "must be at least 10"));
        }
        if self.ping_interval < Duration::from_secs(1) || self.ping_timeout < Duration::from_secs(1)
        {
            return Err(Invalid::new(
                "irc.ping_interval",
                "ping_interval and ping_timeout must be at least 1s",
            ));
        }
        if self.quit_message.chars().any(|c| c.is_ascii_control()) {
            return Err(Invalid::new(
                "irc.quit_message",
                "must not contain control characters",
            ));
        }
        if let Some(ca) = &self.tls_ca_file {
            let path = resolve(base_dir, ca);
            if !path.is_file() {
                return Err(Invalid::new(
                    "irc.tls_ca_file",
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
        Ok(())
    }
}

impl IrcConfig {
    /// The SASL setting against the credentials it needs, and the client certificate's files.
    fn check_login(&self, base_dir: &Path) -> Result<(), Invalid> {
        match (&self.client_cert, &self.client_key) {
            (Some(_), None) => {
                return Err(Invalid::new(
                    "irc.client_key",
                    "missing: client_cert is set (its PEM private key)",
                ))
            }
            (None, Some(_)) => {
                return Err(Invalid::new(
                    "irc.client_cert",
                    "missing: client_key is set",
                ))
            }
            (Some(_), Some(_)) if !self.tls => {
                return Err(Invalid::new(
                    "irc.client_cert",
                    "is presented over TLS: set irc.tls = true",
                ))
            }
            _ => {}
        }
        for (key, file) in [
            ("irc.client_cert", &self.client_cert),
            ("irc.client_key", &self.client_key),
        ] {
            if let Some(file) = file {
                let path = resolve(base_dir, file);
                if !path.is_file() {
                    return Err(Invalid::new(
                        key,
                        format!("{} is not a readable file", path.display()),
                    ));
                }
            }
        }
        let password = self.sasl_account.is_some();
        let why = match self.sasl_mechanism {
            SaslMechanism::External if self.client_cert.is_none() => {
                "EXTERNAL logs in with a client certificate: set irc.client_cert and irc.client_key"
            }
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha1 | SaslMechanism::Plain
                if !password =>
            {
                "needs irc.sasl_account and irc.sasl_password"
            }
            _ => return Ok(()),
        };
        Err(Invalid::new("irc.sasl_mechanism", why))
    }
}

/// "sha256:AB:CD:…" or "sha256:abcd…" → the 32 bytes.
fn parse_fingerprint(text: &str) -> Result<[u8; 32], String> {
    let hex_part = text
        .strip_prefix("sha256:")
        .or_else(|| text.strip_prefix("SHA256:"))
        .ok_or("must start with \"sha256:\", e.g. \"sha256:4f2a…\" (64 hex digits)")?;
    let digits: String = hex_part.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(&digits).map_err(|_| "has characters that are not hex digits")?;
    bytes
        .try_into()
        .map_err(|_| "must have 64 hex digits (a SHA-256 fingerprint)".to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn irc(text: &str) -> IrcConfig {
        toml::from_str(&format!("server = \"h\"\n{text}")).expect("parses")
    }

    fn refusal(text: &str) -> Invalid {
        irc(text).validate(Path::new("/etc/lever")).unwrap_err()
    }

    #[test]
    fn defaults_and_nicks() {
        let cfg = irc("");
        assert_eq!(cfg.port(), 6697);
        assert_eq!(cfg.nicks(), ["lever", "lever_", "lever__"]);
        assert_eq!(irc("tls = false").port(), 6667);
        assert_eq!(irc("alt_nicks = [\"lv\"]").nicks(), ["lever", "lv"]);
        assert_eq!(cfg.validate(Path::new("/etc/lever")), Ok(()));
    }

    #[test]
    fn refusals_name_the_key() {
        assert_eq!(
            refusal("channels = [\"#ok\", \"#a,b\"]"),
            Invalid::new(
                "irc.channels[1]",
                "'#a,b' cannot hold spaces, commas, ':' or control characters"
            )
        );
        assert_eq!(
            refusal("alt_nicks = [\"ok\", \"a.b\"]"),
            Invalid::new(
                "irc.alt_nicks[1]",
                "'a.b' may only hold letters, digits and []\\`_^{|}-"
            )
        );
        assert_eq!(
            refusal("channel_keys = { \"#x\" = \"k\" }"),
            Invalid::new("irc.channel_keys.#x", "is not one of irc.channels")
        );
        assert_eq!(
            refusal("sasl_password = \"p\""),
            Invalid::new("irc.sasl_account", "missing: sasl_password is set")
        );
        assert_eq!(
            refusal("queue_limit = 9"),
            Invalid::new("irc.queue_limit", "must be at least 10")
        );
        assert_eq!(
            refusal("tls_ca_file = \"ca.pem\""),
            Invalid::new(
                "irc.tls_ca_file",
                "/etc/lever/ca.pem is not a readable file"
            )
        );
    }
}
