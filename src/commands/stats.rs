//! `!stats [target] [days]`: how the team ships, from the deploy log and runs.

use super::{CommandError, Ctx, Example, Spec};
use crate::metrics::stats;
use crate::store::{now_ms, LogKind};

const DEFAULT_DAYS: u32 = 7;
const MAX_DAYS: u32 = 366;
const DAY_MS: i64 = 86_400_000;

pub const SPEC: Spec = Spec {
    name: "stats",
    aliases: &[],
    usage: "[target] [days]",
    help: "Deploys per day, median and p90 stage and deploy times, failure rate, time under holds, and time from a failed deploy to the next good one, over the last 7 days (or days).",
    role: None,
    examples: &[Example {
        input: "!stats site 30",
        reply: r"site, last 30 days: 0 deploys \(0 a day\) · no stages · no deploys · never held",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let (days, target) = ctx.known().number_and_target(
        &ctx.args,
        |n| (1..=u64::from(MAX_DAYS)).contains(&n),
        || CommandError::User(format!("days is a number from 1 to {MAX_DAYS}")),
    )?;
    let days = days.map_or(DEFAULT_DAYS, |n| n as u32);
    let until = now_ms();
    let from = until - i64::from(days) * DAY_MS;
    let store = &ctx.bot.store;
    let runs = store.runs_since(from, target.as_deref())?;
    // Every hold and lift so far: a hold placed before the window may cover part of it.
    let holds = store.log_between(&[LogKind::Hold, LogKind::Unhold], 0, until)?;
    let figures = stats::compute(&runs, &holds, target.as_deref(), from, until);
    let scope = target.as_deref().unwrap_or("all targets");
    ctx.reply(&stats::describe(&figures, scope, days));
    Ok(())
}
