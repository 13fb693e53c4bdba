//! The IRC session end to end: lever's outbox → lever's session (splitting, sanitising,
//! throttle, priorities, reconnect, watchdog, TLS) → a real ngIRCd → a raw client that reads
//! exactly what was relayed.
//!
//! Every assertion is on content and order, never on wall-clock time; timeouts only keep a
//! broken lever from hanging the suite.

mod support;
use support::*;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lever::chat::outbox::Priority;
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A server, a client `nick` in #ops, and lever in-process with `irc_extra` in `[irc]`, once
/// the client has seen lever join.
fn serve(nick: &str, irc_extra: &str) -> (Ngircd, Client, InProcess) {
    let server = Ngircd::start();
    let mut client = Client::connect(server.port, nick);
    client.join("#ops");
    let bot = InProcess::start(&bot_config(server.port, irc_extra, ""));
    expect_lever_join(&mut client);
    (server, client, bot)
}

/// Restarts the server with the client back in #ops before lever can reconnect (ngIRCd keeps
/// no history, so a client that joins after lever would miss what lever says first).
fn restart_client_first(server: &mut Ngircd, nick: &str) -> Client {
    let held = hold_one_attempt(server.port);
    server.restart();
    let mut client = Client::connect(server.port, nick);
    client.join("#ops");
    drop(held);
    client
}

/// Waits until lever (nick `lever`) joins #ops.
fn expect_lever_join(client: &mut Client) {
    client.expect(|l| l.verb == "JOIN" && l.from == "lever");
}

/// Reads the next `n` PRIVMSG texts lever relays. Any other line from lever (a QUIT, a JOIN, a
/// MODE...) or an ERROR from the server fails the test.
fn lever_texts(client: &mut Client, n: usize) -> Vec<String> {
    let mut texts = Vec::with_capacity(n);
    while texts.len() < n {
        let line = client.expect(|l| l.from == "lever" || l.verb == "ERROR");
        assert!(
            line.is_privmsg_from("lever"),
            "{}: expected only PRIVMSGs from lever, got {:?} (after {} texts: {:?})",
            client.nick,
            line.raw,
            texts.len(),
            texts
        );
        texts.push(line.text().to_owned());
    }
    texts
}

/// Ends a test: kills the server *before* stopping lever, so lever has no connection to flush
/// a backlog into (up to 5 s at one line a second) and its shutdown is immediate.
fn finish(server: Ngircd, bot: InProcess) {
    drop(server);
    drop(bot);
}

// ---------------------------------------------------------------------------------------------
// 1. Splitting
// ---------------------------------------------------------------------------------------------

/// A long text of ASCII, accents, CJK, emoji and one unbroken 780-byte word goes out as valid
/// IRC lines: each line as relayed (with lever's prefix and CRLF) is at most 512 bytes and valid
/// UTF-8, and together they carry every non-space character in order.
#[test]
fn long_multibyte_text_is_split_into_valid_lines_without_loss() {
    let server = Ngircd::start();
    let mut client = Client::connect(server.port, "splitwatch");
    client.join("#ops");
    let bot = InProcess::start(&bot_config(server.port, "", ""));
    expect_lever_join(&mut client);
    let outbox = bot.bot.outbox.clone();

    let words = [
        "deploy",
        "café",
        "naïve",
        "Grüße",
        "日本語のテキスト",
        "🚀🔥",
        "snow❄man",
        "ok",
        "Ελληνικά",
        "中文字符",
    ];
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 1300 {
        text.push_str(words[i % words.len()]);
        text.push(' ');
        i += 1;
    }
    // One word longer than any line: 1 + 3 + 3 + 4 + 2 bytes per round, so a hard cut at a
    // byte limit likely lands inside a multi-byte character and must back off to a boundary.
    let long_word = "a€日🚀é".repeat(60);
    assert!(long_word.len() > 600);
    text.push_str(&long_word);
    while text.len() < 3000 {
        text.push(' ');
        text.push_str(words[i % words.len()]);
        i += 1;
    }
    outbox.say("#ops", &text, Priority::Announce);

    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    let want = squeeze(&text);
    let mut got = String::new();
    let mut raw_lines: Vec<Vec<u8>> = Vec::new();
    while got.len() < want.len() {
        let raw = client.next_raw(WAIT).unwrap_or_else(|| {
            panic!(
                "lever stopped after {} of {} bytes; last lines:\n{}",
                got.len(),
                want.len(),
                client.seen.join("\n")
            )
        });
        let line_text = String::from_utf8(raw.clone()).unwrap_or_else(|e| {
            panic!("relayed line is not valid UTF-8 ({e}): {:?}", raw);
        });
        let line = Line::parse(line_text.trim_end());
        if line.from != "lever" {
            continue;
        }
        assert!(
            line.is_privmsg_from("lever"),
            "unexpected line from lever: {}",
            line.raw
        );
        assert!(
            raw.len() <= 512,
            "relayed line is {} bytes: {line_text:?}",
            raw.len()
        );
        assert!(raw.ends_with(b"\r\n"), "line without CRLF: {line_text:?}");
        got.push_str(&squeeze(line.text()));
        raw_lines.push(raw);
    }
    assert_eq!(got, want, "the pieces do not reassemble to the original");
    // Not degenerate: the pieces fill their lines (a word break is only taken when it keeps at
    // least half of the room), so ~3000 bytes take a handful of lines, not dozens.
    let n = raw_lines.len();
    assert!((7..=14).contains(&n), "{n} lines for ~3000 bytes");
    for raw in &raw_lines[..n - 1] {
        assert!(
            raw.len() > 256,
            "a non-final piece is only {} bytes: {:?}",
            raw.len(),
            String::from_utf8_lossy(raw)
        );
    }
    finish(server, bot);
}

