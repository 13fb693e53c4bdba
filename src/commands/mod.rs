//! Commands: the one list of them, the dispatcher, and what a handler is given.
//!
//! A command is one file with a `const SPEC` (name, aliases, usage, help, required role,
//! examples) and a `run` function whose first line parses the words into a typed request:
//! a pure function, unit-tested in the command's file (the shapes several commands share,
//! `[target]`, `[target] [force]`, `[n] [target]`, are in `args`). Adding one means one file
//! and one line in [`COMMANDS`]; `!help`, the examples test and the check of the README's
//! command table are driven by that list. The dispatcher recognises a
//! command (prefix, address by nick, or private message), checks the role named in the spec,
//! and runs the handler in a task of its own, so the IRC read loop never waits on it.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::task::JoinHandle;

use crate::access::Role;
use crate::bot::Bot;
use crate::chat::message::{Message, Place};
use crate::chat::outbox::Priority;

mod alerts;
mod args;
mod build;
mod cancel;
mod changes;
mod confirm;
mod deploy;
mod flag;
mod graph;
mod help;
mod hold;
mod kill;
mod log;
mod metric;
mod ping;
mod plugin;
mod queue;
mod reload;
mod rollback;
mod silence;
mod stage;
mod stats;
mod status;
mod unhold;
mod version;
mod whoami;

/// Every built-in command, in the order `!help` lists them.
pub static COMMANDS: &[&Spec] = &[
    &stage::SPEC,
    &deploy::SPEC,
    &confirm::SPEC,
    &queue::SPEC,
    &hold::SPEC,
    &unhold::SPEC,
    &log::SPEC,
    &status::SPEC,
    &cancel::SPEC,
    &rollback::SPEC,
    &changes::SPEC,
    &build::SPEC,
    &alerts::SPEC,
    &silence::ACK,
    &silence::SPEC,
    &metric::SPEC,
    &graph::SPEC,
    &stats::SPEC,
    &flag::SPEC,
    &kill::SPEC,
    &help::SPEC,
    &reload::SPEC,
    &ping::SPEC,
    &version::SPEC,
    &whoami::SPEC,
];

/// A handler: gets the invocation, replies through it, returns what went wrong.
pub type Run = fn(Ctx) -> BoxFuture<'static, Result<(), CommandError>>;

/// What a command is, declared next to its code.
pub struct Spec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// Arguments, as shown after the command name: `"[target] <reason>"`.
    pub usage: &'static str,
    /// One sentence: what it does.
    pub help: &'static str,
    /// The role needed to run it; `None` for everyone.
    pub role: Option<Role>,
    /// Inputs with the reply each must produce; checked by a test over every command.
    pub examples: &'static [Example],
    pub run: Run,
}

/// A documented example: `input` as typed in the channel, and a regular expression the whole
/// reply (lines joined by `\n`) must match.
pub struct Example {
    pub input: &'static str,
    pub reply: &'static str,
}

impl Spec {
    /// `!name usage`, with the configured prefix.
    pub fn synopsis(&self, prefix: &str) -> String {
        synopsis(prefix, self.name, self.usage)
    }
}

pub use crate::chat::text::synopsis;

/// How a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The user's mistake: told to them plainly.
    #[error("{0}")]
    User(String),
    /// The arguments do not fit the usage: the user is shown it.
    #[error("usage")]
    Usage,
    /// Something broke inside lever: logged with context, the user gets an error id.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What a running command is given.
pub struct Ctx {
    pub bot: Arc<Bot>,
    pub msg: Message,
    pub spec: &'static Spec,
    /// Everything after the command name, trimmed.
    pub args: String,
}

impl Ctx {
    /// Replies where the command was said.
    pub fn reply(&self, text: &str) {
        self.bot
            .outbox
            .say(self.msg.reply_target(), text, Priority::Reply);
    }

    /// Replies to the asker by name in a channel (`alice: ...`), plainly in private.
    pub fn tell(&self, text: &str) {
        match self.msg.place {
            Place::Channel(_) => self.reply(&format!("{}: {text}", self.msg.who.nick)),
            Place::Private => self.reply(text),
        }
    }

    /// `force` passes anyone's hold: only the admin role may say it.
    pub fn check_force(&self) -> Result<(), CommandError> {
        if self.bot.access.allows(&self.msg, Role::Admin) {
            return Ok(());
        }
        Err(CommandError::User(
            "'force' needs the admin role, which you do not have".into(),
        ))
    }

