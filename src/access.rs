//! Who may do what: roles granted by `nick!user@host` masks, services accounts, or people the
//! deploy page's trusted proxy signed in.
//!
//! Rights never follow a bare nick. Anyone can take a free nick, so a rule must pin the
//! user@host part or name an account (`account:alice`), which only matches a sender the server
//! says is logged in to that account. A mask whose user@host is all wildcards is refused at load.
//! `web:alice` matches only the person the proxy in front of the deploy page vouches for
//! (`[dashboard]`); masks and accounts never match someone on the page, nor `web:` anyone on IRC.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;

use crate::chat::mask::{self, CaseMapping};
use crate::chat::message::{Identity, Message};

/// A permission a command may require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Stage,
    Deploy,
    Hold,
    Metrics,
    /// May silence and acknowledge alerts.
    Alerts,
    /// May change feature flags and kill contingency switches.
    Flags,
    /// Implies every other role.
    Admin,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Stage,
        Role::Deploy,
        Role::Hold,
        Role::Metrics,
        Role::Alerts,
        Role::Flags,
        Role::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Stage => "stage",
            Role::Deploy => "deploy",
            Role::Hold => "hold",
            Role::Metrics => "metrics",
            Role::Alerts => "alerts",
            Role::Flags => "flags",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    /// A role by its name in `[access]`: "stage", "deploy", …
    fn from_str(name: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
                format!("'{name}' is not a role ({})", names.join(", "))
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `[access]`: for each role, the rules that grant it: `"nick!user@host"` masks (`*`, `?`) or
/// `"account:NAME"`. Admin implies every role.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    /// May run `!stage`.
    #[serde(default)]
    pub stage: Vec<String>,
    /// May run `!deploy`, `!rollback`.
    #[serde(default)]
    pub deploy: Vec<String>,
    /// May `!hold` and `!unhold`.
    #[serde(default)]
    pub hold: Vec<String>,
    /// May run raw `!metric` expressions.
    #[serde(default)]
    pub metrics: Vec<String>,
    /// May `!silence` and `!ack` alerts.
    #[serde(default)]
    pub alerts: Vec<String>,
    /// May change feature flags (`!flag NAME …`, `PUT /api/v1/flags`) and `!kill` switches.
    #[serde(default)]
    pub flags: Vec<String>,
    /// May do everything, including forcing a deploy through a hold.
    #[serde(default)]
    pub admin: Vec<String>,
}

impl AccessConfig {
    fn rules(&self, role: Role) -> &[String] {
        match role {
            Role::Stage => &self.stage,
            Role::Deploy => &self.deploy,
            Role::Hold => &self.hold,
            Role::Metrics => &self.metrics,
            Role::Alerts => &self.alerts,
            Role::Flags => &self.flags,
            Role::Admin => &self.admin,
        }
    }
}

/// One way to be granted a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// A `nick!user@host` wildcard mask.
    Mask(String),
    /// A services account name.
    Account(String),
    /// A user the deploy page's trusted proxy names.
    Web(String),
}

impl Rule {
    /// Parses a rule as written in `[access]`.
    pub fn parse(text: &str) -> Result<Rule, String> {
        if let Some(account) = text.strip_prefix("account:") {
            if account.is_empty() || account.contains(|c: char| c.is_whitespace() || c == '*') {
                return Err(format!(
                    "'{text}': an account name is one word, without wildcards"
                ));
            }
            return Ok(Rule::Account(account.to_owned()));
        }
        if let Some(name) = text.strip_prefix("web:") {
            if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '*') {
                return Err(format!(
                    "'{text}': a web user is the one name the proxy sends, without wildcards"
                ));
            }
            return Ok(Rule::Web(name.to_owned()));
        }
        let (nick, user, host) = mask::split_source(text);
        if !text.contains('!')
            || !text.contains('@')
            || nick.is_empty()
            || user.is_empty()
            || host.is_empty()
        {
            return Err(format!(
                "'{text}' is not a nick!user@host mask; write e.g. \"*!*@10.0.0.*\" or \"account:{text}\""
            ));
        }
        if text.contains(char::is_whitespace) {
            return Err(format!("'{text}': a mask has no spaces"));
        }
        if !mask::is_plain_source(nick, user, host) {
            return Err(format!(
                "'{text}' has more than one '!' or '@'; a mask is nick!user@host with one of each, \
                 e.g. \"*!*@10.0.0.*\""
            ));
        }
        let wild = |part: &str| part.chars().all(|c| c == '*' || c == '?');
        if wild(user) && wild(host) && !wild(nick) {
            return Err(format!(
                "'{text}' trusts a bare nick (anyone can take the nick '{nick}'); \
                 use \"account:{nick}\" or pin the user@host"
            ));
        }
        Ok(Rule::Mask(text.to_owned()))
    }

    /// Whether this rule grants to `who`.
    pub fn grants(&self, who: &Identity, casemap: CaseMapping) -> bool {
        match self {
            Rule::Web(name) => who.is_web() && who.nick.eq_ignore_ascii_case(name),
            _ if who.is_web() => false,
            Rule::Mask(m) => mask::matches_source(m, (&who.nick, &who.user, &who.host), casemap),
            Rule::Account(name) => who
                .account
                .as_deref()
                .is_some_and(|account| casemap.eq(account, name)),
        }
    }
}

