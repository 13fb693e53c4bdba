//! Alertmanager webhook ingest under a storm, end to end: a real ngIRCd (penalties off, as the
//! test rig runs it), lever's release binary with `[http]` and the default IRC throttle (burst 4,
//! one line a second) and `[alerts]` defaults (`lines_per_group = 4`, `lines_per_minute = 20`),
//! a raw IRC client in #ops counting what lever says, and plain HTTP/1.1 keep-alive clients
//! (std `TcpStream`, hand-written requests) posting version-4 notifications shaped like
//! Alertmanager 0.25's (`testdata/payloads/alertmanager-0.25-captured-*.json`).
//!
//! 1. storm at the rate: 10,000 alerts in one second, then Alertmanager's re-send of the
//!    same groups (which must all be duplicates), as (a) 100 groups x 100 alerts and (b) 10,000
//!    one-alert groups (`group_by: ['...']`); per notification latency, non-200s;
//! 2. lever's memory (VmRSS, VmHWM) before, after the storm, after an identical second storm,
//!    and after a storm of 10,000 new fingerprints;
//! 3. the channel: alert lines in the first minute (cap 20), the held-back summary once the
//!    minute is over, nothing for the duplicates, and `!ping` still answered;
//! 4. capacity: the same waves unpaced, each repetition on a fresh lever, with
//!    `lines_per_minute` 20 and 1,000,000 with the throttle off (ingest is not limited by IRC).
//!
//! Run: `cargo bench --bench webhook` (optionally `-- --reps N --threads N --skip-channel`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use support::{bot_config, free_port, Client, Ngircd};
use tempfile::TempDir;

const TOKEN: &str = "bench-token-0123456789abcdef";
const THREADS: usize = 8;
const DEFAULT_REPS: usize = 5;
/// The storm: this many alerts within `STORM_PACE`.
const STORM_ALERTS: usize = 10_000;
const STORM_PACE: Duration = Duration::from_secs(1);
const GROUPS: usize = 100;
const PER_GROUP: usize = 100;
/// lever's default `lines_per_minute`, and a cap IRC never reaches.
const CAP_DEFAULT: usize = 20;
const CAP_HUGE: usize = 1_000_000;
/// How long to wait for the held-back summary (the window is 60 s, checked every 5 s).
const SUMMARY_WAIT: Duration = Duration::from_secs(80);
/// How long to watch the channel after the duplicate storm.
const QUIET_WATCH: Duration = Duration::from_secs(8);
/// Second storm's memory may grow at most this much over the first's (KiB).
const SECOND_STORM_GROWTH_KIB: u64 = 1024;

// ---------------------------------------------------------------------------------------------
// lever's real binary, at the production log level.

struct RealLever {
    child: Child,
    dir: TempDir,
    http_port: u16,
}

impl RealLever {
    /// Starts lever and waits until `/readyz` says it is registered on IRC.
    fn start(irc_port: u16, lines_per_minute: Option<usize>) -> RealLever {
        for _ in 0..5 {
            let http_port = free_port();
            let config = lever_config(irc_port, http_port, lines_per_minute);
            let dir = tempfile::tempdir().expect("temp dir");
            std::fs::write(dir.path().join("bot.toml"), &config).expect("write bot.toml");
            let log = std::fs::File::create(dir.path().join("lever.log")).expect("log file");
            let child = Command::new(env!("CARGO_BIN_EXE_lever"))
                .args(["run", "--config"])
                .arg(dir.path().join("bot.toml"))
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start lever");
            let mut lever = RealLever {
                child,
                dir,
                http_port,
            };
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = lever.child.try_wait() {
                    break; // the port was taken meanwhile: try another
                }
                if let Ok((200, _)) = lever.get("/readyz") {
                    return lever;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!("lever did not become ready:\n{}", lever.log());
        }
        panic!("lever would not start");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("lever.log")).unwrap_or_default()
    }

