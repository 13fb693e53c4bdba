//! `!hold [target] [duration] <reason>`: NO DEPLOY PLEASE.

use std::time::Duration;

use super::args::{self, Known, Words};
use super::{CommandError, Ctx, Example, Spec};
use crate::access::Role;
use crate::chat::text::{sanitize_line, truncate_chars};

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
    let request = parse(&ctx.args, &ctx.known())?;
    let (hold, running) = ctx.bot.deploys.hold(
        request.target.as_deref(),
        &ctx.msg.who,
        &request.reason,
        request.lasting,
    )?;
    if let Some(note) = running {
        ctx.tell(&note);
    }
    match &hold.target {
        Some(t) => ctx.ack_if_unheard(t, &format!("{t} is held")),
        None => ctx.ack_if_unheard_everywhere("every target is held"),
    }
    Ok(())
}

/// What `!hold` was asked to do.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    /// `None`: every target.
    target: Option<String>,
    lasting: Option<Duration>,
    /// One line, at most [`MAX_REASON`] characters.
    reason: String,
}

/// `[target|all] [duration] <reason>`. A word one edit from a target is refused, so
/// `!hold sitee freeze` never quietly holds every target.
fn parse(args: &str, known: &Known) -> Result<Request, CommandError> {
    let text = sanitize_line(args);
    let mut words = Words::new(&text);
    let mut target = None;
    if let Some(named) = words.next_if(|w| known.is_target(w)) {
        target = Some(named.to_owned());
    } else if words.next_if(|w| w == "all").is_none() {
        if let Some(close) = words.peek().and_then(|w| known.close_target(w)) {
            return Err(CommandError::User(format!(
                "no target '{}' (did you mean {close}?); to hold every target, say {}hold all <reason>",
                truncate_chars(words.peek().unwrap_or_default(), 32),
                known.prefix
            )));
        }
    }
    let lasting = words.peek().and_then(args::duration);
    if lasting.is_some() {
        words.next();
    }
    let reason = words.rest();
    if reason.is_empty() {
        return Err(CommandError::User(format!(
            "say why: {}",
            SPEC.synopsis(known.prefix)
        )));
    }
    Ok(Request {
        target,
        lasting,
        reason: truncate_chars(reason, MAX_REASON).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::args::tests::known;

    fn hold(target: Option<&str>, lasting: Option<u64>, reason: &str) -> Request {
        Request {
            target: target.map(str::to_owned),
            lasting: lasting.map(Duration::from_secs),
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn target_duration_and_reason_are_each_optional_but_the_reason() {
        let parse = |args| parse(args, &known());
        assert_eq!(
            parse("db migration").unwrap(),
            hold(None, None, "db migration")
        );
        assert_eq!(
            parse("all db  migration").unwrap(),
            hold(None, None, "db  migration")
        );
        assert_eq!(
            parse("site 2h flaky tests").unwrap(),
            hold(Some("site"), Some(7200), "flaky tests")
        );
        assert_eq!(
            parse("30m freeze").unwrap(),
            hold(None, Some(1800), "freeze")
        );
        // A number alone is part of the reason, not a duration.
        assert_eq!(
            parse("api 2 bugs").unwrap(),
            hold(Some("api"), None, "2 bugs")
        );
    }

    #[test]
    fn a_missing_reason_or_a_near_miss_of_a_target_is_refused() {
        let refusal = |args| match parse(args, &known()) {
            Err(CommandError::User(text)) => text,
            other => panic!("{args:?} was not refused: {other:?}"),
        };
        assert_eq!(
            refusal("site 2h"),
            "say why: !hold [target|all] [duration] <reason>"
        );
        assert_eq!(
            refusal(""),
            "say why: !hold [target|all] [duration] <reason>"
        );
        assert_eq!(
            refusal("sitee freeze"),
            "no target 'sitee' (did you mean site?); to hold every target, say !hold all <reason>"
        );
    }

    #[test]
    fn a_reason_is_one_line_of_at_most_200_characters() {
        let parse = |args: &str| parse(args, &known()).unwrap().reason;
        assert_eq!(parse("db\r\nPRIVMSG #ops :owned"), "dbPRIVMSG #ops :owned");
        assert_eq!(parse(&"x".repeat(300)).chars().count(), MAX_REASON);
    }
}
