//! The push queue through IRC on a real ngIRCd, with several people in #ops: PushBot's README
//! session (join, join with a partner, out-of-turn refusals, ready, done, the next one pinged),
//! a turn running out with short durations (warned, extended while a run goes on, passed on),
//! a kick, and a restart with three in line.

mod support;
use support::*;

/// lever with a quick `site` target and `[queue]` set to `queue`; `people` in #ops.
fn with_queue<const N: usize>(queue: &str, people: [&str; N]) -> (Ngircd, [Client; N], Lever) {
    let server = Ngircd::start();
    let mut clients = people.map(|nick| {
        let mut client = Client::connect(server.port, nick);
        client.join("#ops");
        client
    });
    let lever = Lever::prepare(&bot_config(
        server.port,
        "",
        &format!(
            "[queue]\n{queue}\n[targets.site]\n[[targets.site.stage]]\nname = \"build\"\nrun = [\"./step.sh\"]\n\
             [[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n"
        ),
    ));
    lever.script("step.sh", "true\n");
    let mut lever = lever;
    lever.launch();
    for client in &mut clients {
        client.expect(|l| l.verb == "JOIN" && l.from == "lever");
    }
    (server, clients, lever)
}

#[test]
fn pushbots_readme_session_one_turn_at_a_time() {
    let (_server, [mut alice, mut bob, mut carol, mut dave], _lever) =
        with_queue("lease = \"10m\"", ["alice", "bob", "carol", "dave"]);
    alice.say_ops("!queue join");
    assert_eq!(
        dave.lever_says(),
        "alice: your turn on site (10 min to stage and deploy; !queue done when finished)"
    );
    bob.say_ops("!q join with carol hotfix for checkout");
    assert_eq!(
        dave.lever_says(),
        "bob (with carol) joined the site queue at #2: hotfix for checkout"
    );
    dave.say_ops("!stage");
    assert_eq!(
        dave.lever_says(),
        "dave: it is alice's turn on site; you are not in its queue: !queue site join"
    );
    bob.say_ops("!deploy");
    assert_eq!(
        dave.lever_says(),
        "bob: it is alice's turn on site; you are #2 in its queue"
    );
    alice.say_ops("!stage");
    assert_eq!(dave.lever_says(), "alice is staging site (1 step)");
    like(&dave.lever_says(), "site staged by alice in {dur}");
    alice.say_ops("!queue ready");
    assert_eq!(dave.lever_says(), "alice is ready on site");
    alice.say_ops("!deploy");
    like(&dave.lever_says(), "alice is deploying site{*}");
    like(&dave.lever_says(), "site deployed by alice in {dur}");
    dave.say_ops("!queue");
    like(
        &dave.lever_says(),
        "site: 1. alice up {dur}, {dur} left, ready · 2. bob (with carol): hotfix for checkout",
    );
    bob.say_ops("!queue done");
    assert_eq!(
        dave.lever_says(),
        "bob: it is not your turn on site (you are #2): !queue site leave to leave the queue"
    );
    alice.say_ops("!queue done");
    assert_eq!(dave.lever_says(), "alice is done with site");
    assert_eq!(
        dave.lever_says(),
        "bob (with carol): your turn on site (10 min to stage and deploy; !queue done when finished)"
    );
    // The partner shares the turn.
    carol.say_ops("!stage");
    assert_eq!(dave.lever_says(), "carol is staging site (1 step)");
    like(&dave.lever_says(), "site staged by carol in {dur}");
    bob.say_ops("!queue done");
    assert_eq!(dave.lever_says(), "bob is done with site");
    // An empty queue holds no one back.
    dave.say_ops("!stage");
    assert_eq!(dave.lever_says(), "dave is staging site (1 step)");
    like(&dave.lever_says(), "site staged by dave in {dur}");
    dave.say_ops("!queue");
    assert_eq!(
        dave.lever_says(),
        "no one is in a queue: !queue join to take a turn"
    );
}

