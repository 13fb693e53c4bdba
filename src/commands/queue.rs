//! `!queue [target] [join [with NICK] [note] | leave | done | ready | notready | kick NICK]`:
//! the push queue. Joining needs a role that stages or deploys (a queue decides whose turn it
//! is to do that); taking someone out needs `hold`.

use std::time::Duration;

use super::args::{Known, Words};
use super::{CommandError, Ctx, Example, Spec};
use crate::access::Role;
use crate::chat::text::{clean_line, human_duration};
use crate::store::now_ms;
use crate::store::queue::QueueEntry;

pub const SPEC: Spec = Spec {
    name: "queue",
    aliases: &["q"],
    usage: "[target] [join [with nick] [note]|leave|done|ready|notready|kick nick]",
    help: "The push queue: shows who is waiting to stage and deploy; join it (with whoever shares your turn), leave it, say you are done, ready or not ready; kick someone out (role hold). While a target's queue is not empty, only its head may stage and deploy it.",
    role: None,
    examples: &[Example {
        input: "!queue",
        reply: r"no one is in a queue: !queue join to take a turn",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let request = parse(&ctx.args, &ctx.known())?;
    let deploys = &ctx.bot.deploys;
    let who = &ctx.msg.who;
    let target = &request.target;
    let changes = request.action != Action::Show;
    match request.action {
        Action::Show => {
            let queues = match request.named {
                true => vec![(target.clone(), deploys.queue_of(target)?)],
                false => deploys.queues()?,
            };
            if queues.iter().all(|(_, q)| q.is_empty()) {
                let which = if request.named {
                    format!("the {target} queue is empty")
                } else {
                    "no one is in a queue".into()
                };
                ctx.reply(&format!(
                    "{which}: {}queue join to take a turn",
                    ctx.prefix()
                ));
            }
            for (target, queue) in queues.iter().filter(|(_, q)| !q.is_empty()) {
                ctx.reply(&describe(target, queue));
            }
        }
        Action::Join { with, note } => {
            let access = &ctx.bot.access;
            if !access.allows(&ctx.msg, Role::Stage) && !access.allows(&ctx.msg, Role::Deploy) {
                return Err(CommandError::User(
                    "joining a queue needs the stage or deploy role, which you do not have".into(),
                ));
            }
            deploys.queue_join(target, who, with.as_deref(), &note)?;
        }
        Action::Leave => deploys.queue_leave(target, who, false)?,
        Action::Done => deploys.queue_leave(target, who, true)?,
        Action::Ready(ready) => deploys.queue_ready(target, who, ready)?,
        Action::Kick(nick) => {
            if !ctx.bot.access.allows(&ctx.msg, Role::Hold) {
                return Err(CommandError::User(
                    "taking someone out of a queue needs the hold role, which you do not have"
                        .into(),
                ));
            }
            deploys.queue_kick(target, &nick, &who.nick)?;
        }
    }
    if changes {
        ctx.ack_if_unheard(target, &format!("the {target} queue changed"));
    }
    Ok(())
}

/// What `!queue` was asked.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    target: String,
    /// The target was named (not the default).
    named: bool,
    action: Action,
}

#[derive(Debug, PartialEq, Eq)]
enum Action {
    Show,
    Join { with: Option<String>, note: String },
    Leave,
    Done,
    Ready(bool),
    Kick(String),
}

/// `[target] [join [with NICK] [note]|leave|done|ready|notready|kick NICK]`.
fn parse(args: &str, known: &Known) -> Result<Request, CommandError> {
    let mut words = Words::new(args);
    let named = words.next_if(|w| known.is_target(w));
    let target = known.target(named)?;
    let action = match words.next() {
        None => Action::Show,
        Some("join") => {
            let with = match words.next_if(|w| w == "with") {
                Some(_) => Some(words.next().map(str::to_owned).ok_or_else(|| {
                    CommandError::User("join with whom? !queue join with <nick> [note]".into())
                })?),
                None => None,
            };
            if with.as_ref().is_some_and(|w| !is_nick(w)) {
                return Err(CommandError::User("'with' takes a nick".into()));
            }
            let note = clean_line(words.rest(), 100);
            words = Words::new("");
            Action::Join { with, note }
        }
        Some("leave") => Action::Leave,
        Some("done") => Action::Done,
        Some("ready") => Action::Ready(true),
        Some("notready") => Action::Ready(false),
        Some("kick") => Action::Kick(words.next().ok_or(CommandError::Usage)?.to_owned()),
        Some(_) => return Err(CommandError::Usage),
    };
    words.end()?;
    Ok(Request {
        target,
        named: named.is_some(),
        action,
    })
}

/// A word that can be a nick: 1 to 32 characters, none of them a separator IRC gives meaning.
fn is_nick(word: &str) -> bool {
    (1..=32).contains(&word.chars().count())
        && !word.starts_with(['#', '&'])
        && !word.contains(['!', '@', ',', '*', '?'])
        && !word.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// `site: 1. alice (with bob) up 12 min, 43 min left, ready · 2. carol: hotfix`.
fn describe(target: &str, queue: &[QueueEntry]) -> String {
    let now = now_ms();
    let ago = |ms: i64| human_duration(Duration::from_millis(ms.max(0) as u64));
    let people: Vec<String> = queue
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut text = format!("{}. {}", i + 1, e.nick);
            if let Some(with) = &e.with_nick {
                text.push_str(&format!(" (with {with})"));
            }
            if let (Some(since), Some(until)) = (e.up_since, e.until) {
                text.push_str(&format!(
                    " up {}, {} left",
                    ago(now - since),
                    ago(until - now)
                ));
            }
            if e.ready {
                text.push_str(", ready");
            }
            if !e.note.is_empty() {
                text.push_str(&format!(": {}", e.note));
            }
            text
        })
        .collect();
    format!("{target}: {}", people.join(" · "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::args::tests::known;

    #[test]
    fn the_words_name_a_target_then_what_to_do() {
        let parsed = |args| parse(args, &known()).unwrap();
        assert_eq!(parsed("").action, Action::Show);
        assert!(!parsed("").named);
        assert_eq!(parsed("api").target, "api");
        assert_eq!(
            parsed("join with bob schema change").action,
            Action::Join {
                with: Some("bob".into()),
                note: "schema change".into()
            }
        );
        assert_eq!(
            parsed("api join").action,
            Action::Join {
                with: None,
                note: String::new()
            }
        );
        assert_eq!(parsed("kick carol").action, Action::Kick("carol".into()));
        assert_eq!(parsed("notready").action, Action::Ready(false));
        for bad in ["dance", "join with", "kick", "leave now"] {
            assert!(parse(bad, &known()).is_err(), "{bad}");
        }
    }
}
