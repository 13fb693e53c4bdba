//! Alertmanager's API v2: what is firing (`!alerts`) and silences (`!ack`, `!silence`).

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::json;

use crate::config::AlertmanagerConfig;

/// How long a call to Alertmanager may take before the user is told it is unreachable.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A label matcher as `!silence` takes it: `alertname=HighErrorRate`, `instance=~www.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    pub is_equal: bool,
}

impl Matcher {
    /// Parses `name=value`, `name!=value`, `name=~regex`, `name!~regex`; a bare word is an
    /// alert name.
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let ops = [
            ("!~", true, false),
            ("=~", true, true),
            ("!=", false, false),
            ("=", false, true),
        ];
        for (op, is_regex, is_equal) in ops {
            if let Some((name, value)) = text.split_once(op) {
                let valid_name = !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                if !valid_name || value.is_empty() {
                    return Err(format!(
                        "'{text}' is not a matcher like alertname=HighErrorRate"
                    ));
                }
                return Ok(Matcher {
                    name: name.into(),
                    value: value.trim_matches('"').into(),
                    is_regex,
                    is_equal,
                });
            }
        }
        if text.is_empty() || text.contains(char::is_whitespace) {
            return Err(format!("'{text}' is not an alert name"));
        }
        Ok(Matcher {
            name: "alertname".into(),
            value: text.into(),
            is_regex: false,
            is_equal: true,
        })
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match (self.is_regex, self.is_equal) {
            (false, true) => "=",
            (false, false) => "!=",
            (true, true) => "=~",
            (true, false) => "!~",
        };
        write!(f, "{}{op}{}", self.name, self.value)
    }
}

/// An alert as `/api/v2/alerts` lists it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveAlert {
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: String,
}

/// Why a call failed, for the user.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("Alertmanager at {url} did not answer: {reason} (check [alertmanager] url)")]
    Unreachable { url: String, reason: String },
    #[error("Alertmanager refused: {status} {message}")]
    Refused { status: u16, message: String },
    #[error("Alertmanager answered: {what} its answer was unreadable: {reason}")]
    Unreadable { what: String, reason: String },
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(config: &AlertmanagerConfig) -> Client {
        crate::infra::http_client::install_provider();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Client {
            http,
            base: config.url.trim_end_matches('/').to_owned(),
            token: config.token.as_ref().map(|t| t.expose().to_owned()),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            reason: crate::infra::http_client::error_chain(&e),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or(text);
        Err(ClientError::Refused {
            status: status.as_u16(),
            message: crate::chat::text::truncate_chars(message.trim(), 200).into_owned(),
        })
    }

    /// Alerts firing now, not silenced or inhibited.
    pub async fn firing(&self) -> Result<Vec<ActiveAlert>, ClientError> {
        let request = self.request(
            reqwest::Method::GET,
            "/api/v2/alerts?active=true&silenced=false&inhibited=false",
        );
        let response = self.send(request).await?;
        response.json().await.map_err(|e| ClientError::Unreadable {
            what: "the list of alerts came, but".into(),
            reason: crate::infra::http_client::error_chain(&e),
        })
    }

    /// Creates a silence; returns its id.
    pub async fn silence(
        &self,
        matchers: &[Matcher],
        lasting: Duration,
        by: &str,
        comment: &str,
    ) -> Result<String, ClientError> {
        let now = SystemTime::now();
        let body = json!({
            "matchers": matchers.iter().map(|m| json!({
                "name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal,
            })).collect::<Vec<_>>(),
            "startsAt": humantime::format_rfc3339_seconds(now).to_string(),
            "endsAt": humantime::format_rfc3339_seconds(now + lasting).to_string(),
            "createdBy": by,
            "comment": comment,
        });
        let response = self
            .send(
                self.request(reqwest::Method::POST, "/api/v2/silences")
                    .json(&body),
            )
            .await?;
        // Alertmanager 0.25 answers `{"silenceID": "…"}`.
        #[derive(Deserialize)]
        struct Created {
            #[serde(rename = "silenceID", alias = "silenceId")]
            silence_id: String,
        }
        let created: Created = response.json().await.map_err(|e| ClientError::Unreadable {
            what: "the silence was created, but".into(),
            reason: crate::infra::http_client::error_chain(&e),
        })?;
        Ok(created.silence_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_parse_every_operator_and_bare_names() {
        let m = |t: &str| Matcher::parse(t).map(|m| m.to_string());
        assert_eq!(m("HighErrorRate").unwrap(), "alertname=HighErrorRate");
        assert_eq!(m("instance=www1").unwrap(), "instance=www1");
        assert_eq!(m("instance!=www1").unwrap(), "instance!=www1");
        assert_eq!(m("instance=~www.*").unwrap(), "instance=~www.*");
        assert_eq!(m("instance!~db.*").unwrap(), "instance!~db.*");
        assert!(m("=x").is_err());
        assert!(m("a b").is_err());
        assert!(m("9x=y").is_err());
        assert!(m("x=").is_err());
    }
}
