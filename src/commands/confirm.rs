//! `!confirm <code>`: goes ahead with a deploy of a `confirm = true` target.

use super::{CommandError, Ctx, Example, Spec};
use crate::access::Role;

pub const SPEC: Spec = Spec {
    name: "confirm",
    aliases: &[],
    usage: "<code>",
    help: "Confirms a deploy that showed what it will ship and asked for a code; only the person who asked can confirm.",
    role: Some(Role::Deploy),
    examples: &[Example {
        input: "!confirm ABCD",
        reply: r"alice: no deploy is waiting for code ABCD",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let mut words = ctx.args.split_whitespace();
    let (Some(code), None) = (words.next(), words.next()) else {
        return Err(CommandError::Usage);
    };
    if code.len() > 16 {
        return Err(CommandError::Usage);
    }
    let run = ctx.bot.deploys.confirm(code, &ctx.msg.who)?;
    ctx.ack_if_unheard(&run.target, &format!("deploying {}", run.target));
    Ok(())
}
