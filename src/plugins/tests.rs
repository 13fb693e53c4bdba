//! Plugins through the dispatcher: scanning, the reply protocol, bounds and failures. Plugins
//! are small `/bin/sh` scripts written into each test's folder.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::bot::Bot;
use crate::chat::message::Place;
use crate::commands::tests::{bot, message, run};

/// A `/bin/sh` plugin answering `--manifest` with `commands` (a JSON list) and running `body`
/// for a command.
fn plugin(dir: &Path, name: &str, commands: &str, body: &str) {
    let path = dir.join(name);
    let text = format!(
        "#!/bin/sh\nif [ \"$1\" = --manifest ]; then\n  echo '{{\"commands\": {commands}}}'\n  exit 0\nfi\n{body}\n"
    );
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A bot whose plugins folder is `dir`, with `extra` config, plugins loaded.
async fn bot_with(dir: &Path, extra: &str) -> (Arc<Bot>, Report) {
    let bot = bot(&format!(
        "{}[plugins]\ndir = \"{}\"\n{extra}",
        crate::commands::tests::SITE,
        dir.display()
    ));
    // A script written just now can fail with ETXTBSY while another test thread is between
    // fork and exec (the child briefly holds our write descriptor); scanning again is the cure.
    for _ in 0..20 {
        let report = crate::commands::reload_plugins(&bot).await;
        if !report.skipped.iter().any(|(_, why)| why.contains("busy")) {
            return (bot, report);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("plugins stayed busy");
}

fn chan(text: &str) -> crate::chat::message::Message {
    message(text, Place::Channel("#ops".into()))
}

const HELLO: &str = r#"[{"name": "hello", "usage": "<name>", "help": "Greets."}]"#;

#[tokio::test]
async fn a_scan_loads_good_plugins_and_says_why_it_skipped_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    plugin(d, "hello", HELLO, "echo hi");
    plugin(d, "broken", "nope", "");
    plugin(
        d,
        "shadow",
        r#"[{"name": "deploy", "help": "Deploys better."}]"#,
        "",
    );
    plugin(d, "twin", HELLO, "");
    plugin(
        d,
        "rooted",
        r#"[{"name": "root", "help": "h", "role": "root"}]"#,
        "",
    );
    plugin(d, "off", r#"[{"name": "off", "help": "h"}]"#, "");
    std::fs::write(d.join("notes.txt"), "not a plugin").unwrap();
    std::fs::write(d.join(".hidden"), "#!/bin/sh\n").unwrap();
    let extra = "[plugins.off]\nenabled = false\n[plugins.gone]\npass_env = [\"X\"]\n\
                 [plugins.elsewhere]\nrun = [\"/bin/sh\", \"-c\", \"echo '{\\\"commands\\\": [{\\\"name\\\": \\\"far\\\", \\\"help\\\": \\\"h\\\"}]}'\"]\n";
    let (bot, report) = bot_with(d, extra).await;
    let loaded: Vec<&str> = report.loaded.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(loaded, ["hello", "elsewhere"]);
    let skipped: Vec<(&str, &str)> = report
        .skipped
        .iter()
        .map(|(p, why)| (p.as_str(), why.as_str()))
        .collect();
    assert_eq!(skipped.len(), 5, "{skipped:?}");
    assert_eq!(
        skipped[0],
        (
            "gone",
            &*format!(
                "[plugins.gone] has no run, and there is no executable file gone in {}",
                d.display()
            )
        )
    );
    assert_eq!(skipped[1].0, "broken");
    assert!(
        skipped[1]
            .1
            .starts_with("its manifest is not the JSON lever expects"),
        "{skipped:?}"
    );
    assert_eq!(
        skipped[2],
        (
            "rooted",
            "command 'root': 'root' is not a role (stage, deploy, hold, metrics, alerts, flags, admin)"
        )
    );
    assert_eq!(
        skipped[3],
        (
            "shadow",
            "its command 'deploy' is the built-in !deploy; a plugin cannot replace it (rename the command)"
        )
    );
    assert_eq!(
        skipped[4],
        ("twin", "its command 'hello' is already plugin hello's")
    );
    let names: Vec<String> = bot.plugins.all().iter().map(|c| c.name.clone()).collect();
    assert_eq!(names, ["hello", "far"]);
    assert!(report.to_string().starts_with(&format!(
        "plugins from {}: hello (hello), elsewhere (far); skipped: gone (",
        d.display()
    )));
    // The built-in still answers.
    assert!(run(&bot, chan("!help deploy")).await[0].starts_with("!deploy "));
}

#[tokio::test]
async fn a_missing_folder_is_no_plugins_and_no_section_is_plugins_off() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone");
    let (bot, report) = bot_with(&gone, "").await;
    assert!(bot.plugins.all().is_empty());
    assert_eq!(
        report.to_string(),
        format!("no plugins loaded from {}", gone.display())
    );
    let off = crate::commands::tests::bot("");
    assert_eq!(
        run(&off, chan("!reload")).await,
        ["plugins are off: the config has no [plugins] section"]
    );
}

#[tokio::test]
async fn a_command_says_notices_and_logs_and_help_knows_it() {
    let dir = tempfile::tempdir().unwrap();
    plugin(
        dir.path(),
        "hello",
        HELLO,
        r#"echo "hi there"
echo '{"notice": "just for you"}'
printf '%s\n' '{"log": "greeted\r\neveryone", "target": "site"}'
printf '%s\n' '{"say": "bye\r\nQUIT :now"}'
echo '{"sya": "typo"}'
echo '{plain braces}'
echo"#,
    );
    let (bot, _) = bot_with(dir.path(), "").await;
    assert_eq!(
        run(&bot, chan("!hello world")).await,
        [
            "hi there",
            "just for you",
            "bye  QUIT :now",
            "(!hello: line 5 of its output is JSON but not {\"say\": text}, {\"notice\": text} or {\"log\": text})",
            "{plain braces}",
        ]
    );
    let log = bot.store.log(1, None).unwrap();
    assert_eq!(log[0].user, "alice");
    assert_eq!(log[0].target.as_deref(), Some("site"));
    assert_eq!(log[0].text, "greeted  everyone (via !hello)");
    let help = run(&bot, chan("!help")).await;
    assert!(help[0].contains(", whoami, hello;"), "{help:?}");
    assert_eq!(
        run(&bot, chan("!help hello")).await,
        ["!hello <name> — Greets. (plugin hello)"]
    );
    assert_eq!(
        run(&bot, chan("lever: hallo")).await,
        ["alice: unknown command 'hallo' (did you mean !hello?); try !help"]
    );
}

#[tokio::test]
async fn the_invocation_arrives_as_json_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    plugin(
        dir.path(),
        "echo",
        HELLO,
        "read -r line; echo \"got $line\"",
    );
    let (bot, _) = bot_with(dir.path(), "").await;
    bot.deploys
        .hold(
            Some("site"),
            &message("", Place::Private).who,
            "db work",
            None,
        )
        .unwrap();
    let replies = run(&bot, chan("!hello  $(id) `x` ")).await;
    // The hold's announcement is among the replies.
    let got = replies
        .iter()
        .find_map(|r| r.strip_prefix("got "))
        .unwrap_or_else(|| panic!("{replies:?}"));
    let input: serde_json::Value = serde_json::from_str(got).unwrap();
    assert_eq!(input["command"], "hello");
    assert_eq!(input["args"], "$(id) `x`");
    assert_eq!(input["words"], serde_json::json!(["$(id)", "`x`"]));
    assert_eq!(input["user"]["nick"], "alice");
    assert_eq!(input["user"]["host"], "10.0.0.1");
    assert_eq!(input["user"]["account"], serde_json::Value::Null);
    assert_eq!(input["channel"], "#ops");
    assert_eq!(input["targets"][0]["name"], "site");
    assert_eq!(input["targets"][0]["held"], true);
    assert_eq!(input["targets"][0]["holds"][0]["reason"], "db work");
}

#[tokio::test]
async fn failures_timeouts_and_floods_are_reported_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    plugin(
        d,
        "fails",
        r#"[{"name": "fails", "help": "h"}]"#,
        "echo 'partial answer'; echo 'first' >&2; echo 'schedule.txt: no such file' >&2; exit 3",
    );
    plugin(d, "quiet", r#"[{"name": "quiet", "help": "h"}]"#, "exit 1");
    plugin(
        d,
        "slow",
        r#"[{"name": "slow", "help": "h", "timeout": 1}]"#,
        "echo early; sleep 60",
    );
    plugin(
        d,
        "flood",
        r#"[{"name": "flood", "help": "h"}]"#,
        "seq 1 100000; head -c 100000 /dev/zero | tr '\\0' x",
    );
    let (bot, _) = bot_with(d, "").await;
    assert_eq!(
        run(&bot, chan("!fails")).await,
        ["alice: !fails failed: exit code 3: first | schedule.txt: no such file"]
    );
    assert_eq!(
        run(&bot, chan("!quiet")).await,
        ["alice: !quiet failed: exit code 1 (it printed nothing on stderr)"]
    );
    assert_eq!(
        run(&bot, chan("!slow")).await,
        ["alice: !slow timed out after 1 s and was stopped"]
    );
    let flood = run(&bot, chan("!flood")).await;
    let want: Vec<String> = (1..=10)
        .map(|i| i.to_string())
        .chain(["… 99991 more lines".to_owned()])
        .collect();
    assert_eq!(flood, want);
}

#[tokio::test]
async fn roles_in_a_manifest_are_checked_like_built_in_ones() {
    let dir = tempfile::tempdir().unwrap();
    plugin(
        dir.path(),
        "page",
        r#"[{"name": "page", "help": "Pages.", "role": "alerts"}]"#,
        "echo paged",
    );
    let (bot, _) = bot_with(dir.path(), "[access]\nalerts = [\"*!*@trusted.example\"]\n").await;
    assert_eq!(
        run(&bot, chan("!page")).await,
        ["alice: !page needs the alerts role, which you do not have"]
    );
    assert!(!run(&bot, chan("!help")).await[0].contains("page"));
    let mut trusted = chan("!page");
    trusted.who.host = "trusted.example".into();
    assert_eq!(run(&bot, trusted).await, ["paged"]);
}

#[test]
fn a_plugin_sees_the_basics_and_only_what_its_config_passes() {
    let cfg = crate::config::Config::from_toml(
        "[irc]\nserver = \"h\"\n[plugins.p]\npass_env = [\"PAGER_TOKEN\", \"MISSING\"]\n\
         env = { SCHEDULE = \"s.txt\" }\n",
        "test",
        PathBuf::from("."),
    )
    .unwrap();
    let lever = [
        ("PATH", "/usr/bin"),
        ("LEVER_HTTP__TOKEN", "hunter2"),
        ("AWS_SECRET_ACCESS_KEY", "hunter3"),
        ("PAGER_TOKEN", "pt"),
        ("LC_ALL", "C.UTF-8"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let got = environment(&cfg, "p", lever.clone().into_iter());
    let want = [
        ("PATH", "/usr/bin"),
        ("LC_ALL", "C.UTF-8"),
        ("PAGER_TOKEN", "pt"),
        ("SCHEDULE", "s.txt"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(got, want);
    // Another plugin gets none of p's.
    let other = environment(&cfg, "q", lever.into_iter());
    assert_eq!(other.len(), 2);
}
