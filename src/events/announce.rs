//! The announcer: turns stored events into channel lines.
//!
//! Holds go to every channel of the targets they cover; runs to their target's channels
//! (`[targets.NAME] channels`, default all). Lines go out as announcements, behind interactive
//! replies in the outbox; those the deploy log records are never dropped from it ([`priority`]),
//! and are said by exactly one lever: each carries a claim on its log entry
//! ([`crate::chat::claim`]), and what a lever stored but died before saying is said by the
//! next one to start ([`replay`]). What a line says is decided here, in pure functions
//! ([`lines`], [`replayed`]), so every announcement's wording is tested without a server.

use std::sync::Arc;
use std::time::Duration;

use crate::chat::claim::Claim;
use crate::chat::outbox::{Outbox, Priority};
use crate::chat::text::{human_duration, truncate_chars};
use crate::config::Config;
use crate::events::{
    AlertGroup, AlertLine, BuildReport, Event, Events, ExternalDeploy, ExternalStatus, HeldBack,
    QueueNews, Removal, WatchReport,
};
use crate::store::{
    format_time, Hold, LogEntry, Phase, Run, RunState, StepRecord, Store, StoreError,
};

/// Entries a starting lever says one by one of those no lever said; the rest in one line.
pub const REPLAY_LINES: usize = 10;

/// Starts the task that announces every event published from now on.
pub fn spawn(config: Arc<Config>, events: &Events, outbox: Outbox, store: Arc<Store>) {
    let mut deliveries = events.subscribe();
    tokio::spawn(async move {
        while let Some(delivery) = deliveries.recv().await {
            if let Event::Topic { channel, text } = &delivery.event {
                outbox.topic(channel, text);
                continue;
            }
            let priority = priority(&delivery.event);
            let claim = claim_for(&store, &delivery.event);
            for (channel, line) in lines(&config, &delivery.event) {
                match &claim {
                    Some(claim) => outbox.say_claimed(&channel, &line, priority, claim),
                    None => outbox.say(&channel, &line, priority),
                }
            }
            // The delivery (and its activity guard) is dropped only once its lines are queued.
        }
    });
}

/// The log entry an event announces, when the deploy log records it: said once, by claim.
fn recorded(event: &Event) -> Option<&LogEntry> {
    match event {
        Event::HoldPlaced { entry, .. }
        | Event::HoldLifted { entry, .. }
        | Event::RunStarted { entry, .. }
        | Event::RunFinished { entry, .. }
        | Event::RunEndRecorded { entry, .. }
        | Event::ExternalDeploy { entry, .. }
        | Event::FlagChanged { entry, .. }
        | Event::Watch { entry, .. } => Some(entry),
        Event::HoldReminder { .. }
        | Event::StepFinished { .. }
        | Event::RunEndUnrecorded { .. }
        | Event::Build(_)
        | Event::Queue(_)
        | Event::Topic { .. }
        | Event::Alerts { .. } => None,
    }
}

/// The claim an event's lines are said under, if it needs one: what the deploy log records,
/// and (with a shared store) alerts.
fn claim_for(store: &Arc<Store>, event: &Event) -> Option<Claim> {
    if let Some(entry) = recorded(event) {
        return Some(claim_entry(store, entry.id));
    }
    match event {
        Event::Alerts { marks, .. } if !marks.is_empty() && store.is_shared() => {
            let marks = marks.clone();
            Some(claim_with(store, move |store| store.claim_alerts(&marks)))
        }
        _ => None,
    }
}

/// A claim won when `take` marks something said in `store`.
fn claim_with(
    store: &Arc<Store>,
    take: impl Fn(&Store) -> Result<bool, StoreError> + Send + Sync + 'static,
) -> Claim {
    let store = store.clone();
    Claim::new(move || match take(&store) {
        Ok(won) => Ok(won),
        // Not the active lever (any more): it is the active one's to say.
        Err(StoreError::Fenced { .. } | StoreError::Standby { .. }) => Ok(false),
        // A store no other lever shares: better said than silenced by a full disk.
        Err(e) if !store.is_shared() => {
            tracing::warn!(error = %e, "cannot mark an announcement said; saying it anyway");
            Ok(true)
        }
        Err(e) => Err(e.to_string()),
    })
}

