//! The HTTP side end to end: lever's real binary on a real ngIRCd with `[http]` on a loopback
//! port, requests written byte for byte over a plain `TcpStream` (HTTP/1.1, one request per
//! connection), and a raw IRC client in #ops that hears what lever announces. Texts are checked
//! word for word against lever's wording (src/announce.rs, src/deploy/, src/http/).

mod support;
use support::*;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Credentials and config.

/// `[http] token`: logged as "token".
const TOKEN: &str = "default-token-0123456789";
/// `[http] tokens.ci`.
const CI_TOKEN: &str = "ci-token-0123456789abcdef";
/// `[http] hmac_secrets.github`.
const GITHUB_SECRET: &str = "github-secret-0123456789";

/// `site` (stage with a version, then deploy) and `api` (deploy only).
const TARGETS: &str = "[targets.site]\nversion = [\"sh\", \"-c\", \"echo v$LEVER_RUN_ID\"]\n\
     [[targets.site.stage]]\nname = \"build\"\nrun = [\"true\"]\n\
     [[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n\
     [targets.api]\n[[targets.api.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n";

/// lever's config: IRC on `irc_port`, `[http]` on `http_port` with every kind of credential
/// (and `http_extra` lines in that section), and [`TARGETS`].
fn config(irc_port: u16, http_port: u16, http_extra: &str) -> String {
    bot_config(
        irc_port,
        "",
        &format!(
            "[http]\nlisten = \"127.0.0.1:{http_port}\"\ntoken = \"{TOKEN}\"\n\
             tokens = {{ ci = \"{CI_TOKEN}\" }}\nhmac_secrets = {{ github = \"{GITHUB_SECRET}\" }}\n\
             {http_extra}\n{TARGETS}"
        ),
    )
}

/// HMAC-SHA256 of `body` under `secret` as `sha256=<hex>` (GitHub's signature), computed
/// here, independently of lever (and checked against lever's own `sign_body`).
fn signature(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("any key length");
    mac.update(body);
    let ours = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(ours, lever::http::auth::sign_body(secret, body));
    ours
}

/// Now, in unix seconds, as a sender stamps `X-Lever-Timestamp`.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64
}

