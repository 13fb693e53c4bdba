//! A real Alertmanager (Debian's `prometheus-alertmanager`) for one test: its own ports, its
//! own folder, gossip off, and one webhook receiver pointing at lever's `/hooks/alertmanager`
//! with a bearer token. Timings are short (group_wait 1s, group_interval 2s) so a test hears a
//! notification within seconds; repeat_interval is an hour, so nothing repeats by itself.
//!
//! Alerts are posted straight to `/api/v2/alerts` (as Prometheus would) and resolved by posting
//! them again with `endsAt`; silences are read back from `/api/v2/silences`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Map, Value};

use super::daemon::{ready_at, Daemon};

/// group_interval in the generated config: how long a change to a notified group waits.
pub const GROUP_INTERVAL: Duration = Duration::from_secs(2);

/// Finds the Alertmanager binary, or fails naming the set-up script.
pub fn alertmanager_binary() -> PathBuf {
    for candidate in [
        "/usr/bin/prometheus-alertmanager",
        "/usr/local/bin/alertmanager",
        "/usr/bin/alertmanager",
    ] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!(
        "prometheus-alertmanager not found: run scripts/setup.sh (it apt-installs it), then retry"
    );
}

/// One alert as `/api/v2/alerts` takes it: labels and annotations.
pub fn alert(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Value {
    let map = |pairs: &[(&str, &str)]| -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect()
    };
    json!({ "labels": map(labels), "annotations": map(annotations) })
}

/// A plain HTTP request from a test: `(status, body)`, or why it could not be made.
pub fn http(
    method: reqwest::Method,
    url: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, String), String> {
    lever::infra::http_client::install_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let mut request = client.request(method, url);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| e.to_string())?;
        Ok((status, text))
    })
}

/// A private Alertmanager.
pub struct Alertmanager {
    daemon: Daemon,
}

impl Alertmanager {
    /// Starts Alertmanager notifying `webhook` (lever's `/hooks/alertmanager`) with
    /// `Authorization: Bearer <token>`, and waits until `/-/ready` answers.
    pub fn start(webhook: &str, token: &str) -> Alertmanager {
        Self::start_for(&[webhook], token)
    }

    /// Starts Alertmanager notifying each of `webhooks` (every lever sharing a store), as
    /// [`Alertmanager::start`] does one.
    pub fn start_for(webhooks: &[&str], token: &str) -> Alertmanager {
        let dir = tempfile::tempdir().expect("temp dir");
        let hooks: String = webhooks
            .iter()
            .map(|webhook| {
                format!(
                    "      - url: '{webhook}'\n        send_resolved: true\n        \
                     http_config:\n          authorization:\n            type: Bearer\n            \
                     credentials: '{token}'\n"
                )
            })
            .collect();
        let config = format!(
            "route:\n  receiver: lever\n  group_by: ['alertname']\n  group_wait: 1s\n  \
             group_interval: {}s\n  repeat_interval: 1h\n\
             receivers:\n  - name: lever\n    webhook_configs:\n{hooks}",
            GROUP_INTERVAL.as_secs()
        );
        std::fs::write(dir.path().join("alertmanager.yml"), config)
            .expect("write alertmanager.yml");
        let command = |dir: &Path, port: u16| {
            let mut command = Command::new(alertmanager_binary());
            command
                .arg(format!(
                    "--config.file={}",
                    dir.join("alertmanager.yml").display()
                ))
                .arg(format!("--storage.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!("--web.external-url=http://127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .arg("--log.level=debug");
            command
        };
        Alertmanager {
            daemon: Daemon::start("alertmanager", dir, command, |port, log| {
                // Ours, not another test's that took the port: our own log says it listens there.
                log.contains(&format!("address=127.0.0.1:{port}")) && ready_at(port)
            }),
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.daemon.port)
    }

    /// Posts alerts to `/api/v2/alerts`, as Prometheus does; fails unless Alertmanager takes them.
    pub fn post(&self, alerts: &[Value]) {
        let url = format!("{}/api/v2/alerts", self.url());
        match http(
            reqwest::Method::POST,
            &url,
            None,
            Some(&Value::from(alerts.to_vec())),
        ) {
            Ok((200, _)) => {}
            other => panic!("POST {url} failed: {other:?}\n{}", self.log()),
        }
    }

    /// Fires alerts (no `endsAt`: they stay firing for Alertmanager's resolve_timeout).
    pub fn fire(&self, alerts: &[Value]) {
        self.post(alerts);
    }

    /// Resolves alerts: the same labels again with `endsAt` = now.
    pub fn resolve(&self, alerts: &[Value]) {
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let resolved: Vec<Value> = alerts
            .iter()
            .map(|a| {
                let mut a = a.clone();
                a["endsAt"] = Value::from(now.clone());
                a
            })
            .collect();
        self.post(&resolved);
    }

    fn get_list(&self, path: &str) -> Vec<Value> {
        let url = format!("{}{path}", self.url());
        match http(reqwest::Method::GET, &url, None, None) {
            Ok((200, body)) => match serde_json::from_str(&body) {
                Ok(Value::Array(items)) => items,
                other => panic!("GET {url}: not a list: {other:?}"),
            },
            other => panic!("GET {url} failed: {other:?}\n{}", self.log()),
        }
    }

    /// `/api/v2/silences`: every silence Alertmanager holds (active, pending and expired).
    pub fn silences(&self) -> Vec<Value> {
        self.get_list("/api/v2/silences")
    }

    /// `/api/v2/alerts`: every alert Alertmanager holds.
    pub fn alerts(&self) -> Vec<Value> {
        self.get_list("/api/v2/alerts")
    }

    /// Waits (against a hang) until Alertmanager's log holds `text`; fails with the log.
    pub fn wait_for_log(&self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log().contains(text) {
            assert!(
                Instant::now() < deadline,
                "Alertmanager's log never said {text:?} within {within:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        self.daemon.log()
    }
}
