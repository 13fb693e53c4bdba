//! OFREP under load, on the same 2-core machine as lever: the latency of single evaluations
//! offered at 20,000 a second over 64 keep-alive connections (an open-loop load from this bench:
//! each connection sends on a fixed schedule; a request's latency is from its write to the end
//! of its answer, and a send held up past its time by the answer before it is counted as late,
//! so a stall is not hidden); the most single and bulk
//! evaluations a second 64 clients get (wrk, from Debian's packages, closed loop, so its
//! latency is that of a saturated server); and lever's memory with 1,000 flags declared, half of
//! them rolled out.
//!
//! The flag evaluated is rolled out to 30% with a beta list, so every request hashes its
//! targeting key as a real rollout does. lever's release binary, `[http]` on loopback, a real
//! ngIRCd for its IRC side.
//!
//! Run: `cargo bench --bench ofrep` (optionally `-- --seconds N`).

mod rig;

use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use rig::support::{bot_config, http_request, start_serving_http, Lever, Ngircd};
use rig::{arg, mb, mem_of, real_lever, verdict};

const TOKEN: &str = "bench-token-0123456789abcdef";
const TARGET_RATE: f64 = 20_000.0;
const TARGET_P99_MS: f64 = 2.0;

/// `[flags.flag-NNNN]` for `n` on/off flags, and the read token.
fn flags(n: usize) -> String {
    let mut text = format!("[flags]\ntokens = {{ bench = \"{TOKEN}\" }}\n");
    for i in 0..n {
        text.push_str(&format!(
            "[flags.flag-{i:04}]\ndescription = \"flag number {i}\"\ndefault = false\n"
        ));
    }
    text
}

/// lever with `n` flags, serving HTTP; its port.
fn lever(irc_port: u16, n: usize) -> (Lever, u16) {
    let (lever, http, ()) = start_serving_http(|http| {
        let config = bot_config(
            irc_port,
            "",
            &format!(
                "[http]\nlisten = \"127.0.0.1:{http}\"\ntoken = \"{TOKEN}\"\n{}",
                flags(n)
            ),
        );
        (real_lever(&config), ())
    });
    (lever, http)
}

