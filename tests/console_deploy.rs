//! The deploy flow through `lever console`, as a new user runs it: the real binary, configs and
//! stores in temp folders, stdin piped in, exit codes and the exact lines on stdout. Times and
//! versions vary, so those lines are matched with regular expressions; everything else is
//! compared as text. No test measures time: the 2 s step in the piped-mode test proves an
//! ordering, not a speed.

mod support;
use support::{stderr, stdout};

use std::path::{Path, PathBuf};
use std::process::Output;

use regex::Regex;
use tempfile::TempDir;

/// A duration as lever prints it (`text::human_duration`).
const DUR: &str = r"(?:\d+ ms|\d+\.\d s|\d+ min \d+ s)";
/// A time as lever prints it (`store::format_time`), UTC.
const TIME: &str = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d";

/// The rig's `lever_in`, run as `USER=harmes`.
fn lever_in(cwd: &Path, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    support::lever_in(cwd, args, "harmes", env, stdin)
}

/// A config folder: `bot.toml` holding `text` (after a minimal `[irc]` section with `#ops`).
fn config(text: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bot.toml");
    std::fs::write(
        &path,
        format!("[irc]\nserver = \"irc.example.net\"\nchannels = [\"#ops\"]\n\n{text}"),
    )
    .expect("write config");
    (dir, path)
}

/// `lever console --config <path>` from a folder of its own (not the config's), with `stdin`.
fn console(path: &Path, env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let elsewhere = tempfile::tempdir().expect("temp dir");
    lever_in(
        elsewhere.path(),
        &["console", "--config", path.to_str().unwrap()],
        env,
        stdin,
    )
}

/// Asserts a clean run: exit 0 and no panic on stderr. Returns stdout.
fn ok(output: &Output) -> String {
    let err = stderr(output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{err}",
        stdout(output)
    );
    assert!(!err.contains("panicked"), "lever panicked:\n{err}");
    stdout(output)
}

/// Asserts that the whole of `line` matches `pattern`; returns the captures.
fn matches<'a>(line: &'a str, pattern: &str, all: &str) -> regex::Captures<'a> {
    let re = Regex::new(&format!("^{pattern}$")).unwrap();
    re.captures(line).unwrap_or_else(|| {
        panic!("line {line:?}\ndoes not match /{pattern}/\nwhole output:\n{all}")
    })
}

/// Asserts the output is exactly `expected`, one regular expression per line.
fn assert_lines(out: &str, expected: &[String]) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        expected.len(),
        "expected {} lines, got:\n{out}",
        expected.len()
    );
    for (line, pattern) in lines.iter().zip(expected) {
        matches(line, pattern, out);
    }
}

/// Exact text as a pattern.
fn exact(text: &str) -> String {
    regex::escape(text)
}

/// The step names of `[[targets.<target>.<phase>]]` tables in a TOML file, in file order.
fn step_names(toml: &str, target: &str, phase: &str) -> Vec<String> {
    let header = format!("[[targets.{target}.{phase}]]");
    let name = Regex::new(r#"^name\s*=\s*"([^"]*)""#).unwrap();
    let mut inside = false;
    let mut names = Vec::new();
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == header;
        } else if inside {
            if let Some(caps) = name.captures(line) {
                names.push(caps[1].to_owned());
            }
        }
    }
    names
}

/// A deploy log line: `[2009-06-18 13:05:25] [mygrant] text`; returns (time, user, text).
fn log_line<'a>(line: &'a str, all: &str) -> (&'a str, &'a str, &'a str) {
    let caps = matches(line, &format!(r"\[({TIME})\] \[([^\]]+)\] (.*)"), all);
    let get = |i| caps.get(i).unwrap().as_str();
    (get(1), get(2), get(3))
}

/// Copies the repository's `bot.toml` and `steps/` into a new folder, as a fresh checkout has
/// them (execute bits included).
fn shipped_example() -> TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(root.join("bot.toml"), dir.path().join("bot.toml")).unwrap();
    std::fs::create_dir(dir.path().join("steps")).unwrap();
    for entry in std::fs::read_dir(root.join("steps")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.path().join("steps").join(entry.file_name()),
        )
        .unwrap();
    }
    dir
}

