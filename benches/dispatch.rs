//! Micro-benchmark of what lever does for every channel line that is not a command:
//! `Conn::handle` (parse, identity, `Message`) followed by `Bot::handle` (dispatch that finds
//! no command), on one thread, over a realistic mix of raw server lines.
//!
//! Run: `cargo bench --bench dispatch` (optionally `-- --lines N --runs N`).
//!
//! Each timing run feeds at least 5 million lines; 5 runs per variant after one warm-up run.
//! Rates are reported per core twice: by wall time, and by the thread's own on-CPU time
//! (`/proc/thread-self/schedstat`), which is not inflated when another process takes the core.

mod rig;

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use lever::bot::Bot;
use lever::config::Config;
use lever::irc::state::Conn;
use rig::{arg, median};
use tokio::time::Instant;

const DEFAULT_LINES: usize = 5_000_000;
const DEFAULT_RUNS: usize = 5;
/// Target from the brief: non-command dispatch per core.
const TARGET_LINES_PER_SEC: f64 = 1_000_000.0;

/// The channel traffic: PRIVMSGs to #ops from different people, with and without IRCv3 tags,
/// 40 to 400 bytes. None is a command lever runs (one is another bot's `!word`, one starts
/// with lever's nick but does not address it, one is a CTCP ACTION).
fn line_mix() -> Vec<String> {
    let long_text = "the deploy of api 4.12.0 to production finished in 4m12s; canary error rate \
                     0.02% (baseline 0.03%), p99 latency 182 ms (baseline 179 ms); rolling the \
                     remaining 38 hosts in batches of 6, ETA 9 minutes; see \
                     https://grafana.example.org/d/api-prod";
    let mid_text = "can someone with deploy rights look at the failing integration job? \
                    https://ci.example.org/job/api/4511/console (step 7: db migrations)";
    vec![
        "@time=2026-04-20T12:00:00.123Z;account=alice :alice!~alice@10.0.0.1 PRIVMSG #ops \
         :deploying api to staging now, shout if anything looks off"
            .to_owned(),
        ":bob!bob@gateway/web/irccloud.com/x-123456 PRIVMSG #ops :lgtm".to_owned(),
        format!(
            "@time=2026-04-20T12:00:01.456Z;account=carol;msgid=Zx9KqP2vT0aB :carol!~carol@user/carol PRIVMSG #ops :{mid_text}"
        ),
        ":dave!~dave@2001:db8::42 PRIVMSG #ops :\x01ACTION grabs a coffee before the rollout\x01"
            .to_owned(),
        ":erin!erin@host-192-0-2-7.example.net PRIVMSG #ops :!deplyo api".to_owned(),
        "@account=frank :frank!f@198.51.100.9 PRIVMSG #ops :leverage is the wrong word here, \
         lever is a noun"
            .to_owned(),
        ":grace!~grace@staff.example.org PRIVMSG #ops :https://ci.example.org/job/api/4512/ \
         failed at step 7 (integration), re-running"
            .to_owned(),
        format!(
            "@time=2026-04-20T12:00:02.789Z;account=heidi;msgid=Qw3RtY7uI9oP;+draft/reply=Zx9KqP2vT0aB \
             :heidi!~heidi@2001:db8:1234:5678::beef PRIVMSG #ops :{long_text}"
        ),
        ":ivan!ivan@10.20.30.40 PRIVMSG #ops :ok thx".to_owned(),
        "@time=2026-04-20T12:00:03.000Z :judy!~judy@judy.users.example.com PRIVMSG #ops \
         :anyone else seeing 502s from the edge in eu-west?"
            .to_owned(),
    ]
}

/// A connection after registration (welcome and end of MOTD), its output drained.
fn registered_conn(cfg: &Arc<Config>, now: Instant, with_account_tag: bool) -> Conn {
    let mut conn = Conn::new(cfg.clone(), lever::bot::VERSION, now);
    let mut setup = vec![];
    if with_account_tag {
        setup.push(":s CAP * LS :account-tag extended-join");
        setup.push(":s CAP * ACK :account-tag extended-join");
    }
    setup.push(":s 001 lever :hi");
    setup.push(":s 376 lever :end");
    for line in setup {
        conn.handle(line, now).expect("registration line");
    }
    conn.take_output();
    assert!(conn.is_ready(), "the connection should be registered");
    conn
}