    fn get(&self, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
        let mut conn = HttpConn::connect(self.http_port)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.http_port
        );
        conn.request(request.as_bytes())
    }

    /// `lever_outbox_depth` and `lever_outbox_dropped` from `/metrics`.
    fn outbox(&self) -> (f64, f64) {
        let (_, body) = self.get("/metrics").expect("GET /metrics");
        let text = String::from_utf8_lossy(&body);
        let gauge = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name) && !l.starts_with('#'))
                .and_then(|l| l.split_whitespace().last())
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN)
        };
        (gauge("lever_outbox_depth"), gauge("lever_outbox_dropped"))
    }

    /// SIGTERM with a short wait, then SIGKILL (a full outbox would take its whole flush time).
    fn stop(mut self, within: Duration) {
        support::signal(self.pid(), "TERM");
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RealLever {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn lever_config(irc_port: u16, http_port: u16, lines_per_minute: Option<usize>) -> String {
    // lever's default throttle, spelled out (the rig's bot_config turns it off otherwise).
    let mut rest = format!("[http]\nlisten = \"127.0.0.1:{http_port}\"\ntoken = \"{TOKEN}\"\n");
    let mut throttle = "burst = 4\nline_interval = \"1s\"";
    if let Some(n) = lines_per_minute {
        rest.push_str(&format!("\n[alerts]\nlines_per_minute = {n}\n"));
        // lever refuses a cap its throttle could never say; the huge cap goes with no throttle.
        if n > 64 {
            throttle = "burst = 4\nline_interval = \"0s\"";
        }
    }
    bot_config(irc_port, throttle, &rest)
}

/// Checks that the config the bench gives lever really has the defaults the bench claims.
fn check_config(irc_port: u16) {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = lever_config(irc_port, free_port(), None);
    let config = lever::config::Config::from_toml(&text, "bench bot.toml", dir.path().into())
        .unwrap_or_else(|e| panic!("bench config: {e}\n{text}"));
    assert_eq!(config.irc.burst, 4);
    assert_eq!(config.irc.line_interval, Duration::from_secs(1));
    assert_eq!(config.alerts.lines_per_group, 4);
    assert_eq!(config.alerts.lines_per_minute, CAP_DEFAULT);
    let http = config.http.as_ref().expect("[http]");
    assert_eq!(http.body_limit, 1024 * 1024);
}

// ---------------------------------------------------------------------------------------------
// Memory.

#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    rss: u64,
    hwm: u64,
    anon: u64,
}

fn mem_of(pid: u32) -> Mem {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("lever's status");
    let mut mem = Mem::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let n = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        match key {
            "VmRSS" => mem.rss = n,
            "VmHWM" => mem.hwm = n,
            "RssAnon" => mem.anon = n,
            _ => {}
        }
    }
    mem
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 by hand, keep-alive.

struct HttpConn {
    port: u16,
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl HttpConn {
    fn connect(port: u16) -> std::io::Result<HttpConn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(HttpConn {
            port,
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    fn reconnect(&mut self) -> std::io::Result<()> {
        *self = HttpConn::connect(self.port)?;
        Ok(())
    }

    /// Writes one whole request and reads its response: status and body.
    fn request(&mut self, request: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        self.writer.write_all(request)?;
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("status line"))?;
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').ok_or_else(|| bad("header"))?;
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse::<usize>().ok(),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| bad("chunk size"))?;
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(n) = length {
            body.resize(n, 0);
            self.reader.read_exact(&mut body)?;
        }
        if close {
            self.reconnect()?;
        }
        Ok((status, body))
    }
}

// ---------------------------------------------------------------------------------------------
// Notifications shaped like Alertmanager 0.25's.

/// One ready-to-write POST and how many alerts it carries.
struct Request {
    bytes: Vec<u8>,
    alerts: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// 100 groups by alertname, 100 alerts each: one notification per group.
    Grouped,
    /// `group_by: ['...']`: every alert its own group, 10,000 notifications of one alert.
    Single,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Grouped => "100 groups x 100 alerts",
            Shape::Single => "10,000 groups x 1 alert",
        }
    }
}

const NAMES: &[&str] = &[
    "HostDiskFull",
    "HighErrorRate",
    "NodeDown",
    "HighLatency",
    "TargetMissing",
];

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn alertname(seed: u64, group: usize) -> String {
    let name = NAMES[group % NAMES.len()];
    if seed == 0 {
        format!("{name}{group:03}")
    } else {
        format!("{name}{group:03}s{seed}")
    }
}

fn strings(pairs: &[(&str, String)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(v.as_str())))
        .collect()
}

/// One alert: labels, annotations (the summary names its instance, so a group of them has no
/// common summary and gets per-alert lines), times, fingerprint.
fn alert(seed: u64, group: usize, i: usize) -> (Map<String, Value>, Map<String, Value>, Value) {
    let name = alertname(seed, group);
    let instance = format!("node-{group:03}-{i:03}.dc1.example:9100");
    let severity = if group % 10 == 0 {
        "critical"
    } else {
        "warning"
    };
    let labels = strings(&[
        ("alertname", name.clone()),
        ("instance", instance.clone()),
        ("job", "node".into()),
        ("service", "fleet".into()),
        ("severity", severity.into()),
    ]);
    let annotations = strings(&[
        (
            "summary",
            format!("{name} on {instance}: {}% for 5m", 90 + i % 10),
        ),
        ("runbook_url", format!("https://runbooks.example/{name}")),
    ]);
    let fingerprint = format!(
        "{:016x}",
        splitmix((seed << 40) ^ ((group as u64) << 20) ^ i as u64)
    );
    let value = json!({
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": "2026-11-27T19:43:02.318455079Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": format!("http://prometheus.example:9090/graph?g0.expr=up%7Bgroup%3D%22{group}%22%7D&g0.tab=1"),
        "fingerprint": fingerprint,
    });
    (labels, annotations, value)
}

/// The labels/annotations every map in `maps` shares (what Alertmanager puts in `common*`).
fn common(maps: &[Map<String, Value>]) -> Map<String, Value> {
    let mut out = maps[0].clone();
    for m in &maps[1..] {
        out.retain(|k, v| m.get(k) == Some(v));
    }
    out
}