/// The README's script against the shipped example, from a folder that is not the config's:
/// every line in order, steps in bot.toml's order, the log newest first, then the status.
#[test]
fn the_shipped_example_works_from_a_clean_checkout() {
    let checkout = shipped_example();
    let cwd = tempfile::tempdir().unwrap();
    let config = checkout.path().join("bot.toml");
    let toml = std::fs::read_to_string(&config).unwrap();
    let stage = step_names(&toml, "site", "stage");
    let deploy = step_names(&toml, "site", "deploy");
    assert_eq!(stage.len(), 5, "bot.toml's stage steps: {stage:?}");
    assert_eq!(deploy.len(), 6, "bot.toml's deploy steps: {deploy:?}");

    let output = lever_in(
        cwd.path(),
        &["console", "--config", config.to_str().unwrap()],
        &[("USER", "harmes")],
        b"<mygrant> !hold db migration\n!deploy\n<mygrant> !unhold\n!stage\n!deploy\n!log 8\n!status\n",
    );
    let out = ok(&output);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 25, "expected 25 lines, got:\n{out}");
    let mut next = lines.iter().copied();
    let mut line = || next.next().unwrap();

    assert_eq!(
        line(),
        "NO DEPLOY PLEASE: every target held by mygrant (db migration)"
    );
    matches(
        line(),
        &format!(
            r"harmes: site is held: NO DEPLOY PLEASE by mygrant since {TIME} UTC \({DUR} ago\): db migration\. Ask mygrant, or !unhold when it is safe"
        ),
        &out,
    );
    matches(
        line(),
        &format!(r"DEPLOY OK: mygrant lifted the hold on every target \(held {DUR}\)"),
        &out,
    );

    assert_eq!(line(), "harmes is staging site (5 steps)");
    for name in &stage {
        let name = regex::escape(name);
        matches(
            line(),
            &format!(r"site: {name}\.\.\.\.\.ok \({DUR}\)"),
            &out,
        );
    }
    let staged = matches(
        line(),
        &format!(r"site staged by harmes in {DUR}: (r\d+) — slowest: (.+) {DUR}, (.+) {DUR}"),
        &out,
    );
    let version = staged[1].to_owned();
    for slow in [&staged[2], &staged[3]] {
        assert!(
            stage.iter().any(|s| s == slow),
            "slowest names a stage step: {slow:?}\n{out}"
        );
    }
    assert_ne!(&staged[2], &staged[3], "{out}");

    assert_eq!(
        line(),
        format!("harmes is deploying site: {version} → live (6 steps)")
    );
    for name in &deploy {
        let name = regex::escape(name);
        matches(
            line(),
            &format!(r"site: {name}\.\.\.\.\.ok \({DUR}\)"),
            &out,
        );
    }
    let deployed = matches(
        line(),
        &format!(
            r"site deployed by harmes in {DUR}: {} — slowest: (.+) {DUR}, (.+) {DUR}",
            regex::escape(&version)
        ),
        &out,
    );
    for slow in [&deployed[1], &deployed[2]] {
        assert!(
            deploy.iter().any(|s| s == slow),
            "slowest names a deploy step: {slow:?}\n{out}"
        );
    }

    // `!log 8`: all six entries there are, newest first.
    let expected_log = [
        ("harmes", format!("site deployed {version}")),
        (
            "harmes",
            format!("starting deploy of site... ({version} → live)"),
        ),
        ("harmes", format!("site staged {version}")),
        ("harmes", "starting stage of site...".to_owned()),
        ("mygrant", "DEPLOY OK".to_owned()),
        ("mygrant", "NO DEPLOY PLEASE (db migration)".to_owned()),
    ];
    let mut previous: Option<String> = None;
    for (user, text) in &expected_log {
        let (at, who, said) = log_line(line(), &out);
        assert_eq!((who, said), (*user, text.as_str()), "{out}");
        if let Some(newer) = &previous {
            assert!(
                at <= newer.as_str(),
                "newest first: {at} after {newer}\n{out}"
            );
        }
        previous = Some(at.to_owned());
    }

    let v = regex::escape(&version);
    matches(
        line(),
        &format!(
            r"site: not held · live {v} \(deploy by harmes at {TIME} UTC\) · staged {v} \(by harmes at {TIME} UTC\) · idle"
        ),
        &out,
    );

    // The store went beside the config, not into the working directory.
    assert!(checkout.path().join("lever.db").exists());
    let left: Vec<_> = std::fs::read_dir(cwd.path()).unwrap().collect();
    assert!(left.is_empty(), "the working directory got {left:?}");
}

const QUICK_SITE: &str = "[targets.site]\n\
    [[targets.site.stage]]\nname = \"build\"\nrun = [\"true\"]\n\
    [[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n";

