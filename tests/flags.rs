//! Feature flags end to end: lever's real binary on a real ngIRCd, flags changed on IRC and
//! over HTTP, and evaluated by clients nobody at lever wrote: OpenFeature's Python SDK with its
//! OFREP provider (PyPI `openfeature-sdk`, `openfeature-provider-ofrep`), and flagd's own
//! evaluator (PyPI `openfeature-provider-flagd`, file mode) reading lever's flagd export.
//! `scripts/setup.sh` installs them in a virtualenv; `tests/clients/openfeature_eval.py` is the
//! application that drives them.

mod support;
use support::*;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// `[http] token`: may read and change flags.
const TOKEN: &str = "http-token-0123456789abcdef";
/// `[flags] tokens.web`: may only read.
const READER: &str = "web-reader-0123456789abcdef";

/// `video`: on/off, a contingency switch; `search`: two variants; `limits`: an object.
const FLAGS: &str = "[flags]\nfile = \"flagd.json\"\n[flags.tokens]\nweb = \"web-reader-0123456789abcdef\"\n\
    [flags.video]\ndescription = \"the video player\"\ndefault = false\ncontingency = true\n\
    [flags.search]\ndefault = \"solr\"\nvariants = { solr = \"solr\", es = \"elastic\" }\n\
    [flags.limits]\ndefault = \"small\"\nvariants = { small = { uploads = 10 }, large = { uploads = 1000 } }\n";

/// lever with `[http]` and [`FLAGS`] (plus `extra`), in #ops with `nick`.
fn lever_with_flags(nick: &str, extra: &str) -> (Ngircd, Client, Lever, u16) {
    let server = Ngircd::start();
    let mut client = Client::connect(server.port, nick);
    client.join("#ops");
    let (lever, http) = start_with_http(server.port, "", TOKEN, &format!("{FLAGS}{extra}"));
    client.expect(|l| l.verb == "JOIN" && l.from == "lever");
    (server, client, lever, http)
}

/// The virtualenv `scripts/setup.sh` makes for the OpenFeature clients.
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("OPENFEATURE_TEST_VENV").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/lever/test-venv"),
        PathBuf::from,
    );
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh (it makes the virtualenv with OpenFeature's SDK)",
        python.display()
    );
    python
}