/// This thread's on-CPU time so far (first field of schedstat, nanoseconds).
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

#[derive(Clone, Copy)]
enum Variant {
    /// `irc::proto::Message` parsing only (the protocol crate's share).
    IrcParse,
    /// `Conn::handle` alone: parse + identity + `Message`.
    ConnOnly,
    /// `Conn::handle` then `Bot::handle`: what lever does per non-command line.
    Full,
}

struct Run {
    wall: Duration,
    cpu: Option<Duration>,
    lines: usize,
}

/// Feeds `rounds` passes over `mix` through the variant; returns timings.
fn run_once(
    variant: Variant,
    conn: &mut Conn,
    bot: &Arc<Bot>,
    mix: &[&str],
    rounds: usize,
    now: Instant,
) -> Run {
    let mut messages = 0usize;
    let mut commands = 0usize;
    let cpu0 = thread_cpu_time();
    let t0 = StdInstant::now();
    for _ in 0..rounds {
        for &line in mix {
            let line = black_box(line);
            match variant {
                Variant::IrcParse => {
                    let parsed = line.parse::<irc::proto::Message>();
                    black_box(&parsed);
                }
                Variant::ConnOnly => {
                    let out = conn.handle(line, black_box(now));
                    if let Ok(Some(msg)) = &out {
                        messages += 1;
                        black_box(msg);
                    }
                    black_box(&out);
                }
                Variant::Full => {
                    if let Ok(Some(msg)) = conn.handle(line, black_box(now)) {
                        messages += 1;
                        if let Some(task) = lever::commands::dispatch(bot, black_box(msg)) {
                            commands += 1;
                            black_box(task);
                        }
                    }
                }
            }
        }
    }
    let wall = t0.elapsed();
    let cpu = match (cpu0, thread_cpu_time()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    black_box(messages);
    assert_eq!(commands, 0, "a line in the mix ran a command");
    Run {
        wall,
        cpu,
        lines: rounds * mix.len(),
    }
}

struct Summary {
    name: &'static str,
    wall_rates: Vec<f64>,
    cpu_rates: Vec<f64>,
}

impl Summary {
    fn row(&self) -> String {
        let min = self.wall_rates.iter().copied().fold(f64::MAX, f64::min);
        let max = self.wall_rates.iter().copied().fold(0.0, f64::max);
        let cpu = if self.cpu_rates.is_empty() {
            "n/a".to_owned()
        } else {
            format!("{:>10.0}", median(&self.cpu_rates))
        };
        let med = median(&self.wall_rates);
        format!(
            "{:<44} {:>12.0} {:>12} {:>10.0}..{:<10.0} {:>8.0} ns",
            self.name,
            med,
            cpu,
            min,
            max,
            1e9 / med
        )
    }
}

fn main() {
    // `cargo bench` passes `--bench`; other arguments are ours.
    let args: Vec<String> = std::env::args().collect();
    let want_lines = arg(&args, "--lines", DEFAULT_LINES);
    let runs = arg(&args, "--runs", DEFAULT_RUNS).max(1);

    // `Bot::handle` spawns a task for commands, which needs a runtime (none should run here).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let _guard = runtime.enter();

    let cfg = Config::from_toml(
        "[irc]\nserver = \"irc.test\"\nnickname = \"lever\"\nchannels = [\"#ops\"]\n",
        "bench bot.toml",
        PathBuf::from("."),
    )
    .expect("bench config");
    let cfg = Arc::new(cfg);
    let store =
        Arc::new(lever::store::Store::open(std::path::Path::new(":memory:")).expect("store"));
    let bot = Bot::new(cfg.clone(), store).expect("bot");
    let now = Instant::now();

    let owned = line_mix();
    let mix: Vec<&str> = owned.iter().map(String::as_str).collect();
    for line in &mix {
        assert!(
            (40..=400).contains(&line.len()),
            "mix line of {} bytes: {line}",
            line.len()
        );
    }
    let tagged = mix.iter().filter(|l| l.starts_with('@')).count();
    let avg = mix.iter().map(|l| l.len()).sum::<usize>() as f64 / mix.len() as f64;
    let (shortest, longest) = (
        mix.iter().map(|l| l.len()).min().unwrap(),
        mix.iter().map(|l| l.len()).max().unwrap(),
    );

    // Check the mix does what it claims: messages for the bot, no command, nothing queued.
    let mut probe = registered_conn(&cfg, now, false);
    let mut as_messages = 0;
    for line in &mix {
        if let Some(msg) = probe.handle(line, now).expect("line handled") {
            as_messages += 1;
            assert!(
                lever::commands::dispatch(&bot, msg).is_none(),
                "{line} ran a command"
            );
        }
    }
    assert!(bot.outbox.is_empty(), "dispatch queued a reply");
    assert!(
        probe.take_output().is_empty(),
        "Conn queued protocol output"
    );

    let rounds = want_lines.div_ceil(mix.len());
    let lines_per_run = rounds * mix.len();
    println!(
        "lever dispatch micro-benchmark: {} lines in the mix ({tagged} with IRCv3 tags, \
         {shortest}..{longest} bytes, mean {avg:.0}); {as_messages} become Messages, \
         0 run a command",
        mix.len()
    );
    println!("{runs} timed runs of {lines_per_run} lines each per variant, after 1 warm-up run\n");

    let variants: [(&'static str, Variant, bool); 4] = [
        (
            "Conn::handle + dispatch (full, no caps)",
            Variant::Full,
            false,
        ),
        (
            "Conn::handle + dispatch (account-tag on)",
            Variant::Full,
            true,
        ),
        ("Conn::handle only (parse-only)", Variant::ConnOnly, false),
        (
            "irc::proto::Message::from_str only",
            Variant::IrcParse,
            false,
        ),
    ];
    let mut summaries = Vec::new();
    for (name, variant, caps) in variants {
        let mut conn = registered_conn(&cfg, now, caps);
        run_once(variant, &mut conn, &bot, &mix, rounds, now); // warm-up
        let mut summary = Summary {
            name,
            wall_rates: Vec::new(),
            cpu_rates: Vec::new(),
        };
        for i in 0..runs {
            let r = run_once(variant, &mut conn, &bot, &mix, rounds, now);
            let wall_rate = r.lines as f64 / r.wall.as_secs_f64();
            summary.wall_rates.push(wall_rate);
            let cpu_note = match r.cpu {
                Some(cpu) if !cpu.is_zero() => {
                    let rate = r.lines as f64 / cpu.as_secs_f64();
                    summary.cpu_rates.push(rate);
                    format!(
                        "{rate:>10.0}/s on-CPU ({:.0}% of wall)",
                        100.0 * cpu.as_secs_f64() / r.wall.as_secs_f64()
                    )
                }
                _ => String::new(),
            };
            println!(
                "  {name:<44} run {}: {:>7.3} s  {wall_rate:>10.0} lines/s  {cpu_note}",
                i + 1,
                r.wall.as_secs_f64()
            );
        }
        assert!(bot.outbox.is_empty(), "dispatch queued a reply");
        summaries.push(summary);
    }

    println!("\n== results (lines/s on one core; median of {runs} runs) ==");
    println!(
        "{:<44} {:>12} {:>12} {:>22} {:>11}",
        "what", "wall median", "CPU median", "wall min..max", "per line"
    );
    for s in &summaries {
        println!("{}", s.row());
    }
    let full = median(&summaries[0].wall_rates);
    println!(
        "\ntarget: non-command dispatch > {:.0} lines/s per core: {:.0} lines/s -> {}",
        TARGET_LINES_PER_SEC,
        full,
        if full > TARGET_LINES_PER_SEC {
            "MET"
        } else {
            "MISSED"
        }
    );
    println!("reproduce: cargo bench --bench dispatch");
}
