//! The store on a real file: how long a durable deploy-log append takes, and how long `!log`,
//! `!graph`'s deploy marks and `!stats`' holds take on a deploy log of a million entries.
//!
//! Run: `cargo bench --bench store` (optionally `-- --appends N --calls N --entries N`).
//!
//! Everything goes through `lever::store::Store`, which opens the file as lever does (WAL,
//! `synchronous = FULL`), in a temp folder under `target/tmp` (the project's disk, not a
//! tmpfs, so every append really waits for its fsync). Only the filling of the million-entry
//! log takes a bulk path: one `rusqlite` transaction on the same file.

use std::path::Path;
use std::time::{Duration, Instant};

use lever::store::log::NewEntry;
use lever::store::{LogKind, Store, DEFAULT_LOCK_WAIT};

#[path = "../tests/support/postgres.rs"]
mod postgres;
use rusqlite::{params, Connection};

/// Targets from the brief: a durable append, and a `!log` query.
const APPEND_TARGET: Duration = Duration::from_millis(1);
const LOG_TARGET: Duration = Duration::from_millis(5);

/// Defaults (at least what the brief asks for).
const DEFAULT_APPENDS: usize = 3_000;
const WARMUP_APPENDS: usize = 200;
const DEFAULT_CALLS: usize = 500;
const WARMUP_CALLS: usize = 20;
const DEFAULT_ENTRIES: usize = 1_000_000;

/// The kinds of the big log's target entries, in turn.
const KINDS: [LogKind; 5] = [
    LogKind::StageStarted,
    LogKind::Staged,
    LogKind::DeployStarted,
    LogKind::Deployed,
    LogKind::Note,
];

/// The busy targets of the big log, and one rare target with an entry every `RARE_EVERY`.
const TARGETS: [&str; 5] = ["site", "api", "search", "photos", "uploads"];
/// (20 entries in a million: the 15 newest reach back 750,000 entries.)
const RARE_EVERY: usize = 50_000;
/// One entry in `GLOBAL_EVERY` is a hold or lift on every target (`target` NULL): 200 in a
/// million minutes, about two a week.
const GLOBAL_EVERY: usize = 5_000;

struct Args {
    appends: usize,
    calls: usize,
    entries: usize,
}

fn args() -> Args {
    let mut parsed = Args {
        appends: DEFAULT_APPENDS,
        calls: DEFAULT_CALLS,
        entries: DEFAULT_ENTRIES,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let slot = match word.as_str() {
            "--appends" => &mut parsed.appends,
            "--calls" => &mut parsed.calls,
            "--entries" => &mut parsed.entries,
            _ => continue, // `--bench` from cargo, and anything else
        };
        *slot = words
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{word} needs a number"));
    }
    parsed
}

/// Percentiles of a set of timings (nearest rank).
struct Spread {
    n: usize,
    sorted: Vec<Duration>,
}

