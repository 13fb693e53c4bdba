//! Shared metrics against a real Prometheus (Debian's `prometheus`, started per test on a free
//! loopback port, scraping a page this test serves every second), through lever's real binary
//! on a real ngIRCd: `!metric` (named, raw, several series, errors from Prometheus itself),
//! `!graph` with the deploy mark, and a deploy watch that sees the metric its deploy raised.

mod support;
use support::prometheus::{MetricsPage, Prometheus};
use support::*;

use std::path::Path;
use std::time::Duration;

/// The page before any deploy: an error rate of 2, and a counter with two series.
const BEFORE: &str = "# TYPE lever_test_error_rate gauge\nlever_test_error_rate 2\n\
    # TYPE lever_test_requests_total counter\n\
    lever_test_requests_total{code=\"200\",handler=\"/deploy\"} 1027\n\
    lever_test_requests_total{code=\"500\",handler=\"/deploy\"} 3\n";

/// What a bad deploy leaves: five times the error rate.
const AFTER: &str = "# TYPE lever_test_error_rate gauge\nlever_test_error_rate 10\n";

/// Long enough for a watch of a few seconds to report, with Prometheus scraping every second.
const WATCH_WAIT: Duration = Duration::from_secs(30);

/// Prometheus scraping a page that starts as [`BEFORE`], once it has seen it.
fn prometheus(dir: &Path) -> (MetricsPage, Prometheus) {
    let page = MetricsPage::serve(dir.join("metrics.prom"));
    page.set(BEFORE);
    let prometheus = Prometheus::start(page.port);
    prometheus.wait_for_value("lever_test_error_rate", "2");
    (page, prometheus)
}

fn metrics_config(prometheus: &Prometheus) -> String {
    format!(
        "[metrics]\nwatch_every = \"1s\"\n\
         [metrics.sources.prom]\nkind = \"prometheus\"\nurl = \"{}\"\n\
         graph_url = \"{}/graph?g0.expr={{query}}&g0.range_input={{range}}\"\n\
         [metrics.sources.dead]\nkind = \"prometheus\"\nurl = \"http://127.0.0.1:{}\"\ntimeout = \"2s\"\n\
         [metrics.queries.errors]\nsource = \"prom\"\nquery = \"lever_test_error_rate\"\nunit = \"req/s\"\n",
        prometheus.url(),
        prometheus.url(),
        free_port()
    )
}

/// A server, lever on `config`, and a client per nick in #ops once lever has joined.
fn start(config: impl Fn(u16) -> String, nicks: &[&str]) -> (Ngircd, Vec<Client>, Lever) {
    let server = Ngircd::start();
    let mut clients: Vec<Client> = nicks
        .iter()
        .map(|nick| {
            let mut c = Client::connect(server.port, nick);
            c.join("#ops");
            c
        })
        .collect();
    let lever = Lever::start(&config(server.port));
    for client in &mut clients {
        client.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");
    }
    (server, clients, lever)
}

