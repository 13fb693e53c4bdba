//! `lever check` and `lever console` as a new user runs them: the real binary, configs in temp
//! folders, exit codes and the exact text on stdout and stderr.

mod support;
use support::{stderr, stdout};

use std::path::Path;
use std::process::Output;

use tempfile::TempDir;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A minimal valid config.
const GOOD: &str = "[irc]\nserver = \"irc.example.net\"\nchannels = [\"#ops\"]\n";

/// The rig's `lever_in`, run as `USER=tester`.
fn lever_in(cwd: &Path, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    support::lever_in(cwd, args, "tester", env, stdin)
}

/// Writes `text` as `c.toml` in a new temp folder.
fn config(text: &str) -> (TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).expect("write config");
    (dir, path)
}

/// `lever check --config <a file holding text>` with `env`.
fn check_text(text: &str, env: &[(&str, &str)]) -> Output {
    let (dir, path) = config(text);
    lever_in(
        dir.path(),
        &["check", "--config", path.to_str().unwrap()],
        env,
        b"",
    )
}

/// `lever check --config <path>`, run in `cwd`.
fn check_file(cwd: &Path, path: &Path) -> Output {
    lever_in(
        cwd,
        &["check", "--config", path.to_str().unwrap()],
        &[],
        b"",
    )
}

/// Asserts `lever check` on `path` (run in `cwd`) passes and prints `<path>: ok (<summary>)`.
fn assert_check_ok(cwd: &Path, path: &Path, summary: &str) {
    let out = check_file(cwd, path);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("{}: ok ({summary})\n", path.display())
    );
}

/// Asserts the check failed with exit code 1 and a stderr line `lever: <path>: <key>: ...`.
fn assert_rejected(output: &Output, key: &str) -> String {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(1), "stderr: {err}");
    assert!(
        err.starts_with("lever: ") && err.contains(&format!("c.toml: {key}: ")),
        "stderr does not name {key}: {err}"
    );
    assert!(stdout(output).is_empty(), "stdout: {}", stdout(output));
    err
}

/// `lever check` on `text` (with `env`) fails naming `key`, and its message says each of `says`.
fn check_rejects(text: &str, env: &[(&str, &str)], key: &str, says: &[&str]) {
    let out = check_text(text, env);
    let err = assert_rejected(&out, key);
    for text in says {
        assert!(err.contains(text), "the error does not say {text:?}: {err}");
    }
}

#[test]
fn check_accepts_a_good_config() {
    let (dir, path) = config(GOOD);
    assert_check_ok(
        dir.path(),
        &path,
        "irc.example.net 6697, 1 channel(s), access open to everyone",
    );
}

#[test]
fn check_accepts_the_shipped_bot_toml() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let elsewhere = tempfile::tempdir().unwrap();
    let path = root.join("bot.toml");
    assert_check_ok(
        elsewhere.path(),
        &path,
        "127.0.0.1 6667, 1 channel(s), access open to everyone",
    );
}

#[test]
fn check_names_an_unknown_key() {
    check_rejects(
        "[irc]\nserver = \"h\"\nnickame = \"x\"\n",
        &[],
        "irc.nickame",
        &["unknown field `nickame`", "`nickname`"],
    );
}

#[test]
fn check_names_a_value_of_the_wrong_type() {
    check_rejects(
        "[irc]\nserver = \"h\"\nburst = \"lots\"\n",
        &[],
        "irc.burst",
        &["expected an integer"],
    );
}

#[test]
fn check_names_a_bad_duration() {
    check_rejects(
        "[irc]\nserver = \"h\"\nline_interval = \"1 fortnight\"\n",
        &[],
        "irc.line_interval",
        &["'1 fortnight' is not a duration"],
    );
}

#[test]
fn check_names_a_bad_channel() {
    check_rejects(
        "[irc]\nserver = \"h\"\nchannels = [\"ops\"]\n",
        &[],
        "irc.channels[0]",
        &["'ops' must start with '#'"],
    );
}

#[test]
fn check_names_a_missing_server() {
    check_rejects(
        "[irc]\nnickname = \"lever\"\n",
        &[],
        "irc.server",
        &["missing (required)"],
    );
}

#[test]
fn check_refuses_an_access_rule_trusting_a_bare_nick() {
    check_rejects(
        "[irc]\nserver = \"h\"\n[access]\ndeploy = [\"alice\"]\n",
        &[],
        "access.deploy[0]",
        &["\"account:alice\""],
    );
}

#[test]
fn check_names_a_misspelt_section() {
    check_rejects(
        "[irc]\nserver = \"h\"\n[acces]\ndeploy = []\n",
        &[],
        "acces",
        &["unknown field `acces`", "`access`"],
    );
}

#[test]
fn check_names_a_missing_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere").join("bot.toml");
    let out = check_file(dir.path(), &missing);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "lever: cannot read config {}: ",
            missing.display()
        )),
        "{err}"
    );
}

#[test]
fn check_reports_invalid_toml() {
    let out = check_text("[irc\nserver = \"h\"\n", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("lever: ") && err.contains("c.toml: "),
        "{err}"
    );
    assert!(err.contains("TOML parse error at line 1"), "{err}");
}

