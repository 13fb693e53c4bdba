//! The deploy log in PostgreSQL, end to end: lever's real binary on a real ngIRCd with
//! `[store] url` pointing at a real PostgreSQL cluster of this run. A hold outlives the host
//! lever ran on; a database that is down or frozen gets a clear answer in time, never a
//! frozen bot, and lever carries on once it is back.

mod support;
use support::shared_store::*;
use support::*;

use std::time::{Duration, Instant};

#[test]
fn a_hold_in_postgres_outlives_the_host_lever_ran_on() {
    let cluster = postgres::shared();
    let (url, db, server, mut alice) = setup("alice");
    let mut carol = Client::connect(server.port, "carol");
    carol.join("#ops");

    let first = lever_on(server.port, &url, "3s", &mut alice);
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
    let _second = lever_on(server.port, &url, "3s", &mut alice);
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
    let lever = lever_on(server.port, &url, "15s", &mut bob);

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
            "bob: the deploy log's database {url} did not answer within 1s; nothing was changed \
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
    let answered = bob.lever_says();
    assert!(answered.starts_with("answered by lever on "), "{answered}");
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
    let (url, db, server, mut dana) = setup("dana");

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
            "copied 1 log entries, 1 hold(s), 0 run(s), 0 step(s) and 0 flag(s) from {} to {url}",
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
    let _pg_lever = lever_on(server.port, &url, "3s", &mut dana);
    dana.say_ops("!status site");
    let status = dana.lever_says_within(WAIT, "site:");
    assert!(status.starts_with("site: HELD by dana since "), "{status}");
}

#[test]
fn of_two_levers_on_one_store_one_speaks_and_the_other_takes_over_when_it_dies() {
    let cluster = postgres::shared();
    let (url, db, server, mut erin) = setup("erin");
    let config = pg_config(server.port, &url, "3s", "ship", r#"["true"]"#);
    let joined = lever_joined;
    let mut a = Lever::start_with_env(&config, &[("LEVER_STORE__NODE", "host-a")]);
    erin.expect(joined);
    let b = Lever::start_with_env(&config, &[("LEVER_STORE__NODE", "host-b")]);
    // The second waits as standby: it holds no lease, so it never comes on IRC.
    b.wait_for_log("standby: another lever is active");
    assert!(
        erin.collect_for(Duration::from_secs(2), joined).is_empty(),
        "only one lever is in the channel"
    );
    // Nor does a console act beside the active one.
    let console = std::process::Command::new(env!("CARGO_BIN_EXE_lever"))
        .arg("--config")
        .arg(a.dir.path().join("bot.toml"))
        .arg("console")
        .env("LEVER_STORE__NODE", "host-c")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!console.status.success());
    assert!(
        stderr(&console).contains(
            "another lever (host-a) is active on this store; the console does not act beside it"
        ),
        "{}",
        stderr(&console)
    );
    erin.say_ops("!hold site incident");
    assert_eq!(
        erin.lever_says(),
        "NO DEPLOY PLEASE: site held by erin (incident)"
    );
    assert_eq!(
        cluster.psql(&db, "SELECT node || ' ' || epoch FROM lever_lease"),
        "host-a 1"
    );

    // The active's host dies.
    signal(a.pid(), "KILL");
    assert!(a.wait_exit(WAIT).is_some());
    erin.expect_within(Duration::from_secs(20), joined);
    assert_eq!(
        erin.lever_says(),
        "lever is back (on host-b, took over from host-a)",
        "and the hold host-a said is not said again"
    );
    assert_eq!(
        cluster.psql(&db, "SELECT node || ' ' || epoch FROM lever_lease"),
        "host-b 2"
    );
    erin.say_ops("!status site");
    let status = erin.lever_says_within(WAIT, "site:");
    assert!(status.starts_with("site: HELD by erin since "), "{status}");
    assert_eq!(erin.lever_says(), "answered by lever on host-b (epoch 2)");
    erin.say_ops("!version");
    let version = erin.lever_says_within(WAIT, "lever ");
    assert!(version.ends_with(", on host-b (epoch 2)"), "{version}");
    erin.pong();
    assert!(
        erin.collect_for(Duration::from_secs(1), |l| l
            .text()
            .contains("lever is back"))
            .is_empty(),
        "said once"
    );
}

