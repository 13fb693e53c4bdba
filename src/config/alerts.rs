//! `[alerts]` (how Alertmanager's notifications are announced) and `[alertmanager]` (where
//! `!alerts`, `!ack` and `!silence` reach it).

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use super::{duration, Invalid, Secret};

/// `[alerts]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// At most this many lines for one group in one notification ("… and 997 more"). Default: 4.
    #[serde(default = "default_lines_per_group")]
    pub lines_per_group: usize,
    /// At most this many alert lines a minute over all groups; the rest is held back and
    /// summarised. Default: 20.
    #[serde(default = "default_lines_per_minute")]
    pub lines_per_minute: usize,
    /// Which channels hear which alerts: the first route whose labels all match wins; no match,
    /// every channel.
    #[serde(default)]
    pub routes: Vec<AlertRoute>,
    /// Alerts that place a hold by themselves (logged as lever's, with the alert); their
    /// resolution proposes `!unhold`.
    #[serde(default)]
    pub auto_hold: Vec<AutoHold>,
    /// A runbooks file (the one `!runbook` reads, e.g. "plugins/runbooks.toml"): an alert whose
    /// name is a runbook's name or topic is announced with its link, unless Alertmanager sent a
    /// `runbook_url` annotation. Read again when it changes. Default: none.
    #[serde(default)]
    pub runbooks: Option<PathBuf>,
    /// At most this many alerts are remembered to tell a re-sent notification from news; past
    /// it, resolved alerts and then those heard of longest ago are forgotten (and announced
    /// again should Alertmanager re-send them). Default: 4096.
    #[serde(default = "default_remember_alerts")]
    pub remember_alerts: usize,
    /// An alert Alertmanager has not re-sent for this long is forgotten (a resolved one after
    /// an hour at most). Keep it above the Alertmanager route's `repeat_interval` (default 4h),
    /// or a still-firing alert is announced again at each repeat. Default: "24h".
    #[serde(default = "default_remember_for", with = "duration")]
    pub remember_for: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            lines_per_group: default_lines_per_group(),
            lines_per_minute: default_lines_per_minute(),
            routes: Vec::new(),
            auto_hold: Vec::new(),
            runbooks: None,
            remember_alerts: default_remember_alerts(),
            remember_for: default_remember_for(),
        }
    }
}

fn default_lines_per_group() -> usize {
    4
}
fn default_lines_per_minute() -> usize {
    20
}
fn default_remember_alerts() -> usize {
    4096
}
fn default_remember_for() -> Duration {
    Duration::from_secs(24 * 3600)
}

/// `[[alerts.routes]]`: `match = { team = "web" }`, `channels = ["#web"]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRoute {
    #[serde(rename = "match")]
    pub labels: IndexMap<String, String>,
    pub channels: Vec<String>,
}

/// `[[alerts.auto_hold]]`: `match = { severity = "critical" }`, optional `target`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoHold {
    #[serde(rename = "match")]
    pub labels: IndexMap<String, String>,
    /// The target to hold. Default: the alert's `target` label when it names a target, else
    /// every target.
    #[serde(default)]
    pub target: Option<String>,
}

/// `[alertmanager]`: the Alertmanager API v2 that `!alerts`, `!ack` and `!silence` use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// "http://127.0.0.1:9093". Required.
    pub url: String,
    /// A bearer token for Alertmanager, if it sits behind one. Better set with
    /// `LEVER_ALERTMANAGER__TOKEN`.
    #[serde(default)]
    pub token: Option<Secret>,
}

impl AlertsConfig {
    /// Checks the limits, and that routes and holds name `channels` and `targets`.
    pub(super) fn validate(&self, channels: &[String], targets: &[&str]) -> Result<(), Invalid> {
        if self.lines_per_group == 0 {
            return Err(Invalid::new("alerts.lines_per_group", "must be at least 1"));
        }
        if self.lines_per_minute < self.lines_per_group {
            return Err(Invalid::new(
                "alerts.lines_per_minute",
                "must be at least alerts.lines_per_group",
            ));
        }
        if self.remember_alerts == 0 {
            return Err(Invalid::new("alerts.remember_alerts", "must be at least 1"));
        }
        if self.remember_for < Duration::from_secs(60) {
            return Err(Invalid::new("alerts.remember_for", "must be at least 1m"));
        }
        for (i, route) in self.routes.iter().enumerate() {
            if route.labels.is_empty() {
                return Err(Invalid::new(
                    format!("alerts.routes[{i}].match"),
                    "needs at least one label",
                ));
            }
            for (j, channel) in route.channels.iter().enumerate() {
                if !channels.contains(channel) {
                    return Err(Invalid::new(
                        format!("alerts.routes[{i}].channels[{j}]"),
                        format!("'{channel}' is not one of irc.channels"),
                    ));
                }
            }
        }
        for (i, rule) in self.auto_hold.iter().enumerate() {
            if rule.labels.is_empty() {
                return Err(Invalid::new(
                    format!("alerts.auto_hold[{i}].match"),
                    "needs at least one label",
                ));
            }
            if let Some(target) = &rule.target {
                if !targets.contains(&target.as_str()) {
                    return Err(Invalid::new(
                        format!("alerts.auto_hold[{i}].target"),
                        format!("'{target}' is not a configured target"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl AlertmanagerConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(Invalid::new(
                "alertmanager.url",
                "must be an http:// or https:// URL",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alerts(text: &str) -> AlertsConfig {
        toml::from_str(text).expect("an [alerts] section")
    }

    #[test]
    fn routes_and_holds_name_known_channels_and_targets() {
        let channels = ["#ops".to_owned()];
        let route = "[[routes]]\nmatch = { team = \"web\" }\nchannels = [\"#web\"]\n";
        assert_eq!(
            alerts(route).validate(&channels, &["site"]),
            Err(Invalid::new(
                "alerts.routes[0].channels[0]",
                "'#web' is not one of irc.channels"
            ))
        );
        let hold = "[[auto_hold]]\nmatch = { severity = \"page\" }\ntarget = \"api\"\n";
        assert_eq!(
            alerts(hold).validate(&channels, &["site"]),
            Err(Invalid::new(
                "alerts.auto_hold[0].target",
                "'api' is not a configured target"
            ))
        );
        assert_eq!(alerts(hold).validate(&channels, &["api"]), Ok(()));
        assert_eq!(
            alerts("lines_per_group = 0\n").validate(&channels, &[]),
            Err(Invalid::new("alerts.lines_per_group", "must be at least 1"))
        );
    }
}
