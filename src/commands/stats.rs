//! `!stats [target] [days]`: how the team ships, from the deploy log and runs.

use super::{args, CommandError, Ctx, Example, Spec};
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
    let mut target = None;
    let mut days = None;
    for word in ctx.args.split_whitespace() {
        match word.parse::<u32>() {
            Ok(n) if days.is_none() && (1..=MAX_DAYS).contains(&n) => days = Some(n),
            Ok(_) => {
                return Err(CommandError::User(format!(
                    "days is a number from 1 to {MAX_DAYS}"
                )))
            }
            Err(_) if target.is_none() => target = Some(args::target(&ctx, Some(word))?),
            Err(_) => return Err(CommandError::Usage),
        }
    }
    let days = days.unwrap_or(DEFAULT_DAYS);
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
