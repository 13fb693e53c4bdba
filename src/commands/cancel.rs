//! `!cancel [target]`: stops a run in progress.

use super::{CommandError, Ctx, Example, Spec};
use crate::access::Role;
use crate::store::Phase;

pub const SPEC: Spec = Spec {
    name: "cancel",
    aliases: &["abort"],
    usage: "[target]",
    help: "Stops the run in progress on a target (the only busy one if none is named): kills its step's processes and marks the run cancelled. Cancelling a deploy needs the deploy role.",
    role: Some(Role::Stage),
    examples: &[Example {
        input: "!cancel",
        reply: r"alice: nothing is running on site",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let known = ctx.known();
    let target = match known.maybe_target(&ctx.args)? {
        Some(named) => named,
        None => match ctx.bot.deploys.busy_targets().as_slice() {
            [only] => only.clone(),
            _ => known.target(None)?,
        },
    };
    if let Some(active) = ctx.bot.deploys.status(&target)?.active {
        if active.phase != Phase::Stage && !ctx.bot.access.allows(&ctx.msg, Role::Deploy) {
            return Err(CommandError::User(format!(
                "cancelling a {} needs the deploy role, which you do not have",
                active.phase.as_str()
            )));
        }
    }
    let active = ctx.bot.deploys.cancel(&target, &ctx.msg.who)?;
    let step = active
        .step
        .as_ref()
        .map(|(i, name, _)| format!(", {}", active.step_label(*i, name)))
        .unwrap_or_default();
    ctx.tell(&format!(
        "cancelling {}'s {} of {target}{step}",
        active.user,
        active.phase.as_str()
    ));
    Ok(())
}
