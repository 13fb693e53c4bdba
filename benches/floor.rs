//! lever against the null bot: what lever adds to a reply, to memory and to start, measured by
//! the third-party rig in `benches/floor/` (`rtt.py` driving `nullbot.py` and lever in turn on
//! one ngIRCd, penalties off), and what it adds to each step of a stage.
//!
//! 1. Rounds: the null bot, then lever's release binary, each started by `rtt.py` (start to
//!    JOIN, idle RSS of its process tree after a settle, closed-loop `!ping` round trips). The
//!    machine is shared and its speed drifts between runs by more than the difference measured,
//!    so the two alternate and each round's ratio is taken between neighbours; the medians of
//!    the rounds are reported.
//! 2. Steps: a 14-step stage whose steps are `/bin/true`, typed as `!stage` on IRC, timed from
//!    the command to the "staged" line, against the same 14 processes run one after another by
//!    `sh`; what lever adds is the difference, per step (less one `!ping`, the command's own trip).
//!
//! Run: `cargo bench --bench floor` (optionally `-- --rounds N --pings N --stages N`).

mod rig;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rig::support::{bot_config, clear_lever_env, Client, Lever, Ngircd};
use rig::{arg, median, verdict};
use serde_json::Value;

const DEFAULT_ROUNDS: usize = 5;
const DEFAULT_PINGS: usize = 600;
const DEFAULT_STAGES: usize = 20;
/// From one `!ping` to the next (closed loop: never before the reply).
const INTERVAL_S: &str = "0.05";
/// After JOIN, before the idle RSS is read (the rig's default).
const SETTLE_S: &str = "5";
const STEPS: usize = 14;

const TARGET_RATIO: f64 = 1.2;
const TARGET_RSS_MB: f64 = 6.0;
const TARGET_JOIN_S: f64 = 0.07;
const TARGET_STEP_MS: f64 = 3.0;

/// The binary `cargo build --release` makes, built first: that is the one people run. (The
/// one `cargo bench` builds for itself differs in its symbols' hashes, so the hot-code order,
/// `link/hot-functions.txt`, would not apply to it.)
fn release_lever() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--bin", "lever"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo build --release");
    assert!(status.success(), "cargo build --release failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("release/lever")
}

/// How many of the functions `link/hot-functions.txt` lists `binary` has (by `nm`), if `nm`
/// runs: fewer than most means the list is stale (`scripts/hot-code.py` makes it anew).
fn hot_functions_placed(binary: &Path) -> Option<(usize, usize)> {
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("link/hot-functions.txt");
    let listed = std::fs::read_to_string(list).ok()?;
    let out = Command::new("nm").arg(binary).output().ok()?;
    let names: std::collections::HashSet<&str> = std::str::from_utf8(&out.stdout)
        .ok()?
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let listed: Vec<&str> = listed.lines().collect();
    let placed = listed.iter().filter(|n| names.contains(*n)).count();
    Some((placed, listed.len()))
}

fn rig_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/floor")
        .join(name)
}

/// One `rtt.py` run's figures.
#[derive(Debug, Clone, Copy)]
struct Run {
    p50: f64,
    p99: f64,
    rss_mb: f64,
    /// After the pings.
    rss_busy_mb: f64,
    join_s: f64,
}

