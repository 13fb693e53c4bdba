//! `[bot]`: how people talk to the bot.

use serde::Deserialize;

use super::{is_word, Invalid};

/// `[bot]`: how commands are recognised.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotConfig {
    /// What starts a command in a channel. Default: "!".
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

impl Default for BotConfig {
    fn default() -> Self {
        Self {
            prefix: default_prefix(),
        }
    }
}

fn default_prefix() -> String {
    "!".into()
}

impl BotConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        let prefix = &self.prefix;
        if prefix.is_empty() || prefix.chars().count() > 3 || !is_word(prefix) {
            return Err(Invalid::new(
                "bot.prefix",
                "must be 1 to 3 characters without spaces",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_one_to_three_characters() {
        let bot = |prefix: &str| BotConfig {
            prefix: prefix.into(),
        };
        assert_eq!(BotConfig::default().validate(), Ok(()));
        assert_eq!(bot("!!!").validate(), Ok(()));
        for bad in ["", "!!!!", "! "] {
            assert_eq!(
                bot(bad).validate(),
                Err(Invalid::new(
                    "bot.prefix",
                    "must be 1 to 3 characters without spaces"
                )),
                "{bad:?}"
            );
        }
    }
}
