//! Alerts from Alertmanager, announced the way it groups them, once each, and never as a flood.
//!
//! Alertmanager re-sends a whole group whenever an alert joins it (and again every
//! `repeat_interval`), so each alert's firing and its resolution are announced once, by
//! fingerprint and status. A group gets at most `lines_per_group` lines ("… and 997 more"); all
//! groups together at most `lines_per_minute`, and what is held back is summarised once the
//! minute is over. Alerts matching an `auto_hold` rule place a hold themselves (logged as
//! lever's), and their resolution proposes `!unhold`. The lines go on the bus as data
//! ([`AlertLine`], one per line the caps count); the announcer words them.
//!
//! - [`webhook`]: the notification Alertmanager POSTs (version 4)
//! - [`client`]: Alertmanager's API v2, for `!alerts`, `!ack` and `!silence`
//! - [`runbooks`]: the runbooks file, for the link when Alertmanager sent none
//! - [`dedup`]: the bounded memory of what was announced

pub mod client;
pub mod dedup;
pub mod runbooks;
pub mod webhook;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::chat::message::Identity;
use crate::chat::text::{sanitize_line, truncate_chars};
use crate::config::Config;
use crate::deploy::Deploys;
use crate::events::{AlertGroup, AlertLine, Event, Events, HeldBack};
use webhook::{Alert, Webhook};

/// The rate window for `lines_per_minute`.
const WINDOW: Duration = Duration::from_secs(60);
/// Instances named in one line before "… and N more".
const INSTANCES_SHOWN: usize = 5;

/// What one notification led to (the webhook's answer).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Receipt {
    /// Alerts whose status was new.
    pub new: usize,
    /// Alerts already announced with this status (Alertmanager re-sent the group).
    pub duplicates: usize,
    /// Lines said now.
    pub lines: usize,
    /// Lines held back by the per-minute cap.
    pub held_back: usize,
    /// Alerts in the de-dup memory once this notification is taken in.
    pub remembered: usize,
}

/// Lines held back for one alert name in the current window.
#[derive(Default)]
struct Held {
    lines: usize,
    critical: bool,
}

struct State {
    /// Fingerprint → the status last announced.
    announced: dedup::Dedup,
    window_start: Option<Instant>,
    sent_in_window: usize,
    /// Alert name → lines held back in this window.
    held_back: BTreeMap<String, Held>,
    /// Whether this window's holding back has been logged already.
    warned: bool,
    /// Fingerprint → the hold scope an auto-hold placed for it.
    auto_holds: HashMap<String, Option<String>>,
}

/// The alert announcer.
pub struct Alerts {
    config: Arc<Config>,
    deploys: Arc<Deploys>,
    events: Events,
    state: Mutex<State>,
    runbooks: runbooks::Runbooks,
}

impl Alerts {
    pub fn new(config: Arc<Config>, deploys: Arc<Deploys>, events: Events) -> Arc<Self> {
        let path = config.alerts.runbooks.as_ref().map(|p| config.resolve(p));
        Arc::new(Self {
            config: config.clone(),
            deploys,
            events,
            state: Mutex::new(State {
                announced: dedup::Dedup::new(
                    config.alerts.remember_alerts,
                    config.alerts.remember_for,
                ),
                window_start: None,
                sent_in_window: 0,
                held_back: BTreeMap::new(),
                warned: false,
                auto_holds: HashMap::new(),
            }),
            runbooks: runbooks::Runbooks::new(path),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the task that summarises held-back lines once their minute is over.
    pub fn start_summaries(self: &Arc<Self>) {
        let alerts = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(5));
            loop {
                ticker.tick().await;
                alerts.flush_held_back(Instant::now());
                alerts.forget_old(Instant::now());
            }
        });
    }

    /// Announces what is new in one notification.
    pub fn receive(&self, hook: &Webhook) -> Receipt {
        self.receive_at(hook, Instant::now())
    }

