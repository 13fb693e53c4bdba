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

#[test]
fn check_accepts_a_good_config() {
    let (dir, path) = config(GOOD);
    let out = lever_in(
        dir.path(),
        &["check", "--config", path.to_str().unwrap()],
        &[],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "{}: ok (irc.example.net 6697, 1 channel(s), access open to everyone)\n",
            path.display()
        )
    );
}

#[test]
fn check_accepts_the_shipped_bot_toml() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let elsewhere = tempfile::tempdir().unwrap();
    let path = root.join("bot.toml");
    let out = lever_in(
        elsewhere.path(),
        &["check", "--config", path.to_str().unwrap()],
        &[],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "{}: ok (127.0.0.1 6667, 1 channel(s), access open to everyone)\n",
            path.display()
        )
    );
}

#[test]
fn check_names_an_unknown_key() {
    let out = check_text("[irc]\nserver = \"h\"\nnickame = \"x\"\n", &[]);
    let err = assert_rejected(&out, "irc.nickame");
    assert!(err.contains("unknown field `nickame`"), "{err}");
    assert!(err.contains("`nickname`"), "lists the valid keys: {err}");
}

#[test]
fn check_names_a_value_of_the_wrong_type() {
    let out = check_text("[irc]\nserver = \"h\"\nburst = \"lots\"\n", &[]);
    let err = assert_rejected(&out, "irc.burst");
    assert!(err.contains("expected an integer"), "{err}");
}

#[test]
fn check_names_a_bad_duration() {
    let out = check_text(
        "[irc]\nserver = \"h\"\nline_interval = \"1 fortnight\"\n",
        &[],
    );
    let err = assert_rejected(&out, "irc.line_interval");
    assert!(err.contains("'1 fortnight' is not a duration"), "{err}");
}

#[test]
fn check_names_a_bad_channel() {
    let out = check_text("[irc]\nserver = \"h\"\nchannels = [\"ops\"]\n", &[]);
    let err = assert_rejected(&out, "irc.channels[0]");
    assert!(err.contains("'ops' must start with '#'"), "{err}");
}

#[test]
fn check_names_a_missing_server() {
    let out = check_text("[irc]\nnickname = \"lever\"\n", &[]);
    let err = assert_rejected(&out, "irc.server");
    assert!(err.contains("missing (required)"), "{err}");
}

#[test]
fn check_refuses_an_access_rule_trusting_a_bare_nick() {
    let out = check_text(
        "[irc]\nserver = \"h\"\n[access]\ndeploy = [\"alice\"]\n",
        &[],
    );
    let err = assert_rejected(&out, "access.deploy[0]");
    assert!(
        err.contains("\"account:alice\""),
        "suggests an account rule: {err}"
    );
}

#[test]
fn check_names_a_misspelt_section() {
    let out = check_text("[irc]\nserver = \"h\"\n[acces]\ndeploy = []\n", &[]);
    let err = assert_rejected(&out, "acces");
    assert!(err.contains("unknown field `acces`"), "{err}");
    assert!(err.contains("`access`"), "{err}");
}

#[test]
fn check_names_a_missing_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere").join("bot.toml");
    let out = lever_in(
        dir.path(),
        &["check", "--config", missing.to_str().unwrap()],
        &[],
        b"",
    );
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
    let out = check_text(GOOD, &[("LEVER_IRC__BURST", "x")]);
    let err = assert_rejected(&out, "irc.burst");
    assert!(
        err.contains("environment"),
        "says where the value came from: {err}"
    );
}

/// A value that parses but fails validation must also say it came from the environment:
/// otherwise the message points at the file, which holds a good value.
#[test]
fn check_names_the_variable_when_validation_refuses_an_environment_value() {
    let out = check_text(
        "[irc]\nserver = \"h\"\nburst = 4\n",
        &[("LEVER_IRC__BURST", "0")],
    );
    let err = assert_rejected(&out, "irc.burst");
    assert!(
        err.contains("LEVER_IRC__BURST"),
        "does not name the variable: {err}"
    );
    let out = check_text(GOOD, &[("LEVER_IRC__CHANNELS", "ops")]);
    let err = assert_rejected(&out, "irc.channels[0]");
    assert!(
        err.contains("LEVER_IRC__CHANNELS"),
        "does not name the variable: {err}"
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
    let check = || {
        lever_in(
            elsewhere.path(),
            &["check", "--config", path.to_str().unwrap()],
            &[],
            b"",
        )
    };
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
         roles: stage, deploy, hold, metrics, alerts, admin (the console user holds every role)\n"
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
    let out = lever_in(empty.path(), &["console"], &[], b"!ping\n");
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
