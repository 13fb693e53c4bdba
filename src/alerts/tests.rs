use super::*;
use crate::commands::tests::bot;
use crate::events::announce::alert_line;
use crate::events::Delivery;
use tokio::sync::mpsc::UnboundedReceiver;

const FIRING: &str = include_str!("../../testdata/payloads/alertmanager-0.25-captured-firing.json");
const RESOLVED: &str =
    include_str!("../../testdata/payloads/alertmanager-0.25-captured-resolved.json");
const TRUNCATED: &str =
    include_str!("../../testdata/payloads/alertmanager-0.25-captured-truncated.json");
const FROM_RULE: &str =
    include_str!("../../testdata/payloads/alertmanager-0.25-captured-from-prometheus-rule.json");

fn hook(text: &str) -> Webhook {
    Webhook::parse(text.as_bytes()).unwrap()
}

/// Everything announced so far, as (channel, line), in the announcer's words.
fn said(rx: &mut UnboundedReceiver<Delivery>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Ok(delivery) = rx.try_recv() {
        if let Event::Alerts { lines, .. } = delivery.event {
            out.extend(lines.iter().map(|(c, l)| (c.clone(), alert_line(l))));
        }
    }
    out
}

fn texts(rx: &mut UnboundedReceiver<Delivery>) -> Vec<String> {
    said(rx).into_iter().map(|(_, t)| t).collect()
}

impl Webhook {
    /// The same group with another severity.
    fn with_severity(mut self, severity: &str) -> Webhook {
        self.common_labels
            .insert("severity".into(), severity.into());
        for alert in &mut self.alerts {
            alert.labels.insert("severity".into(), severity.into());
        }
        self
    }
}

/// A group of `n` alerts named `name`, each on its own instance with its own summary.
fn storm(name: &str, n: usize, status: &str) -> Webhook {
    let alerts: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "status": status,
                "labels": {"alertname": name, "instance": format!("www{i}"), "severity": "critical"},
                "annotations": {"summary": format!("5xx at {i}%")},
                "fingerprint": format!("{name}-{i}"),
            })
        })
        .collect();
    let body = serde_json::json!({
        "version": "4", "status": status, "groupKey": name, "truncatedAlerts": 0,
        "groupLabels": {"alertname": name},
        "commonLabels": {"alertname": name, "severity": "critical"},
        "commonAnnotations": {},
        "alerts": alerts,
    });
    Webhook::parse(body.to_string().as_bytes()).unwrap()
}

#[tokio::test]
async fn captured_notifications_are_announced_once_each() {
    let bot = bot("");
    let mut rx = bot.events.subscribe();
    let first = bot.alerts.receive(&hook(FIRING));
    assert_eq!(
        first,
        Receipt {
            new: 1,
            duplicates: 0,
            lines: 1,
            held_back: 0,
            remembered: 1,
        }
    );
    assert_eq!(
        texts(&mut rx),
        ["[FIRING:1] LeverRigTest0_1795808582 critical — rig test 0"]
    );
    // Alertmanager repeats the group: nothing new to say.
    let again = bot.alerts.receive(&hook(FIRING));
    assert_eq!(
        again,
        Receipt {
            new: 0,
            duplicates: 1,
            lines: 0,
            held_back: 0,
            remembered: 1,
        }
    );
    assert!(texts(&mut rx).is_empty());
    bot.alerts.receive(&hook(RESOLVED));
    assert_eq!(
        texts(&mut rx),
        ["[RESOLVED:1] LeverRigTest0_1795808582 critical — rig test 0"]
    );
    bot.alerts.receive(&hook(FROM_RULE));
    assert_eq!(
        texts(&mut rx),
        ["[FIRING:1] QueueTooDeep warning — 127.0.0.1:18000 — queue depth 42 on 127.0.0.1:18000"]
    );
}

