//! lever's own metrics, for `GET /metrics` in Prometheus' text format.
//!
//! Counters are kept here (commands by name and result, runs by target and outcome, HTTP
//! requests by route and status); gauges are read at scrape time from where the truth lives
//! (IRC state, outbox, store).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

use crate::events::{Event, Events};
use crate::store::Phase;

/// A counter's name and its label pairs, in order.
type Key = (&'static str, Vec<(&'static str, String)>);

#[derive(Default)]
pub struct Telemetry {
    counters: Mutex<BTreeMap<Key, u64>>,
}

/// Help text for each counter, printed once per family.
const HELP: &[(&str, &str)] = &[
    (
        "lever_commands_total",
        "Commands handled, by command and result.",
    ),
    (
        "lever_runs_total",
        "Runs finished, by target, phase and outcome.",
    ),
    (
        "lever_http_requests_total",
        "HTTP requests answered, by route and status.",
    ),
    ("lever_flag_changes_total", "Feature flag changes, by flag."),
    (
        "lever_ofrep_evaluations_total",
        "OFREP evaluation requests, by kind (single, bulk) and result.",
    ),
    (
        "lever_deploy_markers_total",
        "Deploy markers sent to metrics systems, by sink and result.",
    ),
];

impl Telemetry {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Adds one to a counter.
    pub fn count(&self, name: &'static str, labels: Vec<(&'static str, String)>) {
        *self
            .counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((name, labels))
            .or_default() += 1;
    }

    /// Counts finished runs and flag changes from the event bus.
    pub fn count_events(self: &Arc<Self>, events: &Events) {
        let mut deliveries = events.subscribe();
        let telemetry = self.clone();
        tokio::spawn(async move {
            while let Some(delivery) = deliveries.recv().await {
                if let Event::FlagChanged { state, .. } = &delivery.event {
                    telemetry.count(
                        "lever_flag_changes_total",
                        vec![("flag", state.key.clone())],
                    );
                }
                if let Event::RunFinished { run, .. } = &delivery.event {
                    let phase = match run.phase {
                        Phase::Stage => "stage",
                        Phase::Deploy => "deploy",
                        Phase::Rollback => "rollback",
                    };
                    telemetry.count(
                        "lever_runs_total",
                        vec![
                            ("target", run.target.clone()),
                            ("phase", phase.to_owned()),
                            ("outcome", run.state.as_str().to_owned()),
                        ],
                    );
                }
            }
        });
    }

    /// The counters in Prometheus' text exposition format.
    pub fn render_counters(&self, out: &mut String) {
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        for (family, help) in HELP {
            let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} counter");
            for ((name, labels), value) in counters.iter().filter(|((n, _), _)| n == family) {
                let _ = writeln!(out, "{name}{} {value}", label_text(labels));
            }
        }
    }
}

/// Writes one gauge family with its samples.
pub fn gauge(
    out: &mut String,
    name: &str,
    help: &str,
    samples: &[(Vec<(&'static str, String)>, f64)],
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{} {value}", label_text(labels));
    }
}

/// `{a="x",b="y"}`, with label values escaped as the format requires.
fn label_text(labels: &[(&'static str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", pairs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_the_exposition_format() {
        let t = Telemetry::default();
        t.count(
            "lever_commands_total",
            vec![("command", "ping".into()), ("result", "ok".into())],
        );
        t.count(
            "lever_commands_total",
            vec![("command", "ping".into()), ("result", "ok".into())],
        );
        t.count(
            "lever_http_requests_total",
            vec![("route", "/hooks/deploy".into()), ("status", "401".into())],
        );
        let mut out = String::new();
        t.render_counters(&mut out);
        assert!(out.contains("# TYPE lever_commands_total counter\nlever_commands_total{command=\"ping\",result=\"ok\"} 2\n"), "{out}");
        assert!(
            out.contains("lever_http_requests_total{route=\"/hooks/deploy\",status=\"401\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("# TYPE lever_runs_total counter\n"),
            "families are declared even when empty"
        );
        let mut g = String::new();
        gauge(
            &mut g,
            "lever_hold_active",
            "Holds.",
            &[(vec![("target", "we\"ird".into())], 1.0)],
        );
        assert_eq!(g, "# HELP lever_hold_active Holds.\n# TYPE lever_hold_active gauge\nlever_hold_active{target=\"we\\\"ird\"} 1\n");
    }
}