/// The access policy the dispatcher checks every command against.
#[derive(Debug, Clone)]
pub struct Access {
    /// `None`: no `[access]` section, everyone holds every role.
    rules: Option<HashMap<Role, Vec<Rule>>>,
}

impl Access {
    /// Builds the policy; an invalid rule is reported as `(key, why)`.
    pub fn from_config(config: Option<&AccessConfig>) -> Result<Self, (String, String)> {
        let Some(config) = config else {
            return Ok(Self { rules: None });
        };
        let mut rules = HashMap::new();
        for role in Role::ALL {
            let parsed = config
                .rules(role)
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    Rule::parse(text).map_err(|why| (format!("access.{role}[{i}]"), why))
                })
                .collect::<Result<Vec<_>, _>>()?;
            rules.insert(role, parsed);
        }
        Ok(Self { rules: Some(rules) })
    }

    /// Whether every sender holds every role (no `[access]` section).
    pub fn is_open(&self) -> bool {
        self.rules.is_none()
    }

    /// Whether any rule that grants `role` (directly or through admin) names an account.
    pub fn grants_by_account(&self, role: Role) -> bool {
        let Some(rules) = &self.rules else {
            return false;
        };
        [role, Role::Admin].iter().any(|r| {
            rules
                .get(r)
                .is_some_and(|list| list.iter().any(|rule| matches!(rule, Rule::Account(_))))
        })
    }

    /// Whether the sender of `msg` holds `role` (admin implies every role).
    pub fn allows(&self, msg: &Message, role: Role) -> bool {
        msg.trusted || self.grants(&msg.who, msg.casemap, role)
    }

    /// Whether `who` holds `role` (admin implies every role).
    pub fn grants(&self, who: &Identity, casemap: CaseMapping, role: Role) -> bool {
        let Some(rules) = &self.rules else {
            return true;
        };
        let granted = |r: Role| {
            rules
                .get(&r)
                .is_some_and(|list| list.iter().any(|rule| rule.grants(who, casemap)))
        };
        granted(role) || granted(Role::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn msg(nick: &str, user: &str, host: &str, account: Option<&str>) -> Message {
        Message {
            who: Identity {
                nick: nick.into(),
                user: user.into(),
                host: host.into(),
                account: account.map(Into::into),
            },
            place: crate::chat::message::Place::Channel("#ops".into()),
            text: String::new(),
            me: Arc::from("lever"),
            casemap: CaseMapping::Rfc1459,
            trusted: false,
        }
    }

    fn access(deploy: &[&str], admin: &[&str]) -> Access {
        let config = AccessConfig {
            deploy: deploy.iter().map(|s| s.to_string()).collect(),
            admin: admin.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        Access::from_config(Some(&config)).unwrap()
    }

    #[test]
    fn an_account_rule_needs_the_server_to_vouch_for_the_account() {
        let a = access(&["account:alice"], &[]);
        assert!(a.allows(&msg("alice", "a", "h", Some("alice")), Role::Deploy));
        assert!(a.allows(&msg("whatever", "a", "h", Some("Alice")), Role::Deploy));
        // The nick alone grants nothing.
        assert!(!a.allows(&msg("alice", "a", "h", None), Role::Deploy));
        assert!(!a.allows(&msg("alice", "a", "h", Some("mallory")), Role::Deploy));
    }

    #[test]
    fn masks_match_the_full_source() {
        let a = access(&["*!*@10.0.0.*"], &[]);
        assert!(a.allows(&msg("bob", "~bob", "10.0.0.7", None), Role::Deploy));
        assert!(!a.allows(&msg("bob", "~bob", "10.0.1.7", None), Role::Deploy));
    }

    #[test]
    fn masks_never_match_a_source_with_a_stray_at_or_bang() {
        let a = access(&["*!*@10.0.0.*"], &["*!*@10.0.0.*"]);
        // "nick!evil@10.0.0.5@real.host" as a lenient parser splits it.
        let forged = msg("nick", "evil", "10.0.0.5@real.host", None);
        assert!(!a.allows(&forged, Role::Admin));
        assert!(!a.allows(
            &msg("nick", "evil@10.0.0.5", "real.host", None),
            Role::Deploy
        ));
        assert!(!a.allows(&msg("nick", "a!b", "10.0.0.5", None), Role::Deploy));
        // An account rule still works for such a sender: the server vouches for it.
        let b = access(&["account:alice"], &[]);
        let alice = msg("alice", "a@b", "h", Some("alice"));
        assert!(b.allows(&alice, Role::Deploy));
    }

    #[test]
    fn admin_implies_every_role_and_roles_are_separate() {
        let a = access(&["*!*@deployers"], &["account:root"]);
        let root = msg("r", "r", "x", Some("root"));
        let dev = msg("d", "d", "deployers", None);
        for role in Role::ALL {
            assert!(a.allows(&root, role));
        }
        assert!(a.allows(&dev, Role::Deploy));
        assert!(!a.allows(&dev, Role::Hold));
        assert!(!a.allows(&dev, Role::Admin));
    }

    #[test]
    fn no_access_section_means_open_and_trusted_means_everything() {
        let open = Access::from_config(None).unwrap();
        assert!(open.is_open());
        assert!(open.allows(&msg("x", "x", "x", None), Role::Admin));
        let closed = access(&[], &[]);
        let mut console = msg("me", "me", "console", None);
        assert!(!closed.allows(&console, Role::Stage));
        console.trusted = true;
        assert!(closed.allows(&console, Role::Admin));
    }

    #[test]
    fn web_rules_match_only_people_on_the_page_and_masks_only_people_on_irc() {
        let a = access(&["web:alice", "*!*@*"], &[]);
        let on_page = |name: &str| Message {
            who: Identity::web(name),
            ..msg("x", "x", "x", None)
        };
        assert!(a.allows(&on_page("alice"), Role::Deploy));
        assert!(a.allows(&on_page("Alice"), Role::Deploy));
        assert!(!a.allows(&on_page("bob"), Role::Deploy), "*!*@* is for IRC");
        // The same nick on IRC (whose hosts never have a space) is not the web user.
        let b = access(&["web:alice"], &[]);
        assert!(!b.allows(&msg("alice", "web", "deploy-page", None), Role::Deploy));
        assert!(Rule::parse("web:").is_err());
        assert!(Rule::parse("web:a*").is_err());
        assert_eq!(Rule::parse("web:alice"), Ok(Rule::Web("alice".into())));
    }

    #[test]
    fn rules_that_would_trust_a_bare_nick_are_refused() {
        assert!(Rule::parse("alice").is_err());
        assert!(Rule::parse("alice!*@*").is_err());
        assert!(Rule::parse("alice!?*@*").is_err());
        assert!(Rule::parse("alice!*").is_err());
        assert!(Rule::parse("account:").is_err());
        assert!(Rule::parse("account:a*").is_err());
        assert!(Rule::parse("*!*@*@10.0.0.*").is_err());
        assert!(Rule::parse("*!*!*@10.0.0.*").is_err());
        assert_eq!(
            Rule::parse("alice!*@trusted.example"),
            Ok(Rule::Mask("alice!*@trusted.example".into()))
        );
        assert_eq!(Rule::parse("*!*@*"), Ok(Rule::Mask("*!*@*".into())));
        assert_eq!(
            Rule::parse("account:alice"),
            Ok(Rule::Account("alice".into()))
        );
    }
}
