//! `!confirm <code>`: goes ahead with what asked for a code: a deploy of a `confirm = true`
//! target, or a `!kill`. Only the person who asked can confirm (their role was checked then).

use super::args::Words;
use super::{CommandError, Ctx, Example, Spec};

pub const SPEC: Spec = Spec {
    name: "confirm",
    aliases: &[],
    usage: "<code>",
    help: "Confirms a deploy that showed what it will ship, or a !kill, with the code it gave; only the person who asked can confirm.",
    role: None,
    examples: &[Example {
        input: "!confirm ABCD",
        reply: r"alice: no deploy is waiting for code ABCD",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let code = parse(&ctx.args)?;
    if let Some(killed) = ctx.bot.flags.confirm_kill(code, &ctx.msg.who) {
        let state = killed.map_err(super::flag::flag_error)?;
        ctx.ack_if_unheard_everywhere(&format!("{} killed", state.key));
        return Ok(());
    }
    let run = ctx.bot.deploys.confirm(code, &ctx.msg.who)?;
    ctx.ack_if_unheard(&run.target, &format!("deploying {}", run.target));
    Ok(())
}

/// `<code>`: one word of at most 16 bytes (codes are short; anything longer is a typo).
fn parse(args: &str) -> Result<&str, CommandError> {
    let mut words = Words::new(args);
    let code = words.next().filter(|c| c.len() <= 16);
    words.end()?;
    code.ok_or(CommandError::Usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_one_short_word() {
        assert_eq!(parse(" ABCD ").unwrap(), "ABCD");
        for bad in ["", "ABCD EFGH", &"A".repeat(17)] {
            assert!(matches!(parse(bad), Err(CommandError::Usage)), "{bad:?}");
        }
    }
}
