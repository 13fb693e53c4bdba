//! Deploy markers: every finished deploy or rollback (lever's own, or one another tool reported)
//! is sent to the metrics systems configured in `[metrics.markers]`, so graphs everywhere show
//! when the site changed: a Graphite event, a Grafana annotation, a StatsD counter and timer.
//!
//! A marker is a courtesy, not a record (the deploy log is the record): each is tried once,
//! and a failure is logged and counted (`lever_deploy_markers_total`), never announced.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::config::{Config, MarkersConfig};
use crate::events::telemetry::Telemetry;
use crate::events::ExternalStatus;
use crate::events::{Event, Events};
use crate::store::{Millis, Phase, RunState};

/// How long a metrics system may take to take a marker.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A deploy, as the metrics systems are told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub target: String,
    /// "site deploy abc123 by alice".
    pub text: String,
    pub started_at: Millis,
    pub finished_at: Millis,
}

impl Marker {
    /// The marker for an event, if it is a finished deploy.
    pub fn from_event(event: &Event) -> Option<Marker> {
        match event {
            Event::RunFinished { run, .. } => {
                let what = match (run.phase, run.state) {
                    (Phase::Deploy, RunState::Succeeded) => "deploy",
                    (Phase::Rollback, RunState::Succeeded) => "rollback",
                    _ => return None,
                };
                let version = run
                    .version
                    .as_ref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default();
                Some(Marker {
                    target: run.target.clone(),
                    text: format!("{} {what}{version} by {}", run.target, run.user),
                    started_at: run.started_at,
                    finished_at: run.finished_at.unwrap_or(run.started_at),
                })
            }
            Event::ExternalDeploy { report, entry, .. }
                if report.status == ExternalStatus::Succeeded =>
            {
                let version = report
                    .version
                    .as_ref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default();
                Some(Marker {
                    target: report.target.clone(),
                    text: format!(
                        "{} deploy{version} by {} (via {})",
                        report.target, report.user, report.via
                    ),
                    started_at: entry.at,
                    finished_at: entry.at,
                })
            }
            _ => None,
        }
    }
}

/// Sends markers for every finished deploy published on `events`, if any sink is configured.
pub fn spawn(config: Arc<Config>, events: &Events, telemetry: Arc<Telemetry>) {
    let markers = &config.metrics.markers;
    if markers.graphite_url.is_none() && markers.grafana_url.is_none() && markers.statsd.is_none() {
        return;
    }
    crate::infra::http_client::install_provider();
    let http = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let mut deliveries = events.subscribe();
    tokio::spawn(async move {
        while let Some(delivery) = deliveries.recv().await {
            let Some(marker) = Marker::from_event(&delivery.event) else {
                continue;
            };
            // Sent in the background: a slow metrics system never delays the next marker.
            let (config, http, telemetry) = (config.clone(), http.clone(), telemetry.clone());
            tokio::spawn(async move {
                send_all(&config.metrics.markers, &http, &marker, &telemetry).await;
            });
        }
    });
}

async fn send_all(
    markers: &MarkersConfig,
    http: &reqwest::Client,
    marker: &Marker,
    telemetry: &Telemetry,
) {
    let tags = json!(["deploy", marker.target]);
    let mut results = Vec::new();
    if let Some(base) = &markers.graphite_url {
        let body = json!({
            "what": format!("{} deploy", marker.target),
            "tags": tags,
            "when": marker.finished_at / 1000,
            "data": marker.text,
        });
        let url = format!("{}/events/", base.trim_end_matches('/'));
        results.push(("graphite", post(http.post(url).json(&body)).await));
    }
    if let (Some(base), Some(token)) = (&markers.grafana_url, &markers.grafana_token) {
        let body = json!({
            "time": marker.started_at,
            "timeEnd": marker.finished_at,
            "tags": tags,
            "text": marker.text,
        });
        let url = format!("{}/api/annotations", base.trim_end_matches('/'));
        let request = http.post(url).bearer_auth(token.expose()).json(&body);
        results.push(("grafana", post(request).await));
    }
    if let Some(addr) = &markers.statsd {
        results.push(("statsd", statsd(addr, &markers.statsd_prefix, marker).await));
    }
    for (sink, result) in results {
        let outcome = match &result {
            Ok(()) => "ok",
            Err(_) => "error",
        };
        telemetry.count(
            "lever_deploy_markers_total",
            vec![("sink", sink.to_owned()), ("result", outcome.to_owned())],
        );
        if let Err(error) = result {
            tracing::warn!(sink, target = %marker.target, %error, "a deploy marker was not taken");
        }
    }
}

async fn post(request: reqwest::RequestBuilder) -> Result<(), String> {
    let response = request
        .send()
        .await
        .map_err(|e| crate::infra::http_client::error_chain(&e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(format!(
        "HTTP {}: {}",
        status.as_u16(),
        crate::chat::text::truncate_chars(body.trim(), 200)
    ))
}

/// The StatsD lines for a deploy: a count and how long it took.
pub fn statsd_lines(prefix: &str, marker: &Marker) -> String {
    let name = format!("{prefix}.{}", marker.target);
    format!(
        "{name}:1|c\n{name}.duration:{}|ms",
        (marker.finished_at - marker.started_at).max(0)
    )
}

async fn statsd(addr: &str, prefix: &str, marker: &Marker) -> Result<(), String> {
    let socket = tokio::net::UdpSocket::bind(if addr.starts_with('[') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    })
    .await
    .map_err(|e| e.to_string())?;
    socket
        .send_to(statsd_lines(prefix, marker).as_bytes(), addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statsd_counts_and_times_each_deploy() {
        let marker = Marker {
            target: "site".into(),
            text: "site deploy abc by alice".into(),
            started_at: 1_000,
            finished_at: 13_500,
        };
        assert_eq!(
            statsd_lines("deploys", &marker),
            "deploys.site:1|c\ndeploys.site.duration:12500|ms"
        );
    }
}
