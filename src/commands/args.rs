//! Reading a command's words: the [`Words`] cursor every `parse` uses, the shapes several
//! commands share (`[target]`, `[target] [force]`, `[n] [target]`) over [`Known`] targets,
//! durations, and how deploy and store errors reach the user.

use std::time::Duration;

use super::{CommandError, Ctx};
use crate::deploy::DeployError;

impl From<DeployError> for CommandError {
    fn from(error: DeployError) -> Self {
        match error {
            DeployError::Refused(text) => CommandError::User(text),
            DeployError::Store(e) => e.into(),
        }
    }
}

impl From<crate::store::StoreError> for CommandError {
    fn from(error: crate::store::StoreError) -> Self {
        if error.is_operational() {
            return CommandError::User(error.to_string());
        }
        CommandError::Internal(anyhow::Error::new(error).context("the store failed"))
    }
}

/// The words after a command name, taken one at a time: what every command's `parse` reads.
#[derive(Debug, Clone)]
pub struct Words<'a> {
    rest: &'a str,
}

impl<'a> Words<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            rest: text.trim_start(),
        }
    }

    /// The next word, without taking it.
    pub fn peek(&self) -> Option<&'a str> {
        self.clone().next()
    }

    /// The next word, taken only if `wanted` accepts it.
    pub fn next_if(&mut self, wanted: impl FnOnce(&str) -> bool) -> Option<&'a str> {
        let word = self.peek().filter(|w| wanted(w))?;
        self.next();
        Some(word)
    }

    /// Everything not taken yet, as typed (spaces inside kept), trimmed.
    pub fn rest(&self) -> &'a str {
        self.rest.trim_end()
    }

    /// The end of the words: any word left over means the usage was not followed.
    pub fn end(&self) -> Result<(), CommandError> {
        match self.rest().is_empty() {
            true => Ok(()),
            false => Err(CommandError::Usage),
        }
    }
}

/// The next word, if any.
impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        let (word, rest) = self
            .rest
            .split_once(char::is_whitespace)
            .unwrap_or((self.rest, ""));
        self.rest = rest.trim_start();
        Some(word)
    }
}

/// What parsing may know beyond the words: the configured targets (the first is the default)
/// and the command prefix, for messages. Built from the config by [`Ctx::known`], or by hand
/// in a test.
#[derive(Debug)]
pub struct Known<'a> {
    pub targets: Vec<&'a str>,
    pub prefix: &'a str,
}

impl Ctx {
    /// The targets and prefix a command's `parse` is given.
    pub fn known(&self) -> Known<'_> {
        let config = &self.bot.config;
        Known {
            targets: config.targets.keys().map(String::as_str).collect(),
            prefix: &config.bot.prefix,
        }
    }
}

const NO_TARGETS: &str = "no targets are configured: add [targets.NAME] to the config";

impl Known<'_> {
    /// Whether `word` names a configured target.
    pub fn is_target(&self, word: &str) -> bool {
        self.targets.contains(&word)
    }

    /// The target a command is about: the word given (which must be a configured target),
    /// else the default target.
    pub fn target(&self, word: Option<&str>) -> Result<String, CommandError> {
        match word {
            Some(word) if self.is_target(word) => Ok(word.to_owned()),
            Some(_) if self.targets.is_empty() => Err(CommandError::User(NO_TARGETS.into())),
            Some(word) => {
                let hint = self
                    .close_target(word)
                    .map(|t| format!(" (did you mean {t}?)"))
                    .unwrap_or_default();
                Err(CommandError::User(format!(
                    "no target '{}'{hint}; targets: {}",
                    crate::chat::text::truncate_chars(word, 32),
                    self.targets.join(", ")
                )))
            }
            None => self
                .targets
                .first()
                .map(|t| (*t).to_owned())
                .ok_or_else(|| CommandError::User(NO_TARGETS.into())),
        }
    }

    /// The configured target closest to a mistyped word, for "did you mean". Short words must
    /// be one edit away, so an ordinary word ("db") is not taken for a target ("dev").
    pub fn close_target(&self, word: &str) -> Option<&str> {
        let max = if word.chars().count() <= 5 { 1 } else { 2 };
        self.targets
            .iter()
            .map(|t| (strsim::damerau_levenshtein(word, t), *t))
            .filter(|(d, t)| *d > 0 && *d <= max && *d < t.len())
            .min_by_key(|(d, _)| *d)
            .map(|(_, t)| t)
    }

    /// `[target]` and nothing else: the target named, else the default one. The name is
    /// checked first, so `!stage sitee now` says there is no target 'sitee'.
    pub fn only_target(&self, args: &str) -> Result<String, CommandError> {
        let mut words = Words::new(args);
        let target = self.target(words.next())?;
        words.end()?;
        Ok(target)
    }

    /// `[target]` and nothing else, where no word leaves the choice to the command. The shape
    /// is checked first, so `!status a b` shows the usage.
    pub fn maybe_target(&self, args: &str) -> Result<Option<String>, CommandError> {
        let mut words = Words::new(args);
        let named = words.next();
        words.end()?;
        named.map(|w| self.target(Some(w))).transpose()
    }

    /// A number and a target, each at most once, in either order (`!log 20 site`, `!stats
    /// site 30`). A number `fits` refuses is `unfit`'s error.
    pub fn number_and_target(
        &self,
        args: &str,
        fits: impl Fn(u64) -> bool,
        unfit: impl Fn() -> CommandError,
    ) -> Result<(Option<u64>, Option<String>), CommandError> {
        let (mut number, mut target) = (None, None);
        for word in Words::new(args) {
            match word.parse::<u64>() {
                Ok(n) if number.is_none() && fits(n) => number = Some(n),
                Ok(_) => return Err(unfit()),
                Err(_) if target.is_none() => target = Some(self.target(Some(word))?),
                Err(_) => return Err(CommandError::Usage),
            }
        }
        Ok((number, target))
    }

    /// `[target] [force]`, as `!deploy` and `!rollback` take them. Whether the asker may
    /// force is the command's to check.
    pub fn target_and_force(&self, args: &str) -> Result<(String, bool), CommandError> {
        let mut words = Words::new(args);
        let named = words.next_if(|w| w != "force");
        let force = words.next_if(|w| w == "force").is_some();
        words.end()?;
        Ok((self.target(named)?, force))
    }
}

