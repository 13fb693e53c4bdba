//! A plugin's manifest: what `PLUGIN --manifest` prints, and the checks it must pass.
//!
//! ```json
//! {"commands": [{"name": "oncall", "usage": "[team]", "help": "Says who is on call.",
//!                "role": null, "timeout": 5}]}
//! ```
//!
//! Unknown keys are refused rather than ignored: a misspelt `"rol": "admin"` must not leave a
//! command open to everyone.

use std::time::Duration;

use serde::Deserialize;

use crate::access::Role;

/// How long a command runs when its manifest names no timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest timeout a manifest may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// Commands one plugin may declare.
const MAX_COMMANDS: usize = 20;
const MAX_NAME: usize = 30;
const MAX_USAGE: usize = 100;
const MAX_HELP: usize = 300;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    commands: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(default)]
    usage: String,
    help: String,
    #[serde(default)]
    role: Option<String>,
    /// Seconds.
    #[serde(default)]
    timeout: Option<f64>,
}

/// One command, as a checked manifest declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    pub name: String,
    pub usage: String,
    pub help: String,
    pub role: Option<Role>,
    pub timeout: Duration,
}

/// Parses and checks a manifest; the error says what is wrong, for the log.
pub fn parse(text: &str) -> Result<Vec<Declared>, String> {
    let manifest: Manifest = serde_json::from_str(text).map_err(|e| {
        format!(
            "its manifest is not the JSON lever expects ({e}); \
             see plugins/README.md for the format"
        )
    })?;
    if manifest.commands.is_empty() {
        return Err("its manifest declares no commands".into());
    }
    if manifest.commands.len() > MAX_COMMANDS {
        return Err(format!(
            "its manifest declares {} commands; at most {MAX_COMMANDS}",
            manifest.commands.len()
        ));
    }
    let mut declared: Vec<Declared> = Vec::new();
    for entry in manifest.commands {
        let command = check(entry)?;
        if declared.iter().any(|d| d.name == command.name) {
            return Err(format!("its manifest declares '{}' twice", command.name));
        }
        declared.push(command);
    }
    Ok(declared)
}

fn check(entry: Entry) -> Result<Declared, String> {
    let name = entry.name;
    let ok_name = name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok_name {
        return Err(format!(
            "command name '{}' is not 1 to {MAX_NAME} lowercase letters, digits, '-' or '_'",
            crate::chat::text::truncate_chars(&name, 40)
        ));
    }
    let about = |what: &str| format!("command '{name}': {what}");
    if entry.help.trim().is_empty() {
        return Err(about("its help is empty; say in one sentence what it does"));
    }
    for (field, text, max) in [
        ("usage", &entry.usage, MAX_USAGE),
        ("help", &entry.help, MAX_HELP),
    ] {
        if text.chars().count() > max {
            return Err(about(&format!(
                "its {field} is longer than {max} characters"
            )));
        }
        if text.chars().any(char::is_control) {
            return Err(about(&format!("its {field} holds control characters")));
        }
    }
    let role = entry
        .role
        .map(|r| r.parse::<Role>())
        .transpose()
        .map_err(|e| about(&e))?;
    let timeout = match entry.timeout {
        None => DEFAULT_TIMEOUT,
        Some(secs) if secs > 0.0 && secs <= MAX_TIMEOUT.as_secs_f64() => {
            Duration::from_secs_f64(secs)
        }
        Some(secs) => {
            return Err(about(&format!(
                "timeout {secs} is not between 0 and {} seconds",
                MAX_TIMEOUT.as_secs()
            )))
        }
    };
    Ok(Declared {
        name,
        usage: entry.usage.trim().to_owned(),
        help: entry.help.trim().to_owned(),
        role,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_manifest_is_read_with_defaults() {
        let got = parse(
            r#"{"commands": [
                {"name": "oncall", "usage": "[team]", "help": "Says who is on call.", "timeout": 2.5},
                {"name": "page", "help": "Pages someone.", "role": "alerts"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                Declared {
                    name: "oncall".into(),
                    usage: "[team]".into(),
                    help: "Says who is on call.".into(),
                    role: None,
                    timeout: Duration::from_millis(2500),
                },
                Declared {
                    name: "page".into(),
                    usage: "".into(),
                    help: "Pages someone.".into(),
                    role: Some(Role::Alerts),
                    timeout: DEFAULT_TIMEOUT,
                }
            ]
        );
    }

    #[test]
    fn a_bad_manifest_says_what_is_wrong() {
        let error = |text: &str| parse(text).unwrap_err();
        let one = |fields: &str| error(&format!(r#"{{"commands": [{{{fields}}}]}}"#));
        assert!(error("").starts_with("its manifest is not the JSON lever expects"));
        assert!(error("not json").contains("see plugins/README.md"));
        assert!(error(r#"{"commands": [], "x": 1}"#).contains("unknown field `x`"));
        assert_eq!(
            error(r#"{"commands": []}"#),
            "its manifest declares no commands"
        );
        assert!(one(r#""name": "a", "help": "h", "rol": "admin""#).contains("unknown field `rol`"));
        assert_eq!(
            one(r#""name": "a", "help": "h", "role": "root""#),
            "command 'a': 'root' is not a role (stage, deploy, hold, metrics, alerts, flags, admin)"
        );
        assert_eq!(
            one(r#""name": "Deploy!", "help": "h""#),
            "command name 'Deploy!' is not 1 to 30 lowercase letters, digits, '-' or '_'"
        );
        assert_eq!(
            one(r#""name": "a", "help": " ""#),
            "command 'a': its help is empty; say in one sentence what it does"
        );
        assert_eq!(
            one(r#""name": "a", "help": "line\r\nPRIVMSG #x :hi""#),
            "command 'a': its help holds control characters"
        );
        assert_eq!(
            one(r#""name": "a", "help": "h", "timeout": 0"#),
            "command 'a': timeout 0 is not between 0 and 600 seconds"
        );
        assert_eq!(
            error(r#"{"commands": [{"name": "a", "help": "h"}, {"name": "a", "help": "h"}]}"#),
            "its manifest declares 'a' twice"
        );
    }
}
