//! Graphite as a source, deploy markers out, and `!stats`, through lever's real binary on a
//! real ngIRCd.
//!
//! Graphite-web is not packaged for this test machine's use, so it is mocked from the answers
//! a real graphite-web 1.1.8 gave (`testdata/payloads/graphite-*`): the recorded datapoints are
//! moved to end at the `until` lever asked for, so a graph of "the last minute" has them. The
//! same mock takes Graphite events and Grafana annotations and records them; StatsD is a real
//! UDP socket.

mod support;
use support::mock_http::*;
use support::*;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// The Grafana service-account token lever is given (from the environment, as a secret).
const GRAFANA_TOKEN: &str = "glsa_lever_test_4f1c9b2e";

fn payload(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "testdata", "payloads", name]
        .iter()
        .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A query string's value for `key`.
fn param(query: &str, key: &str) -> Option<String> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// A recorded render answer with its datapoints moved to end at `until`.
fn shifted(recorded: &str, until: i64) -> String {
    let mut series: Value = serde_json::from_str(recorded).expect("recorded JSON");
    for s in series.as_array_mut().into_iter().flatten() {
        let points = s["datapoints"].as_array_mut().expect("datapoints");
        let last = points
            .iter()
            .filter_map(|p| p[1].as_i64())
            .max()
            .unwrap_or(until);
        for p in points.iter_mut() {
            let t = p[1].as_i64().unwrap_or(last);
            p[1] = Value::from(until - (last - t));
        }
    }
    series.to_string()
}

/// Graphite's render API from recordings, and the two marker endpoints.
fn graphite(_state: &mut (), _root: &str, request: &Seen) -> Answer {
    let query = request.query.clone().unwrap_or_default();
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/render") => {
            let until = param(&query, "until")
                .and_then(|u| u.parse().ok())
                .unwrap_or(0);
            let recorded = match param(&query, "target").as_deref() {
                Some("lever.web.latency_ms") => "graphite-1.1.8-captured-render-single.json",
                Some("lever.web.*") => "graphite-1.1.8-captured-render-wildcard.json",
                Some("nosuchFunction(lever.web.errors)") => {
                    let text = payload("graphite-1.1.8-captured-render-error-400.txt");
                    let body = text.lines().next().unwrap_or_default().to_owned();
                    return Answer::text(400, &body);
                }
                // A series of 17 MiB: more than lever reads of an answer.
                Some("lever.huge") => {
                    let huge = format!(
                        "[{{\"target\": \"{}\", \"datapoints\": []}}]",
                        "x".repeat(17 << 20)
                    );
                    return Answer::text(200, &huge);
                }
                _ => "graphite-1.1.8-captured-render-unknown-target.json",
            };
            Answer::text(200, &shifted(&payload(recorded), until))
        }
        ("POST", "/events/") => Answer::text(200, ""),
        ("POST", "/api/annotations") => {
            Answer::text(200, r#"{"id":1,"message":"Annotation added"}"#)
        }
        _ => Answer::text(404, "Not Found"),
    }
}