#[tokio::test]
async fn the_runbooks_file_links_an_alert_unless_alertmanager_sent_a_runbook_url() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runbooks.toml");
    std::fs::write(
        &path,
        "[DiskFull]\nurl = \"https://wiki/disk\"\n\
         [HighErrorRate]\nurl = \"https://wiki/errors-from-file\"\ntopics = [\"5xx\"]\n",
    )
    .unwrap();
    let bot = bot(&format!("[alerts]\nrunbooks = \"{}\"\n", path.display()));
    let mut rx = bot.events.subscribe();
    bot.alerts.receive(&hook(TRUNCATED));
    assert_eq!(
        texts(&mut rx)[0],
        "[FIRING:2] DiskFull — web1:9100, web2:9100 — runbook: https://wiki/disk \
         (+1 more Alertmanager did not send)"
    );
    let mut annotated = storm("HighErrorRate", 1, "firing");
    annotated.common_annotations.insert(
        "runbook_url".into(),
        "https://wiki/from-alertmanager".into(),
    );
    bot.alerts.receive(&annotated);
    assert_eq!(
        texts(&mut rx),
        ["[FIRING:1] HighErrorRate critical — www0 — 5xx at 0% — runbook: https://wiki/from-alertmanager"]
    );
    bot.alerts.receive(&storm("QueueTooDeep", 1, "firing"));
    assert_eq!(
        texts(&mut rx),
        ["[FIRING:1] QueueTooDeep critical — www0 — 5xx at 0%"]
    );
}

#[tokio::test]
async fn a_group_with_different_summaries_lists_them_and_says_what_was_truncated() {
    let bot = bot("");
    let mut rx = bot.events.subscribe();
    bot.alerts.receive(&hook(TRUNCATED));
    assert_eq!(
        texts(&mut rx),
        [
            "[FIRING:2] DiskFull — web1:9100, web2:9100 (+1 more Alertmanager did not send)",
            "  web1:9100: disk full on web1",
            "  web2:9100: disk full on web2",
        ]
    );
}

#[tokio::test]
async fn a_storm_is_capped_per_group_and_per_minute_then_summarised() {
    let bot = bot("[alerts]\nlines_per_group = 3\nlines_per_minute = 5\n");
    let mut rx = bot.events.subscribe();
    let now = Instant::now();
    let receipt = bot
        .alerts
        .receive_at(&storm("HighErrorRate", 1000, "firing"), now);
    assert_eq!(receipt.new, 1000);
    assert_eq!(
        texts(&mut rx),
        [
            "[FIRING:1000] HighErrorRate critical — www0, www1, www2, www3, www4, … and 995 more",
            "  www0: 5xx at 0%",
            "  … and 999 more",
        ]
    );
    // More groups inside the same minute: 2 more lines fit, the rest is held back.
    for name in ["DiskFull", "Latency", "Queue"] {
        bot.alerts
            .receive_at(&storm(name, 1, "firing"), now + Duration::from_secs(1));
    }
    assert_eq!(texts(&mut rx).len(), 2);
    bot.alerts.flush_held_back(now + Duration::from_secs(30));
    assert!(
        texts(&mut rx).is_empty(),
        "nothing before the minute is over"
    );
    bot.alerts.flush_held_back(now + Duration::from_secs(61));
    assert_eq!(
        texts(&mut rx),
        ["… held back 1 alert line in the last minute to keep the channel readable: ⚠ Queue ×1 — !alerts lists what is firing"]
    );
}

#[tokio::test]
async fn routes_send_alerts_to_their_channels() {
    let bot =
        bot("[alerts]\nroutes = [{ match = { service = \"deploy\" }, channels = [\"#ops\"] }]\n");
    let mut rx = bot.events.subscribe();
    bot.alerts.receive(&hook(FIRING));
    let lines = said(&mut rx);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].0, "#ops");
}

#[tokio::test]
async fn hostile_labels_cannot_break_lines() {
    let bot = bot("");
    let mut rx = bot.events.subscribe();
    let body = serde_json::json!({
        "version": "4", "status": "firing", "alerts": [{
            "status": "firing",
            "labels": {"alertname": "Evil\r\nQUIT :bye", "instance": "x\u{0001}y"},
            "annotations": {"summary": "line1\nPRIVMSG #ops :pwned"},
            "fingerprint": "f1",
        }],
        "commonLabels": {"alertname": "Evil\r\nQUIT :bye"},
    });
    bot.alerts
        .receive(&Webhook::parse(body.to_string().as_bytes()).unwrap());
    let lines = texts(&mut rx);
    assert_eq!(
        lines,
        ["[FIRING:1] EvilQUIT :bye — xy — line1PRIVMSG #ops :pwned"]
    );
}

