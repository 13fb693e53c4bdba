//! Sending a wave of notifications over keep-alive connections, paced or as fast as possible,
//! and what came back: statuses, latencies, and lever's receipts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::alerts::Request;
use crate::http::HttpConn;
use crate::rig::pct;

#[derive(Default)]
pub struct Wave {
    pub requests: usize,
    pub alerts_sent: usize,
    pub ok: usize,
    pub alerts_ok: usize,
    pub non_200: BTreeMap<u16, usize>,
    pub io_errors: usize,
    pub wall: Duration,
    pub latency_ms: Vec<f64>,
    /// How far behind its slot the latest request went out (paced waves).
    pub max_late_ms: f64,
    pub new: u64,
    pub duplicates: u64,
    pub lines: u64,
    pub held_back: u64,
}

impl Wave {
    pub fn alerts_per_s(&self) -> f64 {
        self.alerts_ok as f64 / self.wall.as_secs_f64()
    }

    pub fn lat(&self, q: f64) -> f64 {
        let mut v = self.latency_ms.clone();
        v.sort_by(f64::total_cmp);
        pct(&v, q)
    }

    pub fn summary(&self) -> String {
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
pub fn send_wave(port: u16, requests: &[Request], threads: usize, pace: Duration) -> Wave {
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
