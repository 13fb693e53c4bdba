//! `lever console`: the same bot with the terminal as the channel.
//!
//! Each stdin line is a channel message from the local user (`$USER`), who holds every role.
//! A line starting `<name> ` is said by `name` instead (also local, also holding every role),
//! so a script can act out a conversation: `<mygrant> !hold db migration`, then `!deploy`.
//! The bot's lines go to stdout. With piped stdin, each line's work (a run it starts included)
//! finishes and is printed before the next line is read, so a script reads like a
//! conversation; at a terminal, work goes on in the background while you type.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::bot::Bot;
use crate::chat::claim::Standing;
use crate::chat::mask::CaseMapping;
use crate::chat::message::{Identity, Message, Place};
use crate::chat::outbox::{Kind, OutLine};

/// The channel the console pretends to be, when the config lists none.
/// Opens the bot for the console. On a PostgreSQL store other levers may share, the console
/// acts only if it can take the lease: it never acts beside an active lever.
pub fn open(config: std::sync::Arc<crate::config::Config>) -> Result<Arc<Bot>, String> {
    let store = Bot::open_store(&config).map_err(|e| e.to_string())?;
    if config.store.url.is_some() {
        let node = config.store.node_name();
        match super::leader::claim(&store, &node, config.store.lease, None) {
            Ok(Ok(held)) => {
                let (store, lease) = (store.clone(), config.store.lease);
                tokio::spawn(async move {
                    let lost = super::leader::keep(&store, held, lease, |_| {}).await;
                    // Its writes are refused from now on (fenced); say why once.
                    tracing::error!(reason = %lost, "the console lost the lease");
                });
            }
            Ok(Err((holder, _))) => {
                return Err(format!(
                    "another lever ({}) is active on this store; the console does not act beside it (stop it, or use the channel)",
                    holder.node
                ))
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Bot::new(config, store).map_err(|e| e.to_string())
}

pub const DEFAULT_CHANNEL: &str = "#console";
/// How long the printer may take to catch up before the next line is read.
const PRINT_WAIT: Duration = Duration::from_secs(60);

/// Runs the console until stdin ends.
pub async fn run(bot: Arc<Bot>) -> std::io::Result<()> {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty() && !u.contains(char::is_whitespace))
        .unwrap_or_else(|| "console".to_owned());
    let channel = bot
        .config
        .irc
        .channels
        .first()
        .cloned()
        .unwrap_or_else(|| DEFAULT_CHANNEL.to_owned());
    crate::commands::reload_plugins(&bot).await;
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!(
            "lever console: you are {user} in {channel}, holding every role. Try {}help; Ctrl-D quits.",
            bot.config.bot.prefix
        );
    }
    let printer = tokio::spawn(print_outbox(bot.clone(), channel.clone()));
    let me: Arc<str> = Arc::from(bot.config.irc.nickname.as_str());
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if stdin.read_until(b'\n', &mut raw).await? == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\n', '\r']);
        let (speaker, text) = speaker(line).unwrap_or((&user, line));
        let msg = Message {
            who: Identity {
                nick: speaker.to_owned(),
                user: speaker.to_owned(),
                host: "console".into(),
                account: Some(speaker.to_owned()),
            },
            place: Place::Channel(channel.clone()),
            text: text.to_owned(),
            me: me.clone(),
            casemap: CaseMapping::default(),
            trusted: true,
        };
        crate::commands::dispatch(&bot, msg);
        if !interactive {
            settle(&bot).await;
        }
    }
    settle(&bot).await;
    printer.abort();
    Ok(())
}

/// `<name> text`: a line said by someone other than the console user.
fn speaker(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('<')?;
    let (name, text) = rest.split_once("> ")?;
    let valid = !name.is_empty()
        && name.len() <= 30
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "[]\\`_^{|}-".contains(c));
    valid.then_some((name, text))
}

/// Waits until all work has finished and everything it said has been printed.
async fn settle(bot: &Bot) {
    bot.activity.idle().await;
    bot.outbox.flushed(PRINT_WAIT).await;
}

/// Whether `line` is this console's to print: its claim, if any, is won (asked again until
/// the store answers).
async fn claimed(line: &OutLine) -> bool {
    let Some(claim) = &line.claim else {
        return true;
    };
    loop {
        match claim.take() {
            Ok(standing) => return standing == Standing::Won,
            Err(why) => {
                tracing::warn!(error = %why, "cannot mark an announcement said; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Prints every outbox line; lines for somewhere other than the console channel are marked.
async fn print_outbox(bot: Arc<Bot>, channel: String) {
    loop {
        let line = bot.outbox.next().await;
        if !claimed(&line).await {
            bot.outbox.sent();
            continue;
        }
        let ok = print_line(&line, &channel).is_ok();
        bot.outbox.sent();
        if !ok {
            // stdout is gone (closed pipe): nothing more can be shown.
            return;
        }
    }
}

fn print_line(line: &OutLine, channel: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let notice = match line.kind {
        Kind::Notice => "(notice) ",
        Kind::Topic => "(topic) ",
        Kind::Privmsg => "",
    };
    if line.target == channel {
        writeln!(out, "{notice}{}", line.text)?;
    } else {
        writeln!(out, "[{}] {notice}{}", line.target, line.text)?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::speaker;

    #[test]
    fn a_line_may_name_its_speaker() {
        assert_eq!(speaker("<mygrant> !hold db"), Some(("mygrant", "!hold db")));
        assert_eq!(speaker("<a b> !x"), None);
        assert_eq!(speaker("<> !x"), None);
        assert_eq!(speaker("!ping"), None);
        assert_eq!(speaker("<mygrant>!x"), None);
    }
}
