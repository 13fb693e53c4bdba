//! `!changes [target]`: what a deploy would ship now.

use super::{args, CommandError, Ctx, Example, Spec};

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
    let mut words = ctx.args.split_whitespace();
    let target = args::target(&ctx, words.next())?;
    if words.next().is_some() {
        return Err(CommandError::Usage);
    }
    let text = ctx.bot.deploys.changes(&target)?;
    ctx.reply(&text);
    Ok(())
}