/// Runs OpenFeature's SDK on `plan` (see `tests/clients/openfeature_eval.py`); its answers.
fn openfeature(plan: Value) -> Vec<Value> {
    let mut child = Command::new(venv_python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/openfeature_eval.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plan.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenFeature client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the client's JSON")
}

/// Evaluations of `flag` (of `kind`, with `default`) for each targeting key.
fn evaluations(flag: &str, kind: &str, default: Value, keys: &[&str]) -> Vec<Value> {
    keys.iter()
        .map(|key| json!({ "flag": flag, "type": kind, "default": default, "key": key }))
        .collect()
}

/// What the OFREP provider says for `evaluations`, reading with `token`.
fn over_ofrep(http: u16, token: &str, evaluations: Vec<Value>) -> Vec<Value> {
    openfeature(json!({
        "provider": "ofrep",
        "url": format!("http://127.0.0.1:{http}"),
        "token": token,
        "evaluations": evaluations,
    }))
}

/// `(value, variant, reason, error)` of each answer.
fn brief(answers: &[Value]) -> Vec<(Value, Value, Value, Value)> {
    answers
        .iter()
        .map(|a| {
            (
                a["value"].clone(),
                a["variant"].clone(),
                a["reason"].clone(),
                a["error"].clone(),
            )
        })
        .collect()
}

fn auth(token: &str) -> Vec<(String, String)> {
    vec![("Authorization".into(), format!("Bearer {token}"))]
}

#[test]
fn the_openfeature_sdk_reads_lever_flags_over_ofrep_and_sees_flips_made_on_irc() {
    let (_server, mut ana, _lever, http) = lever_with_flags("ana", "");
    let video = |keys: &[&str]| {
        over_ofrep(
            http,
            READER,
            evaluations("video", "boolean", json!(true), keys),
        )
    };
    assert_eq!(
        brief(&video(&["alice"])),
        [(json!(false), json!("off"), json!("STATIC"), Value::Null)],
        "the declared default, before any change"
    );
    let limits = over_ofrep(
        http,
        READER,
        evaluations("limits", "object", json!({}), &["alice"]),
    );
    assert_eq!(limits[0]["value"], json!({ "uploads": 10 }));

    ana.say_ops("!flag video on dark launch");
    assert_eq!(ana.lever_says(), "FLAG video on by ana (dark launch)");
    assert_eq!(
        brief(&video(&["alice"]))[0].0,
        json!(true),
        "a flip on IRC is seen at once"
    );

    // A rollout: stable per targeting key, about its share, and SPLIT.
    ana.say_ops("!flag search es 30% canary");
    assert_eq!(ana.lever_says(), "FLAG search es 30% by ana (canary)");
    let keys: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let first = over_ofrep(
        http,
        READER,
        evaluations("search", "string", json!("x"), &keys),
    );
    let again = over_ofrep(
        http,
        READER,
        evaluations("search", "string", json!("x"), &keys),
    );
    assert_eq!(first, again, "the same answer for the same key");
    let es = first.iter().filter(|a| a["value"] == "elastic").count();
    assert!((40..80).contains(&es), "about 30% of 200: {es}");
    assert!(first.iter().all(|a| a["reason"] == "SPLIT"));

    // A private beta: listed keys get the flag whatever else is served.
    ana.say_ops("!flag video off transcoder melting");
    ana.lever_says();
    ana.say_ops("!flag video beta carol,dave qa");
    assert_eq!(ana.lever_says(), "FLAG video beta carol,dave by ana (qa)");
    assert_eq!(
        brief(&video(&["carol", "erin"])),
        [
            (
                json!(true),
                json!("on"),
                json!("TARGETING_MATCH"),
                Value::Null
            ),
            (json!(false), json!("off"), json!("STATIC"), Value::Null),
        ]
    );
    // Disabled: the default, with reason DISABLED.
    ana.say_ops("!flag search disable");
    ana.lever_says();
    let disabled = over_ofrep(
        http,
        READER,
        evaluations("search", "string", json!("x"), &["user-1"]),
    );
    assert_eq!(
        brief(&disabled),
        [(json!("solr"), json!("solr"), json!("DISABLED"), Value::Null)]
    );
    // What the SDK makes of lever's errors.
    let unknown = over_ofrep(
        http,
        READER,
        evaluations("nosuch", "boolean", json!(true), &["a"]),
    );
    assert_eq!(unknown[0]["error"], "FLAG_NOT_FOUND");
    assert_eq!(unknown[0]["value"], true, "the code default");
    let wrong = over_ofrep(
        http,
        "not-a-token-at-all",
        evaluations("video", "boolean", json!(true), &["a"]),
    );
    assert_eq!(wrong[0]["value"], true);
    assert!(wrong[0]["error"].is_string(), "{wrong:?}");

    // The log has every change, with who and why.
    ana.say_ops("!flag video history");
    like(
        &ana.lever_says(),
        "[{time}] [ana] FLAG video beta carol,dave (qa)",
    );
}

#[test]
fn flagds_own_evaluator_reading_the_export_gives_lever_s_answers() {
    let (_server, mut bo, lever, http) = lever_with_flags("bo", "");
    for change in [
        "!flag search es 40% canary",
        "!flag video 25% ramp",
        "!flag video beta vip1,vip2",
    ] {
        bo.say_ops(change);
        bo.lever_says();
    }
    let keys: Vec<String> = (0..150)
        .map(|i| format!("user-{i}"))
        .chain(["vip1".into()])
        .collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut plan = evaluations("search", "string", json!("x"), &keys);
    plan.extend(evaluations("video", "boolean", json!(false), &keys));
    let ofrep = over_ofrep(http, READER, plan.clone());
    // The file lever writes, and the same over HTTP.
    let file = lever.path("flagd.json");
    let flagd = openfeature(json!({ "provider": "flagd", "file": file, "evaluations": plan }));
    let variants = |answers: &[Value]| -> Vec<Value> {
        answers.iter().map(|a| a["variant"].clone()).collect()
    };
    assert_eq!(
        variants(&ofrep),
        variants(&flagd),
        "flagd's evaluator agrees, key for key"
    );
    assert!(
        ofrep.iter().any(|a| a["variant"] == "es") && ofrep.iter().any(|a| a["variant"] == "solr")
    );
    let served = request(http, "GET", "/flags/flagd.json", &auth(READER), b"");
    assert_eq!(served.status, 200);
    assert_eq!(served.header("content-type"), Some("application/json"));
    let on_disk: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(served.json(), on_disk);
    assert_eq!(
        request(http, "GET", "/flags/flagd.json", &[], b"").status,
        401
    );
}

#[test]
fn ofrep_answers_bad_requests_tokens_etags_limits_and_lost_updates_as_the_spec_says() {
    let (_server, mut cy, _lever, http) = lever_with_flags("cy", "");
    let post = |path: &str, token: &str, body: &str| {
        request(http, "POST", path, &auth(token), body.as_bytes())
    };
    let one = "/ofrep/v1/evaluate/flags/video";
    let all = "/ofrep/v1/evaluate/flags";
    let ok = post(one, READER, r#"{"context":{"targetingKey":"alice"}}"#);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("content-type"), Some("application/json"));
    assert_eq!(
        ok.json(),
        json!({ "key": "video", "value": false, "variant": "off", "reason": "STATIC",
                "metadata": { "description": "the video player", "contingency": true, "version": 0 } })
    );
    let api_key = vec![("X-API-Key".to_owned(), READER.to_owned())];
    assert_eq!(
        request(http, "POST", one, &api_key, br#"{"context":{}}"#).status,
        200
    );
    // Bad bodies and contexts, by the spec's error codes.
    let parse = post(one, READER, "{not json");
    assert_eq!(parse.status, 400);
    assert_eq!(parse.json()["errorCode"], "PARSE_ERROR");
    assert_eq!(parse.json()["key"], "video");
    let context = post(one, READER, r#"{"context":{"targetingKey":42}}"#);
    assert_eq!(
        (context.status, context.json()["errorCode"].clone()),
        (400, json!("INVALID_CONTEXT"))
    );
    let bulk_bad = post(all, READER, r#"{"context":"alice"}"#);
    assert_eq!(bulk_bad.status, 400);
    assert_eq!(bulk_bad.json()["errorCode"], "INVALID_CONTEXT");
    let missing = post(
        "/ofrep/v1/evaluate/flags/nosuch",
        READER,
        r#"{"context":{}}"#,
    );
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["errorCode"], "FLAG_NOT_FOUND");
    // Tokens: none, wrong, read-only on a write.
    assert_eq!(request(http, "POST", one, &[], b"{}").status, 401);
    assert_eq!(post(one, "wrong-token-0123456789", "{}").status, 401);
    let change = r#"{"by":"cy","variant":"on","reason":"read-only?"}"#;
    let forbidden = request(
        http,
        "PUT",
        "/api/v1/flags/video",
        &auth(READER),
        change.as_bytes(),
    );
    assert_eq!(forbidden.status, 403, "{forbidden:?}");

    // Bulk: every flag, an ETag, and 304 until a flag changes.
    let bulk = post(all, READER, r#"{"context":{"targetingKey":"alice"}}"#);
    assert_eq!(bulk.status, 200);
    let etag = bulk.header("etag").expect("an ETag").to_owned();
    let keys: Vec<Value> = bulk.json()["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].clone())
        .collect();
    assert_eq!(keys, [json!("video"), json!("search"), json!("limits")]);
    let mut cached = auth(READER);
    cached.push(("If-None-Match".into(), etag.clone()));
    let same = request(
        http,
        "POST",
        all,
        &cached,
        br#"{"context":{"targetingKey":"alice"}}"#,
    );
    assert_eq!(same.status, 304);
    assert_eq!(same.header("etag"), Some(etag.as_str()));
    cy.say_ops("!flag video on");
    cy.lever_says();
    let changed = request(
        http,
        "POST",
        all,
        &cached,
        br#"{"context":{"targetingKey":"alice"}}"#,
    );
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    assert_eq!(changed.json()["flags"][0]["value"], true);

    // Two writers with the same version: one wins, one gets 412, nothing is half done.
    let shown = request(http, "GET", "/api/v1/flags/search", &[], b"");
    let version = shown.header("etag").unwrap().to_owned();
    let put = |variant: &str| {
        let mut headers = auth(TOKEN);
        headers.push(("If-Match".into(), version.clone()));
        let body = format!(r#"{{"by":"cy","variant":"{variant}","reason":"race"}}"#);
        request(
            http,
            "PUT",
            "/api/v1/flags/search",
            &headers,
            body.as_bytes(),
        )
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| put("es"));
        let b = s.spawn(|| put("solr"));
        (a.join().unwrap(), b.join().unwrap())
    });
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412], "{a:?}\n{b:?}");
    let announced = cy.lever_says();
    assert!(announced.starts_with("FLAG search "), "{announced}");
    let after = request(http, "GET", "/api/v1/flags/search", &[], b"").json();
    assert_eq!(after["flag"]["version"], 1);
    assert!(
        cy.collect_for(Duration::from_millis(500), lever_in_ops)
            .is_empty(),
        "the loser changed nothing and announced nothing"
    );
    let bad_change = request(
        http,
        "PUT",
        "/api/v1/flags/search",
        &auth(TOKEN),
        br#"{"by":"cy","variant":"lucene"}"#,
    );
    assert_eq!(bad_change.status, 400);
    assert_eq!(
        bad_change.json()["error"],
        "search has no variant 'lucene'; say one of solr, es"
    );
}

#[test]
fn a_credential_past_its_rate_gets_429_with_retry_after() {
    let server = Ngircd::start();
    let limited = FLAGS.replace("[flags]\n", "[flags]\nrate_limit = 5\n");
    let (_lever, http) = start_with_http(server.port, "", TOKEN, &limited);
    let statuses: Vec<(u16, Option<String>)> = (0..12)
        .map(|_| {
            let reply = request(
                http,
                "POST",
                "/ofrep/v1/evaluate/flags/video",
                &auth(READER),
                br#"{"context":{}}"#,
            );
            (reply.status, reply.header("retry-after").map(str::to_owned))
        })
        .collect();
    assert!(statuses[..5].iter().all(|(s, _)| *s == 200), "{statuses:?}");
    let limited: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!limited.is_empty(), "{statuses:?}");
    assert!(
        limited
            .iter()
            .all(|(_, retry)| retry.as_deref() == Some("1")),
        "{statuses:?}"
    );
}

#[test]
fn flags_are_served_by_a_standby_and_survive_a_takeover() {
    use support::shared_store::{lever_joined, pg_config, setup};
    let (url, _db, server, mut eve) = setup("eve");
    let start = |node: &str| {
        let (lever, http, ()) = start_serving_http(|http| {
            let config = pg_config(server.port, &url, "3s", "ship", r#"["true"]"#)
                + &format!("[http]\nlisten = \"127.0.0.1:{http}\"\ntoken = \"{TOKEN}\"\n{FLAGS}");
            let mut lever = Lever::prepare(&config);
            lever.set_env(&[("LEVER_STORE__NODE", node)]);
            (lever, ())
        });
        (lever, http)
    };
    let (mut a, _) = start("host-a");
    eve.expect(lever_joined);
    let (b, http_b) = start("host-b");
    b.wait_for_log("standby: another lever is active");
    let video_on_b = || {
        let reply = request(
            http_b,
            "POST",
            "/ofrep/v1/evaluate/flags/video",
            &auth(READER),
            br#"{"context":{"targetingKey":"alice"}}"#,
        );
        reply.expect(200)["value"].clone()
    };
    assert_eq!(video_on_b(), json!(false));
    eve.say_ops("!flag video on launch day");
    assert_eq!(eve.lever_says(), "FLAG video on by eve (launch day)");
    // The standby follows the store within its refresh.
    let deadline = std::time::Instant::now() + WAIT;
    while video_on_b() != json!(true) {
        assert!(
            std::time::Instant::now() < deadline,
            "the standby never served the flip"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    signal(a.pid(), "KILL");
    assert!(a.wait_exit(WAIT).is_some());
    eve.expect_within(Duration::from_secs(20), lever_joined);
    assert_eq!(
        eve.lever_says(),
        "lever is back (on host-b, took over from host-a)"
    );
    eve.say_ops("!flag video");
    let shown = eve.lever_says();
    assert!(
        shown.starts_with("video: on · contingency switch (safe: off) · set by eve at "),
        "{shown}"
    );
    assert!(shown.contains(": launch day · version 1"), "{shown}");
    assert_eq!(video_on_b(), json!(true));
}
