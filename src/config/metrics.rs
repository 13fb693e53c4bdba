//! `[metrics]`: where `!metric` and `!graph` read numbers (Prometheus, Graphite), the named
//! queries people type, where finished deploys are marked (Graphite events, Grafana
//! annotations, StatsD), and how deploys are watched (`[targets.NAME] watch`).

use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use super::{duration, Invalid, Secret};

/// `[metrics]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where numbers come from, by name; the first is the default for raw expressions.
    #[serde(default)]
    pub sources: IndexMap<String, SourceConfig>,
    /// Named queries: `!metric errors`.
    #[serde(default)]
    pub queries: IndexMap<String, QueryConfig>,
    /// Where each finished deploy is marked, so graphs everywhere show it.
    #[serde(default)]
    pub markers: MarkersConfig,
    /// How often a watched metric is read after a deploy. Default: "30s".
    #[serde(default = "default_watch_every", with = "duration")]
    pub watch_every: Duration,
    /// The stretch before a deploy whose mean level a watched metric is compared with.
    /// Default: "30m".
    #[serde(default = "default_watch_baseline", with = "duration")]
    pub watch_baseline: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            sources: IndexMap::new(),
            queries: IndexMap::new(),
            markers: MarkersConfig::default(),
            watch_every: default_watch_every(),
            watch_baseline: default_watch_baseline(),
        }
    }
}

fn default_watch_every() -> Duration {
    Duration::from_secs(30)
}
fn default_watch_baseline() -> Duration {
    Duration::from_secs(30 * 60)
}

/// What speaks a source's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Prometheus' HTTP API (`/api/v1/query`, `/api/v1/query_range`); also Thanos, Mimir,
    /// VictoriaMetrics.
    Prometheus,
    /// Graphite's render API (`/render?format=json`).
    Graphite,
}

/// `[metrics.sources.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// "prometheus" or "graphite". Required.
    pub kind: SourceKind,
    /// The API's base URL: "http://127.0.0.1:9090". Required.
    pub url: String,
    /// Sent as the `auth_header` header with every query ("Bearer …", "Basic …"). Better set
    /// with `LEVER_METRICS__SOURCES__NAME__AUTH`.
    #[serde(default)]
    pub auth: Option<Secret>,
    /// The header `auth` goes in. Default: "Authorization".
    #[serde(default = "default_auth_header")]
    pub auth_header: String,
    /// A query taking longer is reported as unanswered. Default: "10s".
    #[serde(default = "default_source_timeout", with = "duration")]
    pub timeout: Duration,
    /// A link to the source's own graph page, shown by `!graph`: `{query}` (URL-encoded),
    /// `{range}` ("1h"), `{from}` and `{until}` (Unix seconds) are replaced. For Prometheus:
    /// "https://prom.example/graph?g0.expr={query}&g0.range_input={range}".
    #[serde(default)]
    pub graph_url: Option<String>,
}

