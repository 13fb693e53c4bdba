//! `!ping`: is the bot alive and listening?

use super::{CommandError, Ctx, Example, Spec};

pub const SPEC: Spec = Spec {
    name: "ping",
    aliases: &[],
    usage: "",
    help: "Checks that lever is alive; it answers pong.",
    role: None,
    examples: &[Example {
        input: "!ping",
        reply: "pong",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    ctx.reply("pong");
    Ok(())
}