/// A claim on saying log entries `from..=through`.
fn claim_entries(store: &Arc<Store>, from: i64, through: i64) -> Claim {
    claim_with(store, move |store| match from == through {
        true => store.claim_announcement(from),
        false => store.claim_announcements(from, through),
    })
}

fn claim_entry(store: &Arc<Store>, id: i64) -> Claim {
    claim_entries(store, id, id)
}

/// Queues what the deploy log holds that no lever has said (the last one stopped first): the
/// oldest [`REPLAY_LINES`] one by one, the rest summed up. Each under its claim, so it is said
/// once however many levers start. Call before this lever writes anything.
pub fn replay(config: &Config, store: &Arc<Store>, outbox: &Outbox) -> Result<usize, StoreError> {
    let found = store.unannounced(REPLAY_LINES)?;
    for entry in &found.entries {
        let claim = claim_entry(store, entry.id);
        for (channel, line) in replayed(config, entry) {
            outbox.say_claimed(&channel, &line, Priority::Record, &claim);
        }
    }
    let more = found.total.saturating_sub(found.entries.len());
    if let (true, Some(last)) = (more > 0, found.entries.last()) {
        let claim = claim_entries(store, last.id + 1, found.last_id);
        let text = format!(
            "… and {more} more entries of the deploy log were not announced before lever stopped: {}log {}",
            config.bot.prefix,
            found.total
        );
        for channel in &config.irc.channels {
            outbox.say_claimed(channel, &text, Priority::Record, &claim);
        }
    }
    Ok(found.total)
}

/// A log entry no lever said when it was written, as said late.
pub fn replayed(config: &Config, entry: &LogEntry) -> Vec<(String, String)> {
    let channels = match &entry.target {
        Some(target) => config.target_channels(target).to_vec(),
        None => config.irc.channels.clone(),
    };
    let text = format!("{entry} (not announced before lever stopped)");
    channels.into_iter().map(|c| (c, text.clone())).collect()
}

/// How an event's lines queue: what the deploy log records (a hold placed or lifted, a run
/// started or ended, a deploy by another tool) is never dropped from a full outbox; progress,
/// reminders, alerts and reports may be.
pub fn priority(event: &Event) -> Priority {
    match event {
        Event::HoldPlaced { .. }
        | Event::HoldLifted { .. }
        | Event::RunStarted { .. }
        | Event::RunFinished { .. }
        | Event::RunEndUnrecorded { .. }
        | Event::RunEndRecorded { .. }
        | Event::ExternalDeploy { .. }
        | Event::FlagChanged { .. } => Priority::Record,
        Event::HoldReminder { .. }
        | Event::StepFinished { .. }
        | Event::Build(_)
        | Event::Queue(_)
        | Event::Topic { .. }
        | Event::Alerts { .. }
        | Event::Watch { .. } => Priority::Announce,
    }
}

