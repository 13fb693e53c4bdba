//! `!version`: which lever is this?

use super::{CommandError, Ctx, Example, Spec};
use crate::bot::VERSION;

pub const SPEC: Spec = Spec {
    name: "version",
    aliases: &[],
    usage: "",
    help: "Shows lever's version and how long it has been running (and, with levers sharing a PostgreSQL store, which one answered and its lease's epoch).",
    role: None,
    examples: &[Example {
        input: "!version",
        reply: r"lever \d+\.\d+\.\d+, up [\d.]+ (ms|s|min .*|h .*|d .*)",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let up = ctx.bot.started.elapsed().unwrap_or_default();
    // With levers sharing a store: which one answered, and in which epoch of the lease.
    let role = &ctx.bot.role;
    let node = role
        .epoch()
        .map(|epoch| format!(", on {} (epoch {epoch})", role.node()))
        .unwrap_or_default();
    ctx.reply(&format!(
        "{VERSION}, up {}{node}",
        crate::chat::text::human_duration(up)
    ));
    Ok(())
}