/// Rolls `flag` out to `percent` with a beta list, over the API.
fn roll_out(http: u16, flag: &str, percent: u8) {
    for body in [
        format!(r#"{{"by":"bench","rollout":{percent}}}"#),
        r#"{"by":"bench","beta":["vip-1","vip-2"]}"#.to_owned(),
    ] {
        let (status, reply) = http_request(
            http,
            "PUT",
            &format!("/api/v1/flags/{flag}"),
            Some(TOKEN),
            &body,
        );
        assert_eq!(status, 200, "{reply}");
    }
}

/// What wrk measured: requests a second and latency percentiles in ms.
struct Load {
    rate: f64,
    p50: f64,
    p99: f64,
    errors: String,
}

/// Runs wrk against `path` with a POST of `body`.
fn wrk(http: u16, path: &str, body: &str, seconds: usize) -> Load {
    let script = std::env::temp_dir().join(format!("lever-ofrep-{}.lua", std::process::id()));
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = '{body}'\n\
             wrk.headers[\"Content-Type\"] = \"application/json\"\n\
             wrk.headers[\"Authorization\"] = \"Bearer {TOKEN}\"\n"
        ),
    )
    .unwrap();
    let out = Command::new("wrk")
        .args(["-t2", "-c64", &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{http}{path}"))
        .output()
        .unwrap_or_else(|e| panic!("wrk: {e} (apt-get install wrk)"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let number = |line: &str| -> f64 {
        let value = line.split_whitespace().last().unwrap_or("0");
        let (digits, unit) = value.split_at(
            value
                .find(|c: char| c.is_alphabetic())
                .unwrap_or(value.len()),
        );
        let n: f64 = digits.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => n / 1000.0,
            "s" => n * 1000.0,
            _ => n,
        }
    };
    let find = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .map(number)
    };
    Load {
        rate: find("Requests/sec:").unwrap_or(f64::NAN),
        p50: find("50%").unwrap_or(f64::NAN),
        p99: find("99%").unwrap_or(f64::NAN),
        errors: text
            .lines()
            .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// What a paced load saw: latencies in ms, requests failed, and sends made late (more than a
/// timer tick after their time) because the answer before them had not come.
struct Paced {
    latencies: Vec<f64>,
    failed: usize,
    late: usize,
}

/// Offers `rate` POSTs of `body` to `path` a second over `conns` keep-alive connections for
/// `seconds`.
fn paced(http: u16, path: &str, body: &str, rate: f64, conns: usize, seconds: usize) -> Paced {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let every = Duration::from_secs_f64(conns as f64 / rate);
        let begin = tokio::time::Instant::now() + Duration::from_millis(200);
        let end = begin + Duration::from_secs(seconds as u64);
        let tasks: Vec<_> = (0..conns)
            .map(|i| {
                let request = request.clone();
                tokio::spawn(async move {
                    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", http))
                        .await
                        .unwrap();
                    stream.set_nodelay(true).unwrap();
                    let mut seen = Paced {
                        latencies: Vec::new(),
                        failed: 0,
                        late: 0,
                    };
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut due = begin + every.mul_f64(i as f64 / conns as f64);
                    // The timer's tick: a send within it of its time is on time.
                    let tick = Duration::from_millis(1);
                    while due < end {
                        tokio::time::sleep_until(due).await;
                        let sent = tokio::time::Instant::now();
                        if sent > due + tick + every {
                            seen.late += 1;
                        }
                        let ok = exchange(&mut stream, request.as_bytes(), &mut buf).await;
                        seen.latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                        if !ok {
                            seen.failed += 1;
                        }
                        due += every;
                    }
                    seen
                })
            })
            .collect();
        let mut all = Paced {
            latencies: Vec::new(),
            failed: 0,
            late: 0,
        };
        for task in tasks {
            let seen = task.await.unwrap();
            all.latencies.extend(seen.latencies);
            all.failed += seen.failed;
            all.late += seen.late;
        }
        all
    })
}

/// One request and its whole response on a keep-alive connection; whether it was a 200.
async fn exchange(stream: &mut tokio::net::TcpStream, request: &[u8], buf: &mut [u8]) -> bool {
    if stream.write_all(request).await.is_err() {
        return false;
    }
    let mut have = 0;
    loop {
        let Ok(n) = stream.read(&mut buf[have..]).await else {
            return false;
        };
        if n == 0 {
            return false;
        }
        have += n;
        let text = &buf[..have];
        let Some(head_end) = text.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&text[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if have >= head_end + 4 + length {
            return head.starts_with("http/1.1 200");
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = arg(&args, "--seconds", 10);
    let server = Ngircd::start();
    println!("| what | result | target |");
    println!("|---|---|---|");

    let (small, http) = lever(server.port, 10);
    roll_out(http, "flag-0003", 30);
    let body = r#"{"context":{"targetingKey":"user-4711","plan":"pro"}}"#;
    // A warm-up, then the runs.
    wrk(http, "/ofrep/v1/evaluate/flags/flag-0003", body, 2);
    let one = "/ofrep/v1/evaluate/flags/flag-0003";
    let mut load = paced(http, one, body, TARGET_RATE, 64, seconds);
    let latencies = &mut load.latencies;
    latencies.sort_by(f64::total_cmp);
    let p99 = rig::pct(latencies, 0.99);
    println!(
        "| single evaluations offered at {TARGET_RATE:.0}/s over 64 keep-alive connections, 10 flags | {} answered ({} failed, {} sent late): p50 {:.2} ms, p99 {p99:.2} ms, p99.9 {:.2} ms, max {:.2} ms | p99 < {TARGET_P99_MS} ms at ≥ {TARGET_RATE:.0}/s: {} |",
        latencies.len(),
        load.failed,
        load.late,
        rig::pct(latencies, 0.5),
        rig::pct(latencies, 0.999),
        latencies[latencies.len() - 1],
        verdict(load.failed == 0 && p99 < TARGET_P99_MS)
    );
    let single = wrk(http, one, body, seconds);
    println!(
        "| single evaluations, as many as 64 clients get (wrk, closed loop) | {:.0}/s, p50 {:.2} ms, p99 {:.2} ms {} | ≥ {TARGET_RATE:.0}/s: {} |",
        single.rate,
        single.p50,
        single.p99,
        single.errors,
        verdict(single.rate >= TARGET_RATE)
    );
    let bulk = wrk(http, "/ofrep/v1/evaluate/flags", body, seconds);
    println!(
        "| bulk evaluations (10 flags each), as many as 64 clients get (wrk) | {:.0}/s ({:.0} flags/s), p50 {:.2} ms, p99 {:.2} ms {} | – |",
        bulk.rate,
        bulk.rate * 10.0,
        bulk.p50,
        bulk.p99,
        bulk.errors
    );
    let small_mem = mem_of(small.pid());
    drop(small);

    let (big, http) = lever(server.port, 1000);
    let idle = mem_of(big.pid());
    for i in (0..1000).step_by(2) {
        roll_out(http, &format!("flag-{i:04}"), 30);
    }
    let bulk = wrk(http, "/ofrep/v1/evaluate/flags", body, seconds.min(5));
    let after = mem_of(big.pid());
    println!(
        "| 1,000 flags (500 rolled out with beta lists): RSS at start / after {:.0} bulk evaluations a second of all 1,000 | {:.1} / {:.1} MiB (VmHWM {:.1}; 10 flags: {:.1} MiB after its load) | – |",
        bulk.rate,
        mb(idle.rss),
        mb(after.rss),
        mb(after.hwm),
        mb(small_mem.rss)
    );
    std::thread::sleep(Duration::from_millis(100));
}
