//! `!flag [NAME [on|off|VARIANT|N%|beta KEYS|enable|disable|history] [reason]]`: feature flags
//! from the channel. Reading needs no role; changing needs `flags`. Flips are allowed under a
//! NO DEPLOY PLEASE hold: that is what switches are for.

use super::args::Words;
use super::{CommandError, Ctx, Example, Spec};
use crate::access::Role;
use crate::chat::text::{clean_line, truncate_chars};
use crate::flags::{Change, FlagDef, FlagError};

/// Longest reason kept; the deploy log is read in a channel.
const MAX_REASON: usize = 200;
/// Flags listed by a bare `!flag` before "and N more".
const MAX_LISTED: usize = 10;
/// Entries `!flag NAME history` shows.
const HISTORY: usize = 5;
/// Most targeting keys on a beta list, and the longest one.
const MAX_BETA: usize = 100;
const MAX_KEY: usize = 200;

pub const SPEC: Spec = Spec {
    name: "flag",
    aliases: &["flags"],
    usage: "[name [on|off|variant|N%|beta keys|enable|disable|history] [reason]]",
    help: "Lists the feature flags, shows one (value, rollout, who/when/why), or changes one (role flags): on/off or a variant for everyone, a percentage rollout, a beta list of targeting keys, enable/disable; each change is logged and announced.",
    role: None,
    examples: &[Example {
        input: "!flag",
        reply: r"no feature flags are declared: add \[flags\.NAME\] to the config",
    }],
    run: |ctx| Box::pin(run(ctx)),
};

async fn run(ctx: Ctx) -> Result<(), CommandError> {
    let flags = ctx.bot.flags.clone();
    let request = parse(&ctx.args)?;
    let Some(name) = request.name else {
        ctx.reply(&list(&ctx));
        return Ok(());
    };
    let def = flags.def(name).map_err(flag_error)?;
    match request.action {
        Action::Show => {
            let snapshot = flags.snapshot();
            let state = &snapshot.states[&def.key];
            ctx.reply(&crate::flags::describe(def, state, true));
        }
        Action::History => {
            let entries = flags.history(&def.key, HISTORY).map_err(flag_error)?;
            if entries.is_empty() {
                ctx.reply(&format!(
                    "{} has not been changed: it serves its default, {}",
                    def.key, def.default
                ));
            }
            for entry in entries {
                ctx.reply(&entry.to_string());
            }
        }
        Action::Change(change) => {
            if !ctx.bot.access.allows(&ctx.msg, Role::Flags) {
                return Err(CommandError::User(
                    "changing a flag needs the flags role, which you do not have".into(),
                ));
            }
            let change = resolve(def, change)?;
            flags
                .change(&def.key, &change, &ctx.msg.who.nick, &request.reason, None)
                .map_err(flag_error)?;
            ctx.ack_if_unheard_everywhere(&format!("{} changed", def.key));
        }
    }
    Ok(())
}

/// How a flags error reaches the user.
pub fn flag_error(error: FlagError) -> CommandError {
    match error {
        FlagError::Store(e) => e.into(),
        other => CommandError::User(other.to_string()),
    }
}

/// What `!flag` was asked.
#[derive(Debug, PartialEq, Eq)]
struct Request<'a> {
    name: Option<&'a str>,
    action: Action<'a>,
    reason: String,
}

#[derive(Debug, PartialEq, Eq)]
enum Action<'a> {
    Show,
    History,
    Change(Asked<'a>),
}

