//! `!kill NAME <reason>`: a contingency switch to its safe value (its default, for everyone),
//! after a `!confirm <code>` from the same person.

use super::args::Words;
use super::flag::flag_error;
use super::{CommandError, Ctx, Example, Spec};
use crate::access::Role;
use crate::chat::text::clean_line;

pub const SPEC: Spec = Spec {
    name: "kill",
    aliases: &[],
    usage: "<flag> <reason>",
    help: "Turns a contingency switch to its safe value for everyone (dropping its rollout and beta list), once you !confirm the code it gives; logged and announced.",
    role: Some(Role::Flags),
    examples: &[Example {
        input: "!kill video transcoder melting",
        reply: r"alice: no flag 'video'",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let (name, reason) = parse(&ctx.args)?;
    let flags = &ctx.bot.flags;
    let def = flags.def(name).map_err(flag_error)?;
    let code = flags
        .ask_kill(&def.key, &ctx.msg.who, &reason)
        .map_err(flag_error)?;
    ctx.tell(&format!(
        "this serves {} to everyone and drops {}'s rollout and beta list; to go ahead, say {}confirm {code} within 2 minutes",
        def.default,
        def.key,
        ctx.prefix()
    ));
    Ok(())
}

/// `<flag> <reason>`: the reason is not optional (it is what the channel will read).
fn parse(args: &str) -> Result<(&str, String), CommandError> {
    let mut words = Words::new(args);
    let name = words.next().ok_or(CommandError::Usage)?;
    let reason = clean_line(words.rest(), 200);
    if reason.is_empty() {
        return Err(CommandError::Usage);
    }
    Ok((name, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kill_names_a_flag_and_why() {
        assert_eq!(
            parse("video transcoder melting").unwrap(),
            ("video", "transcoder melting".to_owned())
        );
        assert!(matches!(parse("video"), Err(CommandError::Usage)));
        assert!(matches!(parse(""), Err(CommandError::Usage)));
    }
}
