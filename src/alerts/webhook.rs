//! The notification Alertmanager POSTs to a webhook receiver (version 4): a group of alerts
//! with the labels they share.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::store::alerts::AlertMark;

/// An RFC 3339 time as Alertmanager writes it (UTC, up to nanoseconds), in milliseconds.
fn millis(time: &str) -> Option<i64> {
    let at = humantime::parse_rfc3339_weak(time).ok()?;
    let since = at.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

/// One notification.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub version: String,
    #[serde(default)]
    pub group_key: String,
    #[serde(default)]
    pub truncated_alerts: u64,
    pub status: String,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<Alert>,
}

/// One alert in a notification.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: String,
    #[serde(default)]
    pub ends_at: String,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    #[serde(default)]
    pub fingerprint: String,
}

impl Webhook {
    /// Parses and checks a notification body; the error says what is wrong.
    pub fn parse(body: &[u8]) -> Result<Webhook, String> {
        let hook: Webhook = serde_json::from_slice(body)
            .map_err(|e| format!("not an Alertmanager notification: {e}"))?;
        if hook.version != "4" {
            return Err(format!(
                "webhook version {:?} is not supported (Alertmanager sends \"4\")",
                hook.version
            ));
        }
        for alert in std::iter::once(&hook.status).chain(hook.alerts.iter().map(|a| &a.status)) {
            if alert != "firing" && alert != "resolved" {
                return Err(format!(
                    "status {alert:?} is neither \"firing\" nor \"resolved\""
                ));
            }
        }
        Ok(hook)
    }

    /// The group's alert name: shared label, group label, or the first alert's.
    pub fn alertname(&self) -> String {
        self.common_labels
            .get("alertname")
            .or_else(|| self.group_labels.get("alertname"))
            .or_else(|| self.alerts.iter().find_map(|a| a.labels.get("alertname")))
            .cloned()
            .unwrap_or_else(|| "alert".to_owned())
    }

    /// The labels the whole group shares (for routing).
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.group_labels.clone();
        labels.extend(self.common_labels.clone());
        labels
    }

    /// The summary every alert shares, if any.
    pub fn common_summary(&self) -> Option<&str> {
        self.common_annotations
            .get("summary")
            .or_else(|| self.common_annotations.get("description"))
            .map(String::as_str)
    }

    /// The shared runbook link, if any.
    pub fn runbook(&self) -> Option<&str> {
        self.common_annotations
            .get("runbook_url")
            .map(String::as_str)
    }
}

impl Alert {
    /// This alert's status as said: its key, firing or resolved, and when that status began.
    pub fn mark(&self) -> AlertMark {
        let resolved = self.status == "resolved";
        let since = if resolved {
            &self.ends_at
        } else {
            &self.starts_at
        };
        AlertMark {
            key: self.key(),
            resolved,
            at: millis(since).unwrap_or(0),
        }
    }

    /// What tells this alert apart: Alertmanager's fingerprint, or its labels.
    pub fn key(&self) -> String {
        if !self.fingerprint.is_empty() {
            return self.fingerprint.clone();
        }
        self.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Where it fires (see [`instance_of`]).
    pub fn instance(&self) -> Option<String> {
        instance_of(&self.labels)
    }

    pub fn summary(&self) -> Option<&str> {
        self.annotations
            .get("summary")
            .or_else(|| self.annotations.get("description"))
            .map(String::as_str)
    }
}

/// Where an alert fires: its `instance`, `host`, `pod` or `job` label, the first there is.
pub fn instance_of(labels: &BTreeMap<String, String>) -> Option<String> {
    ["instance", "host", "pod", "job"]
        .iter()
        .find_map(|k| labels.get(*k))
        .cloned()
}
