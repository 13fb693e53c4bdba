//! `[http]`: the HTTP side (webhooks in, the JSON API, health). No section, no HTTP server.

use std::net::SocketAddr;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use super::{duration, Invalid, Secret};

/// `[http]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on: "127.0.0.1:8080". Required.
    pub listen: String,
    /// A bearer token for `/hooks/*` and API writes (`Authorization: Bearer …`); logged as
    /// "token". Better set with `LEVER_HTTP__TOKEN`.
    #[serde(default)]
    pub token: Option<Secret>,
    /// More bearer tokens, by name (the name is logged with each request it authorises):
    /// `{ ci = "…", deployer = "…" }`.
    #[serde(default)]
    pub tokens: IndexMap<String, Secret>,
    /// Shared secrets for HMAC-SHA256 signed requests, by name: lever's own
    /// (`X-Lever-Timestamp: <unix seconds>` and `X-Lever-Signature: sha256=<hex>` of
    /// `"<timestamp>.<body>"`) or GitHub's (`X-Hub-Signature-256` of the body, with a unique
    /// `X-GitHub-Delivery`).
    #[serde(default)]
    pub hmac_secrets: IndexMap<String, Secret>,
    /// How far `X-Lever-Timestamp` may be from lever's clock, either way, and how long a signed
    /// request (or GitHub delivery id) is remembered so it is accepted only once. Default: "5m".
    #[serde(default = "default_signature_window", with = "duration")]
    pub signature_window: Duration,
    /// Largest request body accepted, in bytes; larger gets 413. Default: 1048576 (1 MiB).
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// A request taking longer is answered 408. Default: "10s".
    #[serde(default = "default_request_timeout", with = "duration")]
    pub request_timeout: Duration,
    /// Where clients reach this lever's HTTP side, as a standby names it to send writers to the
    /// active lever: "http://host-a.internal:8080". Default: `listen`, with the node name
    /// (`[store] node`) for an address that listens everywhere (0.0.0.0).
    #[serde(default)]
    pub public_url: Option<String>,
}

fn default_body_limit() -> usize {
    1024 * 1024
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_signature_window() -> Duration {
    Duration::from_secs(5 * 60)
}

/// Shortest secret accepted: anything shorter can be guessed.
const MIN_SECRET: usize = 16;

impl HttpConfig {
    /// The address, parsed.
    pub fn addr(&self) -> Result<SocketAddr, String> {
        self.listen.parse().map_err(|_| {
            format!(
                "'{}' is not an address:port such as \"127.0.0.1:8080\"",
                self.listen
            )
        })
    }

    /// Where clients reach this lever (see `public_url`), `node` being its name.
    pub fn public_url(&self, node: &str) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        match self.addr() {
            Ok(addr) if addr.ip().is_unspecified() => format!("http://{node}:{}", addr.port()),
            Ok(addr) => format!("http://{addr}"),
            Err(_) => format!("http://{}", self.listen),
        }
    }

    /// Every bearer token with its name.
    pub fn bearer_tokens(&self) -> impl Iterator<Item = (&str, &Secret)> {
        self.token
            .iter()
            .map(|t| ("token", t))
            .chain(self.tokens.iter().map(|(n, t)| (n.as_str(), t)))
    }

    /// Whether any credential is configured (else no hook or write is ever accepted).
    pub fn has_credentials(&self) -> bool {
        self.token.is_some() || !self.tokens.is_empty() || !self.hmac_secrets.is_empty()
    }

    /// Checks the address, limits and that every secret is long enough.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        self.addr()
            .map_err(|why| Invalid::new("http.listen".to_owned(), why))?;
        if let Some(url) = &self.public_url {
            let scheme = url.starts_with("http://") || url.starts_with("https://");
            if !scheme || url.contains(char::is_whitespace) {
                return Err(Invalid::new(
                    "http.public_url",
                    "must be an http:// or https:// URL such as \"http://host-a.internal:8080\"",
                ));
            }
        }
        if self.body_limit < 1024 {
            return Err(Invalid::new(
                "http.body_limit",
                "must be at least 1024 bytes",
            ));
        }
        if self.request_timeout < Duration::from_millis(100) {
            return Err(Invalid::new(
                "http.request_timeout",
                "must be at least 100ms",
            ));
        }
        if self.signature_window < Duration::from_secs(1)
            || self.signature_window > Duration::from_secs(24 * 3600)
        {
            return Err(Invalid::new(
                "http.signature_window",
                "must be between 1s and 24h",
            ));
        }
        let named = self
            .token
            .iter()
            .map(|t| ("http.token".to_owned(), t))
            .chain(
                self.tokens
                    .iter()
                    .map(|(n, t)| (format!("http.tokens.{n}"), t)),
            )
            .chain(
                self.hmac_secrets
                    .iter()
                    .map(|(n, t)| (format!("http.hmac_secrets.{n}"), t)),
            );
        for (key, secret) in named {
            if secret.expose().len() < MIN_SECRET {
                return Err(Invalid::new(
                    key,
                    format!("is shorter than {MIN_SECRET} characters: too easy to guess"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(text: &str) -> HttpConfig {
        toml::from_str(&format!("listen = \"127.0.0.1:0\"\n{text}")).expect("an [http] section")
    }

    #[test]
    fn limits_and_secrets_are_checked_with_their_key() {
        let token = "token = \"0123456789abcdef0123456789abcdef\"\n";
        assert_eq!(http(token).validate(), Ok(()));
        assert_eq!(
            http(&format!("{token}body_limit = 100\n")).validate(),
            Err(Invalid::new(
                "http.body_limit",
                "must be at least 1024 bytes"
            ))
        );
        assert_eq!(
            http("public_url = \"host-a:8080\"").validate(),
            Err(Invalid::new(
                "http.public_url",
                "must be an http:// or https:// URL such as \"http://host-a.internal:8080\""
            ))
        );
        assert_eq!(
            http("[tokens]\nci = \"short\"\n").validate(),
            Err(Invalid::new(
                "http.tokens.ci",
                format!("is shorter than {MIN_SECRET} characters: too easy to guess")
            ))
        );
    }

    #[test]
    fn the_public_url_defaults_to_the_listen_address_or_the_node_for_every_address() {
        assert_eq!(http("").public_url("host-a"), "http://127.0.0.1:0");
        let everywhere: HttpConfig = toml::from_str("listen = \"0.0.0.0:8080\"").unwrap();
        assert_eq!(everywhere.public_url("host-a"), "http://host-a:8080");
        assert_eq!(
            http("public_url = \"https://lever.example/\"").public_url("host-a"),
            "https://lever.example"
        );
    }
}
