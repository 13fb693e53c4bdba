//! Takeover time: from `kill -9` of the active lever to the JOIN of the standby that takes
//! over, seen by a client in #ops, over 20 kills at random points of the lease's renewal
//! cycle; with the default lease (15 s) and the shortest one allowed (3 s). Real PostgreSQL
//! (a private cluster with fsync on), a real ngIRCd, lever's release binary.
//!
//! A standby asks for the lease every third of it, and as soon as the holder's runs out by the
//! database's clock; the active renews every third of it. So a kill lands between 0 and a third
//! of a lease after the last renewal, and the takeover follows at two thirds to all of a lease.
//!
//! Run: `cargo bench --bench takeover` (optionally `-- --kills N --lease-s S`, one lease only).

mod rig;

use std::time::{Duration, Instant};

use rig::support::postgres::Cluster;
use rig::support::shared_store::{lever_joined, pg_config};
use rig::support::{signal, Client, Lever, Ngircd};
use rig::{arg, median, pct, real_lever};

const DEFAULT_KILLS: usize = 20;

/// A lever named `node`, at the production log level, on `config`; launched.
fn lever(config: &str, node: &str) -> Lever {
    let mut lever = real_lever(config);
    lever.set_env(&[("RUST_LOG", "info"), ("LEVER_STORE__NODE", node)]);
    lever.launch();
    lever
}

/// Waits until `lever` says it is standby.
fn standing_by(lever: &Lever) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lever.log().contains("standby: another lever is active") {
        assert!(Instant::now() < deadline, "no standby:\n{}", lever.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Seconds from each kill of the active to the next lever's JOIN.
fn takeovers(cluster: &Cluster, lease: Duration, kills: usize) -> Vec<f64> {
    let url = cluster.database();
    let server = Ngircd::start();
    let mut watcher = Client::connect(server.port, "watcher");
    watcher.join("#ops");
    let lease_text = format!("{}s", lease.as_secs());
    let config = pg_config(server.port, &url, &lease_text, "ship", r#"["true"]"#);
    let mut active = lever(&config, "node-0");
    watcher.expect_within(Duration::from_secs(30), lever_joined);
    let mut took = Vec::new();
    for kill in 1..=kills {
        let standby = lever(&config, &format!("node-{kill}"));
        standing_by(&standby);
        // A random point of the active's renewal cycle.
        std::thread::sleep(lease.mul_f64(fastrand::f64() / 3.0));
        let killed = Instant::now();
        signal(active.pid(), "KILL");
        watcher.expect_within(lease * 3, lever_joined);
        took.push(killed.elapsed().as_secs_f64());
        active.kill();
        active = standby;
        eprintln!("  kill {kill}: {:.2} s", took[took.len() - 1]);
    }
    took
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kills = arg(&args, "--kills", DEFAULT_KILLS);
    let leases: Vec<u64> = match arg(&args, "--lease-s", 0) {
        0 => vec![15, 3],
        s => vec![s as u64],
    };
    let cluster = Cluster::start_durable();
    println!(
        "| lease | kills | takeover p50 | p99 | min | max | expected (⅔ to all of the lease) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for lease in leases {
        let lease = Duration::from_secs(lease);
        eprintln!("lease {lease:?}:");
        let mut took = takeovers(&cluster, lease, kills);
        took.sort_by(f64::total_cmp);
        println!(
            "| {} s | {} | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.1}–{:.1} s |",
            lease.as_secs(),
            took.len(),
            median(&took),
            pct(&took, 0.99),
            took[0],
            took[took.len() - 1],
            lease.as_secs_f64() * 2.0 / 3.0,
            lease.as_secs_f64(),
        );
    }
}