// ---------------------------------------------------------------------------------------------
// 2. Injection
// ---------------------------------------------------------------------------------------------

/// CR, LF and CTCP delimiters in a text cannot smuggle a command: every piece arrives as the
/// text of a PRIVMSG, lever stays connected and answers, and it never joined #evil.
#[test]
fn cr_lf_cannot_inject_an_irc_command() {
    let server = Ngircd::start();
    let mut client = Client::connect(server.port, "injwatch");
    client.join("#ops");
    let bot = InProcess::start(&bot_config(server.port, "", ""));
    expect_lever_join(&mut client);
    let outbox = bot.bot.outbox.clone();

    outbox.say(
        "#ops",
        "hello\r\nQUIT :pwned\r\nJOIN #evil\rMODE #ops +o mallory\n\x01VERSION\x01",
        Priority::Reply,
    );
    assert_eq!(
        lever_texts(&mut client, 5),
        [
            "hello",
            "QUIT :pwned",
            "JOIN #evil",
            "MODE #ops +o mallory",
            "VERSION"
        ]
    );

    // Still connected and serving (lever_texts fails on a QUIT, JOIN or MODE from lever).
    client.privmsg("#ops", "!ping");
    assert_eq!(lever_texts(&mut client, 1), ["pong"]);

    // And in #ops only: the server's own view of lever's channels.
    client.send("WHOIS lever");
    let mut channels = Vec::new();
    loop {
        let line = client.expect(|l| matches!(l.verb.as_str(), "319" | "318" | "401"));
        match line.verb.as_str() {
            "319" => channels.extend(
                line.text()
                    .split_whitespace()
                    .map(|c| c.trim_start_matches(['@', '+']).to_owned()),
            ),
            "318" => break,
            _ => panic!("the server does not know lever: {}", line.raw),
        }
    }
    assert_eq!(channels, ["#ops"], "lever's channels per WHOIS");
    finish(server, bot);
}

// ---------------------------------------------------------------------------------------------
// 3. Throughput and order
// ---------------------------------------------------------------------------------------------

/// A hundred queued lines all go out, in order, paced by the throttle, without the connection
/// dropping.
#[test]
fn a_hundred_queued_lines_go_out_in_order_without_a_disconnect() {
    let (server, mut client, bot) = serve("orderwatch", "burst = 4\nline_interval = \"20ms\"");
    let outbox = bot.bot.outbox.clone();

    let want: Vec<String> = (0..100).map(|i| format!("line {i:03}")).collect();
    // Half as separate says, half as one multi-line text: both must keep their order.
    for line in &want[..50] {
        outbox.say("#ops", line, Priority::Announce);
    }
    outbox.say("#ops", &want[50..].join("\n"), Priority::Announce);

    assert_eq!(lever_texts(&mut client, 100), want);
    // Still connected afterwards.
    client.privmsg("#ops", "!ping");
    assert_eq!(lever_texts(&mut client, 1), ["pong"]);
    finish(server, bot);
}