fn default_auth_header() -> String {
    "Authorization".into()
}
fn default_source_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `[metrics.queries.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// A `[metrics.sources]` name. Default: the first source.
    #[serde(default)]
    pub source: Option<String>,
    /// The expression, in the source's language (PromQL, a Graphite target). Required.
    pub query: String,
    /// Shown after values: "req/s", "ms", "%".
    #[serde(default)]
    pub unit: Option<String>,
    /// Whose deploys `!graph` marks on this query's graph. Default: every target's.
    #[serde(default)]
    pub target: Option<String>,
}

/// `[metrics.markers]`: every finished deploy (and rollback) is sent to each one configured.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkersConfig {
    /// Graphite-web's base URL; deploys are POSTed to `/events/`.
    #[serde(default)]
    pub graphite_url: Option<String>,
    /// Grafana's base URL; deploys are POSTed to `/api/annotations` (needs `grafana_token`).
    #[serde(default)]
    pub grafana_url: Option<String>,
    /// A Grafana service-account token. Better set with `LEVER_METRICS__MARKERS__GRAFANA_TOKEN`.
    #[serde(default)]
    pub grafana_token: Option<Secret>,
    /// A StatsD server, "127.0.0.1:8125": each deploy counts `<statsd_prefix>.<target>` and
    /// times `<statsd_prefix>.<target>.duration`.
    #[serde(default)]
    pub statsd: Option<String>,
    /// Default: "deploys".
    #[serde(default = "default_statsd_prefix")]
    pub statsd_prefix: String,
}

impl Default for MarkersConfig {
    fn default() -> Self {
        Self {
            graphite_url: None,
            grafana_url: None,
            grafana_token: None,
            statsd: None,
            statsd_prefix: default_statsd_prefix(),
        }
    }
}

fn default_statsd_prefix() -> String {
    "deploys".into()
}

/// One health rule in `[targets.NAME] watch`:
/// `{ metric = "errors", max_ratio = 2.0, for = "10m" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchRule {
    /// A `[metrics.queries]` name. Required.
    pub metric: String,
    /// A regression is the metric above this many times its level before the deploy. Required.
    pub max_ratio: f64,
    /// How long after the deploy the metric is watched. Required.
    #[serde(rename = "for", with = "duration")]
    pub window: Duration,
    /// The level before the deploy is taken as at least this, so a metric that was 0 does not
    /// make any blip a regression. Default: 0.
    #[serde(default)]
    pub floor: f64,
    /// On a regression lever places the hold itself. Default: false.
    #[serde(default)]
    pub auto_hold: bool,
}

/// Names that `!metric` and `!graph` read as something else.
fn is_query_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        reqwest::Url::parse(url)
            .map(|_| ())
            .map_err(|e| format!("'{url}' is not a URL: {e}"))
    } else {
        Err("must be an http:// or https:// URL".into())
    }
}

impl MetricsConfig {
    /// Checks sources, queries (whose `target` must be one of `targets`), markers and the
    /// watch timing.
    pub(super) fn validate(&self, targets: &[&str]) -> Result<(), Invalid> {
        for (name, source) in &self.sources {
            let key = |rest: &str| format!("metrics.sources.{name}.{rest}");
            if !is_query_name(name) {
                return Err(Invalid::new(
                    format!("metrics.sources.{name}"),
                    "a source name is a short word: letters, digits, '-', '_', '.'",
                ));
            }
            check_url(&source.url).map_err(|why| Invalid::new(key("url"), why))?;
            if source.timeout < Duration::from_millis(100) {
                return Err(Invalid::new(key("timeout"), "must be at least 100ms"));
            }
            let header_ok = !source.auth_header.is_empty()
                && source
                    .auth_header
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !header_ok {
                return Err(Invalid::new(key("auth_header"), "must be a header name"));
            }
            if let Some(auth) = &source.auth {
                if auth.expose().chars().any(char::is_control) {
                    return Err(Invalid::new(
                        key("auth"),
                        "must not contain control characters",
                    ));
                }
            }
            if let Some(link) = &source.graph_url {
                let filled = link
                    .replace("{query}", "x")
                    .replace("{range}", "1h")
                    .replace("{from}", "0")
                    .replace("{until}", "0");
                check_url(&filled).map_err(|why| Invalid::new(key("graph_url"), why))?;
            }
        }
        for (name, query) in &self.queries {
            let key = |rest: &str| format!("metrics.queries.{name}.{rest}");
            if !is_query_name(name) {
                return Err(Invalid::new(
                    format!("metrics.queries.{name}"),
                    "a query name is a short word people type: letters, digits, '-', '_', '.'",
                ));
            }
            match &query.source {
                Some(source) if !self.sources.contains_key(source) => {
                    return Err(Invalid::new(
                        key("source"),
                        format!("'{source}' is not a [metrics.sources] entry"),
                    ))
                }
                None if self.sources.is_empty() => {
                    return Err(Invalid::new(
                        key("source"),
                        "no [metrics.sources.NAME] is configured to run it on",
                    ))
                }
                _ => {}
            }
            if query.query.trim().is_empty() {
                return Err(Invalid::new(key("query"), "is empty"));
            }
            if let Some(target) = &query.target {
                if !targets.contains(&target.as_str()) {
                    return Err(Invalid::new(
                        key("target"),
                        format!("'{target}' is not a target"),
                    ));
                }
            }
        }
        let markers = &self.markers;
        for (key, url) in [
            ("graphite_url", &markers.graphite_url),
            ("grafana_url", &markers.grafana_url),
        ] {
            if let Some(url) = url {
                check_url(url)
                    .map_err(|why| Invalid::new(format!("metrics.markers.{key}"), why))?;
            }
        }
        if markers.grafana_url.is_some() != markers.grafana_token.is_some() {
            return Err(Invalid::new(
                "metrics.markers.grafana_token",
                "grafana_url and grafana_token go together (set LEVER_METRICS__MARKERS__GRAFANA_TOKEN)",
            ));
        }
        if let Some(statsd) = &markers.statsd {
            let valid = statsd
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !valid {
                return Err(Invalid::new(
                    "metrics.markers.statsd",
                    format!("'{statsd}' is not host:port, e.g. \"127.0.0.1:8125\""),
                ));
            }
        }
        if !is_query_name(&markers.statsd_prefix) {
            return Err(Invalid::new(
                "metrics.markers.statsd_prefix",
                "must be a metric name part such as \"deploys\"",
            ));
        }
        if self.watch_every < Duration::from_millis(100) {
            return Err(Invalid::new(
                "metrics.watch_every",
                "must be at least 100ms",
            ));
        }
        if self.watch_baseline < Duration::from_secs(1) {
            return Err(Invalid::new(
                "metrics.watch_baseline",
                "must be at least 1s",
            ));
        }
        Ok(())
    }
}