    fn receive_at(&self, hook: &Webhook, now: Instant) -> Receipt {
        let mut receipt = Receipt::default();
        let mut fresh: BTreeMap<&str, Vec<&Alert>> = BTreeMap::new();
        {
            let mut state = self.lock();
            for alert in &hook.alerts {
                let resolved = alert.status == "resolved";
                if !state.announced.is_new(&alert.key(), resolved, now) {
                    receipt.duplicates += 1;
                    continue;
                }
                fresh.entry(alert.status.as_str()).or_default().push(alert);
                receipt.new += 1;
            }
        }
        let channels = self.route(hook);
        let mut lines = Vec::new();
        // Firing first: it is what people act on.
        for status in ["firing", "resolved"] {
            if let Some(alerts) = fresh.get(status) {
                lines.extend(self.group_lines(hook, status, alerts));
            }
        }
        if let Some(resolved) = fresh.get("resolved") {
            lines.extend(resolved.iter().filter_map(|a| self.propose_unhold(a)));
        }
        let name = hook.alertname();
        let critical = hook
            .common_labels
            .get("severity")
            .is_some_and(|s| s == "critical")
            || hook
                .alerts
                .iter()
                .any(|a| a.labels.get("severity").is_some_and(|s| s == "critical"));
        let mut out = Vec::new();
        {
            let mut state = self.lock();
            for line in lines {
                if state
                    .window_start
                    .is_none_or(|start| now.duration_since(start) >= WINDOW)
                {
                    if !state.held_back.is_empty() {
                        // A new window: first say what the old one held back.
                        out.extend(
                            channels_for_all(&self.config)
                                .into_iter()
                                .map(|c| (c, held_back(&state.held_back))),
                        );
                        state.held_back.clear();
                    }
                    state.window_start = Some(now);
                    state.sent_in_window = 0;
                }
                if state.sent_in_window < self.config.alerts.lines_per_minute {
                    state.sent_in_window += 1;
                    receipt.lines += 1;
                    out.extend(channels.iter().map(|c| (c.clone(), line.clone())));
                } else {
                    let held = state.held_back.entry(name.clone()).or_default();
                    held.lines += 1;
                    held.critical |= critical;
                    receipt.held_back += 1;
                }
            }
        }
        if !out.is_empty() {
            self.events.publish(Event::Alerts { lines: out });
        }
        // After the alert's own line, so the channel reads "[FIRING:1] …", then the hold.
        for alert in fresh.get("firing").into_iter().flatten() {
            self.auto_hold(alert);
        }
        if receipt.held_back > 0 {
            let mut state = self.lock();
            if !std::mem::replace(&mut state.warned, true) {
                tracing::warn!(alert = %name, "alert lines over alerts.lines_per_minute are being held back this minute");
            }
        }
        receipt.remembered = self.remembered();
        receipt
    }

    /// Forgets alerts past their useful time (see [`dedup`]).
    fn forget_old(&self, now: Instant) {
        self.lock().announced.forget_expired(now);
    }

    /// How many alerts the de-dup memory holds (at most `[alerts] remember_alerts`).
    pub fn remembered(&self) -> usize {
        self.lock().announced.len()
    }

    /// Once a window with held-back lines is over, says what was held back.
    fn flush_held_back(&self, now: Instant) {
        let mut state = self.lock();
        let over = state
            .window_start
            .is_some_and(|start| now.duration_since(start) >= WINDOW);
        if !over || state.held_back.is_empty() {
            return;
        }
        let line = held_back(&state.held_back);
        state.held_back.clear();
        state.window_start = None;
        state.warned = false;
        drop(state);
        let lines = channels_for_all(&self.config)
            .into_iter()
            .map(|c| (c, line.clone()))
            .collect();
        self.events.publish(Event::Alerts { lines });
    }

    /// The channels of the first route whose labels all match the group's; else every channel.
    fn route(&self, hook: &Webhook) -> Vec<String> {
        let labels = hook.labels();
        self.config
            .alerts
            .routes
            .iter()
            .find(|route| route.labels.iter().all(|(k, v)| labels.get(k) == Some(v)))
            .map(|route| route.channels.clone())
            .unwrap_or_else(|| channels_for_all(&self.config))
    }

