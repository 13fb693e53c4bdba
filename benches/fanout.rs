//! The deploy page's live updates, fanned out: 500 pages hold `GET /events` open (one
//! keep-alive HTTP/1.1 connection each, the Server-Sent Events stream read and parsed here),
//! then one event at a time (a hold placed or lifted over the HTTP API) and, for every page, the
//! time from just before the API request is written until that page has read the event's frame
//! (`event: hold` / `event: unhold`). Reported: per event, the time until all pages have it;
//! across events its p50 and p99; the p50 and p99 of every page's own delivery time; and
//! lever's memory per open page (RSS with the pages open and settled, less RSS before, over
//! the number of pages).
//!
//! Then what a browser does with an event (src/http/page.js): each page, as soon as it has the
//! event, fetches `GET /` again on a connection of its own, and the time is from the trigger
//! until every page has the whole HTML; and lever's memory and threads after those fetches.
//!
//! lever's release binary, `[http]` on loopback, a real ngIRCd for its IRC side, three targets.
//! The pages are one single-threaded client on the same 2 cores as lever, so the last page's
//! time includes the client reading the 499 sockets before it. The time includes the hold's
//! durable write to the store (fsync'd), as a hold from IRC would. A connection that finds
//! lever's accept queue full waits for the kernel's SYN retry (1 s); that shows in the times
//! as it would for browsers.
//!
//! Run: `cargo bench --bench fanout` (optionally `-- --pages N --events N`).

mod rig;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use rig::support::{bot_config, start_serving_http, Client, Lever, Ngircd};
use rig::{arg, mb, mem_of, pct, real_lever};

const TOKEN: &str = "bench-token-0123456789abcdef";
/// Between one event being everywhere and the next trigger.
const GAP: Duration = Duration::from_millis(200);
/// How long an event (and the fetches after it) may take before what is missing counts as lost.
const LOST_AFTER: Duration = Duration::from_secs(20);

/// lever with three targets, serving HTTP; its port. Waits for lever's JOIN, so the code it
/// gives back once joined is gone before memory is measured.
fn lever(irc_port: u16) -> (Lever, u16) {
    let mut watcher = Client::connect(irc_port, "watcher");
    watcher.join("#ops");
    let mut targets = String::new();
    for name in ["site", "api", "search"] {
        targets.push_str(&format!(
            "[targets.{name}]\n[[targets.{name}.stage]]\nname = \"checkout\"\nrun = [\"true\"]\n\
             [[targets.{name}.deploy]]\nname = \"syncing\"\nrun = [\"true\"]\n"
        ));
    }
    let (lever, http, ()) = start_serving_http(|http| {
        let config = bot_config(
            irc_port,
            "",
            &format!("[http]\nlisten = \"127.0.0.1:{http}\"\ntoken = \"{TOKEN}\"\n{targets}"),
        );
        (real_lever(&config), ())
    });
    watcher.expect(|l| l.verb == "JOIN" && l.from == "lever");
    (lever, http)
}

/// What the pages tell the bench.
enum Note {
    /// A page has its response headers: 200, `text/event-stream`.
    Open,
    Failed(usize, String),
    /// Page `n` read an event of `kind` at `at`.
    Event {
        page: usize,
        kind: String,
        at: Instant,
    },
    /// Page `n` has the whole HTML of `/` (or not: `ok` false) at `at`.
    Fetched {
        page: usize,
        at: Instant,
        ok: bool,
    },
}

/// An event stream's body as it comes: the chunked framing taken off, then its lines read
/// into events (only the kind is kept; `id:`, `data:` and keep-alive comments are skipped).
struct Stream {
    chunked: bool,
    /// Read, still framed.
    raw: Vec<u8>,
    /// Bytes of the current chunk still to come, and framing (a chunk's CRLF) to skip.
    left: usize,
    skip: usize,
    /// Unframed, not yet a whole line.
    text: Vec<u8>,
    kind: String,
}

impl Stream {
    fn new(chunked: bool) -> Stream {
        Stream {
            chunked,
            raw: Vec::new(),
            left: 0,
            skip: 0,
            text: Vec::new(),
            kind: String::new(),
        }
    }

