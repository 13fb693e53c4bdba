//! `!hold [target] [duration] <reason>`: NO DEPLOY PLEASE.

use super::{args, CommandError, Ctx, Example, Spec};
use crate::access::Role;

/// Longest reason kept; the deploy log is read in a channel.
const MAX_REASON: usize = 200;

pub const SPEC: Spec = Spec {
    name: "hold",
    aliases: &[],
    usage: "[target|all] [duration] <reason>",
    help: "Writes NO DEPLOY PLEASE into the deploy log and blocks deploys of a target (every target if none is named, or 'all') until !unhold, or until a duration such as 2h has passed.",
    role: Some(Role::Hold),
    examples: &[
        Example {
            input: "!hold db migration",
            reply: r"NO DEPLOY PLEASE: every target held by alice \(db migration\)",
        },
        Example {
            input: "!hold site 2h flaky tests",
            reply: r"NO DEPLOY PLEASE: site held by alice \(flaky tests\) until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC",
        },
    ],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let text = crate::chat::text::sanitize_line(&ctx.args).into_owned();
    let mut rest = text.trim();
    let mut target = None;
    let (word, tail) = first_word(rest);
    if args::is_target(&ctx, word) {
        target = Some(word.to_owned());
        rest = tail;
    } else if word == "all" {
        rest = tail;
    } else if let Some(close) = args::close_target(&ctx, word) {
        // "!hold sitee freeze" must not quietly hold every target.
        return Err(CommandError::User(format!(
            "no target '{}' (did you mean {close}?); to hold every target, say {}hold all <reason>",
            crate::chat::text::truncate_chars(word, 32),
            ctx.prefix()
        )));
    }
    let (word, tail) = first_word(rest);
    let duration = args::duration(word);
    if duration.is_some() {
        rest = tail;
    }
    let reason = rest.trim();
    if reason.is_empty() {
        return Err(CommandError::User(format!(
            "say why: {}",
            ctx.spec.synopsis(ctx.prefix())
        )));
    }
    let reason = crate::chat::text::truncate_chars(reason, MAX_REASON);
    let (hold, running) =
        ctx.bot
            .deploys
            .hold(target.as_deref(), &ctx.msg.who, &reason, duration)?;
    if let Some(note) = running {
        ctx.tell(&note);
    }
    match &hold.target {
        Some(t) => ctx.ack_if_unheard(t, &format!("{t} is held")),
        None => ctx.ack_if_unheard_everywhere("every target is held"),
    }
    Ok(())
}

/// The first word and the rest, trimmed.
fn first_word(text: &str) -> (&str, &str) {
    let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    (word, rest.trim_start())
}