/// A change as typed, before the flag's declaration says what a word means.
#[derive(Debug, PartialEq, Eq)]
enum Asked<'a> {
    /// `on`, `off` or a variant's name.
    Serve(&'a str),
    Rollout(Option<&'a str>, u8),
    Beta(Vec<String>),
    Enable,
    Disable,
}

/// `[name [on|off|variant [N%]|N%|beta keys|enable|disable|history] [reason]]`.
fn parse(args: &str) -> Result<Request<'_>, CommandError> {
    let mut words = Words::new(args);
    let name = words.next();
    let action = match words.next() {
        None => Action::Show,
        Some("history") => {
            words.end()?;
            Action::History
        }
        Some("enable") => Action::Change(Asked::Enable),
        Some("disable") => Action::Change(Asked::Disable),
        Some("beta") => Action::Change(Asked::Beta(beta_keys(words.next())?)),
        Some(word) => match percent(word)? {
            Some(p) => Action::Change(Asked::Rollout(None, p)),
            None => match words.peek().map(percent).transpose()?.flatten() {
                Some(p) => {
                    words.next();
                    Action::Change(Asked::Rollout(Some(word), p))
                }
                None => Action::Change(Asked::Serve(word)),
            },
        },
    };
    let reason = clean_line(words.rest(), MAX_REASON);
    Ok(Request {
        name,
        action,
        reason,
    })
}

/// `10%` as 10; `None` for a word that is no percentage; an error for one out of range.
fn percent(word: &str) -> Result<Option<u8>, CommandError> {
    let Some(number) = word.strip_suffix('%') else {
        return Ok(None);
    };
    match number.parse::<u8>() {
        Ok(p) if p <= 100 => Ok(Some(p)),
        _ => Err(CommandError::User(format!(
            "'{}' is not a percentage from 0% to 100%",
            truncate_chars(word, 16)
        ))),
    }
}