/// The lines an event becomes, each with its channel.
pub fn lines(config: &Config, event: &Event) -> Vec<(String, String)> {
    let (channels, text): (Vec<String>, String) = match event {
        Event::HoldPlaced { hold, .. } => (hold_channels(config, hold), hold_placed(hold)),
        Event::HoldLifted {
            hold, by, expired, ..
        } => (hold_channels(config, hold), hold_lifted(hold, by, *expired)),
        Event::HoldReminder { hold, held_for } => (
            hold_channels(config, hold),
            format!(
                "reminder: {} held by {} for {}: {} (!unhold{} when it is safe)",
                hold.scope(),
                hold.by_nick,
                human_duration(*held_for),
                hold.reason,
                hold.target
                    .as_ref()
                    .map(|t| format!(" {t}"))
                    .unwrap_or_default()
            ),
        ),
        Event::RunStarted {
            run, steps, detail, ..
        } => (
            run_channels(config, &run.target),
            run_started(run, *steps, detail),
        ),
        Event::StepFinished {
            to_channel: false, ..
        } => return Vec::new(),
        Event::StepFinished { target, step, .. } => {
            (run_channels(config, target), step_line(target, step))
        }
        Event::RunFinished { run, steps, .. } => {
            (run_channels(config, &run.target), run_finished(run, steps))
        }
        Event::RunEndUnrecorded { run, steps, why } => (
            run_channels(config, &run.target),
            format!(
                "{} (NOT in the deploy log: {why}; lever writes it there once it can)",
                run_finished(run, steps)
            ),
        ),
        Event::RunEndRecorded { run, .. } => (
            run_channels(config, &run.target),
            format!(
                "the deploy log has the end of {} {} #{} now",
                run.target,
                run.phase.as_str(),
                run.id
            ),
        ),
        Event::ExternalDeploy { report, hold, .. } => (
            run_channels(config, &report.target),
            external_deploy(report, hold.as_ref()),
        ),
        Event::Build(build) => {
            let channels = if build.channels.is_empty() {
                config.irc.channels.clone()
            } else {
                build.channels.clone()
            };
            (channels, build_line(build))
        }
        // Alerts arrive routed, line by line.
        Event::Alerts { lines, .. } => {
            return lines
                .iter()
                .map(|(channel, line)| (channel.clone(), alert_line(line)))
                .collect()
        }
        Event::Queue(news) => (run_channels(config, news.target()), queue_line(news)),
        // Set as a topic by the announcer's task, not said.
        Event::Topic { .. } => return Vec::new(),
        // As the log has it, with who: `FLAG video off by mygrant (transcoder melting)`.
        Event::FlagChanged { state, entry } => (
            config.irc.channels.clone(),
            flag_line(&entry.text, &state.changed_by, &state.reason),
        ),
        Event::Watch { report, entry } => (
            run_channels(config, &report.deploy().target),
            watch_line(config, report, &entry.text),
        ),
    };
    channels.into_iter().map(|c| (c, text.clone())).collect()
}

/// What the push queue says: turns start, end and are warned by name, so the person is pinged.
fn queue_line(news: &QueueNews) -> String {
    let with = |with: &Option<String>| {
        with.as_ref()
            .map(|w| format!(" (with {w})"))
            .unwrap_or_default()
    };
    match news {
        QueueNews::Joined {
            target,
            nick,
            with: w,
            position,
            note,
        } => {
            let note = if note.is_empty() {
                String::new()
            } else {
                format!(": {note}")
            };
            format!(
                "{nick}{} joined the {target} queue at #{position}{note}",
                with(w)
            )
        }
        QueueNews::Up {
            target,
            nick,
            with: w,
            lease,
        } => format!(
            "{nick}{}: your turn on {target} ({} to stage and deploy; !queue done when finished)",
            with(w),
            human_duration(*lease)
        ),
        QueueNews::Warned { target, nick, left } => format!(
            "{nick}: your turn on {target} ends in {}; a run in progress extends it",
            human_duration(*left)
        ),
        QueueNews::Extended { target, nick } => {
            format!("{nick}'s turn on {target} goes on while their run does")
        }
        QueueNews::Ready {
            target,
            nick,
            ready,
        } => match ready {
            true => format!("{nick} is ready on {target}"),
            false => format!("{nick} is NOT ready on {target}"),
        },
        QueueNews::Removed { target, nick, why } => match why {
            Removal::Left => format!("{nick} left the {target} queue"),
            Removal::Done => format!("{nick} is done with {target}"),
            Removal::Kicked { by } => format!("{by} took {nick} out of the {target} queue"),
            Removal::Expired { lasted } => format!(
                "{nick}'s turn on {target} is over ({} passed); next in line is up",
                human_duration(*lasted)
            ),
        },
    }
}

/// A flag's change as the log says it, with who made it before the reason.
fn flag_line(logged: &str, by: &str, reason: &str) -> String {
    let suffix = format!(" ({reason})");
    match logged.strip_suffix(&suffix).filter(|_| !reason.is_empty()) {
        Some(what) => format!("{what} by {by}{suffix}"),
        None => format!("{logged} by {by}"),
    }
}

