//! What every section uses: secrets, durations, and `Invalid`, the error a section's
//! `validate` returns.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A section's refusal: the full key (`irc.burst`, `targets.site.url`) and why. `Config` adds
/// where the config came from, making it a `ConfigError::Invalid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub key: String,
    pub message: String,
}

impl Invalid {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// `crate::access` checks `[access]` itself and reports `(key, why)`.
impl From<(String, String)> for Invalid {
    fn from((key, message): (String, String)) -> Self {
        Self { key, message }
    }
}

/// A password or token: deserializes like a string, never prints.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Durations written as "1s", "500ms", "5m", "2h 30m".
pub(crate) mod duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "'{text}' is not a duration ({e}); write e.g. \"1s\", \"500ms\", \"5m\""
            ))
        })
    }
}

/// A serde default of `true`.
pub(crate) fn yes() -> bool {
    true
}

/// A path from the config, against the config file's folder unless it is absolute.
pub(crate) fn resolve(base_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

/// Something IRC sends as one word: not empty, no spaces or control characters.
pub(crate) fn is_word(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}
