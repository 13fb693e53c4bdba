//! `[flags]`: feature flags and contingency switches, declared here so a typo never makes a
//! flag. `[flags.NAME]` declares one; `file`, `tokens` and `rate_limit` in `[flags]` itself
//! are settings (so no flag may take those names).

use std::fmt;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::{Invalid, Secret};

/// The names `[flags]` keeps for its settings.
const SETTINGS: &[&str] = &["file", "tokens", "rate_limit"];
/// Shortest read token accepted: anything shorter can be guessed.
const MIN_TOKEN: usize = 16;

/// `[flags]`
#[derive(Debug, Default)]
pub struct FlagsConfig {
    /// A flagd flag definition file lever writes (atomically) on every change, for flagd or an
    /// in-process OpenFeature provider to read: "flags/flagd.json". Default: none.
    pub file: Option<PathBuf>,
    /// Read-only tokens for OFREP evaluations and `/flags/flagd.json`, by name (the name is
    /// logged): `{ web = "…" }`. `[http]` tokens may read too. Best set with
    /// `LEVER_FLAGS__TOKENS__WEB`.
    pub tokens: IndexMap<String, Secret>,
    /// Evaluation requests a second one credential may make; more are answered 429 with
    /// `Retry-After`. Default: none (no limit).
    pub rate_limit: Option<u32>,
    /// The flags, by name, in the order `!flag` lists them.
    pub flags: IndexMap<String, FlagConfig>,
}

/// `[flags.NAME]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagConfig {
    /// What the flag does, as `!flag NAME` and OFREP's metadata say.
    #[serde(default)]
    pub description: String,
    /// `true`/`false` for an on/off flag; for a flag with `variants`, the name of one.
    pub default: FlagDefault,
    /// A flag's values by name, when it is more than on/off: `{ solr = "solr", es = "elastic" }`
    /// (strings, numbers or tables).
    #[serde(default)]
    pub variants: IndexMap<String, serde_json::Value>,
    /// A kill switch: `!kill NAME` turns it to its safe value, its `default`.
    #[serde(default)]
    pub contingency: bool,
}

/// A flag's `default`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum FlagDefault {
    On(bool),
    Variant(String),
}

impl<'de> Deserialize<'de> for FlagsConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = FlagsConfig;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("[flags] settings and [flags.NAME] tables")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlagsConfig, A::Error> {
                let mut flags = FlagsConfig::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "file" => flags.file = Some(map.next_value()?),
                        "tokens" => flags.tokens = map.next_value()?,
                        "rate_limit" => flags.rate_limit = Some(map.next_value()?),
                        // Errors inside carry their path (`flags.video.defualt`) already.
                        _ => {
                            let flag = map.next_value::<FlagConfig>()?;
                            flags.flags.insert(key, flag);
                        }
                    }
                }
                Ok(flags)
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