    /// Takes `bytes` read off the connection; the kinds of the events they complete.
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>, String> {
        if self.chunked {
            self.raw.extend_from_slice(bytes);
            self.unframe()?;
        } else {
            self.text.extend_from_slice(bytes);
        }
        let mut done = Vec::new();
        while let Some(end) = self.text.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.text.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                // A blank line ends an event (or follows a keep-alive comment: no kind).
                if !self.kind.is_empty() {
                    done.push(std::mem::take(&mut self.kind));
                }
            } else if let Some(kind) = line.strip_prefix("event:") {
                self.kind = kind.trim().to_owned();
            }
        }
        Ok(done)
    }

    /// Moves what whole or partial chunks `raw` holds into `text`.
    fn unframe(&mut self) -> Result<(), String> {
        loop {
            if self.skip > 0 {
                let n = self.skip.min(self.raw.len());
                self.raw.drain(..n);
                self.skip -= n;
                if self.skip > 0 {
                    return Ok(());
                }
            }
            if self.left > 0 {
                let n = self.left.min(self.raw.len());
                if n == 0 {
                    return Ok(());
                }
                self.text.extend(self.raw.drain(..n));
                self.left -= n;
                if self.left == 0 {
                    self.skip = 2;
                }
                continue;
            }
            let Some(end) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return Ok(());
            };
            let size = String::from_utf8_lossy(&self.raw[..end]);
            let size = size.split(';').next().unwrap_or("").trim();
            let size =
                usize::from_str_radix(size, 16).map_err(|_| format!("bad chunk size {size:?}"))?;
            self.raw.drain(..end + 2);
            if size == 0 {
                return Err("the stream ended".into());
            }
            self.left = size;
        }
    }
}

/// One page: opens `/events`, says so, then notes every event it reads; while `fetching`, it
/// also fetches `/` again for each event, as page.js does.
async fn page(n: usize, http: u16, notes: mpsc::UnboundedSender<Note>, fetching: Arc<AtomicBool>) {
    let failed = |why: String| {
        let _ = notes.send(Note::Failed(n, why));
    };
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", http)).await else {
        return failed("cannot connect".into());
    };
    conn.set_nodelay(true).ok();
    let request = format!(
        "GET /events HTTP/1.1\r\nHost: 127.0.0.1:{http}\r\nAccept: text/event-stream\r\n\
         Cache-Control: no-cache\r\n\r\n"
    );
    if conn.write_all(request.as_bytes()).await.is_err() {
        return failed("cannot send the request".into());
    }
    let mut buf = vec![0u8; 16 * 1024];
    let mut have = Vec::new();
    let head_end = loop {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return failed("closed before the headers".into()),
            Ok(read) => have.extend_from_slice(&buf[..read]),
        }
        if let Some(end) = have.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&have[..head_end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") || !head.contains("content-type: text/event-stream") {
        return failed(format!("not an event stream: {head}"));
    }
    let mut stream = Stream::new(head.contains("transfer-encoding: chunked"));
    let _ = notes.send(Note::Open);
    let mut bytes = have.split_off(head_end + 4);
    loop {
        let at = Instant::now();
        match stream.feed(&bytes) {
            Ok(kinds) => {
                for kind in kinds {
                    if fetching.load(Ordering::Relaxed) {
                        tokio::spawn(fetch(n, http, notes.clone()));
                    }
                    let _ = notes.send(Note::Event { page: n, kind, at });
                }
            }
            Err(why) => return failed(why),
        }
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return failed("the stream ended".into()),
            Ok(read) => bytes = buf[..read].to_vec(),
        }
    }
}

/// `GET /` on a new connection, read to its end, as a page's render does.
async fn fetch(n: usize, http: u16, notes: mpsc::UnboundedSender<Note>) {
    let request = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{http}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
    );
    let mut body = Vec::new();
    let ok = match TcpStream::connect(("127.0.0.1", http)).await {
        Ok(mut conn) => {
            conn.write_all(request.as_bytes()).await.is_ok()
                && conn.read_to_end(&mut body).await.is_ok()
        }
        Err(_) => false,
    };
    let ok = ok
        && body.starts_with(b"HTTP/1.1 200")
        && String::from_utf8_lossy(&body)
            .trim_end()
            .ends_with("</html>");
    let _ = notes.send(Note::Fetched {
        page: n,
        at: Instant::now(),
        ok,
    });
}