/// A hold placed in one console session is in force in the next, which runs from another
/// folder: `!status` shows it, `!deploy` is refused, `!log` has the line.
#[test]
fn the_store_persists_between_console_sessions() {
    let (dir, path) = config(QUICK_SITE);
    let first = console(&path, &[("USER", "mygrant")], b"!hold site db\n");
    assert_eq!(ok(&first), "NO DEPLOY PLEASE: site held by mygrant (db)\n");
    assert!(
        dir.path().join("lever.db").exists(),
        "store beside the config"
    );

    let second = console(
        &path,
        &[("USER", "harmes")],
        b"!status site\n!deploy site\n!log\n",
    );
    let out = ok(&second);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let status = matches(
        lines[0],
        &format!(
            r"site: HELD by mygrant since ({TIME}) UTC \({DUR}\): db · nothing live yet · nothing staged · idle"
        ),
        &out,
    );
    let refusal = matches(
        lines[1],
        &format!(
            r"harmes: site is held: NO DEPLOY PLEASE by mygrant since ({TIME}) UTC \({DUR} ago\): db\. Ask mygrant, or !unhold site when it is safe"
        ),
        &out,
    );
    assert_eq!(&status[1], &refusal[1], "one hold, one placing time");
    let (_, who, text) = log_line(lines[2], &out);
    assert_eq!((who, text), ("mygrant", "NO DEPLOY PLEASE: site (db)"));
}

/// With piped stdin the next line waits for the run the previous one started, and for its
/// announcement: the `!status` after `!stage` of a 2 s step already shows it staged and idle.
#[test]
fn piped_mode_waits_for_a_run_before_the_next_line() {
    let (_dir, path) = config(
        "[targets.slow]\nversion = [\"sh\", \"-c\", \"echo v$LEVER_RUN_ID\"]\n\
         [[targets.slow.stage]]\nname = \"wait\"\nrun = [\"sleep\", \"2\"]\n",
    );
    let out = ok(&console(&path, &[], b"!stage\n!status\n"));
    assert_lines(
        &out,
        &[
            exact("harmes is staging slow (1 step)"),
            format!(r"slow staged by harmes in {DUR}: v1"),
            format!(
                r"slow: not held · nothing live yet · staged v1 \(by harmes at {TIME} UTC\) · idle"
            ),
        ],
    );
}

/// A step that prints seven lines and exits 3.
const FAILING_STEP: &str =
    r#"run = ["sh", "-c", "for i in 1 2 3 4 5 6 7; do echo line $i; done; exit 3"]"#;

/// A failing step: its line says FAILED with the exit code, the run's line names the step,
/// the exit code and the last lines of its output; nothing is staged, the log says why.
#[test]
fn a_failing_step_is_reported_with_its_exit_code_and_output() {
    let (_dir, path) = config(&format!(
        "[targets.site]\nannounce = \"steps\"\n\
         [[targets.site.stage]]\nname = \"prepare\"\nrun = [\"true\"]\n\
         [[targets.site.stage]]\nname = \"compile\"\n{FAILING_STEP}\n\
         [[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n"
    ));
    let out = ok(&console(&path, &[], b"!stage\n!status\n!deploy\n!log 2\n"));
    assert_lines(
        &out,
        &[
            exact("harmes is staging site (2 steps)"),
            format!(r"site: prepare\.\.\.\.\.ok \({DUR}\)"),
            format!(r"site: compile\.\.\.\.\.FAILED \({DUR}, exit code 3\)"),
            format!(
                r"site stage by harmes FAILED after {DUR} at step 2/2 'compile': exit code 3 — last output: line 3 \| line 4 \| line 5 \| line 6 \| line 7"
            ),
            exact("site: not held · nothing live yet · nothing staged · idle"),
            exact("harmes: site has not been staged yet: !stage site first"),
            format!(r"\[{TIME}\] \[harmes\] site stage FAILED \('compile' failed: exit code 3\)"),
            format!(r"\[{TIME}\] \[harmes\] starting stage of site\.\.\."),
        ],
    );
}

/// A failure names its step out of all the run's steps: the second of three is `step 2/3`.
/// FAILS (lever bug): `announce::run_finished` counts the step records stored so far, and a run
/// stores only the steps it started, so every failure reads `step k/k` (`2/2` here).
#[test]
fn a_failure_counts_every_step_of_the_run() {
    let (_dir, path) = config(&format!(
        "[targets.site]\n\
         [[targets.site.stage]]\nname = \"prepare\"\nrun = [\"true\"]\n\
         [[targets.site.stage]]\nname = \"compile\"\n{FAILING_STEP}\n\
         [[targets.site.stage]]\nname = \"package\"\nrun = [\"true\"]\n"
    ));
    let out = ok(&console(&path, &[], b"!stage\n"));
    assert_lines(
        &out,
        &[
            exact("harmes is staging site (3 steps)"),
            format!(
                r"site stage by harmes FAILED after {DUR} at step 2/3 'compile': exit code 3 — last output: line 3 \| line 4 \| line 5 \| line 6 \| line 7"
            ),
        ],
    );
}