// ---------------------------------------------------------------------------------------------
// 4. Server restart
// ---------------------------------------------------------------------------------------------

/// Accepts one connection on `port` and holds it without a word: stands in for a server that
/// is not ready yet. Returns that connection once lever has made it, with the port free again
/// (the listener is closed), so lever waits on it until the test hangs up.
fn hold_one_attempt(port: u16) -> std::net::TcpStream {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the stand-in listener");
    listener.set_nonblocking(true).expect("non-blocking");
    let deadline = Instant::now() + WAIT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => return stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "lever did not try to reconnect within {WAIT:?}"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept failed: {e}"),
        }
    }
}

/// The server goes away; what lever is told to say meanwhile waits in the outbox. When the
/// server is back, lever reconnects, rejoins, and delivers it all, in order.
#[test]
fn after_a_server_restart_lever_rejoins_and_delivers_the_backlog_in_order() {
    let (mut server, client, bot) = serve("restartwatch", "");
    let outbox = bot.bot.outbox.clone();

    server.stop();
    drop(client);
    let want: Vec<String> = (0..5).map(|i| format!("queued while down {i}")).collect();
    for line in &want {
        outbox.say("#ops", line, Priority::Announce);
    }

    // Timing. The client must be back in #ops before lever rejoins, or it would miss lever's
    // JOIN and the backlog (ngIRCd keeps no history). lever's reconnect backoff is drawn at
    // random, and a loaded machine can take longer than any backoff to restart a server, so
    // nothing is left to timing: a stand-in on the server's port takes lever's next attempt
    // and holds it, silent, while the server restarts and the client rejoins; only then does
    // the test hang up, and lever's following attempt finds the client in #ops.
    let mut client = restart_client_first(&mut server, "restartwatch");

    expect_lever_join(&mut client);
    assert_eq!(lever_texts(&mut client, 5), want);
    finish(server, bot);
}

// ---------------------------------------------------------------------------------------------
// 5. Priorities
// ---------------------------------------------------------------------------------------------

/// With the default throttle (4 lines at once, then one a second) and 200 announcements queued,
/// a `!ping` answer goes out next, not after the backlog.
#[test]
fn replies_overtake_an_announcement_backlog() {
    let (server, mut client, bot) = serve("prioritywatch", "burst = 4\nline_interval = \"1s\"");
    let outbox = bot.bot.outbox.clone();

    for i in 0..200 {
        outbox.say("#ops", &format!("backlog {i:03}"), Priority::Announce);
    }
    let first = lever_texts(&mut client, 2);
    assert_eq!(first, ["backlog 000", "backlog 001"]);

    client.privmsg("#ops", "!ping");
    // Lines already written (a burst) may still be on their way; beyond that, the reply is
    // next. Without priorities it would come after the other 198 lines.
    let mut before_pong = Vec::new();
    loop {
        let text = lever_texts(&mut client, 1).remove(0);
        if text == "pong" {
            break;
        }
        assert_eq!(text, format!("backlog {:03}", 2 + before_pong.len()));
        before_pong.push(text);
        assert!(
            before_pong.len() <= 2,
            "pong did not overtake the backlog: {before_pong:?} came after the !ping"
        );
    }
    finish(server, bot);
}

/// Reads lever's lines until one starts with `prefix`, within `limit` lines; returns it.
fn lever_says_within(client: &mut Client, prefix: &str, limit: usize) -> String {
    let mut seen = Vec::new();
    while seen.len() < limit {
        let text = lever_texts(client, 1).remove(0);
        if text.starts_with(prefix) {
            return text;
        }
        seen.push(text);
    }
    panic!("no line starting {prefix:?} among lever's next {limit}: {seen:?}");
}

