//! The deploy page end to end: lever's real binary on a real ngIRCd with `[http]` on, a raw IRC
//! client in #ops typing commands, and the page fetched over HTTP (GET, HTML back), its event
//! stream read raw, and the page open in a real browser (headless chromium over WebDriver),
//! where what IRC changes shows without a reload, a dropped stream resumes, and people a real
//! nginx signs in act with its buttons. Screenshots land in `target/tmp/screenshots/`.

mod support;
use support::*;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `site`: a one-step stage with a version, a one-step deploy; `slow`: a stage whose step says
/// a line and waits for the file `go` in lever's folder; flags `video` (a contingency switch)
/// and `search`.
fn config(irc_port: u16, http_port: u16, extra: &str) -> String {
    bot_config(
        irc_port,
        "",
        &format!(
            "{extra}[http]\nlisten = \"127.0.0.1:{http_port}\"\ntoken = \"{AM_TOKEN}\"\n\
             [targets.site]\nversion = [\"sh\", \"-c\", \"echo r$LEVER_RUN_ID\"]\n\
             [[targets.site.stage]]\nname = \"exporting svn\"\nrun = [\"true\"]\n\
             [[targets.site.deploy]]\nname = \"syncing\"\nrun = [\"true\"]\n\
             [targets.slow]\n\
             [[targets.slow.stage]]\nname = \"checkout\"\nrun = [\"true\"]\n\
             [[targets.slow.stage]]\nname = \"precompiling\"\nrun = [\"./wait.sh\"]\n\
             [flags.video]\ndescription = \"the video player\"\ndefault = false\n\
             contingency = true\n\
             [flags.search]\ndefault = \"solr\"\nvariants = {{ solr = \"solr\", es = \"elastic\" }}\n"
        ),
    )
}

/// lever's `[http] token`, which the tests' Alertmanager presents.
const AM_TOKEN: &str = "alertmanager-to-lever-0123456789";

struct Rig {
    alice: Client,
    lever: Lever,
    http: u16,
    _server: Ngircd,
}

/// People the proxy signs in act on the page: web alice may stage, deploy and hold; web bob
/// may only hold; web carol nothing. Everyone on IRC is an admin (to hold from the channel).
const DASHBOARD: &str = "[dashboard]\nuser_header = \"X-Forwarded-User\"\n\
    trusted_proxies = [\"127.0.0.2\"]\n\
    [access]\nstage = [\"web:alice\"]\ndeploy = [\"web:alice\"]\nhold = [\"web:alice\", \"web:bob\"]\n\
    admin = [\"*!*@*\"]\n";

impl Rig {
    fn start() -> Rig {
        Rig::start_with("")
    }

    /// With `extra` config sections before the rest.
    fn start_with(extra: &str) -> Rig {
        let server = Ngircd::start();
        let mut alice = Client::connect(server.port, "alice");
        alice.join("#ops");
        let (lever, http, ()) = start_serving_http(|http| {
            let lever = Lever::prepare(&config(server.port, http, extra));
            lever.script(
                "wait.sh",
                "echo compiling 4,210 assets\nwhile [ ! -f go ]; do sleep 0.05; done\necho done\n",
            );
            (lever, ())
        });
        alice.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");
        Rig {
            alice,
            lever,
            http,
            _server: server,
        }
    }

    /// `path`'s status and HTML.
    fn get(&self, path: &str) -> (u16, String) {
        http_request(self.http, "GET", path, None, "")
    }

    fn page(&self, path: &str) -> String {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.starts_with("<!DOCTYPE html>"), "{path}: {body}");
        body
    }

    /// Waits for lever's line in #ops starting with `start`.
    fn hear(&mut self, start: &str) -> String {
        let line = self
            .alice
            .expect(|l| l.is_privmsg_from("lever") && l.text().starts_with(start));
        line.text().to_owned()
    }

    /// Says `text` in #ops and waits for lever's line starting with `reply`.
    fn say(&mut self, text: &str, reply: &str) -> String {
        self.alice.say_ops(text);
        let line = self
            .alice
            .expect(|l| l.is_privmsg_from("lever") && l.text().starts_with(reply));
        line.text().to_owned()
    }
}

