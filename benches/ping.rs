//! End-to-end benchmarks of lever on a real ngIRCd (penalties off, as the test rig runs it):
//!
//! 1. start-to-join: spawning lever's release binary until a client in #ops sees its JOIN;
//! 2. idle memory (VmRSS, VmHWM) after joining and after the pings;
//! 3. `!ping` round trip from a raw client, sequential, throttle off (`line_interval = "0s"`),
//!    with the same round trip through a trivial echo client as the server+loopback floor;
//! 4. `!ping` under a 200-line announcement backlog, lever in-process with the default
//!    throttle (burst 4, one line per second).
//!
//! Run: `cargo bench --bench ping` (optionally `-- --pings N --starts N --backlog-reps N`).

mod rig;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lever::chat::outbox::Priority;
use rig::support::{bot_config, Client, InProcess, Lever, Line, Ngircd};
use rig::{arg, mb, median, mem_of, pct, real_lever, verdict, Mem, STOP_WAIT};

const WARMUP: usize = 50;
const DEFAULT_PINGS: usize = 1000;
const DEFAULT_STARTS: usize = 7;
const DEFAULT_BACKLOG_REPS: usize = 5;
const BACKLOG: usize = 200;
/// After lever joins with the default throttle, the registration lines have drained its token
/// bucket (down to -burst); this long lets it refill, so the backlog's first 4 lines go out as
/// the burst they would be on an idle bot.
const BACKLOG_SETTLE: Duration = Duration::from_secs(7);
/// Pause before each spawn, longer than Linux's 40 ms delayed ACK.
const QUIET: Duration = Duration::from_millis(200);
/// How long lever sits idle before its memory is read.
const IDLE: Duration = Duration::from_secs(1);

const TARGET_P99_MS: f64 = 0.75;
const TARGET_RSS_MB: f64 = 8.0;
const TARGET_JOIN_S: f64 = 0.1;

// ---------------------------------------------------------------------------------------------
// lever's log.

/// Seconds from `spawned` to the first log line containing each of `events` (from the
/// timestamps lever's log writes; UTC time of day, so not across midnight).
fn log_offsets(lever: &Lever, spawned: SystemTime, events: &[&str]) -> Vec<Option<f64>> {
    let spawned = secs_of_day(spawned);
    let log = strip_ansi(&lever.log());
    events
        .iter()
        .map(|event| {
            log.lines()
                .find(|l| l.contains(event))
                .and_then(|l| l.get(11..26))
                .and_then(parse_hms)
                .map(|t| t - spawned)
        })
        .collect()
}

fn secs_of_day(t: SystemTime) -> f64 {
    let d = t.duration_since(UNIX_EPOCH).expect("clock after 1970");
    (d.as_secs() % 86_400) as f64 + f64::from(d.subsec_nanos()) / 1e9
}

/// `HH:MM:SS.ffffff` to seconds.
fn parse_hms(s: &str) -> Option<f64> {
    let mut parts = s.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + sec)
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Statistics.

struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    min: f64,
    mean: f64,
}

fn latency(samples_ms: &[f64]) -> Latency {
    let mut v = samples_ms.to_vec();
    v.sort_by(f64::total_cmp);
    Latency {
        p50: pct(&v, 0.50),
        p90: pct(&v, 0.90),
        p99: pct(&v, 0.99),
        max: v[v.len() - 1],
        min: v[0],
        mean: v.iter().sum::<f64>() / v.len() as f64,
    }
}

// ---------------------------------------------------------------------------------------------
// The measurements.

fn is_lever_join(l: &Line) -> bool {
    l.verb == "JOIN" && l.from == "lever"
}

fn is_lever_quit(l: &Line) -> bool {
    l.verb == "QUIT" && l.from == "lever"
}

/// `WARMUP` round trips, then `n` measured ones (ms).
fn round_trips(alice: &mut Client, trigger: &str, nick: &str, reply: &str, n: usize) -> Vec<f64> {
    for _ in 0..WARMUP {
        round_trip(alice, trigger, nick, reply);
    }
    (0..n)
        .map(|_| round_trip(alice, trigger, nick, reply))
        .collect()
}

/// Sends `trigger` to #ops and waits for `reply` from `nick`; the round trip in ms.
fn round_trip(alice: &mut Client, trigger: &str, nick: &str, reply: &str) -> f64 {
    let t0 = Instant::now();
    alice.privmsg("#ops", trigger);
    let line = alice.expect(|l| l.is_privmsg_from(nick));
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    assert_eq!(line.text(), reply, "unexpected reply from {nick}");
    ms
}

