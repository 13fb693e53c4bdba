//! `!log [n] [target]`: the deploy log, newest first, as Flickr's deploy page showed it.

use super::{CommandError, Ctx, Example, Spec};
use crate::chat::message::Place;

/// Entries shown without a count.
const DEFAULT_LINES: usize = 5;
/// Most entries in a channel (one line each); more in private.
const CHANNEL_MAX: usize = 15;
const PRIVATE_MAX: usize = 100;

pub const SPEC: Spec = Spec {
    name: "log",
    aliases: &["deploylog"],
    usage: "[n] [target]",
    help: "Shows the last entries of the deploy log (5 unless you say how many), newest first; with a target, that target's entries and holds on every target.",
    role: None,
    examples: &[Example {
        input: "!log",
        reply: r"the deploy log is empty",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let (count, target) =
        ctx.known()
            .number_and_target(&ctx.args, |n| n > 0, || CommandError::Usage)?;
    let count = count.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let max = match ctx.msg.place {
        Place::Channel(_) => CHANNEL_MAX,
        Place::Private => PRIVATE_MAX,
    };
    let wanted = count.unwrap_or(DEFAULT_LINES);
    let entries = ctx.bot.deploys.log(wanted.min(max), target.as_deref())?;
    if entries.is_empty() {
        ctx.reply("the deploy log is empty");
        return Ok(());
    }
    let lines: Vec<String> = entries.iter().map(ToString::to_string).collect();
    let mut text = lines.join("\n");
    if wanted > max {
        text.push_str(&format!(
            "\n(at most {max} here; ask me in private for more)"
        ));
    }
    ctx.reply(&text);
    Ok(())
}
