//! Who is logged in as what, for servers without `account-tag`.
//!
//! With `extended-join` (account at join) and `account-notify` (log in/out while present), plus
//! WHOX for users already in a channel when lever joins, lever can know each user's account
//! without a tag on every message. The record follows a user through NICK changes (the login
//! belongs to the connection, not the nick) and is forgotten as soon as lever can no longer see
//! the user (QUIT, or the last shared channel left): a later stranger with the same nick starts
//! with no account.

use std::collections::{HashMap, HashSet};

use crate::chat::mask::CaseMapping;

#[derive(Debug, Default)]
struct User {
    account: Option<String>,
    channels: HashSet<String>,
}

/// The account of every user sharing a channel with lever, keyed by folded nick.
#[derive(Debug, Default)]
pub struct Accounts {
    casemap: CaseMapping,
    users: HashMap<String, User>,
}

impl Accounts {
    /// Forgets everything (new connection) and uses `casemap` from now on.
    pub fn reset(&mut self, casemap: CaseMapping) {
        self.casemap = casemap;
        self.users.clear();
    }

    /// The account `nick` is logged in to, if known.
    pub fn get(&self, nick: &str) -> Option<&str> {
        self.users.get(&self.casemap.fold(nick))?.account.as_deref()
    }

    /// `nick` is seen in `channel` (JOIN, WHOX) with `account` (`None`: not logged in).
    pub fn seen(&mut self, nick: &str, channel: &str, account: Option<&str>) {
        let user = self.users.entry(self.casemap.fold(nick)).or_default();
        user.channels.insert(self.casemap.fold(channel));
        user.account = account.map(str::to_owned);
    }

    /// `nick` logged in or out (`ACCOUNT`).
    pub fn set_account(&mut self, nick: &str, account: Option<&str>) {
        if let Some(user) = self.users.get_mut(&self.casemap.fold(nick)) {
            user.account = account.map(str::to_owned);
        }
    }

    /// `nick` left `channel` (PART, KICK); forgotten when no shared channel is left.
    pub fn left(&mut self, nick: &str, channel: &str) {
        let key = self.casemap.fold(nick);
        if let Some(user) = self.users.get_mut(&key) {
            user.channels.remove(&self.casemap.fold(channel));
            if user.channels.is_empty() {
                self.users.remove(&key);
            }
        }
    }

    /// `nick` quit the network.
    pub fn quit(&mut self, nick: &str) {
        self.users.remove(&self.casemap.fold(nick));
    }

    /// `old` is now called `new`; the account goes with the connection.
    pub fn renamed(&mut self, old: &str, new: &str) {
        if let Some(user) = self.users.remove(&self.casemap.fold(old)) {
            self.users.insert(self.casemap.fold(new), user);
        }
    }

    /// lever itself left `channel`: it can no longer see who is there.
    pub fn lever_left(&mut self, channel: &str) {
        let channel = self.casemap.fold(channel);
        self.users.retain(|_, user| {
            user.channels.remove(&channel);
            !user.channels.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Accounts {
        let mut a = Accounts::default();
        a.reset(CaseMapping::Rfc1459);
        a
    }

    #[test]
    fn the_account_follows_a_nick_change_and_not_the_nick() {
        let mut a = accounts();
        a.seen("alice", "#ops", Some("alice"));
        a.renamed("alice", "alice_away");
        assert_eq!(a.get("alice_away"), Some("alice"));
        assert_eq!(a.get("alice"), None, "the freed nick carries nothing");
        a.seen("alice", "#ops", None); // someone else takes the nick
        assert_eq!(a.get("alice"), None);
    }

    #[test]
    fn forgotten_when_no_channel_is_shared() {
        let mut a = accounts();
        a.seen("Bob", "#ops", Some("bob"));
        a.seen("bob", "#dev", Some("bob"));
        a.left("BOB", "#OPS");
        assert_eq!(a.get("bob"), Some("bob"));
        a.left("bob", "#dev");
        assert_eq!(a.get("bob"), None);
        a.seen("carol", "#ops", Some("carol"));
        a.lever_left("#ops");
        assert_eq!(a.get("carol"), None);
    }

    #[test]
    fn log_out_and_quit_clear_the_account() {
        let mut a = accounts();
        a.seen("dave", "#ops", Some("dave"));
        a.set_account("dave", None);
        assert_eq!(a.get("dave"), None);
        a.set_account("dave", Some("dave"));
        assert_eq!(a.get("dave"), Some("dave"));
        a.quit("dave");
        assert_eq!(a.get("dave"), None);
        a.set_account("ghost", Some("x")); // unknown users are not created by ACCOUNT
        assert_eq!(a.get("ghost"), None);
    }
}