struct StartSample {
    to_join: f64,
    to_connecting: Option<f64>,
    to_registered: Option<f64>,
    to_joined_log: Option<f64>,
    mem: Mem,
}

struct BacklogSample {
    first4_ms: f64,
    pong_ms: f64,
    backlog_before_pong: usize,
    /// From the 4th backlog line to the one after the pong (the slot after the pong's).
    next_backlog_after_pong_ms: Option<f64>,
}

fn backlog_once(port: u16, alice: &mut Client) -> BacklogSample {
    // The default throttle, spelled out (bot_config turns it off unless told otherwise).
    let config = bot_config(port, "burst = 4\nline_interval = \"1s\"", "");
    let mut lever = InProcess::start(&config);
    assert_eq!(lever.bot.config.irc.burst, 4);
    assert_eq!(lever.bot.config.irc.line_interval, Duration::from_secs(1));
    alice.expect(is_lever_join);
    std::thread::sleep(BACKLOG_SETTLE);

    let pushed = Instant::now();
    for i in 1..=BACKLOG {
        lever.bot.outbox.say(
            "#ops",
            &format!(
                "announcement {i:03}/{BACKLOG}: deploy of api 4.12.0 progressing, host batch {i}"
            ),
            Priority::Announce,
        );
    }
    for i in 1..=4 {
        let text = alice
            .expect(|l| l.is_privmsg_from("lever"))
            .text()
            .to_owned();
        assert!(
            text.starts_with(&format!("announcement {i:03}/")),
            "backlog line {i} expected, got {text:?}"
        );
    }
    let fourth = Instant::now();
    let first4_ms = pushed.elapsed().as_secs_f64() * 1e3;

    alice.privmsg("#ops", "!ping");
    let sent = Instant::now();
    let mut backlog_before_pong = 0;
    loop {
        let text = alice
            .expect(|l| l.is_privmsg_from("lever"))
            .text()
            .to_owned();
        if text == "pong" {
            break;
        }
        assert!(
            text.starts_with("announcement "),
            "unexpected line {text:?}"
        );
        backlog_before_pong += 1;
    }
    let pong_ms = sent.elapsed().as_secs_f64() * 1e3;
    // One more slot: when the backlog resumes.
    let next_backlog_after_pong_ms = alice
        .next_line(Duration::from_secs(3))
        .filter(|l| l.is_privmsg_from("lever"))
        .map(|_| fourth.elapsed().as_secs_f64() * 1e3);

    // Drain what is left so shutdown does not spend its flush time on it.
    while lever.bot.outbox.try_next().is_some() {
        lever.bot.outbox.sent();
    }
    lever.stop();
    alice.expect(is_lever_quit);
    BacklogSample {
        first4_ms,
        pong_ms,
        backlog_before_pong,
        next_backlog_after_pong_ms,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pings = arg(&args, "--pings", DEFAULT_PINGS).max(1);
    let starts = arg(&args, "--starts", DEFAULT_STARTS).max(1);
    let backlog_reps = arg(&args, "--backlog-reps", DEFAULT_BACKLOG_REPS).max(1);
    // In-process lever logs through the rig's subscriber to stdout; keep it to warnings.
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "lever=warn");
    }
    let binary = env!("CARGO_BIN_EXE_lever");
    let binary_size = std::fs::metadata(binary).map(|m| m.len()).unwrap_or(0);
    println!(
        "lever ping benchmark: binary {binary} ({:.1} MiB), {} CPUs",
        binary_size as f64 / 1048576.0,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let server = Ngircd::start();
    let mut alice = Client::connect(server.port, "alice");
    alice.join("#ops");
    let fast = bot_config(server.port, "", "");
    assert!(fast.contains("line_interval = \"0s\""), "{fast}");

    // -- 1. Start to join (the server is already up), and idle memory after each join.
    println!("\n[1] start-to-join, {starts} starts (spawn -> client sees lever's JOIN in #ops)");
    let mut samples = Vec::new();
    let mut lever = None;
    for i in 0..starts {
        // Let the client's socket go quiet first: right after it received data, its delayed
        // ACK (40 ms) can hold back ngIRCd's next small segment (Nagle), which would be
        // charged to lever's start.
        std::thread::sleep(QUIET);
        let mut l = real_lever(&fast);
        let spawned_wall = SystemTime::now();
        let spawned = Instant::now();
        l.launch();
        alice.expect(is_lever_join);
        let to_join = spawned.elapsed().as_secs_f64();
        std::thread::sleep(IDLE);
        let mem = mem_of(l.pid());
        let offsets = log_offsets(
            &l,
            spawned_wall,
            &["connecting", "registered with the server", "joined"],
        );
        let s = StartSample {
            to_join,
            to_connecting: offsets[0],
            to_registered: offsets[1],
            to_joined_log: offsets[2],
            mem,
        };
        let ms = |o: Option<f64>| o.map_or("?".to_owned(), |s| format!("{:.1}", s * 1e3));
        println!(
            "  start {}: spawn->JOIN {:.1} ms (log: 'connecting' at {} ms, 'registered' at {} ms, \
             'joined' at {} ms); idle VmRSS {:.2} MiB, VmHWM {:.2} MiB",
            i + 1,
            s.to_join * 1e3,
            ms(s.to_connecting),
            ms(s.to_registered),
            ms(s.to_joined_log),
            mb(mem.rss),
            mb(mem.hwm)
        );
        samples.push(s);
        if i + 1 == starts {
            lever = Some(l); // keep the last one for the pings
        } else {
            l.stop(STOP_WAIT);
            alice.expect(is_lever_quit);
        }
    }
    let mut lever = lever.expect("a running lever");
    let join_s: Vec<f64> = samples.iter().map(|s| s.to_join).collect();
    let connecting_s: Vec<f64> = samples.iter().filter_map(|s| s.to_connecting).collect();
    let conn_to_join_s: Vec<f64> = samples
        .iter()
        .filter_map(|s| Some(s.to_joined_log? - s.to_connecting?))
        .collect();

    // -- 2. Idle memory after joining (the lever that will take the pings).
    let mem_joined = mem_of(lever.pid());

    // -- 3. !ping round trips, throttle off.
    println!("\n[2] !ping round trip: {WARMUP} warm-up, then {pings} sequential pings");
    let ping_ms = round_trips(&mut alice, "!ping", "lever", "pong", pings);
    let ping = latency(&ping_ms);
    std::thread::sleep(IDLE);
    let mem_after = mem_of(lever.pid());
    println!(
        "  lever: p50 {:.3} ms, p90 {:.3}, p99 {:.3}, max {:.3}, min {:.3}, mean {:.3}",
        ping.p50, ping.p90, ping.p99, ping.max, ping.min, ping.mean
    );
    let over_1ms = ping_ms.iter().filter(|&&t| t >= 1.0).count();
    println!(
        "  lever round trips >= 1 ms: {over_1ms} of {pings} ({:.0}%)",
        100.0 * over_1ms as f64 / pings as f64
    );
    if strip_ansi(&lever.log()).contains(" ERROR ") {
        println!("  lever logged errors:\n{}", strip_ansi(&lever.log()));
    }
    lever.stop(STOP_WAIT);
    alice.expect(is_lever_quit);

    // The floor: the same round trip through a client that answers in a tight loop, with
    // lever gone (ngIRCd relays both ways in both cases, so the difference is lever's share).
    // Not interleaved with lever's pings: ngIRCd does not set TCP_NODELAY, so a line a client
    // leaves unanswered (its ACK delayed up to 40 ms) holds back the next line to it (Nagle).
    let mut echo = Client::connect(server.port, "echo");
    echo.join("#ops");
    let echo_thread = std::thread::spawn(move || {
        while let Some(line) = echo.next_line(Duration::from_secs(60)) {
            if line.verb == "PRIVMSG" && line.text() == "!echo" {
                echo.privmsg("#ops", "pong");
            } else if line.verb == "PRIVMSG" && line.text() == "!echo-stop" {
                break;
            }
        }
    });
    alice.expect(|l| l.verb == "JOIN" && l.from == "echo");
    let echo_ms = round_trips(&mut alice, "!echo", "echo", "pong", pings);
    alice.privmsg("#ops", "!echo-stop");
    echo_thread.join().expect("echo client");
    let floor = latency(&echo_ms);
    println!(
        "  echo client (floor): p50 {:.3} ms, p90 {:.3}, p99 {:.3}, max {:.3}, min {:.3}, mean {:.3}",
        floor.p50, floor.p90, floor.p99, floor.max, floor.min, floor.mean
    );

    // -- 4. !ping under an announcement backlog, default throttle.
    println!(
        "\n[3] !ping under a {BACKLOG}-line announcement backlog (in-process lever, burst 4, \
         1 line/s), {backlog_reps} repetitions"
    );
    let mut backlog = Vec::new();
    for i in 0..backlog_reps {
        let s = backlog_once(server.port, &mut alice);
        println!(
            "  rep {}: first 4 backlog lines within {:.1} ms of the push; pong {:.1} ms after \
             !ping, {} backlog line(s) before it; backlog resumed {} ms after the 4th line",
            i + 1,
            s.first4_ms,
            s.pong_ms,
            s.backlog_before_pong,
            s.next_backlog_after_pong_ms
                .map_or("?".to_owned(), |v| format!("{v:.0}"))
        );
        backlog.push(s);
    }
    drop(server);

    // -- Results.
    let pong_ms: Vec<f64> = backlog.iter().map(|s| s.pong_ms).collect();
    let before_max = backlog.iter().map(|s| s.backlog_before_pong).max().unwrap();
    let rss_starts: Vec<f64> = samples.iter().map(|s| mb(s.mem.rss)).collect();
    let join_med = median(&join_s);
    let idle_rss = mb(mem_joined.rss).max(mb(mem_after.rss));
    println!("\n== results ==");
    println!("{:<52} {:>28} {:>16}", "measure", "value", "target");
    let row = |what: &str, value: String, target: String| {
        println!("{what:<52} {value:>28} {target:>16}");
    };
    row(
        "!ping RTT p50 / p90 (ms)",
        format!("{:.3} / {:.3}", ping.p50, ping.p90),
        String::new(),
    );
    row(
        "!ping RTT p99 (ms)",
        format!("{:.3}", ping.p99),
        format!("< {TARGET_P99_MS} {}", verdict(ping.p99 < TARGET_P99_MS)),
    );
    row(
        "!ping RTT max (ms)",
        format!("{:.3}", ping.max),
        String::new(),
    );
    row(
        "echo-client RTT p50 / p99 / max (ms) [floor]",
        format!("{:.3} / {:.3} / {:.3}", floor.p50, floor.p99, floor.max),
        String::new(),
    );
    row(
        "lever's share at p50 / p99 (ms)",
        format!("{:.3} / {:.3}", ping.p50 - floor.p50, ping.p99 - floor.p99),
        String::new(),
    );
    row(
        "idle VmRSS after join / after pings (MiB)",
        format!("{:.2} / {:.2}", mb(mem_joined.rss), mb(mem_after.rss)),
        format!("< {TARGET_RSS_MB} {}", verdict(idle_rss < TARGET_RSS_MB)),
    );
    row(
        "VmHWM after join / after pings (MiB)",
        format!("{:.2} / {:.2}", mb(mem_joined.hwm), mb(mem_after.hwm)),
        String::new(),
    );
    row(
        "  of which RssAnon / RssFile after pings (MiB)",
        format!("{:.2} / {:.2}", mb(mem_after.anon), mb(mem_after.file)),
        String::new(),
    );
    row("  threads", format!("{}", mem_after.threads), String::new());
    row(
        &format!("idle VmRSS over {starts} starts, median (MiB)"),
        format!("{:.2}", median(&rss_starts)),
        String::new(),
    );
    row(
        &format!("spawn -> JOIN, median of {starts} (ms)"),
        format!("{:.1}", join_med * 1e3),
        format!(
            "< {:.0} ms {}",
            TARGET_JOIN_S * 1e3,
            verdict(join_med < TARGET_JOIN_S)
        ),
    );
    row(
        "spawn -> JOIN min .. max (ms)",
        format!(
            "{:.1} .. {:.1}",
            join_s.iter().copied().fold(f64::MAX, f64::min) * 1e3,
            join_s.iter().copied().fold(0.0, f64::max) * 1e3
        ),
        String::new(),
    );
    if !connecting_s.is_empty() && !conn_to_join_s.is_empty() {
        row(
            "  spawn -> 'connecting' logged, median (ms)",
            format!("{:.1}", median(&connecting_s) * 1e3),
            String::new(),
        );
        row(
            "  'connecting' -> 'joined' logged, median (ms)",
            format!("{:.1}", median(&conn_to_join_s) * 1e3),
            String::new(),
        );
    }
    row(
        &format!("backlog: pong after !ping, median of {backlog_reps} (ms)"),
        format!("{:.1}", median(&pong_ms)),
        "<= ~1000".to_owned(),
    );
    row(
        "backlog: pong after !ping, min .. max (ms)",
        format!(
            "{:.1} .. {:.1}",
            pong_ms.iter().copied().fold(f64::MAX, f64::min),
            pong_ms.iter().copied().fold(0.0, f64::max)
        ),
        String::new(),
    );
    row(
        "backlog: lines before pong (max over reps)",
        format!("{before_max}"),
        format!("<= 1 {}", verdict(before_max <= 1)),
    );
    println!(
        "\nnotes: RTT = client writes `PRIVMSG #ops :!ping` -> client reads lever's `pong` \
         (two ngIRCd relays + loopback included); spawn -> JOIN includes process start, config \
         load, TCP connect and IRC registration; MiB = 1024 KiB."
    );
    println!("reproduce: cargo bench --bench ping");
}
