//! Shared metrics: numbers from Prometheus or Graphite for `!metric` and `!graph`, deploys
//! marked on graphs everywhere, deploys watched for regressions, and `!stats` from the store.
//!
//! ```text
//!  config [metrics.sources] ─ Metrics::resolve (name or raw expression) ─┐
//!                                                                       ▼
//!  prometheus / graphite: URL building and answer parsing (pure) ◀── Metrics::instant / range
//!  format:     numbers, units, series labels        sparkline: a range as ▁▂▃▅▇ with deploy marks
//!  markers:    finished deploys → Graphite events, Grafana annotations, StatsD
//!  watch:      finished deploys → compare health queries with their level before → announce
//!  stats:      deploys per day, stage/deploy times, failure rate, holds, recovery (pure)
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{Config, SourceConfig, SourceKind};

pub mod format;
mod graphite;
pub mod markers;
mod prometheus;
pub mod sparkline;
pub mod stats;
pub mod watch;

/// The largest answer read from a source.
const MAX_ANSWER: usize = 16 << 20;

/// Series labels: Prometheus' label set, or `{target: …}` for a Graphite series.
pub type Labels = BTreeMap<String, String>;

/// One series' current value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    /// May be NaN or infinite: Prometheus says so, and the user is told.
    pub value: f64,
}

/// One series over a range: `(unix seconds, value)`, missing points left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<(f64, f64)>,
}

/// Why a source gave no numbers. The text is for the channel: it names the source and what
/// to check.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    #[error("{name} at {url} did not answer: {reason} (check [metrics.sources.{name}] url)")]
    Unreachable {
        name: String,
        url: String,
        reason: String,
    },
    #[error("{name} could not run the query: {message}")]
    Refused { name: String, message: String },
    #[error("{name} answered something lever cannot read: {reason}")]
    Unreadable { name: String, reason: String },
}

/// What a command asked for, resolved against the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The source's name.
    pub source: String,
    pub expr: String,
    pub unit: Option<String>,
    /// The `[metrics.queries]` name, or `None` for a raw expression.
    pub name: Option<String>,
    /// Whose deploys a graph of it marks (`None`: every target's).
    pub target: Option<String>,
}

impl Query {
    /// How replies name it: the query's name, or the expression (shortened).
    pub fn title(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => crate::chat::text::truncate_chars(&self.expr, 60).into_owned(),
        }
    }

    pub fn is_raw(&self) -> bool {
        self.name.is_none()
    }
}

/// The query service: resolves names and asks sources.
pub struct Metrics {
    config: Arc<Config>,
    /// Built on the first query: a bot that never asks one does not load the HTTP and TLS
    /// stacks (a few MiB of resident code).
    http: std::sync::OnceLock<reqwest::Client>,
}

