//! `!deploy [target] [force]`: pushes the staged build live, unless a hold says no.

use super::{CommandError, Ctx, Example, Spec};
use crate::access::Role;
use crate::deploy::DeployStart;

pub const SPEC: Spec = Spec {
    name: "deploy",
    aliases: &["ship"],
    usage: "[target] [force]",
    help: "Deploys the staged build of a target. Refused while a hold covers it, except for the person who placed the hold; admins may add 'force' to pass anyone's hold (logged loudly).",
    role: Some(Role::Deploy),
    examples: &[Example {
        input: "!deploy",
        reply: r"alice: site has not been staged yet: !stage site first",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let (target, force) = ctx.known().target_and_force(&ctx.args)?;
    if force {
        ctx.check_force()?;
    }
    match ctx.bot.deploys.deploy(&target, &ctx.msg.who, force)? {
        DeployStart::Started(_) => ctx.ack_if_unheard(&target, &format!("deploying {target}")),
        DeployStart::NeedsConfirm { summary, .. } => ctx.tell(&summary),
    }
    Ok(())
}