    /// A group's head line, then per-alert lines when their summaries differ, at most
    /// `lines_per_group` in all.
    fn group_lines(&self, hook: &Webhook, status: &str, alerts: &[&Alert]) -> Vec<AlertLine> {
        let instances: Vec<String> = unique(alerts.iter().map(|a| a.instance()));
        let common_summary = hook.common_summary();
        let summary =
            common_summary.or_else(|| (alerts.len() == 1).then(|| alerts[0].summary()).flatten());
        // Alertmanager's annotation wins; else the runbooks file's entry for the alert's name.
        let runbook = hook
            .runbook()
            .or_else(|| {
                alerts
                    .iter()
                    .find_map(|a| a.annotations.get("runbook_url").map(String::as_str))
            })
            .map(str::to_owned)
            .or_else(|| self.runbooks.link(&hook.alertname()));
        let mut lines = vec![AlertLine::Group(AlertGroup {
            status: status.to_owned(),
            count: alerts.len(),
            name: clean(&hook.alertname(), 80),
            severity: hook.common_labels.get("severity").map(|s| clean(s, 20)),
            instances: instances
                .iter()
                .take(INSTANCES_SHOWN)
                .map(|i| clean(i, 60))
                .collect(),
            more_instances: instances.len().saturating_sub(INSTANCES_SHOWN),
            summary: summary.map(|s| clean(s, 200)),
            runbook: runbook.map(|r| clean(&r, 200)),
            not_sent: hook.truncated_alerts,
        })];
        if summary.is_none() && alerts.len() > 1 {
            let room = self.config.alerts.lines_per_group.saturating_sub(1);
            let details: Vec<AlertLine> = alerts
                .iter()
                .map(|a| AlertLine::Detail {
                    instance: clean(&a.instance().unwrap_or_default(), 60),
                    summary: a.summary().map(|s| clean(s, 200)),
                })
                .collect();
            let fits = if details.len() <= room {
                room
            } else {
                room.saturating_sub(1)
            };
            lines.extend(details.iter().take(fits).cloned());
            if details.len() > fits {
                lines.push(AlertLine::MoreDetails(details.len() - fits));
            }
        }
        lines.truncate(self.config.alerts.lines_per_group.max(1));
        lines
    }

    /// Places the hold an `auto_hold` rule asks for (its own announcement says so).
    fn auto_hold(&self, alert: &Alert) {
        self.try_auto_hold(alert);
    }

    fn try_auto_hold(&self, alert: &Alert) -> Option<()> {
        let rule = self.config.alerts.auto_hold.iter().find(|rule| {
            rule.labels
                .iter()
                .all(|(k, v)| alert.labels.get(k) == Some(v))
        })?;
        let target = rule.target.clone().or_else(|| {
            alert
                .labels
                .get("target")
                .filter(|t| self.config.targets.contains_key(*t))
                .cloned()
        });
        let name = display_name(alert);
        let mut reason = format!("alert {name}");
        if let Some(summary) = alert.summary() {
            reason.push_str(&format!(": {}", clean(summary, 150)));
        }
        let lever = Identity {
            nick: "lever".into(),
            user: "alertmanager".into(),
            host: "alerts".into(),
            account: None,
        };
        // A hold already in force (anyone's) is left as it is.
        let held = self
            .deploys
            .holds()
            .ok()?
            .iter()
            .any(|h| h.target == target);
        if held {
            return None;
        }
        match self.deploys.hold(target.as_deref(), &lever, &reason, None) {
            Ok((hold, _)) => {
                self.lock()
                    .auto_holds
                    .insert(alert.key(), hold.target.clone());
                tracing::warn!(alert = %name, scope = hold.scope(), "alert placed a hold");
                Some(())
            }
            Err(e) => {
                tracing::error!(alert = %name, error = %e, "an auto_hold rule could not place its hold");
                None
            }
        }
    }

    /// When an alert that placed a hold resolves, proposes lifting it (a person decides).
    fn propose_unhold(&self, alert: &Alert) -> Option<AlertLine> {
        let scope = self.lock().auto_holds.remove(&alert.key())?;
        let still_held = self
            .deploys
            .holds()
            .ok()?
            .iter()
            .any(|h| h.target == scope && h.by_nick == "lever");
        if !still_held {
            return None;
        }
        Some(AlertLine::ProposeUnhold {
            alert: display_name(alert),
            target: scope,
        })
    }
}

fn channels_for_all(config: &Config) -> Vec<String> {
    config.irc.channels.clone()
}

/// What the cap held back this minute, by alert name (the announcer orders and words it).
fn held_back(held: &BTreeMap<String, Held>) -> AlertLine {
    AlertLine::HeldBack(
        held.iter()
            .map(|(name, h)| HeldBack {
                name: clean(name, 60),
                lines: h.lines,
                critical: h.critical,
            })
            .collect(),
    )
}

/// An alert's name as lever words it: cleaned and short.
fn display_name(alert: &Alert) -> String {
    clean(
        alert
            .labels
            .get("alertname")
            .map_or("alert", String::as_str),
        80,
    )
}

/// Text from a webhook, made safe and short.
fn clean(text: &str, max: usize) -> String {
    truncate_chars(sanitize_line(text).trim(), max).into_owned()
}

fn unique(values: impl Iterator<Item = Option<String>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for value in values.flatten() {
        if !out.contains(&value) {
            out.push(value);
        }
    }
    out
}

#[cfg(test)]
mod tests;