/// The text of `html`'s `<main>` with tags dropped and whitespace collapsed, for reading it as
/// a person.
fn words(html: &str) -> String {
    let main = html.split("<main>").nth(1).expect("a <main>");
    let main = main.split("</main>").next().unwrap_or(main);
    let mut out = String::new();
    let mut in_tag = false;
    for c in main.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_banner_turns_red_with_a_hold_said_on_irc_and_its_reason_stays_text() {
    let mut rig = Rig::start();
    let page = rig.page("/");
    assert!(words(&page).contains("DEPLOY OK no holds"), "{page}");
    assert!(!page.contains("NO DEPLOY PLEASE"));
    // Nothing from another host: the page works on a network without internet.
    assert!(!page.contains("src=") && !page.contains("http://") && !page.contains("https://"));

    rig.say(
        "!hold site <script>alert(1)</script> & db migration",
        "NO DEPLOY PLEASE",
    );
    let page = rig.page("/");
    let text = words(&page);
    assert!(!text.contains("DEPLOY OK"), "{text}");
    like(
        &text,
        "NO DEPLOY PLEASE site held by alice since {time} UTC ({dur} ago): \
         &lt;script&gt;alert(1)&lt;/script&gt; &amp; db migration {*}",
    );
    assert!(
        !page.contains("<script>alert"),
        "user text reached the page as markup"
    );
    // The held target's card says so; the other does not.
    assert!(
        text.contains("site held live none yet staged none yet"),
        "{text}"
    );
    assert!(
        text.contains("slow live none yet staged none yet"),
        "{text}"
    );

    rig.say("!unhold site", "DEPLOY OK");
    assert!(words(&rig.page("/")).contains("DEPLOY OK no holds"));
}

#[test]
fn builds_link_to_their_runs_and_a_run_shows_every_step() {
    let mut rig = Rig::start();
    let staged = rig.say("!stage site", "site staged by alice");
    let version = like(&staged, "site staged by alice in {dur}: {word}{*}")[1].clone();
    rig.say("!deploy site", "site deployed by alice");

    let page = rig.page("/");
    let text = words(&page);
    like(
        &text,
        &format!(
            "{{*}} site live {version} by alice at {{time}} UTC staged {version} by alice at \
             {{time}} UTC slow {{*}}"
        ),
    );
    // The log on the front page, newest first, each run's entry linked to the run.
    assert!(
        text.contains(&format!("alice site deployed {version}")),
        "{text}"
    );
    let deploy_run = page
        .split("href=\"/runs/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to a run")
        .to_owned();
    let run = words(&rig.page(&format!("/runs/{deploy_run}")));
    like(
        &run,
        &format!(
            "{{*}} site deploy #{deploy_run} succeeded by alice, started {{time}} UTC, took \
             {{dur}}; {version} syncing.....ok ({{dur}})"
        ),
    );

    let (status, missing) = rig.get("/runs/999999");
    assert_eq!(status, 404);
    assert!(
        missing.starts_with("<!DOCTYPE html>"),
        "an HTML page: {missing}"
    );
    assert!(words(&missing).contains("There is no run 999999 in the deploy log."));
    let (status, _) = rig.get("/runs/not-a-number");
    assert_eq!(status, 400);
}

#[test]
fn the_running_step_shows_its_elapsed_time_and_last_line_then_the_run_ends() {
    let mut rig = Rig::start();
    rig.say("!stage slow", "alice is staging slow");
    // The page as it is while the second step waits.
    let deadline = Instant::now() + WAIT;
    let text = loop {
        let text = words(&rig.page("/"));
        if text.contains("compiling 4,210 assets") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the running step never showed: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    like(
        &text,
        "{*} Active stage by alice — running for {dur} checkout.....ok ({dur}) \
         precompiling (2 of 2)….. running for {dur} compiling 4,210 assets The run → {*}",
    );
    std::fs::write(rig.lever.path("go"), "").unwrap();
    rig.alice
        .expect(|l| l.is_privmsg_from("lever") && l.text().starts_with("slow staged by alice"));
    let text = words(&rig.page("/"));
    assert!(!text.contains("Active stage"), "{text}");
    assert!(
        text.contains("slow live none yet staged (no version) by alice"),
        "{text}"
    );
}

#[test]
fn the_whole_log_pages_fifty_entries_at_a_time() {
    let mut rig = Rig::start();
    // 30 holds and lifts: 60 entries.
    for i in 0..30 {
        rig.say(&format!("!hold site round {i}"), "NO DEPLOY PLEASE");
        rig.say("!unhold site", "DEPLOY OK");
    }
    let first = rig.page("/log");
    let text = words(&first);
    assert!(text.contains("round 29"), "{text}");
    assert!(!text.contains("round 4)"), "{text}");
    assert_eq!(first.matches("<tr").count(), 50);
    let older = first
        .split("href=\"/log?before=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to older entries")
        .to_owned();
    let second = rig.page(&format!("/log?before={older}"));
    assert_eq!(second.matches("<tr").count(), 10);
    let text = words(&second);
    assert!(
        text.contains("round 0") && text.contains("round 4"),
        "{text}"
    );
    assert!(
        !second.contains("/log?before="),
        "the last page links no further"
    );
    let (status, _) = rig.get("/log?before=x");
    assert_eq!(status, 400);
}

#[test]
fn flags_show_as_the_channel_set_them() {
    let mut rig = Rig::start();
    let text = words(&rig.page("/"));
    assert!(
        text.contains(
            "Feature flags video: off · contingency switch (safe: off) search: solr Deploy log"
        ),
        "{text}"
    );
    rig.say("!flag search es 30% canary", "FLAG search es 30% by alice");
    rig.say("!flag video disable checking", "FLAG video");
    let page = rig.page("/");
    let text = words(&page);
    assert!(
        text.contains(
            "video: DISABLED (serves off) · contingency switch (safe: off) \
             search: es for 30% of targeting keys (solr otherwise)"
        ),
        "{text}"
    );
    assert!(page.contains("<li class=\"off\">video: DISABLED"), "{page}");
}

/// `GET /events` on a raw connection (HTTP/1.0, so the stream is the body as it is sent),
/// with `Last-Event-ID: last` when given; reads up to the blank line after the headers.
fn open_events(http: u16, last: Option<&str>) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", http)).expect("connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let resume = last.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
    write!(
        stream,
        "GET /events HTTP/1.0\r\nHost: lever\r\n{resume}\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(
        status.starts_with("HTTP/1.0 200") || status.starts_with("HTTP/1.1 200"),
        "{status}"
    );
    let mut content_type = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.to_ascii_lowercase().starts_with("content-type:") {
            content_type = line.clone();
        }
        if line == "\r\n" {
            break;
        }
    }
    assert!(content_type.contains("text/event-stream"), "{content_type}");
    reader
}