impl Spread {
    fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Spread {
            n: samples.len(),
            sorted: samples,
        }
    }

    fn pct(&self, p: f64) -> Duration {
        let rank = ((p / 100.0) * self.n as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.n) - 1]
    }

    fn max(&self) -> Duration {
        self.sorted[self.n - 1]
    }

    fn min(&self) -> Duration {
        self.sorted[0]
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The filesystem type holding `path` (longest matching mount point in /proc/mounts).
fn filesystem(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (device, point, kind) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(point)
                .then(|| (point.len(), format!("{kind} ({device} on {point})")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".to_owned(), |(_, text)| text)
}

/// An ~80-byte log text like lever's own.
fn entry_text(i: usize, target: Option<&str>, kind: LogKind) -> String {
    let rev = 100_000 + i % 900_000;
    match (kind, target) {
        (LogKind::Hold, None) => {
            format!("NO DEPLOY PLEASE (db migration on the shard cluster, ticket OPS-{rev})")
        }
        (LogKind::Unhold, None) => "DEPLOY OK (lifted mygrant's hold: db migration)".to_owned(),
        (LogKind::StageStarted, Some(t)) => format!("starting stage of {t}... for release r{rev}"),
        (LogKind::Staged, Some(t)) => format!("{t} staged r{rev} — slowest: precompiling 605 ms"),
        (LogKind::DeployStarted, Some(t)) => {
            format!(
                "starting deploy of {t}... (r{rev} → live, was r{})",
                rev - 1
            )
        }
        (LogKind::Deployed, Some(t)) => format!(
            "{t} deployed r{rev} (was r{}; changes: https://svn.example/c/{})",
            rev - 1,
            rev - 1
        ),
        (_, t) => format!(
            "{} note: checked the canary dashboards, error rate flat",
            t.unwrap_or("every target")
        ),
    }
}

/// Fills `path` (created by `Store::open`) with `entries` log lines in one transaction: the
/// busy targets in turn, a global hold or lift every `GLOBAL_EVERY`, a rare target every
/// `RARE_EVERY`. Times one minute apart, ending now.
fn fill(path: &Path, entries: usize) -> rusqlite::Result<()> {
    let mut conn = Connection::open(path)?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO log (at, user, target, kind, text, run_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let users = ["mygrant", "harmes", "aaron", "cal", "kellan", "ross"];
        let kinds = KINDS;
        let now = lever::store::now_ms();
        let start = now - entries as i64 * 60_000;
        for i in 0..entries {
            let (target, kind) = if i % RARE_EVERY == RARE_EVERY / 2 {
                (Some("rare"), kinds[i / RARE_EVERY % kinds.len()])
            } else if i % GLOBAL_EVERY == 0 {
                let kind = if i / GLOBAL_EVERY % 2 == 0 {
                    LogKind::Hold
                } else {
                    LogKind::Unhold
                };
                (None, kind)
            } else {
                (Some(TARGETS[i % TARGETS.len()]), kinds[i / 7 % kinds.len()])
            };
            let run_id = (!matches!(kind, LogKind::Hold | LogKind::Unhold | LogKind::Note))
                .then_some(i as i64 / 2);
            insert.execute(params![
                start + i as i64 * 60_000,
                users[i % users.len()],
                target,
                kind.as_str(),
                entry_text(i, target, kind),
                run_id
            ])?;
        }
    }
    tx.commit()?;
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    Ok(())
}

/// The same log as [`fill`] makes, for PostgreSQL, in one statement.
fn fill_sql(entries: usize) -> String {
    let kinds = KINDS.map(|k| format!("'{}'", k.as_str())).join(", ");
    let targets = TARGETS.map(|t| format!("'{t}'")).join(", ");
    let (hold, unhold, note) = (
        LogKind::Hold.as_str(),
        LogKind::Unhold.as_str(),
        LogKind::Note.as_str(),
    );
    format!(
        r#"INSERT INTO log (at, "user", target, kind, text, run_id)
        SELECT now_ms - ({entries} - i)::bigint * 60000,
               (ARRAY['mygrant', 'harmes', 'aaron', 'cal', 'kellan', 'ross'])[i % 6 + 1],
               target, kind,
               coalesce(target, 'every target') || ' r' || (100000 + i % 900000)
                 || ' — checked the canary dashboards, error rate flat, ticket OPS-4211',
               CASE WHEN kind IN ('{hold}', '{unhold}', '{note}') THEN NULL ELSE i / 2 END
        FROM (
          SELECT i, (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms,
            CASE WHEN i % {RARE_EVERY} = {RARE_EVERY} / 2 THEN 'rare'
                 WHEN i % {GLOBAL_EVERY} = 0 THEN NULL
                 ELSE (ARRAY[{targets}])[i % 5 + 1] END AS target,
            CASE WHEN i % {RARE_EVERY} = {RARE_EVERY} / 2 THEN (ARRAY[{kinds}])[(i / {RARE_EVERY}) % 5 + 1]
                 WHEN i % {GLOBAL_EVERY} = 0 THEN
                   CASE WHEN (i / {GLOBAL_EVERY}) % 2 = 0 THEN '{hold}' ELSE '{unhold}' END
                 ELSE (ARRAY[{kinds}])[(i / 7) % 5 + 1] END AS kind
          FROM generate_series(0, {entries} - 1) AS i
        ) AS made;
        ANALYZE log;"#
    )
}

/// One row of the results table.
struct Row {
    what: String,
    n: usize,
    spread: Spread,
    target: Duration,
    /// Which percentile is held against the target.
    judged: f64,
}

fn time_appends(store: &Store, warmup: usize, count: usize, note: &str) -> Spread {
    let text = "NO DEPLOY PLEASE: site (db migration on the shard cluster, ticket OPS-4211)";
    let entry = NewEntry {
        user: "mygrant",
        target: Some("site"),
        kind: LogKind::Note,
        text,
        run_id: None,
        announce: true,
    };
    for _ in 0..warmup {
        store.append_log(&entry).expect("append");
    }
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        store.append_log(&entry).expect("append");
        samples.push(started.elapsed());
    }
    eprintln!("  {note}: {count} durable appends timed");
    Spread::new(samples)
}

/// Times `calls` calls of `f` after a warm-up.
fn time_calls<T>(calls: usize, mut f: impl FnMut() -> T) -> Spread {
    for _ in 0..WARMUP_CALLS {
        std::hint::black_box(f());
    }
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        std::hint::black_box(f());
        samples.push(started.elapsed());
    }
    Spread::new(samples)
}

fn time_log(store: &Store, limit: usize, target: Option<&str>, calls: usize) -> Spread {
    let check = store.log(limit, target).expect("log");
    assert_eq!(check.len(), limit, "the log holds enough entries");
    if let Some(t) = target {
        assert!(
            check
                .iter()
                .all(|e| e.target.as_deref() == Some(t) || e.target.is_none()),
            "log({limit}, {t}) returned another target's entries"
        );
    }
    time_calls(calls, || store.log(limit, target).expect("log"))
}

/// What the SQLite run found about the big log, for the notes under the table.
struct Facts {
    rare_own: usize,
    rare_15_own: usize,
    rare_15_len: usize,
    rare_15_back: i64,
    first_call: Duration,
}

/// Times appends on `fresh` and the reads on `big` (a filled log), one row each, labelled
/// with the engine.
fn measure(engine: &str, fresh: &Store, store: &Store, args: &Args) -> (Vec<Row>, Facts) {
    let mut rows = Vec::new();
    let spread = time_appends(fresh, WARMUP_APPENDS, args.appends, engine);
    rows.push(Row {
        what: format!("{engine}: append_log, durable, fresh store"),
        n: args.appends,
        spread,
        target: APPEND_TARGET,
        judged: 99.0,
    });
    let rare = store.log(1_000, Some("rare")).expect("log");
    let rare_own = rare.iter().filter(|e| e.target.is_some()).count();
    let rare_15 = store.log(15, Some("rare")).expect("log");
    let rare_15_own = rare_15.iter().filter(|e| e.target.is_some()).count();
    let rare_15_back = rare_15.last().map_or(0, |e| args.entries as i64 - e.id);
    let started = Instant::now();
    let first = store.log(15, Some("site")).expect("log");
    let first_call = started.elapsed();
    assert_eq!(first.len(), 15);
    for (limit, target) in [
        (5, None),
        (15, Some("site")),
        (15, Some("rare")),
        (100, None),
    ] {
        let spread = time_log(store, limit, target, args.calls);
        rows.push(Row {
            what: format!(
                "{engine}: log({limit}, {}) on {} entries",
                target.map_or("None".to_owned(), |t| format!("Some(\"{t}\")")),
                args.entries
            ),
            n: args.calls,
            spread,
            target: LOG_TARGET,
            judged: 99.0,
        });
    }
    // What !graph and !stats read: deploys in a window (the marks of a 7-day graph), and
    // every hold and lift there has been, added up as !stats does.
    let now = lever::store::now_ms();
    let week = 7 * 86_400_000;
    let marks = store
        .log_between(&[LogKind::Deployed, LogKind::RolledBack], now - week, now)
        .expect("log_between");
    eprintln!("  a 7-day graph marks {} deploys", marks.len());
    let spread = time_calls(args.calls, || {
        store
            .log_between(&[LogKind::Deployed, LogKind::RolledBack], now - week, now)
            .expect("log_between")
            .len()
    });
    rows.push(Row {
        what: format!(
            "{engine}: !graph 7d deploy marks ({} deploys) on {} entries",
            marks.len(),
            args.entries
        ),
        n: args.calls,
        spread,
        target: LOG_TARGET,
        judged: 99.0,
    });
    let spread = time_calls(args.calls, || {
        let holds = store
            .log_between(&[LogKind::Hold, LogKind::Unhold], 0, now)
            .expect("log_between");
        let runs = store.runs_since(now - week, None).expect("runs_since");
        lever::metrics::stats::compute(&runs, &holds, Some("site"), now - week, now).held_ms
    });
    rows.push(Row {
        what: format!(
            "{engine}: !stats site: every hold and lift, added up, on {} entries",
            args.entries
        ),
        n: args.calls,
        spread,
        target: LOG_TARGET,
        judged: 99.0,
    });
    // Appends keep their speed on the big log (its indexes are deeper).
    let spread = time_appends(store, WARMUP_APPENDS / 4, args.appends / 2, engine);
    rows.push(Row {
        what: format!("{engine}: append_log, durable, on {} entries", args.entries),
        n: args.appends / 2,
        spread,
        target: APPEND_TARGET,
        judged: 99.0,
    });
    let facts = Facts {
        rare_own,
        rare_15_own,
        rare_15_len: rare_15.len(),
        rare_15_back,
        first_call,
    };
    (rows, facts)
}

fn main() {
    let args = args();
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(base).expect("target tmp dir");
    let dir = tempfile::Builder::new()
        .prefix("lever-store-bench-")
        .tempdir_in(base)
        .expect("temp dir");
    eprintln!(
        "lever store benchmark in {} — {}",
        dir.path().display(),
        filesystem(dir.path())
    );

    // SQLite: durable appends on a fresh store, then the million-entry log.
    let fresh = Store::open(&dir.path().join("append.db")).expect("open store");
    let big = dir.path().join("big.db");
    drop(Store::open(&big).expect("create the big store"));
    let started = Instant::now();
    fill(&big, args.entries).expect("fill");
    let filled_in = started.elapsed();
    let db_size = file_size(&big);
    eprintln!(
        "  filled {} entries in {:.1} s: {} ({} bytes per entry)",
        args.entries,
        filled_in.as_secs_f64(),
        mib(db_size),
        db_size / args.entries.max(1) as u64
    );
    let store = Store::open(&big).expect("open the big store");
    let (mut rows, facts) = measure("SQLite", &fresh, &store, &args);
    drop((fresh, store));
    let wal_size = file_size(&big.with_extension("db-wal"));

    // PostgreSQL, when its server is installed: a private cluster with fsync on, so an append
    // waits for its commit to reach the disk as SQLite's does.
    let postgres = postgres::bin_dir_if_installed().map(|_| {
        let cluster = postgres::Cluster::start_durable();
        let fresh = Store::open_postgres(&cluster.database(), None, DEFAULT_LOCK_WAIT)
            .expect("open a PostgreSQL store");
        let url = cluster.database();
        let store = Store::open_postgres(&url, None, DEFAULT_LOCK_WAIT).expect("open");
        let db = url.rsplit('/').next().unwrap().to_owned();
        let started = Instant::now();
        cluster.psql(&db, &fill_sql(args.entries));
        eprintln!(
            "  PostgreSQL: filled {} entries in {:.1} s",
            args.entries,
            started.elapsed().as_secs_f64()
        );
        let (pg_rows, _) = measure("PostgreSQL", &fresh, &store, &args);
        (cluster, pg_rows)
    });
    if let Some((_, pg_rows)) = &postgres {
        rows.extend(pg_rows.iter().map(|r| Row {
            what: r.what.clone(),
            n: r.n,
            spread: Spread::new(r.spread.sorted.clone()),
            target: r.target,
            judged: r.judged,
        }));
    } else {
        eprintln!(
            "  PostgreSQL is not installed: its rows are left out (scripts/setup.sh installs it)"
        );
    }
    let Facts {
        rare_own,
        rare_15_own,
        rare_15_len,
        rare_15_back,
        first_call,
    } = facts;

    println!();
    println!("| what | n | min ms | p50 ms | p90 ms | p99 ms | max ms | target | p99 within |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for row in &rows {
        let s = &row.spread;
        let judged = s.pct(row.judged);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | < {} ms | {} |",
            row.what,
            row.n,
            ms(s.min()),
            ms(s.pct(50.0)),
            ms(s.pct(90.0)),
            ms(s.pct(99.0)),
            ms(s.max()),
            row.target.as_millis(),
            if judged < row.target { "yes" } else { "NO" }
        );
    }
    println!();
    println!(
        "| store of {} entries | {} ({} bytes per entry); its WAL after the appends: {} |",
        args.entries,
        mib(db_size),
        db_size / args.entries.max(1) as u64,
        mib(wal_size)
    );
    println!(
        "| fill (bulk, one transaction) | {:.1} s |",
        filled_in.as_secs_f64()
    );
    println!(
        "| first log(15, Some(\"site\")) after opening | {} ms |",
        ms(first_call)
    );
    println!(
        "| rare target | {rare_own} own entries among {} (one every {RARE_EVERY}); global holds: one entry in {GLOBAL_EVERY} |",
        args.entries
    );
    println!(
        "| log(15, Some(\"rare\")) | {rare_15_own} rare + {} global entries, the oldest {rare_15_back} entries back |",
        rare_15_len - rare_15_own
    );
    println!("| OS page cache | warm (the store was just written); each append is one fsync of the WAL |");
    println!();
    println!("reproduce: cargo bench --bench store");
}
