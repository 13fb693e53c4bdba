//! `[plugins]`: commands from executables in any language (the protocol is in
//! `plugins/README.md`), and `[plugins.NAME]`, a plugin's own settings.

use std::path::PathBuf;

use indexmap::IndexMap;
use serde::Deserialize;

use super::Invalid;

/// `[plugins]`. Without this section lever runs no plugins.
#[derive(Debug, Deserialize)]
pub struct PluginsConfig {
    /// The folder whose executable files are plugins, one command set each. Default:
    /// "plugins". A folder that is not there means no plugins from it (said in the log).
    #[serde(default = "default_dir")]
    pub dir: PathBuf,
    /// `[plugins.NAME]`: settings for the file NAME in `dir`, or, with `run`, a plugin that
    /// lives elsewhere.
    #[serde(flatten)]
    pub plugins: IndexMap<String, PluginConfig>,
}

/// `[plugins.NAME]`
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "`dir`, or a [plugins.NAME] table (run, pass_env, env, enabled)"
)]
pub struct PluginConfig {
    /// The program and its arguments (an argv, never a shell; relative to the config's
    /// folder). Default: the file NAME in `dir`.
    #[serde(default)]
    pub run: Option<Vec<String>>,
    /// Variables from lever's environment the plugin may see, by name: a plugin sees none of
    /// lever's settings or secrets otherwise. Default: none.
    #[serde(default)]
    pub pass_env: Vec<String>,
    /// Variables set for the plugin: `{ RUNBOOKS = "plugins/runbooks.toml" }`.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// `false` turns the plugin off without removing its file. Default: true.
    #[serde(default = "super::yes")]
    pub enabled: bool,
}

fn default_dir() -> PathBuf {
    PathBuf::from("plugins")
}

impl PluginsConfig {
    /// Checks names, argvs and variable names.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        for (name, plugin) in &self.plugins {
            let key = |field: &str| format!("plugins.{name}.{field}");
            if name.is_empty() || name.starts_with('.') || name.contains('/') {
                return Err(Invalid::new(
                    format!("plugins.{name}"),
                    "a plugin's name is a file name in plugins.dir (no '/', not hidden)",
                ));
            }
            if plugin.run.as_ref().is_some_and(|argv| argv.is_empty()) {
                return Err(Invalid::new(
                    key("run"),
                    "names no program; leave it out to run the file NAME in plugins.dir",
                ));
            }
            for var in plugin.pass_env.iter().chain(plugin.env.keys()) {
                if !is_env_name(var) {
                    return Err(Invalid::new(
                        key(if plugin.env.contains_key(var) {
                            "env"
                        } else {
                            "pass_env"
                        }),
                        format!("'{var}' is not an environment variable name"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `NAME_1`: letters, digits and `_`, not starting with a digit.
fn is_env_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| !c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugins(text: &str) -> PluginsConfig {
        toml::from_str(text).expect("a [plugins] section")
    }

    #[test]
    fn names_argvs_and_variables_are_checked() {
        assert_eq!(
            plugins("[uptime]\npass_env = [\"HOME\"]\n").validate(),
            Ok(())
        );
        assert_eq!(
            plugins("[\"../x\"]\n").validate(),
            Err(Invalid::new(
                "plugins.../x",
                "a plugin's name is a file name in plugins.dir (no '/', not hidden)"
            ))
        );
        assert_eq!(
            plugins("[uptime]\nrun = []\n").validate(),
            Err(Invalid::new(
                "plugins.uptime.run",
                "names no program; leave it out to run the file NAME in plugins.dir"
            ))
        );
        assert_eq!(
            plugins("[uptime]\nenv = { \"1X\" = \"v\" }\n").validate(),
            Err(Invalid::new(
                "plugins.uptime.env",
                "'1X' is not an environment variable name"
            ))
        );
    }
}
