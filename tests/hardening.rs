//! Hardening from issue 17, each through the path lever really takes: access masks against
//! sources as the IRC session parses them, signed webhooks on real HTTP, sanitised text over
//! real IRC and HTTP, bounded alert de-dup, and the outbox under a flood.

mod support;
use support::*;

use std::path::PathBuf;
use std::sync::Arc;
use tokio::time::Instant;

use lever::access::{Access, Role};
use lever::config::Config;
use lever::irc::state::Conn;

// ---------------------------------------------------------------------------------------------
// 1. Access masks never match across an `@` or `!` inside a part of the source
// ---------------------------------------------------------------------------------------------

/// A session past registration whose config grants admin to `admin_mask`, as lever builds it.
fn welcomed_conn(admin_mask: &str) -> (Conn, Access, Instant) {
    let text = format!(
        "[irc]\nserver = \"irc.test\"\nnickname = \"lever\"\nchannels = [\"#ops\"]\n\
         [access]\nadmin = [\"{admin_mask}\"]\n"
    );
    let cfg = Config::from_toml(&text, "test", PathBuf::from(".")).unwrap();
    let access = Access::from_config(cfg.access.as_ref()).unwrap();
    let now = Instant::now();
    let mut conn = Conn::new(Arc::new(cfg), "lever test", now);
    for line in [":s 001 lever :hi", ":s 376 lever :end"] {
        conn.handle(line, now).unwrap();
    }
    (conn, access, now)
}

#[test]
fn a_mask_does_not_match_across_an_at_or_bang_inside_the_source() {
    let (mut conn, access, now) = welcomed_conn("*!*@10.0.0.*");
    let mut is_admin = |source: &str| {
        let line = format!(":{source} PRIVMSG #ops :!deploy");
        let msg = conn
            .handle(&line, now)
            .unwrap()
            .unwrap_or_else(|| panic!("{line:?} should be a message"));
        access.allows(&msg, Role::Admin)
    };
    // The honest source still matches.
    assert!(is_admin("bob!~bob@10.0.0.5"));
    // A fake server or bridge: the host is whatever follows the last '@', and a user part
    // holding '@' or '!' cannot be trusted to mean anything.
    assert!(!is_admin("nick!evil@10.0.0.5@real.host"));
    assert!(!is_admin("nick!ev!il@10.0.0.5"));
    assert!(!is_admin("nick!x@real.host!y@10.0.0.5"));
    assert!(!is_admin("ni@10.0.0.5!x@10.0.0.6"));
}

// ---------------------------------------------------------------------------------------------
// Real lever, real ngIRCd, real HTTP
// ---------------------------------------------------------------------------------------------

/// The hook and API token of [`Rig`]'s lever.
const TOKEN: &str = "hardening-token-0123456789";

/// ngIRCd, a client `alice` in #ops, and lever's real binary in #ops with `[http]` up on
/// loopback and the targets `site` and `api`.
struct Rig {
    client: Client,
    lever: Lever,
    http: u16,
    _server: Ngircd,
}

impl Rig {
    fn start(irc_extra: &str, rest: &str) -> Rig {
        let server = Ngircd::start();
        let mut client = Client::connect(server.port, "alice");
        client.join("#ops");
        let (lever, http) = start_with_http(
            server.port,
            irc_extra,
            TOKEN,
            &format!(
                "{rest}\n\
                 [targets.site]\n[[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n\
                 [targets.api]\n[[targets.api.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n"
            ),
        );
        client.expect(|l| l.verb == "JOIN" && l.from == "lever");
        Rig {
            client,
            lever,
            http,
            _server: server,
        }
    }

    /// POSTs JSON with the token; the status and body.
    fn post(&self, path: &str, body: &serde_json::Value) -> (u16, String) {
        http_request(self.http, "POST", path, Some(TOKEN), &body.to_string())
    }

