//! Alerts end to end against a real Alertmanager: alerts posted to Alertmanager's API, its
//! webhook notifications into lever's `/hooks/alertmanager` (with a bearer token), lever's
//! real binary announcing them on a real ngIRCd, and `!alerts`, `!ack` and `!silence` going
//! back to Alertmanager's API v2. Lines are checked word for word against lever's wording
//! (src/alerts/mod.rs, src/commands/alerts.rs, src/commands/silence.rs).
//!
//! Every test has its own ngIRCd, Alertmanager and lever, so they run in parallel. Timeouts
//! are only guards against hangs; "nothing more was said" is checked by reading for a few of
//! Alertmanager's group intervals and then asking lever for a `pong`.

mod support;
use support::alertmanager::*;
use support::*;

use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

/// lever's `[http] token`, which Alertmanager's webhook presents.
const TOKEN: &str = "alertmanager-to-lever-0123456789";

/// Long enough for Alertmanager to have re-sent anything it was going to re-send.
const QUIET: Duration = Duration::from_secs(3 * GROUP_INTERVAL.as_secs() + 1);

// ---------------------------------------------------------------------------------------------
// The rig: ngIRCd (the test's), Alertmanager notifying lever, lever with [http] and
// [alertmanager].

struct Rig {
    am: Option<Alertmanager>,
    lever: Lever,
    http: u16,
}

impl Rig {
    fn am(&self) -> &Alertmanager {
        self.am.as_ref().expect("this rig has an Alertmanager")
    }

    fn log(&self) -> String {
        self.lever.log()
    }
}

/// Starts Alertmanager (its webhook presenting `webhook_token`) and lever for IRC on
/// `irc_port`, in `channels`, with `rest` added to its config. Without a token, no
/// Alertmanager is started and lever's `[alertmanager] url` names a port nothing listens on.
fn start(irc_port: u16, channels: &[&str], rest: &str, webhook_token: Option<&str>) -> Rig {
    // lever's HTTP port is chosen first (Alertmanager's config names it); a parallel test may
    // take it before lever binds it: then lever exits and both are started again.
    let (lever, http, am) = start_serving_http(|http| {
        let am = webhook_token.map(|token| {
            Alertmanager::start(
                &format!("http://127.0.0.1:{http}/hooks/alertmanager"),
                token,
            )
        });
        let am_url = am.as_ref().map_or_else(
            || format!("http://127.0.0.1:{}", free_port()),
            Alertmanager::url,
        );
        let channel_list: Vec<String> = channels.iter().map(|c| format!("\"{c}\"")).collect();
        let config = bot_config(
            irc_port,
            "",
            &format!(
                "[http]\nlisten = \"127.0.0.1:{http}\"\ntoken = \"{TOKEN}\"\n\n\
                 [alertmanager]\nurl = \"{am_url}\"\n\n{rest}"
            ),
        )
        .replacen(
            "channels = [\"#ops\"]",
            &format!("channels = [{}]", channel_list.join(", ")),
            1,
        );
        (Lever::prepare(&config), am)
    });
    Rig { am, lever, http }
}

fn http_request(
    method: reqwest::Method,
    url: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, String), String> {
    support::alertmanager::http(method, url, bearer, body)
}

/// A client named `nick`, connected and in `channel`.
fn member(port: u16, nick: &str, channel: &str) -> Client {
    let mut client = Client::connect(port, nick);
    client.join(channel);
    client
}

/// Waits until `client` sees lever join `channel`.
fn sees_lever_join(client: &mut Client, channel: &str) {
    client.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == channel);
}

/// Whether `line` is something lever said in `channel`.
fn said_in(line: &Line, channel: &str) -> bool {
    line.verb == "PRIVMSG"
        && line.from == "lever"
        && line.params.first().is_some_and(|c| c == channel)
}

/// The next thing lever says in `channel`, whatever it is.
fn next_said(client: &mut Client, channel: &str) -> String {
    client.expect(|l| said_in(l, channel)).text().to_owned()
}

/// The next thing lever says in `channel` that starts with `prefix` (others are skipped, and
/// still checked by [`transcript`]).
fn hear(client: &mut Client, channel: &str, prefix: &str) -> String {
    hear_within(client, WAIT, channel, prefix)
}

