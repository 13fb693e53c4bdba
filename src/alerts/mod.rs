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
//! - [`firing`]: what fires now, for the deploy page

pub mod client;
pub mod dedup;
pub mod firing;
pub mod runbooks;
pub mod webhook;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::chat::message::Identity;
use crate::chat::text::clean_line;
use crate::config::Config;
use crate::deploy::Deploys;
use crate::events::{AlertGroup, AlertLine, Event, Events, HeldBack};
use crate::store::alerts::AlertMark;
use webhook::{Alert, Webhook};

/// With a shared store: how often the active lever takes in what other levers kept.
const INBOX_EVERY: Duration = Duration::from_secs(2);
/// How long kept notifications are taken in after they came (a takeover well within it).
const KEPT_FOR: Duration = Duration::from_secs(600);
/// How often old kept notifications and said statuses are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
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
    /// What fires now, whether said or not.
    firing: firing::Firing,
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
                firing: firing::Firing::new(config.alerts.remember_for),
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

    /// What fires now, as the notifications said: critical first.
    pub fn firing(&self) -> Vec<firing::FiringAlert> {
        self.lock().firing.now(Instant::now())
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
                state.firing.take(alert, now);
                let resolved = alert.status == "resolved";
                if !state.announced.is_new(&alert.key(), resolved, now) {
                    receipt.duplicates += 1;
                    continue;
                }
                fresh.entry(alert.status.as_str()).or_default().push(alert);
                receipt.new += 1;
            }
        }
        if self.deploys.store().is_shared() {
            self.drop_said(&mut fresh, &mut receipt);
        }
        let marks: Vec<AlertMark> = fresh.values().flatten().map(|a| a.mark()).collect();
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
            self.events.publish(Event::Alerts { lines: out, marks });
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

    /// With a shared store: leaves out of `fresh` what a lever has said already (one that was
    /// active before this one, whose memory this lever does not have).
    fn drop_said(&self, fresh: &mut BTreeMap<&str, Vec<&Alert>>, receipt: &mut Receipt) {
        let alerts: Vec<&Alert> = fresh.values().flatten().copied().collect();
        if alerts.is_empty() {
            return;
        }
        let marks: Vec<AlertMark> = alerts.iter().map(|a| a.mark()).collect();
        let said = match self.deploys.store().alerts_said(&marks) {
            Ok(said) => said,
            Err(e) => {
                // Said if news to this lever; the claim before it goes out decides.
                tracing::warn!(error = %e, "cannot read which alerts were said; the claim decides");
                return;
            }
        };
        let old: Vec<String> = alerts
            .iter()
            .zip(said)
            .filter(|(_, said)| *said)
            .map(|(alert, _)| alert.key())
            .collect();
        for group in fresh.values_mut() {
            group.retain(|alert| !old.contains(&alert.key()));
        }
        fresh.retain(|_, group| !group.is_empty());
        receipt.new = receipt.new.saturating_sub(old.len());
        receipt.duplicates += old.len();
    }

    /// With a shared store: takes in, every [`INBOX_EVERY`], the notifications any lever kept
    /// (standbys keep what Alertmanager sends them; a lever that died may have kept some it
    /// did not say), and forgets old ones. Runs on the active lever.
    pub fn start_inbox(self: &Arc<Self>) {
        if !self.deploys.store().is_shared() {
            return;
        }
        let alerts = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(INBOX_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut after = 0;
            let mut pruned = Instant::now();
            loop {
                ticker.tick().await;
                after = alerts.take_in(after);
                if pruned.elapsed() >= PRUNE_EVERY {
                    pruned = Instant::now();
                    alerts.prune();
                }
            }
        });
    }

    /// Takes in the kept notifications after id `after` (and not older than [`KEPT_FOR`]); the
    /// last id taken in.
    fn take_in(&self, mut after: i64) -> i64 {
        let since = crate::store::now_ms() - KEPT_FOR.as_millis() as i64;
        let kept = match self.deploys.store().kept_notifications(after, since, 500) {
            Ok(kept) => kept,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the kept alert notifications yet");
                return after;
            }
        };
        for notification in kept {
            after = notification.id;
            match Webhook::parse(notification.body.as_bytes()) {
                Ok(hook) => {
                    let receipt = self.receive(&hook);
                    if receipt.new > 0 {
                        tracing::info!(new = receipt.new, group = %hook.group_key, "alerts another lever kept, said now");
                    }
                }
                Err(e) => {
                    tracing::warn!(id = notification.id, error = %e, "a kept alert notification does not parse")
                }
            }
        }
        after
    }

    /// Forgets kept notifications past [`KEPT_FOR`] and said statuses past `remember_for`.
    fn prune(&self) {
        let now = crate::store::now_ms();
        let kept_since = now - KEPT_FOR.as_millis() as i64;
        let said_since = now - self.config.alerts.remember_for.as_millis() as i64;
        if let Err(e) = self.deploys.store().forget_alerts(kept_since, said_since) {
            tracing::debug!(error = %e, "cannot forget old alert notifications yet");
        }
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
        self.events.publish(Event::Alerts {
            lines,
            marks: Vec::new(),
        });
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
            name: clean_line(&hook.alertname(), 80),
            severity: hook
                .common_labels
                .get("severity")
                .map(|s| clean_line(s, 20)),
            instances: instances
                .iter()
                .take(INSTANCES_SHOWN)
                .map(|i| clean_line(i, 60))
                .collect(),
            more_instances: instances.len().saturating_sub(INSTANCES_SHOWN),
            summary: summary.map(|s| clean_line(s, 200)),
            runbook: runbook.map(|r| clean_line(&r, 200)),
            not_sent: hook.truncated_alerts,
        })];
        if summary.is_none() && alerts.len() > 1 {
            let room = self.config.alerts.lines_per_group.saturating_sub(1);
            let details: Vec<AlertLine> = alerts
                .iter()
                .map(|a| AlertLine::Detail {
                    instance: clean_line(&a.instance().unwrap_or_default(), 60),
                    summary: a.summary().map(|s| clean_line(s, 200)),
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
            reason.push_str(&format!(": {}", clean_line(summary, 150)));
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
                name: clean_line(name, 60),
                lines: h.lines,
                critical: h.critical,
            })
            .collect(),
    )
}

/// An alert's name as lever words it: cleaned and short.
fn display_name(alert: &Alert) -> String {
    clean_line(
        alert
            .labels
            .get("alertname")
            .map_or("alert", String::as_str),
        80,
    )
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
