//! What a plugin command costs: `!cmd` round trips from a raw client through a real ngIRCd to
//! lever's release binary and back, for a plugin in `sh` that only echoes, and for the two that
//! ship (`runbook` in Python, `oncall` in Perl). Each command is a fresh process, so this is
//! mostly the interpreter's start; `!ping` on the same lever is the floor. Interpreters are
//! found on the system `PATH` (`/usr/local/bin:/usr/bin:/bin`).
//!
//! Run: `cargo bench --bench plugin` (optionally `-- --calls N`).

mod rig;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Instant;

use rig::support::{bot_config, Client, Lever, Ngircd};
use rig::{arg, pct};

const WARMUP: usize = 10;
const DEFAULT_CALLS: usize = 200;

/// A plugin that says "hello" and nothing else.
const ECHO: &str = "#!/bin/sh\n\
    if [ \"$1\" = --manifest ]; then\n\
      echo '{\"commands\": [{\"name\": \"hello\", \"help\": \"Says hello.\"}]}'\n\
      exit 0\n\
    fi\n\
    cat >/dev/null\n\
    echo hello\n";

fn copy_shipped(into: &Path, name: &str) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plugins")
        .join(name);
    std::fs::copy(&from, into.join(name)).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
}

/// Sends `trigger` and waits for lever's reply starting with `reply`; the round trip in ms.
fn round_trip(client: &mut Client, trigger: &str, reply: &str) -> f64 {
    let t0 = Instant::now();
    client.privmsg("#ops", trigger);
    let line = client.expect(|l| l.is_privmsg_from("lever"));
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    assert!(line.text().starts_with(reply), "{trigger}: {}", line.text());
    ms
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let calls = arg(&args, "--calls", DEFAULT_CALLS);
    let plugins = tempfile::tempdir().expect("temp dir");
    let echo = plugins.path().join("hello");
    std::fs::write(&echo, ECHO).expect("write the echo plugin");
    std::fs::set_permissions(&echo, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for name in ["runbook", "runbooks.toml", "oncall", "oncall.txt"] {
        copy_shipped(plugins.path(), name);
    }
    let server = Ngircd::start();
    let mut alice = Client::connect(server.port, "alice");
    alice.join("#ops");
    let rest = format!("[plugins]\ndir = \"{}\"\n", plugins.path().display());
    // The system's interpreters, as on a server (a version manager's shims, such as pyenv's,
    // add tens of milliseconds to every start).
    let _lever = Lever::start_with_env(
        &bot_config(server.port, "", &rest),
        &[("PATH", "/usr/local/bin:/usr/bin:/bin")],
    );
    alice.expect(|l| l.verb == "JOIN" && l.from == "lever");

    println!("lever plugin benchmark: {calls} sequential calls each, after {WARMUP} warm-up");
    println!();
    println!("| command | plugin | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    for (trigger, what, reply) in [
        ("!ping", "built in (the floor)", "pong"),
        ("!hello", "sh, echoes", "hello"),
        (
            "!runbook HighErrorRate",
            "runbook, Python",
            "HighErrorRate: ",
        ),
        ("!oncall web", "oncall, Perl", "web: "),
    ] {
        for _ in 0..WARMUP {
            round_trip(&mut alice, trigger, reply);
        }
        let mut ms: Vec<f64> = (0..calls)
            .map(|_| round_trip(&mut alice, trigger, reply))
            .collect();
        ms.sort_by(f64::total_cmp);
        println!(
            "| `{trigger}` | {what} | {:.2} | {:.2} | {:.2} | {:.2} |",
            pct(&ms, 0.5),
            pct(&ms, 0.9),
            pct(&ms, 0.99),
            ms[ms.len() - 1]
        );
    }
    println!();
    println!("reproduce: cargo bench --bench plugin");
}
