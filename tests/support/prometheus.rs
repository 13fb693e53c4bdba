//! A real Prometheus (Debian's `prometheus`) for one test, scraping a metrics page the test
//! serves from a file every second. Changing the file changes what Prometheus sees at its next
//! scrape; a deploy step can change it too (`cp after.prom metrics.prom`), which is how a test
//! makes a deploy cause a regression.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::alertmanager::http;
use super::daemon::{ready_at, Daemon};

/// Finds the Prometheus binary, or fails naming the set-up script.
pub fn prometheus_binary() -> PathBuf {
    for candidate in ["/usr/bin/prometheus", "/usr/local/bin/prometheus"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!("prometheus not found: run scripts/setup.sh (it apt-installs it), then retry");
}

/// Serves `GET /metrics` from a file, read afresh for every request.
pub struct MetricsPage {
    pub port: u16,
    /// The file served; write it to change the metrics.
    pub file: PathBuf,
}

impl MetricsPage {
    pub fn serve(file: PathBuf) -> MetricsPage {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the metrics page");
        let port = listener.local_addr().expect("local address").port();
        let served = file.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                // The request head; the page is the same for every path.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let body = std::fs::read_to_string(&served).unwrap_or_default();
                let _ = write!(
                    &stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        MetricsPage { port, file }
    }

    pub fn set(&self, text: &str) {
        std::fs::write(&self.file, text).expect("write the metrics page");
    }
}

/// A private Prometheus scraping one page every second.
pub struct Prometheus {
    daemon: Daemon,
}

impl Prometheus {
    /// Starts Prometheus scraping `127.0.0.1:<page_port>/metrics` and waits until it is ready.
    pub fn start(page_port: u16) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: fixture\n    static_configs: [{{targets: ['127.0.0.1:{page_port}']}}]\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write prometheus.yml");
        let command = |dir: &Path, port: u16| {
            let mut command = Command::new(prometheus_binary());
            command
                .arg(format!(
                    "--config.file={}",
                    dir.join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"));
            command
        };
        Prometheus {
            daemon: Daemon::start("prometheus", dir, command, |port, log| {
                // Ours, not another test's that took the port: our own log names the address.
                log.contains(&format!("127.0.0.1:{port}")) && ready_at(port)
            }),
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.daemon.port)
    }

    /// Waits until `expr` evaluates to exactly `value` (as Prometheus writes it): the page's
    /// latest content has been scraped.
    pub fn wait_for_value(&self, expr: &str, value: &str) {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query", self.url()),
            [("query", expr)],
        )
        .expect("query URL");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = None;
        while Instant::now() < deadline {
            if let Ok((200, body)) = http(reqwest::Method::GET, url.as_str(), None, None) {
                if body.contains(&format!(",\"{value}\"]")) {
                    return;
                }
                last = Some(body);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "Prometheus never saw {expr} = {value}; last answer: {last:?}\n{}",
            self.daemon.log()
        );
    }
}
