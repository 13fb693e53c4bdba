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
//!    `lines_per_minute` 20 and 1,000,000 with the throttle off (ingest is not limited by IRC);
//! 5. growth: lever's memory and the duplicate path as unique fingerprints pile up.
//!
//! Run: `cargo bench --bench webhook` (optionally `-- --reps N --threads N --skip-channel`).
//!
//! One module a part: `lever` (lever serving HTTP), `http` (the keep-alive client), `alerts`
//! (the notifications), `wave` (sending them), `observer` (the channel), and one a scenario:
//! `storm` (1-3), `capacity` (4), `growth` (5). This file runs them and prints the results.

mod alerts;
mod capacity;
mod growth;
mod http;
mod lever;
mod observer;
#[path = "../rig/mod.rs"]
mod rig;
mod storm;
mod wave;

use std::time::Duration;

use observer::Observer;
use rig::support::{Client, Ngircd};
use rig::{arg, median};

const TOKEN: &str = "bench-token-0123456789abcdef";
const THREADS: usize = 8;
const DEFAULT_REPS: usize = 5;
/// The storm: this many alerts within `STORM_PACE`.
const STORM_ALERTS: usize = 10_000;
const STORM_PACE: Duration = Duration::from_secs(1);
const GROUPS: usize = 100;
const PER_GROUP: usize = 100;
/// lever's default `lines_per_minute`.
const CAP_DEFAULT: usize = 20;

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
    lever::check_config(server.port);
    let mut alice = Client::connect(server.port, "alice");
    alice.join("#ops");
    let observer = Observer::start(alice);

    // -- 1-3. The storm on lever with every default, watched from #ops.
    let storms = if skip_channel {
        Vec::new()
    } else {
        storm::run(server.port, &observer, threads)
    };
    // -- 4. Capacity: unpaced, fresh lever each time.
    let capacity = capacity::run(server.port, &observer, reps, threads);
    // -- 5. De-dup state against the number of fingerprints remembered.
    println!(
        "\n[growth] unique fingerprints remembered (7 days each): memory and the duplicate path"
    );
    let growth = growth::run(server.port, &observer, threads);
    drop(observer);
    drop(server);

    // -- Results.
    println!("\n== results ==");
    println!("{:<62} {:>40} {:>18}", "measure", "value", "target");
    storm::report(&storms);
    capacity::report(&capacity);
    growth::report(&growth);
    println!(
        "\nnotes: alerts/s accepted = alerts in notifications answered 200 / wall time from the first \
         request's slot to the last response; notification latency = request written -> whole response \
         read, per POST, on {threads} keep-alive connections (connections opened before the clock starts); \
         paced = request k not sent before k/n of 1 s; lines are PRIVMSGs lever sent to #ops as the \
         client there read them; MiB = 1024 KiB."
    );
    println!("reproduce: cargo bench --bench webhook");
}

/// One results row: what, its value, and its target.
fn row(what: &str, value: String, target: &str) {
    println!("{what:<62} {value:>40} {target:>18}");
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
