//! Levers that survive the loss of what they stand on: the database stopped and started
//! again, a network partition between the active lever and PostgreSQL, and takeover after
//! takeover at random moments. Real PostgreSQL clusters of the tests' own, a real ngIRCd,
//! lever's real binary; the partition is a TCP proxy the test freezes.

mod support;
use support::proxy::Proxy;
use support::shared_store::*;
use support::*;

use std::time::{Duration, Instant};

/// Starts lever `node` on `config`, with `env` too.
fn node(config: &str, node: &str, env: &[(&str, &str)]) -> Lever {
    let mut all = vec![("LEVER_STORE__NODE", node)];
    all.extend_from_slice(env);
    Lever::start_with_env(config, &all)
}

#[test]
fn postgres_restarted_within_the_lease_keeps_the_active_and_a_long_outage_hands_over_cleanly() {
    // A cluster of its own: this test stops it.
    let cluster = postgres::Cluster::start();
    let url = cluster.database();
    let server = Ngircd::start();
    let mut kim = Client::connect(server.port, "kim");
    kim.join("#ops");
    // A long lease, so a restart of the database fits well inside it.
    let config = pg_config(server.port, &url, "12s", "ship", r#"["true"]"#);
    let mut a = node(&config, "host-a", &[]);
    kim.expect(lever_joined);
    let b = node(&config, "host-b", &[]);
    b.wait_for_log("standby: another lever is active");

    cluster.stop();
    std::thread::sleep(Duration::from_millis(500));
    cluster.restart();
    kim.say_ops("!hold site after the restart");
    assert_eq!(
        kim.lever_says_within(Duration::from_secs(20), "NO DEPLOY PLEASE"),
        "NO DEPLOY PLEASE: site held by kim (after the restart)",
        "host-a carries on:\n{}",
        a.log()
    );
    assert!(a.running(), "host-a kept its lease:\n{}", a.log());
    assert!(!b.log().contains("active: this lever holds the lease"));

    // Down for longer than the lease: host-a stops acting before its lease can end, and once
    // the database is back host-b takes over.
    cluster.stop();
    let status = a.wait_exit(Duration::from_secs(30));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(3),
        "host-a exits for its supervisor to bring it back as a standby:\n{}",
        a.log()
    );
    let quit = kim.expect_within(WAIT, |l| l.verb == "QUIT" && l.from == "lever");
    assert!(quit.text().contains("lever"), "{}", quit.text());
    assert!(a.log().contains("lost leadership"), "{}", a.log());
    assert!(
        kim.collect_for(Duration::from_millis(500), lever_joined)
            .is_empty(),
        "nobody acts while the database is down"
    );
    cluster.restart();
    kim.expect_within(Duration::from_secs(30), lever_joined);
    assert_eq!(
        kim.lever_says(),
        "lever is back (on host-b, took over from host-a)"
    );
    kim.say_ops("!status site");
    let status = kim.lever_says();
    assert!(status.starts_with("site: HELD by kim since "), "{status}");
    // host-a, started again by its supervisor, waits as standby: no crash loop.
    a.launch();
    a.wait_for_log("standby: another lever is active");
    assert!(a.running());
}

