//! What is firing now, as Alertmanager's notifications told lever: for the deploy page.
//!
//! Every notification refreshes it (Alertmanager re-sends a group while it fires), a resolved
//! alert leaves it, and an alert not heard of for `[alerts] remember_for` is taken as gone (its
//! resolution was lost). Bounded: past [`MAX_FIRING`] the alert heard of longest ago goes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::webhook::{instance_of, Alert};

/// Alerts kept at most.
pub const MAX_FIRING: usize = 1000;

/// One firing alert, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiringAlert {
    pub name: String,
    pub instance: Option<String>,
    pub severity: Option<String>,
    pub summary: Option<String>,
    /// Alertmanager's `startsAt` (RFC 3339).
    pub since: String,
}

impl FiringAlert {
    pub fn critical(&self) -> bool {
        self.severity.as_deref() == Some("critical")
    }
}

pub struct Firing {
    alerts: HashMap<String, (FiringAlert, Instant)>,
    max_age: Duration,
}

impl Firing {
    pub fn new(max_age: Duration) -> Firing {
        Firing {
            alerts: HashMap::new(),
            max_age,
        }
    }

    /// Takes in one alert of a notification.
    pub fn take(&mut self, alert: &Alert, now: Instant) {
        let key = alert.key();
        if alert.status == "resolved" {
            self.alerts.remove(&key);
            return;
        }
        if self.alerts.len() >= MAX_FIRING && !self.alerts.contains_key(&key) {
            let oldest = self
                .alerts
                .iter()
                .min_by_key(|(_, (_, heard))| *heard)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.alerts.remove(&oldest);
            }
        }
        let firing = FiringAlert {
            name: alert
                .labels
                .get("alertname")
                .cloned()
                .unwrap_or_else(|| "alert".into()),
            instance: instance_of(&alert.labels),
            severity: alert.labels.get("severity").cloned(),
            summary: alert.summary().map(str::to_owned),
            since: alert.starts_at.clone(),
        };
        self.alerts.insert(key, (firing, now));
    }

    /// What fires, critical first, then by name and instance.
    pub fn now(&mut self, now: Instant) -> Vec<FiringAlert> {
        let max_age = self.max_age;
        self.alerts
            .retain(|_, (_, heard)| now.duration_since(*heard) < max_age);
        let mut firing: Vec<FiringAlert> = self.alerts.values().map(|(a, _)| a.clone()).collect();
        firing.sort_by(|a, b| {
            (!a.critical(), &a.name, &a.instance).cmp(&(!b.critical(), &b.name, &b.instance))
        });
        firing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(name: &str, instance: &str, status: &str, severity: &str) -> Alert {
        serde_json::from_value(serde_json::json!({
            "status": status,
            "labels": { "alertname": name, "instance": instance, "severity": severity },
            "annotations": { "summary": format!("{name} on {instance}") },
            "startsAt": "2026-12-07T12:00:00Z",
            "fingerprint": format!("{name}-{instance}"),
        }))
        .unwrap()
    }

    #[test]
    fn firing_alerts_come_and_go_critical_first() {
        let mut firing = Firing::new(Duration::from_secs(60));
        let now = Instant::now();
        firing.take(&alert("DiskFull", "db-1", "firing", "warning"), now);
        firing.take(&alert("SiteDown", "web-1", "firing", "critical"), now);
        firing.take(&alert("SiteDown", "web-1", "firing", "critical"), now);
        let names: Vec<String> = firing.now(now).into_iter().map(|a| a.name).collect();
        assert_eq!(names, ["SiteDown", "DiskFull"]);
        firing.take(&alert("SiteDown", "web-1", "resolved", "critical"), now);
        let left = firing.now(now);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].summary.as_deref(), Some("DiskFull on db-1"));
        // Not heard of for longer than remembered: its resolution was lost.
        assert!(firing.now(now + Duration::from_secs(61)).is_empty());
    }

    #[test]
    fn past_the_bound_the_alert_heard_of_longest_ago_goes() {
        let mut firing = Firing::new(Duration::from_secs(3600));
        let start = Instant::now();
        for i in 0..=MAX_FIRING {
            let at = start + Duration::from_millis(i as u64);
            firing.take(&alert("Load", &format!("h{i}"), "firing", "warning"), at);
        }
        let now = firing.now(start + Duration::from_secs(1));
        assert_eq!(now.len(), MAX_FIRING);
        assert!(!now.iter().any(|a| a.instance.as_deref() == Some("h0")));
    }
}
