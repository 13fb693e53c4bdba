//! `!stats`: how a team ships, from the store alone: deploys per day, stage and deploy times,
//! how often deploys fail, time spent under holds, and how long a failure takes to be followed
//! by a good deploy. Pure: the command reads the runs and hold entries, this adds them up.

use std::collections::HashMap;
use std::time::Duration;

use crate::chat::text::human_duration;
use crate::store::{LogEntry, LogKind, Millis, Phase, Run, RunState};

/// The figures for one window.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Stats {
    /// Deploys that succeeded.
    pub deploys: usize,
    /// Deploys that ended: succeeded, failed or interrupted (cancelled ones are left out).
    pub attempts: usize,
    pub failed: usize,
    /// Durations of successful stages and deploys, milliseconds, sorted.
    pub stage_ms: Vec<Millis>,
    pub deploy_ms: Vec<Millis>,
    /// Time inside the window under at least one hold that covered the target(s).
    pub held_ms: Millis,
    pub window_ms: Millis,
    /// From the first failed deploy of a streak to the end of the next good deploy or rollback.
    pub recoveries_ms: Vec<Millis>,
    /// Failure streaks with no good deploy since.
    pub unrecovered: usize,
}

/// Adds up `runs` (started in the window, oldest first) and `holds` (every hold and unhold
/// entry up to `until`, oldest first) for `target` (or every target) over `[from, until]`.
pub fn compute(
    runs: &[Run],
    holds: &[LogEntry],
    target: Option<&str>,
    from: Millis,
    until: Millis,
) -> Stats {
    let mut stats = Stats {
        window_ms: until - from,
        ..Stats::default()
    };
    let mut streaks: HashMap<&str, Millis> = HashMap::new();
    for run in runs.iter().filter(|r| target.is_none_or(|t| r.target == t)) {
        let ended = run.finished_at.unwrap_or(run.started_at);
        let took = ended - run.started_at;
        match (run.phase, run.state) {
            (Phase::Stage, RunState::Succeeded) => stats.stage_ms.push(took),
            (Phase::Deploy, RunState::Succeeded) => {
                stats.deploys += 1;
                stats.attempts += 1;
                stats.deploy_ms.push(took);
            }
            (Phase::Deploy, RunState::Failed | RunState::Interrupted) => {
                stats.attempts += 1;
                stats.failed += 1;
                streaks.entry(&run.target).or_insert(ended);
            }
            _ => {}
        }
        let good = run.state == RunState::Succeeded && run.phase != Phase::Stage;
        if good {
            if let Some(since) = streaks.remove(run.target.as_str()) {
                stats.recoveries_ms.push(ended - since);
            }
        }
    }
    stats.unrecovered = streaks.len();
    stats.stage_ms.sort_unstable();
    stats.deploy_ms.sort_unstable();
    stats.held_ms = held(holds, target, from, until);
    stats
}

/// Time in `[from, until]` under at least one hold covering `target` (any hold, without one).
fn held(entries: &[LogEntry], target: Option<&str>, from: Millis, until: Millis) -> Millis {
    let covers = |e: &LogEntry| match (target, &e.target) {
        (None, _) | (_, None) => true,
        (Some(t), Some(held)) => held == t,
    };
    // A hold and its lift share a scope: the target, or every target.
    let mut open: HashMap<Option<&str>, Millis> = HashMap::new();
    let mut spans = Vec::new();
    for entry in entries.iter().filter(|e| covers(e)) {
        let scope = entry.target.as_deref();
        match entry.kind {
            LogKind::Hold => {
                open.entry(scope).or_insert(entry.at);
            }
            LogKind::Unhold => {
                if let Some(start) = open.remove(&scope) {
                    spans.push((start, entry.at));
                }
            }
            _ => {}
        }
    }
    spans.extend(open.into_values().map(|start| (start, until)));
    // The union of the spans, clipped to the window.
    spans.sort_unstable();
    let mut total = 0;
    let mut reached = from;
    for (start, end) in spans {
        let (start, end) = (start.max(reached), end.min(until));
        if end > start {
            total += end - start;
            reached = end;
        }
    }
    total
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[Millis], p: f64) -> Option<Millis> {
    let rank = ((p * sorted.len() as f64).ceil() as usize).max(1);
    sorted.get(rank - 1).copied()
}

fn ms(ms: Millis) -> String {
    human_duration(Duration::from_millis(ms.max(0) as u64))
}

fn times(what: &str, sorted: &[Millis]) -> String {
    match (percentile(sorted, 0.5), percentile(sorted, 0.9)) {
        (Some(median), Some(p90)) => format!("{what} median {}, p90 {}", ms(median), ms(p90)),
        _ => format!("no {what}s"),
    }
}

