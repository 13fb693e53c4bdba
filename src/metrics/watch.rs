//! Watching a deploy: after each good deploy of a target with `watch` rules, every rule's
//! metric is compared with its mean level over the `watch_baseline` before the deploy began,
//! every `watch_every`, for the rule's window. A metric above `max_ratio` times that level is a
//! regression: written to the deploy log, announced with a `!hold` suggestion (or, with
//! `auto_hold`, a hold lever places itself). A window with no regression ends in one all-clear.
//!
//! A newer deploy of the same target ends the older one's watch: its baseline is what the
//! newer deploy is measured against. A watch cut short by a restart is taken up again at
//! start: the newest good deploy of each watched target whose windows are still open and that
//! has no watch report in the deploy log yet (reports carry the deploy's run id).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{format, Metrics, Query};
use crate::chat::message::Identity;
use crate::config::{Config, WatchRule};
use crate::deploy::Deploys;
use crate::events::{Event, Events, ExternalStatus, WatchReport, Watched};
use crate::store::log::NewEntry;
use crate::store::{now_ms, Millis, Phase, Run, RunState, Store};

fn watched_run(run: &Run) -> Watched {
    Watched {
        target: run.target.clone(),
        user: run.user.clone(),
        run_id: Some(run.id),
        version: run.version.clone(),
        started_at: run.started_at,
        finished_at: run.finished_at.unwrap_or(run.started_at),
    }
}

/// The deploy an event reports, when it is one to watch (a good deploy).
fn watched_of(event: &Event) -> Option<Watched> {
    match event {
        Event::RunFinished { run, .. }
            if run.phase == Phase::Deploy && run.state == RunState::Succeeded =>
        {
            Some(watched_run(run))
        }
        Event::ExternalDeploy { report, entry, .. }
            if report.status == ExternalStatus::Succeeded =>
        {
            Some(Watched {
                target: report.target.clone(),
                user: report.user.clone(),
                run_id: None,
                version: report.version.clone(),
                started_at: entry.at,
                finished_at: entry.at,
            })
        }
        _ => None,
    }
}

/// "site deploy #12 by alice", "site deploy abc123 by bob".
pub fn describe(deploy: &Watched) -> String {
    let which = match (&deploy.run_id, &deploy.version) {
        (Some(id), _) => format!(" #{id}"),
        (None, Some(version)) => format!(" {version}"),
        (None, None) => String::new(),
    };
    format!("{} deploy{which} by {}", deploy.target, deploy.user)
}

/// A watch report's deploy log line (the announcement adds what to do about it).
pub fn log_text(report: &WatchReport) -> String {
    match report {
            WatchReport::Regression {
                deploy,
                metric,
                unit,
                before,
                now,
                ratio,
                max_ratio,
                ..
            } => format!(
                "REGRESSION after {}: {metric} is {}× its level before the deploy ({} now, {} before; limit {}×)",
                describe(deploy),
                ratio_text(*ratio),
                format::with_unit(*now, unit.as_deref()),
                format::with_unit(*before, unit.as_deref()),
                format::value(*max_ratio),
            ),
            WatchReport::AllClear {
                deploy,
                window,
                ratios,
            } => {
                let each: Vec<String> = ratios
                    .iter()
                    .map(|(metric, ratio)| format!("{metric} {}×", ratio_text(*ratio)))
                    .collect();
                // "after 10 min", "after 20 s" (a window is whole seconds, not "4000 ms").
                let after = if window.as_secs() < 60 {
                    format!("{} s", window.as_secs())
                } else {
                    crate::chat::text::human_duration(*window)
                };
                format!(
                    "{} looks healthy after {after}: {} its level before",
                    describe(deploy),
                    each.join(", ")
                )
            }
            WatchReport::Unwatched {
                deploy,
                metric,
                reason,
            } => format!("could not watch {metric} after {}: {reason}", describe(deploy)),
        }
}

/// A ratio to two significant places: `3.2`, `0.95`, `∞`.
fn ratio_text(ratio: f64) -> String {
    if ratio.is_infinite() {
        "∞".into()
    } else if ratio >= 10.0 {
        format!("{ratio:.0}")
    } else {
        format::value((ratio * 100.0).round() / 100.0)
    }
}

/// How one rule's window ended.
enum Outcome {
    Regressed,
    Healthy { ratio: f64 },
    Unwatched,
}

pub struct Watcher {
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    store: Arc<Store>,
    deploys: Arc<Deploys>,
    events: Events,
    /// The watch in progress per target.
    running: Mutex<HashMap<String, CancellationToken>>,
}