/// Versions, the changes link and rollback: two stage+deploy rounds (stages are runs 1 and
/// 3, so v1 then v3), `!changes` before the second deploy, then `!rollback` to v1 (its step
/// checks LEVER_VERSION and LEVER_PREV_VERSION).
#[test]
fn changes_show_what_ships_and_rollback_goes_back() {
    let (_dir, path) = config(
        "[targets.site]\n\
         version = [\"sh\", \"-c\", \"echo v$LEVER_RUN_ID\"]\n\
         changes_url = \"https://git.example/compare/{from}...{to}\"\n\
         [[targets.site.stage]]\nname = \"build\"\nrun = [\"true\"]\n\
         [[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n\
         [[targets.site.rollback]]\nname = \"switch back\"\n\
         run = [\"sh\", \"-c\", \"test \\\"$LEVER_VERSION\\\" = v1 && test \\\"$LEVER_PREV_VERSION\\\" = v3\"]\n",
    );
    let out = ok(&console(
        &path,
        &[],
        b"!stage\n!deploy\n!stage\n!changes\n!deploy\n!rollback\n!status\n",
    ));
    let link = regex::escape("; changes: https://git.example/compare/v1...v3");
    assert_lines(
        &out,
        &[
            exact("harmes is staging site (1 step)"),
            format!(r"site staged by harmes in {DUR}: v1"),
            exact("harmes is deploying site: v1 → live (1 step)"),
            format!(r"site deployed by harmes in {DUR}: v1"),
            exact("harmes is staging site (1 step)"),
            format!(r"site staged by harmes in {DUR}: v3"),
            format!(r"site would ship v3 → live, was v1{link} \(staged by harmes at {TIME} UTC\)"),
            format!(r"harmes is deploying site: v3 → live, was v1{link} \(1 step\)"),
            format!(r"site deployed by harmes in {DUR}: v3 \(was v1\)"),
            exact("harmes is rolling back site: back to v1, was v3 (1 step)"),
            format!(r"site rolled back by harmes in {DUR}: v1 \(was v3\)"),
            format!(
                r"site: not held · live v1 \(rollback by harmes at {TIME} UTC\) · staged v3 \(by harmes at {TIME} UTC\) · idle"
            ),
        ],
    );
}

/// Deterministic bytes of every value but `\n` (xorshift), starting with a letter.
fn garbage(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = vec![b'g'];
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let b = (state >> 24) as u8;
        if b != b'\n' {
            bytes.push(b);
        }
    }
    bytes
}

/// Mistakes get a clear answer; garbage, control characters and invalid UTF-8 get none and
/// break nothing: the console still answers afterwards and exits 0.
#[test]
fn bad_input_gets_clear_messages_never_a_crash() {
    let (_dir, path) = config(&format!(
        "{QUICK_SITE}[targets.api]\n[[targets.api.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n"
    ));
    let mut input: Vec<u8> = b"!stage nosuch\n!hold\n!log abc\n!log 0\n\
        !deploy site sideways\n!confirm\n!stage \xff\n"
        .to_vec();
    input.extend(garbage(10 * 1024));
    input.push(b'\n');
    input.push(b'!');
    input.extend(std::iter::repeat_n(b'x', 10 * 1024));
    input.push(b'\n');
    input.extend((0u8..0x20).filter(|&b| b != b'\n').chain([0x7f]));
    input.push(b'\n');
    input.extend(b"\xff\xfe\xc3(\x80\n!\xffstage\n!ping\n");
    let out = ok(&console(&path, &[], &input));
    assert_eq!(
        out,
        "harmes: no target 'nosuch'; targets: site, api\n\
         harmes: say why: !hold [target|all] [duration] <reason>\n\
         harmes: no target 'abc'; targets: site, api\n\
         harmes: usage: !log [n] [target]\n\
         harmes: usage: !deploy [target] [force] [emergency <reason>]\n\
         harmes: usage: !confirm <code>\n\
         harmes: no target '\u{fffd}'; targets: site, api\n\
         pong\n"
    );
}