#[test]
fn an_active_cut_off_from_postgres_leaves_before_the_standby_takes_over_and_never_acts_again() {
    let cluster = postgres::shared();
    let (url, db, server, mut lee) = setup("lee");
    let proxy = Proxy::start(cluster.port);
    // host-a reaches the database only through the proxy; host-b directly.
    let through = url.replace(&format!(":{}/", cluster.port), &format!(":{}/", proxy.port));
    let mut a = node(
        &pg_config(server.port, &through, "3s", "ship", r#"["true"]"#),
        "host-a",
        &[],
    );
    let a_nick = lee.expect(lever_joined).from;
    let _b = node(
        &pg_config(server.port, &url, "3s", "ship", r#"["true"]"#),
        "host-b",
        &[],
    );
    lee.say_ops("!hold site before the partition");
    lee.lever_says_within(WAIT, "NO DEPLOY PLEASE");

    proxy.freeze();
    // Everything lever says from now on, in order.
    let seen = lee.collect_for(Duration::from_secs(12), |l| {
        l.from.starts_with("lever") && matches!(l.verb.as_str(), "QUIT" | "JOIN" | "PRIVMSG")
    });
    let at = |matches: &dyn Fn(&Line) -> bool| seen.iter().position(matches);
    let a_quit = at(&|l| l.verb == "QUIT" && l.from == a_nick)
        .unwrap_or_else(|| panic!("host-a never left IRC: {seen:?}\n{}", a.log()));
    let b_joined = at(&|l| lever_joined(l)).expect("host-b never joined");
    assert!(
        a_quit < b_joined,
        "host-a left before host-b came: {seen:?}"
    );
    assert_eq!(
        seen[b_joined + 1].text(),
        "lever is back (on host-b, took over from host-a)"
    );
    assert_eq!(
        a.wait_exit(WAIT).and_then(|s| s.code()),
        Some(3),
        "{}",
        a.log()
    );

    assert!(!a.log().contains("panicked"), "{}", a.log());
    // Healed: host-a, started again, finds host-b active and waits.
    proxy.thaw();
    a.launch();
    a.wait_for_log("standby: another lever is active");
    lee.say_ops("!unhold site");
    let lifted = lee.lever_says();
    assert!(
        lifted.starts_with("DEPLOY OK: lee lifted the hold on site"),
        "{lifted}"
    );
    assert_eq!(
        cluster.psql(&db, "SELECT node || ' ' || epoch FROM lever_lease"),
        "host-b 2"
    );
    assert_eq!(
        cluster.psql(
            &db,
            "SELECT string_agg(\"user\" || ':' || kind, ',' ORDER BY id) FROM log"
        ),
        "lee:hold,lee:unhold",
        "host-a wrote nothing while cut off"
    );
}

/// What a line lever said in #ops announces, as the deploy log's kinds name it: said when it
/// happened, or said late by the next lever ("[time] [who] <log text> (not announced …)").
fn announces(line: &str) -> Option<&'static str> {
    const LATE: &str = " (not announced before lever stopped)";
    if let Some(logged) = line.strip_suffix(LATE) {
        let text = logged.splitn(3, "] ").nth(2).unwrap_or("");
        return Some(match text {
            t if t.starts_with("NO DEPLOY PLEASE") => "hold",
            t if t.starts_with("DEPLOY OK") => "unhold",
            t if t.starts_with("starting deploy of") => "deploy_started",
            t if t.starts_with("site deployed") => "deployed",
            t if t.starts_with("site deploy interrupted") => "interrupted",
            t if t.starts_with("site deploy failed") => "failed",
            t if t.starts_with("site deploy cancelled") => "cancelled",
            other => panic!("said late, unknown: {other}"),
        });
    }
    Some(match line {
        // Replies to mo ("mo: mo is deploying site right now; …") announce nothing.
        l if l.starts_with("mo: ") => return None,
        l if l.starts_with("NO DEPLOY PLEASE:") => "hold",
        l if l.starts_with("DEPLOY OK:") => "unhold",
        l if l.contains(" is deploying site") => "deploy_started",
        l if l.starts_with("site deployed by") => "deployed",
        l if l.contains(" was INTERRUPTED") => "interrupted",
        l if l.contains(" FAILED ") => "failed",
        l if l.contains(" CANCELLED") => "cancelled",
        _ => return None,
    })
}

#[test]
fn twenty_takeovers_at_random_moments_say_every_record_once_and_one_lever_acts_per_epoch() {
    let cluster = postgres::shared();
    let (url, db, server, mut mo) = setup("mo");
    let config = pg_config(server.port, &url, "3s", "rollout", r#"["sleep", "0.4"]"#);
    // Paced, so a round's lines take about a second to go out and the kills land in the midst
    // of them as often as not: stored, some said, the rest for the next lever.
    let paced = [
        ("LEVER_IRC__BURST", "2"),
        ("LEVER_IRC__LINE_INTERVAL", "250ms"),
    ];
    let node = |name: &str| node(&config, name, &paced);
    let mut levers = vec![node("node-0")];
    mo.expect(lever_joined);
    let mut said: Vec<String> = Vec::new();
    let from_lever =
        |l: &Line| l.verb == "PRIVMSG" && l.from.starts_with("lever") && l.params[0] == "#ops";
    // What any lever said in #ops within `within`.
    let heard = |mo: &mut Client, within: Duration| -> Vec<String> {
        mo.collect_for(within, from_lever)
            .into_iter()
            .map(|l| l.text().to_owned())
            .collect()
    };
    // What the levers say until they have been quiet for a second and a half.
    let until_quiet = |mo: &mut Client| -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(line) = mo.next_line(Duration::from_millis(1500)) {
            if from_lever(&line) {
                lines.push(line.text().to_owned());
            }
        }
        lines
    };
    const ROUNDS: usize = 20;
    for round in 1..=ROUNDS {
        let standby = node(&format!("node-{round}"));
        standby.wait_for_log("standby: another lever is active");
        levers.push(standby);
        // Some of everything the log records, then the active dies at a random moment: before,
        // while or after it stores and says them.
        mo.say_ops(&format!("!hold site round {round}"));
        mo.say_ops("!unhold site");
        mo.say_ops("!deploy site");
        said.extend(heard(
            &mut mo,
            Duration::from_millis(fastrand::u64(0..1200)),
        ));
        let active = levers.len() - 2;
        signal(levers[active].pid(), "KILL");
        assert!(levers[active].wait_exit(WAIT).is_some());
        // What the dead one said just before it died is still arriving: kept too.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = mo.next_line(left).expect("no lever took over");
            if from_lever(&line) {
                said.push(line.text().to_owned());
            }
            if lever_joined(&line) {
                break;
            }
        }
        // The new active says what it has to (the takeover, what the dead one left unsaid)
        // before the next round begins.
        said.extend(until_quiet(&mut mo));
    }

    // Each takeover said once, by the lever that took over.
    let back: Vec<&String> = said
        .iter()
        .filter(|l| l.starts_with("lever is back"))
        .collect();
    let expected: Vec<String> = (1..=ROUNDS)
        .map(|r| format!("lever is back (on node-{r}, took over from node-{})", r - 1))
        .collect();
    assert_eq!(back, expected.iter().collect::<Vec<_>>());
    let late = said
        .iter()
        .filter(|l| l.ends_with("(not announced before lever stopped)"));
    eprintln!("said late by the next lever: {}", late.count());

    assert_eq!(
        cluster.psql(&db, "SELECT count(*) FROM log WHERE pending = 1"),
        "0",
        "every entry said"
    );
    // Each kind of record as often in the channel as in the log.
    let kinds = cluster.psql(&db, "SELECT kind FROM log ORDER BY id");
    let mut logged_kinds: Vec<&str> = kinds.lines().collect();
    logged_kinds.sort_unstable();
    let mut said_kinds: Vec<&str> = said.iter().filter_map(|l| announces(l)).collect();
    said_kinds.sort_unstable();
    assert_eq!(
        said_kinds, logged_kinds,
        "said once each, none missing:\n{said:#?}"
    );
    // Each round's hold, if stored, said exactly once.
    for round in 1..=ROUNDS {
        let reason = format!("(round {round})");
        let stored = cluster.psql(
            &db,
            &format!("SELECT count(*) FROM log WHERE kind = 'hold' AND text LIKE '%{reason}'"),
        );
        let told = said
            .iter()
            .filter(|l| l.contains("NO DEPLOY PLEASE") && l.contains(&reason))
            .count();
        assert_eq!(told.to_string(), stored, "round {round}: {said:#?}");
    }
    // No epoch had two actives: each was taken once, by one node, in order.
    let taken = regex::Regex::new(r#"holds the lease node="([^"]+)" epoch=(\d+)"#).unwrap();
    let mut epochs: Vec<(i64, String)> = levers
        .iter()
        .flat_map(|lever| {
            taken
                .captures_iter(&lever.log())
                .map(|c| (c[2].parse().unwrap(), c[1].to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    epochs.sort();
    let numbers: Vec<i64> = epochs.iter().map(|(e, _)| *e).collect();
    assert_eq!(
        numbers,
        (1..=ROUNDS as i64 + 1).collect::<Vec<_>>(),
        "{epochs:?}"
    );
    for (epoch, node) in &epochs {
        assert_eq!(node, &format!("node-{}", epoch - 1));
    }
}

#[test]
fn alertmanager_pointed_at_every_lever_gets_each_alert_said_once_through_a_takeover() {
    use support::alertmanager::{alert, Alertmanager};
    let (url, _db, server, mut ned) = setup("ned");
    let (mut a, http_a) = lever_with_http(server.port, &url, "host-a");
    ned.expect(lever_joined);
    let (b, http_b) = lever_with_http(server.port, &url, "host-b");
    b.wait_for_log("standby: another lever is active");
    let hook = |port: u16| format!("http://127.0.0.1:{port}/hooks/alertmanager");
    let am = Alertmanager::start_for(&[&hook(http_a), &hook(http_b)], TOKEN);
    let disk = |host: &str| {
        alert(
            &[
                ("alertname", "DiskFull"),
                ("severity", "critical"),
                ("instance", host),
            ],
            &[("summary", "disk / is 97% full")],
        )
    };
    let mut said: Vec<String> = Vec::new();
    let mut hear = |ned: &mut Client, what: &str| {
        let line = ned.lever_says_within(Duration::from_secs(30), what);
        said.push(line.clone());
        line
    };

    am.fire(&[disk("db1")]);
    assert!(hear(&mut ned, "[FIRING:1] DiskFull").contains("db1"));

    // The active dies; an alert fires while no lever is active. The standby keeps it, takes
    // over and says it.
    signal(a.pid(), "KILL");
    assert!(a.wait_exit(WAIT).is_some());
    am.fire(&[alert(
        &[
            ("alertname", "QueueBacklog"),
            ("severity", "warning"),
            ("instance", "worker1"),
        ],
        &[],
    )]);
    let back = hear(&mut ned, "lever is back");
    assert_eq!(back, "lever is back (on host-b, took over from host-a)");
    assert!(hear(&mut ned, "[FIRING:1] QueueBacklog").contains("worker1"));
    assert!(
        b.log().contains("alerts another lever kept, said now"),
        "said from what host-b kept as standby:\n{}",
        b.log()
    );

    // A new alert joins the DiskFull group: Alertmanager sends the group again, db1 with it.
    // host-b never said db1 itself, but knows it was said.
    am.fire(&[disk("db1"), disk("db2")]);
    assert!(hear(&mut ned, "[FIRING:1] DiskFull").contains("db2"));
    am.resolve(&[disk("db1")]);
    assert!(hear(&mut ned, "[RESOLVED:1] DiskFull").contains("db1"));
    said.extend(
        ned.collect_for(Duration::from_secs(5), |l| {
            l.from.starts_with("lever") && l.verb == "PRIVMSG"
        })
        .into_iter()
        .map(|l| l.text().to_owned()),
    );
    let alert_lines: Vec<&String> = said
        .iter()
        .filter(|l| l.starts_with("[FIRING") || l.starts_with("[RESOLVED"))
        .collect();
    assert_eq!(alert_lines.len(), 4, "each said once: {alert_lines:#?}");
}