/// `alice,bob` (or `none`) as targeting keys.
fn beta_keys(word: Option<&str>) -> Result<Vec<String>, CommandError> {
    let word = word.ok_or_else(|| {
        CommandError::User("say who is in the beta: beta alice,bob (or beta none)".into())
    })?;
    if word == "none" {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = word
        .split(',')
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    if keys.is_empty() || keys.len() > MAX_BETA || keys.iter().any(|k| k.len() > MAX_KEY) {
        return Err(CommandError::User(format!(
            "a beta list is 1 to {MAX_BETA} targeting keys separated by commas, each at most {MAX_KEY} characters"
        )));
    }
    Ok(keys)
}

/// The change a typed one means for this flag.
fn resolve(def: &FlagDef, asked: Asked<'_>) -> Result<Change, CommandError> {
    Ok(match asked {
        Asked::Serve(word) => {
            if !def.boolean && (word == "on" || word == "off") {
                let names: Vec<&str> = def.variants.keys().map(String::as_str).collect();
                return Err(CommandError::User(format!(
                    "{} is not on/off: say one of its variants ({})",
                    def.key,
                    names.join(", ")
                )));
            }
            Change::Serve(word.to_owned())
        }
        Asked::Rollout(variant, percent) => Change::Rollout {
            variant: variant.map(str::to_owned),
            percent,
        },
        Asked::Beta(keys) => Change::Beta(keys),
        Asked::Enable => Change::Enable,
        Asked::Disable => Change::Disable,
    })
}

/// `!flag`: one line per flag.
fn list(ctx: &Ctx) -> String {
    let flags = &ctx.bot.flags;
    let defs = flags.defs();
    if defs.is_empty() {
        return "no feature flags are declared: add [flags.NAME] to the config".into();
    }
    let snapshot = flags.snapshot();
    let mut lines: Vec<String> = defs
        .values()
        .take(MAX_LISTED)
        .map(|def| crate::flags::describe(def, &snapshot.states[&def.key], false))
        .collect();
    if defs.len() > MAX_LISTED {
        lines.push(format!(
            "… and {} more: {}flag <name>",
            defs.len() - MAX_LISTED,
            ctx.prefix()
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_name_a_flag_then_what_to_do_then_why() {
        let change = |args| parse(args).unwrap();
        assert_eq!(change("").name, None);
        assert_eq!(change("video").action, Action::Show);
        assert_eq!(change("video history").action, Action::History);
        let video_off = change("video off transcoder melting");
        assert_eq!(video_off.action, Action::Change(Asked::Serve("off")));
        assert_eq!(video_off.reason, "transcoder melting");
        assert_eq!(
            change("video 10% canary").action,
            Action::Change(Asked::Rollout(None, 10))
        );
        assert_eq!(
            change("search es 25%").action,
            Action::Change(Asked::Rollout(Some("es"), 25))
        );
        assert_eq!(
            change("video beta alice,bob").action,
            Action::Change(Asked::Beta(vec!["alice".into(), "bob".into()]))
        );
        assert_eq!(
            change("video beta none").action,
            Action::Change(Asked::Beta(vec![]))
        );
        assert_eq!(
            change("video disable").action,
            Action::Change(Asked::Disable)
        );
        for bad in [
            "video 101%",
            "video beta",
            "video history please",
            "video x%",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    const FLAGS: &str =
        "[flags.video]\ndescription = \"the video player\"\ndefault = true\ncontingency = true\n\
        [flags.search]\ndefault = \"solr\"\nvariants = { solr = \"solr\", es = \"elastic\" }\n";

    fn chan(text: &str) -> crate::chat::message::Message {
        crate::commands::tests::message(text, crate::chat::message::Place::Channel("#ops".into()))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn flips_are_logged_announced_and_shown_and_a_typo_gets_a_did_you_mean() {
        use crate::commands::tests::{bot, run};
        let bot = bot(FLAGS);
        assert_eq!(
            run(&bot, chan("!flag")).await,
            ["video: on · contingency switch (safe: on)", "search: solr"]
        );
        // A hold stops deploys, not switches: that is what they are for.
        run(&bot, chan("!hold all incident")).await;
        assert_eq!(
            run(&bot, chan("!flag video off transcoder melting")).await,
            ["FLAG video off by alice (transcoder melting)"]
        );
        assert_eq!(
            run(&bot, chan("!flag search es 10% canary")).await,
            ["FLAG search es 10% by alice (canary)"]
        );
        let shown = run(&bot, chan("!flag search")).await;
        assert!(
            shown[0].starts_with(
                "search: es for 10% of targeting keys (solr otherwise) · set by alice at "
            ),
            "{shown:?}"
        );
        assert!(shown[0].ends_with(": canary · version 1"), "{shown:?}");
        assert_eq!(
            run(&bot, chan("!flag vidoe on")).await,
            ["alice: no flag 'vidoe' (did you mean video?)"]
        );
        assert_eq!(
            run(&bot, chan("!flag search on")).await,
            ["alice: search is not on/off: say one of its variants (solr, es)"]
        );
        let history = run(&bot, chan("!flag video history")).await;
        assert_eq!(history.len(), 1);
        assert!(
            history[0].ends_with("[alice] FLAG video off (transcoder melting)"),
            "{history:?}"
        );
        assert_eq!(bot.flags.snapshot().generation, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_kill_waits_for_the_same_persons_confirmation_and_a_flip_needs_the_role() {
        use crate::commands::tests::{bot, run};
        let bot = bot(&format!(
            "{FLAGS}[access]\nflags = [\"alice!*@10.0.0.1\"]\n"
        ));
        run(&bot, chan("!flag video beta carol,dave")).await;
        let asked = run(&bot, chan("!kill video transcoder melting")).await;
        let code = asked[0]
            .rsplit("confirm ")
            .next()
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_owned();
        assert!(
            asked[0].starts_with(
                "alice: this serves on to everyone and drops video's rollout and beta list"
            ),
            "{asked:?}"
        );
        let mut bob = chan(&format!("!confirm {code}"));
        bob.who.nick = "bob".into();
        bob.who.host = "10.0.0.2".into();
        assert_eq!(
            run(&bot, bob).await,
            ["bob: only alice can confirm the kill of video"]
        );
        assert_eq!(
            run(&bot, chan(&format!("!confirm {code}"))).await,
            ["FLAG video KILLED → on by alice (transcoder melting)"]
        );
        assert!(bot.flags.snapshot().states["video"].beta.is_empty());
        assert_eq!(
            run(&bot, chan("!kill search because")).await,
            ["alice: search is not a contingency switch (contingency = true in its [flags.search]); use !flag search solr to change it"]
        );
        let mut mallory = chan("!flag video off");
        mallory.who.host = "evil.example".into();
        assert_eq!(
            run(&bot, mallory).await,
            ["alice: changing a flag needs the flags role, which you do not have"]
        );
    }
}