#[tokio::test]
async fn an_auto_hold_rule_holds_and_its_resolution_proposes_unhold() {
    let bot = bot(&format!(
        "{}[alerts]\nauto_hold = [{{ match = {{ severity = \"critical\" }}, target = \"site\" }}]\n",
        crate::commands::tests::SITE
    ));
    let mut rx = bot.events.subscribe();
    bot.alerts.receive(&hook(FIRING));
    let holds = bot.deploys.holds().unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].target.as_deref(), Some("site"));
    assert_eq!(holds[0].by_nick, "lever");
    assert_eq!(
        holds[0].reason,
        "alert LeverRigTest0_1795808582: rig test 0"
    );
    let log = bot.store.log(1, None).unwrap();
    assert_eq!(
        log[0].text,
        "NO DEPLOY PLEASE: site (alert LeverRigTest0_1795808582: rig test 0)"
    );
    bot.alerts.receive(&hook(RESOLVED));
    let lines = texts(&mut rx);
    assert_eq!(
        lines.last().unwrap(),
        "LeverRigTest0_1795808582 resolved: the hold lever placed on site for it can go when you are happy — !unhold site"
    );
    assert_eq!(bot.deploys.holds().unwrap().len(), 1, "a person lifts it");
}

#[test]
fn bad_notifications_are_refused_with_the_reason() {
    assert!(Webhook::parse(b"{")
        .unwrap_err()
        .starts_with("not an Alertmanager notification"));
    let v3 = FIRING.replace("\"version\":\"4\"", "\"version\":\"3\"");
    assert!(Webhook::parse(v3.as_bytes())
        .unwrap_err()
        .contains("version \"3\""));
    let odd = FIRING.replace(
        "\"status\":\"firing\",\"labels\"",
        "\"status\":\"burning\",\"labels\"",
    );
    assert!(Webhook::parse(odd.as_bytes())
        .unwrap_err()
        .contains("\"burning\""));
}

#[tokio::test]
async fn critical_alerts_are_named_first_when_held_back() {
    let bot = bot("[alerts]\nlines_per_group = 1\nlines_per_minute = 1\n");
    let mut rx = bot.events.subscribe();
    let now = Instant::now();
    bot.alerts.receive_at(&storm("First", 1, "firing"), now);
    for i in 0..7 {
        bot.alerts.receive_at(
            &storm(&format!("Warn{i}"), 1, "firing").with_severity("warning"),
            now,
        );
    }
    bot.alerts.receive_at(&storm("SiteDown", 1, "firing"), now);
    texts(&mut rx);
    bot.alerts.flush_held_back(now + Duration::from_secs(61));
    assert_eq!(
        texts(&mut rx),
        ["… held back 8 alert lines in the last minute to keep the channel readable: ⚠ SiteDown ×1, \
          Warn0 ×1, Warn1 ×1, Warn2 ×1, Warn3 ×1, and 3 more names — !alerts lists what is firing"]
    );
}

#[tokio::test]
async fn the_de_dup_memory_is_bounded() {
    let bot = bot("[alerts]\nremember_alerts = 250\n");
    let mut rx = bot.events.subscribe();
    let resolved = bot.alerts.receive(&storm("Gone", 100, "resolved"));
    assert_eq!(resolved.remembered, 100);
    let big = bot.alerts.receive(&storm("Big", 300, "firing"));
    assert!(big.remembered <= 250, "{big:?}");
    texts(&mut rx);
    // Resolved alerts went first: every Gone one is news again, the newest Big ones are not.
    let again = bot.alerts.receive(&storm("Gone", 100, "resolved"));
    assert_eq!(again.new, 100, "{again:?}");
    let tail = storm("Big", 300, "firing");
    let recent = Webhook {
        alerts: tail.alerts[200..].to_vec(),
        ..tail
    };
    assert_eq!(bot.alerts.receive(&recent).duplicates, 100);
}