/// A watch's finding, as logged (`logged`), with what to do about a regression.
fn watch_line(config: &Config, report: &WatchReport, logged: &str) -> String {
    let text = logged.to_owned();
    match report {
        WatchReport::Regression { holding: true, .. } => {
            format!(
                "{text}; lever is holding {} (auto_hold)",
                report.deploy().target
            )
        }
        WatchReport::Regression { deploy, .. } => format!(
            "{text}; to stop further deploys: {}hold {} <reason>",
            config.bot.prefix, deploy.target
        ),
        _ => text,
    }
}

fn hold_channels(config: &Config, hold: &Hold) -> Vec<String> {
    match &hold.target {
        Some(target) => config.target_channels(target).to_vec(),
        None => config.irc.channels.clone(),
    }
}

fn run_channels(config: &Config, target: &str) -> Vec<String> {
    config.target_channels(target).to_vec()
}

fn hold_placed(hold: &Hold) -> String {
    let mut text = format!(
        "NO DEPLOY PLEASE: {} held by {} ({})",
        hold.scope(),
        hold.by_nick,
        hold.reason
    );
    if let Some(until) = hold.expires_at {
        text.push_str(&format!(" until {} UTC", format_time(until)));
    }
    text
}

fn hold_lifted(hold: &Hold, by: &str, expired: bool) -> String {
    let held_for = Duration::from_millis((crate::store::now_ms() - hold.placed_at).max(0) as u64);
    let scope = hold.scope();
    if expired {
        return format!(
            "DEPLOY OK: {}'s hold on {scope} expired ({})",
            hold.by_nick, hold.reason
        );
    }
    if by.eq_ignore_ascii_case(&hold.by_nick) {
        format!(
            "DEPLOY OK: {by} lifted the hold on {scope} (held {})",
            human_duration(held_for)
        )
    } else {
        format!(
            "DEPLOY OK: {by} lifted {}'s hold on {scope} ({}, held {})",
            hold.by_nick,
            hold.reason,
            human_duration(held_for)
        )
    }
}

fn phase_verb(phase: Phase) -> &'static str {
    match phase {
        Phase::Stage => "staging",
        Phase::Deploy => "deploying",
        Phase::Rollback => "rolling back",
    }
}

fn phase_done(phase: Phase) -> &'static str {
    match phase {
        Phase::Stage => "staged",
        Phase::Deploy => "deployed",
        Phase::Rollback => "rolled back",
    }
}

fn run_started(run: &Run, steps: usize, detail: &str) -> String {
    let mut text = format!("{} is {} {}", run.user, phase_verb(run.phase), run.target);
    if !detail.is_empty() {
        text.push_str(&format!(": {detail}"));
    }
    // An engine that reports its own steps has no count in advance.
    if steps > 0 {
        text.push_str(&format!(
            " ({steps} step{})",
            if steps == 1 { "" } else { "s" }
        ));
    }
    if let Some(note) = &run.note {
        if note.starts_with("FORCED") {
            text.push_str(&format!(" — ⚠ {note}"));
        } else {
            text.push_str(&format!(" — {note}"));
        }
    }
    text
}

/// Flickr's `exporting svn.....ok (3202 ms)`.
fn step_line(target: &str, step: &StepRecord) -> String {
    let took = step
        .duration_ms()
        .map(|ms| human_duration(Duration::from_millis(ms.max(0) as u64)))
        .unwrap_or_default();
    match step.state.as_str() {
        "ok" => format!("{target}: {}.....ok ({took})", step.name),
        // The status already says the limit; the time taken adds the kill grace and confuses.
        "timed out" => {
            let status = step.status.as_deref().unwrap_or("");
            let limit = status.strip_prefix("timed out after ").unwrap_or(status);
            format!("{target}: {}.....TIMED OUT (limit {limit})", step.name)
        }
        state => {
            let status = step
                .status
                .as_deref()
                .map(|s| format!(", {s}"))
                .unwrap_or_default();
            format!(
                "{target}: {}.....{} ({took}{status})",
                step.name,
                state.to_uppercase()
            )
        }
    }
}