/// The next event on the stream (keep-alive comments skipped): id, kind, data.
fn next_event(reader: &mut BufReader<TcpStream>) -> (String, String, String) {
    let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .expect("an event within the wait");
        assert!(n > 0, "the stream ended");
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if !kind.is_empty() {
                return (id, kind, data);
            }
            continue;
        }
        if let Some(v) = line.strip_prefix("id:") {
            id = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("event:") {
            kind = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("data:") {
            data = v.trim().to_owned();
        }
    }
}

#[test]
fn events_stream_what_happens_and_a_reconnect_resumes_without_loss_or_repeat() {
    let mut rig = Rig::start();
    let mut stream = open_events(rig.http, None);
    rig.say("!hold site db migration", "NO DEPLOY PLEASE");
    let (first, kind, data) = next_event(&mut stream);
    assert_eq!(kind, "hold");
    assert!(data.contains("\"reason\":\"db migration\""), "{data}");
    drop(stream);

    // While no stream is open: a lift and a whole stage.
    rig.say("!unhold site", "DEPLOY OK");
    rig.say("!stage site", "site staged by alice");
    let mut resumed = open_events(rig.http, Some(&first));
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next_event(&mut resumed));
    }
    let kinds: Vec<&str> = seen.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["unhold", "run", "step", "run_end"], "{seen:?}");
    let ids: Vec<u64> = seen.iter().map(|(id, _, _)| id.parse().unwrap()).collect();
    let first: u64 = first.parse().unwrap();
    assert_eq!(ids, (first + 1..=first + 4).collect::<Vec<_>>());
    assert!(
        seen[2]
            .2
            .contains("\"name\":\"exporting svn\",\"number\":1"),
        "{seen:?}"
    );
    assert!(seen[3].2.contains("\"state\":\"succeeded\""), "{seen:?}");
    // Then what happens next, once.
    rig.say("!hold site again", "NO DEPLOY PLEASE");
    let (id, kind, _) = next_event(&mut resumed);
    assert_eq!(
        (id.parse::<u64>().unwrap(), kind.as_str()),
        (first + 5, "hold")
    );

    // An id this lever never gave (one from before it restarted): load the page again.
    let mut stale = open_events(rig.http, Some("999999"));
    let (_, kind, _) = next_event(&mut stale);
    assert_eq!(kind, "reload");
}