fn hear_within(client: &mut Client, within: Duration, channel: &str, prefix: &str) -> String {
    client
        .expect_within(within, |l| {
            said_in(l, channel) && l.text().starts_with(prefix)
        })
        .text()
        .to_owned()
}

/// Reads for `quiet` (Alertmanager gets the chance to re-send), then has lever answer `!ping`,
/// so everything lever queued before has been read.
fn quiet_then_pong(client: &mut Client, channel: &str, quiet: Duration) {
    client.collect_for(quiet, |_| false);
    client.privmsg(channel, "!ping");
    client.expect(|l| said_in(l, channel) && l.text() == "pong");
}

/// Everything lever said in `channel` that `client` has read, in order, without `pong`s.
fn transcript(client: &Client, channel: &str) -> Vec<String> {
    client
        .seen
        .iter()
        .map(|raw| Line::parse(raw))
        .filter(|l| said_in(l, channel) && l.text() != "pong")
        .map(|l| l.text().to_owned())
        .collect()
}

/// Waits (against a hang) until lever's log holds a line with every one of `parts`.
fn wait_for_lever_log(rig: &Rig, parts: &[&str]) {
    let deadline = Instant::now() + WAIT;
    // lever colours its log even into a file; the colour codes sit between field and value.
    let colours = regex::Regex::new("\x1b\\[[0-9;]*m").unwrap();
    loop {
        let log = colours.replace_all(&rig.log(), "").into_owned();
        if log.lines().any(|l| parts.iter().all(|p| l.contains(p))) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "lever's log has no line with {parts:?} within {WAIT:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A time as Alertmanager writes it (`2026-11-27T22:39:21.667Z`).
fn rfc3339(value: &Value) -> SystemTime {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    humantime::parse_rfc3339_weak(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// 1. Firing and resolved, once each.

#[test]
fn an_alert_is_announced_once_firing_and_once_resolved() {
    let server = Ngircd::start();
    let mut alice = member(server.port, "alice", "#ops");
    let rig = start(server.port, &["#ops"], "", Some(TOKEN));
    sees_lever_join(&mut alice, "#ops");

    let disk = alert(
        &[
            ("alertname", "DiskFull"),
            ("instance", "db1:9100"),
            ("severity", "critical"),
        ],
        &[
            ("summary", "disk / is 97% full"),
            ("runbook_url", "https://runbooks.example/disk-full"),
        ],
    );
    rig.am().fire(std::slice::from_ref(&disk));
    let firing = "[FIRING:1] DiskFull critical — db1:9100 — disk / is 97% full — \
                  runbook: https://runbooks.example/disk-full";
    assert_eq!(hear(&mut alice, "#ops", "["), firing);

    rig.am().resolve(&[disk]);
    let resolved = "[RESOLVED:1] DiskFull critical — db1:9100 — disk / is 97% full — \
                    runbook: https://runbooks.example/disk-full";
    assert_eq!(hear(&mut alice, "#ops", "["), resolved);

    // Nothing more about it, however long Alertmanager has to re-send.
    quiet_then_pong(&mut alice, "#ops", QUIET);
    assert_eq!(transcript(&alice, "#ops"), [firing, resolved]);
}

// ---------------------------------------------------------------------------------------------
// 2. A group that grows: Alertmanager re-sends it whole; lever says only what is new.

#[test]
fn a_group_that_grows_announces_only_the_new_alert() {
    let server = Ngircd::start();
    let mut alice = member(server.port, "alice", "#ops");
    let rig = start(server.port, &["#ops"], "", Some(TOKEN));
    sees_lever_join(&mut alice, "#ops");

    let errors = |host: &str| {
        alert(
            &[
                ("alertname", "HighErrorRate"),
                ("instance", host),
                ("severity", "critical"),
            ],
            &[
                ("summary", &format!("5xx above 2% on {host}")),
                ("runbook_url", "https://runbooks.example/5xx"),
            ],
        )
    };
    rig.am().fire(&[errors("www1")]);
    let first = "[FIRING:1] HighErrorRate critical — www1 — 5xx above 2% on www1 — \
                 runbook: https://runbooks.example/5xx";
    assert_eq!(hear(&mut alice, "#ops", "["), first);

    // www2 joins the group already notified: after group_interval Alertmanager sends the group
    // again, www1 and www2, and lever announces www2 alone.
    rig.am().fire(&[errors("www2")]);
    let second = "[FIRING:1] HighErrorRate critical — www2 — 5xx above 2% on www2 — \
                  runbook: https://runbooks.example/5xx";
    assert_eq!(hear(&mut alice, "#ops", "["), second);
    // The notification held both: one new, one already announced.
    wait_for_lever_log(
        &rig,
        &[
            "alert notification",
            "new=1",
            "duplicates=1",
            "HighErrorRate",
        ],
    );
    quiet_then_pong(&mut alice, "#ops", QUIET);
    assert_eq!(transcript(&alice, "#ops"), [first, second]);

    // Both resolve in one notification: one group line, then a line each (their summaries
    // differ).
    rig.am().resolve(&[errors("www1"), errors("www2")]);
    let resolved = [
        "[RESOLVED:2] HighErrorRate critical — www1, www2 — runbook: https://runbooks.example/5xx",
        "  www1: 5xx above 2% on www1",
        "  www2: 5xx above 2% on www2",
    ];
    assert_eq!(hear(&mut alice, "#ops", "[RESOLVED"), resolved[0]);
    assert_eq!(next_said(&mut alice, "#ops"), resolved[1]);
    assert_eq!(next_said(&mut alice, "#ops"), resolved[2]);
    quiet_then_pong(&mut alice, "#ops", QUIET);
    let mut expected = vec![first, second];
    expected.extend(resolved);
    assert_eq!(transcript(&alice, "#ops"), expected);
}

// ---------------------------------------------------------------------------------------------
// 3. A storm does not flood the channel.

#[test]
fn a_storm_is_capped_per_group_and_per_minute_and_summarised() {
    let server = Ngircd::start();
    let mut alice = member(server.port, "alice", "#ops");
    let rig = start(
        server.port,
        &["#ops"],
        "[alerts]\nlines_per_group = 3\nlines_per_minute = 6\n",
        Some(TOKEN),
    );
    sees_lever_join(&mut alice, "#ops");

    // 200 alerts of one name, each with its own summary: one notification.
    let storm: Vec<Value> = (1..=200)
        .map(|i| {
            alert(
                &[
                    ("alertname", "QueueBacklog"),
                    ("instance", &format!("worker{i:03}")),
                    ("severity", "warning"),
                ],
                &[("summary", &format!("queue {i} is backing up"))],
            )
        })
        .collect();
    rig.am().fire(&storm);
    let header = hear(&mut alice, "#ops", "[");
    assert_eq!(
        header,
        "[FIRING:200] QueueBacklog warning — worker001, worker002, worker003, worker004, \
         worker005, … and 195 more"
    );
    let detail = next_said(&mut alice, "#ops");
    like(&detail, "  worker{word}: queue {word} is backing up");
    assert_eq!(next_said(&mut alice, "#ops"), "  … and 199 more");

    // Five more groups in the same minute: room for three lines, two are held back.
    let others = [
        "CertExpiry",
        "DiskFull",
        "HighLoad",
        "NodeDown",
        "SlowQueries",
    ];
    let other_alerts: Vec<Value> = others
        .iter()
        .map(|name| {
            alert(
                &[
                    ("alertname", name),
                    ("instance", "db1"),
                    ("severity", "warning"),
                ],
                &[("summary", &format!("{name} on db1"))],
            )
        })
        .collect();
    rig.am().fire(&other_alerts);
    let held = hear_within(&mut alice, Duration::from_secs(120), "#ops", "… held back");
    let lines = transcript(&alice, "#ops");
    let alert_lines: Vec<&String> = lines.iter().filter(|l| !l.starts_with("… held")).collect();
    assert_eq!(
        alert_lines.len(),
        6,
        "at most lines_per_minute alert lines in the first minute: {lines:#?}"
    );
    let announced: Vec<&str> = others
        .iter()
        .copied()
        .filter(|name| {
            alert_lines.contains(&&format!("[FIRING:1] {name} warning — db1 — {name} on db1"))
        })
        .collect();
    assert_eq!(announced.len(), 3, "three other groups fit: {lines:#?}");
    let held_names: Vec<String> = others
        .iter()
        .filter(|n| !announced.contains(n))
        .map(|n| format!("{n} ×1"))
        .collect();
    assert_eq!(
        held,
        format!(
            "… held back 2 alert lines in the last minute to keep the channel readable: {} \
             — !alerts lists what is firing",
            held_names.join(", ")
        )
    );

    // A new minute: the cap starts again.
    rig.am().fire(&[alert(
        &[
            ("alertname", "AfterTheStorm"),
            ("instance", "db2"),
            ("severity", "warning"),
        ],
        &[("summary", "a new minute")],
    )]);
    assert_eq!(
        hear(&mut alice, "#ops", "[FIRING:1] AfterTheStorm"),
        "[FIRING:1] AfterTheStorm warning — db2 — a new minute"
    );
    quiet_then_pong(&mut alice, "#ops", QUIET);
    assert_eq!(
        transcript(&alice, "#ops").len(),
        8,
        "six alert lines, the held-back summary, AfterTheStorm: {:#?}",
        transcript(&alice, "#ops")
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Routing by labels.

#[test]
fn routes_send_alerts_to_the_channels_their_labels_match() {
    let server = Ngircd::start();
    let mut alice = member(server.port, "alice", "#ops");
    let mut bob = member(server.port, "bob", "#web");
    let rig = start(
        server.port,
        &["#ops", "#web"],
        "[[alerts.routes]]\nmatch = { team = \"web\" }\nchannels = [\"#web\"]\n\n\
         [[alerts.routes]]\nmatch = { team = \"db\" }\nchannels = [\"#ops\"]\n",
        Some(TOKEN),
    );
    sees_lever_join(&mut alice, "#ops");
    sees_lever_join(&mut bob, "#web");

    let web = alert(
        &[
            ("alertname", "WebDown"),
            ("instance", "web1"),
            ("team", "web"),
        ],
        &[("summary", "web1 answers 503")],
    );
    let db = alert(
        &[("alertname", "DbDown"), ("instance", "db1"), ("team", "db")],
        &[("summary", "db1 refuses connections")],
    );
    let nobody = alert(
        &[("alertname", "ClockSkew"), ("instance", "ntp1")],
        &[("summary", "ntp1 is 3 s off")],
    );
    rig.am().fire(&[web]);
    let web_line = "[FIRING:1] WebDown — web1 — web1 answers 503";
    assert_eq!(hear(&mut bob, "#web", "["), web_line);
    rig.am().fire(&[db]);
    let db_line = "[FIRING:1] DbDown — db1 — db1 refuses connections";
    assert_eq!(hear(&mut alice, "#ops", "["), db_line);
    // No route matches: every channel.
    rig.am().fire(&[nobody]);
    let clock_line = "[FIRING:1] ClockSkew — ntp1 — ntp1 is 3 s off";
    assert_eq!(hear(&mut alice, "#ops", "[FIRING:1] ClockSkew"), clock_line);
    assert_eq!(hear(&mut bob, "#web", "[FIRING:1] ClockSkew"), clock_line);

    quiet_then_pong(&mut alice, "#ops", QUIET);
    quiet_then_pong(&mut bob, "#web", Duration::ZERO);
    assert_eq!(transcript(&alice, "#ops"), [db_line, clock_line]);
    assert_eq!(transcript(&bob, "#web"), [web_line, clock_line]);
}

// ---------------------------------------------------------------------------------------------
// 5. auto_hold: a critical alert holds the target; its resolution proposes !unhold.

#[test]
fn a_critical_alert_holds_the_target_and_its_resolution_proposes_unhold() {
    let server = Ngircd::start();
    let mut alice = member(server.port, "alice", "#ops");
    let rig = start(
        server.port,
        &["#ops"],
        "[[alerts.auto_hold]]\nmatch = { severity = \"critical\" }\ntarget = \"site\"\n\n\
         [targets.site]\n\
         [[targets.site.stage]]\nname = \"build\"\nrun = [\"true\"]\n\
         [[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n",
        Some(TOKEN),
    );
    sees_lever_join(&mut alice, "#ops");

    // A warning places no hold.
    rig.am().fire(&[alert(
        &[
            ("alertname", "SlowPages"),
            ("instance", "web1"),
            ("severity", "warning"),
        ],
        &[("summary", "p99 above 2 s")],
    )]);
    let slow = "[FIRING:1] SlowPages warning — web1 — p99 above 2 s";
    assert_eq!(next_said(&mut alice, "#ops"), slow);

    let down = alert(
        &[
            ("alertname", "SiteDown"),
            ("instance", "web1"),
            ("severity", "critical"),
        ],
        &[("summary", "site returns 503")],
    );
    rig.am().fire(std::slice::from_ref(&down));
    let hold = "NO DEPLOY PLEASE: site held by lever (alert SiteDown: site returns 503)";
    let firing = "[FIRING:1] SiteDown critical — web1 — site returns 503";
    // Both, in either order (the hold's own announcement is published first).
    let mut two = [next_said(&mut alice, "#ops"), next_said(&mut alice, "#ops")];
    two.sort();
    let mut expected = [firing, hold];
    expected.sort();
    assert_eq!(two, expected);

    let refused = "alice: site is held: NO DEPLOY PLEASE by lever since {time} UTC ({dur} ago): \
                   alert SiteDown: site returns 503. !unhold site when it is safe";
    alice.privmsg("#ops", "!deploy site");
    like(&next_said(&mut alice, "#ops"), refused);

    rig.am().resolve(&[down]);
    assert_eq!(
        next_said(&mut alice, "#ops"),
        "[RESOLVED:1] SiteDown critical — web1 — site returns 503"
    );
    assert_eq!(
        next_said(&mut alice, "#ops"),
        "SiteDown resolved: the hold lever placed on site for it can go when you are happy \
         — !unhold site"
    );
    // A person decides: the hold is still there.
    alice.privmsg("#ops", "!deploy site");
    like(&next_said(&mut alice, "#ops"), refused);
    alice.privmsg("#ops", "!unhold site");
    like(
        &next_said(&mut alice, "#ops"),
        "DEPLOY OK: alice lifted lever's hold on site (alert SiteDown: site returns 503, held {dur})",
    );
    quiet_then_pong(&mut alice, "#ops", QUIET);
    let said = transcript(&alice, "#ops");
    assert_eq!(
        said.iter().filter(|l| l.starts_with("NO DEPLOY")).count(),
        1,
        "one hold, for the critical alert only: {said:#?}"
    );
    assert_eq!(said.len(), 8, "nothing else was said: {said:#?}");
}

// ---------------------------------------------------------------------------------------------
// 6. !alerts, !silence and !ack against Alertmanager's API.

/// The one silence in Alertmanager whose matchers are `matchers`; fails listing them all.
fn silence_matching(rig: &Rig, matchers: &Value) -> Value {
    let all = rig.am().silences();
    let found: Vec<&Value> = all.iter().filter(|s| s["matchers"] == *matchers).collect();
    match found[..] {
        [one] => one.clone(),
        _ => panic!("not one silence with matchers {matchers} in Alertmanager: {all:#?}"),
    }
}

fn lasting(silence: &Value) -> Duration {
    rfc3339(&silence["endsAt"])
        .duration_since(rfc3339(&silence["startsAt"]))
        .expect("a silence ends after it starts")
}

/// A matcher as Alertmanager's API v2 lists it.
fn matcher(name: &str, value: &str, is_regex: bool) -> Value {
    json!({"name": name, "value": value, "isRegex": is_regex, "isEqual": true})
}

/// lever's answer to a silence, checked against `template` (`{word}` = the silence id). A wrong
/// answer is noted in `failures` rather than ending the test, so what follows is still
/// checked; the test fails at the end with every note. Alertmanager's side is checked
/// directly.
fn check_answer(
    failures: &mut Vec<String>,
    answer: &str,
    template: &str,
    id_in_alertmanager: &str,
) {
    match try_like(answer, template) {
        Ok(holes) if holes[0] == id_in_alertmanager => {}
        Ok(holes) => failures.push(format!(
            "lever named silence {} but Alertmanager made {id_in_alertmanager}",
            holes[0]
        )),
        Err(why) => failures.push(why),
    }
}

#[test]
fn silences_and_acks_from_irc_reach_alertmanager_and_the_log() {
    let server = Ngircd::start();
    let mut alice = member(server.port, "alice", "#ops");
    let rig = start(server.port, &["#ops"], "", Some(TOKEN));
    sees_lever_join(&mut alice, "#ops");
    let mut failures = Vec::new();

    rig.am().fire(&[
        alert(
            &[("alertname", "DiskFull"), ("instance", "db1")],
            &[("summary", "disk full")],
        ),
        alert(
            &[("alertname", "HighLoad"), ("instance", "web1")],
            &[("summary", "load 40")],
        ),
    ]);
    let mut firing = [
        hear(&mut alice, "#ops", "[FIRING"),
        hear(&mut alice, "#ops", "[FIRING"),
    ];
    firing.sort();
    assert_eq!(
        firing,
        [
            "[FIRING:1] DiskFull — db1 — disk full",
            "[FIRING:1] HighLoad — web1 — load 40"
        ]
    );

    alice.privmsg("#ops", "!alerts");
    assert_eq!(next_said(&mut alice, "#ops"), "2 firing:");
    assert_eq!(next_said(&mut alice, "#ops"), "DiskFull ×1 — db1");
    assert_eq!(next_said(&mut alice, "#ops"), "HighLoad ×1 — web1");

    // !silence: in Alertmanager with who and why, named in the answer and the deploy log.
    alice.privmsg("#ops", "!silence DiskFull 2h deploy in progress");
    let answer = next_said(&mut alice, "#ops");
    let made = silence_matching(&rig, &json!([matcher("alertname", "DiskFull", false)]));
    let id = made["id"].as_str().expect("a silence id").to_owned();
    check_answer(
        &mut failures,
        &answer,
        "alice: silenced alertname=DiskFull for 2 h: deploy in progress (silence {word})",
        &id,
    );
    assert_eq!(made["createdBy"], "alice", "{made:#}");
    assert!(
        made["comment"]
            .as_str()
            .is_some_and(|c| c.contains("deploy in progress")),
        "{made:#}"
    );
    assert_eq!(made["status"]["state"], "active", "{made:#}");
    let two_hours = lasting(&made);
    assert!(
        two_hours <= Duration::from_secs(7200) && two_hours > Duration::from_secs(7200 - 60),
        "a 2 h silence lasts {two_hours:?}: {made:#}"
    );
    alice.privmsg("#ops", "!log 1");
    if let Err(why) = try_like(
        &next_said(&mut alice, "#ops"),
        &format!(
            "[{{time}}] [alice] silenced alertname=DiskFull for 2 h: deploy in progress \
             (silence {id})"
        ),
    ) {
        failures.push(format!("!log 1 after !silence: {why}"));
    }

    // Silenced alerts are not listed as firing.
    alice.privmsg("#ops", "!alerts");
    assert_eq!(next_said(&mut alice, "#ops"), "1 firing:");
    assert_eq!(next_said(&mut alice, "#ops"), "HighLoad ×1 — web1");

    // !ack: an hour.
    alice.privmsg("#ops", "!ack HighLoad");
    let answer = next_said(&mut alice, "#ops");
    let ack = silence_matching(&rig, &json!([matcher("alertname", "HighLoad", false)]));
    check_answer(
        &mut failures,
        &answer,
        "alice: acknowledged alertname=HighLoad for 1 h (silence {word})",
        ack["id"].as_str().expect("a silence id"),
    );
    assert_eq!(ack["createdBy"], "alice", "{ack:#}");
    let an_hour = lasting(&ack);
    assert!(
        an_hour <= Duration::from_secs(3600) && an_hour > Duration::from_secs(3600 - 60),
        "an ack lasts {an_hour:?}: {ack:#}"
    );
    alice.privmsg("#ops", "!alerts");
    assert_eq!(next_said(&mut alice, "#ops"), "nothing is firing");

    // Matchers, regex included, go to Alertmanager as written.
    alice.privmsg("#ops", "!silence alertname=DiskFull,instance=~db.* 30m");
    let answer = next_said(&mut alice, "#ops");
    let regex = silence_matching(
        &rig,
        &json!([
            matcher("alertname", "DiskFull", false),
            matcher("instance", "db.*", true)
        ]),
    );
    check_answer(
        &mut failures,
        &answer,
        "alice: silenced alertname=DiskFull,instance=~db.* for 30 min (silence {word})",
        regex["id"].as_str().expect("a silence id"),
    );
    assert_eq!(rig.am().silences().len(), 3);

    assert!(
        failures.is_empty(),
        "Alertmanager made every silence, but lever's answers were wrong:\n{}",
        failures.join("\n")
    );
}

#[test]
fn silencing_needs_the_alerts_role_but_listing_does_not() {
    let server = Ngircd::start();
    let mut bob = member(server.port, "bob", "#ops");
    let rig = start(
        server.port,
        &["#ops"],
        "[access]\nalerts = [\"*!*@192.0.2.1\"]\n",
        Some(TOKEN),
    );
    sees_lever_join(&mut bob, "#ops");
    rig.am().fire(&[alert(
        &[("alertname", "DiskFull"), ("instance", "db1")],
        &[("summary", "disk full")],
    )]);
    assert_eq!(
        hear(&mut bob, "#ops", "[FIRING"),
        "[FIRING:1] DiskFull — db1 — disk full"
    );

    bob.privmsg("#ops", "!silence DiskFull 2h deploy in progress");
    assert_eq!(
        next_said(&mut bob, "#ops"),
        "bob: !silence needs the alerts role, which you do not have"
    );
    bob.privmsg("#ops", "!ack DiskFull");
    assert_eq!(
        next_said(&mut bob, "#ops"),
        "bob: !ack needs the alerts role, which you do not have"
    );
    bob.privmsg("#ops", "!alerts");
    assert_eq!(next_said(&mut bob, "#ops"), "1 firing:");
    assert_eq!(next_said(&mut bob, "#ops"), "DiskFull ×1 — db1");
    assert_eq!(rig.am().silences(), Vec::<Value>::new());
}

#[test]
fn a_dead_alertmanager_is_named_in_the_answer() {
    let server = Ngircd::start();
    let mut alice = member(server.port, "alice", "#ops");
    let rig = start(server.port, &["#ops"], "", None);
    sees_lever_join(&mut alice, "#ops");
    let url = regex::Regex::new(r#"url = "(http://127\.0\.0\.1:\d+)""#)
        .unwrap()
        .captures(&std::fs::read_to_string(rig.lever.dir.path().join("bot.toml")).unwrap())
        .expect("[alertmanager] url in bot.toml")[1]
        .to_owned();

    for command in ["!alerts", "!silence DiskFull 1h", "!ack DiskFull"] {
        alice.privmsg("#ops", command);
        let why = like(
            &next_said(&mut alice, "#ops"),
            &format!(
                "alice: Alertmanager at {url} did not answer: {{*}} (check [alertmanager] url)"
            ),
        )
        .remove(0);
        assert!(
            why.contains("onnect"),
            "{command}: the reason names the connection: {why:?}"
        );
    }
    alice.privmsg("#ops", "!log");
    assert_eq!(next_said(&mut alice, "#ops"), "the deploy log is empty");
}

// ---------------------------------------------------------------------------------------------
// 7. A webhook with the wrong token is refused and announces nothing.

#[test]
fn a_webhook_with_a_wrong_token_is_refused_and_announces_nothing() {
    let server = Ngircd::start();
    let mut alice = member(server.port, "alice", "#ops");
    let rig = start(
        server.port,
        &["#ops"],
        "",
        Some("not-the-token-lever-knows-000"),
    );
    sees_lever_join(&mut alice, "#ops");
    rig.am().fire(&[alert(
        &[("alertname", "DiskFull"), ("instance", "db1")],
        &[("summary", "disk full")],
    )]);
    // Alertmanager tried, and was told 401.
    rig.am()
        .wait_for_log("unexpected status code 401", Duration::from_secs(30));
    let metrics = http_request(
        reqwest::Method::GET,
        &format!("http://127.0.0.1:{}/metrics", rig.http),
        None,
        None,
    )
    .expect("GET /metrics")
    .1;
    let hooks: Vec<&str> = metrics
        .lines()
        .filter(|l| l.contains("route=\"/hooks/alertmanager\""))
        .collect();
    assert!(
        hooks.iter().any(|l| l.contains("status=\"401\"")),
        "lever counted the 401s: {hooks:#?}"
    );
    assert!(
        hooks.iter().all(|l| l.contains("status=\"401\"")),
        "no notification got through: {hooks:#?}"
    );
    quiet_then_pong(&mut alice, "#ops", QUIET);
    assert_eq!(transcript(&alice, "#ops"), Vec::<String>::new());
}