#[test]
fn a_turn_is_warned_goes_on_while_its_run_does_then_passes_to_the_next() {
    // The clock checks turns every second: a 2 s warning window is hit even when a loaded
    // machine delays a check by a second.
    let (_server, [mut eve, mut finn, mut gus], lever) = with_queue(
        "lease = \"4s\"\nwarn_before = \"2s\"",
        ["eve", "finn", "gus"],
    );
    eve.say_ops("!queue join");
    like(
        &gus.lever_says(),
        "eve: your turn on site ({dur} to stage and deploy;{*}",
    );
    finn.say_ops("!queue join");
    like(&gus.lever_says(), "finn joined the site queue at #2");
    like(
        &gus.lever_says_within(WAIT, "eve: your turn on site ends"),
        "eve: your turn on site ends in {dur}; a run in progress extends it",
    );
    like(
        &gus.lever_says_within(WAIT, "eve's turn"),
        "eve's turn on site is over ({dur} passed); next in line is up",
    );
    like(
        &gus.lever_says(),
        "finn: your turn on site ({dur} to stage and deploy; !queue done when finished)",
    );
    // finn's stage outlasts the turn: it goes on until the run is over.
    std::fs::write(lever.path("step.sh"), "#!/bin/sh\nsleep 7\n").unwrap();
    finn.say_ops("!stage");
    assert_eq!(gus.lever_says(), "finn is staging site (1 step)");
    like(
        &gus.lever_says(),
        "finn: your turn on site ends in {dur}{*}",
    );
    assert_eq!(
        gus.lever_says_within(WAIT, "finn's turn"),
        "finn's turn on site goes on while their run does"
    );
    like(
        &gus.lever_says_within(WAIT, "site staged"),
        "site staged by finn in {dur}",
    );
    like(
        &gus.lever_says_within(WAIT, "finn's turn"),
        "finn's turn on site is over ({dur} passed); next in line is up",
    );
}

#[test]
fn a_kick_and_a_restart_with_three_in_line() {
    let (_server, [mut hal, mut ivy, mut jan, mut kim], mut lever) =
        with_queue("", ["hal", "ivy", "jan", "kim"]);
    for (client, nick) in [(&mut hal, "hal"), (&mut ivy, "ivy"), (&mut jan, "jan")] {
        client.say_ops("!queue join");
        let said = kim.lever_says();
        assert!(said.starts_with(nick), "{said}");
    }
    kim.say_ops("!queue kick ivy");
    assert_eq!(kim.lever_says(), "kim took ivy out of the site queue");
    ivy.say_ops("!queue join back again");
    assert_eq!(
        kim.lever_says(),
        "ivy joined the site queue at #3: back again"
    );

    lever.terminate();
    lever.launch();
    kim.expect(|l| l.verb == "JOIN" && l.from == "lever");
    kim.say_ops("!queue");
    like(
        &kim.lever_says(),
        "site: 1. hal up {dur}, {dur} left · 2. jan · 3. ivy: back again",
    );
    kim.say_ops("!stage");
    assert_eq!(
        kim.lever_says(),
        "kim: it is hal's turn on site; you are not in its queue: !queue site join"
    );
    jan.say_ops("!stage");
    assert_eq!(
        kim.lever_says(),
        "jan: it is hal's turn on site; you are #2 in its queue"
    );
}

