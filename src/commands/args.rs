//! Argument words shared by several commands: target names, `force`, counts, durations.

use std::time::Duration;

use super::{CommandError, Ctx};
use crate::access::Role;
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

/// Whether `word` names a configured target.
pub fn is_target(ctx: &Ctx, word: &str) -> bool {
    ctx.bot.config.targets.contains_key(word)
}

/// The target a command is about: the word given (which must be a configured target), else
/// the default target.
pub fn target(ctx: &Ctx, word: Option<&str>) -> Result<String, CommandError> {
    let targets = &ctx.bot.config.targets;
    match word {
        Some(word) if targets.contains_key(word) => Ok(word.to_owned()),
        Some(word) => {
            let names: Vec<&str> = targets.keys().map(String::as_str).collect();
            Err(CommandError::User(if names.is_empty() {
                "no targets are configured: add [targets.NAME] to the config".into()
            } else {
                let hint = close_target(ctx, word)
                    .map(|t| format!(" (did you mean {t}?)"))
                    .unwrap_or_default();
                format!(
                    "no target '{}'{hint}; targets: {}",
                    crate::chat::text::truncate_chars(word, 32),
                    names.join(", ")
                )
            }))
        }
        None => ctx
            .bot
            .config
            .default_target()
            .map(str::to_owned)
            .ok_or_else(|| {
                CommandError::User(
                    "no targets are configured: add [targets.NAME] to the config".into(),
                )
            }),
    }
}

/// `[target] [force]`, as `!deploy` and `!rollback` take them. `force` needs the admin role.
pub fn target_and_force(ctx: &Ctx) -> Result<(String, bool), CommandError> {
    let words: Vec<&str> = ctx.args.split_whitespace().collect();
    let (target, force) = match words.as_slice() {
        [] => (None, false),
        ["force"] => (None, true),
        [t] => (Some(*t), false),
        [t, "force"] => (Some(*t), true),
        _ => return Err(CommandError::Usage),
    };
    let target = self::target(ctx, target)?;
    if force && !ctx.bot.access.allows(&ctx.msg, Role::Admin) {
        return Err(CommandError::User(
            "'force' needs the admin role, which you do not have".into(),
        ));
    }
    Ok((target, force))
}

/// The configured target closest to a mistyped word, for "did you mean". Short words must be
/// one edit away, so an ordinary word ("db") is not taken for a target ("dev").
pub fn close_target<'a>(ctx: &'a Ctx, word: &str) -> Option<&'a str> {
    let max = if word.chars().count() <= 5 { 1 } else { 2 };
    ctx.bot
        .config
        .targets
        .keys()
        .map(|t| (strsim::damerau_levenshtein(word, t), t.as_str()))
        .filter(|(d, t)| *d > 0 && *d <= max && *d < t.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, t)| t)
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
mod tests {
    use super::*;

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
