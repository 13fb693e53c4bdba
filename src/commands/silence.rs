//! `!silence <alert|matchers> <duration> [comment]` and `!ack <alert>`: silences in
//! Alertmanager, written to the deploy log with who did it.

use std::time::Duration;

use super::args::{self, Words};
use super::{CommandError, Ctx, Example, Spec};
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
    let request = parse(&ctx.args)?;
    create(&ctx, request, "silenced").await
}

async fn ack(ctx: Ctx) -> Result<(), CommandError> {
    let request = parse_ack(&ctx.args)?;
    create(&ctx, request, "acknowledged").await
}

/// A silence to create.
#[derive(Debug, PartialEq)]
struct Request {
    matchers: Vec<Matcher>,
    lasting: Duration,
    /// One line of at most 200 characters; may be empty.
    comment: String,
}

/// `<alert|label=value,...> <duration> [comment]`.
fn parse(args: &str) -> Result<Request, CommandError> {
    let mut words = Words::new(args);
    let (Some(what), Some(lasting)) = (words.next(), words.next()) else {
        return Err(CommandError::Usage);
    };
    let lasting = args::duration(lasting).ok_or_else(|| {
        CommandError::User(format!(
            "'{}' is not a duration such as 2h or 30m",
            truncate_chars(lasting, 20)
        ))
    })?;
    let comment = sanitize_line(words.rest());
    request(
        what,
        lasting,
        truncate_chars(comment.trim(), 200).into_owned(),
    )
}

/// `!ack <alert>`: a silence of [`ACK_FOR`] without a comment.
fn parse_ack(args: &str) -> Result<Request, CommandError> {
    let mut words = Words::new(args);
    let what = words.next().ok_or(CommandError::Usage)?;
    words.end()?;
    request(what, ACK_FOR, String::new())
}

fn request(what: &str, lasting: Duration, comment: String) -> Result<Request, CommandError> {
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
    Ok(Request {
        matchers,
        lasting,
        comment,
    })
}

async fn create(ctx: &Ctx, request: Request, verb: &str) -> Result<(), CommandError> {
    let Request {
        matchers,
        lasting,
        comment,
    } = request;
    let client = super::alerts::client(ctx)?;
    let by = &ctx.msg.who.nick;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(parsed: Result<Request, CommandError>) -> String {
        match parsed {
            Err(CommandError::User(text)) => text,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_silence_is_matchers_a_duration_and_a_comment() {
        let request = parse("alertname=HighErrorRate,team=web  2h deploy\tin progress").unwrap();
        let matchers: Vec<String> = request.matchers.iter().map(ToString::to_string).collect();
        assert_eq!(matchers, ["alertname=HighErrorRate", "team=web"]);
        assert_eq!(request.lasting, Duration::from_secs(7200));
        assert_eq!(request.comment, "deploy in progress");
        assert_eq!(parse("HighErrorRate 30m").unwrap().comment, "");
        assert!(matches!(parse("HighErrorRate"), Err(CommandError::Usage)));
        assert_eq!(
            refusal(parse("HighErrorRate soon")),
            "'soon' is not a duration such as 2h or 30m"
        );
        assert_eq!(
            refusal(parse("HighErrorRate 31d")),
            "a silence can last at most 30 days"
        );
        assert_eq!(
            refusal(parse("=web 1h")),
            "'=web' is not a matcher like alertname=HighErrorRate"
        );
    }

    #[test]
    fn an_ack_is_one_alert_for_an_hour() {
        let request = parse_ack("HighErrorRate").unwrap();
        assert_eq!(request.lasting, ACK_FOR);
        assert_eq!(request.matchers.len(), 1);
        assert!(matches!(parse_ack(""), Err(CommandError::Usage)));
        assert!(matches!(parse_ack("A B"), Err(CommandError::Usage)));
    }
}