/// A hold for longer than lever can write down gets an answer, not silence: either it is
/// refused, or it is placed with an end in the future.
/// FAILS (lever bug): `!hold site 10000y …` panics in `store::format_time` (humantime cannot
/// format a year past 9999; `to_string` panics) inside `Deploys::hold`, so nobody hears
/// anything; `!hold api 300000000y …` overflows `placed_at + d.as_millis() as i64` and is
/// announced as held `until 1970-01-01 00:00:00 UTC` (the watcher then lifts it at once).
#[test]
fn a_hold_too_long_to_write_down_gets_a_clear_answer() {
    let (_dir, path) = config(&format!(
        "{QUICK_SITE}[targets.api]\n[[targets.api.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n"
    ));
    let output = console(
        &path,
        &[],
        b"!hold site 10000y long freeze\n!hold api 300000000y longer freeze\n!ping\n",
    );
    let out = stdout(&output);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{out}\n{err}");
    let mut wrong = Vec::new();
    if err.contains("panicked") {
        wrong.push(format!("lever panicked:\n{err}"));
    }
    let lines: Vec<&str> = out.lines().collect();
    if lines.len() != 3 || lines[2] != "pong" {
        wrong.push("not one answer per line, the last pong".to_owned());
    }
    for line in &lines {
        if line.contains("1970") {
            wrong.push(format!("a hold that ended before it began: {line}"));
        }
    }
    let holds = [("site", "long freeze"), ("api", "longer freeze")];
    for (line, (target, reason)) in lines.iter().zip(holds) {
        let placed = format!("NO DEPLOY PLEASE: {target} held by harmes ({reason}) until ");
        if !line.starts_with(&placed) && !line.starts_with("harmes: ") {
            wrong.push(format!(
                "neither the hold on {target} nor a refusal: {line}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{}\nwhole output:\n{out}",
        wrong.join("\n")
    );
}

/// A reason must say something: one made only of control characters (which lever strips from
/// everything it shows) is no reason.
/// FAILS (lever bug): `commands/hold.rs` checks `reason.trim().is_empty()` on the raw text, so
/// BEL/ESC pass; the hold is placed and shown as `NO DEPLOY PLEASE: every target held by
/// harmes ()`.
#[test]
fn a_hold_reason_of_only_control_characters_is_no_reason() {
    let (_dir, path) = config(QUICK_SITE);
    let out = ok(&console(&path, &[], b"!hold \x07\x07\x1b\x01\n!status\n"));
    assert_eq!(
        out,
        "harmes: say why: !hold [target|all] [duration] <reason>\n\
         site: not held · nothing live yet · nothing staged · idle\n"
    );
}

/// The console is a channel even when the config lists none (`#console`): the runs and holds
/// it starts are shown there, as with channels.
/// FAILS (lever bug): announcements go to `irc.channels` (or the target's channels), which is
/// empty, so the console prints only the acknowledgement `harmes: staging site` and never the
/// run's result.
#[test]
fn a_console_without_channels_still_shows_the_runs_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.toml");
    std::fs::write(
        &path,
        format!("[irc]\nserver = \"irc.example.net\"\n\n{QUICK_SITE}"),
    )
    .unwrap();
    let out = ok(&console(&path, &[], b"!stage\n"));
    let re = Regex::new(&format!(r"(?m)^site staged by harmes in {DUR}$")).unwrap();
    assert!(re.is_match(&out), "the stage's result is not shown:\n{out}");
}

/// `lever console` with no bot.toml uses the built-in copy of the shipped example; its target
/// must work there too, as the README's "needs nothing else" promises.
/// Its store and steps go to a data folder of the test's own, not the user's.
#[test]
fn the_built_in_example_stages_from_an_empty_folder() {
    let empty = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_home = [("XDG_DATA_HOME", data.path().to_str().unwrap())];
    let out = ok(&lever_in(
        empty.path(),
        &["console"],
        &data_home,
        b"!stage\n",
    ));
    let re = Regex::new(&format!(r"(?m)^site staged by harmes in {DUR}: r\d+")).unwrap();
    assert!(
        re.is_match(&out),
        "the built-in example cannot stage:\n{out}"
    );
}

/// A store that cannot be opened stops the console at once: exit 1, and stderr names the
/// path and where to fix it.
#[test]
fn a_store_that_cannot_be_opened_is_named() {
    let (_dir, path) = config(QUICK_SITE);
    let output = console(
        &path,
        &[("LEVER_STORE__PATH", "/nonexistent/dir/lever.db")],
        b"!ping\n",
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "stderr: {err}");
    assert_eq!(stdout(&output), "");
    assert!(
        err.starts_with("lever: cannot open the store /nonexistent/dir/lever.db: "),
        "{err}"
    );
    assert!(err.contains("check [store] path"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
