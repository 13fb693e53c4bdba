//! `!silence <alert|matchers> <duration> [comment]` and `!ack <alert>`: silences in
//! Alertmanager, written to the deploy log with who did it.

use std::time::Duration;

use super::{args, CommandError, Ctx, Example, Spec};
use crate::access::Role;
use crate::alerts::client::Matcher;
use crate::chat::text::{human_duration, sanitize_line, truncate_chars};
use crate::store::log::NewEntry;

/// How long `!ack` silences an alert.
const ACK_FOR: Duration = Duration::from_secs(3600);
/// The longest silence lever creates.
const MAX_SILENCE: Duration = Duration::from_secs(30 * 24 * 3600);

pub const SPEC: Spec = Spec {
    name: "silence",
    aliases: &[],
    usage: "<alert|label=value,...> <duration> [comment]",
    help: "Silences an alert (or every alert the matchers select) in Alertmanager for a while; logged with who did it.",
    role: Some(Role::Alerts),
    examples: &[Example {
        input: "!silence HighErrorRate 2h deploy in progress",
        reply: r"alice: no \[alertmanager\] url is configured; add it to use !alerts, !ack and !silence",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

pub const ACK: Spec = Spec {
    name: "ack",
    aliases: &[],
    usage: "<alert>",
    help: "Acknowledges an alert: silences it in Alertmanager for an hour, logged with who did it.",
    role: Some(Role::Alerts),
    examples: &[Example {
        input: "!ack HighErrorRate",
        reply: r"alice: no \[alertmanager\] url is configured; add it to use !alerts, !ack and !silence",
    }],
    run: |ctx| Box::pin(ack(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let mut words = ctx.args.splitn(3, char::is_whitespace);
    let (Some(what), Some(lasting)) = (words.next(), words.next()) else {
        return Err(CommandError::Usage);
    };
    let lasting = args::duration(lasting).ok_or_else(|| {
        CommandError::User(format!(
            "'{}' is not a duration such as 2h or 30m",
            truncate_chars(lasting, 20)
        ))
    })?;
    let comment = words
        .next()
        .map(|c| sanitize_line(c).trim().to_owned())
        .unwrap_or_default();
    create(&ctx, what, lasting, &comment, "silenced").await
}

async fn ack(ctx: Ctx) -> Result<(), CommandError> {
    let mut words = ctx.args.split_whitespace();
    let (Some(what), None) = (words.next(), words.next()) else {
        return Err(CommandError::Usage);
    };
    create(&ctx, what, ACK_FOR, "", "acknowledged").await
}

async fn create(
    ctx: &Ctx,
    what: &str,
    lasting: Duration,
    comment: &str,
    verb: &str,
) -> Result<(), CommandError> {
    if lasting > MAX_SILENCE {
        return Err(CommandError::User(format!(
            "a silence can last at most {} days",
            MAX_SILENCE.as_secs() / 86_400
        )));
    }
    let matchers = what
        .split(',')
        .map(Matcher::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(CommandError::User)?;
    let client = super::alerts::client(ctx)?;
    let by = &ctx.msg.who.nick;
    let comment = truncate_chars(comment, 200).into_owned();
    let sent = if comment.is_empty() {
        format!("{verb} from IRC (via lever)")
    } else {
        format!("{comment} (via lever)")
    };
    let id = client
        .silence(&matchers, lasting, by, &sent)
        .await
        .map_err(|e| CommandError::User(e.to_string()))?;
    let selector: Vec<String> = matchers.iter().map(ToString::to_string).collect();
    let said = if comment.is_empty() {
        String::new()
    } else {
        format!(": {comment}")
    };
    let text = format!(
        "{verb} {} for {}{said} (silence {id})",
        selector.join(","),
        human_duration(lasting)
    );
    ctx.bot
        .store
        .append_log(&NewEntry::note(by, None, &text))
        .map_err(|e| CommandError::Internal(anyhow::Error::new(e).context("logging a silence")))?;
    ctx.tell(&text);
    Ok(())
}
