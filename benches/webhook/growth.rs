//! De-dup state as unique fingerprints pile up (each is remembered for 7 days): lever's memory
//! and the duplicate path's speed at each size.

use std::time::{Duration, Instant};

use crate::alerts::{storm, Shape};
use crate::lever::ServingLever;
use crate::observer::Observer;
use crate::rig::{mb, mem_of, Mem};
use crate::wave::{send_wave, Wave};
use crate::{row, STORM_ALERTS};

/// De-dup state as unique fingerprints pile up (each is remembered for 7 days).
pub struct GrowthStep {
    fingerprints: usize,
    mem: Mem,
    probe: Wave,
}

/// Single-alert notifications re-sent to measure the duplicate path at each size.
const PROBE: usize = 2_000;
const GROWTH_STEPS: &[usize] = &[10_000, 50_000, 100_000, 200_000];

pub fn run(irc_port: u16, observer: &Observer, threads: usize) -> Vec<GrowthStep> {
    let started = Instant::now();
    let lever = ServingLever::start(irc_port, None);
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

/// The results rows, one size after another.
pub fn report(growth: &[GrowthStep]) {
    println!("-- de-dup state vs unique fingerprints remembered (one lever, unpaced)");
    let base = &growth[0];
    for step in growth {
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
}