fn notification(seed: u64, group: usize, alerts: &[usize], group_by_all: bool) -> Value {
    let built: Vec<_> = alerts.iter().map(|&i| alert(seed, group, i)).collect();
    let labels: Vec<_> = built.iter().map(|b| b.0.clone()).collect();
    let annotations: Vec<_> = built.iter().map(|b| b.1.clone()).collect();
    let common_labels = common(&labels);
    let group_labels: Map<String, Value> = if group_by_all {
        common_labels.clone()
    } else {
        common_labels
            .iter()
            .filter(|(k, _)| *k == "alertname")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let key = group_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    json!({
        "receiver": "lever",
        "status": "firing",
        "alerts": built.into_iter().map(|b| b.2).collect::<Vec<_>>(),
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": common(&annotations),
        "externalURL": "http://alertmanager.example:9093",
        "version": "4",
        "groupKey": format!("{{}}:{{{key}}}"),
        "truncatedAlerts": 0,
    })
}

fn post(port: u16, body: &Value, alerts: usize) -> Request {
    let body = serde_json::to_vec(body).expect("json");
    let mut bytes = format!(
        "POST /hooks/alertmanager HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: Alertmanager/0.25.0\r\n\
         Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(&body);
    Request { bytes, alerts }
}

/// The notifications of one storm: `STORM_ALERTS` alerts with fingerprints from `seed`.
fn storm(port: u16, shape: Shape, seed: u64) -> Vec<Request> {
    let all: Vec<usize> = (0..PER_GROUP).collect();
    let mut out = Vec::new();
    match shape {
        Shape::Grouped => {
            for g in 0..GROUPS {
                out.push(post(port, &notification(seed, g, &all, false), PER_GROUP));
            }
        }
        Shape::Single => {
            // Interleaved as a storm arrives: every group's first instance, then the second, ...
            for i in 0..PER_GROUP {
                for g in 0..GROUPS {
                    out.push(post(port, &notification(seed, g, &[i], true), 1));
                }
            }
        }
    }
    assert_eq!(
        out.iter().map(|r| r.alerts).sum::<usize>(),
        STORM_ALERTS,
        "storm size"
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Sending a wave.

#[derive(Default)]
struct Wave {
    requests: usize,
    alerts_sent: usize,
    ok: usize,
    alerts_ok: usize,
    non_200: BTreeMap<u16, usize>,
    io_errors: usize,
    wall: Duration,
    latency_ms: Vec<f64>,
    /// How far behind its slot the latest request went out (paced waves).
    max_late_ms: f64,
    new: u64,
    duplicates: u64,
    lines: u64,
    held_back: u64,
}

impl Wave {
    fn alerts_per_s(&self) -> f64 {
        self.alerts_ok as f64 / self.wall.as_secs_f64()
    }

    fn lat(&self, q: f64) -> f64 {
        let mut v = self.latency_ms.clone();
        v.sort_by(f64::total_cmp);
        pct(&v, q)
    }

    fn summary(&self) -> String {
        let non_200 = if self.non_200.is_empty() && self.io_errors == 0 {
            "none".to_owned()
        } else {
            format!("{:?}, {} I/O errors", self.non_200, self.io_errors)
        };
        format!(
            "{} requests, {} alerts in {:.3} s: {} x 200 ({:.0} alerts/s, {:.0} notifications/s); \
             latency p50 {:.2} ms, p99 {:.2}, max {:.2}; late by up to {:.1} ms; non-200: {non_200}; \
             receipts: new {}, duplicates {}, lines {}, held back {}",
            self.requests,
            self.alerts_sent,
            self.wall.as_secs_f64(),
            self.ok,
            self.alerts_per_s(),
            self.ok as f64 / self.wall.as_secs_f64(),
            self.lat(0.5),
            self.lat(0.99),
            self.lat(1.0),
            self.max_late_ms,
            self.new,
            self.duplicates,
            self.lines,
            self.held_back,
        )
    }
}

struct Sample {
    latency_ms: f64,
    done: Instant,
    late_ms: f64,
    status: Option<u16>,
    alerts: usize,
    receipt: [u64; 4],
}

/// Sends `requests` over `threads` keep-alive connections, request `k` not before
/// `k * pace / n` (as fast as possible with a zero pace).
fn send_wave(port: u16, requests: &[Request], threads: usize, pace: Duration) -> Wave {
    let n = requests.len();
    let next = AtomicUsize::new(0);
    let conns: Vec<HttpConn> = (0..threads)
        .map(|_| HttpConn::connect(port).expect("connect to lever's HTTP port"))
        .collect();
    let t0 = Instant::now();
    let samples: Vec<Sample> = std::thread::scope(|scope| {
        let handles: Vec<_> = conns
            .into_iter()
            .map(|mut conn| {
                let next = &next;
                scope.spawn(move || {
                    let mut out = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= n {
                            break;
                        }
                        let due = t0 + pace.mul_f64(k as f64 / n as f64);
                        let now = Instant::now();
                        if due > now {
                            std::thread::sleep(due - now);
                        }
                        let sent = Instant::now();
                        let late_ms = sent.saturating_duration_since(due).as_secs_f64() * 1e3;
                        let result = conn.request(&requests[k].bytes);
                        let done = Instant::now();
                        let (status, receipt) = match result {
                            Ok((status, body)) => (Some(status), receipt_of(&body)),
                            Err(_) => {
                                let _ = conn.reconnect();
                                (None, [0; 4])
                            }
                        };
                        out.push(Sample {
                            latency_ms: (done - sent).as_secs_f64() * 1e3,
                            done,
                            late_ms,
                            status,
                            alerts: requests[k].alerts,
                            receipt,
                        });
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("sender thread"))
            .collect()
    });
    let mut wave = Wave {
        requests: n,
        alerts_sent: requests.iter().map(|r| r.alerts).sum(),
        ..Wave::default()
    };
    let mut last = t0;
    for s in &samples {
        last = last.max(s.done);
        wave.latency_ms.push(s.latency_ms);
        wave.max_late_ms = wave.max_late_ms.max(s.late_ms);
        match s.status {
            Some(200) => {
                wave.ok += 1;
                wave.alerts_ok += s.alerts;
            }
            Some(other) => *wave.non_200.entry(other).or_default() += 1,
            None => wave.io_errors += 1,
        }
        wave.new += s.receipt[0];
        wave.duplicates += s.receipt[1];
        wave.lines += s.receipt[2];
        wave.held_back += s.receipt[3];
    }
    wave.wall = last - t0;
    wave
}

fn receipt_of(body: &[u8]) -> [u64; 4] {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |k: &str| value.get(k).and_then(Value::as_u64).unwrap_or(0);
    [
        field("new"),
        field("duplicates"),
        field("lines"),
        field("held_back"),
    ]
}

// ---------------------------------------------------------------------------------------------
// The channel, as a raw client in #ops sees it (on its own thread, so it reads while the
// storm is sent and answers the server's PINGs).

struct Heard {
    at: Instant,
    /// PRIVMSG text, or `<JOIN>` / `<QUIT>` / `<PART>` for lever's membership changes.
    text: String,
}

struct Observer {
    heard: Arc<Mutex<Vec<Heard>>>,
    pings: mpsc::Sender<mpsc::Sender<Instant>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Observer {
    fn start(mut client: Client) -> Observer {
        let heard: Arc<Mutex<Vec<Heard>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (pings, requests) = mpsc::channel::<mpsc::Sender<Instant>>();
        let thread = {
            let heard = heard.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    while let Ok(reply) = requests.try_recv() {
                        client.privmsg("#ops", "!ping");
                        let _ = reply.send(Instant::now());
                    }
                    let Some(line) = client.next_line(Duration::from_millis(20)) else {
                        continue;
                    };
                    let at = Instant::now();
                    if !line.from.eq_ignore_ascii_case("lever") {
                        continue;
                    }
                    let text = match line.verb.as_str() {
                        "PRIVMSG" | "NOTICE" => line.text().to_owned(),
                        "JOIN" | "QUIT" | "PART" => format!("<{}>", line.verb),
                        _ => continue,
                    };
                    heard.lock().unwrap().push(Heard { at, text });
                }
            })
        };
        Observer {
            heard,
            pings,
            stop,
            thread: Some(thread),
        }
    }

    /// Lines lever said at or after `since`: (when, text).
    fn since(&self, since: Instant) -> Vec<(Instant, String)> {
        self.heard
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.at >= since)
            .map(|h| (h.at, h.text.clone()))
            .collect()
    }

    /// Waits up to `within` for a line from lever after `since` matching `matches`.
    fn wait_for(
        &self,
        since: Instant,
        within: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<Instant> {
        let deadline = Instant::now() + within;
        loop {
            if let Some((at, _)) = self.since(since).into_iter().find(|(_, t)| matches(t)) {
                return Some(at);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `!ping` in #ops; ms until lever's `pong` (None if none within 15 s).
    fn ping(&self) -> Option<f64> {
        let (tx, rx) = mpsc::channel();
        self.pings.send(tx).expect("observer thread");
        let sent = rx.recv().expect("observer thread");
        self.wait_for(sent, Duration::from_secs(15), |t| t == "pong")
            .map(|at| (at - sent).as_secs_f64() * 1e3)
    }

    fn wait_join(&self, since: Instant) {
        self.wait_for(since, Duration::from_secs(15), |t| t == "<JOIN>")
            .expect("lever's JOIN in #ops");
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn is_summary(text: &str) -> bool {
    text.starts_with("… held back ")
}

fn is_alert_line(text: &str) -> bool {
    text != "pong" && !text.starts_with('<') && !is_summary(text)
}

/// "… held back 380 alert lines …" → 380.
fn held_back_in(text: &str) -> Option<u64> {
    text.strip_prefix("… held back ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------------
// Statistics.

fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// "median (min..max)".
fn spread(xs: &[f64], decimals: usize) -> String {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.d$} ({:.d$}..{:.d$})", median(xs), lo, hi, d = decimals)
}

fn ms_or_none(v: Option<f64>) -> String {
    v.map_or("none".to_owned(), |v| format!("{v:.0} ms"))
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// What the paced storm on one lever showed.
struct StormResult {
    shape: Shape,
    wave_new: Wave,
    wave_resend: Wave,
    second: (Wave, Wave),
    fresh: Wave,
    mem_before: Mem,
    mem_after_first: Mem,
    mem_after_wait: Mem,
    mem_after_second: Mem,
    mem_after_fresh: Mem,
    lines_first_minute: usize,
    lines_before_summary: usize,
    irc_lines_total_first: usize,
    summary_after_first_line_s: Option<f64>,
    summary_after_storm_s: Option<f64>,
    summary_held_back: Option<u64>,
    lines_during_second: usize,
    /// Alert names in the headers heard in the first minute, in order.
    named_first_minute: Vec<String>,
    /// Of the critical alert names (every 10th group), how many the channel named at all
    /// (a header in the first minute or the summary).
    critical_named: usize,
    critical_sent: usize,
    pong_after_first_ms: Option<f64>,
    pong_after_second_ms: Option<f64>,
    pong_after_fresh_ms: Option<f64>,
    lever_rejoined: bool,
    reconnects_logged: usize,
    errors_logged: usize,
    alive: bool,
}

fn paced_storm(irc_port: u16, observer: &Observer, shape: Shape, threads: usize) -> StormResult {
    let started = Instant::now();
    let mut lever = RealLever::start(irc_port, None);
    observer.wait_join(started);
    let http = lever.http_port;
    let first = storm(http, shape, 0);
    let fresh = storm(http, shape, 1);
    // Let the join's own lines leave the throttle, then read idle memory.
    std::thread::sleep(Duration::from_secs(2));
    let mem_before = mem_of(lever.pid());

    println!("  storm 1 (fresh lever): {STORM_ALERTS} new alerts paced over {STORM_PACE:?}, then the same groups re-sent over {STORM_PACE:?}");
    let storm_start = Instant::now();
    let wave_new = send_wave(http, &first, threads, STORM_PACE);
    println!("    new:     {}", wave_new.summary());
    let wave_resend = send_wave(http, &first, threads, STORM_PACE);
    println!("    re-sent: {}", wave_resend.summary());
    std::thread::sleep(Duration::from_secs(1));
    let mem_after_first = mem_of(lever.pid());

    // The channel: wait for the held-back summary (the minute plus the 5 s check).
    let summary_at = observer.wait_for(storm_start, SUMMARY_WAIT, is_summary);
    let heard = observer.since(storm_start);
    let alert_lines: Vec<Instant> = heard
        .iter()
        .filter(|(_, t)| is_alert_line(t))
        .map(|(at, _)| *at)
        .collect();
    let first_line = alert_lines.first().copied();
    let lines_first_minute = first_line.map_or(0, |f| {
        alert_lines
            .iter()
            .filter(|at| **at < f + Duration::from_secs(60))
            .count()
    });
    let lines_before_summary = alert_lines
        .iter()
        .filter(|at| summary_at.is_none_or(|s| **at < s))
        .count();
    let summary_text = heard
        .iter()
        .find(|(_, t)| is_summary(t))
        .map(|(_, t)| t.clone());
    if let Some(text) = &summary_text {
        println!("    summary: {text}");
    }
    let first_minute: Vec<&str> = heard
        .iter()
        .filter(|(at, t)| {
            is_alert_line(t) && first_line.is_some_and(|f| *at < f + Duration::from_secs(60))
        })
        .map(|(_, t)| t.as_str())
        .collect();
    let named_first_minute: Vec<String> = first_minute
        .iter()
        .filter(|t| t.starts_with("[FIRING:"))
        .filter_map(|t| t.split_whitespace().nth(1).map(str::to_owned))
        .collect();
    let critical: Vec<String> = (0..GROUPS).step_by(10).map(|g| alertname(0, g)).collect();
    let critical_named = critical
        .iter()
        .filter(|name| {
            named_first_minute.contains(name)
                || summary_text
                    .as_deref()
                    .is_some_and(|t| t.contains(&format!("{name} ×")))
        })
        .count();
    let pong_after_first_ms = observer.ping();
    let mem_after_wait = mem_of(lever.pid());

    println!("  storm 2: the identical storm again (every alert a duplicate)");
    let second_start = Instant::now();
    let second_new = send_wave(http, &first, threads, STORM_PACE);
    println!("    again:   {}", second_new.summary());
    let second_resend = send_wave(http, &first, threads, STORM_PACE);
    println!("    re-sent: {}", second_resend.summary());
    std::thread::sleep(Duration::from_secs(1));
    let mem_after_second = mem_of(lever.pid());
    std::thread::sleep(QUIET_WATCH);
    let lines_during_second = observer
        .since(second_start)
        .iter()
        .filter(|(_, t)| is_alert_line(t) || is_summary(t))
        .count();
    let pong_after_second_ms = observer.ping();

    println!("  storm 3: {STORM_ALERTS} alerts with new fingerprints, paced over {STORM_PACE:?}");
    let fresh_wave = send_wave(http, &fresh, threads, STORM_PACE);
    println!("    new:     {}", fresh_wave.summary());
    std::thread::sleep(Duration::from_secs(1));
    let mem_after_fresh = mem_of(lever.pid());
    let pong_after_fresh_ms = observer.ping();

    let rejoined = observer
        .since(started)
        .iter()
        .filter(|(_, t)| t == "<JOIN>" || t == "<QUIT>" || t == "<PART>")
        .count()
        > 1;
    let log = lever.log();
    // "disconnected; reconnecting in …" is what lever logs when it loses the server.
    let reconnects_logged = log
        .lines()
        .filter(|l| l.contains("disconnected; reconnecting"))
        .count();
    let errors_logged = log.lines().filter(|l| l.contains(" ERROR ")).count();
    let alive = lever.alive();
    lever.stop(Duration::from_secs(2));
    StormResult {
        shape,
        wave_new,
        wave_resend,
        second: (second_new, second_resend),
        fresh: fresh_wave,
        mem_before,
        mem_after_first,
        mem_after_wait,
        mem_after_second,
        mem_after_fresh,
        lines_first_minute,
        lines_before_summary,
        irc_lines_total_first: alert_lines.len(),
        summary_after_first_line_s: summary_at
            .zip(first_line)
            .map(|(s, f)| (s - f).as_secs_f64()),
        summary_after_storm_s: summary_at.map(|s| (s - storm_start).as_secs_f64()),
        summary_held_back: summary_text.as_deref().and_then(held_back_in),
        lines_during_second,
        named_first_minute,
        critical_named,
        critical_sent: critical_len(),
        pong_after_first_ms,
        pong_after_second_ms,
        pong_after_fresh_ms,
        lever_rejoined: rejoined,
        reconnects_logged,
        errors_logged,
        alive,
    }
}

/// Alert names with severity "critical" in a storm (every 10th group).
fn critical_len() -> usize {
    (0..GROUPS).step_by(10).count()
}

/// One capacity repetition on a fresh lever: the storm unpaced, then its re-send unpaced.
struct CapacityRep {
    new: Wave,
    resend: Wave,
    hwm: u64,
    outbox_depth: f64,
    outbox_dropped: f64,
    pong_ms: Option<f64>,
}

fn capacity_rep(
    irc_port: u16,
    observer: &Observer,
    shape: Shape,
    cap: usize,
    threads: usize,
) -> CapacityRep {
    let started = Instant::now();
    let lever = RealLever::start(irc_port, Some(cap));
    observer.wait_join(started);
    let requests = storm(lever.http_port, shape, 0);
    std::thread::sleep(Duration::from_millis(500));
    let new = send_wave(lever.http_port, &requests, threads, Duration::ZERO);
    let resend = send_wave(lever.http_port, &requests, threads, Duration::ZERO);
    let (outbox_depth, outbox_dropped) = lever.outbox();
    let hwm = mem_of(lever.pid()).hwm;
    let pong_ms = observer.ping();
    lever.stop(Duration::from_millis(300));
    CapacityRep {
        new,
        resend,
        hwm,
        outbox_depth,
        outbox_dropped,
        pong_ms,
    }
}

/// De-dup state as unique fingerprints pile up (each is remembered for 7 days).
struct GrowthStep {
    fingerprints: usize,
    mem: Mem,
    probe: Wave,
}

/// Single-alert notifications re-sent to measure the duplicate path at each size.
const PROBE: usize = 2_000;
const GROWTH_STEPS: &[usize] = &[10_000, 50_000, 100_000, 200_000];

fn growth(irc_port: u16, observer: &Observer, threads: usize) -> Vec<GrowthStep> {
    let started = Instant::now();
    let lever = RealLever::start(irc_port, None);
    observer.wait_join(started);
    let http = lever.http_port;
    let single = storm(http, Shape::Single, 0);
    let probe = &single[..PROBE];
    let mut total = 0;
    let mut seed = 100;
    let mut steps = Vec::new();
    for &size in GROWTH_STEPS {
        while total < size {
            let fill = if total == 0 {
                send_wave(http, &single, threads, Duration::ZERO)
            } else {
                seed += 1;
                send_wave(
                    http,
                    &storm(http, Shape::Grouped, seed),
                    threads,
                    Duration::ZERO,
                )
            };
            assert_eq!(fill.new as usize, STORM_ALERTS, "fill storm: all new");
            total += STORM_ALERTS;
        }
        std::thread::sleep(Duration::from_millis(500));
        let mem = mem_of(lever.pid());
        let probe = send_wave(http, probe, threads, Duration::ZERO);
        // lever remembers at most 100,000 alerts; past that the oldest (the probe's) are
        // forgotten, and memory stops growing.
        if total <= 100_000 {
            assert_eq!(probe.duplicates as usize, PROBE, "probe: all duplicates");
        } else {
            println!(
                "  (past lever's 100,000-alert de-dup memory: {} of the {PROBE} oldest re-sends still known)",
                probe.duplicates
            );
        }
        println!(
            "  {total} fingerprints: VmRSS {:.1} MiB (RssAnon {:.1}), VmHWM {:.1}; {PROBE} one-alert re-sends: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
            mb(mem.rss),
            mb(mem.anon),
            mb(mem.hwm),
            probe.alerts_per_s(),
            probe.lat(0.5),
            probe.lat(0.99)
        );
        steps.push(GrowthStep {
            fingerprints: total,
            mem,
            probe,
        });
    }
    lever.stop(Duration::from_millis(300));
    steps
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reps = arg(&args, "--reps", DEFAULT_REPS).max(1);
    let threads = arg(&args, "--threads", THREADS).max(1);
    let skip_channel = args.iter().any(|a| a == "--skip-channel");
    println!(
        "lever webhook benchmark: binary {}, {} CPUs, {threads} HTTP/1.1 keep-alive client threads",
        env!("CARGO_BIN_EXE_lever"),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let server = Ngircd::start();
    check_config(server.port);
    let mut alice = Client::connect(server.port, "alice");
    alice.join("#ops");
    let observer = Observer::start(alice);

    // -- 1-3. The storm on lever with every default, watched from #ops.
    let mut storms = Vec::new();
    if !skip_channel {
        for shape in [Shape::Grouped, Shape::Single] {
            println!(
                "\n[storm] {}: lever defaults (burst 4, 1 line/s, lines_per_group 4, lines_per_minute 20)",
                shape.name()
            );
            let r = paced_storm(server.port, &observer, shape, threads);
            println!(
                "  first-minute headers name: {}",
                r.named_first_minute.join(", ")
            );
            println!(
                "  channel: {} alert line(s) in the first minute, {} before the summary; summary {:.1} s after the first line; \
                 {} line(s) during the duplicate storm; pong {} / {} / {}",
                r.lines_first_minute,
                r.lines_before_summary,
                r.summary_after_first_line_s.unwrap_or(f64::NAN),
                r.lines_during_second,
                ms_or_none(r.pong_after_first_ms),
                ms_or_none(r.pong_after_second_ms),
                ms_or_none(r.pong_after_fresh_ms),
            );
            storms.push(r);
        }
    }

    // -- 4. Capacity: unpaced, fresh lever each time.
    let mut capacity: Vec<(Shape, usize, Vec<CapacityRep>)> = Vec::new();
    for shape in [Shape::Grouped, Shape::Single] {
        for cap in [CAP_DEFAULT, CAP_HUGE] {
            println!(
                "\n[capacity] {}, unpaced, lines_per_minute = {cap}, {reps} fresh levers",
                shape.name()
            );
            let mut runs = Vec::new();
            for i in 0..reps {
                let rep = capacity_rep(server.port, &observer, shape, cap, threads);
                println!(
                    "  rep {}: new {:.0} alerts/s (p50 {:.2} / p99 {:.2} ms, {} non-200), re-send {:.0} alerts/s \
                     (p99 {:.2} ms); lines {} + held back {}; outbox {} queued, {} dropped; VmHWM {:.1} MiB; pong {}",
                    i + 1,
                    rep.new.alerts_per_s(),
                    rep.new.lat(0.5),
                    rep.new.lat(0.99),
                    rep.new.requests - rep.new.ok,
                    rep.resend.alerts_per_s(),
                    rep.resend.lat(0.99),
                    rep.new.lines,
                    rep.new.held_back,
                    rep.outbox_depth,
                    rep.outbox_dropped,
                    mb(rep.hwm),
                    ms_or_none(rep.pong_ms),
                );
                runs.push(rep);
            }
            capacity.push((shape, cap, runs));
        }
    }
    // -- 5. De-dup state against the number of fingerprints remembered.
    println!(
        "\n[growth] unique fingerprints remembered (7 days each): memory and the duplicate path"
    );
    let growth = growth(server.port, &observer, threads);
    drop(observer);
    drop(server);

    // -- Results.
    println!("\n== results ==");
    let row = |what: &str, value: String, target: &str| {
        println!("{what:<62} {value:>40} {target:>18}");
    };
    println!("{:<62} {:>40} {:>18}", "measure", "value", "target");
    for r in &storms {
        println!("-- storm, {} (paced: 10,000 alerts in 1 s)", r.shape.name());
        for (label, w) in [
            ("new", &r.wave_new),
            ("re-sent (all duplicates)", &r.wave_resend),
            ("2nd storm, new wave (all duplicates)", &r.second.0),
            ("2nd storm, re-sent", &r.second.1),
            ("3rd storm, new fingerprints", &r.fresh),
        ] {
            let errors = w.requests - w.ok;
            row(
                &format!("{label}: alerts/s accepted (wall s)"),
                format!("{:.0} ({:.3})", w.alerts_per_s(), w.wall.as_secs_f64()),
                "",
            );
            row(
                &format!("{label}: notification p50 / p99 / max (ms)"),
                format!("{:.2} / {:.2} / {:.2}", w.lat(0.5), w.lat(0.99), w.lat(1.0)),
                "",
            );
            row(
                &format!("{label}: non-200 / new / duplicates"),
                format!("{errors} / {} / {}", w.new, w.duplicates),
                "",
            );
        }
        row(
            "VmRSS before / after storm / +80 s / after 2nd / after 3rd (MiB)",
            format!(
                "{:.1} / {:.1} / {:.1} / {:.1} / {:.1}",
                mb(r.mem_before.rss),
                mb(r.mem_after_first.rss),
                mb(r.mem_after_wait.rss),
                mb(r.mem_after_second.rss),
                mb(r.mem_after_fresh.rss)
            ),
            "",
        );
        row(
            "VmHWM before / after storm / after 2nd / after 3rd (MiB)",
            format!(
                "{:.1} / {:.1} / {:.1} / {:.1}",
                mb(r.mem_before.hwm),
                mb(r.mem_after_first.hwm),
                mb(r.mem_after_second.hwm),
                mb(r.mem_after_fresh.hwm)
            ),
            "",
        );
        row(
            "RssAnon before / after storm / after 2nd / after 3rd (MiB)",
            format!(
                "{:.1} / {:.1} / {:.1} / {:.1}",
                mb(r.mem_before.anon),
                mb(r.mem_after_first.anon),
                mb(r.mem_after_second.anon),
                mb(r.mem_after_fresh.anon)
            ),
            "",
        );
        let growth = r.mem_after_second.hwm.saturating_sub(r.mem_after_first.hwm);
        row(
            "2nd identical storm: VmHWM growth (KiB)",
            format!("{growth}"),
            &format!(
                "< {SECOND_STORM_GROWTH_KIB} {}",
                verdict(growth < SECOND_STORM_GROWTH_KIB)
            ),
        );
        row(
            "alert lines in #ops in the first minute",
            format!("{}", r.lines_first_minute),
            &format!(
                "<= {CAP_DEFAULT} {}",
                verdict(r.lines_first_minute <= CAP_DEFAULT)
            ),
        );
        row(
            "alert lines before the summary / lines lever's receipts said",
            format!(
                "{} / {}",
                r.lines_before_summary,
                r.wave_new.lines + r.wave_resend.lines
            ),
            "",
        );
        row(
            "held-back summary: after the first line / after storm start (s)",
            format!(
                "{:.1} / {:.1}",
                r.summary_after_first_line_s.unwrap_or(f64::NAN),
                r.summary_after_storm_s.unwrap_or(f64::NAN)
            ),
            &format!(
                ">= 60 {}",
                verdict(r.summary_after_first_line_s.is_some_and(|s| s >= 59.5))
            ),
        );
        let receipts_held = r.wave_new.held_back + r.wave_resend.held_back;
        row(
            "summary's N / held_back in receipts",
            format!(
                "{} / {receipts_held}",
                r.summary_held_back
                    .map_or("none".to_owned(), |n| n.to_string())
            ),
            verdict(r.summary_held_back == Some(receipts_held)),
        );
        row(
            "alert lines during 2nd (duplicate) storm + 8 s",
            format!("{}", r.lines_during_second),
            &format!("0 {}", verdict(r.lines_during_second == 0)),
        );
        row(
            "!ping after storm+summary / 2nd / 3rd",
            format!(
                "{} / {} / {}",
                ms_or_none(r.pong_after_first_ms),
                ms_or_none(r.pong_after_second_ms),
                ms_or_none(r.pong_after_fresh_ms)
            ),
            verdict(
                r.pong_after_first_ms.is_some()
                    && r.pong_after_second_ms.is_some()
                    && r.pong_after_fresh_ms.is_some(),
            ),
        );
        row(
            "IRC link: rejoined / reconnects logged / ERRORs / alive",
            format!(
                "{} / {} / {} / {}",
                r.lever_rejoined, r.reconnects_logged, r.errors_logged, r.alive
            ),
            verdict(!r.lever_rejoined && r.reconnects_logged == 0 && r.alive),
        );
        let mut distinct = r.named_first_minute.clone();
        distinct.dedup();
        row(
            "alert names in first-minute headers (distinct)",
            format!("{} ({})", r.named_first_minute.len(), distinct.len()),
            "",
        );
        row(
            "critical alert names named in #ops at all / sent",
            format!("{} / {}", r.critical_named, r.critical_sent),
            "",
        );
        row(
            "(all alert lines heard after the storm, until 3rd storm)",
            format!("{}", r.irc_lines_total_first),
            "",
        );
    }
    for (shape, cap, runs) in &capacity {
        println!(
            "-- capacity, {} unpaced, lines_per_minute {cap}: median (min..max) of {}",
            shape.name(),
            runs.len()
        );
        let of = |f: &dyn Fn(&CapacityRep) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
        row(
            "new: alerts/s accepted",
            spread(&of(&|r| r.new.alerts_per_s()), 0),
            "",
        );
        row(
            "new: wall for 10,000 alerts (ms)",
            spread(&of(&|r| r.new.wall.as_secs_f64() * 1e3), 1),
            "",
        );
        row(
            "new: notification p50 (ms)",
            spread(&of(&|r| r.new.lat(0.5)), 2),
            "",
        );
        row(
            "new: notification p99 (ms)",
            spread(&of(&|r| r.new.lat(0.99)), 2),
            "",
        );
        row(
            "re-send (duplicates): alerts/s accepted",
            spread(&of(&|r| r.resend.alerts_per_s()), 0),
            "",
        );
        row(
            "re-send: notification p99 (ms)",
            spread(&of(&|r| r.resend.lat(0.99)), 2),
            "",
        );
        let non_200: usize = runs
            .iter()
            .map(|r| r.new.requests - r.new.ok + r.resend.requests - r.resend.ok)
            .sum();
        row("non-200 (all reps)", format!("{non_200}"), "");
        row(
            "lines said / held back (per rep)",
            format!("{} / {}", runs[0].new.lines, runs[0].new.held_back),
            "",
        );
        row(
            "outbox queued / dropped after the storm",
            spread(&of(&|r| r.outbox_depth), 0) + " / " + &spread(&of(&|r| r.outbox_dropped), 0),
            "",
        );
        row("VmHWM (MiB)", spread(&of(&|r| mb(r.hwm)), 1), "");
        let answered = runs.iter().filter(|r| r.pong_ms.is_some()).count();
        row(
            "!ping right after: answered (slowest, ms; throttle debt)",
            format!(
                "{answered} of {} ({:.0})",
                runs.len(),
                runs.iter().filter_map(|r| r.pong_ms).fold(0.0, f64::max)
            ),
            verdict(answered == runs.len()),
        );
    }
    println!("-- de-dup state vs unique fingerprints remembered (one lever, unpaced)");
    let base = &growth[0];
    for step in &growth {
        let per_fp = (step.mem.anon as f64 - base.mem.anon as f64) * 1024.0
            / (step.fingerprints - base.fingerprints).max(1) as f64;
        row(
            &format!(
                "{} fingerprints: RssAnon MiB (bytes/fingerprint over {})",
                step.fingerprints, base.fingerprints
            ),
            if step.fingerprints == base.fingerprints {
                format!("{:.1}", mb(step.mem.anon))
            } else {
                format!("{:.1} ({per_fp:.0})", mb(step.mem.anon))
            },
            "",
        );
        row(
            &format!(
                "{} fingerprints: {PROBE} one-alert re-sends/s, p99 ms",
                step.fingerprints
            ),
            format!(
                "{:.0}, {:.2}",
                step.probe.alerts_per_s(),
                step.probe.lat(0.99)
            ),
            "",
        );
    }
    println!(
        "\nnotes: alerts/s accepted = alerts in notifications answered 200 / wall time from the first \
         request's slot to the last response; notification latency = request written -> whole response \
         read, per POST, on {threads} keep-alive connections (connections opened before the clock starts); \
         paced = request k not sent before k/n of 1 s; lines are PRIVMSGs lever sent to #ops as the \
         client there read them; MiB = 1024 KiB."
    );
    println!("reproduce: cargo bench --bench webhook");
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "MISSED"
    }
}
