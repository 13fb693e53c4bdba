//! `/hooks/alertmanager` fed directly with hostile and repeated notifications: text from an
//! alert never reaches the IRC wire as a command, and a re-sent group is said once.

mod support;
use support::*;

const TOKEN: &str = "alert-hook-test-token-0123";

/// POSTs `body` to lever's `path` with the hook token.
fn post(port: u16, path: &str, body: &str) -> (u16, String) {
    http_request(port, "POST", path, Some(TOKEN), body)
}

#[test]
fn alert_text_cannot_become_irc_commands_and_repeats_are_said_once() {
    let server = Ngircd::start();
    let mut ops = Client::connect(server.port, "watch");
    ops.join("#ops");
    let (_lever, port) = start_with_http(server.port, "", TOKEN, "");
    ops.expect(|l| l.verb == "JOIN" && l.from == "lever");
    let hostile = serde_json::json!({
        "version": "4", "status": "firing", "groupKey": "{}:{alertname=\"Evil\"}",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "Evil\r\nQUIT :bye", "instance": "web1\u{0}"},
            "annotations": {"summary": "disk full\r\nPRIVMSG #ops :pwned\nKICK #ops watch"},
            "fingerprint": "e1",
        }],
        "commonLabels": {"alertname": "Evil\r\nQUIT :bye"},
        "commonAnnotations": {"summary": "disk full\r\nPRIVMSG #ops :pwned\nKICK #ops watch"},
    })
    .to_string();
    let (status, body) = post(port, "/hooks/alertmanager", &hostile);
    assert_eq!(status, 200, "{body}");
    // Alertmanager re-sends the same group: nothing new to say.
    let (status, body) = post(port, "/hooks/alertmanager", &hostile);
    assert_eq!(
        (status, body.contains("\"duplicates\":1")),
        (200, true),
        "{body}"
    );
    ops.privmsg("#ops", "!ping");
    let mut said = Vec::new();
    loop {
        let line = ops.expect(|l| l.from == "lever" || l.verb == "KICK" || l.verb == "QUIT");
        assert_eq!(
            line.verb, "PRIVMSG",
            "lever sent something other than a PRIVMSG: {}",
            line.raw
        );
        if line.text() == "pong" {
            break;
        }
        said.push(line.text().to_owned());
    }
    assert_eq!(
        said,
        ["[FIRING:1] EvilQUIT :bye — web1 — disk fullPRIVMSG #ops :pwnedKICK #ops watch"],
        "one line, control characters gone, said once"
    );
}

#[test]
fn alerts_carry_the_runbook_link_and_alertmanagers_own_wins() {
    let server = Ngircd::start();
    let mut ops = Client::connect(server.port, "watch");
    ops.join("#ops");
    let runbooks = format!("{}/plugins/runbooks.toml", env!("CARGO_MANIFEST_DIR"));
    let alerts = format!("[alerts]\nrunbooks = \"{runbooks}\"\n");
    let (_lever, port) = start_with_http(server.port, "", TOKEN, &alerts);
    ops.expect(|l| l.verb == "JOIN" && l.from == "lever");
    let group = |name: &str, annotations: serde_json::Value| {
        serde_json::json!({
            "version": "4", "status": "firing", "groupKey": format!("{{}}:{{alertname=\"{name}\"}}"),
            "alerts": [{"status": "firing", "labels": {"alertname": name, "severity": "critical"},
                        "annotations": annotations, "fingerprint": format!("{name}-1")}],
            "commonLabels": {"alertname": name, "severity": "critical"},
            "commonAnnotations": annotations,
        })
        .to_string()
    };
    let from_file = group(
        "HighErrorRate",
        serde_json::json!({"summary": "5xx above 2%"}),
    );
    assert_eq!(post(port, "/hooks/alertmanager", &from_file).0, 200);
    like(
        &ops.lever_says(),
        "{*}HighErrorRate{*}runbook: https://wiki.example.com/runbooks/high-error-rate{*}",
    );
    let own = group(
        "SiteDown",
        serde_json::json!({"summary": "no answer", "runbook_url": "https://runbooks.example/site-down"}),
    );
    assert_eq!(post(port, "/hooks/alertmanager", &own).0, 200);
    let line = ops.lever_says();
    like(
        &line,
        "{*}SiteDown{*}runbook: https://runbooks.example/site-down{*}",
    );
    assert!(!line.contains("wiki.example.com"), "{line}");
}
