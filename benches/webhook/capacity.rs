//! Capacity: the storm and its re-send sent as fast as possible, each repetition on a fresh
//! lever, with `lines_per_minute` at its default and at 1,000,000 with the throttle off
//! (ingest is not limited by IRC).

use std::time::{Duration, Instant};

use crate::alerts::{storm, Shape};
use crate::lever::ServingLever;
use crate::observer::Observer;
use crate::rig::{mb, mem_of, verdict};
use crate::wave::{send_wave, Wave};
use crate::{ms_or_none, row, spread, CAP_DEFAULT};

/// A cap IRC never reaches.
const CAP_HUGE: usize = 1_000_000;

/// What each shape and cap gave over `reps` fresh levers.
pub type Runs = Vec<(Shape, usize, Vec<CapacityRep>)>;

pub fn run(irc_port: u16, observer: &Observer, reps: usize, threads: usize) -> Runs {
    let mut capacity: Vec<(Shape, usize, Vec<CapacityRep>)> = Vec::new();
    for shape in [Shape::Grouped, Shape::Single] {
        for cap in [CAP_DEFAULT, CAP_HUGE] {
            println!(
                "\n[capacity] {}, unpaced, lines_per_minute = {cap}, {reps} fresh levers",
                shape.name()
            );
            let mut runs = Vec::new();
            for i in 0..reps {
                let rep = capacity_rep(irc_port, observer, shape, cap, threads);
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
    capacity
}

/// The results rows of each shape and cap.
pub fn report(capacity: &Runs) {
    for (shape, cap, runs) in capacity {
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
}

/// One capacity repetition on a fresh lever: the storm unpaced, then its re-send unpaced.
pub struct CapacityRep {
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
    let lever = ServingLever::start(irc_port, Some(cap));
    observer.wait_join(started);
    let requests = storm(lever.http_port, shape, 0);
    std::thread::sleep(Duration::from_millis(500));
    let new = send_wave(lever.http_port, &requests, threads, Duration::ZERO);
    let resend = send_wave(lever.http_port, &requests, threads, Duration::ZERO);
    let (outbox_depth, outbox_dropped) = lever.outbox();
    let rep = CapacityRep {
        new,
        resend,
        hwm: mem_of(lever.pid()).hwm,
        outbox_depth,
        outbox_dropped,
        pong_ms: observer.ping(),
    };
    lever.stop(Duration::from_millis(300));
    rep
}
