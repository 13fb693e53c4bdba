//! A command answered by a plugin: what the plugin is told (the invocation JSON, with the
//! targets and their holds), and carrying out its reply lines (say, notice, log). Running the
//! process itself is the plugins layer's ([`crate::plugins::run`]).

use serde_json::{json, Value};

use super::CommandError;
use crate::bot::Bot;
use crate::chat::message::{Message, Place};
use crate::chat::outbox::Priority;
use crate::chat::text::{sanitize_line, truncate_chars};
use crate::plugins::run::{
    one_line, run, seconds, Ran, Reply, ERROR_CHARS, LINE_BYTES, LOG_CHARS, MAX_LINES, SAY_CHARS,
};
use crate::plugins::Command;
use crate::store::log::NewEntry;

/// What a plugin is told on stdin about one invocation.
pub fn invocation(bot: &Bot, msg: &Message, command: &str, args: &str) -> Value {
    let holds = bot.deploys.holds().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read holds for a plugin");
        Vec::new()
    });
    let targets: Vec<Value> = bot
        .config
        .targets
        .keys()
        .map(|name| {
            let covering: Vec<Value> = holds
                .iter()
                .filter(|h| h.covers(name))
                .map(crate::store::json::hold)
                .collect();
            json!({ "name": name, "held": !covering.is_empty(), "holds": covering })
        })
        .collect();
    json!({
        "command": command,
        "args": args,
        "words": args.split_whitespace().collect::<Vec<_>>(),
        "user": {
            "nick": msg.who.nick,
            "user": msg.who.user,
            "host": msg.who.host,
            "account": msg.who.account,
        },
        "channel": match &msg.place {
            Place::Channel(channel) => Some(channel.as_str()),
            Place::Private => None,
        },
        "prefix": bot.config.bot.prefix,
        "targets": targets,
    })
}

/// Runs a plugin command for `msg` and carries out its reply.
pub async fn invoke(
    bot: &Bot,
    msg: &Message,
    command: &Command,
    args: &str,
) -> Result<(), CommandError> {
    let input = invocation(bot, msg, &command.name, args).to_string();
    let ran = {
        // Bounds how many plugin processes run at once; the rest wait their turn.
        let _turn = bot.plugins.turn().await;
        run(
            &command.plugin,
            None,
            input.as_bytes(),
            command.timeout,
            (MAX_LINES, LINE_BYTES),
        )
        .await
    };
    let shown = format!("{}{}", bot.config.bot.prefix, command.name);
    let (lines, more) = match ran {
        Ran::Succeeded { lines, more } => (lines, more),
        Ran::TimedOut => {
            return Err(CommandError::User(format!(
                "{shown} timed out after {} and was stopped",
                seconds(command.timeout)
            )))
        }
        Ran::NotStarted(why) => {
            tracing::warn!(plugin = %command.plugin.name, "plugin cannot start: {why}");
            return Err(CommandError::User(format!(
                "{shown} could not run: {why} (lever's log has more)"
            )));
        }
        Ran::Failed { status, stderr } => {
            let said = if stderr.is_empty() {
                " (it printed nothing on stderr)".to_owned()
            } else {
                let tail: Vec<String> = stderr
                    .iter()
                    .map(|l| truncate_chars(&sanitize_line(l), ERROR_CHARS).into_owned())
                    .collect();
                format!(": {}", tail.join(" | "))
            };
            return Err(CommandError::User(format!(
                "{shown} failed: {status}{said}"
            )));
        }
    };
    for (i, line) in lines.iter().enumerate() {
        match Reply::parse(line) {
            Reply::Say(text) => say(bot, msg.reply_target(), &text, false),
            Reply::Notice(text) => say(bot, &msg.who.nick, &text, true),
            Reply::Log { text, target } => log(bot, msg, command, &text, target.as_deref())?,
            Reply::Bad(why) => {
                tracing::warn!(plugin = %command.plugin.name, line = i + 1, "{why}");
                say(
                    bot,
                    msg.reply_target(),
                    &format!("({shown}: line {} of its output {why})", i + 1),
                    false,
                );
            }
        }
    }
    if more > 0 {
        let s = if more == 1 { "" } else { "s" };
        say(
            bot,
            msg.reply_target(),
            &format!("… {more} more line{s}"),
            false,
        );
    }
    Ok(())
}

/// Says one line, safe for the wire; blank lines are not sent.
fn say(bot: &Bot, target: &str, text: &str, notice: bool) {
    let text = one_line(text, SAY_CHARS);
    if text.is_empty() {
        return;
    }
    if notice {
        bot.outbox.notice(target, &text, Priority::Reply);
    } else {
        bot.outbox.say(target, &text, Priority::Reply);
    }
}

/// Writes a plugin's line into the deploy log, as the asker's, naming the command.
fn log(
    bot: &Bot,
    msg: &Message,
    command: &Command,
    text: &str,
    target: Option<&str>,
) -> Result<(), CommandError> {
    if let Some(target) = target {
        if !bot.config.targets.contains_key(target) {
            return Err(CommandError::User(format!(
                "{}{} asked to log for '{}', which is not a target",
                bot.config.bot.prefix,
                command.name,
                one_line(target, 40)
            )));
        }
    }
    let text = format!(
        "{} (via {}{})",
        one_line(text, LOG_CHARS),
        bot.config.bot.prefix,
        command.name
    );
    bot.store
        .append_log(&NewEntry::note(&msg.who.nick, target, &text))
        .map_err(|e| {
            let what = format!("writing the deploy log for plugin {}", command.plugin.name);
            CommandError::Internal(anyhow::Error::new(e).context(what))
        })?;
    Ok(())
}