/// Runs `rtt.py` against the bot `bot_cmd` starts (in `cwd`), as `nick`.
fn rtt(port: u16, nick: &str, bot_cmd: &str, cwd: &Path, pings: usize) -> Run {
    let json = cwd.join(format!("{nick}.json"));
    let mut command = Command::new("python3");
    command
        .arg(rig_file("rtt.py"))
        .args(["--port", &port.to_string(), "--channel", "#ops"])
        .args(["--command", "!ping", "--expect", "pong"])
        .args(["--count", &pings.to_string(), "--interval", INTERVAL_S])
        .args(["--settle", SETTLE_S, "--burst-in", "0"])
        .args(["--bot-nick", nick, "--bot-cmd", bot_cmd])
        .arg("--bot-cwd")
        .arg(cwd)
        .args(["--label", nick, "--json"])
        .arg(&json)
        .stdout(Stdio::null());
    clear_lever_env(&mut command);
    let status = command.status().expect("python3 runs rtt.py");
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("rtt.py ({status}) wrote no {}: {e}", json.display()));
    let v: Value = serde_json::from_str(&text).expect("rtt.py's JSON");
    assert!(
        v["ok"].as_bool() == Some(true) && v["rtt"]["lost"].as_u64() == Some(0),
        "{nick}: rtt.py reports a failed run: {text}"
    );
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    Run {
        p50: num(&v["rtt"]["p50_ms"]),
        p99: num(&v["rtt"]["p99_ms"]),
        rss_mb: num(&v["idle_rss_mb"]),
        rss_busy_mb: num(&v["rss_after_rtt_mb"]),
        join_s: num(&v["start_to_join_s"]),
    }
}

/// lever's folder: the bench's bot.toml (throttle off, like the null bot) with a target
/// whose stage is `STEPS` × `/bin/true`.
fn lever_folder(port: u16) -> Lever {
    let mut target = String::from("[targets.floor]\nannounce = \"steps\"\n");
    for i in 1..=STEPS {
        target.push_str(&format!(
            "[[targets.floor.stage]]\nname = \"step {i}\"\nrun = [\"/bin/true\"]\n"
        ));
    }
    Lever::prepare(&bot_config(port, "", &target))
}

fn rounds(
    server: &Ngircd,
    lever: &Lever,
    binary: &Path,
    rounds: usize,
    pings: usize,
) -> (Vec<Run>, Vec<Run>) {
    let null_cmd = format!(
        "exec python3 {} --port {} --nick nullbot --channel '#ops'",
        rig_file("nullbot.py").display(),
        server.port
    );
    let lever_cmd = format!(
        "exec env RUST_LOG=info {} run --config bot.toml",
        binary.display()
    );
    let (mut null, mut ours) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let n = rtt(server.port, "nullbot", &null_cmd, lever.dir.path(), pings);
        let _ = std::fs::remove_file(lever.path("lever.db"));
        let l = rtt(server.port, "lever", &lever_cmd, lever.dir.path(), pings);
        println!(
            "| {round} | {:.3} / {:.3} | {:.3} / {:.3} | {:.2} | {:.1} / {:.1} ({:.1} / {:.1}) | {:.3} / {:.3} |",
            n.p50,
            n.p99,
            l.p50,
            l.p99,
            l.p50 / n.p50,
            n.rss_mb,
            l.rss_mb,
            n.rss_busy_mb,
            l.rss_busy_mb,
            n.join_s,
            l.join_s
        );
        null.push(n);
        ours.push(l);
    }
    (null, ours)
}