/// A duration word such as `2h`, `30m`, `1h30m` (a number alone is not a duration).
pub fn duration(word: &str) -> Option<Duration> {
    if !word.starts_with(|c: char| c.is_ascii_digit())
        || !word.chars().any(|c| c.is_ascii_alphabetic())
    {
        return None;
    }
    humantime::parse_duration(word)
        .ok()
        .filter(|d| !d.is_zero())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Two targets, `site` the default, and the prefix `!`: what the commands' parse tests
    /// are given.
    pub fn known() -> Known<'static> {
        Known {
            targets: vec!["site", "api"],
            prefix: "!",
        }
    }

    fn refusal<T: std::fmt::Debug>(parsed: Result<T, CommandError>) -> String {
        match parsed {
            Err(CommandError::User(text)) => text,
            Err(CommandError::Usage) => "usage".into(),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn words_come_one_at_a_time_and_the_rest_keeps_its_spaces() {
        let mut words = Words::new("  site   2h  db  migration ");
        assert_eq!(words.peek(), Some("site"));
        assert_eq!(words.next_if(|w| w == "api"), None);
        assert_eq!(words.next(), Some("site"));
        assert_eq!(words.next(), Some("2h"));
        assert!(words.end().is_err());
        assert_eq!(words.rest(), "db  migration");
        assert_eq!(words.by_ref().count(), 2);
        assert!(words.end().is_ok());
        assert_eq!(Words::new("   ").next(), None);
    }

    #[test]
    fn a_target_is_named_or_the_first_one() {
        let known = known();
        assert_eq!(known.target(None).unwrap(), "site");
        assert_eq!(known.target(Some("api")).unwrap(), "api");
        assert_eq!(
            refusal(known.target(Some("apj"))),
            "no target 'apj' (did you mean api?); targets: site, api"
        );
        assert_eq!(
            refusal(known.target(Some("db"))),
            "no target 'db'; targets: site, api"
        );
        let none = Known {
            targets: Vec::new(),
            prefix: "!",
        };
        assert_eq!(
            refusal(none.target(None)),
            "no targets are configured: add [targets.NAME] to the config"
        );
    }

    #[test]
    fn one_optional_target_and_nothing_else() {
        let known = known();
        assert_eq!(known.only_target("").unwrap(), "site");
        assert_eq!(known.only_target(" api ").unwrap(), "api");
        assert_eq!(known.maybe_target("").unwrap(), None);
        assert_eq!(known.maybe_target("api").unwrap().as_deref(), Some("api"));
        assert_eq!(
            refusal(known.only_target("nosuch extra")),
            "no target 'nosuch'; targets: site, api"
        );
        assert_eq!(refusal(known.maybe_target("nosuch extra")), "usage");
    }

    #[test]
    fn force_follows_an_optional_target() {
        let known = known();
        let parse = |args| known.target_and_force(args);
        assert_eq!(parse("").unwrap(), ("site".into(), false));
        assert_eq!(parse("force").unwrap(), ("site".into(), true));
        assert_eq!(parse("api").unwrap(), ("api".into(), false));
        assert_eq!(parse("api force").unwrap(), ("api".into(), true));
        assert_eq!(refusal(parse("force api")), "usage");
        assert_eq!(refusal(parse("api now")), "usage");
    }

    #[test]
    fn a_number_and_a_target_come_in_either_order() {
        let known = known();
        let parse = |args| {
            known.number_and_target(
                args,
                |n| (1..=366).contains(&n),
                || CommandError::User("1 to 366".into()),
            )
        };
        assert_eq!(parse("").unwrap(), (None, None));
        assert_eq!(parse("30 api").unwrap(), (Some(30), Some("api".into())));
        assert_eq!(parse("api 30").unwrap(), (Some(30), Some("api".into())));
        assert_eq!(refusal(parse("0")), "1 to 366");
        assert_eq!(refusal(parse("5 6")), "1 to 366");
        assert_eq!(refusal(parse("api site")), "usage");
        assert_eq!(
            refusal(parse("apj")),
            "no target 'apj' (did you mean api?); targets: site, api"
        );
    }

    #[test]
    fn durations_need_a_number_and_a_unit() {
        assert_eq!(duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(duration("2"), None);
        assert_eq!(duration("db"), None);
        assert_eq!(duration("0m"), None);
        assert_eq!(duration("h2"), None);
    }
}
