//! The bench rig: what every bench shares — the test rig (a real ngIRCd, raw clients, lever's
//! binary), lever started at the production log level, a process's memory as `/proc` reports
//! it, the statistics the benches print, and their `--name N` arguments.

#![allow(dead_code)] // each bench uses a different part of the rig

#[path = "../../tests/support/mod.rs"]
pub mod support;

use std::time::Duration;

use support::Lever;

/// lever's release binary prepared on `config` at the production log level (the test rig's
/// `Lever` logs at debug); not launched yet, so a bench can take the time just before.
pub fn real_lever(config: &str) -> Lever {
    let mut lever = Lever::prepare(config);
    lever.set_env(&[("RUST_LOG", "info")]);
    lever
}

/// [`real_lever`], launched.
pub fn start_real_lever(config: &str) -> Lever {
    let mut lever = real_lever(config);
    lever.launch();
    lever
}

/// How long a bench gives lever to QUIT on SIGTERM before it is killed.
pub const STOP_WAIT: Duration = Duration::from_secs(10);

/// `VmRSS`/`VmHWM`/`RssAnon`/`RssFile` of a process, in KiB, and its thread count.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mem {
    pub rss: u64,
    pub hwm: u64,
    pub anon: u64,
    pub file: u64,
    pub threads: u64,
}

pub fn mem_of(pid: u32) -> Mem {
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
            "RssFile" => mem.file = n,
            "Threads" => mem.threads = n,
            _ => {}
        }
    }
    mem
}

/// KiB to MiB.
pub fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Nearest-rank percentile of sorted samples (NaN for none).
pub fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The median (NaN for none).
pub fn median(xs: &[f64]) -> f64 {
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

/// How a result row reads against its target.
pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "MISSED"
    }
}

/// The number after `name` in `args` (`_` allowed as a digit separator), or `default`.
pub fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}