impl WatchRule {
    /// Checks one rule of a target's `watch` (`key` is `targets.NAME.watch[i]`): it must name
    /// one of `queries`, and its numbers must make sense.
    pub(super) fn validate(
        &self,
        key: &str,
        queries: &IndexMap<String, QueryConfig>,
    ) -> Result<(), Invalid> {
        let key = |rest: &str| format!("{key}.{rest}");
        if !queries.contains_key(&self.metric) {
            return Err(Invalid::new(
                key("metric"),
                format!("'{}' is not a [metrics.queries] entry", self.metric),
            ));
        }
        if !(self.max_ratio.is_finite() && self.max_ratio > 1.0) {
            return Err(Invalid::new(
                key("max_ratio"),
                "must be a number above 1, e.g. 2.0 for twice the level before",
            ));
        }
        if self.window < Duration::from_secs(1) || self.window > Duration::from_secs(86_400) {
            return Err(Invalid::new(key("for"), "must be between 1s and 24h"));
        }
        if !(self.floor.is_finite() && self.floor >= 0.0) {
            return Err(Invalid::new(key("floor"), "must be a number, 0 or more"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(text: &str) -> MetricsConfig {
        toml::from_str(text).expect("a [metrics] section")
    }

    #[test]
    fn sources_are_checked_with_their_key() {
        let source = |rest: &str| {
            format!("[sources.prom]\nkind = \"prometheus\"\nurl = \"http://prom:9090\"\n{rest}")
        };
        assert_eq!(metrics(&source("")).validate(&[]), Ok(()));
        assert_eq!(
            metrics(&source("timeout = \"10ms\"\n")).validate(&[]),
            Err(Invalid::new(
                "metrics.sources.prom.timeout",
                "must be at least 100ms"
            ))
        );
        assert_eq!(
            metrics(&source("auth_header = \"X Auth\"\n")).validate(&[]),
            Err(Invalid::new(
                "metrics.sources.prom.auth_header",
                "must be a header name"
            ))
        );
    }
}