impl Metrics {
    pub fn new(config: Arc<Config>) -> Metrics {
        Metrics {
            config,
            http: std::sync::OnceLock::new(),
        }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            crate::infra::http_client::install_provider();
            reqwest::Client::builder()
                .build()
                .unwrap_or_else(|_| reqwest::Client::new())
        })
    }

    /// Reads what follows `!metric`/`!graph`: a `[metrics.queries]` name, `@source expr`, or a
    /// raw expression for the first source. Errors are for the user.
    pub fn resolve(&self, text: &str) -> Result<Query, String> {
        let metrics = &self.config.metrics;
        let Some(first) = metrics.sources.keys().next() else {
            return Err(
                "no metrics source is configured: add a [metrics.sources.NAME] section to the config"
                    .into(),
            );
        };
        let text = text.trim();
        if let Some(rest) = text.strip_prefix('@') {
            let (source, expr) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if !metrics.sources.contains_key(source) {
                return Err(format!(
                    "'{source}' is not a metrics source; sources: {}",
                    self.source_names()
                ));
            }
            if expr.trim().is_empty() {
                return Err(format!(
                    "what should {source} run? write @{source} <expression>"
                ));
            }
            return Ok(raw(source, expr.trim()));
        }
        if let Some(query) = metrics.queries.get(text) {
            return Ok(Query {
                source: query.source.clone().unwrap_or_else(|| first.clone()),
                expr: query.query.clone(),
                unit: query.unit.clone(),
                name: Some(text.to_owned()),
                target: query.target.clone(),
            });
        }
        Ok(raw(first, text))
    }

    /// The named queries, for messages.
    pub fn query_names(&self) -> String {
        let names: Vec<&str> = self
            .config
            .metrics
            .queries
            .keys()
            .map(String::as_str)
            .collect();
        if names.is_empty() {
            "none configured".into()
        } else {
            names.join(", ")
        }
    }

    fn source_names(&self) -> String {
        let names: Vec<&str> = self
            .config
            .metrics
            .sources
            .keys()
            .map(String::as_str)
            .collect();
        names.join(", ")
    }

    fn source(&self, name: &str) -> &SourceConfig {
        &self.config.metrics.sources[name]
    }

    /// The current value of every series the query returns.
    pub async fn instant(&self, query: &Query) -> Result<Vec<Sample>, SourceError> {
        let source = self.source(&query.source);
        let now = unix_now();
        let url = match source.kind {
            SourceKind::Prometheus => prometheus::instant_url(&source.url, &query.expr),
            SourceKind::Graphite => graphite::instant_url(&source.url, &query.expr, now),
        };
        let body = self.get(&query.source, source, url).await?;
        let parsed = match source.kind {
            SourceKind::Prometheus => prometheus::parse_instant(&body),
            SourceKind::Graphite => graphite::parse_instant(&body),
        };
        parsed.map_err(|reason| self.unreadable(&query.source, reason))
    }

    /// The query over `[from, until]` (Unix seconds), a point every `step` seconds (Graphite
    /// consolidates to about as many points).
    pub async fn range(
        &self,
        query: &Query,
        from: f64,
        until: f64,
        step: f64,
    ) -> Result<Vec<Series>, SourceError> {
        let source = self.source(&query.source);
        let url = match source.kind {
            SourceKind::Prometheus => {
                prometheus::range_url(&source.url, &query.expr, from, until, step)
            }
            SourceKind::Graphite => {
                let points = ((until - from) / step).round().max(1.0) as usize;
                graphite::range_url(&source.url, &query.expr, from, until, points)
            }
        };
        let body = self.get(&query.source, source, url).await?;
        let parsed = match source.kind {
            SourceKind::Prometheus => prometheus::parse_range(&body),
            SourceKind::Graphite => graphite::parse_range(&body),
        };
        parsed.map_err(|reason| self.unreadable(&query.source, reason))
    }

    /// The source's own graph page for `query` over the last `range`, when configured.
    pub fn graph_link(&self, query: &Query, range: Duration, until: f64) -> Option<String> {
        let template = self.source(&query.source).graph_url.as_ref()?;
        let encoded: String = reqwest::Url::parse_with_params("x:", [("q", &query.expr)])
            .ok()?
            .query()?
            .strip_prefix("q=")?
            .to_owned();
        Some(
            template
                .replace("{query}", &encoded)
                .replace("{range}", &format::range(range))
                .replace(
                    "{from}",
                    &format!("{}", (until - range.as_secs_f64()) as i64),
                )
                .replace("{until}", &format!("{}", until as i64)),
        )
    }

    fn unreadable(&self, source: &str, reason: String) -> SourceError {
        SourceError::Unreadable {
            name: source.to_owned(),
            reason,
        }
    }

    /// GETs `url` from a source: its auth header, its timeout, and its error text made short.
    async fn get(
        &self,
        name: &str,
        source: &SourceConfig,
        url: reqwest::Url,
    ) -> Result<String, SourceError> {
        tracing::debug!(source = name, %url, "metrics query");
        let mut request = self.http().get(url).timeout(source.timeout);
        if let Some(auth) = &source.auth {
            request = request.header(source.auth_header.as_str(), auth.expose());
        }
        let unreachable = |reason: String| SourceError::Unreachable {
            name: name.to_owned(),
            url: source.url.clone(),
            reason,
        };
        let mut response = request.send().await.map_err(|e| {
            unreachable(if e.is_timeout() {
                format!(
                    "no answer within {}",
                    crate::chat::text::human_duration(source.timeout)
                )
            } else {
                crate::infra::http_client::error_chain(&e)
            })
        })?;
        let status = response.status();
        // Bounded: `{__name__=~".+"}` on a big Prometheus answers hundreds of megabytes.
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unreachable(crate::infra::http_client::error_chain(&e)))?
        {
            if bytes.len() + chunk.len() > MAX_ANSWER {
                return Err(SourceError::Refused {
                    name: name.to_owned(),
                    message: format!(
                        "its answer is over {} MiB; narrow the query (sum, topk, a label filter)",
                        MAX_ANSWER >> 20
                    ),
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = String::from_utf8_lossy(&bytes).into_owned();
        if status.is_success() {
            return Ok(body);
        }
        let message = match source.kind {
            SourceKind::Prometheus => prometheus::error_message(&body),
            SourceKind::Graphite => None,
        }
        .unwrap_or_else(|| body.trim().to_owned());
        // One line: error pages are often several.
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        let message = if message.is_empty() {
            format!("HTTP {}", status.as_u16())
        } else {
            format!("{} (HTTP {})", message, status.as_u16())
        };
        Err(SourceError::Refused {
            name: name.to_owned(),
            message: crate::chat::text::truncate_chars(
                &crate::chat::text::sanitize_line(&message),
                200,
            )
            .into_owned(),
        })
    }
}

fn raw(source: &str, expr: &str) -> Query {
    Query {
        source: source.to_owned(),
        expr: expr.to_owned(),
        unit: None,
        name: None,
        target: None,
    }
}

/// Now, in Unix seconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A sample value as a source writes it: a number, `NaN`, `+Inf`, `-Inf`.
fn parse_value(text: &str) -> Option<f64> {
    match text.trim() {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse::<f64>().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(extra: &str) -> Metrics {
        let text = format!("[irc]\nserver = \"irc.test\"\n{extra}");
        let config = Config::from_toml(&text, "test", ".".into()).unwrap();
        Metrics::new(Arc::new(config))
    }

    const SOURCES: &str = "[metrics.sources.prom]\nkind = \"prometheus\"\nurl = \"http://127.0.0.1:9090\"\n\
        graph_url = \"https://prom.example/graph?g0.expr={query}&g0.range_input={range}\"\n\
        [metrics.sources.graphite]\nkind = \"graphite\"\nurl = \"http://127.0.0.1:8080\"\n\
        [metrics.queries.errors]\nquery = 'sum(rate(http_requests_total{code=~\"5..\"}[5m]))'\nunit = \"req/s\"\n\
        [metrics.queries.latency]\nsource = \"graphite\"\nquery = \"lever.web.latency_ms\"\nunit = \"ms\"\n";

    #[test]
    fn names_raw_expressions_and_sources_resolve() {
        let m = metrics(SOURCES);
        let errors = m.resolve("errors").unwrap();
        assert_eq!(errors.source, "prom");
        assert_eq!(errors.unit.as_deref(), Some("req/s"));
        assert!(!errors.is_raw());
        assert_eq!(m.resolve("latency").unwrap().source, "graphite");
        let raw = m.resolve("up{job=\"node\"}").unwrap();
        assert!(raw.is_raw());
        assert_eq!(
            (raw.source.as_str(), raw.expr.as_str()),
            ("prom", "up{job=\"node\"}")
        );
        let at = m.resolve("@graphite sumSeries(lever.*)").unwrap();
        assert_eq!(
            (at.source.as_str(), at.expr.as_str()),
            ("graphite", "sumSeries(lever.*)")
        );
        assert_eq!(
            m.resolve("@nope up").unwrap_err(),
            "'nope' is not a metrics source; sources: prom, graphite"
        );
        assert!(m
            .resolve("@prom")
            .unwrap_err()
            .contains("write @prom <expression>"));
        assert!(metrics("")
            .resolve("up")
            .unwrap_err()
            .contains("[metrics.sources.NAME]"));
    }

    #[test]
    fn the_graph_link_encodes_the_query() {
        let m = metrics(SOURCES);
        let q = m.resolve("errors").unwrap();
        let link = m.graph_link(&q, Duration::from_secs(3600), 0.0).unwrap();
        assert_eq!(
            link,
            "https://prom.example/graph?g0.expr=sum%28rate%28http_requests_total%7Bcode%3D%7E%225..%22%7D%5B5m%5D%29%29&g0.range_input=1h"
        );
        assert_eq!(
            m.graph_link(&m.resolve("latency").unwrap(), Duration::from_secs(60), 0.0),
            None
        );
    }

    #[test]
    fn config_mistakes_name_the_key() {
        let err = |extra: &str| {
            let text = format!("[irc]\nserver = \"irc.test\"\n{extra}");
            Config::from_toml(&text, "test", ".".into())
                .unwrap_err()
                .to_string()
        };
        assert!(err("[metrics.queries.errors]\nquery = \"up\"\n")
            .contains("metrics.queries.errors.source: no [metrics.sources.NAME]"));
        assert!(
            err("[metrics.sources.p]\nkind = \"influx\"\nurl = \"http://x\"\n")
                .contains("metrics.sources.p.kind")
        );
        assert!(
            err("[metrics.sources.p]\nkind = \"prometheus\"\nurl = \"localhost:9090\"\n")
                .contains("metrics.sources.p.url: must be an http")
        );
        assert!(err(&format!(
            "{SOURCES}[metrics.markers]\ngrafana_url = \"http://g\"\n"
        ))
        .contains("metrics.markers.grafana_token"));
        assert!(err(&format!(
            "{SOURCES}[metrics.markers]\nstatsd = \"localhost\"\n"
        ))
        .contains("metrics.markers.statsd: 'localhost' is not host:port"));
        let target = "[targets.site]\n[[targets.site.deploy]]\nname = \"s\"\nrun = [\"true\"]\n";
        assert!(err(&format!(
            "{SOURCES}{target}[[targets.site.watch]]\nmetric = \"nope\"\nmax_ratio = 2.0\nfor = \"10m\"\n"
        ))
        .contains("targets.site.watch[0].metric: 'nope' is not a [metrics.queries] entry"));
        assert!(err(&format!(
            "{SOURCES}{target}[[targets.site.watch]]\nmetric = \"errors\"\nmax_ratio = 0.5\nfor = \"10m\"\n"
        ))
        .contains("targets.site.watch[0].max_ratio: must be a number above 1"));
    }

    #[test]
    fn values_read_like_prometheus_writes_them() {
        assert_eq!(parse_value("7"), Some(7.0));
        assert_eq!(parse_value("1e-3"), Some(0.001));
        assert!(parse_value("NaN").unwrap().is_nan());
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_value("seven"), None);
    }
}