fn run_finished(run: &Run, steps: &[StepRecord]) -> String {
    let took = run
        .finished_at
        .map(|f| human_duration(Duration::from_millis((f - run.started_at).max(0) as u64)))
        .unwrap_or_default();
    let target = &run.target;
    let phase = run.phase.as_str();
    let failed_step = steps.iter().find(|s| s.state != "ok");
    // Steps are recorded as they start; the run knows how many it planned.
    let total = run.steps.max(steps.len());
    let at_step = |s: &StepRecord| format!("step {}/{} '{}'", s.idx + 1, total, s.name);
    match run.state {
        RunState::Succeeded => {
            let mut text = format!(
                "{target} {} by {} in {took}",
                phase_done(run.phase),
                run.user
            );
            if let Some(version) = &run.version {
                text.push_str(&format!(": {version}"));
                if let (Phase::Deploy | Phase::Rollback, Some(prev)) =
                    (run.phase, &run.prev_version)
                {
                    if prev != version {
                        text.push_str(&format!(" (was {prev})"));
                    }
                }
            }
            let mut timed: Vec<&StepRecord> =
                steps.iter().filter(|s| s.duration_ms().is_some()).collect();
            if timed.len() > 2 {
                timed.sort_by_key(|s| std::cmp::Reverse(s.duration_ms()));
                let slowest: Vec<String> = timed
                    .iter()
                    .take(2)
                    .map(|s| {
                        format!(
                            "{} {}",
                            s.name,
                            human_duration(Duration::from_millis(
                                s.duration_ms().unwrap_or(0).max(0) as u64
                            ))
                        )
                    })
                    .collect();
                text.push_str(&format!(" — slowest: {}", slowest.join(", ")));
            }
            text
        }
        RunState::Failed => {
            let mut text = format!("{target} {phase} by {} FAILED after {took}", run.user);
            match failed_step {
                Some(step) => {
                    text.push_str(&format!(" at {}", at_step(step)));
                    if let Some(status) = &step.status {
                        text.push_str(&format!(": {status}"));
                    }
                    let tail: Vec<&str> = step
                        .tail
                        .as_deref()
                        .unwrap_or("")
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .collect();
                    if !tail.is_empty() {
                        text.push_str(&format!(
                            " — last output: {}",
                            truncate_chars(&tail.join(" | "), 300)
                        ));
                    }
                }
                None => {
                    if let Some(error) = &run.error {
                        text.push_str(&format!(": {error}"));
                    }
                }
            }
            text
        }
        RunState::Cancelled => {
            let by = match (&run.stopped_by, run.error.as_deref()) {
                (Some(who), _) => format!(" by {who}"),
                (None, Some(e)) if e.starts_with("cancelled by the deploy engine") => {
                    " by the deploy engine".to_owned()
                }
                _ => String::new(),
            };
            let during = failed_step
                .map(|s| format!(" during {}", at_step(s)))
                .unwrap_or_default();
            format!(
                "{target} {phase} by {} CANCELLED{by}{during} after {took}",
                run.user
            )
        }
        RunState::Interrupted | RunState::Running => {
            let during = failed_step
                .map(|s| format!(" during {}", at_step(s)))
                .unwrap_or_default();
            // What lever found its steps had left running, and stopped, at this start.
            let leftover = run
                .error
                .as_deref()
                .and_then(|e| e.strip_prefix(crate::store::runs::INTERRUPTED))
                .and_then(|rest| rest.strip_prefix("; "))
                .map(|what| format!("; {what}"))
                .unwrap_or_default();
            format!(
                "{target} {phase} by {} was INTERRUPTED: lever stopped{during}{leftover}; {target} is free again (check it before you go on)",
                run.user
            )
        }
    }
}

/// Another tool's deploy: "Who? When? What?", and a warning if it went past a hold.
fn external_deploy(report: &ExternalDeploy, hold: Option<&Hold>) -> String {
    let version = report
        .version
        .as_ref()
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    let via = format!("via {}", report.via);
    let url = report
        .url
        .as_ref()
        .map(|u| format!(" — {u}"))
        .unwrap_or_default();
    let mut text = match report.status {
        ExternalStatus::Started => format!(
            "{} is deploying {}{version} ({via}){url}",
            report.user, report.target
        ),
        ExternalStatus::Succeeded => format!(
            "{} deployed by {}{version} ({via}){url}",
            report.target, report.user
        ),
        ExternalStatus::Failed => {
            let why = report
                .message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            format!(
                "{} deploy by {}{version} FAILED ({via}){why}{url}",
                report.target, report.user
            )
        }
    };
    if let Some(hold) = hold {
        text = format!(
            "⚠ {text} — while NO DEPLOY PLEASE is in force: {} held by {} ({})",
            hold.scope(),
            hold.by_nick,
            hold.reason
        );
    }
    text
}