/// Where the browser tests leave their screenshots (look at them after a run).
fn screenshot_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("screenshots")
        .join(name)
}

#[test]
fn in_a_browser_the_page_follows_irc_without_a_reload() {
    let mut rig = Rig::start();
    let browser = browser::Browser::start(1280, 900);
    browser.goto(&format!("http://127.0.0.1:{}/", rig.http));
    browser.wait_for("DEPLOY OK", WAIT);
    browser.wait_for("data-live=\"on\"", WAIT);
    // A mark on this very document: a reload would lose it.
    browser.run("window.notReloaded = true;");

    rig.say("!hold site db migration", "NO DEPLOY PLEASE");
    let took = browser.wait_for("NO DEPLOY PLEASE", Duration::from_secs(2));
    assert!(took < Duration::from_secs(2));
    assert_eq!(browser.run("return window.notReloaded === true;"), true);
    browser.screenshot(&screenshot_path("held.png"));

    // A stage's steps, live: the running one, then the run's end.
    rig.say("!stage slow", "alice is staging slow");
    browser.wait_for("precompiling (2 of 2)", WAIT);
    let html = browser.html();
    let checkout = html
        .find("checkout.....ok")
        .expect("the finished step first");
    let running = html
        .find("precompiling (2 of 2)")
        .expect("then the running one");
    assert!(checkout < running);
    browser.wait_for("compiling 4,210 assets", WAIT);
    browser.screenshot(&screenshot_path("running.png"));
    std::fs::write(rig.lever.path("go"), "").unwrap();
    browser.wait_for("slow staged", WAIT);
    assert!(!browser.html().contains("Active stage"));
    assert_eq!(browser.run("return window.notReloaded === true;"), true);

    // On a phone.
    let phone = browser::Browser::start(400, 860);
    phone.goto(&format!("http://127.0.0.1:{}/", rig.http));
    phone.wait_for("NO DEPLOY PLEASE", WAIT);
    phone.screenshot(&screenshot_path("phone.png"));
}

