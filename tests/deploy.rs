//! The deploy pipeline end to end: lever's real binary on a real ngIRCd (and InspIRCd with
//! Atheme for services accounts), raw clients typing `!stage`, `!deploy`, `!hold` and friends,
//! step scripts written into each test's folder. Announcements and replies are checked word
//! for word against lever's wording (src/announce.rs, src/deploy/, src/commands/).

mod support;
use support::inspircd::*;
use support::*;

use std::path::Path;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Talking to lever.

/// A client named `nick`, connected and in #ops.
fn member(port: u16, nick: &str) -> Client {
    let mut client = Client::connect(port, nick);
    client.join("#ops");
    client
}

/// lever on `server` (the rig's `bot_config` with `targets` after it) with the `#!/bin/sh`
/// `scripts` (name, body) in its folder, once `watcher` has seen it join #ops.
fn lever_with(
    server: &Ngircd,
    targets: &str,
    scripts: &[(&str, &str)],
    watcher: &mut Client,
) -> Lever {
    let mut bot = Lever::prepare(&bot_config(server.port, "", targets));
    for (name, body) in scripts {
        bot.script(name, body);
    }
    bot.launch();
    sees_lever_join(watcher);
    bot
}

/// A server with a client for each of `nicks`, connected and in #ops.
fn members<const N: usize>(nicks: [&str; N]) -> (Ngircd, [Client; N]) {
    let server = Ngircd::start();
    let clients = nicks.map(|nick| member(server.port, nick));
    (server, clients)
}

/// Waits until `client` sees lever join #ops.
fn sees_lever_join(client: &mut Client) {
    client.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");
}

// ---------------------------------------------------------------------------------------------
// Files and processes the steps leave behind.

/// Waits (against a hang) until a step has created `path`.
fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + WAIT;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared: the step did not get that far",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pid a step wrote into `path`.
fn read_pid(path: &Path) -> u32 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {text:?}: {e}", path.display()))
}