/// lever's own signed request headers: `X-Lever-Timestamp` and an HMAC-SHA256 of
/// `"{timestamp}.{body}"`, computed here independently of lever.
fn lever_signed(secret: &str, timestamp: i64, body: &[u8]) -> Vec<(String, String)> {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("any key length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let ours = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(ours, lever::http::auth::sign(secret, timestamp, body));
    vec![
        ("X-Lever-Timestamp".into(), timestamp.to_string()),
        ("X-Lever-Signature".into(), ours),
    ]
}

/// A delivery id no request has used, as GitHub gives each delivery.
fn new_delivery_id() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// GitHub's signed request headers: an HMAC-SHA256 of the body and a delivery id.
fn github_signed(secret: &str, delivery: Option<&str>, body: &[u8]) -> Vec<(String, String)> {
    let mut headers = vec![("X-Hub-Signature-256".into(), signature(secret, body))];
    if let Some(id) = delivery {
        headers.push(("X-GitHub-Delivery".into(), id.into()));
    }
    headers
}

/// What a request proves it may do.
#[derive(Clone, Copy)]
enum Cred<'a> {
    None,
    Bearer(&'a str),
    /// A signature header (`X-Lever-Signature`, `X-Hub-Signature-256`) under a secret.
    Signed(&'a str, &'a str),
}

impl Cred<'_> {
    fn headers(self, body: &[u8]) -> Vec<(String, String)> {
        match self {
            Cred::None => Vec::new(),
            Cred::Bearer(token) => vec![("Authorization".into(), format!("Bearer {token}"))],
            Cred::Signed(header, secret) if header.eq_ignore_ascii_case("X-Lever-Signature") => {
                lever_signed(secret, unix_now(), body)
            }
            Cred::Signed(_, secret) => github_signed(secret, Some(&new_delivery_id()), body),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// lever with its HTTP side up.

/// Starts lever on `irc_port` with `[http]` on a free port, once `/healthz` answers.
fn start_lever(irc_port: u16, http_extra: &str) -> (Lever, u16) {
    let (lever, http, ()) =
        start_serving_http(|http| (Lever::prepare(&config(irc_port, http, http_extra)), ()));
    (lever, http)
}

/// ngIRCd, a client `alice` in #ops, and lever in #ops with its HTTP side up.
struct Rig {
    client: Client,
    lever: Lever,
    http: u16,
    _server: Ngircd,
    markers: usize,
}

impl Rig {
    fn start(http_extra: &str) -> Rig {
        let server = Ngircd::start();
        let mut client = Client::connect(server.port, "alice");
        client.join("#ops");
        let (lever, http) = start_lever(server.port, http_extra);
        client.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");
        let rig = Rig {
            client,
            lever,
            http,
            _server: server,
            markers: 0,
        };
        // Ready is set as the JOIN goes out; wait (against a hang) for it to show.
        let deadline = Instant::now() + WAIT;
        while rig.get("/readyz").status != 200 {
            assert!(
                Instant::now() < deadline,
                "never ready:\n{}",
                rig.lever.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        rig
    }

    fn get(&self, path: &str) -> Reply {
        request(self.http, "GET", path, &[], b"")
    }

    fn post(&self, path: &str, cred: Cred, body: &Value) -> Reply {
        self.post_raw(path, cred, &serde_json::to_vec(body).unwrap())
    }

    fn post_raw(&self, path: &str, cred: Cred, body: &[u8]) -> Reply {
        request(self.http, "POST", path, &cred.headers(body), body)
    }

    fn delete(&self, path: &str, cred: Cred) -> Reply {
        request(self.http, "DELETE", path, &cred.headers(b""), b"")
    }

    /// `POST /api/v1/holds` with the default token.
    fn hold(&self, body: Value) -> Reply {
        self.post("/api/v1/holds", Cred::Bearer(TOKEN), &body)
    }

    /// The deploy log's entries, newest first.
    fn log(&self) -> Vec<Value> {
        let log = self.get("/api/v1/log").expect(200);
        log["entries"].as_array().expect("entries").clone()
    }

    /// The `text` of every log entry, newest first.
    fn log_texts(&self) -> Vec<String> {
        self.log()
            .iter()
            .map(|e| e["text"].as_str().expect("text").to_owned())
            .collect()
    }

    fn say(&mut self, text: &str) {
        self.client.privmsg("#ops", text);
    }

    /// The next thing lever says in #ops.
    fn next_said(&mut self) -> String {
        self.client.expect(said).text().to_owned()
    }

    /// Announces a marker (a build report), and returns every line lever sent before it: what
    /// lever said in between, and nothing else, since announcements keep their order.
    fn until_marker(&mut self) -> Vec<Line> {
        self.markers += 1;
        let job = format!("marker-{}", self.markers);
        self.post(
            "/hooks/build",
            Cred::Bearer(TOKEN),
            &json!({"job": job, "status": "success"}),
        )
        .expect(202);
        let end = format!("build {job} SUCCESS");
        let deadline = Instant::now() + WAIT;
        let mut before = Vec::new();
        loop {
            let left = deadline.checked_duration_since(Instant::now());
            match left.and_then(|left| self.client.next_line(left)) {
                Some(line) if said(&line) && line.text() == end => return before,
                Some(line) if line.from == "lever" => before.push(line),
                Some(_) => {}
                None => panic!(
                    "marker {end:?} never said; last lines:\n{}",
                    self.client.seen[self.client.seen.len().saturating_sub(30)..].join("\n")
                ),
            }
        }
    }

    /// Asserts that lever has said nothing since what was last read.
    fn silent(&mut self, after: &str) {
        let lines = self.until_marker();
        assert!(lines.is_empty(), "after {after}, lever said: {lines:#?}");
    }
}

/// Whether `line` is something lever said in #ops.
fn said(line: &Line) -> bool {
    line.verb == "PRIVMSG"
        && line.from == "lever"
        && line.params.first().is_some_and(|c| c == "#ops")
}

fn text_of(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
}

// ---------------------------------------------------------------------------------------------
// 1. Health.

#[test]
fn healthz_is_ok_and_readyz_follows_irc_registration() {
    let rig = Rig::start("");
    let health = rig.get("/healthz").expect(200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["role"], "active", "alone on its store, lever acts");
    assert_eq!(
        health["epoch"],
        Value::Null,
        "no lease without a shared store"
    );
    assert!(
        health["node"].as_str().is_some_and(|n| !n.is_empty()),
        "{health}"
    );
    let ready = rig.get("/readyz");
    assert_eq!(ready.expect(200), json!({"ready": true, "why": []}));

    // Pointed at a port where no IRC server listens, lever never registers: alive, not ready.
    let dead_irc = free_port();
    let (lever, http) = start_lever(dead_irc, "");
    assert_eq!(
        request(http, "GET", "/healthz", &[], b"").expect(200)["status"],
        "ok"
    );
    let not_ready = request(http, "GET", "/readyz", &[], b"");
    assert_eq!(
        not_ready.expect(503),
        json!({"ready": false, "why": ["not registered on IRC (connecting or reconnecting)"]}),
        "{}",
        lever.log()
    );
    let status = request(http, "GET", "/api/v1/status", &[], b"").expect(200);
    assert_eq!(status["irc"]["ready"], json!(false));
}

// ---------------------------------------------------------------------------------------------
// 2. Holds over HTTP are the same holds as `!hold`.

#[test]
fn holds_over_http_are_announced_gate_deploys_and_mix_with_irc_holds() {
    let mut rig = Rig::start("");

    // NO DEPLOY PLEASE on every target.
    let placed = rig
        .hold(json!({"reason": "db migration", "by": "mygrant"}))
        .expect(201);
    let hold = &placed["hold"];
    assert_eq!(hold["target"], Value::Null);
    assert_eq!(hold["by"], "mygrant");
    assert_eq!(hold["by_account"], Value::Null);
    assert_eq!(hold["reason"], "db migration");
    assert_eq!(hold["expires_at"], Value::Null);
    like(text_of(&hold["placed_at"]), "{iso}");
    assert_eq!(
        rig.next_said(),
        "NO DEPLOY PLEASE: every target held by mygrant (db migration)"
    );

    // It stops a deploy from IRC like any hold.
    rig.say("!deploy site");
    like(
        &rig.next_said(),
        "alice: site is held: NO DEPLOY PLEASE by mygrant since {time} UTC ({dur} ago): \
         db migration. Ask mygrant, or !unhold when it is safe",
    );

    // The gate a deploy script checks: 423 Locked.
    let gate = rig.get("/api/v1/holds/site");
    let body = gate.expect(423);
    assert_eq!(body["target"], "site");
    assert_eq!(body["held"], true);
    like(
        text_of(&body["error"]),
        "NO DEPLOY PLEASE: every target held by mygrant since {time} UTC: db migration",
    );
    assert_eq!(body["holds"][0]["by"], "mygrant");
    let holds = rig.get("/api/v1/holds").expect(200);
    assert_eq!(holds["holds"].as_array().unwrap().len(), 1);
    assert_eq!(holds["holds"][0]["reason"], "db migration");

    // In the deploy log, as `!hold` writes it.
    let log = rig.log();
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0]["user"], "mygrant");
    assert_eq!(log[0]["kind"], "hold");
    assert_eq!(log[0]["target"], Value::Null);
    assert_eq!(log[0]["text"], "NO DEPLOY PLEASE (db migration)");
    like(
        text_of(&log[0]["line"]),
        "[{time}] [mygrant] NO DEPLOY PLEASE (db migration)",
    );

    // DEPLOY OK, by someone else.
    let lifted = rig
        .delete("/api/v1/holds/all?by=aaron", Cred::Bearer(TOKEN))
        .expect(200);
    assert_eq!(lifted["lifted"]["by"], "mygrant");
    assert_eq!(lifted["lifted"]["reason"], "db migration");
    like(
        &rig.next_said(),
        "DEPLOY OK: aaron lifted mygrant's hold on every target (db migration, held {dur})",
    );
    assert_eq!(
        rig.get("/api/v1/holds/site").expect(200),
        json!({"target": "site", "held": false})
    );
    let log = rig.log();
    assert_eq!(log[0]["user"], "aaron");
    assert_eq!(log[0]["kind"], "unhold");
    assert_eq!(
        log[0]["text"],
        "DEPLOY OK (lifted mygrant's hold: db migration)"
    );
    assert_eq!(rig.get("/api/v1/holds").expect(200), json!({"holds": []}));

    // A hold on one target, for a while; lifted by its holder.
    let placed = rig
        .hold(json!({"target": "site", "reason": "load test", "by": "dana", "duration": "2h"}))
        .expect(201);
    assert_eq!(placed["hold"]["target"], "site");
    like(text_of(&placed["hold"]["expires_at"]), "{iso}");
    like(
        &rig.next_said(),
        "NO DEPLOY PLEASE: site held by dana (load test) until {time} UTC",
    );
    assert_eq!(rig.get("/api/v1/holds/site").status, 423);
    assert_eq!(
        rig.get("/api/v1/holds/api").expect(200),
        json!({"target": "api", "held": false})
    );
    like(
        &rig.log_texts()[0],
        "NO DEPLOY PLEASE: site (load test) until {time} UTC",
    );
    rig.delete("/api/v1/holds/site?by=dana", Cred::Bearer(TOKEN))
        .expect(200);
    like(
        &rig.next_said(),
        "DEPLOY OK: dana lifted the hold on site (held {dur})",
    );
    assert_eq!(rig.log_texts()[0], "DEPLOY OK: site");

    // A hold placed in IRC shows over HTTP and is lifted over HTTP.
    rig.say("!hold site payments outage");
    assert_eq!(
        rig.next_said(),
        "NO DEPLOY PLEASE: site held by alice (payments outage)"
    );
    let holds = rig.get("/api/v1/holds").expect(200);
    let holds = holds["holds"].as_array().unwrap();
    assert_eq!(holds.len(), 1, "{holds:#?}");
    assert_eq!(holds[0]["target"], "site");
    assert_eq!(holds[0]["by"], "alice");
    assert_eq!(holds[0]["reason"], "payments outage");
    assert_eq!(rig.get("/api/v1/holds/site").status, 423);
    rig.delete("/api/v1/holds/site?by=aaron", Cred::Bearer(TOKEN))
        .expect(200);
    like(
        &rig.next_said(),
        "DEPLOY OK: aaron lifted alice's hold on site (payments outage, held {dur})",
    );
    assert_eq!(
        rig.get("/api/v1/holds/site").expect(200),
        json!({"target": "site", "held": false})
    );

    // Nothing left to lift: 404 saying so, and nothing announced.
    let again = rig.delete("/api/v1/holds/site?by=aaron", Cred::Bearer(TOKEN));
    assert_eq!(again.status, 404, "{again:?}");
    assert_eq!(again.error(), "site is not held");
    let nothing = rig.delete("/api/v1/holds/all?by=aaron", Cred::Bearer(TOKEN));
    assert_eq!(nothing.status, 404, "{nothing:?}");
    assert_eq!(nothing.error(), "nothing is held");
    let nobody = rig.delete("/api/v1/holds/site", Cred::Bearer(TOKEN));
    assert_eq!(nobody.status, 400, "{nobody:?}");
    assert_eq!(nobody.error(), "say who lifts the hold: ?by=NAME");
    rig.silent("lifts of nothing");
}

// ---------------------------------------------------------------------------------------------
// 3. Authentication.

#[test]
fn writes_need_a_token_or_a_signature_of_the_exact_body() {
    let mut rig = Rig::start("");
    let hold = json!({"reason": "db migration", "by": "mygrant"});
    let deploy = json!({"user": "alice", "target": "api", "status": "started", "version": "v1"});

    // No credentials, a wrong token, another scheme: 401, nothing logged or announced.
    let none = rig.post("/api/v1/holds", Cred::None, &hold);
    assert_eq!(none.status, 401, "{none:?}");
    assert_eq!(
        none.error(),
        "missing credentials: send 'Authorization: Bearer <token>', or \
         'X-Lever-Timestamp: <unix seconds>' with \
         'X-Lever-Signature: sha256=<hex HMAC-SHA256 of \"<timestamp>.<body>\">'"
    );
    let wrong = rig.post(
        "/api/v1/holds",
        Cred::Bearer("not-the-token-0123456789"),
        &hold,
    );
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert_eq!(wrong.error(), "bad bearer token");
    let basic = request(
        rig.http,
        "POST",
        "/api/v1/holds",
        &[("Authorization".into(), format!("Basic {TOKEN}"))],
        &serde_json::to_vec(&hold).unwrap(),
    );
    assert_eq!(basic.status, 401, "{basic:?}");
    assert_eq!(basic.error(), "Authorization must be 'Bearer <token>'");
    // A secret is not a token, and a token is not a secret.
    let secret_as_token = rig.post("/api/v1/holds", Cred::Bearer(GITHUB_SECRET), &hold);
    assert_eq!(secret_as_token.status, 401, "{secret_as_token:?}");
    let token_as_secret = rig.post(
        "/api/v1/holds",
        Cred::Signed("X-Lever-Signature", TOKEN),
        &hold,
    );
    assert_eq!(token_as_secret.status, 401, "{token_as_secret:?}");
    assert!(
        token_as_secret.error().starts_with("bad signature: "),
        "{token_as_secret:?}"
    );
    for path in ["/hooks/deploy", "/hooks/build"] {
        let reply = rig.post(path, Cred::None, &deploy);
        assert_eq!(reply.status, 401, "{path}: {reply:?}");
    }
    rig.hold(json!({"reason": "for the lift", "by": "zed"}))
        .expect(201);
    assert_eq!(
        rig.next_said(),
        "NO DEPLOY PLEASE: every target held by zed (for the lift)"
    );
    let lift = rig.delete("/api/v1/holds/all?by=mallory", Cred::None);
    assert_eq!(lift.status, 401, "{lift:?}");
    let lift = rig.delete(
        "/api/v1/holds/all?by=mallory",
        Cred::Bearer("wrong-token-0123456789"),
    );
    assert_eq!(lift.status, 401, "{lift:?}");
    rig.silent("refused requests");
    assert_eq!(
        rig.log_texts(),
        ["NO DEPLOY PLEASE (for the lift)"],
        "only the one accepted request is logged"
    );
    rig.delete("/api/v1/holds/all?by=zed", Cred::Bearer(TOKEN))
        .expect(200);
    like(
        &rig.next_said(),
        "DEPLOY OK: zed lifted the hold on every target (held {dur})",
    );

    // The named token: accepted, and named in the log.
    rig.post("/hooks/deploy", Cred::Bearer(CI_TOKEN), &deploy)
        .expect(201);
    assert_eq!(rig.next_said(), "alice is deploying api v1 (via ci)");
    assert_eq!(rig.log_texts()[0], "starting deploy of api v1... (via ci)");

    // A signature of the exact body, in either header.
    let body = serde_json::to_vec(
        &json!({"user": "bob", "target": "api", "status": "succeeded", "version": "v2"}),
    )
    .unwrap();
    let signed = lever_signed(GITHUB_SECRET, unix_now(), &body);
    let reply = request(rig.http, "POST", "/hooks/deploy", &signed, &body);
    reply.expect(201);
    assert_eq!(rig.next_said(), "api deployed by bob v2 (via github)");
    assert_eq!(rig.log_texts()[0], "api deployed v2 (via github)");
    // The same signature over another body.
    let tampered = serde_json::to_vec(
        &json!({"user": "mallory", "target": "api", "status": "succeeded", "version": "v2"}),
    )
    .unwrap();
    let reply = request(rig.http, "POST", "/hooks/deploy", &signed, &tampered);
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(
        reply.error(),
        "bad signature: X-Lever-Signature must be sha256=<hex HMAC-SHA256 of \
         \"<X-Lever-Timestamp>.<body>\"> under one of [http] hmac_secrets"
    );
    let mut garbage = signed.clone();
    garbage[1].1 = "sha1=0123abcd".into();
    let garbage = request(rig.http, "POST", "/hooks/deploy", &garbage, &body);
    assert_eq!(garbage.status, 401, "{garbage:?}");
    rig.silent("a tampered body");
    // GitHub's header.
    let body = serde_json::to_vec(
        &json!({"user": "carol", "target": "api", "status": "failed", "message": "smoke test failed"}),
    )
    .unwrap();
    let reply = request(
        rig.http,
        "POST",
        "/hooks/deploy",
        &github_signed(GITHUB_SECRET, Some(&new_delivery_id()), &body),
        &body,
    );
    reply.expect(201);
    assert_eq!(
        rig.next_said(),
        "api deploy by carol FAILED (via github): smoke test failed"
    );
    // A hold, signed.
    rig.post(
        "/api/v1/holds",
        Cred::Signed("X-Hub-Signature-256", GITHUB_SECRET),
        &json!({"target": "api", "reason": "signed", "by": "gh"}),
    )
    .expect(201);
    assert_eq!(rig.next_said(), "NO DEPLOY PLEASE: api held by gh (signed)");
    let texts = rig.log_texts();
    assert_eq!(
        texts[..3],
        [
            "NO DEPLOY PLEASE: api (signed)",
            "api deploy FAILED (smoke test failed; via github)",
            "api deployed v2 (via github)",
        ]
    );
}

#[test]
fn signed_requests_must_be_fresh_and_are_never_accepted_twice() {
    let mut rig = Rig::start("");
    let deploy = |user: &str, version: &str| {
        serde_json::to_vec(
            &json!({"user": user, "target": "api", "status": "succeeded", "version": version}),
        )
        .unwrap()
    };
    let port = rig.http;
    let post = |headers: &[(String, String)], body: &[u8]| {
        request(port, "POST", "/hooks/deploy", headers, body)
    };
    let refused = |reply: Reply| {
        assert_eq!(reply.status, 401, "{reply:?}");
        reply.error()
    };

    // lever's scheme: a fresh timestamp, signed with the body, is accepted once.
    let now = unix_now();
    let body = deploy("bob", "v7");
    let fresh = lever_signed(GITHUB_SECRET, now, &body);
    post(&fresh, &body).expect(201);
    assert_eq!(rig.next_said(), "api deployed by bob v7 (via github)");
    let replay = refused(post(&fresh, &body));
    assert!(replay.contains("already accepted"), "{replay}");
    // Captured ten minutes ago, or stamped ten minutes ahead: outside the window.
    let body = deploy("mallory", "v8");
    let stale = refused(post(&lever_signed(GITHUB_SECRET, now - 600, &body), &body));
    assert!(stale.contains("X-Lever-Timestamp"), "{stale}");
    assert!(stale.contains("5m"), "names the window: {stale}");
    let ahead = refused(post(&lever_signed(GITHUB_SECRET, now + 600, &body), &body));
    assert!(ahead.contains("X-Lever-Timestamp"), "{ahead}");
    // No timestamp at all (the old scheme), or one that is not unix seconds.
    let bare = [(
        "X-Lever-Signature".to_owned(),
        signature(GITHUB_SECRET, &body),
    )];
    let missing = refused(post(&bare, &body));
    assert!(missing.contains("X-Lever-Timestamp"), "{missing}");
    let mut garbled = lever_signed(GITHUB_SECRET, now, &body);
    garbled[0].1 = "yesterday".into();
    let garbled = refused(post(&garbled, &body));
    assert!(garbled.contains("unix seconds"), "{garbled}");

    // GitHub's scheme has no timestamp: each delivery id is accepted once, and so is each
    // signed body (the delivery header is not signed, so a fresh id alone proves nothing).
    let body = deploy("carol", "v9");
    let first = github_signed(GITHUB_SECRET, Some("delivery-1"), &body);
    post(&first, &body).expect(201);
    assert_eq!(rig.next_said(), "api deployed by carol v9 (via github)");
    let again = refused(post(&first, &body));
    assert!(again.contains("delivery-1"), "{again}");
    let new_id = github_signed(GITHUB_SECRET, Some("delivery-2"), &body);
    let resent = refused(post(&new_id, &body));
    assert!(resent.contains("already accepted"), "{resent}");
    let body = deploy("dave", "v10");
    let no_id = refused(post(&github_signed(GITHUB_SECRET, None, &body), &body));
    assert!(no_id.contains("X-GitHub-Delivery"), "{no_id}");

    // Nothing refused was announced or stored.
    rig.silent("refused replays");
    assert_eq!(
        rig.log_texts(),
        [
            "api deployed v9 (via github)",
            "api deployed v7 (via github)"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Bad input.

#[test]
fn bad_requests_are_refused_with_a_reason_and_change_nothing() {
    let mut rig = Rig::start("body_limit = 2048\nrequest_timeout = \"1s\"");
    let auth = Cred::Bearer(TOKEN);

    let reply = rig.post_raw(
        "/api/v1/holds",
        auth,
        br#"{"reason": "db migration", "by": "#,
    );
    assert_eq!(reply.status, 400, "{reply:?}");
    like(&reply.error(), "bad JSON body: {*}");
    let reply = rig.post_raw("/api/v1/holds", auth, b"reason=db+migration&by=mygrant");
    assert_eq!(reply.status, 400, "{reply:?}");
    like(&reply.error(), "bad JSON body: {*}");
    for (body, field) in [
        (json!({"by": "mygrant"}), "reason"),
        (json!({"reason": "db migration"}), "by"),
    ] {
        let reply = rig.hold(body);
        assert_eq!(reply.status, 400, "{reply:?}");
        like(
            &reply.error(),
            &format!("bad JSON body: missing field `{field}`{{*}}"),
        );
    }
    let reply = rig.hold(json!({"reason": " \t ", "by": "mygrant"}));
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(reply.error(), "'reason' must say why deploys are held");
    for by in ["", "two words", "x".repeat(33).as_str()] {
        let reply = rig.hold(json!({"reason": "db migration", "by": by}));
        assert_eq!(reply.status, 400, "by {by:?}: {reply:?}");
        assert_eq!(
            reply.error(),
            "'by' must name who acts: one word of 1 to 32 characters"
        );
    }
    let reply = rig.hold(json!({"reason": "x", "by": "mygrant", "duration": "soon"}));
    assert_eq!(reply.status, 400, "{reply:?}");
    like(
        &reply.error(),
        "'duration' \"soon\" is not a duration ({*}); write e.g. \"2h\"",
    );
    let reply = rig.hold(json!({"reason": "x", "by": "mygrant", "colour": "red"}));
    assert_eq!(reply.status, 400, "{reply:?}");
    like(&reply.error(), "bad JSON body: unknown field `colour`{*}");

    // Unknown targets: 404, wherever they are named.
    let reply = rig.hold(json!({"target": "nope", "reason": "x", "by": "mygrant"}));
    assert_eq!(reply.status, 404, "{reply:?}");
    assert_eq!(reply.error(), "no target 'nope'; targets: site, api");
    let reply = rig.get("/api/v1/holds/nope");
    assert_eq!(reply.status, 404, "{reply:?}");
    assert_eq!(reply.error(), "no target 'nope'");
    let reply = rig.delete("/api/v1/holds/nope?by=aaron", auth);
    assert_eq!(reply.status, 404, "{reply:?}");
    assert_eq!(reply.error(), "no target 'nope'; targets: site, api");

    // The log's limit.
    for limit in ["0", "1001"] {
        let reply = rig.get(&format!("/api/v1/log?limit={limit}"));
        assert_eq!(reply.status, 400, "limit={limit}: {reply:?}");
        assert_eq!(reply.error(), "limit must be 1 to 1000");
    }
    rig.get("/api/v1/log?limit=1000").expect(200);

    // No such endpoint: JSON saying so.
    for path in ["/nope", "/api/v1/nope", "/api/v2/holds"] {
        let reply = rig.get(path);
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(
            reply.error(),
            "no such endpoint; see the README's HTTP section"
        );
    }
    rig.silent("bad requests");
    assert!(rig.log().is_empty(), "{:#?}", rig.log());

    // Past body_limit: 413, whether the length is declared or the body is chunked.
    let reason = "x".repeat(3000);
    let big = serde_json::to_vec(&json!({"reason": reason, "by": "mygrant"})).unwrap();
    assert!(big.len() > 2048);
    let reply = rig.post_raw("/api/v1/holds", auth, &big);
    assert_eq!(reply.status, 413, "{reply:?}");
    let mut chunked = format!(
        "POST /api/v1/holds HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for piece in big.chunks(500) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let reply = exchange(rig.http, &chunked, WAIT).expect("chunked request");
    assert_eq!(reply.status, 413, "{reply:?}");
    let reply = rig.post_raw("/hooks/deploy", auth, &big);
    assert_eq!(reply.status, 413, "{reply:?}");
    // A body that never arrives in full: 408 once request_timeout has passed.
    let mut slow = TcpStream::connect(("127.0.0.1", rig.http)).expect("connect");
    slow.set_read_timeout(Some(WAIT)).ok();
    let head = format!(
        "POST /api/v1/holds HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Authorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n{{\"reason\": \"slow\","
    );
    slow.write_all(head.as_bytes()).expect("write");
    let reply = read_reply(&mut slow).expect("a reply to a slow body");
    assert_eq!(reply.status, 408, "{reply:?}");
    rig.silent("bodies past the limit or too slow");
    assert!(rig.log().is_empty(), "{:#?}", rig.log());
    // Under the limit is taken (and the reason cut to 200 characters).
    let reason = "y".repeat(1900);
    let body = serde_json::to_vec(&json!({"reason": reason, "by": "mygrant"})).unwrap();
    assert!(body.len() < 2048);
    rig.post_raw("/api/v1/holds", auth, &body).expect(201);
    assert_eq!(
        rig.next_said(),
        format!(
            "NO DEPLOY PLEASE: every target held by mygrant ({}…)",
            "y".repeat(199)
        )
    );
    rig.delete("/api/v1/holds/all?by=mygrant", auth).expect(200);
    like(
        &rig.next_said(),
        "DEPLOY OK: mygrant lifted the hold on every target (held {dur})",
    );

    // A hold on a scope someone else holds: 409 with the refusal `!hold` gives.
    rig.hold(json!({"reason": "db migration", "by": "mygrant"}))
        .expect(201);
    assert_eq!(
        rig.next_said(),
        "NO DEPLOY PLEASE: every target held by mygrant (db migration)"
    );
    let reply = rig.hold(json!({"reason": "mine now", "by": "bob"}));
    assert_eq!(reply.status, 409, "{reply:?}");
    like(
        &reply.error(),
        "every target is already held by mygrant since {time} UTC: db migration \
         (lift it with !unhold first)",
    );
    rig.hold(json!({"target": "site", "reason": "load test", "by": "dana"}))
        .expect(201);
    assert_eq!(
        rig.next_said(),
        "NO DEPLOY PLEASE: site held by dana (load test)"
    );
    let reply = rig.hold(json!({"target": "site", "reason": "mine now", "by": "bob"}));
    assert_eq!(reply.status, 409, "{reply:?}");
    like(
        &reply.error(),
        "site is already held by dana since {time} UTC: load test (lift it with !unhold site first)",
    );
    rig.silent("refused holds");
    let holds = rig.get("/api/v1/holds").expect(200);
    let by: Vec<&str> = holds["holds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| text_of(&h["by"]))
        .collect();
    assert_eq!(by.len(), 2, "{holds}");
    assert!(by.contains(&"mygrant") && by.contains(&"dana"), "{holds}");
}

// ---------------------------------------------------------------------------------------------
// 5. Deploys done by other tools.

#[test]
fn deploy_hooks_are_logged_and_announced_and_warn_about_holds() {
    let mut rig = Rig::start("");
    let ci = Cred::Bearer(CI_TOKEN);

    let started = rig
        .post(
            "/hooks/deploy",
            ci,
            &json!({"user": "alice", "target": "api", "status": "started", "version": "v1.2"}),
        )
        .expect(201);
    like(
        text_of(&started["logged"]),
        "[{time}] [alice] starting deploy of api v1.2... (via ci)",
    );
    assert_eq!(started["held"], Value::Null);
    assert_eq!(rig.next_said(), "alice is deploying api v1.2 (via ci)");
    rig.post(
        "/hooks/deploy",
        ci,
        &json!({"user": "alice", "target": "api", "status": "succeeded", "version": "v1.2",
                "url": "https://ci.example/42"}),
    )
    .expect(201);
    assert_eq!(
        rig.next_said(),
        "api deployed by alice v1.2 (via ci) — https://ci.example/42"
    );
    rig.post(
        "/hooks/deploy",
        ci,
        &json!({"user": "alice", "target": "api", "status": "failed",
                "message": "smoke test failed", "url": "http://ci.example/43"}),
    )
    .expect(201);
    assert_eq!(
        rig.next_said(),
        "api deploy by alice FAILED (via ci): smoke test failed — http://ci.example/43"
    );
    let log = rig.log();
    let entries: Vec<(&str, &str, &str, &str)> = log
        .iter()
        .map(|e| {
            (
                text_of(&e["user"]),
                text_of(&e["target"]),
                text_of(&e["kind"]),
                text_of(&e["text"]),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (
                "alice",
                "api",
                "failed",
                "api deploy FAILED (smoke test failed; via ci)"
            ),
            (
                "alice",
                "api",
                "deployed",
                "api deployed v1.2 (via ci; https://ci.example/42)"
            ),
            (
                "alice",
                "api",
                "deploy_started",
                "starting deploy of api v1.2... (via ci)"
            ),
        ]
    );

    // Through a hold: logged, announced with a warning, and the response says which hold.
    rig.hold(json!({"target": "api", "reason": "deploy freeze", "by": "mygrant"}))
        .expect(201);
    assert_eq!(
        rig.next_said(),
        "NO DEPLOY PLEASE: api held by mygrant (deploy freeze)"
    );
    let reply = rig
        .post(
            "/hooks/deploy",
            ci,
            &json!({"user": "bob", "target": "api", "status": "started", "version": "v1.3"}),
        )
        .expect(201);
    assert_eq!(reply["held"]["target"], "api");
    assert_eq!(reply["held"]["by"], "mygrant");
    assert_eq!(reply["held"]["reason"], "deploy freeze");
    assert_eq!(
        rig.next_said(),
        "⚠ bob is deploying api v1.3 (via ci) — while NO DEPLOY PLEASE is in force: \
         api held by mygrant (deploy freeze)"
    );
    assert_eq!(
        rig.log_texts()[0],
        "starting deploy of api v1.3... (via ci)"
    );
    // A hold on another target does not cover it.
    let reply = rig
        .post(
            "/hooks/deploy",
            ci,
            &json!({"user": "bob", "target": "site", "status": "started"}),
        )
        .expect(201);
    assert_eq!(reply["held"], Value::Null);
    assert_eq!(rig.next_said(), "bob is deploying site (via ci)");

    // Links that are not http(s) are dropped, not shown.
    for url in [
        "javascript:alert(1)",
        "ftp://ci.example/1",
        "https://ci.example/a b",
    ] {
        rig.post(
            "/hooks/deploy",
            ci,
            &json!({"user": "bob", "target": "web", "status": "succeeded", "version": "v9", "url": url}),
        )
        .expect(201);
        assert_eq!(rig.next_said(), "web deployed by bob v9 (via ci)", "{url}");
        assert_eq!(rig.log_texts()[0], "web deployed v9 (via ci)", "{url}");
    }

    // Refused: a target with spaces, an unknown status, no user.
    let entries_before = rig.log().len();
    for (body, why) in [
        (
            json!({"user": "bob", "target": "my api", "status": "started"}),
            "'target' may hold letters, digits and . _ - / only",
        ),
        (
            json!({"user": "bob", "target": "api;rm", "status": "started"}),
            "'target' may hold letters, digits and . _ - / only",
        ),
        (
            json!({"user": "bob", "status": "started"}),
            "'target' is missing or empty",
        ),
        (
            json!({"user": "bob", "target": "api", "status": "exploded"}),
            "'status' must be \"started\", \"succeeded\" or \"failed\"",
        ),
        (
            json!({"target": "api", "status": "started"}),
            "'user' is missing or empty",
        ),
        (
            json!({"user": " \r\n ", "target": "api", "status": "started"}),
            "'user' is missing or empty",
        ),
    ] {
        let reply = rig.post("/hooks/deploy", ci, &body);
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        assert_eq!(reply.error(), why, "{body}");
    }
    rig.silent("refused deploy reports");
    assert_eq!(rig.log().len(), entries_before);
}

#[test]
fn cr_lf_and_control_characters_in_hook_fields_cannot_make_irc_lines() {
    let mut rig = Rig::start("");
    let ci = Cred::Bearer(CI_TOKEN);
    let fields = json!({
        "user": "eve\r\nQUIT :pwned",
        "target": "api\r\nQUIT",
        "version": "v2\r\nPRIVMSG #ops :injected",
        "url": "https://ci.example/7\r\nQUIT",
        "message": "boom\u{1}ACTION dies\u{1}\r\n\u{0}NOTICE #ops :x\u{7f}",
    });
    for status in ["started", "succeeded", "failed"] {
        let mut body = fields.clone();
        body["status"] = json!(status);
        rig.post("/hooks/deploy", ci, &body).expect(201);
    }
    rig.post(
        "/hooks/build",
        ci,
        &json!({"job": "ci\r\nQUIT :x", "number": 5, "status": "success",
                "user": "bob\nJOIN #evil", "url": "http://ci.example/5\rKICK"}),
    )
    .expect(202);
    rig.hold(json!({"reason": "db\r\nQUIT :x migration\u{1}", "by": "my\r\ngrant"}))
        .expect(201);
    rig.post(
        "/hooks/deploy",
        ci,
        &json!({"user": "eve", "target": "api", "status": "started", "version": "v3\n\nQUIT"}),
    )
    .expect(201);

    let lines = rig.until_marker();
    let texts: Vec<&str> = lines.iter().map(|l| l.text()).collect();
    assert!(
        lines.iter().all(said),
        "lever sent something other than PRIVMSGs to #ops: {lines:#?}"
    );
    assert_eq!(
        texts,
        [
            "eveQUIT :pwned is deploying apiQUIT v2PRIVMSG #ops :injected (via ci) — https://ci.example/7QUIT",
            "apiQUIT deployed by eveQUIT :pwned v2PRIVMSG #ops :injected (via ci) — https://ci.example/7QUIT",
            "apiQUIT deploy by eveQUIT :pwned v2PRIVMSG #ops :injected FAILED (via ci): boomACTION diesNOTICE #ops :x — https://ci.example/7QUIT",
            "build ciQUIT :x #5 SUCCESS (bobJOIN #evil) — http://ci.example/5KICK",
            "NO DEPLOY PLEASE: every target held by mygrant (dbQUIT :x migration)",
            "⚠ eve is deploying api v3QUIT (via ci) — while NO DEPLOY PLEASE is in force: \
             every target held by mygrant (dbQUIT :x migration)",
        ]
    );
    let others: Vec<&String> = rig
        .client
        .seen
        .iter()
        .filter(|raw| {
            let line = Line::parse(raw);
            matches!(line.verb.as_str(), "QUIT" | "NOTICE" | "KICK" | "PART")
                || (line.verb == "JOIN" && line.text() != "#ops")
                || (raw.contains("injected") && !said(&line))
        })
        .collect();
    assert!(others.is_empty(), "{others:#?}");

    // The log holds the same cleaned texts, one line each.
    let texts = rig.log_texts();
    assert_eq!(
        texts,
        [
            "starting deploy of api v3QUIT... (via ci)",
            "NO DEPLOY PLEASE (dbQUIT :x migration)",
            "apiQUIT deploy v2PRIVMSG #ops :injected FAILED (boomACTION diesNOTICE #ops :x; via ci)",
            "apiQUIT deployed v2PRIVMSG #ops :injected (via ci; https://ci.example/7QUIT)",
            "starting deploy of apiQUIT v2PRIVMSG #ops :injected... (via ci)",
        ]
    );
    let users: Vec<String> = rig
        .log()
        .iter()
        .map(|e| text_of(&e["user"]).to_owned())
        .collect();
    assert_eq!(
        users,
        [
            "eve",
            "mygrant",
            "eveQUIT :pwned",
            "eveQUIT :pwned",
            "eveQUIT :pwned"
        ]
    );
    // lever is still there, and still answers.
    rig.say("!ping");
    assert_eq!(rig.next_said(), "pong");
}

// ---------------------------------------------------------------------------------------------
// 6. CI builds.

#[test]
fn build_hooks_are_announced_in_lever_s_shape_and_jenkins_shape() {
    let mut rig = Rig::start("");
    let ci = Cred::Bearer(CI_TOKEN);

    let reply = rig
        .post(
            "/hooks/build",
            ci,
            &json!({"job": "tools_statsd", "number": 31, "status": "success",
                    "url": "http://ci.example/job/tools_statsd/31/", "duration_ms": 123_000,
                    "user": "alice"}),
        )
        .expect(202);
    assert_eq!(reply, json!({"announced": true}));
    assert_eq!(
        rig.next_said(),
        "build tools_statsd #31 SUCCESS in 2 min 3 s (alice) — http://ci.example/job/tools_statsd/31/"
    );
    rig.post(
        "/hooks/build",
        ci,
        &json!({"job": "tools_statsd", "number": 32, "status": "failed",
                "url": "https://ci.example/job/tools_statsd/32/", "duration_ms": 4500, "user": "bob"}),
    )
    .expect(202);
    assert_eq!(
        rig.next_said(),
        "build tools_statsd #32 ⚠ FAILURE in 4500 ms (bob) — https://ci.example/job/tools_statsd/32/"
    );
    rig.post(
        "/hooks/build",
        ci,
        &json!({"job": "nightly", "status": "UNSTABLE", "url": "javascript:alert(1)"}),
    )
    .expect(202);
    assert_eq!(rig.next_said(), "build nightly ⚠ UNSTABLE");

    // Jenkins' notification plugin: STARTED and COMPLETED announced, FINALIZED not.
    // Jenkins sends a duration of 0 until the build has finished.
    let jenkins = |phase: &str, status: Option<&str>| {
        let duration = if phase == "STARTED" { 0 } else { 61_000 };
        let mut build = json!({"full_url": "http://ci.example/job/tools_statsd/33/",
                               "number": 33, "phase": phase, "duration": duration});
        if let Some(status) = status {
            build["status"] = json!(status);
        }
        json!({"name": "tools_statsd", "url": "job/tools_statsd/", "build": build})
    };
    rig.post("/hooks/build", ci, &jenkins("STARTED", None))
        .expect(202);
    assert_eq!(
        rig.next_said(),
        "build tools_statsd #33 STARTED — http://ci.example/job/tools_statsd/33/"
    );
    rig.post("/hooks/build", ci, &jenkins("COMPLETED", Some("FAILURE")))
        .expect(202);
    assert_eq!(
        rig.next_said(),
        "build tools_statsd #33 ⚠ FAILURE in 1 min 1 s — http://ci.example/job/tools_statsd/33/"
    );
    let reply = rig
        .post("/hooks/build", ci, &jenkins("FINALIZED", Some("FAILURE")))
        .expect(202);
    assert_eq!(reply["announced"], false);
    assert_eq!(reply["why"], "phase FINALIZED is not announced");
    rig.silent("a FINALIZED notification");

    // Refused: an unknown status, a job without a name.
    for (body, why) in [
        (
            json!({"job": "tools_statsd", "status": "exploded"}),
            "'status' must be one of success, failure, unstable, aborted, started",
        ),
        (
            json!({"job": "tools_statsd"}),
            "'status' must be one of success, failure, unstable, aborted, started",
        ),
        (
            jenkins("COMPLETED", Some("EXPLODED")),
            "'status' must be one of success, failure, unstable, aborted, started",
        ),
        (json!({"status": "success"}), "'job' is missing or empty"),
    ] {
        let reply = rig.post("/hooks/build", ci, &body);
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        assert_eq!(reply.error(), why, "{body}");
    }
    rig.silent("refused build reports");
    assert!(rig.log().is_empty(), "builds are announced, not logged");
}

// ---------------------------------------------------------------------------------------------
// 7. Status.

#[test]
fn status_shows_holds_versions_and_irc() {
    let mut rig = Rig::start("");
    rig.say("!stage site");
    assert_eq!(rig.next_said(), "alice is staging site (1 step)");
    like(&rig.next_said(), "site staged by alice in {dur}: v1");
    rig.say("!deploy site");
    assert_eq!(
        rig.next_said(),
        "alice is deploying site: v1 → live (1 step)"
    );
    like(&rig.next_said(), "site deployed by alice in {dur}: v1");
    rig.hold(json!({"target": "site", "reason": "load test", "by": "dana"}))
        .expect(201);
    assert_eq!(
        rig.next_said(),
        "NO DEPLOY PLEASE: site held by dana (load test)"
    );

    let status = rig.get("/api/v1/status").expect(200);
    assert_eq!(status["irc"], json!({"ready": true, "nick": "lever"}));
    assert_eq!(status["holds"].as_array().unwrap().len(), 1, "{status:#}");
    assert_eq!(status["holds"][0]["by"], "dana");
    let targets = status["targets"].as_array().expect("targets");
    let names: Vec<&str> = targets.iter().map(|t| text_of(&t["name"])).collect();
    assert_eq!(names, ["site", "api"]);
    let (site, api) = (&targets[0], &targets[1]);
    assert_eq!(site["held"], true);
    assert_eq!(site["holds"][0]["reason"], "load test");
    for (key, phase) in [("live", "deploy"), ("staged", "stage")] {
        let run = &site[key];
        assert_eq!(run["phase"], phase, "{key}: {site:#}");
        assert_eq!(run["state"], "succeeded", "{key}: {site:#}");
        assert_eq!(run["user"], "alice", "{key}: {site:#}");
        assert_eq!(run["version"], "v1", "{key}: {site:#}");
        like(text_of(&run["started_at"]), "{iso}");
        like(text_of(&run["finished_at"]), "{iso}");
    }
    assert_eq!(site["staged"]["id"], 1);
    assert_eq!(site["live"]["id"], 2);
    assert_eq!(api["held"], false);
    assert_eq!(api["holds"], json!([]));
    assert_eq!(api["live"], Value::Null);
    assert_eq!(api["staged"], Value::Null);
    assert_eq!(api["active"], Value::Null);

    // The log by target.
    let log = rig.get("/api/v1/log?target=site&limit=2").expect(200);
    let texts: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| text_of(&e["text"]))
        .collect();
    assert_eq!(
        texts,
        ["NO DEPLOY PLEASE: site (load test)", "site deployed v1"]
    );
}

// ---------------------------------------------------------------------------------------------
// 8. A taken port.

#[test]
fn a_taken_port_stops_lever_at_start_naming_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().unwrap().port();
    let mut lever = Lever::start(&config(free_port(), port, ""));
    let status = lever
        .wait_exit(WAIT)
        .unwrap_or_else(|| panic!("lever kept running on a taken port:\n{}", lever.log()));
    assert!(!status.success(), "exit {status}:\n{}", lever.log());
    let log = lever.log();
    assert!(
        log.contains(&format!(
            "lever: cannot listen on 127.0.0.1:{port} for [http] listen: "
        )),
        "{log}"
    );
    drop(taken);
}

// ---------------------------------------------------------------------------------------------
// 9. Two holds at the same instant.

#[test]
fn simultaneous_holds_on_one_target_place_exactly_one() {
    let mut rig = Rig::start("");
    for round in 0..5 {
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = ["alice", "bob"]
            .into_iter()
            .map(|by| {
                let barrier = barrier.clone();
                let port = rig.http;
                std::thread::spawn(move || {
                    let body = serde_json::to_vec(
                        &json!({"target": "site", "reason": format!("mine {round}"), "by": by}),
                    )
                    .unwrap();
                    let raw = raw_request(
                        port,
                        "POST",
                        "/api/v1/holds",
                        &Cred::Bearer(TOKEN).headers(&body),
                        &body,
                    );
                    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                    stream.set_read_timeout(Some(WAIT)).ok();
                    // Everything but the last byte, so both requests complete at the barrier.
                    let (most, last) = raw.split_at(raw.len() - 1);
                    stream.write_all(most).expect("write");
                    barrier.wait();
                    stream.write_all(last).expect("write");
                    (by, read_reply(&mut stream).expect("reply"))
                })
            })
            .collect();
        let mut replies: Vec<(&str, Reply)> =
            threads.into_iter().map(|t| t.join().unwrap()).collect();
        replies.sort_by_key(|(_, r)| r.status);
        let statuses: Vec<u16> = replies.iter().map(|(_, r)| r.status).collect();
        assert_eq!(statuses, [201, 409], "round {round}: {replies:#?}");
        let winner = replies[0].0;
        like(
            &replies[1].1.error(),
            &format!(
                "site is already held by {winner} since {{time}} UTC: mine {round} \
                 (lift it with !unhold site first)"
            ),
        );
        let said = rig.until_marker();
        let texts: Vec<&str> = said.iter().map(|l| l.text()).collect();
        assert_eq!(
            texts,
            [format!(
                "NO DEPLOY PLEASE: site held by {winner} (mine {round})"
            )],
            "round {round}"
        );
        let holds = rig.get("/api/v1/holds").expect(200);
        assert_eq!(holds["holds"].as_array().unwrap().len(), 1, "{holds}");
        assert_eq!(holds["holds"][0]["by"], winner);
        rig.delete(
            &format!("/api/v1/holds/site?by={winner}"),
            Cred::Bearer(TOKEN),
        )
        .expect(200);
        like(
            &rig.next_said(),
            &format!("DEPLOY OK: {winner} lifted the hold on site (held {{dur}})"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 10. What lever's own documentation promises, and what it does not do yet. Each of these fails
// on the commit the tests were written for; see the notes on each.

/// `GET /api/v1/log?target=nope` answers 409 Conflict (`Deploys::log` refuses, and
/// `From<DeployError> for ApiError` makes every refusal a 409); every other endpoint that is
/// given an unknown target answers 404, and nothing conflicts in a read.
#[test]
fn an_unknown_target_in_the_log_is_404_like_everywhere_else() {
    let rig = Rig::start("");
    let reply = rig.get("/api/v1/log?target=nope");
    assert_eq!(reply.status, 404, "{reply:?}");
    assert_eq!(reply.error(), "no target 'nope'; targets: site, api");
}

/// A duration past `MAX_HOLD` is bad input like any unparsable duration (400), but
/// `Deploys::hold` refuses it as `DeployError::Refused`, which `api::place_hold` turns into
/// 409 Conflict.
#[test]
fn a_hold_longer_than_a_year_is_a_bad_request() {
    let mut rig = Rig::start("");
    let reply = rig.hold(json!({"reason": "x", "by": "mygrant", "duration": "400days"}));
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(
        reply.error(),
        "'duration' must be more than 0 and at most 366 days; leave it out to hold until lifted"
    );
    rig.silent("a hold too long");
}

/// src/http/error.rs: "The one error shape every endpoint answers with: a status and
/// `{"error": "…"}`". A bad query string and a body past the limit are answered by axum's
/// extractor rejections instead, in text/plain.
#[test]
fn every_error_is_json() {
    let rig = Rig::start("body_limit = 2048");
    let mut wrong = Vec::new();
    for path in ["/api/v1/log?limit=abc", "/api/v1/log?colour=red"] {
        let reply = rig.get(path);
        assert_eq!(reply.status, 400, "{path}: {reply:?}");
        wrong.push((path, reply));
    }
    let reply = rig.delete(
        "/api/v1/holds/site?by=aaron&colour=red",
        Cred::Bearer(TOKEN),
    );
    assert_eq!(reply.status, 400, "{reply:?}");
    wrong.push(("DELETE ?colour=red", reply));
    let big = serde_json::to_vec(&json!({"reason": "x".repeat(3000), "by": "mygrant"})).unwrap();
    let reply = rig.post_raw("/api/v1/holds", Cred::Bearer(TOKEN), &big);
    assert_eq!(reply.status, 413, "{reply:?}");
    wrong.push(("413", reply));
    wrong.retain(|(_, reply)| {
        reply.header("content-type") != Some("application/json")
            || !matches!(serde_json::from_str::<Value>(&reply.body), Ok(v) if v["error"].is_string())
    });
    assert!(
        wrong.is_empty(),
        "errors that are not {{\"error\": …}}: {wrong:#?}"
    );
}

/// `DELETE /api/v1/holds/all` is documented as "`all` for the hold on every target"
/// (src/http/api.rs, `lift_hold`), but it calls `Deploys::unhold(None)`, which is `!unhold`
/// without a target: "the hold on every target, or the only hold there is". So with only
/// dana's hold on `site` in force, a script lifting its own hold on everything lifts dana's.
#[test]
fn delete_all_lifts_only_the_hold_on_every_target() {
    let mut rig = Rig::start("");
    rig.hold(json!({"target": "site", "reason": "load test", "by": "dana"}))
        .expect(201);
    assert_eq!(
        rig.next_said(),
        "NO DEPLOY PLEASE: site held by dana (load test)"
    );
    let reply = rig.delete("/api/v1/holds/all?by=ci-bot", Cred::Bearer(CI_TOKEN));
    assert_eq!(
        reply.status, 404,
        "nothing is held on every target, yet: {reply:?}"
    );
    rig.silent("a lift of a hold on every target when there is none");
    assert_eq!(
        rig.get("/api/v1/holds/site").status,
        423,
        "dana's hold is gone"
    );
}

/// `Deploys::holds` says "A hold past its expiry no longer counts, even in the moments before
/// the watcher lifts it", and `GET /api/v1/holds` agrees; but the gate (`api::gate` via
/// `Deploys::status`) and `!deploy` (`Deploys::hold_gate`) read `store.holds()` unfiltered, so
/// for up to 5 s (watch.rs `CHECK_EVERY`) after a hold expires the gate answers 423 and
/// deploys are refused while the list of holds is empty.
#[test]
fn an_expired_hold_no_longer_locks_the_gate_or_deploys() {
    let mut rig = Rig::start("");
    // A first hold that expires at once tells when the watcher has just looked.
    rig.hold(json!({"target": "api", "reason": "blip", "by": "dana", "duration": "10ms"}))
        .expect(201);
    like(
        &rig.next_said(),
        "NO DEPLOY PLEASE: api held by dana (blip) until {time} UTC",
    );
    assert_eq!(
        rig.client
            .expect_within(Duration::from_secs(10), |l| said(l)
                && l.text().contains("expired"))
            .text(),
        "DEPLOY OK: dana's hold on api expired (blip)"
    );
    // The next look is about 5 s away: a hold of one second expires well before it.
    rig.hold(json!({"target": "api", "reason": "short", "by": "dana", "duration": "1s"}))
        .expect(201);
    like(
        &rig.next_said(),
        "NO DEPLOY PLEASE: api held by dana (short) until {time} UTC",
    );
    std::thread::sleep(Duration::from_millis(1500));
    let holds = rig.get("/api/v1/holds").expect(200);
    // If the watcher has already lifted it (a very slow machine), everything agrees anyway.
    assert_eq!(holds, json!({"holds": []}), "the hold has expired");
    let gate = rig.get("/api/v1/holds/api");
    assert_eq!(
        gate.status, 200,
        "/api/v1/holds lists no hold, yet the gate says: {gate:?}"
    );
    rig.say("!deploy api");
    // (The watcher's own DEPLOY OK may come in between once it looks.)
    let reply = rig
        .client
        .expect(|l| said(l) && !l.text().ends_with("expired (short)"))
        .text()
        .to_owned();
    assert_eq!(
        reply,
        "alice is deploying api: the current build → live (1 step)"
    );
}

/// `[http] request_timeout`: "A request taking longer is answered 408". A slow body is; but a
/// request whose headers never end is never answered nor closed (axum::serve sets no header
/// read timeout), so a client can hold connections and tasks open for ever.
#[test]
fn a_request_whose_headers_never_end_is_cut_off() {
    let rig = Rig::start("request_timeout = \"500ms\"");
    let mut stream = TcpStream::connect(("127.0.0.1", rig.http)).expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("write");
    stream.set_read_timeout(Some(WAIT)).ok();
    let mut bytes = Vec::new();
    let read = stream.read_to_end(&mut bytes);
    assert!(
        read.is_ok() || bytes.starts_with(b"HTTP/1.1 408"),
        "the connection was still open after {WAIT:?}: {read:?} {:?}",
        String::from_utf8_lossy(&bytes)
    );
}

/// RFC 9110 §11.1: the authentication scheme is case-insensitive. `auth::authenticate` takes
/// "Bearer " and "bearer " only.
#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let rig = Rig::start("");
    let body = serde_json::to_vec(&json!({"job": "j", "status": "success"})).unwrap();
    for scheme in ["Bearer", "bearer", "BEARER", "BeArEr"] {
        let reply = request(
            rig.http,
            "POST",
            "/hooks/build",
            &[("Authorization".into(), format!("{scheme} {CI_TOKEN}"))],
            &body,
        );
        assert_eq!(reply.status, 202, "{scheme}: {reply:?}");
    }
}