/// `!stage` of the 14 × `/bin/true` target, `stages` times: the median ms from the command to
/// the "staged" line, and the median `!ping` round trip on the same lever.
fn stages(server: &Ngircd, lever: &mut Lever, binary: &Path, stages: usize) -> (f64, f64) {
    let mut alice = Client::connect(server.port, "alice");
    alice.join("#ops");
    let _ = std::fs::remove_file(lever.path("lever.db"));
    lever.set_env(&[("RUST_LOG", "info")]);
    lever.set_binary(binary);
    lever.launch();
    alice.expect(|l| l.verb == "JOIN" && l.from == "lever");
    let mut staged = Vec::new();
    let mut pings = Vec::new();
    for i in 0..stages + 2 {
        let t0 = Instant::now();
        alice.privmsg("#ops", "!ping");
        alice.expect(|l| l.is_privmsg_from("lever") && l.text() == "pong");
        let ping = t0.elapsed().as_secs_f64() * 1e3;
        let t0 = Instant::now();
        alice.privmsg("#ops", "!stage floor");
        let done = alice.expect_within(Duration::from_secs(30), |l| {
            l.is_privmsg_from("lever") && l.text().starts_with("floor staged by")
        });
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        assert!(done.text().contains("staged"), "{}", done.text());
        // The first two warm up (the store's pages, the code that runs a step).
        if i >= 2 {
            staged.push(ms);
            pings.push(ping);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    lever.stop(rig::STOP_WAIT);
    (median(&staged), median(&pings))
}

/// The same 14 processes run one after another by `sh`, `times` times: the median ms.
fn shell_steps(times: usize) -> f64 {
    let script = vec!["/bin/true"; STEPS].join("; ");
    let mut samples = Vec::new();
    for _ in 0..times + 2 {
        let t0 = Instant::now();
        let status = Command::new("sh")
            .args(["-c", &script])
            .status()
            .expect("sh");
        assert!(status.success());
        samples.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    median(&samples[2..])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n_rounds = arg(&args, "--rounds", DEFAULT_ROUNDS);
    let pings = arg(&args, "--pings", DEFAULT_PINGS);
    let n_stages = arg(&args, "--stages", DEFAULT_STAGES);
    let binary = release_lever();
    let server = Ngircd::start();
    let mut lever = lever_folder(server.port);

    println!(
        "lever vs the null bot (benches/floor/rtt.py, {pings} !ping each, {INTERVAL_S} s apart, \
         idle RSS {SETTLE_S} s after JOIN), {n_rounds} alternating rounds"
    );
    println!();
    println!("| round | null bot p50 / p99 ms | lever p50 / p99 ms | p50 ratio | idle RSS MB null / lever (after the pings) | start to JOIN s null / lever |");
    println!("|---|---|---|---|---|---|");
    let (null, ours) = rounds(&server, &lever, &binary, n_rounds, pings);
    let pick = |runs: &[Run], f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let ratio = median(
        &null
            .iter()
            .zip(&ours)
            .map(|(n, l)| l.p50 / n.p50)
            .collect::<Vec<_>>(),
    );
    let rss = pick(&ours, |r| r.rss_mb);
    let rss_busy = pick(&ours, |r| r.rss_busy_mb);
    let join = pick(&ours, |r| r.join_s);
    println!();
    println!(
        "medians: null bot p50 {:.3} ms, p99 {:.3} ms; lever p50 {:.3} ms, p99 {:.3} ms",
        pick(&null, |r| r.p50),
        pick(&null, |r| r.p99),
        pick(&ours, |r| r.p50),
        pick(&ours, |r| r.p99)
    );

    if let Some((placed, listed)) = hot_functions_placed(&binary) {
        println!("hot-code order: {placed} of the {listed} functions listed are in this build");
    }
    println!();
    println!("{n_stages} stages of {STEPS} × /bin/true through !stage, against sh running the same {STEPS} processes:");
    let (staged, ping) = stages(&server, &mut lever, &binary, n_stages);
    let shell = shell_steps(n_stages);
    let per_step = (staged - ping - shell) / STEPS as f64;
    println!(
        "!stage to \"staged\": median {staged:.1} ms (a !ping: {ping:.2} ms); sh: {shell:.1} ms; \
         lever adds {per_step:.2} ms a step"
    );

    println!();
    println!("| what | lever | target | |");
    println!("|---|---|---|---|");
    println!(
        "| !ping p50, as a ratio of the null bot's (median of rounds) | {ratio:.2}× | ≤ {TARGET_RATIO}× | {} |",
        verdict(ratio <= TARGET_RATIO)
    );
    println!(
        "| idle RSS (median of rounds; after the pings {rss_busy:.1} MB) | {rss:.1} MB | ≤ {TARGET_RSS_MB} MB | {} |",
        verdict(rss <= TARGET_RSS_MB)
    );
    println!(
        "| start to JOIN (median of rounds) | {join:.3} s | ≤ {TARGET_JOIN_S} s | {} |",
        verdict(join <= TARGET_JOIN_S)
    );
    println!(
        "| time lever adds to a step | {per_step:.2} ms | ≤ {TARGET_STEP_MS} ms | {} |",
        verdict(per_step <= TARGET_STEP_MS)
    );
}
