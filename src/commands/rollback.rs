//! `!rollback [target] [force]`: runs the target's rollback steps with the previous good version.

use super::{CommandError, Ctx, Example, Spec};
use crate::access::Role;

pub const SPEC: Spec = Spec {
    name: "rollback",
    aliases: &[],
    usage: "[target] [force]",
    help: "Rolls a target back to the version live before the current one (LEVER_VERSION), logged and announced like a deploy; holds apply as for !deploy.",
    role: Some(Role::Deploy),
    examples: &[Example {
        input: "!rollback",
        reply: r"alice: site has no earlier good version to roll back to",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let (target, force) = ctx.known().target_and_force(&ctx.args)?;
    if force {
        ctx.check_force()?;
    }
    ctx.bot.deploys.rollback(&target, &ctx.msg.who, force)?;
    ctx.ack_if_unheard(&target, &format!("rolling back {target}"));
    Ok(())
}