#[test]
fn metric_and_graph_read_prometheus_and_say_plainly_what_went_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let (_page, prometheus) = prometheus(dir.path());
    let access = "[access]\nmetrics = [\"*!~ana@127.0.0.1\"]\n";
    let rest = format!("{access}{}", metrics_config(&prometheus));
    let (_server, mut clients, _lever) = start(|port| bot_config(port, "", &rest), &["ana", "bo"]);
    let [ana, bo] = &mut clients[..] else {
        unreachable!()
    };

    ana.say_ops("!metric errors");
    assert_eq!(ana.lever_says(), "errors: 2 req/s");
    ana.say_ops("!metric lever_test_requests_total");
    assert_eq!(
        ana.lever_says(),
        "lever_test_requests_total: 2 series, highest first: {code=\"200\"} 1027 · {code=\"500\"} 3"
    );
    ana.say_ops("!metric lever_test_nothing_here");
    assert_eq!(
        ana.lever_says(),
        "lever_test_nothing_here: no data (the query matched no series)"
    );
    ana.say_ops("!metric 1/0");
    assert_eq!(ana.lever_says(), "1/0 is +Inf (a division by zero?)");
    ana.say_ops("!metric 0/0");
    assert_eq!(
        ana.lever_says(),
        "0/0 is NaN: the source had nothing to compute it from (0/0, or no change to take a rate of)"
    );
    ana.say_ops("!metric sum(");
    like(
        &ana.lever_says(),
        "ana: prom could not run the query: bad_data: invalid parameter \"query\": {*} parse error: {*} (HTTP 400)",
    );
    ana.say_ops("!metric @dead up");
    like(
        &ana.lever_says(),
        "ana: dead at http://127.0.0.1:{*} did not answer: {*} (check [metrics.sources.dead] url)",
    );

    // Raw expressions need the metrics role; named ones do not.
    bo.say_ops("!metric up");
    // bo heard everything said to ana first.
    assert_eq!(
        bo.lever_says_within(WAIT, "bo: "),
        "bo: 'up' is not a named metric (named: errors); other expressions need the metrics role"
    );
    bo.say_ops("!metric errors");
    assert_eq!(bo.lever_says(), "errors: 2 req/s");

    prometheus.wait_for_value("count_over_time(lever_test_error_rate[1m]) >= bool 4", "1");
    bo.say_ops("!graph errors 1m");
    let graph = bo.lever_says();
    let [spark, link] = &like(
        &graph,
        "errors (req/s), last 1m: {*} min 2 · max 2 · last 2 req/s · {*}",
    )[..] else {
        unreachable!()
    };
    assert!(
        spark.trim().chars().all(|c| c == '▄' || c == ' '),
        "{graph}"
    );
    assert_eq!(
        link,
        &format!(
            "{}/graph?g0.expr=lever_test_error_rate&g0.range_input=1m",
            prometheus.url()
        )
    );
    bo.say_ops("!graph errors 60d");
    assert_eq!(
        bo.lever_says(),
        "bo: a graph's range is between 1m and 30d, e.g. 30m, 6h, 7d"
    );
}

/// A target whose deploy step makes the error rate five times what it was.
fn watched_site(dir: &Path, rule: &str) -> String {
    std::fs::write(dir.join("after.prom"), AFTER).unwrap();
    format!(
        "[targets.site]\nwatch = [{rule}]\n\
         [[targets.site.deploy]]\nname = \"shipping\"\nrun = [\"cp\", \"{}\", \"{}\"]\n",
        dir.join("after.prom").display(),
        dir.join("metrics.prom").display()
    )
}

#[test]
fn a_deploy_that_raises_errors_is_called_out_and_auto_hold_holds_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let (_page, prometheus) = prometheus(dir.path());
    let site = watched_site(
        dir.path(),
        "{ metric = \"errors\", max_ratio = 2.0, for = \"20s\", auto_hold = true }",
    );
    let rest = format!("{}{site}", metrics_config(&prometheus));
    let (_server, mut clients, _lever) = start(|port| bot_config(port, "", &rest), &["ana"]);
    let ana = &mut clients[0];
    // Some history before the deploy, for the graph at the end.
    prometheus.wait_for_value("count_over_time(lever_test_error_rate[1m]) >= bool 8", "1");

    ana.say_ops("!deploy");
    ana.lever_says_within(WAIT, "site deployed");
    assert_eq!(
        ana.lever_says_within(WATCH_WAIT, "REGRESSION"),
        "REGRESSION after site deploy #1 by ana: errors is 5× its level before the deploy \
         (10 req/s now, 2 req/s before; limit 2×); lever is holding site (auto_hold)"
    );
    assert_eq!(
        ana.lever_says(),
        "NO DEPLOY PLEASE: site held by lever (errors 5× its level before site deploy #1 by ana)"
    );
    ana.say_ops("!deploy");
    like(&ana.lever_says(), "ana: site is held: NO DEPLOY PLEASE by lever since {time} UTC ({dur} ago): errors 5× its level before site deploy #1 by ana. !unhold site when it is safe");
    ana.say_ops("!log 2");
    let log = [ana.lever_says(), ana.lever_says()];
    like(
        &log[0],
        "[{time}] [lever] NO DEPLOY PLEASE: site (errors 5× its level before site deploy #1 by ana)",
    );
    like(
        &log[1],
        "[{time}] [lever] REGRESSION after site deploy #1 by ana: {*}",
    );

    // The graph of the last minute shows the jump, and the deploy just before it.
    prometheus.wait_for_value("min_over_time(lever_test_error_rate[3s])", "10");
    ana.say_ops("!graph errors 1m");
    let graph = ana.lever_says();
    let parts = like(
        &graph,
        "errors (req/s), last 1m: {*} min 2 · max 10 · last 10 req/s · | site {*} UTC by ana · {*}",
    );
    let spark = parts[0].trim();
    let (before, after) = spark.split_once('|').expect("the deploy is marked");
    assert!(before.trim().chars().all(|c| c == '▁'), "{graph}");
    assert!(after.contains('█'), "{graph}");
}

