//! The store on a bad day, end to end: lever's real binary on a real ngIRCd with its HTTP side
//! up, and its SQLite file locked by another process or on a disk that fills up (a real 2 MiB
//! tmpfs). Nothing may freeze the bot, nothing may be applied after its caller was told it
//! failed, a run's end is always announced, and `/readyz` tells the truth.

mod support;
use support::*;

use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TOKEN: &str = "store-faults-token-0123456789";

/// Starts lever with `[http]` on a free port and `store` as its `[store]` section (plus the
/// `site` target, whose deploy runs `./ship.sh`), and waits until `/healthz` answers.
fn start(irc_port: u16, store: &str, ship: &str) -> (Lever, u16) {
    let (lever, http, ()) = start_serving_http(|http| {
        let config = bot_config(
            irc_port,
            "",
            &format!(
                "[http]\nlisten = \"127.0.0.1:{http}\"\ntoken = \"{TOKEN}\"\n\
                 [store]\n{store}\n\
                 [targets.site]\n[[targets.site.deploy]]\nname = \"ship\"\nrun = [\"./ship.sh\"]\n"
            ),
        );
        let lever = Lever::prepare(&config);
        lever.script("ship.sh", ship);
        (lever, ())
    });
    (lever, http)
}

fn place_hold(port: u16, reason: &str) -> (u16, String) {
    let body = serde_json::json!({ "reason": reason, "by": "ci" }).to_string();
    http_request(port, "POST", "/api/v1/holds", Some(TOKEN), &body)
}

/// Waits (against a hang) until lever is in #ops and ready.
fn joined(client: &mut Client, http: u16) {
    client.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");
    let deadline = Instant::now() + WAIT;
    while http_request(http, "GET", "/readyz", None, "").0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// A file locked by another process.

#[test]
fn a_locked_store_fails_holds_fast_and_clearly_while_the_bot_answers_and_applies_nothing_late() {
    let server = Ngircd::start();
    let mut alice = Client::connect(server.port, "alice");
    alice.join("#ops");
    // Long enough that the answers below come while every hold is still waiting.
    let (lever, http) = start(server.port, "lock_wait = \"8s\"", "true");
    joined(&mut alice, http);

    // Another process (this test) takes the write lock, as a backup job or a stray sqlite3
    // shell would.
    let db = lever.dir.path().join("lever.db");
    let other = rusqlite::Connection::open(&db).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    // Six holds over HTTP and two in the channel, all at once.
    let (done, answers) = mpsc::channel();
    for i in 0..6 {
        let done = done.clone();
        std::thread::spawn(move || done.send(place_hold(http, &format!("http hold {i}"))));
    }
    alice.say_ops("!hold db migration");
    alice.say_ops("!hold site second thoughts");

    // Meanwhile the bot answers, and so do its health and its reads.
    alice.say_ops("!ping");
    assert_eq!(
        alice.lever_says(),
        "pong",
        "!ping is answered before any hold"
    );
    let (status, body) = http_request(http, "GET", "/healthz", None, "");
    assert_eq!(status, 200, "alive while its store is locked: {body}");
    let (status, body) = http_request(http, "GET", "/readyz", None, "");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("the deploy log is locked by another process"),
        "{body}"
    );
    alice.say_ops("!status");
    assert_eq!(
        alice.lever_says(),
        "site: not held · nothing live yet · nothing staged · idle"
    );
    assert!(
        answers.try_recv().is_err(),
        "no hold has been answered yet: they wait for the lock"
    );

    // Every hold fails with the cause and what to do.
    let locked = format!(
        "the deploy log is locked by another process: {} stayed busy for 8s; nothing was \
         changed (find what holds it, e.g. `fuser {}`, then try again)",
        db.display(),
        db.display()
    );
    for _ in 0..6 {
        let (status, body) = answers.recv_timeout(WAIT).expect("an HTTP hold answered");
        assert_eq!(status, 503, "{body}");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"], locked.as_str());
    }
    for _ in 0..2 {
        let said = alice.lever_says_within(WAIT, "");
        assert!(said.ends_with(&locked), "{said}");
    }

    // The lock goes; nothing asked while it was held is applied now.
    other.execute_batch("ROLLBACK").unwrap();
    drop(other);
    let (status, holds) = http_request(http, "GET", "/api/v1/holds", None, "");
    assert_eq!(
        (status, holds.as_str()),
        (200, r#"{"holds":[]}"#),
        "no hold was placed late"
    );
    // And the store takes writes again at once.
    alice.say_ops("!hold site after the lock");
    assert_eq!(
        alice.lever_says(),
        "NO DEPLOY PLEASE: site held by alice (after the lock)"
    );
    drop(lever);
}

// ---------------------------------------------------------------------------------------------
// A disk that fills up.

/// A real 2 MiB tmpfs, mounted for the test and unmounted after it.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small");
        std::fs::create_dir(&path).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                "size=2m",
                "lever-test",
                path.to_str().unwrap(),
            ])
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "cannot mount a 2 MiB tmpfs for the full-disk test: it needs root (CAP_SYS_ADMIN), as CI has"
        );
        SmallDisk { path, _dir: dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").args(["-l"]).arg(&self.path).status();
    }
}