impl FlagsConfig {
    /// Names, defaults, variants and tokens.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        for (name, flag) in &self.flags {
            let key = |field: &str| format!("flags.{name}.{field}");
            if !is_flag_name(name) || SETTINGS.contains(&name.as_str()) {
                return Err(Invalid::new(
                    format!("flags.{name}"),
                    "a flag's name is 1 to 64 letters, digits, '-', '_' or '.' (and not file, tokens or rate_limit)",
                ));
            }
            match &flag.default {
                FlagDefault::On(_) if !flag.variants.is_empty() => {
                    return Err(Invalid::new(
                        key("default"),
                        "a flag with variants names one of them as its default, not true or false",
                    ))
                }
                FlagDefault::On(_) => {}
                FlagDefault::Variant(_) if flag.variants.is_empty() => {
                    return Err(Invalid::new(
                        key("default"),
                        "is a variant name, but the flag has no variants: add variants = { … }, or make default true or false",
                    ))
                }
                FlagDefault::Variant(v) if !flag.variants.contains_key(v) => {
                    let names: Vec<&str> = flag.variants.keys().map(String::as_str).collect();
                    return Err(Invalid::new(
                        key("default"),
                        format!("'{v}' is not one of its variants ({})", names.join(", ")),
                    ));
                }
                FlagDefault::Variant(_) => {}
            }
            for (variant, value) in &flag.variants {
                if !is_flag_name(variant) || RESERVED_WORDS.contains(&variant.as_str()) {
                    return Err(Invalid::new(
                        key("variants"),
                        format!("'{variant}' cannot name a variant: use letters, digits, '-', '_' or '.', and none of {}", RESERVED_WORDS.join(", ")),
                    ));
                }
                if matches!(value, serde_json::Value::Null | serde_json::Value::Array(_)) {
                    return Err(Invalid::new(
                        key("variants"),
                        format!("'{variant}' must be a string, a number, true/false or a table"),
                    ));
                }
            }
        }
        for (name, token) in &self.tokens {
            if token.expose().len() < MIN_TOKEN {
                return Err(Invalid::new(
                    format!("flags.tokens.{name}"),
                    format!("is shorter than {MIN_TOKEN} characters: too easy to guess"),
                ));
            }
        }
        if self.rate_limit == Some(0) {
            return Err(Invalid::new(
                "flags.rate_limit",
                "must be at least 1 (leave it out for no limit)",
            ));
        }
        Ok(())
    }
}

/// Words `!flag NAME …` gives a meaning of its own, so no variant may take them.
pub const RESERVED_WORDS: &[&str] = &[
    "on", "off", "beta", "history", "enable", "disable", "enabled", "disabled",
];

/// A flag's (or variant's) name: 1 to 64 of `[A-Za-z0-9_.-]`, as an OFREP URL path segment.
pub fn is_flag_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(text: &str) -> Result<FlagsConfig, String> {
        let config: FlagsConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config
            .validate()
            .map_err(|i| format!("{}: {}", i.key, i.message))?;
        Ok(config)
    }

    #[test]
    fn settings_and_flags_share_the_section() {
        let config = flags(
            "file = \"flagd.json\"\nrate_limit = 50\n[tokens]\nweb = \"0123456789abcdef\"\n\
             [video]\ndescription = \"the video player\"\ndefault = true\ncontingency = true\n\
             [search]\ndefault = \"solr\"\nvariants = { solr = \"solr\", es = \"elastic\" }\n",
        )
        .unwrap();
        assert_eq!(config.file, Some(PathBuf::from("flagd.json")));
        assert_eq!(config.rate_limit, Some(50));
        assert_eq!(config.flags.keys().collect::<Vec<_>>(), ["video", "search"]);
        assert_eq!(config.flags["video"].default, FlagDefault::On(true));
        assert!(config.flags["video"].contingency);
        assert_eq!(
            config.flags["search"].variants["es"],
            serde_json::json!("elastic")
        );
    }

    #[test]
    fn a_bad_flag_is_refused_naming_its_key() {
        let refused = |text: &str| flags(text).unwrap_err();
        let typo = crate::config::Config::from_toml(
            "[irc]\nserver = \"h\"\n[flags.video]\ndefault = true\ncolor = 1\n",
            "t",
            PathBuf::from("."),
        )
        .unwrap_err()
        .to_string();
        assert!(
            typo.starts_with("t: flags.video.color: unknown field `color`"),
            "{typo}"
        );
        assert_eq!(
            refused("[search]\ndefault = \"es\"\nvariants = { solr = \"solr\" }\n"),
            "flags.search.default: 'es' is not one of its variants (solr)"
        );
        assert!(
            refused("[search]\ndefault = true\nvariants = { solr = 1 }\n")
                .starts_with("flags.search.default:")
        );
        assert!(
            refused("[search]\ndefault = \"on\"\nvariants = { on = 1 }\n")
                .starts_with("flags.search.variants:")
        );
        assert!(refused("[\"bad name\"]\ndefault = true\n").starts_with("flags.bad name:"));
        assert!(refused("[tokens]\nweb = \"short\"\n").starts_with("flags.tokens.web:"));
        assert!(refused("rate_limit = 0\n").starts_with("flags.rate_limit:"));
    }
}