/// A CI result: "build tools_statsd #31 SUCCESS in 2 min 3 s (alice) — URL".
fn build_line(build: &BuildReport) -> String {
    let number = build.number.map(|n| format!(" #{n}")).unwrap_or_default();
    let took = build
        .duration_ms
        .map(|ms| format!(" in {}", human_duration(Duration::from_millis(ms))))
        .unwrap_or_default();
    let user = build
        .user
        .as_ref()
        .map(|u| format!(" ({u})"))
        .unwrap_or_default();
    let url = build
        .url
        .as_ref()
        .map(|u| format!(" — {u}"))
        .unwrap_or_default();
    let status = match build.status.as_str() {
        "SUCCESS" | "STARTED" => build.status.clone(),
        other => format!("⚠ {other}"),
    };
    format!("build {}{number} {status}{took}{user}{url}", build.job)
}

/// An alert announcement's line in words.
pub fn alert_line(line: &AlertLine) -> String {
    match line {
        AlertLine::Group(group) => alert_group(group),
        AlertLine::Detail { instance, summary } => format!(
            "  {instance}: {}",
            summary.as_deref().unwrap_or("(no summary)")
        ),
        AlertLine::MoreDetails(n) => format!("  … and {n} more"),
        AlertLine::ProposeUnhold { alert, target } => {
            let (what, command) = match target {
                Some(t) => (t.as_str(), format!("!unhold {t}")),
                None => ("every target", "!unhold".to_owned()),
            };
            format!("{alert} resolved: the hold lever placed on {what} for it can go when you are happy — {command}")
        }
        AlertLine::HeldBack(held) => held_back(held),
    }
}

/// `[FIRING:3] HighErrorRate critical — www1, www2, www3 — 5xx above 2% — runbook: URL`.
fn alert_group(group: &AlertGroup) -> String {
    let mut head = format!(
        "[{}:{}] {}",
        group.status.to_uppercase(),
        group.count,
        group.name
    );
    if let Some(severity) = &group.severity {
        head.push_str(&format!(" {severity}"));
    }
    let mut parts = vec![head];
    if !group.instances.is_empty() {
        let mut shown = group.instances.clone();
        if group.more_instances > 0 {
            shown.push(format!("… and {} more", group.more_instances));
        }
        parts.push(shown.join(", "));
    }
    parts.extend(group.summary.clone());
    if let Some(runbook) = &group.runbook {
        parts.push(format!("runbook: {runbook}"));
    }
    let mut line = parts.join(" — ");
    if group.not_sent > 0 {
        line.push_str(&format!(
            " (+{} more Alertmanager did not send)",
            group.not_sent
        ));
    }
    line
}