#[test]
fn a_deploy_ending_on_a_full_disk_is_announced_and_recorded_once_there_is_room() {
    let disk = SmallDisk::mount();
    let server = Ngircd::start();
    let mut alice = Client::connect(server.port, "alice");
    alice.join("#ops");
    // The step fills the disk the store is on, as a deploy writing its artifacts might.
    let fill = format!(
        "dd if=/dev/zero of={}/filler bs=64k 2>/dev/null; echo filled; exit 0",
        disk.path.display()
    );
    let store = format!("path = \"{}/lever.db\"", disk.path.display());
    let (lever, http) = start(server.port, &store, &fill);
    joined(&mut alice, http);

    alice.say_ops("!deploy");
    assert_eq!(
        alice.lever_says(),
        "alice is deploying site: the current build → live (1 step)"
    );
    // The end is said in the channel all the same, with why it is not in the log.
    like(
        &alice.lever_says_within(WAIT, "site"),
        "site deployed by alice in {dur} (NOT in the deploy log: the disk holding the deploy \
         log is full: {*}/lever.db cannot be written; nothing was changed (free space on that \
         disk, then try again); lever writes it there once it can)",
    );
    alice.say_ops("!status");
    like(
        &alice.lever_says(),
        "site: not held · nothing live yet · nothing staged · idle · deploy #1 ended succeeded \
         at {time} UTC, NOT yet in the deploy log (the store cannot take writes; lever keeps trying)",
    );
    // Not ready, and fast to say so; a hold fails with the cause.
    let (status, body) = http_request(http, "GET", "/readyz", None, "");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("the disk holding the deploy log is full"),
        "{body}"
    );
    alice.say_ops("!hold site disk");
    like(
        &alice.lever_says(),
        "{*}the disk holding the deploy log is full: {*}",
    );

    // Room again: the end is written, once, and said so.
    std::fs::remove_file(disk.path.join("filler")).unwrap();
    assert_eq!(
        alice.lever_says_within(WAIT, "the deploy log"),
        "the deploy log has the end of site deploy #1 now"
    );
    alice.say_ops("!log 2");
    like(
        &alice.lever_says(),
        "[{time}] [alice] site deployed{*} (ended {time} UTC; recorded late)",
    );
    like(
        &alice.lever_says(),
        "[{time}] [alice] starting deploy of site...{*}",
    );
    let deadline = Instant::now() + WAIT;
    while http_request(http, "GET", "/readyz", None, "").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready again after the disk had room"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    alice.pong();
    let ends = alice
        .seen
        .iter()
        .filter(|l| l.contains("site deployed by alice"))
        .count();
    assert_eq!(ends, 1, "the end is announced once");
    drop(lever);
}
