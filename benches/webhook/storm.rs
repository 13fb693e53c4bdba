//! The storm, paced (10,000 alerts in one second), on a lever with every default and
//! watched from #ops: latency and non-200s, memory through an identical second storm and a
//! third of new fingerprints, the channel's capped lines and held-back summary, and `!ping`.

use std::time::{Duration, Instant};

use crate::alerts::{alertname, storm, Shape};
use crate::lever::ServingLever;
use crate::observer::{held_back_in, is_alert_line, is_summary, Observer};
use crate::rig::{mb, mem_of, verdict, Mem};
use crate::wave::{send_wave, Wave};
use crate::{ms_or_none, row, CAP_DEFAULT, GROUPS, STORM_ALERTS, STORM_PACE};

/// How long to wait for the held-back summary (the window is 60 s, checked every 5 s).
const SUMMARY_WAIT: Duration = Duration::from_secs(80);
/// How long to watch the channel after the duplicate storm.
const QUIET_WATCH: Duration = Duration::from_secs(8);
/// Second storm's memory may grow at most this much over the first's (KiB).
const SECOND_STORM_GROWTH_KIB: u64 = 1024;

/// Both shapes of the storm, each on a fresh lever.
pub fn run(irc_port: u16, observer: &Observer, threads: usize) -> Vec<StormResult> {
    let mut storms = Vec::new();
    for shape in [Shape::Grouped, Shape::Single] {
        println!(
            "\n[storm] {}: lever defaults (burst 4, 1 line/s, lines_per_group 4, lines_per_minute 20)",
            shape.name()
        );
        let r = paced_storm(irc_port, observer, shape, threads);
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
    storms
}

/// A results row of one figure of `mems`, in MiB: "a / b / c".
fn mem_row(label: &str, mems: &[Mem], figure: fn(&Mem) -> u64) {
    let values: Vec<String> = mems
        .iter()
        .map(|m| format!("{:.1}", mb(figure(m))))
        .collect();
    row(label, values.join(" / "), "");
}

/// The results rows of each storm.
pub fn report(storms: &[StormResult]) {
    for r in storms {
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
        mem_row(
            "VmRSS before / after storm / +80 s / after 2nd / after 3rd (MiB)",
            &[
                r.mem_before,
                r.mem_after_first,
                r.mem_after_wait,
                r.mem_after_second,
                r.mem_after_fresh,
            ],
            |m| m.rss,
        );
        mem_row(
            "VmHWM before / after storm / after 2nd / after 3rd (MiB)",
            &[
                r.mem_before,
                r.mem_after_first,
                r.mem_after_second,
                r.mem_after_fresh,
            ],
            |m| m.hwm,
        );
        mem_row(
            "RssAnon before / after storm / after 2nd / after 3rd (MiB)",
            &[
                r.mem_before,
                r.mem_after_first,
                r.mem_after_second,
                r.mem_after_fresh,
            ],
            |m| m.anon,
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
}

/// What the paced storm on one lever showed.
pub struct StormResult {
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
    let mut lever = ServingLever::start(irc_port, None);
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
