//! The deploy log in PostgreSQL, end to end: lever's real binary on a real ngIRCd with
//! `[store] url` pointing at a real PostgreSQL cluster of this run. A hold outlives the host
//! lever ran on; a database that is down or frozen gets a clear answer in time, never a
//! frozen bot, and lever carries on once it is back.

mod support;
use support::*;

#[path = "support/postgres.rs"]
mod postgres;

use std::time::{Duration, Instant};

/// lever on `irc_port` with its store at `url` and a `site` target, once it is in #ops.
fn lever_on(irc_port: u16, url: &str, client: &mut Client) -> Lever {
    let config = bot_config(
        irc_port,
        "",
        &format!(
            "[store]\nurl = \"{url}\"\n\
             [targets.site]\n[[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n"
        ),
    );
    let lever = Lever::start(&config);
    client.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");
    lever
}

#[test]
fn a_hold_in_postgres_outlives_the_host_lever_ran_on() {
    let cluster = postgres::shared();
    let url = cluster.database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let server = Ngircd::start();
    let mut alice = Client::connect(server.port, "alice");
    alice.join("#ops");
    let mut carol = Client::connect(server.port, "carol");
    carol.join("#ops");

    let first = lever_on(server.port, &url, &mut alice);
    alice.say_ops("!hold site db migration");
    assert_eq!(
        alice.lever_says(),
        "NO DEPLOY PLEASE: site held by alice (db migration)"
    );
    assert_eq!(
        cluster.psql(&db, "SELECT scope || '|' || reason FROM holds"),
        "site|db migration",
        "the hold is a row in PostgreSQL"
    );
    // The host is lost: a lever on another machine (another folder, nothing shared but the
    // database) takes over.
    drop(first);
    let _second = lever_on(server.port, &url, &mut alice);
    carol.say_ops("!deploy site");
    let refusal = carol.lever_says_within(WAIT, "carol:");
    assert!(
        refusal.starts_with("carol: site is held: NO DEPLOY PLEASE by alice since "),
        "{refusal}"
    );
    alice.say_ops("!unhold site");
    let lifted = alice.lever_says_within(WAIT, "DEPLOY OK");
    assert!(
        lifted.starts_with("DEPLOY OK: alice lifted the hold on site"),
        "{lifted}"
    );
    assert_eq!(cluster.psql(&db, "SELECT count(*) FROM holds"), "0");
    assert_eq!(
        cluster.psql(&db, "SELECT string_agg(kind, ',' ORDER BY id) FROM log"),
        "hold,unhold",
        "the log has both, in order"
    );
}

#[test]
fn a_database_down_or_frozen_gets_a_clear_answer_in_time_and_lever_carries_on() {
    // A cluster of its own: this test stops and freezes it.
    let cluster = postgres::Cluster::start();
    let url = cluster.database();
    let server = Ngircd::start();
    let mut bob = Client::connect(server.port, "bob");
    bob.join("#ops");
    let lever = lever_on(server.port, &url, &mut bob);

    cluster.stop();
    bob.say_ops("!hold site freeze");
    let answer = bob.lever_says();
    assert!(
        answer.starts_with(&format!(
            "bob: cannot reach the deploy log's database {url}: "
        )) && answer.ends_with(
            "; nothing was changed (check that PostgreSQL is up and reachable, then try again)"
        ),
        "{answer}"
    );
    bob.pong();

    cluster.restart();
    bob.say_ops("!hold site freeze");
    assert_eq!(
        bob.lever_says(),
        "NO DEPLOY PLEASE: site held by bob (freeze)",
        "lever reconnects by itself:\n{}",
        lever.log()
    );

    // Frozen: the server keeps its connections open and answers nothing, not even a cancel.
    cluster.freeze();
    let asked = Instant::now();
    bob.say_ops("!unhold site");
    let answer = bob.lever_says_within(Duration::from_secs(20), "bob:");
    let took = asked.elapsed();
    cluster.thaw();
    assert_eq!(
        answer,
        format!(
            "bob: the deploy log's database {url} did not answer within 2s; nothing was changed \
             (check its load and locks, e.g. pg_stat_activity, then try again)"
        )
    );
    // Not a timing assertion: only that it ended by the deadline, not by the test's patience.
    assert!(took < Duration::from_secs(15), "answered after {took:?}");
    bob.say_ops("!status site");
    let status = bob.lever_says();
    assert!(
        status.starts_with("site: HELD by bob since "),
        "the hold is still in force: {status}"
    );
    bob.say_ops("!unhold site");
    let lifted = bob.lever_says();
    assert!(
        lifted.starts_with("DEPLOY OK: bob lifted the hold on site"),
        "{lifted}"
    );
}

#[test]
fn lever_store_copy_moves_a_file_store_into_postgres_and_refuses_to_mix_two() {
    let cluster = postgres::shared();
    let url = cluster.database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let server = Ngircd::start();
    let mut dana = Client::connect(server.port, "dana");
    dana.join("#ops");

    // A lever on its SQLite file, with a hold and a log.
    let config = bot_config(
        server.port,
        "",
        "[targets.site]\n[[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n",
    );
    let mut file_lever = Lever::start(&config);
    dana.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");
    dana.say_ops("!hold site moving the log");
    dana.lever_says_within(WAIT, "NO DEPLOY PLEASE");
    let file = file_lever.dir.path().join("lever.db");
    // Stopped first, as `lever store copy` asks; its folder stays.
    signal(file_lever.pid(), "TERM");
    assert!(file_lever.wait_exit(WAIT).is_some(), "lever did not stop");

    let copy = |from: &str, to: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lever"))
            .args(["store", "copy", "--from", from, "--to", to])
            .output()
            .unwrap()
    };
    let done = copy(file.to_str().unwrap(), &url);
    assert!(done.status.success(), "{}", stderr(&done));
    assert_eq!(
        stdout(&done).trim(),
        format!(
            "copied 1 log entries, 1 hold(s), 0 run(s) and 0 step(s) from {} to {url}",
            file.display()
        )
    );
    assert_eq!(
        cluster.psql(&db, "SELECT reason FROM holds"),
        "moving the log"
    );

    let again = copy(file.to_str().unwrap(), &url);
    assert!(!again.status.success());
    assert!(
        stderr(&again)
            .contains("already holds 1 row(s) in log; lever copies only into an empty store"),
        "{}",
        stderr(&again)
    );
    let missing = copy("/nonexistent/lever.db", &url);
    assert_eq!(
        stderr(&missing).trim(),
        "lever: store copy: there is no store at /nonexistent/lever.db to copy"
    );

    // The same channel, now on PostgreSQL: the hold came along.
    let _pg_lever = lever_on(server.port, &url, &mut dana);
    dana.say_ops("!status site");
    let status = dana.lever_says_within(WAIT, "site:");
    assert!(status.starts_with("site: HELD by dana since "), "{status}");
}