/// "… held back 37 alert lines in the last minute: ⚠ SiteDown ×2, HighErrorRate ×30, …".
/// Critical alerts are named first: they are what must not get lost in a storm.
fn held_back(held: &[HeldBack]) -> String {
    const NAMED: usize = 5;
    let total: usize = held.iter().map(|h| h.lines).sum();
    let mut by_name: Vec<&HeldBack> = held.iter().collect();
    by_name.sort_by(|a, b| {
        b.critical
            .cmp(&a.critical)
            .then(b.lines.cmp(&a.lines))
            .then(a.name.cmp(&b.name))
    });
    let mut names: Vec<String> = by_name
        .iter()
        .take(NAMED)
        .map(|h| {
            format!(
                "{}{} ×{}",
                if h.critical { "⚠ " } else { "" },
                h.name,
                h.lines
            )
        })
        .collect();
    if by_name.len() > NAMED {
        let critical = by_name.iter().skip(NAMED).filter(|h| h.critical).count();
        let mut more = format!("and {} more names", by_name.len() - NAMED);
        if critical > 0 {
            more.push_str(&format!(" ({critical} critical)"));
        }
        names.push(more);
    }
    format!(
        "… held back {total} alert line{} in the last minute to keep the channel readable: {} — !alerts lists what is firing",
        if total == 1 { "" } else { "s" },
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{LogEntry, LogKind};
    use std::path::PathBuf;

    fn config() -> Config {
        let text = r##"
            [irc]
            server = "h"
            channels = ["#ops", "#dev"]
            [targets.site]
            channels = ["#ops"]
            [[targets.site.deploy]]
            name = "sync"
            run = ["true"]
            [targets.api]
            [[targets.api.deploy]]
            name = "sync"
            run = ["true"]
        "##;
        Config::from_toml(text, "t", PathBuf::from(".")).unwrap()
    }

    fn entry() -> LogEntry {
        LogEntry {
            id: 1,
            at: 0,
            user: "x".into(),
            target: None,
            kind: LogKind::Note,
            text: String::new(),
            run_id: None,
        }
    }

    fn hold(target: Option<&str>) -> Hold {
        Hold {
            target: target.map(Into::into),
            by_nick: "mygrant".into(),
            by_account: None,
            by_source: "mygrant!m@h".into(),
            reason: "db migration".into(),
            placed_at: crate::store::now_ms(),
            expires_at: None,
        }
    }

    fn run(phase: Phase, state: RunState) -> Run {
        Run {
            id: 7,
            target: "site".into(),
            phase,
            user: "harmes".into(),
            state,
            started_at: 0,
            finished_at: Some(136_000),
            version: Some("abc123".into()),
            prev_version: Some("9f8e7d".into()),
            note: None,
            error: None,
            steps: 3,
            stopped_by: None,
        }
    }

    fn step(idx: i64, name: &str, ms: i64, state: &str) -> StepRecord {
        StepRecord {
            run_id: 7,
            idx,
            name: name.into(),
            state: state.into(),
            started_at: 0,
            finished_at: Some(ms),
            status: (state != "ok").then(|| "exit code 2".into()),
            tail: (state != "ok").then(|| "compiling\nerror: boom\n".into()),
        }
    }

    #[test]
    fn holds_go_to_the_channels_of_what_they_hold() {
        let cfg = config();
        let site = lines(
            &cfg,
            &Event::HoldPlaced {
                hold: hold(Some("site")),
                entry: entry(),
            },
        );
        assert_eq!(
            site,
            [(
                "#ops".to_owned(),
                "NO DEPLOY PLEASE: site held by mygrant (db migration)".to_owned()
            )]
        );
        let all = lines(
            &cfg,
            &Event::HoldPlaced {
                hold: hold(None),
                entry: entry(),
            },
        );
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[1].1,
            "NO DEPLOY PLEASE: every target held by mygrant (db migration)"
        );
        let api = lines(
            &cfg,
            &Event::HoldPlaced {
                hold: hold(Some("api")),
                entry: entry(),
            },
        );
        assert_eq!(
            api.len(),
            2,
            "a target without channels is announced everywhere"
        );
    }

    #[test]
    fn a_lift_says_whose_hold_it_was() {
        let cfg = config();
        let by_other = lines(
            &cfg,
            &Event::HoldLifted {
                hold: hold(Some("site")),
                by: "aaron".into(),
                expired: false,
                entry: entry(),
            },
        );
        assert!(
            by_other[0]
                .1
                .starts_with("DEPLOY OK: aaron lifted mygrant's hold on site (db migration, held "),
            "{by_other:?}"
        );
        let expired = lines(
            &cfg,
            &Event::HoldLifted {
                hold: hold(None),
                by: "lever".into(),
                expired: true,
                entry: entry(),
            },
        );
        assert_eq!(
            expired[0].1,
            "DEPLOY OK: mygrant's hold on every target expired (db migration)"
        );
    }

    #[test]
    fn a_deploy_is_announced_with_who_what_and_the_slowest_steps() {
        let cfg = config();
        let started = lines(
            &cfg,
            &Event::RunStarted {
                run: run(Phase::Deploy, RunState::Running),
                entry: entry(),
                steps: 6,
                detail: "abc123 → live, was 9f8e7d".into(),
            },
        );
        assert_eq!(
            started[0].1,
            "harmes is deploying site: abc123 → live, was 9f8e7d (6 steps)"
        );
        let steps = [
            step(0, "pulling site", 10_096, "ok"),
            step(1, "stage 1", 25_322, "ok"),
            step(2, "stage 3", 45_952, "ok"),
        ];
        let done = lines(
            &cfg,
            &Event::RunFinished {
                run: run(Phase::Deploy, RunState::Succeeded),
                entry: entry(),
                steps: steps.to_vec(),
            },
        );
        assert_eq!(
            done[0].1,
            "site deployed by harmes in 2 min 16 s: abc123 (was 9f8e7d) — slowest: stage 3 46.0 s, stage 1 25.3 s"
        );
    }

    #[test]
    fn a_failure_names_the_step_its_status_and_output() {
        let cfg = config();
        let steps = [
            step(0, "exporting svn", 3202, "ok"),
            step(1, "precompiling", 4100, "failed"),
        ];
        let mut failed = run(Phase::Stage, RunState::Failed);
        failed.finished_at = Some(12_100);
        let text = &lines(
            &cfg,
            &Event::RunFinished {
                run: failed,
                entry: entry(),
                steps: steps.to_vec(),
            },
        )[0]
        .1;
        assert_eq!(
            text,
            "site stage by harmes FAILED after 12.1 s at step 2/3 'precompiling': exit code 2 — last output: compiling | error: boom"
        );
    }

    #[test]
    fn steps_read_like_flickrs_staging_page() {
        let cfg = config();
        let ok = lines(
            &cfg,
            &Event::StepFinished {
                target: "site".into(),
                phase: Phase::Stage,
                step: step(0, "exporting svn", 3202, "ok"),
                to_channel: true,
            },
        );
        assert_eq!(ok[0].1, "site: exporting svn.....ok (3202 ms)");
    }

    #[test]
    fn cancelled_and_interrupted_runs_say_so() {
        let cfg = config();
        let mut cancelled = run(Phase::Deploy, RunState::Cancelled);
        cancelled.error = Some("cancelled during 'stage 2' by bob".into());
        cancelled.stopped_by = Some("bob".into());
        let steps = vec![
            step(0, "stage 1", 1000, "ok"),
            step(1, "stage 2", 2000, "cancelled"),
        ];
        let text = &lines(
            &cfg,
            &Event::RunFinished {
                run: cancelled,
                entry: entry(),
                steps: steps.clone(),
            },
        )[0]
        .1;
        assert_eq!(
            text,
            "site deploy by harmes CANCELLED by bob during step 2/3 'stage 2' after 2 min 16 s"
        );
        let mut interrupted = run(Phase::Deploy, RunState::Interrupted);
        interrupted.finished_at = Some(5_000);
        let mut steps = steps;
        steps[1].state = "interrupted".into();
        let text = &lines(
            &cfg,
            &Event::RunFinished {
                run: interrupted,
                entry: entry(),
                steps,
            },
        )[0]
        .1;
        assert!(text.starts_with("site deploy by harmes was INTERRUPTED: lever stopped during step 2/3 'stage 2'; site is free again"), "{text}");
    }

    #[test]
    fn an_entry_no_lever_said_is_said_late_in_its_targets_channels_as_the_log_has_it() {
        let config = config();
        let held = LogEntry {
            at: 1_245_330_325_000,
            user: "mygrant".into(),
            target: Some("site".into()),
            text: "NO DEPLOY PLEASE (db migration)".into(),
            ..entry()
        };
        assert_eq!(
            replayed(&config, &held),
            [(
                "#ops".to_owned(),
                "[2009-06-18 13:05:25] [mygrant] NO DEPLOY PLEASE (db migration) (not announced before lever stopped)".to_owned()
            )]
        );
        let everyone = LogEntry {
            target: None,
            ..held.clone()
        };
        let channels: Vec<String> = replayed(&config, &everyone)
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        assert_eq!(channels, ["#ops", "#dev"]);
        let gone = LogEntry {
            target: Some("a target since removed".into()),
            ..held
        };
        assert_eq!(replayed(&config, &gone).len(), 2);
    }
}