#[test]
fn check_names_a_bad_value_from_the_environment() {
    check_rejects(
        GOOD,
        &[("LEVER_IRC__BURST", "x")],
        "irc.burst",
        &["environment"],
    );
}

/// A value that parses but fails validation must also say it came from the environment:
/// otherwise the message points at the file, which holds a good value.
#[test]
fn check_names_the_variable_when_validation_refuses_an_environment_value() {
    check_rejects(
        "[irc]\nserver = \"h\"\nburst = 4\n",
        &[("LEVER_IRC__BURST", "0")],
        "irc.burst",
        &["LEVER_IRC__BURST"],
    );
    check_rejects(
        GOOD,
        &[("LEVER_IRC__CHANNELS", "ops")],
        "irc.channels[0]",
        &["LEVER_IRC__CHANNELS"],
    );
}

#[test]
fn the_server_can_come_from_the_environment() {
    let out = check_text(
        "[irc]\ntls = false\n",
        &[("LEVER_IRC__SERVER", "irc.example.net")],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(
        stdout(&out).contains(": ok (irc.example.net 6667, 0 channel(s),"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn channels_from_the_environment_are_a_comma_list() {
    let out = check_text(GOOD, &[("LEVER_IRC__CHANNELS", "#a,#b")]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(
        stdout(&out).contains(", 2 channel(s), "),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_password_from_the_environment_is_never_printed() {
    let env = [
        ("LEVER_IRC__PASSWORD", "hunter2-secret"),
        ("RUST_LOG", "trace"),
    ];
    let ok = check_text(GOOD, &env);
    assert_eq!(ok.status.code(), Some(0), "stderr: {}", stderr(&ok));
    // And when the check fails for another reason.
    let bad = check_text("[irc]\nserver = \"h\"\nburst = 0\n", &env);
    assert_rejected(&bad, "irc.burst");
    for out in [&ok, &bad] {
        let all = format!("{}{}", stdout(out), stderr(out));
        assert!(!all.contains("hunter2"), "{all}");
    }
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let a = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let path = a.path().join("bot.toml");
    std::fs::write(&path, "[irc]\nserver = \"h\"\ntls_ca_file = \"ca.pem\"\n").unwrap();
    let check = || check_file(elsewhere.path(), &path);
    // Without the file: the error names where lever looked, inside A.
    let out = check();
    assert_eq!(out.status.code(), Some(1));
    let expected = a.path().canonicalize().unwrap().join("ca.pem");
    assert!(
        stderr(&out).contains(&format!(
            "irc.tls_ca_file: {} is not a readable file",
            expected.display()
        )),
        "{}",
        stderr(&out)
    );
    // With it: ok, although the working directory holds no ca.pem.
    std::fs::write(a.path().join("ca.pem"), "not checked here\n").unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(stdout(&out).contains(": ok ("), "{}", stdout(&out));
}

/// `lever console --config <GOOD>` with `stdin`.
fn console(stdin: &[u8]) -> Output {
    let (dir, path) = config(GOOD);
    lever_in(
        dir.path(),
        &["console", "--config", path.to_str().unwrap()],
        &[],
        stdin,
    )
}

#[test]
fn piped_console_prints_exactly_the_conversation() {
    let out = console(b"!ping\n!help ping\nlever: ping\n!nosuch\n!whoami\n");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "pong\n\
         !ping \u{2014} Checks that lever is alive; it answers pong. Example: !ping\n\
         pong\n\
         tester: you are tester!tester@console, logged in as tester; \
         roles: stage, deploy, hold, metrics, alerts, flags, admin (the console user holds every role)\n"
    );
}

#[test]
fn piped_console_with_empty_stdin_says_nothing() {
    let out = console(b"");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "");
}

#[test]
fn piped_console_survives_invalid_utf8() {
    let out = console(b"\xff\xfe\xc3(\n!\xffping\n!ping\n");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "pong\n");
}

#[test]
fn without_a_config_the_built_in_example_is_used() {
    let empty = tempfile::tempdir().unwrap();
    // Its store goes to a data folder of the test's own, not the user's.
    let data = tempfile::tempdir().unwrap();
    let data_home = [("XDG_DATA_HOME", data.path().to_str().unwrap())];
    let out = lever_in(empty.path(), &["console"], &data_home, b"!ping\n");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "pong\n");
    let out = lever_in(empty.path(), &["check"], &[], b"");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "built-in bot.toml: ok (127.0.0.1 6667, 1 channel(s), access open to everyone)\n"
    );
}

#[test]
fn version_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = lever_in(dir.path(), &["--version"], &[], b"");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), format!("lever {VERSION}\n"));
    let out = lever_in(dir.path(), &["--help"], &[], b"");
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for (command, says) in [
        ("run", "Connect to IRC and serve"),
        ("console", "this terminal as the channel"),
        ("check", "Validate the config"),
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(command) && l.contains(says)),
            "--help does not list {command}:\n{help}"
        );
    }
    assert!(help.contains("--config <FILE>"), "{help}");
}
