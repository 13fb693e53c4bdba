//! `GET /metrics`: lever's own counters and gauges, scraped as Prometheus would.

mod support;
use support::*;

const TOKEN: &str = "metrics-test-token-0123";

/// A request to lever's HTTP side, with the hook token when `auth`.
fn http(port: u16, method: &str, path: &str, auth: bool, body: &str) -> (u16, String) {
    http_request(port, method, path, auth.then_some(TOKEN), body)
}

fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_count_commands_requests_runs_and_show_holds() {
    let server = Ngircd::start();
    let mut ops = Client::connect(server.port, "metro");
    ops.join("#ops");
    let site = "[targets.site]\n[[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n";
    let (_lever, port) = start_with_http(server.port, "", TOKEN, site);
    ops.expect(|l| l.verb == "JOIN" && l.from == "lever");

    ops.privmsg("#ops", "!ping");
    ops.expect(|l| l.from == "lever" && l.text() == "pong");
    ops.privmsg("#ops", "!deploy");
    ops.expect(|l| l.from == "lever" && l.text().starts_with("site deployed by metro"));
    assert_eq!(http(port, "POST", "/hooks/deploy", false, "{}").0, 401);
    let (status, _) = http(
        port,
        "POST",
        "/api/v1/holds",
        true,
        r#"{"target":"site","reason":"db","by":"metro"}"#,
    );
    assert_eq!(status, 201);

    let (status, text) = http(port, "GET", "/metrics", false, "");
    assert_eq!(status, 200);
    // Every line is a comment or `name{labels} value`, as the text format requires.
    let line =
        regex::Regex::new(r#"^(# (HELP|TYPE) .+|[a-z_]+(\{([a-z_]+="[^"]*",?)+\})? -?[0-9.e+]+)$"#)
            .unwrap();
    for l in text.lines() {
        assert!(line.is_match(l), "not exposition format: {l:?}");
    }
    assert_eq!(
        sample(&text, r#"lever_commands_total{command="ping",result="ok"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"lever_commands_total{command="deploy",result="ok"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"lever_runs_total{target="site",phase="deploy",outcome="succeeded"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"lever_http_requests_total{route="/hooks/deploy",status="401"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"lever_http_requests_total{route="/api/v1/holds",status="201"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"lever_hold_active{target="site"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"lever_run_active{target="site"}"#),
        Some(0.0)
    );
    assert_eq!(sample(&text, "lever_irc_connected"), Some(1.0));
    assert_eq!(sample(&text, "lever_outbox_dropped"), Some(0.0));
}