#[test]
fn a_deploy_that_changes_nothing_gets_one_all_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (_page, prometheus) = prometheus(dir.path());
    let rest = format!(
        "{}[targets.site]\nwatch = [{{ metric = \"errors\", max_ratio = 2.0, for = \"4s\" }}]\n\
         [[targets.site.deploy]]\nname = \"shipping\"\nrun = [\"true\"]\n",
        metrics_config(&prometheus)
    );
    let (_server, mut clients, _lever) = start(|port| bot_config(port, "", &rest), &["cy"]);
    let cy = &mut clients[0];
    cy.say_ops("!deploy");
    cy.lever_says_within(WAIT, "site deployed");
    assert_eq!(
        cy.lever_says_within(WATCH_WAIT, "site deploy #1"),
        "site deploy #1 by cy looks healthy after 4 s: errors 1× its level before"
    );
    // Nothing more: no regression, no second all-clear.
    let more = cy.collect_for(Duration::from_secs(3), lever_in_ops);
    assert!(more.is_empty(), "{more:?}");
}

#[test]
fn a_watch_cut_short_by_a_crash_is_taken_up_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (_page, prometheus) = prometheus(dir.path());
    let rest = format!(
        "{}[targets.site]\nwatch = [{{ metric = \"errors\", max_ratio = 2.0, for = \"8s\" }}]\n\
         [[targets.site.deploy]]\nname = \"shipping\"\nrun = [\"true\"]\n",
        metrics_config(&prometheus)
    );
    let (_server, mut clients, mut lever) = start(|port| bot_config(port, "", &rest), &["eve"]);
    let eve = &mut clients[0];
    eve.say_ops("!deploy");
    eve.lever_says_within(WAIT, "site deployed");
    lever.crash_and_restart();
    eve.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");
    assert_eq!(
        eve.lever_says_within(WATCH_WAIT, "site deploy #1"),
        "site deploy #1 by eve looks healthy after 8 s: errors 1× its level before"
    );
    // Once: a second restart finds the report and leaves the deploy alone.
    lever.crash_and_restart();
    eve.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");
    let more = eve.collect_for(Duration::from_secs(3), lever_in_ops);
    assert!(more.is_empty(), "{more:?}");
}

#[test]
fn without_a_baseline_the_watch_says_it_cannot_watch() {
    let dir = tempfile::tempdir().unwrap();
    let (_page, prometheus) = prometheus(dir.path());
    let rest = format!(
        "{}[metrics.queries.ghost]\nsource = \"prom\"\nquery = \"lever_test_never_there\"\n\
         [targets.site]\nwatch = [{{ metric = \"ghost\", max_ratio = 2.0, for = \"3s\" }}]\n\
         [[targets.site.deploy]]\nname = \"shipping\"\nrun = [\"true\"]\n",
        metrics_config(&prometheus)
    );
    let (_server, mut clients, _lever) = start(|port| bot_config(port, "", &rest), &["di"]);
    let di = &mut clients[0];
    di.say_ops("!deploy");
    assert_eq!(
        di.lever_says_within(WATCH_WAIT, "could not watch"),
        "could not watch ghost after site deploy #1 by di: it had no data in the 30 min before the deploy"
    );
}