#[test]
fn the_gate_answers_a_deploy_script_held_closed_someone_elses_turn_or_free() {
    use jiff::ToSpan;
    let server = Ngircd::start();
    let mut lou = Client::connect(server.port, "lou");
    lou.join("#ops");
    let day = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date()
        + 2.days();
    let name = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        [day.weekday().to_monday_zero_offset() as usize];
    let (_lever, http) = start_with_http(
        server.port,
        "",
        "gate-token-0123456789abcdef",
        &format!(
            "[targets.site]\n[[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n\
             [targets.api]\nwindows = [\"{name} 09:00-10:00\"]\n[[targets.api.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n"
        ),
    );
    lou.expect(|l| l.verb == "JOIN" && l.from == "lever");
    let gate = |path: &str| request(http, "GET", path, &[], b"");
    let free = gate("/api/v1/targets/site/gate?by=mo");
    assert_eq!(free.status, 200);
    assert_eq!(free.json()["free"], true);

    lou.say_ops("!queue join");
    lou.lever_says();
    let turn = gate("/api/v1/targets/site/gate?by=mo");
    assert_eq!(turn.status, 423);
    assert_eq!(
        turn.json()["why"],
        serde_json::json!(["it is lou's turn in the site queue"])
    );
    assert_eq!(turn.json()["turn"]["position"], serde_json::Value::Null);
    assert_eq!(
        gate("/api/v1/targets/site/gate?by=lou").status,
        200,
        "lou's own turn"
    );

    lou.say_ops("!hold site db migration");
    lou.lever_says();
    let held = gate("/api/v1/targets/site/gate?by=lou").json();
    assert_eq!(held["held"], true);
    assert_eq!(held["free"], false);

    let closed = gate("/api/v1/targets/api/gate");
    assert_eq!(closed.status, 423);
    let window = &closed.json()["window"];
    assert_eq!(window["open"], false);
    assert!(
        window["next"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{day}T09:00:00")),
        "{window}"
    );
    assert_eq!(gate("/api/v1/targets/nosuch/gate").status, 404);
}

#[test]
fn with_topic_on_the_queue_is_the_channels_topic_changed_at_most_so_often() {
    let (_server, [mut op, mut pat], _lever) =
        with_queue("topic = true\ntopic_every = \"2s\"", ["op", "pat"]);
    // The first to join a channel on ngIRCd is its operator: op lets lever set the topic.
    op.send("MODE #ops +o lever");
    op.expect(|l| l.verb == "MODE" && l.params.get(1).is_some_and(|m| m == "+o"));
    pat.say_ops("!queue join");
    let topic = |client: &mut Client| client.expect(|l| l.verb == "TOPIC" && l.from == "lever");
    assert_eq!(topic(&mut op).text(), "queue: site: pat");
    // A person's topic stands until the queue moves.
    op.send("TOPIC #ops :deploy party at noon");
    op.expect(|l| l.verb == "TOPIC" && l.from == "op");
    op.say_ops("!queue join with pat release notes");
    let moved = std::time::Instant::now();
    assert_eq!(topic(&mut op).text(), "queue: site: pat → op (with pat)");
    assert!(
        moved.elapsed() >= std::time::Duration::from_millis(500),
        "not sooner than topic_every after the last change"
    );
    pat.say_ops("!queue done");
    assert_eq!(topic(&mut op).text(), "queue: site: op (with pat)");
}

#[test]
fn a_queue_and_its_turn_survive_a_takeover() {
    use support::shared_store::{lever_joined, pg_config, setup};
    let (url, _db, server, mut mo) = setup("mo");
    let config =
        pg_config(server.port, &url, "3s", "ship", r#"["true"]"#) + "[queue]\nlease = \"10m\"\n";
    let mut a = Lever::start_with_env(&config, &[("LEVER_STORE__NODE", "host-a")]);
    mo.expect(lever_joined);
    let b = Lever::start_with_env(&config, &[("LEVER_STORE__NODE", "host-b")]);
    b.wait_for_log("standby: another lever is active");
    let mut nell = Client::connect(server.port, "nell");
    nell.join("#ops");
    mo.say_ops("!queue join");
    like(
        &nell.lever_says(),
        "mo: your turn on site ({dur} to stage and deploy;{*}",
    );
    nell.say_ops("!queue join");
    assert_eq!(nell.lever_says(), "nell joined the site queue at #2");

    signal(a.pid(), "KILL");
    assert!(a.wait_exit(WAIT).is_some());
    nell.expect_within(std::time::Duration::from_secs(20), lever_joined);
    assert_eq!(
        nell.lever_says(),
        "lever is back (on host-b, took over from host-a)"
    );
    nell.say_ops("!deploy");
    assert_eq!(
        nell.lever_says(),
        "nell: it is mo's turn on site; you are #2 in its queue"
    );
    nell.say_ops("!queue");
    // The turn goes on from where it was, not from the takeover.
    like(
        &nell.lever_says(),
        "site: 1. mo up {dur}, {dur} left · 2. nell",
    );
    let turns = nell
        .seen
        .iter()
        .filter(|l| l.contains("mo: your turn"))
        .count();
    assert_eq!(turns, 1, "the new active does not start mo's turn again");
}
