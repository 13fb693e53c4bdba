//! `!unhold [target]`: DEPLOY OK.

use super::args::Words;
use super::{CommandError, Ctx, Example, Spec};
use crate::access::Role;

pub const SPEC: Spec = Spec {
    name: "unhold",
    aliases: &["release"],
    usage: "[target]",
    help: "Lifts a hold (DEPLOY OK): the named target's, else the hold on every target, else the only hold there is. Lifting someone else's hold is allowed and says whose it was.",
    role: Some(Role::Hold),
    examples: &[Example {
        input: "!unhold",
        reply: r"alice: nothing is held",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    // `[target]`, the name checked before the shape, as `!stage` does.
    let mut words = Words::new(&ctx.args);
    let target = words
        .next()
        .map(|w| ctx.known().target(Some(w)))
        .transpose()?;
    words.end()?;
    let hold = ctx
        .bot
        .deploys
        .unhold(target.as_deref(), &ctx.msg.who, false)?;
    match &hold.target {
        Some(t) => ctx.ack_if_unheard(t, &format!("{t}: DEPLOY OK")),
        None => ctx.ack_if_unheard_everywhere("DEPLOY OK"),
    }
    Ok(())
}