impl Watcher {
    /// Starts watching every good deploy of a target with `watch` rules.
    pub fn spawn(
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        store: Arc<Store>,
        deploys: Arc<Deploys>,
        events: &Events,
    ) {
        if config.targets.values().all(|t| t.watch.is_empty()) {
            return;
        }
        let watcher = Arc::new(Watcher {
            config,
            metrics,
            store,
            deploys,
            events: events.clone(),
            running: Mutex::default(),
        });
        let mut deliveries = events.subscribe();
        watcher.resume();
        tokio::spawn(async move {
            while let Some(delivery) = deliveries.recv().await {
                let Some(deploy) = watched_of(&delivery.event) else {
                    continue;
                };
                let has_rules = watcher
                    .config
                    .targets
                    .get(&deploy.target)
                    .is_some_and(|t| !t.watch.is_empty());
                if has_rules {
                    watcher.start(deploy);
                }
            }
        });
    }

    /// Takes up the watches a stop cut short.
    fn resume(self: &Arc<Self>) {
        for (name, target) in &self.config.targets {
            let Some(window) = target.watch.iter().map(|r| r.window).max() else {
                continue;
            };
            let newest = self
                .store
                .runs(name, &[Phase::Deploy], RunState::Succeeded, 1)
                .ok()
                .and_then(|runs| runs.into_iter().next());
            let Some(run) = newest else { continue };
            let deploy = watched_run(&run);
            if deploy.finished_at + window.as_millis() as Millis <= now_ms() {
                continue;
            }
            match self.store.lever_noted_run(run.id, deploy.finished_at) {
                Ok(false) => {
                    tracing::info!(deploy = %describe(&deploy), "taking up the watch a stop cut short");
                    self.start(deploy);
                }
                Ok(true) => {}
                Err(error) => tracing::error!(%error, "cannot tell whether a deploy's watch ended"),
            }
        }
    }

    fn start(self: &Arc<Self>, deploy: Watched) {
        let token = CancellationToken::new();
        let previous = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(deploy.target.clone(), token.clone());
        if let Some(previous) = previous {
            previous.cancel();
        }
        let watcher = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = watcher.watch(&deploy) => {}
                () = token.cancelled() => {
                    tracing::info!(target = %deploy.target, "a newer deploy took over the watch");
                }
            }
        });
    }

    async fn watch(self: &Arc<Self>, deploy: &Watched) {
        let rules = self.config.targets[&deploy.target].watch.clone();
        let outcomes =
            futures::future::join_all(rules.iter().map(|rule| self.watch_rule(deploy, rule))).await;
        let mut ratios = Vec::new();
        for (rule, outcome) in rules.iter().zip(outcomes) {
            match outcome {
                Outcome::Healthy { ratio } => ratios.push((rule.metric.clone(), ratio)),
                Outcome::Regressed | Outcome::Unwatched => return,
            }
        }
        let window = rules.iter().map(|r| r.window).max().unwrap_or_default();
        self.report(WatchReport::AllClear {
            deploy: deploy.clone(),
            window,
            ratios,
        });
    }

    async fn watch_rule(&self, deploy: &Watched, rule: &WatchRule) -> Outcome {
        let unwatched = |reason: String| WatchReport::Unwatched {
            deploy: deploy.clone(),
            metric: rule.metric.clone(),
            reason,
        };
        let query = match self.metrics.resolve(&rule.metric) {
            Ok(query) => query,
            Err(reason) => {
                self.report(unwatched(reason));
                return Outcome::Unwatched;
            }
        };
        let before = match self.level_before(&query, deploy.started_at).await {
            Ok(level) => level,
            Err(reason) => {
                self.report(unwatched(reason));
                return Outcome::Unwatched;
            }
        };
        let reference = before.max(rule.floor);
        // The window counts from the deploy's end (a watch taken up after a restart has less).
        let left = deploy.finished_at + rule.window.as_millis() as Millis - now_ms();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(left.max(0) as u64);
        let mut last: Result<f64, String>;
        // Every `watch_every`, and once at the end of the window.
        loop {
            let next =
                (tokio::time::Instant::now() + self.config.metrics.watch_every).min(deadline);
            tokio::time::sleep_until(next).await;
            last = self.current(&query).await;
            let now = match &last {
                Ok(now) => *now,
                Err(_) if next >= deadline => break,
                Err(_) => continue,
            };
            let ratio = ratio(now, reference);
            if ratio > rule.max_ratio {
                self.report(WatchReport::Regression {
                    deploy: deploy.clone(),
                    metric: rule.metric.clone(),
                    unit: query.unit.clone(),
                    before,
                    now,
                    ratio,
                    max_ratio: rule.max_ratio,
                    holding: rule.auto_hold,
                });
                if rule.auto_hold {
                    self.hold(deploy, &rule.metric, ratio);
                }
                return Outcome::Regressed;
            }
            if next >= deadline {
                break;
            }
        }
        match last {
            Ok(now) => Outcome::Healthy {
                ratio: ratio(now, reference),
            },
            Err(reason) => {
                self.report(unwatched(reason));
                Outcome::Unwatched
            }
        }
    }

    /// The metric's mean level over the baseline stretch before `at`.
    async fn level_before(&self, query: &Query, at: Millis) -> Result<f64, String> {
        let until = at as f64 / 1000.0;
        let span = self.config.metrics.watch_baseline;
        let from = until - span.as_secs_f64();
        let series = self
            .metrics
            .range(query, from, until, (span.as_secs_f64() / 60.0).ceil())
            .await
            .map_err(|e| e.to_string())?;
        level(&series).ok_or_else(|| {
            format!(
                "it had no data in the {} before the deploy",
                crate::chat::text::human_duration(span)
            )
        })
    }

    /// The metric now: the largest series (a watched query should return one).
    async fn current(&self, query: &Query) -> Result<f64, String> {
        let samples = self
            .metrics
            .instant(query)
            .await
            .map_err(|e| e.to_string())?;
        samples
            .iter()
            .map(|s| s.value)
            .filter(|v| v.is_finite())
            .reduce(f64::max)
            .ok_or_else(|| "it returned no number".to_owned())
    }

    /// Logs a report, then publishes it.
    fn report(&self, report: WatchReport) {
        let text = log_text(&report);
        let deploy = report.deploy();
        let entry = NewEntry {
            run_id: deploy.run_id,
            announce: true,
            ..NewEntry::note("lever", Some(&deploy.target), &text)
        };
        match self.store.append_log(&entry) {
            Ok(entry) => self.events.publish(Event::Watch { report, entry }),
            Err(error) => {
                tracing::error!(%error, text, "a deploy watch report could not be logged")
            }
        }
    }

    fn hold(&self, deploy: &Watched, metric: &str, ratio: f64) {
        let already = self
            .deploys
            .holds()
            .map(|holds| holds.iter().any(|h| h.covers(&deploy.target)))
            .unwrap_or(false);
        if already {
            return;
        }
        let lever = Identity {
            nick: "lever".into(),
            user: "watch".into(),
            host: "metrics".into(),
            account: None,
        };
        let reason = format!(
            "{metric} {}× its level before {}",
            ratio_text(ratio),
            describe(deploy)
        );
        if let Err(error) = self
            .deploys
            .hold(Some(&deploy.target), &lever, &reason, None)
        {
            tracing::error!(%error, target = %deploy.target, "a watch could not place its hold");
        }
    }
}