    /// The configured command prefix.
    pub fn prefix(&self) -> &str {
        &self.bot.config.bot.prefix
    }

    /// Tells the asker `text` unless they will see `target`'s announcement anyway (they asked
    /// in one of its channels).
    pub fn ack_if_unheard(&self, target: &str, text: &str) {
        let channels = self.bot.config.target_channels(target);
        self.ack_unless_in(channels, text);
    }

    /// Like [`Ctx::ack_if_unheard`] for something announced in every channel.
    pub fn ack_if_unheard_everywhere(&self, text: &str) {
        let channels = &self.bot.config.irc.channels;
        self.ack_unless_in(channels, text);
    }

    fn ack_unless_in(&self, channels: &[String], text: &str) {
        let heard = match &self.msg.place {
            Place::Channel(here) => channels.iter().any(|c| self.msg.casemap.eq(c, here)),
            Place::Private => false,
        };
        if !heard {
            let place = match channels.first() {
                Some(channel) => format!("; announced in {channel}"),
                None => String::new(),
            };
            self.tell(&format!("{text}{place}"));
        }
    }
}

/// A line recognised as a command.
#[derive(Debug, PartialEq, Eq)]
pub struct Invocation<'a> {
    /// The command word as typed.
    pub name: &'a str,
    pub args: &'a str,
    /// Said to lever by name or in private (not just with the prefix in a channel): an unknown
    /// command gets an answer, since it was clearly meant for lever.
    pub addressed: bool,
}

/// Recognises a command in a message: `!name args` in a channel, `lever: name args` or
/// `lever, name args` anywhere, or `name args` in private (a prefix there is allowed too).
pub fn parse<'a>(msg: &'a Message, prefix: &str) -> Option<Invocation<'a>> {
    let text = msg.text.trim();
    let (rest, addressed) = if let Some(rest) = strip_address(text, msg) {
        (rest.strip_prefix(prefix).unwrap_or(rest), true)
    } else if let Some(rest) = text.strip_prefix(prefix) {
        (rest, msg.place == Place::Private)
    } else if msg.place == Place::Private {
        (text, true)
    } else {
        return None;
    };
    let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    // "! foo", "!!!", "!?" are not commands.
    if !name.starts_with(|c: char| c.is_alphanumeric()) {
        return None;
    }
    Some(Invocation {
        name,
        args: args.trim(),
        addressed,
    })
}

/// `lever: rest` or `lever, rest` (the nick compared by the server's case mapping).
fn strip_address<'a>(text: &'a str, msg: &Message) -> Option<&'a str> {
    let me = &*msg.me;
    let head = text.get(..me.len())?;
    if !msg.casemap.eq(head, me) {
        return None;
    }
    let rest = text[me.len()..].strip_prefix([':', ','])?;
    Some(rest.trim_start())
}

