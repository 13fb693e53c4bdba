//! `!rollback [target] [force]`: runs the target's rollback steps with the previous good version.

use super::{args, CommandError, Ctx, Example, Spec};
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
    let words: Vec<&str> = ctx.args.split_whitespace().collect();
    let (target, force) = match words.as_slice() {
        [] => (None, false),
        ["force"] => (None, true),
        [t] => (Some(*t), false),
        [t, "force"] => (Some(*t), true),
        _ => return Err(CommandError::Usage),
    };
    let target = args::target(&ctx, target)?;
    if force && !ctx.bot.access.allows(&ctx.msg, Role::Admin) {
        return Err(CommandError::User(
            "'force' needs the admin role, which you do not have".into(),
        ));
    }
    ctx.bot.deploys.rollback(&target, &ctx.msg.who, force)?;
    ctx.ack_if_unheard(&target, &format!("rolling back {target}"));
    Ok(())
}