/// How many times `reference` the value is; a metric that stays at 0 is level (ratio 1).
fn ratio(now: f64, reference: f64) -> f64 {
    if reference > 0.0 {
        now / reference
    } else if now > 0.0 {
        f64::INFINITY
    } else {
        1.0
    }
}

/// The mean over time of the largest series at each instant; `None` without any number.
fn level(series: &[super::Series]) -> Option<f64> {
    let mut by_time: BTreeMap<i64, f64> = BTreeMap::new();
    for (t, v) in series.iter().flat_map(|s| &s.points) {
        if v.is_finite() {
            let slot = by_time.entry((t * 1000.0) as i64).or_insert(*v);
            *slot = slot.max(*v);
        }
    }
    if by_time.is_empty() {
        return None;
    }
    Some(by_time.values().sum::<f64>() / by_time.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Series;

    fn deploy() -> Watched {
        Watched {
            target: "site".into(),
            user: "alice".into(),
            run_id: Some(12),
            version: Some("abc123".into()),
            started_at: 0,
            finished_at: 0,
        }
    }

    #[test]
    fn the_level_before_is_the_mean_of_the_largest_series() {
        let series = [
            Series {
                labels: Default::default(),
                points: vec![(1.0, 1.0), (2.0, 3.0), (3.0, f64::NAN)],
            },
            Series {
                labels: Default::default(),
                points: vec![(1.0, 2.0), (2.0, 1.0)],
            },
        ];
        assert_eq!(level(&series), Some(2.5));
        assert_eq!(level(&[]), None);
    }

    #[test]
    fn ratios_treat_a_quiet_metric_as_level() {
        assert_eq!(ratio(3.0, 1.5), 2.0);
        assert_eq!(ratio(0.0, 0.0), 1.0);
        assert_eq!(ratio(0.1, 0.0), f64::INFINITY);
        assert_eq!(ratio_text(3.2468), "3.25");
        assert_eq!(ratio_text(25.4), "25");
        assert_eq!(ratio_text(f64::INFINITY), "∞");
    }

    #[test]
    fn reports_read_as_log_lines() {
        let regression = WatchReport::Regression {
            deploy: deploy(),
            metric: "errors".into(),
            unit: Some("req/s".into()),
            before: 0.4,
            now: 1.3,
            ratio: 3.25,
            max_ratio: 2.0,
            holding: false,
        };
        assert_eq!(
            log_text(&regression),
            "REGRESSION after site deploy #12 by alice: errors is 3.25× its level before the deploy \
             (1.3 req/s now, 0.4 req/s before; limit 2×)"
        );
        let clear = WatchReport::AllClear {
            deploy: Watched {
                run_id: None,
                ..deploy()
            },
            window: Duration::from_secs(600),
            ratios: vec![("errors".into(), 1.1), ("latency".into(), 0.95)],
        };
        assert_eq!(
            log_text(&clear),
            "site deploy abc123 by alice looks healthy after 10 min: errors 1.1×, latency 0.95× its level before"
        );
    }
}
