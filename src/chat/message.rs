//! What the rest of the bot sees of a chat line: who said it, where, and what.
//!
//! The IRC session and the console both produce [`Message`]s; command handlers never see the
//! protocol underneath.

use std::sync::Arc;

use crate::chat::mask::CaseMapping;

/// Who sent a message, as far as the server told us.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    pub nick: String,
    pub user: String,
    pub host: String,
    /// The services account the sender is logged in to, when the server says so
    /// (`account-tag`, `extended-join` + `account-notify`). `None` means not logged in or unknown:
    /// either way, no `account:` rule matches.
    pub account: Option<String>,
}

/// The host of a person acting on the deploy page. It has a space, which no IRC source can
/// have, so nobody on IRC is ever taken for them (nor they for anyone on IRC).
const WEB_HOST: &str = "deploy page";

impl Identity {
    /// The `nick!user@host` form that access masks are matched against.
    pub fn source(&self) -> String {
        format!("{}!{}@{}", self.nick, self.user, self.host)
    }

    /// Someone the deploy page's trusted proxy signed in as `name` (matched by `web:NAME`
    /// rules only).
    pub fn web(name: &str) -> Identity {
        Identity {
            nick: name.to_owned(),
            user: "web".to_owned(),
            host: WEB_HOST.to_owned(),
            account: None,
        }
    }

    /// Whether this is someone on the deploy page, not on IRC.
    pub fn is_web(&self) -> bool {
        self.host == WEB_HOST && self.user == "web"
    }
}

/// Where a message was said, which is also where its reply goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Channel(String),
    /// A private message to the bot; replies go back to the sender's nick.
    Private,
}

/// A line of chat addressed to the channel or to the bot.
#[derive(Debug, Clone)]
pub struct Message {
    pub who: Identity,
    pub place: Place,
    pub text: String,
    /// The bot's own nick when the line arrived, so `lever: ping` can be recognised.
    pub me: Arc<str>,
    /// The server's case mapping, for nick and mask comparisons.
    pub casemap: CaseMapping,
    /// Set only for the local console user, who holds every role.
    pub trusted: bool,
}

impl Message {
    /// Where a reply to this message goes: the channel, or the sender in private.
    pub fn reply_target(&self) -> &str {
        match &self.place {
            Place::Channel(channel) => channel,
            Place::Private => &self.who.nick,
        }
    }
}
