//! `!stage [target]`: the one-step staging build.

use super::{CommandError, Ctx, Example, Spec};
use crate::access::Role;

pub const SPEC: Spec = Spec {
    name: "stage",
    aliases: &[],
    usage: "[target]",
    help: "Runs the one-step staging build of a target (the default target if none is named); each step reports its time.",
    role: Some(Role::Stage),
    examples: &[Example {
        input: "!stage",
        reply: r"alice is staging site \(2 steps\)\nsite staged by alice in \d+ ms: abc123",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let target = ctx.known().only_target(&ctx.args)?;
    ctx.bot.deploys.stage(&target, &ctx.msg.who)?;
    ctx.ack_if_unheard(&target, &format!("staging {target}"));
    Ok(())
}