/// The value of the hidden field `name` in `html`'s first form.
fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A form post as a browser sends it, to `port` (lever itself, or the proxy in front of it).
fn post_form(port: u16, path: &str, headers: &[(&str, &str)], form: &str) -> Reply {
    let mut head: Vec<(String, String)> = vec![(
        "Content-Type".into(),
        "application/x-www-form-urlencoded".into(),
    )];
    head.extend(headers.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    // raw_request names JSON for a body; a form names itself last, which servers take.
    let raw = raw_request(port, "POST", path, &head, form.as_bytes());
    let raw = String::from_utf8(raw)
        .unwrap()
        .replacen("Content-Type: application/json\r\n", "", 1);
    exchange(port, raw.as_bytes(), WAIT).unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

fn get_as(port: u16, path: &str, headers: &[(&str, &str)]) -> String {
    let head: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let reply = request(port, "GET", path, &head, b"");
    assert_eq!(reply.status, 200, "GET {path}: {reply:?}");
    reply.body
}

#[test]
fn in_a_browser_someone_the_proxy_signs_in_stages_deploys_and_holds_from_the_page() {
    let mut rig = Rig::start_with(DASHBOARD);
    let proxy = nginx::Nginx::start(rig.http, "alice");
    let browser = browser::Browser::start(1280, 900);
    let page = format!("http://127.0.0.1:{}/", proxy.port());
    browser.goto(&page);
    browser.wait_for("Signed in as <b>alice</b>", WAIT);
    browser.wait_for("data-live=\"on\"", WAIT);
    browser.screenshot(&screenshot_path("signed-in.png"));

    // Stage: the channel hears it, said as done on the page.
    browser.click("form[action='/stage/site'] button");
    let started = rig.hear("alice is staging site");
    assert!(started.ends_with("from the deploy page"), "{started}");
    rig.hear("site staged by alice");
    browser.wait_for("r1</a>", WAIT);

    // Deploy: first the page of what will ship, then the button on it.
    browser.click("a[href='/deploy/site']");
    browser.wait_for("Deploy site?", WAIT);
    assert!(
        words(&browser.html()).contains("site would ship r1"),
        "{}",
        browser.html()
    );
    browser.screenshot(&screenshot_path("confirm-deploy.png"));
    browser.click("form.confirm button");
    let deploying = rig.hear("alice is deploying site");
    assert!(deploying.contains("from the deploy page"), "{deploying}");
    rig.hear("site deployed");
    assert_eq!(browser.url(), page);

    // Hold with a reason, then lift it.
    browser.wait_for("DEPLOY OK", WAIT);
    browser.type_into("#reason-site", "load test at 14:00");
    browser.click("#reason-site ~ button");
    rig.hear("NO DEPLOY PLEASE: site held by alice (load test at 14:00)");
    browser.wait_for("Lift (DEPLOY OK)", WAIT);
    browser.screenshot(&screenshot_path("held-from-the-page.png"));
    let phone = browser::Browser::start(400, 860);
    phone.goto(&page);
    phone.wait_for("Lift (DEPLOY OK)", WAIT);
    phone.screenshot(&screenshot_path("phone-signed-in.png"));
    browser.click("form.lift button");
    rig.hear("DEPLOY OK: alice lifted the hold on site");

    // The deploy log says where each came from.
    let log = request(rig.http, "GET", "/api/v1/log?limit=20", &[], b"").expect(200);
    let from_page = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["text"].as_str().unwrap().contains("from the deploy page"))
        .count();
    assert_eq!(from_page, 4, "stage, deploy, hold, lift: {log}");

    // Straight to lever, not through the proxy: nobody is signed in, no buttons; a header
    // naming alice sent by the browser itself grants nothing either.
    let direct = format!("http://127.0.0.1:{}/", rig.http);
    browser.goto(&direct);
    browser.wait_for("DEPLOY OK", WAIT);
    assert!(!browser.html().contains("<form"), "{}", browser.html());
    browser.send_headers(serde_json::json!({ "X-Forwarded-User": "alice" }));
    browser.goto(&direct);
    browser.wait_for("DEPLOY OK", WAIT);
    let html = browser.html();
    assert!(
        !html.contains("<form") && !html.contains("Signed in"),
        "{html}"
    );
    browser.screenshot(&screenshot_path("read-only.png"));
}

#[test]
fn a_form_acts_once_and_only_for_its_signed_in_sender_from_its_own_page() {
    let mut rig = Rig::start_with(DASHBOARD);
    let proxy = nginx::Nginx::start(rig.http, "alice");
    let (p, direct) = (proxy.port(), rig.http);
    let origin = format!("http://127.0.0.1:{p}");
    let html = get_as(p, "/", &[]);
    let said = words(&html);
    assert!(
        said.contains("Signed in as alice") && said.contains("you may stage, deploy, hold here.")
    );
    let (csrf, key) = (field(&html, "csrf"), field(&html, "key"));
    let form = format!("csrf={csrf}&key={key}");

    // A forged header straight to lever (not from the proxy), even with alice's own token.
    let forged = post_form(
        direct,
        "/stage/site",
        &[
            ("X-Forwarded-User", "alice"),
            ("Origin", &format!("http://127.0.0.1:{direct}")),
        ],
        &form,
    );
    assert_eq!(forged.status, 403, "{forged:?}");
    assert!(forged.body.contains("not signed in"), "{}", forged.body);
    let straight = get_as(direct, "/", &[("X-Forwarded-User", "alice")]);
    assert!(!straight.contains("<form") && !straight.contains("Signed in"));
    assert!(rig
        .lever
        .log()
        .contains("not in [dashboard] trusted_proxies was ignored"));

    // Another site's form, a form without the token, someone else's token.
    let evil = post_form(
        p,
        "/stage/site",
        &[("Origin", "https://evil.example")],
        &form,
    );
    assert_eq!(evil.status, 403, "{evil:?}");
    assert!(evil.body.contains("https://evil.example"), "{}", evil.body);
    let stale = post_form(
        p,
        "/stage/site",
        &[("Origin", &origin)],
        &format!("csrf=00&key={key}"),
    );
    assert_eq!(stale.status, 403);
    assert!(stale.body.contains("reload it"), "{}", stale.body);
    let as_bob = post_form(
        p,
        "/stage/site",
        &[("Origin", &origin), ("X-Test-User", "bob")],
        &form,
    );
    assert_eq!(as_bob.status, 403, "alice's token is not bob's: {as_bob:?}");

    // carol is signed in with no role: told so, no forms. bob may hold, not stage: his own
    // token does not make him a stager.
    let carols = get_as(p, "/", &[("X-Test-User", "carol")]);
    assert!(words(&carols).contains("read-only (no [access] role names web:carol)"));
    assert!(!carols.contains("<form"));
    let bobs = get_as(p, "/", &[("X-Test-User", "bob")]);
    assert!(words(&bobs).contains("you may hold here"));
    assert!(!bobs.contains("/stage/site"));
    let bob_form = format!("csrf={}&key={}", field(&bobs, "csrf"), field(&bobs, "key"));
    let bob = post_form(
        p,
        "/stage/site",
        &[("Origin", &origin), ("X-Test-User", "bob")],
        &bob_form,
    );
    assert_eq!(bob.status, 403);
    assert!(bob.body.contains("bob may not stage"), "{}", bob.body);

    // The same form sent twice at once (a double click): one run, both answered alike.
    let twice: Vec<Reply> = std::thread::scope(|s| {
        let sends: Vec<_> = (0..2)
            .map(|_| s.spawn(|| post_form(p, "/stage/site", &[("Origin", &origin)], &form)))
            .collect();
        sends.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for reply in &twice {
        assert_eq!(reply.status, 303, "{reply:?}");
        assert_eq!(reply.header("location"), Some("/"));
    }
    rig.hear("alice is staging site");
    rig.hear("site staged by alice");
    let again = post_form(p, "/stage/site", &[("Origin", &origin)], &form);
    assert_eq!(
        again.status, 303,
        "a third send, later, is still the first: {again:?}"
    );
    let log = request(direct, "GET", "/api/v1/log?limit=20", &[], b"").expect(200);
    let stages = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["text"]
                .as_str()
                .unwrap()
                .starts_with("starting stage of site")
        })
        .count();
    assert_eq!(stages, 1, "{log}");

    // A hold from the channel stops a deploy from the page, as it stops !deploy.
    rig.say("!hold site schema change", "NO DEPLOY PLEASE");
    let html = get_as(p, "/deploy/site", &[]);
    assert!(
        words(&html).contains("the deploy will be refused"),
        "{html}"
    );
    let staged = field(&html, "staged");
    let form = format!(
        "csrf={}&key={}&staged={staged}",
        field(&html, "csrf"),
        field(&html, "key")
    );
    let refused = post_form(p, "/deploy/site", &[("Origin", &origin)], &form);
    assert_eq!(refused.status, 409, "{refused:?}");
    assert!(
        refused.body.contains("site is held: NO DEPLOY PLEASE"),
        "{}",
        refused.body
    );
    // What is staged changed since the page was shown: look again.
    let form = format!("csrf={csrf}&key=0123456789abcdef99&staged=999");
    rig.say("!unhold site", "DEPLOY OK");
    let changed = post_form(p, "/deploy/site", &[("Origin", &origin)], &form);
    assert_eq!(changed.status, 409);
    assert!(
        changed.body.contains("changed since you looked"),
        "{}",
        changed.body
    );
}

#[test]
fn firing_alerts_show_on_the_page_critical_first_until_they_resolve() {
    let server = Ngircd::start();
    let mut ops = Client::connect(server.port, "alice");
    ops.join("#ops");
    let (_lever, http, am) = start_serving_http(|http| {
        let hook = format!("http://127.0.0.1:{http}/hooks/alertmanager");
        let am = alertmanager::Alertmanager::start(&hook, AM_TOKEN);
        (Lever::prepare(&config(server.port, http, "")), am)
    });
    ops.expect(|l| l.verb == "JOIN" && l.from == "lever");
    let get = || http_request(http, "GET", "/", None, "").1;
    assert!(!get().contains("Firing alerts"));
    let mut stream = open_events(http, None);

    let down = alertmanager::alert(
        &[
            ("alertname", "SiteDown"),
            ("instance", "web-1"),
            ("severity", "critical"),
        ],
        &[("summary", "no answer on :443 <for 2m>")],
    );
    let disk = alertmanager::alert(
        &[
            ("alertname", "DiskFilling"),
            ("instance", "db-1"),
            ("severity", "warning"),
        ],
        &[("summary", "82% full")],
    );
    am.fire(&[disk.clone(), down.clone()]);
    // The page's stream says something changed (so open pages render anew)…
    let (_, kind, data) = next_event(&mut stream);
    assert_eq!(kind, "alert", "{data}");
    // …and the page lists both, critical first, the summary as text.
    let deadline = Instant::now() + WAIT;
    let page = loop {
        let page = get();
        if page.contains("DiskFilling") && page.contains("SiteDown") {
            break page;
        }
        assert!(Instant::now() < deadline, "the alerts never showed: {page}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = words(&page);
    assert!(text.contains("Firing alerts (2)"), "{text}");
    assert!(
        text.find("SiteDown on web-1 · critical: no answer on :443 <for 2m>")
            < text.find("DiskFilling on db-1 · warning: 82% full"),
        "{text}"
    );
    assert!(page.contains("&lt;for 2m&gt;"), "escaped: {page}");

    am.resolve(&[down]);
    let deadline = Instant::now() + WAIT;
    loop {
        let page = get();
        if !page.contains("SiteDown") {
            assert!(
                words(&page).contains("Firing alerts (1) DiskFilling"),
                "{page}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "SiteDown never left the page");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn in_a_browser_a_dropped_event_stream_resumes_with_what_it_missed() {
    let mut rig = Rig::start();
    let wire = proxy::Proxy::start(rig.http);
    let browser = browser::Browser::start(1280, 900);
    browser.goto(&format!("http://127.0.0.1:{}/", wire.port));
    browser.wait_for("data-live=\"on\"", WAIT);
    // Every event, as lever sends it, on a stream of our own straight to lever.
    let mut all = open_events(rig.http, None);
    rig.say("!hold site first", "NO DEPLOY PLEASE");
    let (first, _, _) = next_event(&mut all);
    browser.wait_for(&format!("data-last-event=\"{first}\""), WAIT);

    // The page's stream is cut and cannot come back yet: what happens meanwhile…
    wire.freeze();
    wire.cut();
    browser.wait_for("data-live=\"off\"", WAIT);
    rig.say("!unhold site", "DEPLOY OK");
    rig.say("!hold site second thoughts", "NO DEPLOY PLEASE");
    let (_, kind, _) = next_event(&mut all);
    assert_eq!(kind, "unhold");
    let (last, kind, _) = next_event(&mut all);
    assert_eq!(kind, "hold");
    assert!(browser.html().contains("first"), "no news while cut off");

    // …reaches it when it reconnects: the browser asks from its last event (Last-Event-ID),
    // gets the two it missed, and shows the hold placed while it was away.
    wire.thaw();
    browser.wait_for(&format!("data-last-event=\"{last}\""), WAIT);
    browser.wait_for("second thoughts", WAIT);
    assert!(browser.html().contains("data-live=\"on\""));
}
