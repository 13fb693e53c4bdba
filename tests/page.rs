//! The deploy page end to end: lever's real binary on a real ngIRCd with `[http]` on, a raw IRC
//! client in #ops typing commands, and the page fetched over HTTP (GET, HTML back), its event
//! stream read raw, and the page open in a real browser (headless chromium over WebDriver),
//! where what IRC changes shows without a reload. Screenshots land in
//! `target/tmp/screenshots/`.

mod support;
use support::*;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `site`: a one-step stage with a version, a one-step deploy; `slow`: a stage whose step says
/// a line and waits for the file `go` in lever's folder; flags `video` (a contingency switch)
/// and `search`.
fn config(irc_port: u16, http_port: u16) -> String {
    bot_config(
        irc_port,
        "",
        &format!(
            "[http]\nlisten = \"127.0.0.1:{http_port}\"\n\
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

struct Rig {
    alice: Client,
    lever: Lever,
    http: u16,
    _server: Ngircd,
}

impl Rig {
    fn start() -> Rig {
        let server = Ngircd::start();
        let mut alice = Client::connect(server.port, "alice");
        alice.join("#ops");
        let (lever, http, ()) = start_serving_http(|http| {
            let lever = Lever::prepare(&config(server.port, http));
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