#[test]
fn what_the_active_stored_but_had_not_said_when_it_died_is_said_once_by_the_next() {
    let cluster = postgres::shared();
    let (url, db, server, mut ivan) = setup("ivan");
    let config = pg_config(server.port, &url, "3s", "ship", r#"["true"]"#);
    // host-a says nothing after registering: one line an hour (its alert caps fit that pace).
    let mut a = Lever::start_with_env(
        &config,
        &[
            ("LEVER_STORE__NODE", "host-a"),
            ("LEVER_IRC__BURST", "1"),
            ("LEVER_IRC__LINE_INTERVAL", "1h"),
            ("LEVER_ALERTS__LINES_PER_MINUTE", "1"),
            ("LEVER_ALERTS__LINES_PER_GROUP", "1"),
        ],
    );
    ivan.expect(lever_joined);
    let _b = Lever::start_with_env(&config, &[("LEVER_STORE__NODE", "host-b")]);
    ivan.say_ops("!hold site said by the next");
    let pending = || cluster.psql(&db, "SELECT count(*) FROM log WHERE pending = 1");
    let deadline = Instant::now() + WAIT;
    while pending() != "1" {
        assert!(
            Instant::now() < deadline,
            "the hold never reached the log:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    signal(a.pid(), "KILL");
    assert!(a.wait_exit(WAIT).is_some());
    ivan.expect_within(Duration::from_secs(20), lever_joined);
    let said = ivan.lever_lines_for(Duration::from_secs(3));
    assert_eq!(said.len(), 2, "{said:?}");
    assert_eq!(said[0], "lever is back (on host-b, took over from host-a)");
    like(
        &said[1],
        "[{time}] [ivan] NO DEPLOY PLEASE: site (said by the next) (not announced before lever stopped)",
    );
    assert_eq!(pending(), "0");
    ivan.say_ops("!status site");
    let status = ivan.lever_says();
    assert!(status.starts_with("site: HELD by ivan since "), "{status}");
}

#[test]
fn a_standby_serves_reads_sends_writers_to_the_active_and_takes_over_its_http_side() {
    let (url, _db, server, mut jill) = setup("jill");
    let (mut a, http_a) = lever_with_http(server.port, &url, "host-a");
    jill.expect(lever_joined);
    let (_b, http_b) = lever_with_http(server.port, &url, "host-b");
    let get = |port, path| {
        let (status, body) = http_request(port, "GET", path, None, "");
        (status, json(&body))
    };
    // host-b has seen host-a holding the lease once it names it.
    let deadline = Instant::now() + WAIT;
    while get(http_b, "/healthz").1["active"].is_null() {
        assert!(Instant::now() < deadline, "host-b never saw host-a active");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, health_a) = get(http_a, "/healthz");
    assert_eq!(
        health_a,
        serde_json::json!({"status": "ok", "role": "active", "node": "host-a", "epoch": 1})
    );
    let (_, health_b) = get(http_b, "/healthz");
    let url_a = format!("http://127.0.0.1:{http_a}");
    assert_eq!(
        health_b,
        serde_json::json!({"status": "ok", "role": "standby", "node": "host-b", "epoch": null,
                           "active": {"node": "host-a", "epoch": 1, "url": url_a}})
    );
    assert_eq!(get(http_a, "/readyz").0, 200);
    let (status, ready_b) = get(http_b, "/readyz");
    assert_eq!(status, 503);
    assert_eq!(ready_b["why"][0], "a standby: the active lever is host-a");

    // A hold placed through the active is read through the standby, from the shared store.
    let hold = r#"{"target": "site", "reason": "schema change", "by": "jill"}"#;
    let (status, body) = http_request(http_a, "POST", "/api/v1/holds", Some(TOKEN), hold);
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        jill.lever_says(),
        "NO DEPLOY PLEASE: site held by jill (schema change)"
    );
    let (status, holds) = get(http_b, "/api/v1/holds");
    assert_eq!(status, 200);
    assert_eq!(holds["holds"][0]["reason"], "schema change", "{holds}");
    // A write on the standby is refused, naming the active.
    let lift = "/api/v1/holds/site?by=jill";
    let (status, body) = http_request(http_b, "DELETE", lift, Some(TOKEN), "");
    assert_eq!(status, 503);
    let refused = json(&body);
    assert_eq!(
        refused["error"],
        format!(
            "this lever (host-b) is a standby: send writes to the active lever, host-a at {url_a}"
        )
    );
    assert_eq!(refused["active"]["url"], url_a);
    let metrics = |port| http_request(port, "GET", "/metrics", None, "").1;
    assert!(
        metrics(http_a).contains("lever_active{node=\"host-a\"} 1"),
        "{}",
        metrics(http_a)
    );
    assert!(
        metrics(http_a).contains("lever_lease_epoch 1"),
        "{}",
        metrics(http_a)
    );
    assert!(
        metrics(http_b).contains("lever_active{node=\"host-b\"} 0"),
        "{}",
        metrics(http_b)
    );
    assert!(!metrics(http_b).contains("lever_lease_epoch"));

    // host-a dies: host-b takes over, and its HTTP side with it.
    signal(a.pid(), "KILL");
    assert!(a.wait_exit(WAIT).is_some());
    jill.expect_within(Duration::from_secs(20), lever_joined);
    let (_, health_b) = get(http_b, "/healthz");
    assert_eq!(
        health_b,
        serde_json::json!({"status": "ok", "role": "active", "node": "host-b", "epoch": 2})
    );
    let (status, body) = http_request(http_b, "DELETE", lift, Some(TOKEN), "");
    assert_eq!(status, 200, "{body}");
    let lifted = jill.lever_says_within(WAIT, "DEPLOY OK");
    assert!(lifted.starts_with("DEPLOY OK: "), "{lifted}");
    assert!(
        metrics(http_b).contains("lever_lease_epoch 2"),
        "{}",
        metrics(http_b)
    );
}

#[test]
fn a_lever_paused_past_its_lease_wakes_after_the_takeover_and_says_and_writes_nothing() {
    let cluster = postgres::shared();
    let (url, db, server, mut finn) = setup("finn");
    let config = pg_config(server.port, &url, "3s", "ship", r#"["true"]"#);
    let joined = lever_joined;
    let mut a = Lever::start_with_env(&config, &[("LEVER_STORE__NODE", "host-a")]);
    let a_nick = finn.expect(joined).from;
    let _b = Lever::start_with_env(&config, &[("LEVER_STORE__NODE", "host-b")]);

    signal(a.pid(), "STOP");
    // host-b takes over while host-a sleeps, still connected to IRC.
    let b_nick = finn.expect_within(Duration::from_secs(20), joined).from;
    assert_ne!(a_nick, b_nick);
    let back = finn.expect_within(WAIT, |l| {
        l.from == b_nick && l.text().starts_with("lever is back")
    });
    assert_eq!(
        back.text(),
        "lever is back (on host-b, took over from host-a)"
    );
    // Heard by both: host-a reads it when it wakes.
    finn.say_ops("!hold site while a sleeps");
    let held = finn.expect_within(WAIT, |l| l.from == b_nick && l.verb == "PRIVMSG");
    assert_eq!(
        held.text(),
        "NO DEPLOY PLEASE: site held by finn (while a sleeps)"
    );

    signal(a.pid(), "CONT");
    let status = a.wait_exit(Duration::from_secs(20));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(3),
        "host-a stops once it wakes past its lease:\n{}",
        a.log()
    );
    let after_waking = finn.collect_for(Duration::from_secs(2), |_| true);
    let said_by_a: Vec<&str> = after_waking
        .iter()
        .filter(|l| l.from == a_nick && l.verb == "PRIVMSG")
        .map(|l| l.text())
        .collect();
    assert!(
        said_by_a.is_empty(),
        "host-a spoke after waking: {said_by_a:?}"
    );
    // host-a left IRC on waking; host-b takes the nick back from its alternate.
    assert!(
        after_waking
            .iter()
            .any(|l| l.verb == "NICK" && l.from == b_nick && l.text() == a_nick),
        "{after_waking:?}"
    );
    assert_eq!(
        cluster.psql(
            &db,
            "SELECT string_agg(\"user\" || ':' || kind, ',' ORDER BY id) FROM log"
        ),
        "finn:hold",
        "host-a wrote nothing"
    );
    assert!(a.log().contains("lost leadership"), "{}", a.log());
    assert!(!a.log().contains("panicked"), "{}", a.log());
}

#[test]
fn a_deploy_cut_off_by_the_death_of_the_active_is_announced_interrupted_once_by_the_new_one() {
    let cluster = postgres::shared();
    let (url, db, server, mut gwen) = setup("gwen");
    let config = pg_config(server.port, &url, "3s", "rollout", r#"["sleep", "60"]"#);
    let joined = lever_joined;
    let mut a = Lever::start_with_env(&config, &[("LEVER_STORE__NODE", "host-a")]);
    gwen.expect(joined);
    let _b = Lever::start_with_env(&config, &[("LEVER_STORE__NODE", "host-b")]);
    // The holder deploys through her own hold.
    gwen.say_ops("!hold site only gwen ships today");
    assert!(gwen
        .lever_says()
        .starts_with("NO DEPLOY PLEASE: site held by gwen"));
    gwen.say_ops("!deploy site");
    assert!(gwen.lever_says().starts_with("gwen is deploying site"));
    let deadline = Instant::now() + WAIT;
    while cluster.psql(&db, "SELECT count(*) FROM steps WHERE state = 'running'") != "1" {
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(50));
    }

    signal(a.pid(), "KILL");
    assert!(a.wait_exit(WAIT).is_some());
    gwen.expect_within(Duration::from_secs(20), joined);
    let said = gwen.lever_lines_for(Duration::from_secs(3));
    let interrupted: Vec<&String> = said.iter().filter(|t| t.contains("INTERRUPTED")).collect();
    assert_eq!(interrupted.len(), 1, "announced once: {said:?}");
    assert!(
        interrupted[0].starts_with("site deploy by gwen was INTERRUPTED: lever stopped during step 1/1 'rollout'; site is free again"),
        "{said:?}"
    );
    assert!(
        said.contains(&"lever is back (on host-b, took over from host-a)".to_owned()),
        "{said:?}"
    );
    assert_eq!(
        cluster.psql(&db, "SELECT state FROM runs"),
        "interrupted",
        "not re-run: steps are not idempotent"
    );
    // The hold and the log came through intact.
    assert_eq!(
        cluster.psql(&db, "SELECT string_agg(kind, ',' ORDER BY id) FROM log"),
        "hold,deploy_started,interrupted"
    );
    gwen.say_ops("!status site");
    let status = gwen.lever_says_within(WAIT, "site:");
    assert!(status.starts_with("site: HELD by gwen since "), "{status}");
    // The target is free: a new deploy starts (hers, through her hold).
    gwen.say_ops("!deploy site");
    assert!(gwen
        .lever_says_within(WAIT, "gwen is deploying")
        .starts_with("gwen is deploying site"));
}

#[test]
fn a_database_down_at_start_is_waited_for_and_a_wrong_one_is_refused() {
    let cluster = postgres::Cluster::start();
    let url = cluster.database();
    let server = Ngircd::start();
    let mut hugo = Client::connect(server.port, "hugo");
    hugo.join("#ops");
    let config = |url: &str| {
        bot_config(
            server.port,
            "",
            &format!("[store]\nurl = \"{url}\"\n[targets.site]\n[[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n"),
        )
    };

    cluster.stop();
    let mut lever = Lever::start(&config(&url));
    let deadline = Instant::now() + WAIT;
    while !lever
        .log()
        .contains("waiting for the deploy log's database")
    {
        assert!(
            lever.wait_exit(Duration::from_millis(50)).is_none(),
            "lever gave up instead of waiting:\n{}",
            lever.log()
        );
        assert!(Instant::now() < deadline, "{}", lever.log());
    }
    cluster.restart();
    hugo.expect_within(Duration::from_secs(20), |l| {
        l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops"
    });

    // A database that does not exist is the config's to fix: said, and lever stops.
    let mut wrong = Lever::start(&config(&cluster.url("nosuchdb")));
    let status = wrong.wait_exit(WAIT);
    assert!(status.is_some_and(|s| !s.success()), "{}", wrong.log());
    let said = wrong.log();
    assert!(
        said.contains(&format!("cannot open the store {}: ", cluster.url("nosuchdb")))
            && said.contains("database \"nosuchdb\" does not exist")
            && said.contains("(check [store] url, the password (LEVER_STORE__PASSWORD), and that PostgreSQL is up and reachable)"),
        "{said}"
    );
}
