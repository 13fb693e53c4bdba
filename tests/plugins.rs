//! Plugins end to end: lever's real binary on a real ngIRCd, plugins written into a folder of
//! the test's own, and a raw client asking for their commands in #ops.

mod support;
use support::*;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// A `/bin/sh` plugin: `--manifest` prints `{"commands": COMMANDS}`; a command runs `body`.
fn plugin(dir: &Path, name: &str, commands: &str, body: &str) {
    let path = dir.join(name);
    let text = format!(
        "#!/bin/sh\nif [ \"$1\" = --manifest ]; then\n  echo '{{\"commands\": {commands}}}'\n  exit 0\nfi\n{body}\n"
    );
    std::fs::write(&path, text).expect("write plugin");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A one-command manifest.
fn one(name: &str, extra: &str) -> String {
    format!(r#"[{{"name": "{name}", "help": "Test command {name}."{extra}}}]"#)
}

/// A server, a client `nick` in #ops, and lever with `plugins` as its plugins folder and `rest`
/// in its config (and `env` in its environment), once lever has joined.
fn setup(nick: &str, plugins: &Path, rest: &str, env: &[(&str, &str)]) -> (Ngircd, Client, Lever) {
    let server = Ngircd::start();
    let mut client = Client::connect(server.port, nick);
    client.join("#ops");
    let config = format!("[plugins]\ndir = \"{}\"\n{rest}", plugins.display());
    let lever = Lever::start_with_env(&bot_config(server.port, "", &config), env);
    client.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");
    (server, client, lever)
}

/// Says `text` in #ops and returns the text of lever's next line there (or to the asker).
fn ask(client: &mut Client, text: &str) -> String {
    client.privmsg("#ops", text);
    client.expect_privmsg_from("lever")
}

#[test]
fn a_plugin_command_answers_says_notices_and_is_in_help() {
    let dir = tempfile::tempdir().unwrap();
    plugin(
        dir.path(),
        "hello",
        &one("hello", r#", "usage": "[words]""#),
        r#"nick=$(sed -n 's/.*"nick":"\([^"]*\)".*/\1/p')
echo "hello, $nick"
echo '{"notice": "a word in private"}'
printf '%s\n' '{"say": "multi\r\nPRIVMSG #ops :injected"}'"#,
    );
    let (_server, mut pia, _lever) = setup("pia", dir.path(), "", &[]);
    pia.privmsg("#ops", "!hello there");
    let said = pia.expect(|l| l.from == "lever" && l.verb == "PRIVMSG");
    assert_eq!(said.params[0], "#ops", "{}", said.raw);
    assert_eq!(said.text(), "hello, pia");
    let notice = pia.expect(|l| l.from == "lever" && l.verb == "NOTICE");
    assert_eq!(notice.params[0], "pia", "{}", notice.raw);
    assert_eq!(notice.text(), "a word in private");
    // CR/LF inside a reply never reaches the wire as a second command.
    assert_eq!(
        pia.expect_privmsg_from("lever"),
        "multi  PRIVMSG #ops :injected"
    );
    let help = ask(&mut pia, "!help");
    assert!(help.contains(", whoami, hello;"), "{help}");
    assert_eq!(
        ask(&mut pia, "!help hello"),
        "!hello [words] — Test command hello. (plugin hello)"
    );
}

#[test]
fn a_bad_manifest_is_skipped_with_a_log_line_and_reload_picks_up_a_fixed_one() {
    let dir = tempfile::tempdir().unwrap();
    plugin(dir.path(), "good", &one("good", ""), "echo fine");
    plugin(dir.path(), "bad", r#"[{"name": "bad"}]"#, "echo never");
    let (_server, mut pia, lever) = setup("pia", dir.path(), "", &[]);
    let log = lever.wait_for_log("plugin skipped");
    assert!(
        log.contains("plugin=\"bad\"") || log.contains("plugin=bad"),
        "{log}"
    );
    assert!(log.contains("missing field `help`"), "{log}");
    assert_eq!(ask(&mut pia, "!good"), "fine");
    assert_eq!(
        ask(&mut pia, "lever: bad"),
        "pia: unknown command 'bad'; try !help"
    );
    plugin(dir.path(), "bad", &one("bad", ""), "echo mended");
    assert_eq!(
        ask(&mut pia, "!reload"),
        format!(
            "plugins from {}: bad (bad), good (good)",
            dir.path().display()
        )
    );
    assert_eq!(ask(&mut pia, "!bad"), "mended");
}

#[test]
fn sighup_rescans_the_plugins_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, mut pia, lever) = setup("pia", dir.path(), "", &[]);
    plugin(dir.path(), "late", &one("late", ""), "echo here now");
    signal(lever.pid(), "HUP");
    lever.wait_for_log("SIGHUP: plugins from");
    assert_eq!(ask(&mut pia, "!late"), "here now");
}

/// Whether `pid` is a live process (a zombie counts as gone).
fn alive(pid: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    !matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X'))
}

#[test]
fn a_hanging_plugin_is_stopped_at_its_timeout_with_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    plugin(
        dir.path(),
        "hang",
        &one("hang", r#", "timeout": 1"#),
        &format!(
            "sleep 300 & echo $! > {pids}; echo $$ >> {pids}; echo 'never said'; sleep 300",
            pids = pids.display()
        ),
    );
    let (_server, mut pia, _lever) = setup("pia", dir.path(), "", &[]);
    assert_eq!(
        ask(&mut pia, "!hang"),
        "pia: !hang timed out after 1 s and was stopped"
    );
    let pids = std::fs::read_to_string(&pids).unwrap();
    let pids: Vec<&str> = pids.split_whitespace().collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    let deadline = Instant::now() + WAIT;
    while pids.iter().any(|p| alive(p)) {
        assert!(Instant::now() < deadline, "still running: {pids:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn huge_output_is_cut_to_a_few_lines_and_a_count() {
    let dir = tempfile::tempdir().unwrap();
    plugin(
        dir.path(),
        "loud",
        &one("loud", ""),
        "head -c 3000000 /dev/zero | tr '\\0' x; echo; seq 2 50000",
    );
    plugin(
        dir.path(),
        "fails",
        &one("fails", ""),
        "seq 1 10000 >&2; echo 'schedule.txt: no such file' >&2; exit 3",
    );
    let (_server, mut pia, _lever) = setup("pia", dir.path(), "", &[]);
    pia.privmsg("#ops", "!loud");
    let mut said = Vec::new();
    while said.last().is_none_or(|l: &String| !l.starts_with('…')) {
        said.push(pia.expect_privmsg_from("lever"));
    }
    // The 3 MB first line is cut to one IRC message's worth; then lines 2 to 10.
    assert!(
        said[0].starts_with("xxxx") && said[0].ends_with('…'),
        "{}",
        said[0]
    );
    assert!(said[0].chars().count() <= 400, "{}", said[0].len());
    let rest: Vec<String> = (2..=10).map(|i| i.to_string()).collect();
    assert_eq!(said[1..10], rest);
    assert_eq!(said[10], "… 49990 more lines");
    assert_eq!(said.len(), 11);
    assert_eq!(
        ask(&mut pia, "!fails"),
        "pia: !fails failed: exit code 3: 9999 | 10000 | schedule.txt: no such file"
    );
}

#[test]
fn a_plugin_cannot_see_lever_s_secrets_unless_passed_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let show = "echo \"token=${LEVER_HTTP__TOKEN:-unset} team=${TEAM_NAME:-unset} \
                fixed=${FIXED:-unset} lever_vars=$(env | grep -ci '^lever')\"";
    plugin(dir.path(), "env", &one("env", ""), show);
    plugin(dir.path(), "trusted", &one("trusted", ""), show);
    let port = free_port();
    let rest = format!(
        "[plugins.trusted]\npass_env = [\"TEAM_NAME\", \"LEVER_HTTP__TOKEN\"]\nenv = {{ FIXED = \"yes\" }}\n\
         [http]\nlisten = \"127.0.0.1:{port}\"\n"
    );
    let env = [
        ("LEVER_HTTP__TOKEN", "hunter2-long-secret-token"),
        ("TEAM_NAME", "web"),
    ];
    let (_server, mut pia, _lever) = setup("pia", dir.path(), &rest, &env);
    assert_eq!(
        ask(&mut pia, "!env"),
        "token=unset team=unset fixed=unset lever_vars=0"
    );
    // Named in the config, it passes: the choice is the operator's, in one visible place.
    assert_eq!(
        ask(&mut pia, "!trusted"),
        "token=hunter2-long-secret-token team=web fixed=yes lever_vars=1"
    );
}

#[test]
fn plugin_commands_obey_access_roles() {
    let dir = tempfile::tempdir().unwrap();
    plugin(
        dir.path(),
        "page",
        &one("page", r#", "role": "alerts""#),
        "echo paged",
    );
    plugin(dir.path(), "open", &one("open", ""), "echo open to all");
    let rest = "[access]\nalerts = [\"*!~pia@127.0.0.1\"]\n";
    let (server, mut pia, _lever) = setup("pia", dir.path(), rest, &[]);
    assert_eq!(ask(&mut pia, "!page"), "paged");
    let mut zed = Client::connect(server.port, "zed");
    zed.join("#ops");
    assert_eq!(
        ask(&mut zed, "!page"),
        "zed: !page needs the alerts role, which you do not have"
    );
    assert_eq!(ask(&mut zed, "!open"), "open to all");
}

#[test]
fn a_plugin_named_like_a_built_in_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    plugin(dir.path(), "ping", &one("ping", ""), "echo hijacked");
    plugin(dir.path(), "alias", &one("commands", ""), "echo hijacked");
    let (_server, mut pia, lever) = setup("pia", dir.path(), "", &[]);
    let log = lever.wait_for_log("is the built-in !help");
    assert!(log.contains("is the built-in !ping"), "{log}");
    assert_eq!(ask(&mut pia, "!ping"), "pong");
    assert!(ask(&mut pia, "!commands").starts_with("commands you can use: "));
    assert_eq!(
        ask(&mut pia, "!reload"),
        format!(
            "no plugins loaded from {}; skipped: alias (its command 'commands' is the built-in \
             !help; a plugin cannot replace it (rename the command)); ping (its command 'ping' \
             is the built-in !ping; a plugin cannot replace it (rename the command))",
            dir.path().display()
        )
    );
}

/// The plugins that ship in `plugins/`.
fn shipped() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins")
}

#[test]
fn the_shipped_runbook_and_oncall_plugins_answer_from_their_files() {
    let files = tempfile::tempdir().unwrap();
    let runbooks = files.path().join("runbooks.toml");
    std::fs::write(
        &runbooks,
        "[SiteDown]\nurl = \"https://wiki.test/site-down\"\n\
         escalation = \"page the on-call\"\ntopics = [\"outage\"]\n\
         [DiskFull]\nurl = \"https://wiki.test/disk\"\n",
    )
    .unwrap();
    let schedule = files.path().join("oncall.txt");
    std::fs::write(&schedule, "# one person\nops 2020-01-06 09:00 7 zoe\n").unwrap();
    let rest = format!(
        "[plugins.runbook]\nenv = {{ RUNBOOKS = \"{}\" }}\n\
         [plugins.oncall]\nenv = {{ ONCALL_SCHEDULE = \"{}\" }}\n",
        runbooks.display(),
        schedule.display()
    );
    let (_server, mut pia, _lever) = setup("pia", &shipped(), &rest, &[]);
    assert_eq!(
        ask(&mut pia, "!runbook OUTAGE"),
        "SiteDown: https://wiki.test/site-down — escalate: page the on-call"
    );
    assert_eq!(
        ask(&mut pia, "!runbook"),
        "runbooks: SiteDown, DiskFull; !runbook <name> shows one"
    );
    assert_eq!(
        ask(&mut pia, "!runbook nosuch"),
        "no runbook for 'nosuch'; !runbook lists them"
    );
    like(&ask(&mut pia, "!oncall"), "ops: zoe until {*} 09:00 UTC");
    assert_eq!(
        ask(&mut pia, "!oncall web"),
        "no rotation for 'web'; teams: ops"
    );
    std::fs::write(&runbooks, "[Broken\n").unwrap();
    like(
        &ask(&mut pia, "!runbook x"),
        "pia: !runbook failed: exit code 1: {*}runbooks.toml: {*}",
    );
}

#[test]
fn the_built_in_example_ships_its_plugins() {
    let empty = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_home = data.path().to_str().unwrap();
    let out = lever_in(
        empty.path(),
        &["console"],
        "tester",
        &[("XDG_DATA_HOME", data_home)],
        b"!runbook 5xx\n",
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "HighErrorRate: https://wiki.example.com/runbooks/high-error-rate \
         \u{2014} escalate: #web-oncall, then the web lead (!oncall web)\n"
    );
}