/// Whether process `pid` has ended (gone, or a zombie waiting to be reaped).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Asserts that process `pid` ends (a killed process may take a moment to be torn down; the
/// wait only guards against a hang).
fn assert_ended(pid: u32, what: &str) {
    let deadline = Instant::now() + WAIT;
    while !ended(pid) {
        if Instant::now() > deadline {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            panic!("{what} (pid {pid}) is still running:\n{status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A step that waits for the file `release` in its folder (60 s at most, so a failed test
/// leaves nothing running for long), after creating `started`.
const WAIT_FOR_RELEASE: &str = "touch started
echo waiting for release
i=0
while [ ! -e release ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done";

// ---------------------------------------------------------------------------------------------
// 1. Flickr's flow, on the shipped example config and steps.

/// The shipped `bot.toml` pointed at the test server with the throttle off, and the shipped
/// `steps/` beside it.
fn shipped_example(port: u16) -> Lever {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = std::fs::read_to_string(root.join("bot.toml")).expect("read bot.toml");
    for key in ["port = 6667\n", "line_interval = \"1s\""] {
        assert!(shipped.contains(key), "the shipped bot.toml has no {key:?}");
    }
    let config = shipped
        .replacen("port = 6667\n", &format!("port = {port}\n"), 1)
        .replacen("line_interval = \"1s\"", "line_interval = \"0s\"", 1);
    let bot = Lever::prepare(&config);
    std::fs::create_dir(bot.path("steps")).unwrap();
    for script in ["act.sh", "version.sh"] {
        std::fs::copy(
            root.join("steps").join(script),
            bot.path("steps").join(script),
        )
        .unwrap();
    }
    bot
}

#[test]
fn the_flickr_flow_hold_refused_unhold_stage_deploy_log() {
    let (server, [mut alice, mut bob]) = members(["alice", "bob"]);
    let mut bot = shipped_example(server.port);
    bot.launch();
    sees_lever_join(&mut bob);

    // NO DEPLOY PLEASE.
    alice.say_ops("!hold db migration");
    assert_eq!(
        bob.lever_says(),
        "NO DEPLOY PLEASE: every target held by alice (db migration)"
    );
    bob.say_ops("!deploy");
    like(
        &bob.lever_says(),
        "bob: site is held: NO DEPLOY PLEASE by alice since {time} UTC ({dur} ago): db migration. \
         Ask alice, or !unhold when it is safe",
    );
    alice.say_ops("!unhold");
    like(
        &bob.lever_says(),
        "DEPLOY OK: alice lifted the hold on every target (held {dur})",
    );

    // The one-step stage, a line per step.
    bob.say_ops("!stage");
    assert_eq!(bob.lever_says(), "bob is staging site (5 steps)");
    for step in [
        "exporting svn",
        "fetching versions",
        "precompiling",
        "sync strings",
        "push to staging",
    ] {
        like(&bob.lever_says(), &format!("site: {step}.....ok ({{dur}})"));
    }
    let staged = like(
        &bob.lever_says(),
        "site staged by bob in {dur}: {word} — slowest: {*}",
    );
    let version = &staged[1];
    assert!(
        regex::Regex::new(r"^r\d{5}$").unwrap().is_match(version),
        "steps/version.sh prints r and five digits: {version:?}"
    );

    // The deploy.
    bob.say_ops("!deploy");
    assert_eq!(
        bob.lever_says(),
        format!("bob is deploying site: {version} → live (6 steps)")
    );
    for step in [
        "pulling site from staging host",
        "syncing to ramdisk in mud",
        "syncing to ramdisk in re2",
        "stage 1",
        "stage 2",
        "stage 3",
    ] {
        like(&bob.lever_says(), &format!("site: {step}.....ok ({{dur}})"));
    }
    like(
        &bob.lever_says(),
        &format!("site deployed by bob in {{dur}}: {version} — slowest: {{*}}"),
    );

    // The deploy log, newest first; nothing else is in it.
    bob.say_ops("!log 10");
    for (who, text) in [
        ("bob", format!("site deployed {version}")),
        (
            "bob",
            format!("starting deploy of site... ({version} → live)"),
        ),
        ("bob", format!("site staged {version}")),
        ("bob", "starting stage of site...".to_owned()),
        ("alice", "DEPLOY OK".to_owned()),
        ("alice", "NO DEPLOY PLEASE (db migration)".to_owned()),
    ] {
        like(&bob.lever_says(), &format!("[{{time}}] [{who}] {text}"));
    }
    bob.pong();

    bob.say_ops("!status");
    like(
        &bob.lever_says(),
        &format!(
            "site: not held · live {version} (deploy by bob at {{time}} UTC) · \
             staged {version} (by bob at {{time}} UTC) · idle"
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// 2. The store outlives lever.

/// A target `site` with a quick stage and deploy, beside whatever else `rest` adds.
fn quick_site(port: u16, rest: &str) -> String {
    bot_config(
        port,
        "",
        &format!(
            "{rest}\n[targets.site]\n\
             [[targets.site.stage]]\nname = \"build\"\nrun = [\"true\"]\n\
             [[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n"
        ),
    )
}

#[test]
fn holds_and_the_log_survive_a_restart() {
    let (server, [mut alice, mut bob]) = members(["alice", "bob"]);
    let mut bot = Lever::prepare(&quick_site(server.port, ""));
    bot.launch();
    sees_lever_join(&mut bob);

    alice.say_ops("!hold site payments outage");
    assert_eq!(
        bob.lever_says(),
        "NO DEPLOY PLEASE: site held by alice (payments outage)"
    );
    bob.say_ops("!status");
    let before = like(
        &bob.lever_says(),
        "site: HELD by alice since {time} UTC ({dur}): payments outage · nothing live yet · \
         nothing staged · idle",
    );

    bot.terminate();
    bob.expect(|l| l.verb == "QUIT" && l.from == "lever");
    bot.launch();
    sees_lever_join(&mut bob);

    bob.say_ops("!status");
    let after = like(
        &bob.lever_says(),
        "site: HELD by alice since {time} UTC ({dur}): payments outage · nothing live yet · \
         nothing staged · idle",
    );
    assert_eq!(
        before[0], after[0],
        "the same hold, placed at the same time"
    );
    bob.say_ops("!deploy");
    like(
        &bob.lever_says(),
        "bob: site is held: NO DEPLOY PLEASE by alice since {time} UTC ({dur} ago): \
         payments outage. Ask alice, or !unhold site when it is safe",
    );
    bob.say_ops("!log");
    like(
        &bob.lever_says(),
        "[{time}] [alice] NO DEPLOY PLEASE: site (payments outage)",
    );
    bob.pong();

    // alice is still the holder after the restart: she lifts it, and the log has both.
    alice.say_ops("!unhold site");
    like(
        &bob.lever_says(),
        "DEPLOY OK: alice lifted the hold on site (held {dur})",
    );
    bob.say_ops("!log");
    like(&bob.lever_says(), "[{time}] [alice] DEPLOY OK: site");
    like(
        &bob.lever_says(),
        "[{time}] [alice] NO DEPLOY PLEASE: site (payments outage)",
    );
    bob.pong();
}

#[test]
fn a_hold_stored_but_not_yet_said_when_lever_is_killed_is_said_once_after_the_restart() {
    let (server, [mut alice, mut bob]) = members(["alice", "bob"]);
    let mut bot = Lever::prepare(&quick_site(server.port, ""));
    // At one line an hour after registering, nothing lever queues goes out (and its alert caps
    // must fit that pace).
    bot.set_env(&[
        ("LEVER_IRC__BURST", "1"),
        ("LEVER_IRC__LINE_INTERVAL", "1h"),
        ("LEVER_ALERTS__LINES_PER_MINUTE", "1"),
        ("LEVER_ALERTS__LINES_PER_GROUP", "1"),
    ]);
    bot.launch();
    sees_lever_join(&mut bob);
    let db = bot.path("lever.db");
    let pending = || {
        let db = rusqlite::Connection::open(&db).unwrap();
        db.query_row("SELECT count(*) FROM log WHERE pending = 1", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
    };
    // Each command runs in a task of its own: the stage waits until the hold is stored, so the
    // order the log (and the test) expects is the order they happened.
    let stored = |n: i64| {
        let deadline = Instant::now() + WAIT;
        while pending() < n {
            assert!(
                Instant::now() < deadline,
                "the log never had {n} entries to announce:\n{}",
                bot.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    alice.say_ops("!hold site payments outage");
    stored(1);
    alice.say_ops("!stage site");
    stored(3);
    assert!(
        bob.collect_for(Duration::from_millis(300), lever_in_ops)
            .is_empty(),
        "nothing said yet"
    );

    bot.kill9();
    bot.set_env(&[]);
    bot.launch();
    sees_lever_join(&mut bob);
    let said = bob.lever_lines_for(Duration::from_secs(2));
    let template =
        |what: &str| format!("[{{time}}] [alice] {what} (not announced before lever stopped)");
    assert_eq!(said.len(), 3, "{said:?}");
    like(
        &said[0],
        &template("NO DEPLOY PLEASE: site (payments outage)"),
    );
    like(&said[1], &template("starting stage of site..."));
    like(&said[2], &template("site staged{*}"));
    assert_eq!(pending(), 0, "each marked said");

    // Said once: a third start says nothing of them.
    bot.terminate();
    bot.launch();
    sees_lever_join(&mut bob);
    bob.say_ops("!ping");
    assert_eq!(bob.lever_says(), "pong", "and nothing before it");
}

// ---------------------------------------------------------------------------------------------
// 3. Nothing anyone types reaches a shell.

/// What lever shows of a word it names in a refusal: at most 32 characters, the cut marked.
fn shown(word: &str) -> String {
    if word.chars().count() > 32 {
        format!("{}…", word.chars().take(31).collect::<String>())
    } else {
        word.to_owned()
    }
}

#[test]
fn injection_attempts_run_nothing_and_are_refused_or_kept_literally() {
    let marks = tempfile::tempdir().expect("temp dir");
    let server = Ngircd::start();
    // ngIRCd refuses `|` in a user name, so the client registers plainly and then renames.
    let nick = "x|touch";
    let mut x = member(server.port, "xtouch");
    x.send(&format!("NICK {nick}"));
    x.expect(|l| l.verb == "NICK" && l.text() == nick);
    let mut bot = lever_with(
        &server,
        "[targets.site]\n\
         [[targets.site.stage]]\nname = \"build\"\nrun = [\"./argv.sh\", \"--by={user}\", \"{target}\"]\n\
         [[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n\
         [[targets.site.rollback]]\nname = \"back\"\nrun = [\"true\"]\n",
        &[
            (
                "argv.sh",
                "printf '%s\\n' \"$@\" > argv.txt\nprintf '%s\\n' \"$LEVER_USER\" >> argv.txt",
            ),
        ],
        &mut x,
    );

    let mut payloads = Vec::new();
    for (i, form) in [
        "$(touch M)",
        "`touch M`",
        "; touch M",
        "&& touch M",
        "| touch M",
        // The same as single words, so each reaches the place that reads one word.
        "$(touch${IFS}M)",
        "`touch${IFS}M`",
        ";touch${IFS}M",
        "&&touch${IFS}M",
        "|touch${IFS}M",
    ]
    .into_iter()
    .enumerate()
    {
        let marker = marks.path().join(format!("marker{i}"));
        payloads.push(form.replace('M', &marker.to_string_lossy()));
    }

    let usage = |synopsis: &str| format!("{nick}: usage: {synopsis}");
    let no_target = |word: &str| format!("{nick}: no target '{}'; targets: site", shown(word));
    for p in &payloads {
        let words: Vec<&str> = p.split_whitespace().collect();
        let first = words[0];
        let one_word = words.len() == 1;
        // Commands that check the target word before anything else.
        for command in ["stage", "unhold", "log", "changes"] {
            x.say_ops(&format!("!{command} {p}"));
            assert_eq!(x.lever_says(), no_target(first), "!{command} {p}");
        }
        // Commands that take at most one word (or `[target] [force]`).
        for (command, synopsis) in [
            ("deploy", "!deploy [target] [force] [emergency <reason>]"),
            ("rollback", "!rollback [target] [force]"),
            ("status", "!status [target]"),
            ("cancel", "!cancel [target]"),
        ] {
            x.say_ops(&format!("!{command} {p}"));
            let expected = if one_word {
                no_target(first)
            } else {
                usage(synopsis)
            };
            assert_eq!(x.lever_says(), expected, "!{command} {p}");
        }
        x.say_ops(&format!("!deploy site {p}"));
        assert_eq!(
            x.lever_says(),
            usage("!deploy [target] [force] [emergency <reason>]")
        );
        // A code is one word of at most 16 characters.
        assert!(!one_word || p.len() > 16);
        x.say_ops(&format!("!confirm {p}"));
        assert_eq!(x.lever_says(), usage("!confirm <code>"), "!confirm {p}");

        // As a hold reason it is just text: held, shown and logged as typed.
        x.say_ops(&format!("!hold {p} reason"));
        assert_eq!(
            x.lever_says(),
            format!("NO DEPLOY PLEASE: every target held by {nick} ({p} reason)")
        );
        x.say_ops("!unhold");
        like(
            &x.lever_says(),
            &format!("DEPLOY OK: {nick} lifted the hold on every target (held {{dur}})"),
        );
        x.say_ops(&format!("!hold site 2h {p}"));
        like(
            &x.lever_says(),
            &format!("NO DEPLOY PLEASE: site held by {nick} ({p}) until {{time}} UTC"),
        );
        x.say_ops("!status site");
        like(
            &x.lever_says(),
            &format!(
                "site: HELD by {nick} since {{time}} UTC ({{dur}}): {p}, until {{time}} UTC · \
                 nothing live yet · nothing staged · idle"
            ),
        );
        x.say_ops("!log 1");
        like(
            &x.lever_says(),
            &format!("[{{time}}] [{nick}] NO DEPLOY PLEASE: site ({p}) until {{time}} UTC"),
        );
        x.say_ops("!unhold site");
        like(
            &x.lever_says(),
            &format!("DEPLOY OK: {nick} lifted the hold on site (held {{dur}})"),
        );
    }

    // A nick full of shell characters reaches a step as one literal argument.
    x.say_ops("!stage");
    assert_eq!(x.lever_says(), format!("{nick} is staging site (1 step)"));
    like(
        &x.lever_says(),
        &format!("site staged by {nick} in {{dur}}"),
    );
    let argv = std::fs::read_to_string(bot.path("argv.txt")).expect("the step ran");
    assert_eq!(argv, format!("--by={nick}\nsite\n{nick}\n"));

    x.pong();
    assert!(bot.running(), "lever died:\n{}", bot.log());
    let created: Vec<_> = std::fs::read_dir(marks.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(created.is_empty(), "injected commands ran: {created:?}");
}

// ---------------------------------------------------------------------------------------------
// 4. A failing step.

#[test]
fn a_failing_step_is_reported_with_its_name_status_and_output_and_stops_the_run() {
    let (server, [mut fay]) = members(["fay"]);
    let bot = lever_with(
        &server,
        "[targets.site]\n\
         [[targets.site.stage]]\nname = \"prepare\"\nrun = [\"true\"]\n\
         [[targets.site.stage]]\nname = \"compile\"\nrun = [\"./compile.sh\"]\n\
         [[targets.site.stage]]\nname = \"publish\"\nrun = [\"./publish.sh\"]\n\
         [[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n",
        &[
            (
                "compile.sh",
                "echo 'compiling 4211 templates'\necho 'error: photo.tpl line 12: unexpected EOF'\nexit 3",
            ),
            ("publish.sh", "touch published"),
        ],
        &mut fay,
    );

    fay.say_ops("!stage");
    assert_eq!(fay.lever_says(), "fay is staging site (3 steps)");
    // Checked word for word at the end, after everything else about the failure.
    let failed = fay.lever_says_within(WAIT, "site stage by fay FAILED");
    assert!(
        !bot.path("published").exists(),
        "the step after the failing one ran"
    );
    fay.say_ops("!log 1");
    like(
        &fay.lever_says(),
        "[{time}] [fay] site stage FAILED ('compile' failed: exit code 3)",
    );
    // A failed stage is not something to deploy, and the target is free.
    fay.say_ops("!deploy");
    assert_eq!(
        fay.lever_says(),
        "fay: site has not been staged yet: !stage site first"
    );
    fay.say_ops("!status");
    assert_eq!(
        fay.lever_says(),
        "site: not held · nothing live yet · nothing staged · idle"
    );
    // The step count is the run's (3 steps), as its start said, not the steps that ran.
    like(
        &failed,
        "site stage by fay FAILED after {dur} at step 2/3 'compile': exit code 3 — \
         last output: compiling 4211 templates | error: photo.tpl line 12: unexpected EOF",
    );
}

// ---------------------------------------------------------------------------------------------
// 5. A step's timeout.

#[test]
fn a_step_timeout_kills_its_whole_process_group() {
    let (server, [mut gus]) = members(["gus"]);
    let bot = lever_with(
        &server,
        "[targets.site]\nannounce = \"steps\"\n\
         [[targets.site.stage]]\nname = \"hang\"\nrun = [\"./hang.sh\"]\ntimeout = \"2s\"\n\
         [[targets.site.stage]]\nname = \"after\"\nrun = [\"./after.sh\"]\n",
        &[
            (
                "hang.sh",
                "sleep 60 &\necho $! > child.pid\necho $$ > step.pid\necho 'waiting for the lock'\nsleep 60",
            ),
            ("after.sh", "touch after-ran"),
        ],
        &mut gus,
    );

    gus.say_ops("!stage");
    assert_eq!(gus.lever_says(), "gus is staging site (2 steps)");
    like(
        &gus.lever_says(),
        "site: hang.....TIMED OUT (limit 2000 ms)",
    );
    let failed = gus.lever_says_within(WAIT, "site stage by gus FAILED");
    assert_ended(read_pid(&bot.path("step.pid")), "the timed-out step");
    assert_ended(
        read_pid(&bot.path("child.pid")),
        "the step's background child",
    );
    assert!(
        !bot.path("after-ran").exists(),
        "the run went on after a timeout"
    );
    gus.say_ops("!log 1");
    like(
        &gus.lever_says(),
        "[{time}] [gus] site stage FAILED ('hang' failed: timed out after 2000 ms)",
    );
    like(
        &failed,
        "site stage by gus FAILED after {dur} at step 1/2 'hang': timed out after 2000 ms — \
         last output: waiting for the lock",
    );
}

// ---------------------------------------------------------------------------------------------
// 6. One run per target.

#[test]
fn a_busy_target_is_refused_while_another_target_runs() {
    let (server, [mut alice, mut bob]) = members(["alice", "bob"]);
    let bot = lever_with(
        &server,
        "[targets.site]\n\
         [[targets.site.stage]]\nname = \"build\"\nrun = [\"./wait.sh\"]\n\
         [[targets.site.stage]]\nname = \"package\"\nrun = [\"true\"]\n\
         [[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n\
         [targets.docs]\n\
         [[targets.docs.stage]]\nname = \"render\"\nrun = [\"true\"]\n\
         [[targets.docs.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n",
        &[("wait.sh", WAIT_FOR_RELEASE)],
        &mut bob,
    );

    alice.say_ops("!stage");
    assert_eq!(bob.lever_says(), "alice is staging site (2 steps)");
    wait_for_file(&bot.path("started"));

    let busy = "bob: site is busy: alice is staging it (step 1/2 'build', {dur} so far); \
                !status site shows more";
    bob.say_ops("!stage");
    like(&bob.lever_says(), busy);
    bob.say_ops("!deploy");
    like(&bob.lever_says(), busy);
    bob.say_ops("!stage site");
    like(&bob.lever_says(), busy);
    bob.say_ops("!status site");
    like(
        &bob.lever_says(),
        "site: not held · nothing live yet · nothing staged · alice is staging it for {dur}, \
         step 1/2 'build' for {dur} — last output: waiting for release",
    );

    // Another target runs meanwhile, start to end.
    bob.say_ops("!stage docs");
    assert_eq!(bob.lever_says(), "bob is staging docs (1 step)");
    like(&bob.lever_says(), "docs staged by bob in {dur}");
    bob.say_ops("!deploy docs");
    assert_eq!(
        bob.lever_says(),
        "bob is deploying docs: the staged build (no version) → live (1 step)"
    );
    like(&bob.lever_says(), "docs deployed by bob in {dur}");

    // site was busy all along; released, its stage ends well.
    assert!(!bot.path("release").exists());
    std::fs::write(bot.path("release"), "").unwrap();
    like(&bob.lever_says(), "site staged by alice in {dur}");
    bob.say_ops("!deploy");
    assert_eq!(
        bob.lever_says(),
        "bob is deploying site: the staged build (no version) → live (1 step)"
    );
    like(&bob.lever_says(), "site deployed by bob in {dur}");
}

// ---------------------------------------------------------------------------------------------
// 7. !cancel.

/// A step that writes its pid and its background child's pid, then waits for the child —
/// unless `release` exists, when it ends at once.
const WAIT_WITH_CHILD: &str = "echo $$ > step.pid
if [ -e release ]; then exit 0; fi
sleep 60 &
echo $! > child.pid
touch started
echo 'waiting for the build farm'
wait";

#[test]
fn cancel_kills_the_steps_processes_and_frees_the_target() {
    let (server, [mut alice, mut bob]) = members(["alice", "bob"]);
    let bot = lever_with(
        &server,
        "[targets.site]\n\
         [[targets.site.stage]]\nname = \"wait\"\nrun = [\"./wait.sh\"]\n\
         [[targets.site.stage]]\nname = \"after\"\nrun = [\"./after.sh\"]\n",
        &[
            ("wait.sh", WAIT_WITH_CHILD),
            ("after.sh", "touch after-ran"),
        ],
        &mut bob,
    );

    alice.say_ops("!stage");
    assert_eq!(bob.lever_says(), "alice is staging site (2 steps)");
    wait_for_file(&bot.path("started"));
    let step = read_pid(&bot.path("step.pid"));
    let child = read_pid(&bot.path("child.pid"));
    assert!(!ended(step) && !ended(child), "the step is running");

    bob.say_ops("!cancel");
    assert_eq!(
        bob.lever_says(),
        "bob: cancelling alice's stage of site, step 1/2 'wait'"
    );
    let cancelled = bob.lever_says_within(WAIT, "site stage by alice CANCELLED");
    assert_ended(step, "the cancelled step");
    assert_ended(child, "the cancelled step's background child");
    assert!(
        !bot.path("after-ran").exists(),
        "the run went on after !cancel"
    );
    bob.say_ops("!log 1");
    like(
        &bob.lever_says(),
        "[{time}] [alice] site stage CANCELLED (cancelled during 'wait' by bob)",
    );
    bob.say_ops("!cancel");
    assert_eq!(bob.lever_says(), "bob: nothing is running on site");

    // The target is free: a new stage runs to its end.
    std::fs::write(bot.path("release"), "").unwrap();
    alice.say_ops("!stage");
    assert_eq!(bob.lever_says(), "alice is staging site (2 steps)");
    like(&bob.lever_says(), "site staged by alice in {dur}");
    assert!(bot.path("after-ran").exists());
    // Step 1 of the run's 2, as the !cancel reply said.
    like(
        &cancelled,
        "site stage by alice CANCELLED by bob during step 1/2 'wait' after {dur}",
    );
}

// ---------------------------------------------------------------------------------------------
// 8. kill -9 in the middle of a stage.

#[test]
fn a_run_cut_by_kill_9_is_announced_interrupted_after_a_restart_and_the_target_freed() {
    let (server, [mut alice]) = members(["alice"]);
    let mut bot = lever_with(
        &server,
        "[targets.site]\n\
         [[targets.site.stage]]\nname = \"wait\"\nrun = [\"./wait.sh\"]\n\
         [[targets.site.stage]]\nname = \"finish\"\nrun = [\"true\"]\n",
        &[("wait.sh", WAIT_FOR_RELEASE)],
        &mut alice,
    );

    alice.say_ops("!stage");
    assert_eq!(alice.lever_says(), "alice is staging site (2 steps)");
    wait_for_file(&bot.path("started"));
    bot.kill9();
    alice.expect(|l| l.verb == "QUIT" && l.from == "lever");
    // The step's leader died with lever; a `sleep 0.1` of its loop may still be running.
    std::fs::write(bot.path("release"), "").unwrap();

    bot.launch();
    sees_lever_join(&mut alice);
    let interrupted = alice.lever_says_within(WAIT, "site stage by alice was INTERRUPTED");
    alice.say_ops("!log 2");
    like(
        &alice.lever_says(),
        "[{time}] [alice] site stage interrupted (lever stopped while it ran{*})",
    );
    like(
        &alice.lever_says(),
        "[{time}] [alice] starting stage of site...",
    );
    alice.say_ops("!stage");
    assert_eq!(alice.lever_says(), "alice is staging site (2 steps)");
    like(&alice.lever_says(), "site staged by alice in {dur}");
    alice.pong();
    let told = alice
        .seen
        .iter()
        .filter(|l| l.contains("was INTERRUPTED"))
        .count();
    assert_eq!(told, 1, "the interruption is announced once");
    // Step 1 of the run's 2.
    like(
        &interrupted,
        "site stage by alice was INTERRUPTED: lever stopped during step 1/2 'wait'{*}; \
         site is free again (check it before you go on)",
    );
}

/// Whether process `pid` is alive: there, and not a zombie waiting to be reaped.
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = &stat[stat.rfind(')')? + 1..];
            rest.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

fn becomes_dead(pid: &str, what: &str) {
    let deadline = Instant::now() + WAIT;
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "{what} (pid {pid}) is still running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_deploy_cut_by_kill_9_dies_with_lever_and_its_leftovers_are_stopped_at_restart() {
    let (server, [mut alice]) = members(["alice"]);
    let mut bot = lever_with(
        &server,
        "[targets.site]\n\
         [[targets.site.deploy]]\nname = \"rollout\"\nrun = [\"./wait.sh\"]\n",
        &[("wait.sh", WAIT_WITH_CHILD)],
        &mut alice,
    );

    alice.say_ops("!deploy");
    like(&alice.lever_says(), "alice is deploying site{*}");
    wait_for_file(&bot.path("started"));
    let read = |name: &str| {
        std::fs::read_to_string(bot.path(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    let (step, child) = (read("step.pid"), read("child.pid"));
    bot.kill9();
    // The step's leader dies with lever, not at some later restart.
    becomes_dead(&step, "the step lever started");
    assert!(
        alive(&child),
        "what the step started lives on until lever is back"
    );

    bot.launch();
    sees_lever_join(&mut alice);
    let interrupted = alice.lever_says_within(WAIT, "site deploy by alice was INTERRUPTED");
    assert_eq!(
        interrupted,
        format!(
            "site deploy by alice was INTERRUPTED: lever stopped during step 1/1 'rollout'; \
             step 'rollout' was still running (1 process in group {step}) and lever stopped it; \
             site is free again (check it before you go on)"
        )
    );
    assert!(
        !alive(&child),
        "the leftover is stopped before the target is freed"
    );
    alice.say_ops("!log 1");
    like(
        &alice.lever_says(),
        "[{time}] [alice] site deploy interrupted (lever stopped while it ran; step 'rollout' \
         was still running (1 process in group {*}) and lever stopped it)",
    );
    // One run at a time again: the next deploy is the only one.
    std::fs::write(bot.path("release"), "").unwrap();
    alice.say_ops("!deploy");
    like(&alice.lever_says(), "alice is deploying site{*}");
    like(&alice.lever_says(), "site deployed by alice in {dur}{*}");
}

// ---------------------------------------------------------------------------------------------
// 9. Roles.

#[test]
fn roles_from_masks_and_accounts_on_a_server_without_services() {
    let (server, [mut alice, mut bob]) = members(["alice", "bob"]);
    let config = quick_site(
        server.port,
        "[access]\nstage = [\"*!~alice@127.0.0.1\"]\nhold = [\"*!*@127.0.0.1\"]\n\
         deploy = [\"account:alice\"]\n",
    );
    let mut bot = Lever::prepare(&config);
    bot.launch();
    sees_lever_join(&mut alice);

    alice.say_ops("!whoami");
    assert_eq!(
        alice.lever_says(),
        "alice: you are alice!~alice@127.0.0.1, not logged in to services; roles: stage, hold"
    );
    alice.say_ops("!stage");
    assert_eq!(alice.lever_says(), "alice is staging site (1 step)");
    like(&alice.lever_says(), "site staged by alice in {dur}");
    let no_deploy = "!deploy needs the deploy role, which you do not have \
                     (you are not logged in to services, so account: rules cannot match)";
    alice.say_ops("!deploy");
    assert_eq!(alice.lever_says(), format!("alice: {no_deploy}"));
    alice.say_ops("!deploy site force");
    assert_eq!(alice.lever_says(), format!("alice: {no_deploy}"));

    // bob's mask matches the hold rule but not the stage rule.
    bob.say_ops("!stage");
    assert_eq!(
        alice.lever_says(),
        "bob: !stage needs the stage role, which you do not have",
        "no hint about services: the stage rule is a mask"
    );
    bob.say_ops("!hold site load test");
    assert_eq!(
        alice.lever_says(),
        "NO DEPLOY PLEASE: site held by bob (load test)"
    );
    alice.pong();
}

#[test]
fn a_nick_change_does_not_grant_rights_and_force_needs_an_admin() {
    let server = InspIRCd::with_atheme();
    for (account, password) in [
        ("alice", "alicepass1"),
        ("bob", "bobpass123"),
        ("carol", "carolpass1"),
    ] {
        register_account(server.port, account, password);
    }
    let mut ops = member(server.port, "ops");
    let mut alice = connect_with(server.port, "alice", &[], Some(("alice", "alicepass1")));
    alice.join("#ops");
    let mut bob = connect_with(server.port, "bob", &[], Some(("bob", "bobpass123")));
    bob.join("#ops");
    let mut carol = connect_with(server.port, "carol", &[], Some(("carol", "carolpass1")));
    carol.join("#ops");
    let config = lever_config(
        server.port,
        "lever",
        &["#ops"],
        "line_interval = \"0s\"",
        "[access]\nstage = [\"account:alice\"]\ndeploy = [\"account:alice\", \"account:bob\"]\n\
         hold = [\"account:alice\", \"account:bob\"]\nadmin = [\"account:carol\"]\n\
         [targets.site]\n\
         [[targets.site.stage]]\nname = \"build\"\nrun = [\"true\"]\n\
         [[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n",
    );
    let mut bot = Lever::prepare(&config);
    bot.launch();
    sees_lever_join(&mut ops);
    ops.pong();

    alice.say_ops("!stage");
    assert_eq!(ops.lever_says(), "alice is staging site (1 step)");
    like(&ops.lever_says(), "site staged by alice in {dur}");
    alice.say_ops("!hold site db migration");
    assert_eq!(
        ops.lever_says(),
        "NO DEPLOY PLEASE: site held by alice (db migration)"
    );

    // alice steps away; a stranger takes the nick alice and gets none of her rights.
    alice.send("NICK alice_away");
    alice.expect(|l| l.verb == "NICK" && l.text() == "alice_away");
    let mut mallory = member(server.port, "mallory");
    mallory.send("NICK alice");
    mallory.expect(|l| l.verb == "NICK" && l.text() == "alice");
    for (command, role) in [
        ("!stage", "stage"),
        ("!deploy", "deploy"),
        ("!unhold site", "hold"),
    ] {
        mallory.say_ops(command);
        let name = command.split_whitespace().next().unwrap();
        assert_eq!(
            ops.lever_says(),
            format!(
                "alice: {name} needs the {role} role, which you do not have \
                 (you are not logged in to services, so account: rules cannot match)"
            )
        );
    }

    // bob may deploy, but not through alice's hold, and he may not force.
    bob.say_ops("!deploy");
    like(
        &ops.lever_says(),
        "bob: site is held: NO DEPLOY PLEASE by alice since {time} UTC ({dur} ago): \
         db migration. Ask alice, or !unhold site when it is safe",
    );
    bob.say_ops("!deploy force");
    assert_eq!(
        ops.lever_says(),
        "bob: 'force' needs the admin role, which you do not have"
    );
    bob.say_ops("!deploy site force");
    assert_eq!(
        ops.lever_says(),
        "bob: 'force' needs the admin role, which you do not have"
    );

    // carol is an admin: her force passes the hold, loudly.
    carol.say_ops("!deploy site force");
    assert_eq!(
        ops.lever_says(),
        "carol is deploying site: the staged build (no version) → live (1 step) — \
         ⚠ FORCED through alice's hold (db migration)"
    );
    like(&ops.lever_says(), "site deployed by carol in {dur}");
    ops.say_ops("!log 2");
    like(&ops.lever_says(), "[{time}] [carol] site deployed");
    like(
        &ops.lever_says(),
        "[{time}] [carol] starting deploy of site... (the staged build (no version) → live) \
         FORCED through alice's hold (db migration)",
    );

    // The real alice keeps her rights under another nick.
    alice.say_ops("!stage");
    assert_eq!(ops.lever_says(), "alice_away is staging site (1 step)");
    like(&ops.lever_says(), "site staged by alice_away in {dur}");
    ops.pong();
}

// ---------------------------------------------------------------------------------------------
// 10. Holds that end by themselves, and holds that are recalled.

#[test]
fn a_hold_with_a_duration_expires_and_one_without_is_recalled() {
    let (server, [mut dana, mut erin]) = members(["dana", "erin"]);
    let mut bot = lever_with(
        &server,
        "[deploy]\nhold_reminder = \"2s\"\n\
         [targets.site]\n[[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n",
        &[],
        &mut erin,
    );

    dana.say_ops("!hold site 3s flaky");
    like(
        &erin.lever_says(),
        "NO DEPLOY PLEASE: site held by dana (flaky) until {time} UTC",
    );
    erin.say_ops("!deploy");
    like(
        &erin.lever_says(),
        "erin: site is held: NO DEPLOY PLEASE by dana since {time} UTC ({dur} ago): flaky \
         (lifts by itself at {time} UTC). \
         Ask dana, or !unhold site when it is safe",
    );
    // Holds are checked every 5 s: the expiry is announced within about 8 s.
    assert_eq!(
        erin.lever_says_within(Duration::from_secs(30), "DEPLOY OK"),
        "DEPLOY OK: dana's hold on site expired (flaky)"
    );
    erin.say_ops("!deploy");
    assert_eq!(
        erin.lever_says(),
        "erin is deploying site: the current build → live (1 step)"
    );
    like(&erin.lever_says(), "site deployed by erin in {dur}");
    erin.say_ops("!log 3");
    like(&erin.lever_says(), "[{time}] [erin] site deployed");
    like(
        &erin.lever_says(),
        "[{time}] [erin] starting deploy of site... (the current build → live)",
    );
    like(
        &erin.lever_says(),
        "[{time}] [lever] DEPLOY OK: site (dana's hold expired: flaky)",
    );

    // A hold without a duration is recalled.
    dana.say_ops("!hold db migration");
    assert_eq!(
        erin.lever_says(),
        "NO DEPLOY PLEASE: every target held by dana (db migration)"
    );
    like(
        &erin.lever_says_within(Duration::from_secs(30), "reminder:"),
        "reminder: every target held by dana for {dur}: db migration (!unhold when it is safe)",
    );
    dana.say_ops("!unhold");
    like(
        &erin.lever_says_within(WAIT, "DEPLOY OK"),
        "DEPLOY OK: dana lifted the hold on every target (held {dur})",
    );
    let about_site = erin
        .seen
        .iter()
        .filter(|l| l.contains("reminder: site"))
        .count();
    assert_eq!(about_site, 0, "a hold with a duration is not recalled");
    assert!(bot.running());
}

// ---------------------------------------------------------------------------------------------
// 11. !confirm.

#[test]
fn confirm_shows_what_will_ship_and_only_the_asker_can_confirm() {
    let (server, [mut alice, mut bob]) = members(["alice", "bob"]);
    let bot = lever_with(
        &server,
        "[targets.site]\nconfirm = true\nversion = [\"./version.sh\"]\n\
         changes_url = \"https://git.example/compare/{from}...{to}\"\n\
         [[targets.site.stage]]\nname = \"build\"\nrun = [\"true\"]\n\
         [[targets.site.deploy]]\nname = \"ship\"\nrun = [\"./ship.sh\"]\n\
         [[targets.site.rollback]]\nname = \"back\"\nrun = [\"./ship.sh\"]\n",
        &[
            ("version.sh", "echo \"v$LEVER_RUN_ID\""),
            ("ship.sh", "echo \"$LEVER_VERSION\" >> shipped"),
        ],
        &mut bob,
    );

    alice.say_ops("!stage");
    assert_eq!(bob.lever_says(), "alice is staging site (1 step)");
    like(&bob.lever_says(), "site staged by alice in {dur}: v1");

    alice.say_ops("!deploy");
    let code = like(
        &bob.lever_says(),
        "alice: site: will ship v1 → live. To go ahead, say !confirm {code} within 5 min",
    )
    .remove(0);
    // Nothing ships before the confirmation.
    bob.say_ops("!status");
    like(
        &bob.lever_says(),
        "site: not held · nothing live yet · staged v1 (by alice at {time} UTC) · idle",
    );
    bob.say_ops(&format!("!confirm {code}"));
    assert_eq!(
        bob.lever_says(),
        format!("bob: code {code} belongs to alice's deploy; only they can confirm it")
    );
    assert!(!bot.path("shipped").exists());
    alice.say_ops(&format!("!confirm {}", code.to_lowercase()));
    assert_eq!(
        bob.lever_says(),
        "alice is deploying site: v1 → live (1 step)"
    );
    like(&bob.lever_says(), "site deployed by alice in {dur}: v1");
    alice.say_ops(&format!("!confirm {code}"));
    assert_eq!(
        bob.lever_says(),
        format!("alice: no deploy is waiting for code {code}")
    );

    // A second round shows the change and its link; then a rollback returns to v1.
    alice.say_ops("!stage");
    assert_eq!(bob.lever_says(), "alice is staging site (1 step)");
    like(&bob.lever_says(), "site staged by alice in {dur}: v3");
    bob.say_ops("!changes");
    like(
        &bob.lever_says(),
        "site would ship v3 → live, was v1; changes: https://git.example/compare/v1...v3 \
         (staged by alice at {time} UTC)",
    );
    alice.say_ops("!deploy");
    let code = like(
        &bob.lever_says(),
        "alice: site: will ship v3 → live, was v1; changes: https://git.example/compare/v1...v3. \
         To go ahead, say !confirm {code} within 5 min",
    )
    .remove(0);
    alice.say_ops(&format!("!confirm {code}"));
    assert_eq!(
        bob.lever_says(),
        "alice is deploying site: v3 → live, was v1; \
         changes: https://git.example/compare/v1...v3 (1 step)"
    );
    like(
        &bob.lever_says(),
        "site deployed by alice in {dur}: v3 (was v1)",
    );
    alice.say_ops("!rollback");
    assert_eq!(
        bob.lever_says(),
        "alice is rolling back site: back to v1, was v3 (1 step)"
    );
    like(
        &bob.lever_says(),
        "site rolled back by alice in {dur}: v1 (was v3)",
    );
    let shipped = std::fs::read_to_string(bot.path("shipped")).unwrap();
    assert_eq!(shipped, "v1\nv3\nv1\n", "each run got its LEVER_VERSION");
}