    /// Every text lever stored: the deploy log's users and texts, and the holds' names and
    /// reasons, read from its SQLite file.
    fn stored_texts(&self) -> Vec<String> {
        let db = rusqlite::Connection::open_with_flags(
            self.lever.dir.path().join("lever.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open lever's store");
        let mut texts = Vec::new();
        for query in [
            "SELECT user, text FROM log ORDER BY id",
            "SELECT by_nick || ' ' || by_source, reason FROM holds ORDER BY placed_at",
        ] {
            let mut statement = db.prepare(query).expect(query);
            let rows = statement
                .query_map([], |row| {
                    Ok(format!(
                        "{}: {}",
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?
                    ))
                })
                .expect(query);
            texts.extend(rows.map(|r| r.expect("a row")));
        }
        texts
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Bidi and C1 controls are stripped like C0 controls
// ---------------------------------------------------------------------------------------------

/// Bidi controls (embeddings, overrides, isolates, marks) and C1 controls.
fn is_bidi_or_c1(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{0080}'..='\u{009F}')
}

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.chars().any(is_bidi_or_c1),
        "{what} still holds a bidi or C1 control: {text:?}"
    );
}

#[test]
fn bidi_and_c1_controls_never_reach_the_log_or_the_channel() {
    let mut rig = Rig::start("", "");

    // Over IRC: "db migration" would show reversed from the override on.
    rig.client
        .say_ops("!hold site db\u{202E} noitargim\u{0085}\u{200F} now\u{2066}!");
    let said = rig.client.lever_says();
    assert_clean("the hold announcement", &said);
    assert_eq!(
        said,
        "NO DEPLOY PLEASE: site held by alice (db noitargim now!)"
    );
    rig.client.say_ops("!log 1");
    let logged = rig.client.lever_says();
    assert_clean("the !log reply", &logged);
    like(
        &logged,
        "[{time}] [alice] NO DEPLOY PLEASE: site (db noitargim now!)",
    );

    // Over HTTP: a hold and a deploy report.
    let (status, body) = rig.post(
        "/api/v1/holds",
        &serde_json::json!({"target": "api", "by": "bo\u{202E}b", "reason": "fre\u{0085}eze\u{061C} \u{202B}x"}),
    );
    assert_eq!(status, 201, "{body}");
    assert_clean("the API's answer", &body);
    let said = rig.client.lever_says();
    assert_clean("the HTTP hold's announcement", &said);
    assert_eq!(said, "NO DEPLOY PLEASE: api held by bob (freeze x)");
    let (status, body) = rig.post(
        "/hooks/deploy",
        &serde_json::json!({
            "user": "car\u{2067}ol", "target": "site", "status": "failed",
            "version": "v\u{202D}1", "message": "smoke\u{009B} test\u{2069} failed",
        }),
    );
    assert_eq!(status, 201, "{body}");
    let said = rig.client.lever_says();
    assert_clean("the deploy report's announcement", &said);
    assert_eq!(
        said,
        "site deploy by carol v1 FAILED (via token): smoke test failed"
    );

    let stored = rig.stored_texts();
    for text in &stored {
        assert_clean("the store", text);
    }
    assert_eq!(
        stored,
        [
            "alice: NO DEPLOY PLEASE: site (db noitargim now!)",
            "bob: NO DEPLOY PLEASE: api (freeze x)",
            "carol: site deploy v1 FAILED (smoke test failed; via token)",
            "alice alice!~alice@127.0.0.1: db noitargim now!",
            "bob bob!api@token: freeze x",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// 4. The alert de-dup memory stays bounded
// ---------------------------------------------------------------------------------------------

/// The de-dup memory's default cap (`[alerts] remember_alerts`).
const REMEMBERED_ALERTS: u64 = 4096;

/// An Alertmanager notification (version 4) for the group `name`, one firing alert per
/// fingerprint, each on its own instance.
fn firing_group(name: &str, fingerprints: impl Iterator<Item = String>) -> serde_json::Value {
    let alerts: Vec<serde_json::Value> = fingerprints
        .map(|fp| {
            serde_json::json!({
                "status": "firing",
                "labels": {"alertname": name, "instance": fp},
                "annotations": {"summary": "down"},
                "fingerprint": fp,
            })
        })
        .collect();
    serde_json::json!({
        "version": "4", "status": "firing", "groupKey": name, "receiver": "lever",
        "groupLabels": {"alertname": name}, "commonLabels": {"alertname": name},
        "commonAnnotations": {"summary": "down"}, "alerts": alerts,
    })
}

#[test]
fn the_alert_de_dup_memory_stays_bounded_through_20000_distinct_alerts() {
    // One line per group and no per-minute cap to speak of, so every group is said.
    let mut rig = Rig::start(
        "",
        "[alerts]\nlines_per_group = 1\nlines_per_minute = 1000\n",
    );
    let post = |rig: &Rig, body: &serde_json::Value| -> serde_json::Value {
        let (status, answer) = rig.post("/hooks/alertmanager", body);
        assert_eq!(status, 200, "{answer}");
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
    };
    let mut most = 0;
    for batch in 0..21 {
        let group = firing_group(
            &format!("Storm{batch}"),
            (0..1000).map(|i| format!("storm-{batch}-{i}")),
        );
        let answer = post(&rig, &group);
        assert_eq!(answer["new"], 1000, "{answer}");
        let remembered = answer["remembered"]
            .as_u64()
            .unwrap_or_else(|| panic!("no \"remembered\" count in {answer}"));
        assert!(
            remembered <= REMEMBERED_ALERTS,
            "after {} distinct alerts lever remembers {remembered}, more than {REMEMBERED_ALERTS}",
            (batch + 1) * 1000
        );
        most = most.max(remembered);
    }
    assert!(most > 1000, "the memory is used at all: {most}");

    // De-dup still works for what is recent: sent twice, announced once.
    let recent = firing_group("Recent", std::iter::once("recent-1".to_owned()));
    let first = post(&rig, &recent);
    assert_eq!(
        (first["new"].as_u64(), first["duplicates"].as_u64()),
        (Some(1), Some(0)),
        "{first}"
    );
    let again = post(&rig, &recent);
    assert_eq!(
        (again["new"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(1)),
        "{again}"
    );
    rig.client.say_ops("!ping");
    let mut said = Vec::new();
    loop {
        let line = rig.client.lever_says();
        if line == "pong" {
            break;
        }
        said.push(line);
    }
    let storms = said
        .iter()
        .filter(|l| l.starts_with("[FIRING:1000] Storm"))
        .count();
    let recents: Vec<&String> = said.iter().filter(|l| l.contains("Recent")).collect();
    assert_eq!(storms, 21, "{said:#?}");
    assert_eq!(
        recents,
        ["[FIRING:1] Recent — recent-1 — down"],
        "{said:#?}"
    );
}