/// Places the hold on every target (`hold`) or lifts it, over the API; the time just before
/// the request was written, and ms until the API's whole answer.
async fn trigger(http: u16, hold: bool) -> (Instant, f64) {
    let body = r#"{"target":null,"reason":"bench","by":"bench"}"#;
    let request = if hold {
        format!(
            "POST /api/v1/holds HTTP/1.1\r\nHost: 127.0.0.1:{http}\r\n\
             Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        format!(
            "DELETE /api/v1/holds/all?by=bench HTTP/1.1\r\nHost: 127.0.0.1:{http}\r\n\
             Authorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        )
    };
    let mut conn = TcpStream::connect(("127.0.0.1", http)).await.unwrap();
    conn.set_nodelay(true).ok();
    let start = Instant::now();
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let want = if hold { "HTTP/1.1 201" } else { "HTTP/1.1 200" };
    assert!(answer.starts_with(want), "the API refused: {answer}");
    (start, start.elapsed().as_secs_f64() * 1000.0)
}

/// What one event did: when each page had it, and when each had `/` again (when fetching).
struct Outcome {
    delivered: Vec<Option<f64>>,
    fetched: Vec<Option<f64>>,
    /// Frames of another kind than the event's, or a second one.
    odd: usize,
    failed_fetches: usize,
    /// ms until the API answered the trigger.
    api: f64,
}

impl Outcome {
    /// ms until every page had it (`None` if one never did).
    fn all(times: &[Option<f64>]) -> Option<f64> {
        times.iter().try_fold(0f64, |max, t| t.map(|t| max.max(t)))
    }

    fn missing(times: &[Option<f64>]) -> usize {
        times.iter().filter(|t| t.is_none()).count()
    }
}

/// Triggers event number `i` (even: a hold, odd: its lift) and waits until every page has it
/// (and, when `fetching`, has fetched `/`), or [`LOST_AFTER`].
async fn event(
    i: usize,
    http: u16,
    pages: usize,
    fetching: bool,
    notes: &mut mpsc::UnboundedReceiver<Note>,
) -> Outcome {
    let hold = i % 2 == 0;
    let kind = if hold { "hold" } else { "unhold" };
    // The pages note what they read while the trigger waits for the API's answer.
    let (start, api) = trigger(http, hold).await;
    let mut out = Outcome {
        delivered: vec![None; pages],
        fetched: vec![None; pages],
        odd: 0,
        failed_fetches: 0,
        api,
    };
    let ms = |at: Instant| at.saturating_duration_since(start).as_secs_f64() * 1000.0;
    let deadline = tokio::time::Instant::from_std(start + LOST_AFTER);
    let mut waiting = pages * if fetching { 2 } else { 1 };
    while waiting > 0 {
        let Ok(Some(note)) = tokio::time::timeout_at(deadline, notes.recv()).await else {
            break;
        };
        match note {
            Note::Event { page, kind: k, at } => {
                if k != kind || out.delivered[page].is_some() {
                    out.odd += 1;
                } else {
                    out.delivered[page] = Some(ms(at));
                    waiting -= 1;
                }
            }
            Note::Fetched { page, at, ok } => {
                if !ok {
                    out.failed_fetches += 1;
                }
                if out.fetched[page].is_none() {
                    out.fetched[page] = Some(ms(at));
                    waiting -= 1;
                }
            }
            Note::Failed(page, why) => panic!("page {page}: {why}"),
            Note::Open => {}
        }
    }
    out
}

/// p50, p99 and max of `xs`, in ms, as the report writes them.
fn spread(xs: &[f64]) -> String {
    let mut xs = xs.to_vec();
    xs.sort_by(f64::total_cmp);
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&xs, 0.5),
        pct(&xs, 0.99),
        xs.last().copied().unwrap_or(f64::NAN)
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pages = arg(&args, "--pages", 500);
    let events = arg(&args, "--events", 20);
    let server = Ngircd::start();
    let (lever, http) = lever(server.port);
    let pid = lever.pid();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (tell, mut notes) = mpsc::unbounded_channel();
        let fetching = Arc::new(AtomicBool::new(false));

        // A warm-up: one page, a hold and its lift, one fetch; so the code serving them is
        // resident before memory is measured, and the difference is the pages'.
        let warm = tokio::spawn(page(usize::MAX, http, tell.clone(), fetching.clone()));
        while !matches!(notes.recv().await, Some(Note::Open)) {}
        for hold in [true, false] {
            trigger(http, hold).await;
        }
        fetch(0, http, tell.clone()).await;
        warm.abort();
        while notes.try_recv().is_ok() {}
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = mem_of(pid);

        let opened = Instant::now();
        for n in 0..pages {
            tokio::spawn(page(n, http, tell.clone(), fetching.clone()));
        }
        let mut open = 0;
        while open < pages {
            match tokio::time::timeout(LOST_AFTER, notes.recv()).await {
                Ok(Some(Note::Open)) => open += 1,
                Ok(Some(Note::Failed(n, why))) => panic!("page {n}: {why}"),
                Ok(_) => {}
                Err(_) => panic!("{open} of {pages} pages opened within {LOST_AFTER:?}"),
            }
        }
        let open_ms = opened.elapsed().as_secs_f64() * 1000.0;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = mem_of(pid);

        // The events, then the events with a fetch of `/` after each.
        let mut all = Vec::new();
        // From the first page having it to the last: the fan-out alone, without the store's
        // durable write before it.
        let mut spread_out = Vec::new();
        let mut each = Vec::new();
        let mut lost = 0;
        let mut odd = 0;
        for i in 0..events {
            tokio::time::sleep(GAP).await;
            let out = event(i, http, pages, false, &mut notes).await;
            let times: Vec<f64> = out.delivered.iter().flatten().copied().collect();
            lost += Outcome::missing(&out.delivered);
            odd += out.odd;
            each.extend(&times);
            match Outcome::all(&out.delivered) {
                Some(t) => {
                    let first = times.iter().copied().fold(f64::INFINITY, f64::min);
                    all.push(t);
                    spread_out.push(t - first);
                    println!(
                        "event {:2} ({}): all {pages} pages in {t:.2} ms (first {first:.2} ms; the API answered in {:.2} ms)",
                        i + 1,
                        if i % 2 == 0 { "hold" } else { "unhold" },
                        out.api
                    );
                }
                None => println!(
                    "event {:2}: {} of {pages} pages never had it",
                    i + 1,
                    Outcome::missing(&out.delivered)
                ),
            }
        }
        fetching.store(true, Ordering::Relaxed);
        let mut rendered = Vec::new();
        let mut fetch_each = Vec::new();
        let mut fetch_lost = 0;
        let mut fetch_failed = 0;
        // Threads right after each burst of fetches (an idle extra one lasts 10 s).
        let mut threads = 0;
        for i in events..2 * events {
            tokio::time::sleep(GAP).await;
            let out = event(i, http, pages, true, &mut notes).await;
            fetch_lost += Outcome::missing(&out.delivered) + Outcome::missing(&out.fetched);
            fetch_failed += out.failed_fetches;
            odd += out.odd;
            fetch_each.extend(out.fetched.iter().flatten().copied());
            threads = threads.max(mem_of(pid).threads);
            match Outcome::all(&out.fetched) {
                Some(t) => {
                    rendered.push(t);
                    println!(
                        "event {:2} + {pages} fetches of /: all {pages} pages have the HTML in {t:.2} ms (the event itself: all in {:.2} ms)",
                        i + 1,
                        Outcome::all(&out.delivered).unwrap_or(f64::NAN)
                    );
                }
                None => println!("event {:2}: some pages never had the HTML", i + 1),
            }
        }
        let done = mem_of(pid);
        // Long enough for the runtime's idle extra threads to end.
        tokio::time::sleep(Duration::from_secs(12)).await;
        let later = mem_of(pid);

        println!();
        println!("| what | result | target |");
        println!("|---|---|---|");
        println!(
            "| memory per open page: lever's RSS before / with {pages} `GET /events` streams open ({open_ms:.0} ms to open them all), settled 1 s | {:.1} / {:.1} MiB: {:.1} KiB a page (RssAnon {:.1} KiB a page), {} threads | – |",
            mb(before.rss),
            mb(after.rss),
            after.rss.saturating_sub(before.rss) as f64 / pages as f64,
            after.anon.saturating_sub(before.anon) as f64 / pages as f64,
            after.threads,
        );
        println!(
            "| memory after the events with fetches below (the pages still open) | {:.1} MiB, up to {threads} threads; {:.1} MiB and {} threads 12 s later | – |",
            mb(done.rss),
            mb(later.rss),
            later.threads,
        );
        println!(
            "| one event (a hold or its lift over the API) to {pages} open pages, {events} events {}ms apart: time from the trigger until every page has it | {} ({lost} frames lost, {odd} odd) | – |",
            GAP.as_millis(),
            spread(&all),
        );
        println!(
            "| the same, each page's own delivery time ({} samples) | {} | – |",
            each.len(),
            spread(&each),
        );
        println!(
            "| the same, from the first page having it to the last (the fan-out without the hold's store write) | {} | – |",
            spread(&spread_out),
        );
        println!(
            "| one event, then each page fetches `/` again on a new connection (as page.js does), {events} events: trigger until all {pages} have the whole HTML | {} (each page: {}; {fetch_lost} lost, {fetch_failed} failed) | – |",
            spread(&rendered),
            spread(&fetch_each),
        );
    });
    drop(lever);
}