#[test]
fn graphite_answers_metric_and_graph_and_deploys_are_marked_everywhere() {
    let mock = Mock::start((), graphite);
    let statsd = UdpSocket::bind("127.0.0.1:0").unwrap();
    statsd.set_read_timeout(Some(WAIT)).unwrap();
    let root = mock.root().trim_end_matches('/');
    let rest = format!(
        "[metrics.sources.graphite]\nkind = \"graphite\"\nurl = \"{root}\"\n\
         [metrics.queries.latency]\nquery = \"lever.web.latency_ms\"\nunit = \"ms\"\n\
         [metrics.markers]\ngraphite_url = \"{root}\"\ngrafana_url = \"{root}\"\n\
         statsd = \"{}\"\n\
         [targets.site]\n[[targets.site.deploy]]\nname = \"shipping\"\nrun = [\"true\"]\n",
        statsd.local_addr().unwrap()
    );
    let server = Ngircd::start();
    let mut ana = Client::connect(server.port, "ana");
    ana.join("#ops");
    let lever = Lever::start_with_env(
        &bot_config(server.port, "", &rest),
        &[("LEVER_METRICS__MARKERS__GRAFANA_TOKEN", GRAFANA_TOKEN)],
    );
    ana.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");

    ana.say_ops("!metric latency");
    assert_eq!(ana.lever_says(), "latency: 99 ms");
    ana.say_ops("!metric @graphite lever.web.*");
    assert_eq!(
        ana.lever_says(),
        "lever.web.*: 2 series, highest first: lever.web.latency_ms 99 · lever.web.errors 1"
    );
    ana.say_ops("!metric @graphite lever.nothing");
    assert_eq!(
        ana.lever_says(),
        "lever.nothing: no data (the query matched no series)"
    );
    ana.say_ops("!metric @graphite lever.huge");
    assert_eq!(
        ana.lever_says(),
        "ana: graphite could not run the query: its answer is over 16 MiB; narrow the query (sum, topk, a label filter)"
    );
    ana.say_ops("!metric @graphite nosuchFunction(lever.web.errors)");
    assert_eq!(
        ana.lever_says(),
        "ana: graphite could not run the query: Invalid parameters (Received request for unknown \
         function: nosuchFunction); targets: \"nosuchFunction(lever.web.errors)\" (HTTP 400)"
    );

    // Deploy: the channel hears it, and every metrics system gets a marker.
    ana.say_ops("!deploy");
    ana.lever_says_within(WAIT, "site deployed by ana");
    let mut buf = [0u8; 512];
    let (n, _) = statsd.recv_from(&mut buf).expect("a StatsD packet");
    like(
        std::str::from_utf8(&buf[..n]).unwrap(),
        "deploys.site:1|c\ndeploys.site.duration:{*}|ms",
    );
    mock.wait_for("a Graphite event and a Grafana annotation", |_, seen| {
        seen.iter().filter(|s| s.method == "POST").count() == 2
    });
    let seen = mock.seen();
    let event = seen.iter().find(|s| s.path == "/events/").unwrap();
    let event: Value = serde_json::from_str(&event.body).unwrap();
    assert_eq!(event["what"], "site deploy");
    assert_eq!(event["tags"], serde_json::json!(["deploy", "site"]));
    assert_eq!(event["data"], "site deploy by ana");
    let annotation = seen.iter().find(|s| s.path == "/api/annotations").unwrap();
    assert_eq!(
        annotation.authorization.as_deref(),
        Some(format!("Bearer {GRAFANA_TOKEN}").as_str())
    );
    let body: Value = serde_json::from_str(&annotation.body).unwrap();
    assert_eq!(body["text"], "site deploy by ana");
    assert!(body["timeEnd"].as_i64() >= body["time"].as_i64());
    assert!(
        !lever.log().contains(GRAFANA_TOKEN),
        "the token is never logged"
    );

    // The graph: the recorded points, moved to now, and the deploy marked.
    ana.say_ops("!graph latency 2m");
    let graph = ana.lever_says();
    let parts = like(
        &graph,
        "latency (ms), last 2m: {*} min 99 · max {*} · last 99 ms · | site {*} UTC by ana",
    );
    assert_eq!(parts[1], "131.2");
    let render = mock
        .seen()
        .into_iter()
        .rfind(|s| s.path == "/render")
        .unwrap();
    let query = render.query.unwrap();
    assert_eq!(param(&query, "maxDataPoints").as_deref(), Some("40"));
    assert_eq!(param(&query, "format").as_deref(), Some("json"));
}

#[test]
fn stats_add_up_deploys_failures_and_holds_from_the_store() {
    let server = Ngircd::start();
    let mut bo = Client::connect(server.port, "bo");
    bo.join("#ops");
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("fail");
    let rest = format!(
        "[targets.site]\n[[targets.site.stage]]\nname = \"building\"\nrun = [\"true\"]\n\
         [[targets.site.deploy]]\nname = \"shipping\"\nrun = [\"test\", \"!\", \"-e\", \"{}\"]\n",
        flag.display()
    );
    let _lever = Lever::start(&bot_config(server.port, "", &rest));
    bo.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");

    bo.say_ops("!stats");
    assert_eq!(
        bo.lever_says(),
        "all targets, last 7 days: 0 deploys (0 a day) · no stages · no deploys · never held"
    );
    bo.say_ops("!stage");
    bo.lever_says_within(WAIT, "site staged by bo");
    // A failed deploy, then a good one: one recovery.
    std::fs::write(&flag, "").unwrap();
    bo.say_ops("!deploy");
    bo.lever_says_within(WAIT, "site deploy by bo FAILED");
    std::fs::remove_file(&flag).unwrap();
    bo.say_ops("!deploy");
    bo.lever_says_within(WAIT, "site deployed by bo");
    bo.say_ops("!hold site counting");
    bo.lever_says_within(WAIT, "NO DEPLOY PLEASE");
    std::thread::sleep(Duration::from_millis(1100));
    bo.say_ops("!unhold site");
    bo.lever_says_within(WAIT, "DEPLOY OK");

    bo.say_ops("!stats site 1");
    like(
        &bo.lever_says(),
        "site, last day: 1 deploy (1 a day), 1 of 2 failed (50%) · stage median {dur}, p90 {dur} \
         · deploy median {dur}, p90 {dur} · held {dur} (0% of the time) \
         · failure to next good deploy: mean {dur} over 1",
    );
    bo.say_ops("!stats site 400");
    assert_eq!(bo.lever_says(), "bo: days is a number from 1 to 366");
    bo.say_ops("!stats nosuch");
    like(&bo.lever_says(), "bo: no target 'nosuch'{*}");
}
