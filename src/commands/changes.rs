//! `!changes [target]`: what a deploy would ship now.

use super::{CommandError, Ctx, Example, Spec};

pub const SPEC: Spec = Spec {
    name: "changes",
    aliases: &["diff"],
    usage: "[target]",
    help: "Shows what a deploy of a target would ship: the staged version over the live one, with the changes link when configured.",
    role: None,
    examples: &[Example {
        input: "!changes",
        reply: r"alice: site has not been staged yet: !stage site first",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let target = ctx.known().only_target(&ctx.args)?;
    let text = ctx.bot.deploys.changes(&target)?;
    ctx.reply(&text);
    Ok(())
}