/// One line: `site, last 7 days: 23 deploys (3.3 a day), 2 of 25 failed (8%) · …`.
pub fn describe(stats: &Stats, scope: &str, days: u32) -> String {
    let period = if days == 1 {
        "last day".to_owned()
    } else {
        format!("last {days} days")
    };
    let mut parts = Vec::new();
    let per_day = super::format::value((stats.deploys as f64 / days as f64 * 10.0).round() / 10.0);
    let plural = if stats.deploys == 1 { "" } else { "s" };
    let mut shipped = format!("{} deploy{plural} ({per_day} a day)", stats.deploys);
    if stats.attempts > 0 {
        let rate = (stats.failed as f64 / stats.attempts as f64 * 100.0).round();
        shipped.push_str(&format!(
            ", {} of {} failed ({rate}%)",
            stats.failed, stats.attempts
        ));
    }
    parts.push(shipped);
    parts.push(times("stage", &stats.stage_ms));
    parts.push(times("deploy", &stats.deploy_ms));
    parts.push(if stats.held_ms == 0 {
        "never held".to_owned()
    } else {
        let share = (stats.held_ms as f64 / stats.window_ms.max(1) as f64 * 100.0).round();
        format!("held {} ({share}% of the time)", ms(stats.held_ms))
    });
    if !stats.recoveries_ms.is_empty() || stats.unrecovered > 0 {
        let mut recovery = match stats.recoveries_ms.len() {
            0 => "failure to next good deploy: none yet".to_owned(),
            n => {
                let mean = stats.recoveries_ms.iter().sum::<Millis>() / n as Millis;
                format!("failure to next good deploy: mean {} over {n}", ms(mean))
            }
        };
        if stats.unrecovered > 0 {
            recovery.push_str(&format!(" ({} not yet followed by one)", stats.unrecovered));
        }
        parts.push(recovery);
    }
    format!("{scope}, {period}: {}", parts.join(" · "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;
    const HOUR: Millis = 60 * MIN;

    fn run(target: &str, phase: Phase, state: RunState, start: Millis, took: Millis) -> Run {
        Run {
            id: start,
            target: target.into(),
            phase,
            user: "alice".into(),
            state,
            started_at: start,
            finished_at: Some(start + took),
            version: None,
            prev_version: None,
            note: None,
            error: None,
            steps: 1,
            stopped_by: None,
        }
    }

    fn entry(kind: LogKind, target: Option<&str>, at: Millis) -> LogEntry {
        LogEntry {
            id: at,
            at,
            user: "mygrant".into(),
            target: target.map(str::to_owned),
            kind,
            text: String::new(),
            run_id: None,
        }
    }

    #[test]
    fn a_week_of_shipping_adds_up() {
        use Phase::*;
        use RunState::*;
        let runs = [
            run("site", Stage, Succeeded, 0, 40_000),
            run("site", Deploy, Succeeded, HOUR, 10_000),
            run("site", Stage, Succeeded, 2 * HOUR, 50_000),
            run("site", Deploy, Failed, 3 * HOUR, 5_000),
            run("site", Deploy, Failed, 3 * HOUR + 10 * MIN, 5_000),
            run("api", Deploy, Failed, 3 * HOUR + 20 * MIN, 1_000),
            run("site", Deploy, Cancelled, 3 * HOUR + 25 * MIN, 1_000),
            run("site", Rollback, Succeeded, 3 * HOUR + 30 * MIN, 30_000),
            run("site", Stage, Failed, 4 * HOUR, 1_000),
            run("site", Stage, Succeeded, 5 * HOUR, 70_000),
            run("site", Deploy, Succeeded, 6 * HOUR, 20_000),
        ];
        let holds = [
            entry(LogKind::Hold, Some("site"), HOUR),
            entry(LogKind::Unhold, Some("site"), 2 * HOUR),
            entry(LogKind::Hold, None, 90 * MIN),
            entry(LogKind::Unhold, None, 150 * MIN),
            entry(LogKind::Hold, Some("api"), 5 * HOUR),
        ];
        let week = 7 * 24 * HOUR;
        let site = compute(&runs, &holds, Some("site"), 0, week);
        assert_eq!(
            (site.deploys, site.attempts, site.failed),
            (2, 4, 2),
            "cancelled runs are not attempts"
        );
        assert_eq!(site.stage_ms, [40_000, 50_000, 70_000]);
        assert_eq!(site.deploy_ms, [10_000, 20_000]);
        assert_eq!(
            site.held_ms,
            90 * MIN,
            "site's hold and the global one overlap"
        );
        // First failure ends at 3 h + 5 s; the rollback ends at 3 h 30 min + 30 s.
        assert_eq!(site.recoveries_ms, [30 * MIN + 25_000]);
        assert_eq!(site.unrecovered, 0);
        assert_eq!(
            describe(&site, "site", 7),
            "site, last 7 days: 2 deploys (0.3 a day), 2 of 4 failed (50%) · \
             stage median 50.0 s, p90 1 min 10 s · deploy median 10.0 s, p90 20.0 s · \
             held 1 h 30 min (1% of the time) · failure to next good deploy: mean 30 min 25 s over 1"
        );
        let all = compute(&runs, &holds, None, 0, week);
        assert_eq!(
            (all.deploys, all.attempts, all.failed, all.unrecovered),
            (2, 5, 3, 1)
        );
        // site 1 h–2 h, every target 1.5 h–2.5 h, api from 5 h to the end of the week.
        assert_eq!(all.held_ms, 90 * MIN + (week - 5 * HOUR));
        assert!(describe(&all, "all targets", 7).ends_with(
            "failure to next good deploy: mean 30 min 25 s over 1 (1 not yet followed by one)"
        ));
    }

    #[test]
    fn holds_are_clipped_to_the_window() {
        let holds = [
            entry(LogKind::Hold, Some("site"), 0),
            entry(LogKind::Unhold, Some("site"), 10 * HOUR),
        ];
        let stats = compute(&[], &holds, Some("site"), 8 * HOUR, 12 * HOUR);
        assert_eq!(stats.held_ms, 2 * HOUR);
        assert_eq!(compute(&[], &holds, Some("api"), 0, HOUR).held_ms, 0);
    }

    #[test]
    fn an_empty_window_says_so() {
        let stats = compute(&[], &[], None, 0, 24 * HOUR);
        assert_eq!(
            describe(&stats, "all targets", 1),
            "all targets, last day: 0 deploys (0 a day) · no stages · no deploys · never held"
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let ten: Vec<Millis> = (1..=10).collect();
        assert_eq!(percentile(&ten, 0.5), Some(5));
        assert_eq!(percentile(&ten, 0.9), Some(9));
        assert_eq!(percentile(&[7], 0.9), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