/// A channel flooding lever with work it answers: a reply every few milliseconds, into an
/// outbox of 10 lines drained at 5 a second, until dropped.
struct ReplyFlood {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ReplyFlood {
    fn start(outbox: lever::chat::outbox::Outbox) -> ReplyFlood {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut i = 0u64;
            while !flag.load(Ordering::Relaxed) {
                outbox.say("#ops", &format!("reply {i}"), Priority::Reply);
                i += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        ReplyFlood {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ReplyFlood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// With the outbox full of replies and more arriving every few milliseconds, a `!hold` and its
/// `!unhold` are still announced: a full outbox drops replies to make room, never the NO DEPLOY
/// PLEASE or DEPLOY OK line (before, the oldest announcement was the first to go).
#[test]
fn a_flood_of_replies_never_pushes_out_a_hold_or_its_lift() {
    let (server, mut client, bot) = serve(
        "floodwatch",
        "burst = 4\nline_interval = \"200ms\"\nqueue_limit = 10",
    );
    let flood = ReplyFlood::start(bot.bot.outbox.clone());

    client.privmsg("#ops", "!hold db migration");
    let placed = lever_says_within(&mut client, "NO DEPLOY PLEASE", 40);
    assert_eq!(
        placed,
        "NO DEPLOY PLEASE: every target held by floodwatch (db migration)"
    );
    client.privmsg("#ops", "!unhold");
    let lifted = lever_says_within(&mut client, "DEPLOY OK", 40);
    assert!(
        lifted.starts_with("DEPLOY OK: floodwatch lifted the hold on every target"),
        "{lifted}"
    );
    // The flood did fill the outbox: replies were dropped, and the hold's lines were not.
    drop(flood);
    assert!(
        bot.bot.outbox.dropped() > 20,
        "the flood never filled the outbox: {} dropped",
        bot.bot.outbox.dropped()
    );
    finish(server, bot);
}

// ---------------------------------------------------------------------------------------------
// 6. Idle watchdog
// ---------------------------------------------------------------------------------------------

/// Sends SIGCONT when dropped, so a failing test never leaves the server stopped.
struct Frozen(u32);

impl Frozen {
    fn new(pid: u32) -> Frozen {
        signal(pid, "STOP");
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.0.to_string())
            .status();
    }
}

/// Whether a TCP connection whose server end is on `port` was closed by its peer and not yet
/// by the server (state CLOSE_WAIT): while the server process is stopped, the kernel still
/// acknowledges a client's FIN, so this shows a client hung up on the frozen server.
fn peer_hung_up_on(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table.lines().skip(1).any(|row| {
        let cols: Vec<&str> = row.split_whitespace().collect();
        let local_port = cols
            .get(1)
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| u16::from_str_radix(p, 16).ok());
        local_port == Some(port) && cols.get(3) == Some(&"08")
    })
}

/// A server that stops answering (SIGSTOP: the TCP connection stays up, nothing comes back)
/// is given up on by lever's watchdog; lever reconnects and rejoins.
#[test]
fn the_idle_watchdog_drops_a_silent_server_and_reconnects() {
    let server = Ngircd::start();
    let mut client = Client::connect(server.port, "watchdogwatch");
    client.join("#ops");
    let bot = InProcess::start(&bot_config(
        server.port,
        "ping_interval = \"2s\"\nping_timeout = \"2s\"",
        "",
    ));
    expect_lever_join(&mut client);

    // Freeze the server. lever sees no traffic, pings after 2 s, gives up 2 s later (its
    // ticker runs once a second, so 4–6 s after the last line it received). We do not guess
    // how long that takes: we wait until the kernel shows lever's side of the connection
    // closed. The server must not thaw before then, or it would answer lever's PING.
    let frozen = Frozen::new(server.pid());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut gave_up = false;
    while Instant::now() < deadline {
        if peer_hung_up_on(server.port) {
            gave_up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        gave_up,
        "lever kept its connection to a silent server for 20 s (ping_interval 2s, ping_timeout 2s)"
    );
    // Let lever's reconnection (0.5–1 s later) land in the stopped server's listen backlog;
    // thaw well before that new connection's own watchdog (4 s or more) could fire.
    std::thread::sleep(Duration::from_millis(1500));
    drop(frozen);

    // The server now reads the old connection's end (QUIT to #ops) and registers the new one.
    // Read until both are seen, whatever their order; registration may take a few seconds.
    let within = Duration::from_secs(20);
    let deadline = Instant::now() + within;
    let (mut quit, mut join) = (false, false);
    while !(quit && join) {
        let left = deadline.checked_duration_since(Instant::now());
        let Some(line) = left.and_then(|left| client.next_line(left)) else {
            panic!(
                "within {within:?} after the thaw: lever QUIT seen: {quit}, lever JOIN seen: {join}; \
                 lines:\n{}",
                client.seen.join("\n")
            );
        };
        // Accept lever_ too: if the server registered the new connection before reaping the
        // old one, the nick was briefly taken.
        if line.from.starts_with("lever") {
            match line.verb.as_str() {
                "QUIT" => quit = true,
                "JOIN" => join = true,
                _ => {}
            }
        }
    }
    // Both lever and the client (which answered the server's PINGs through the rig) are alive.
    client.privmsg("#ops", "!ping");
    let pong = client.expect(|l| l.verb == "PRIVMSG" && l.from.starts_with("lever"));
    assert_eq!(pong.text(), "pong");
    finish(server, bot);
}

// ---------------------------------------------------------------------------------------------
// 7. TLS
// ---------------------------------------------------------------------------------------------

/// Runs `openssl` with `args` (split on whitespace) in `dir`, failing with its output.
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ngIRCd with a plain port and a TLS port, its certificate issued by a private CA made for
/// the test (`ca.pem`) for the name `localhost`.
struct TlsNgircd {
    dir: TempDir,
    port: u16,
    tls_port: u16,
    child: Child,
}

impl TlsNgircd {
    fn start() -> TlsNgircd {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        // ngIRCd drops root privileges to `nobody`; it reads the key before that (its log
        // says "Storing new X509 certificate credentials" before "Running as user nobody"),
        // but keep everything readable anyway.
        set_mode(d, 0o755);
        // A private CA and a server certificate it signs. (A bare `openssl req -x509`
        // self-signed certificate is marked CA:TRUE, which rustls refuses as a server's own
        // certificate: CaUsedAsEndEntity.)
        openssl(
            d,
            "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=lever-test-CA \
             -keyout ca.key -out ca.pem",
        );
        openssl(
            d,
            "req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout key.pem -out server.csr",
        );
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName = DNS:localhost\nbasicConstraints = CA:FALSE\n\
             keyUsage = digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\n",
        )
        .expect("write server.ext");
        openssl(
            d,
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
             -extfile server.ext -out cert.pem",
        );
        for file in ["ca.pem", "cert.pem", "key.pem"] {
            set_mode(&d.join(file), 0o644);
        }
        let port = free_port();
        let tls_port = loop {
            let p = free_port();
            if p != port {
                break p;
            }
        };
        let conf = format!(
            "[Global]\n\tName = irc.lever.test\n\tInfo = lever TLS test server\n\tListen = 127.0.0.1\n\
             \tPorts = {port}\n\tMotdPhrase = \"lever test\"\n\
             [Limits]\n\tMaxConnectionsIP = 0\n\tMaxNickLength = 30\n\tPingTimeout = 120\n\
             \tPongTimeout = 20\n\tMaxPenaltyTime = 0\n\
             [Options]\n\tDNS = no\n\tIdent = no\n\tPAM = no\n\
             [SSL]\n\tCertFile = {cert}\n\tKeyFile = {key}\n\tPorts = {tls_port}\n",
            cert = d.join("cert.pem").display(),
            key = d.join("key.pem").display(),
        );
        std::fs::write(d.join("ngircd.conf"), conf).expect("write ngircd.conf");
        let log = std::fs::File::create(d.join("ngircd.log")).expect("log file");
        let child = Command::new(ngircd_binary())
            .arg("-n")
            .arg("-f")
            .arg(d.join("ngircd.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start ngircd");
        let mut server = TlsNgircd {
            dir,
            port,
            tls_port,
            child,
        };
        // Wait for the log's "ready" (after both listeners are up) rather than probing the
        // ports: a probe would count as a connection on the TLS port. Without a DHFile,
        // ngIRCd (GnuTLS) first generates DH parameters: allow for it.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server.log().contains(" ready.") {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("ngircd exited ({status}): {}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "ngircd did not get ready: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn ca_file(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ngircd.log")).unwrap_or_default()
    }

    /// How many connections ngIRCd accepted on its TLS port, from its log.
    fn tls_accepts(&self) -> usize {
        let log = self.log();
        let listening = format!("Now listening on [127.0.0.1]:{} (socket ", self.tls_port);
        let Some(socket) = log
            .lines()
            .find_map(|l| l.split_once(&listening))
            .and_then(|(_, rest)| rest.split(')').next())
        else {
            panic!("no TLS listener in the ngircd log:\n{log}");
        };
        let accepted_on = format!(" on socket {socket}.");
        log.lines()
            .filter(|l| l.contains("Accepted connection") && l.ends_with(&accepted_on))
            .count()
    }

    /// lever's config for the TLS port, by name (the certificate is for `localhost`).
    fn lever_config(&self, extra_irc: &str) -> String {
        format!(
            "[irc]\nserver = \"localhost\"\nport = {}\ntls = true\nnickname = \"lever\"\n\
             channels = [\"#ops\"]\nline_interval = \"0s\"\n{extra_irc}\n",
            self.tls_port
        )
    }
}

impl Drop for TlsNgircd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- ngircd log ---\n{}", self.log());
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// lever trusts a private CA given in `tls_ca_file`: it joins over TLS and serves a client on
/// the same server's plain port.
#[test]
fn tls_with_a_private_ca_joins_and_serves() {
    let server = TlsNgircd::start();
    let mut client = Client::connect(server.port, "tlswatch");
    client.join("#ops");
    let bot =
        InProcess::start(&server.lever_config(&format!("tls_ca_file = \"{}\"", server.ca_file())));
    expect_lever_join(&mut client);
    client.privmsg("#ops", "!ping");
    assert_eq!(lever_texts(&mut client, 1), ["pong"]);
    // lever came in through the TLS listener, and the handshake completed there.
    assert_eq!(server.tls_accepts(), 1, "{}", server.log());
    assert!(
        server.log().contains("initialized TLS"),
        "no TLS session in the log:\n{}",
        server.log()
    );
    drop(server);
    drop(bot);
}

/// With default verification (the built-in web roots), a certificate from a private CA is
/// refused: lever never registers, so it never joins.
#[test]
fn tls_refuses_a_certificate_from_an_untrusted_ca() {
    let server = TlsNgircd::start();
    let mut client = Client::connect(server.port, "tlsnegwatch");
    client.join("#ops");
    let bot = InProcess::start(&server.lever_config(""));
    let joins = client.collect_for(Duration::from_secs(5), |l| {
        l.verb == "JOIN" && l.from.starts_with("lever")
    });
    assert!(
        joins.is_empty(),
        "lever joined over TLS with an untrusted certificate: {:?}",
        joins.iter().map(|l| &l.raw).collect::<Vec<_>>()
    );
    // Not vacuous: lever did reach the TLS port (and was turned away by its own check).
    assert!(
        server.tls_accepts() >= 1,
        "lever never connected to the TLS port:\n{}",
        server.log()
    );
    drop(server);
    drop(bot);
}

/// The link dies without a word (the server freezes, then is gone for good): what lever wrote
/// into it meanwhile reached no one. lever keeps each line until the server confirms it read it
/// (a PONG to a later PING), so it says them again after reconnecting: late, not never.
#[test]
fn lines_written_into_a_link_that_died_silently_are_said_after_reconnecting() {
    let (mut server, client, bot) =
        serve("voidwatch", "ping_interval = \"2s\"\nping_timeout = \"2s\"");
    let outbox = bot.bot.outbox.clone();

    // Freeze the server, then speak: lever writes the lines (the kernel takes them), hears
    // nothing back, and its watchdog gives up on the link.
    signal(server.pid(), "STOP");
    let want: Vec<String> = (0..5).map(|i| format!("said into the void {i}")).collect();
    for line in &want {
        outbox.say("#ops", line, Priority::Announce);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !peer_hung_up_on(server.port) {
        assert!(
            Instant::now() < deadline,
            "lever never gave up on the frozen server"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The frozen server dies with the lines unread (SIGKILL): they are gone from the wire.
    server.stop();
    drop(client);

    let mut client = restart_client_first(&mut server, "voidwatch");
    expect_lever_join(&mut client);
    assert_eq!(lever_texts(&mut client, 5), want);
    finish(server, bot);
}