/// Finds a command by name or alias, ignoring case.
pub fn lookup(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().copied().find(|spec| {
        spec.name.eq_ignore_ascii_case(name)
            || spec.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// The canonical name of the built-in command `name` names (ignoring case, aliases too).
pub fn builtin_name(name: &str) -> Option<&'static str> {
    lookup(name).map(|spec| spec.name)
}

/// Rescans the plugins, refusing any command that would shadow a built-in one.
pub async fn reload_plugins(bot: &Bot) -> crate::plugins::Report {
    bot.plugins.reload(builtin_name).await
}

/// The closest command name the sender may use, for "did you mean".
fn suggest(bot: &Bot, msg: &Message, name: &str) -> Option<String> {
    let name = name.to_lowercase();
    let plugins = bot.plugins.all();
    let built_in = COMMANDS
        .iter()
        .filter(|spec| spec.role.is_none_or(|role| bot.access.allows(msg, role)))
        .flat_map(|spec| std::iter::once(spec.name).chain(spec.aliases.iter().copied()));
    let plugin = plugins
        .iter()
        .filter(|c| c.role.is_none_or(|role| bot.access.allows(msg, role)))
        .map(|c| c.name.as_str());
    built_in
        .chain(plugin)
        .map(|candidate| (strsim::damerau_levenshtein(&name, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2 && *distance < candidate.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| {
            lookup(candidate)
                .map_or(candidate, |spec| spec.name)
                .to_owned()
        })
}

/// A command found by name: built in, or from a plugin (looked up second, so a plugin can
/// never shadow a built-in).
enum Found {
    BuiltIn(&'static Spec),
    Plugin(Arc<crate::plugins::Command>),
}

impl Found {
    fn name(&self) -> &str {
        match self {
            Found::BuiltIn(spec) => spec.name,
            Found::Plugin(command) => &command.name,
        }
    }

    fn role(&self) -> Option<Role> {
        match self {
            Found::BuiltIn(spec) => spec.role,
            Found::Plugin(command) => command.role,
        }
    }

    fn synopsis(&self, prefix: &str) -> String {
        match self {
            Found::BuiltIn(spec) => spec.synopsis(prefix),
            Found::Plugin(command) => command.synopsis(prefix),
        }
    }
}

/// Recognises, checks and starts a command. Returns the task running it, if any.
pub fn dispatch(bot: &Arc<Bot>, msg: Message) -> Option<JoinHandle<()>> {
    let prefix = &bot.config.bot.prefix;
    let invocation = parse(&msg, prefix)?;
    let found = match lookup(invocation.name) {
        Some(spec) => Found::BuiltIn(spec),
        None => match bot.plugins.lookup(invocation.name) {
            Some(command) => Found::Plugin(command),
            None => {
                // Channels often hold several bots: an unknown `!word` is not ours to answer.
                if invocation.addressed {
                    bot.telemetry.count(
                        "lever_commands_total",
                        vec![("command", "unknown".into()), ("result", "unknown".into())],
                    );
                    let mut text = format!(
                        "unknown command '{}'",
                        crate::chat::text::truncate_chars(invocation.name, 30)
                    );
                    if let Some(close) = suggest(bot, &msg, invocation.name) {
                        text.push_str(&format!(" (did you mean {prefix}{close}?)"));
                    }
                    text.push_str(&format!("; try {prefix}help"));
                    reply_to(bot, &msg, &text);
                }
                return None;
            }
        },
    };
    let name = found.name().to_owned();
    if let Some(role) = found.role() {
        if let Err(refusal) = check_role(bot, &msg, role, &name) {
            bot.telemetry.count(
                "lever_commands_total",
                vec![("command", name), ("result", "refused".into())],
            );
            reply_to(bot, &msg, &refusal);
            return None;
        }
    }
    let args = invocation.args.to_owned();
    let bot = bot.clone();
    let busy = bot.activity.begin();
    Some(tokio::spawn(async move {
        let _busy = busy;
        let result = match &found {
            Found::BuiltIn(spec) => {
                let ctx = Ctx {
                    bot: bot.clone(),
                    msg: msg.clone(),
                    spec,
                    args,
                };
                (spec.run)(ctx).await
            }
            Found::Plugin(command) => plugin::invoke(&bot, &msg, command, &args).await,
        };
        let outcome = match &result {
            Ok(()) => "ok",
            Err(CommandError::User(_)) => "user_error",
            Err(CommandError::Usage) => "usage",
            Err(CommandError::Internal(_)) => "internal_error",
        };
        bot.telemetry.count(
            "lever_commands_total",
            vec![("command", name.clone()), ("result", outcome.into())],
        );
        match result {
            Ok(()) => {}
            Err(CommandError::User(text)) => reply_to(&bot, &msg, &text),
            Err(CommandError::Usage) => {
                let text = format!("usage: {}", found.synopsis(&bot.config.bot.prefix));
                reply_to(&bot, &msg, &text);
            }
            Err(CommandError::Internal(error)) => {
                let id = format!("{:06x}", fastrand::u32(..0x100_0000));
                tracing::error!(
                    error = format!("{error:#}"),
                    %id,
                    command = name,
                    user = %msg.who.source(),
                    "command failed"
                );
                let text = format!(
                    "sorry, {}{name} failed inside lever (error id {id}; the details are in lever's log)",
                    bot.config.bot.prefix
                );
                reply_to(&bot, &msg, &text);
            }
        }
    }))
}

/// Checks that the sender holds `role`; the refusal names the role and, for a sender with no
/// services account, why account rules did not match.
fn check_role(bot: &Bot, msg: &Message, role: Role, command: &str) -> Result<(), String> {
    if bot.access.allows(msg, role) {
        return Ok(());
    }
    let prefix = &bot.config.bot.prefix;
    let mut text = format!("{prefix}{command} needs the {role} role, which you do not have");
    if msg.who.account.is_none() && bot.access.grants_by_account(role) {
        text.push_str(" (you are not logged in to services, so account: rules cannot match)");
    }
    Err(text)
}

/// Replies to the sender by name (`nick: text`) in a channel, plainly in private.
fn reply_to(bot: &Bot, msg: &Message, text: &str) {
    let text = match msg.place {
        Place::Channel(_) => format!("{}: {text}", msg.who.nick),
        Place::Private => text.to_owned(),
    };
    bot.outbox.say(msg.reply_target(), &text, Priority::Reply);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::chat::mask::CaseMapping;
    use crate::chat::message::Identity;
    use crate::config::Config;
    use std::path::PathBuf;

    pub fn message(text: &str, place: Place) -> Message {
        Message {
            who: Identity {
                nick: "alice".into(),
                user: "~alice".into(),
                host: "10.0.0.1".into(),
                account: None,
            },
            place,
            text: text.into(),
            me: Arc::from("lever"),
            casemap: CaseMapping::Rfc1459,
            trusted: false,
        }
    }

    /// A test target: two quick stage steps, a version, one deploy step.
    pub const SITE: &str = "[targets.site]\nversion = [\"echo\", \"abc123\"]\n\
        [[targets.site.stage]]\nname = \"exporting\"\nrun = [\"true\"]\n\
        [[targets.site.stage]]\nname = \"precompiling\"\nrun = [\"true\"]\n\
        [[targets.site.deploy]]\nname = \"syncing\"\nrun = [\"true\"]\n\
        [[targets.site.rollback]]\nname = \"reverting\"\nrun = [\"true\"]\n";

    pub fn bot(extra: &str) -> Arc<Bot> {
        let text = format!("[irc]\nserver = \"irc.test\"\nchannels = [\"#ops\"]\n{extra}");
        let cfg = Config::from_toml(&text, "test", PathBuf::from(".")).unwrap();
        let store = crate::store::Store::open(std::path::Path::new(":memory:")).unwrap();
        Bot::new(Arc::new(cfg), Arc::new(store)).unwrap()
    }

    /// Runs one line through the dispatcher and returns the replies, one per line.
    pub async fn run(bot: &Arc<Bot>, msg: Message) -> Vec<String> {
        if let Some(task) = dispatch(bot, msg) {
            task.await.unwrap();
        }
        // Runs and their announcements too.
        tokio::time::timeout(std::time::Duration::from_secs(30), bot.activity.idle())
            .await
            .expect("work settles");
        std::iter::from_fn(|| {
            let line = bot.outbox.try_next()?;
            bot.outbox.sent();
            Some(line.text)
        })
        .collect()
    }

    fn chan(text: &str) -> Message {
        message(text, Place::Channel("#ops".into()))
    }

    #[test]
    fn recognises_prefix_address_and_private() {
        let inv = |m: &Message| {
            parse(m, "!").map(|i| (i.name.to_owned(), i.args.to_owned(), i.addressed))
        };
        let some = |n: &str, a: &str, addr| Some((n.to_owned(), a.to_owned(), addr));
        assert_eq!(inv(&chan("!ping")), some("ping", "", false));
        assert_eq!(
            inv(&chan("  !hold   db migration  ")),
            some("hold", "db migration", false)
        );
        assert_eq!(inv(&chan("lever: ping")), some("ping", "", true));
        assert_eq!(inv(&chan("LEVER, ping now")), some("ping", "now", true));
        assert_eq!(inv(&chan("lever: !ping")), some("ping", "", true));
        assert_eq!(inv(&chan("lever ping")), None);
        assert_eq!(inv(&chan("leverage: ping")), None);
        assert_eq!(inv(&chan("ping")), None);
        assert_eq!(inv(&chan("! ping")), None);
        assert_eq!(inv(&chan("!!!")), None);
        assert_eq!(inv(&chan("")), None);
        let private = |t: &str| message(t, Place::Private);
        assert_eq!(inv(&private("ping")), some("ping", "", true));
        assert_eq!(inv(&private("!ping")), some("ping", "", true));
        assert_eq!(inv(&private("lever: ping")), some("ping", "", true));
    }

    #[test]
    fn address_uses_the_current_nick_and_case_mapping() {
        let mut m = chan("Lever[1]: ping");
        m.me = Arc::from("lever{1}");
        assert!(parse(&m, "!").is_some());
        m.casemap = CaseMapping::Ascii;
        assert!(parse(&m, "!").is_none());
    }

    #[tokio::test]
    async fn unknown_prefixed_words_are_ignored_but_addressed_ones_answered() {
        let bot = bot("");
        assert!(run(&bot, chan("!deplyo")).await.is_empty());
        assert_eq!(
            run(&bot, chan("lever: pnig")).await,
            ["alice: unknown command 'pnig' (did you mean !ping?); try !help"]
        );
        assert_eq!(
            run(&bot, message("xyzzy", Place::Private)).await,
            ["unknown command 'xyzzy'; try !help"]
        );
    }

    #[tokio::test]
    async fn every_example_in_every_spec_holds() {
        let mut checked = 0;
        for spec in COMMANDS {
            assert!(!spec.examples.is_empty(), "!{} has no example", spec.name);
            for example in spec.examples {
                // Each example starts from a fresh bot with an empty store.
                let bot = bot(SITE);
                let replies = run(&bot, chan(example.input)).await.join("\n");
                let pattern = regex::Regex::new(&format!("^(?s:{})$", example.reply)).unwrap();
                assert!(
                    pattern.is_match(&replies),
                    "!{}: {:?} replied {:?}, expected /{}/",
                    spec.name,
                    example.input,
                    replies,
                    example.reply
                );
                checked += 1;
            }
        }
        assert!(checked >= COMMANDS.len());
    }

    #[tokio::test]
    async fn a_refusal_names_the_missing_role() {
        let bot = bot("[access]\ndeploy = [\"account:alice\"]\n");
        let refused = |m: &Message| check_role(&bot, m, Role::Deploy, "whatever");
        let mut m = chan("!whatever");
        assert_eq!(
            refused(&m).unwrap_err(),
            "!whatever needs the deploy role, which you do not have \
             (you are not logged in to services, so account: rules cannot match)"
        );
        m.who.account = Some("alice".into());
        assert!(refused(&m).is_ok());
        m.who.account = None;
        let masks_only = super::tests::bot("[access]\ndeploy = [\"*!*@trusted\"]\n");
        assert_eq!(
            check_role(&masks_only, &m, Role::Deploy, "whatever").unwrap_err(),
            "!whatever needs the deploy role, which you do not have",
            "no hint about services when no rule names an account"
        );
        m.who.account = Some("bob".into());
        assert_eq!(
            refused(&m).unwrap_err(),
            "!whatever needs the deploy role, which you do not have"
        );
    }

    #[test]
    fn names_and_aliases_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for spec in COMMANDS {
            for name in std::iter::once(&spec.name).chain(spec.aliases) {
                assert!(seen.insert(name.to_lowercase()), "{name} is used twice");
            }
        }
    }

    /// The README's command table is written by hand (its words are for readers, not the
    /// `help` sentences), but its built-in rows must be [`COMMANDS`]: same order, usage and
    /// role. Adding a command without its row, or a row without its command, fails here.
    #[test]
    fn the_readme_lists_every_command_with_its_usage_and_role() {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("\n## Commands\n")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("README has a ## Commands section");
        let rows: Vec<(String, String)> = table
            .lines()
            .filter(|l| l.starts_with("| `!") && !l.contains("| (plugin)"))
            .map(|row| {
                let cells: Vec<&str> = row.split(" | ").collect();
                let command = cells[0].trim_start_matches("| ").trim_matches('`');
                let role = cells[1].split_whitespace().next().unwrap_or_default();
                (command.replace("\\|", "|"), role.to_owned())
            })
            .collect();
        let expected: Vec<(String, String)> = COMMANDS
            .iter()
            .map(|spec| {
                let role = spec.role.map_or("–".to_owned(), |r| r.to_string());
                (spec.synopsis("!"), role)
            })
            .collect();
        assert_eq!(
            rows,
            expected,
            "README.md's command table differs from COMMANDS; its rows should read:\n{}",
            expected
                .iter()
                .map(|(c, r)| format!("| `{}` | {r} | ...", c.replace('|', "\\|")))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
