//! `!status [target]`: holds, live and staged versions, and the run in progress.

use std::time::Duration;

use super::{CommandError, Ctx, Example, Spec};
use crate::chat::text::{human_duration, truncate_chars};
use crate::deploy::TargetStatus;
use crate::store::{format_time, now_ms};

/// Targets listed by a bare `!status` before "and N more".
const MAX_TARGETS: usize = 10;

pub const SPEC: Spec = Spec {
    name: "status",
    aliases: &["st"],
    usage: "[target]",
    help: "Shows each target's holds, live and staged versions, and the run in progress with its current step, elapsed time and last output line (and, with levers sharing a PostgreSQL store, which one answered).",
    role: None,
    examples: &[Example {
        input: "!status",
        reply: r"site: not held · nothing live yet · nothing staged · idle",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let targets: Vec<String> = match ctx.known().maybe_target(&ctx.args)? {
        Some(named) => vec![named],
        None => ctx.bot.config.targets.keys().cloned().collect(),
    };
    if targets.is_empty() {
        return Err(CommandError::User(
            "no targets are configured: add [targets.NAME] to the config".into(),
        ));
    }
    let mut lines = Vec::new();
    for target in targets.iter().take(MAX_TARGETS) {
        lines.push(describe(&ctx.bot.deploys.status(target)?));
    }
    if targets.len() > MAX_TARGETS {
        lines.push(format!(
            "… and {} more: !status <target>",
            targets.len() - MAX_TARGETS
        ));
    }
    // With levers sharing a store: which one answered, in which epoch of the lease.
    if let Some(epoch) = ctx.bot.role.epoch() {
        lines.push(format!(
            "answered by lever on {} (epoch {epoch})",
            ctx.bot.role.node()
        ));
    }
    ctx.reply(&lines.join("\n"));
    Ok(())
}

/// One line: `site: HELD by mygrant … · live abc123 (…) · staged def456 (…) · idle`.
pub fn describe(status: &TargetStatus) -> String {
    let mut parts = Vec::new();
    if status.holds.is_empty() {
        parts.push("not held".to_owned());
    }
    for hold in &status.holds {
        let held_for = Duration::from_millis((now_ms() - hold.placed_at).max(0) as u64);
        let scope = if hold.target.is_none() {
            " (every target)"
        } else {
            ""
        };
        let mut text = format!(
            "HELD{scope} by {} since {} UTC ({}): {}",
            hold.by_nick,
            format_time(hold.placed_at),
            human_duration(held_for),
            hold.reason
        );
        if let Some(until) = hold.expires_at {
            text.push_str(&format!(", until {} UTC", format_time(until)));
        }
        parts.push(text);
    }
    let version = |run: &crate::store::Run| {
        run.version
            .clone()
            .unwrap_or_else(|| format!("run {}", run.id))
    };
    let when = |run: &crate::store::Run| format_time(run.finished_at.unwrap_or(run.started_at));
    parts.push(match &status.live {
        Some(run) => format!(
            "live {} ({} by {} at {} UTC)",
            version(run),
            run.phase.as_str(),
            run.user,
            when(run)
        ),
        None => "nothing live yet".to_owned(),
    });
    parts.push(match &status.staged {
        Some(run) => format!(
            "staged {} (by {} at {} UTC)",
            version(run),
            run.user,
            when(run)
        ),
        None => "nothing staged".to_owned(),
    });
    parts.push(match &status.active {
        None => "idle".to_owned(),
        Some(active) => {
            let mut text = format!(
                "{} is {} it for {}",
                active.user,
                active.phase_verb(),
                human_duration(active.started.elapsed())
            );
            if let Some((index, name, since)) = &active.step {
                text.push_str(&format!(
                    ", {} for {}",
                    active.step_label(*index, name),
                    human_duration(since.elapsed())
                ));
            }
            if let Some(line) = active.output.last_line() {
                text.push_str(&format!(" — last output: {}", truncate_chars(&line, 120)));
            }
            text
        }
    });
    for run in &status.unrecorded {
        parts.push(format!(
            "{} #{} ended {} at {} UTC, NOT yet in the deploy log (the store cannot take writes; lever keeps trying)",
            run.phase.as_str(),
            run.id,
            run.state.as_str(),
            when(run)
        ));
    }
    format!("{}: {}", status.target, parts.join(" · "))
}
