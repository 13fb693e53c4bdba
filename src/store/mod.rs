//! The store: lever's one source of truth, in SQLite.
//!
//! It holds the deploy log, the holds in force, and every run with its steps. Every change is
//! committed (WAL, `synchronous = FULL`) before the caller announces it, so a `kill -9` at any
//! moment loses nothing that was said in the channel. Each change that the log records is
//! written in the same transaction as its log entry: a hold is never placed without its
//! `NO DEPLOY PLEASE` line, nor a run finished without its result.
//!
//! - [`log`]: the deploy log (`[2009-06-18 13:05:25] [mygrant] NO DEPLOY PLEASE (db migration)`)
//! - [`holds`]: NO DEPLOY PLEASE, per target or for every target
//! - [`runs`]: stage, deploy and rollback runs, and their steps

pub mod holds;
pub mod json;
pub mod log;
pub mod runs;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rusqlite::Connection;

pub use holds::Hold;
pub use log::{LogEntry, LogKind};
pub use runs::{Phase, Run, RunState, StepRecord};

/// Milliseconds since the Unix epoch (UTC).
pub type Millis = i64;

/// The current time as [`Millis`].
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// The last moment the log format can show (9999-12-31 23:59:59 UTC).
const LAST_SHOWABLE: Millis = 253_402_300_799_000;

/// Formats a time the way the deploy log shows it: `2009-06-18 13:05:25` (UTC).
pub fn format_time(at: Millis) -> String {
    let time = UNIX_EPOCH + std::time::Duration::from_millis(at.clamp(0, LAST_SHOWABLE) as u64);
    let text = humantime::format_rfc3339_seconds(time).to_string();
    text.trim_end_matches('Z').replacen('T', " ", 1)
}

/// Why the store could not do what was asked. [`StoreError::Locked`] and [`StoreError::Full`]
/// are said to the user as they are: they name the cause and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store {path}: {source} (check [store] path or LEVER_STORE__PATH, and that its folder is writable)")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error(
        "the store {path} was written by a newer lever (schema {found}, this lever knows {known})"
    )]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("the deploy log is locked by another process: {path} stayed busy for {waited}; nothing was changed (find what holds it, e.g. `fuser {path}`, then try again)")]
    Locked { path: String, waited: String },
    #[error("the disk holding the deploy log is full: {path} cannot be written; nothing was changed (free space on that disk, then try again)")]
    Full { path: String },
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// Whether this is a state of the machine an operator can fix (a lock, a full disk), to be
    /// said as it is, rather than a fault inside lever.
    pub fn is_operational(&self) -> bool {
        matches!(self, StoreError::Locked { .. } | StoreError::Full { .. })
    }
}

/// Schema migrations, applied in order; `PRAGMA user_version` counts how many ran.
const MIGRATIONS: &[&str] = &[
    r"
    CREATE TABLE log (
        id      INTEGER PRIMARY KEY,
        at      INTEGER NOT NULL,
        user    TEXT NOT NULL,
        target  TEXT,
        kind    TEXT NOT NULL,
        text    TEXT NOT NULL,
        run_id  INTEGER
    );
    CREATE INDEX log_by_target ON log(target, id);

    CREATE TABLE holds (
        scope       TEXT PRIMARY KEY,
        by_nick     TEXT NOT NULL,
        by_account  TEXT,
        by_source   TEXT NOT NULL,
        reason      TEXT NOT NULL,
        placed_at   INTEGER NOT NULL,
        expires_at  INTEGER
    );

    CREATE TABLE runs (
        id            INTEGER PRIMARY KEY,
        target        TEXT NOT NULL,
        phase         TEXT NOT NULL,
        user          TEXT NOT NULL,
        state         TEXT NOT NULL,
        started_at    INTEGER NOT NULL,
        finished_at   INTEGER,
        version       TEXT,
        prev_version  TEXT,
        note          TEXT,
        error         TEXT
    );
    CREATE INDEX runs_by_target ON runs(target, phase, state, id);

    CREATE TABLE steps (
        run_id       INTEGER NOT NULL REFERENCES runs(id),
        idx          INTEGER NOT NULL,
        name         TEXT NOT NULL,
        state        TEXT NOT NULL,
        started_at   INTEGER NOT NULL,
        finished_at  INTEGER,
        status       TEXT,
        tail         TEXT,
        PRIMARY KEY (run_id, idx)
    );
",
    r"
    -- How many steps a run planned, so an early failure still reads 'step 2/3'.
    ALTER TABLE runs ADD COLUMN steps INTEGER NOT NULL DEFAULT 0;
",
    r"
    -- Who stopped a cancelled run, told apart from why it stopped.
    ALTER TABLE runs ADD COLUMN stopped_by TEXT;
",
    r"
    -- Time windows by kind (deploy marks on graphs, holds for !stats) and runs by time.
    CREATE INDEX log_by_kind ON log(kind, at);
    CREATE INDEX runs_by_start ON runs(started_at);
",
    r"
    -- A step's process group and its leader's start, so a restart finds what a killed lever
    -- left running; and the row readiness writes to prove a write would succeed.
    ALTER TABLE steps ADD COLUMN pgid INTEGER;
    ALTER TABLE steps ADD COLUMN started_mark TEXT;
    CREATE TABLE probe (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL);
",
];

/// How long a store operation waits for its turn and for a file lock another process holds,
/// unless `[store] lock_wait` says otherwise.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(2);
/// How long the readiness probe waits: `/readyz` must answer fast.
const PROBE_WAIT: Duration = Duration::from_millis(250);
/// Free space below which the store's disk counts as full: a hold or a run's end must fit.
const MIN_FREE_BYTES: u64 = 1024 * 1024;

thread_local! {
    /// The deadline of the request this thread is carrying out, if one set it ([`Deadline`]).
    static DEADLINE: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// One deadline for every store operation a request makes, however many, set for as long as
/// the value lives on this thread. A request's synchronous work (checks, then its write) runs
/// on one thread, so a queued request does not get a fresh wait for each step.
pub struct Deadline {
    at: Instant,
    previous: Option<Instant>,
}

impl Deadline {
    /// A deadline `wait` from now (or the one already set, if sooner).
    pub fn start(wait: Duration) -> Deadline {
        let previous = DEADLINE.get();
        let at = previous.map_or(Instant::now() + wait, |p| p.min(Instant::now() + wait));
        DEADLINE.set(Some(at));
        Deadline { at, previous }
    }

    pub fn at(&self) -> Instant {
        self.at
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        DEADLINE.set(self.previous);
    }
}

/// A handle to the SQLite store: one connection for writes and, for a file, one for reads, so
/// `!log` and `!status` read on while a write waits for a lock.
///
/// Every operation runs off the async runtime ([`crate::infra::blocking`]) and within `lock_wait` of
/// being asked, counting the wait behind other store work: a write that cannot happen in time
/// fails with [`StoreError::Locked`] instead of queueing, and is never applied later, after its
/// caller (an HTTP client, a person in the channel) was told it failed.
pub struct Store {
    writer: Mutex<Connection>,
    /// `None` for `:memory:`, where a second connection would be a second, empty database.
    reader: Option<Mutex<Connection>>,
    path: PathBuf,
    lock_wait: Duration,
}

impl Store {
    /// Opens (creating if missing) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(path, DEFAULT_LOCK_WAIT)
    }

    /// [`Store::open`] with how long an operation may wait for a lock.
    pub fn open_with(path: &Path, lock_wait: Duration) -> Result<Store, StoreError> {
        let display = path.display().to_string();
        let open_error = |source| StoreError::Open {
            path: display.clone(),
            source,
        };
        let writer = Connection::open(path).map_err(open_error)?;
        // WAL: readers never block the writer. FULL: a committed change survives power loss,
        // not only a crash of lever.
        writer
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        writer
            .pragma_update(None, "synchronous", "FULL")
            .map_err(open_error)?;
        writer
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(open_error)?;
        let mut store = Store {
            writer: Mutex::new(writer),
            reader: None,
            path: path.to_path_buf(),
            lock_wait,
        };
        store.migrate().map_err(|e| match e {
            StoreError::Sqlite(source) => open_error(source),
            other => other,
        })?;
        if path != Path::new(":memory:") {
            let reader = Connection::open(path).map_err(open_error)?;
            reader
                .pragma_update(None, "query_only", "ON")
                .map_err(open_error)?;
            store.reader = Some(Mutex::new(reader));
        }
        Ok(store)
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a write on the write connection. Every write is one transaction, so a panic cannot
    /// leave half a change behind.
    fn write<T>(
        &self,
        op: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with(&self.writer, self.lock_wait, op)
    }

    /// Runs a read on the read connection.
    fn read<T>(
        &self,
        op: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with(
            self.reader.as_ref().unwrap_or(&self.writer),
            self.lock_wait,
            op,
        )
    }

    /// Runs `op` on `conn` off the runtime, within `wait` of now all told (or by the
    /// request's [`Deadline`], if sooner).
    fn with<T>(
        &self,
        conn: &Mutex<Connection>,
        wait: Duration,
        op: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let own = Instant::now() + wait;
        let deadline = DEADLINE.get().map_or(own, |d| d.min(own));
        crate::infra::blocking::off_runtime(|| {
            // The time may go waiting behind other store work, itself waiting for the lock.
            let Some(mut conn) = conn.try_lock_until(deadline) else {
                return Err(self.locked(wait));
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.locked(wait));
            }
            conn.busy_timeout(left)?;
            op(&mut conn).map_err(|e| self.classify(e, wait))
        })
    }

    /// Names the two failures an operator can fix: a file another process locks, a full disk.
    fn classify(&self, error: StoreError, waited: Duration) -> StoreError {
        let StoreError::Sqlite(e) = &error else {
            return error;
        };
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                self.locked(waited)
            }
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full {
                path: self.path.display().to_string(),
            },
            _ => error,
        }
    }

    /// How long an operation may wait for a lock.
    pub fn lock_wait(&self) -> Duration {
        self.lock_wait
    }

    /// The error for a wait of `waited` that did not get the lock.
    pub fn locked(&self, waited: Duration) -> StoreError {
        StoreError::Locked {
            path: self.path.display().to_string(),
            waited: humantime::format_duration(waited).to_string(),
        }
    }

    fn migrate(&self) -> Result<(), StoreError> {
        self.write(|conn| {
            let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
            let known = MIGRATIONS.len() as i64;
            if version > known {
                return Err(StoreError::TooNew {
                    path: self.path.display().to_string(),
                    found: version,
                    known,
                });
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                let tx = conn.transaction()?;
                tx.execute_batch(sql)?;
                tx.pragma_update(None, "user_version", i as i64 + 1)?;
                tx.commit()?;
                tracing::info!(path = %self.path.display(), version = i + 1, "store schema migrated");
            }
            Ok(())
        })
    }

    /// Checks that a write would succeed now (for readiness checks), fast: the disk has room
    /// and a real write commits within a short wait.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        if let Some(free) = self.free_bytes() {
            if free < MIN_FREE_BYTES {
                return Err(StoreError::Full {
                    path: self.path.display().to_string(),
                });
            }
        }
        self.with(&self.writer, PROBE_WAIT, |conn| {
            // A rolled-back write touches no disk; a committed one is what a hold does.
            conn.execute(
                "INSERT OR REPLACE INTO probe (id, at) VALUES (1, ?1)",
                [now_ms()],
            )?;
            Ok(())
        })
    }

    /// Bytes free to lever on the disk holding the store, if the file is on one.
    fn free_bytes(&self) -> Option<u64> {
        let folder = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let stat = nix::sys::statvfs::statvfs(folder).ok()?;
        Some(stat.blocks_available() as u64 * stat.fragment_size() as u64)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh store in a temp folder (kept alive by the returned guard).
    pub fn temp_store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("lever.db")).unwrap();
        (store, dir)
    }

    #[test]
    fn log_times_read_like_flickrs() {
        assert_eq!(format_time(1_245_330_325_000), "2009-06-18 13:05:25");
        assert_eq!(format_time(i64::MAX), "9999-12-31 23:59:59");
        assert_eq!(format_time(-5), "1970-01-01 00:00:00");
    }

    #[test]
    fn reopening_keeps_the_schema_and_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lever.db");
        {
            let store = Store::open(&path).unwrap();
            store
                .append_log(&log::NewEntry::note("mygrant", None, "hello"))
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.log(10, None).unwrap()[0].text, "hello");
    }

    #[test]
    fn an_unopenable_path_is_named_in_the_error() {
        let err = Store::open(Path::new("/nonexistent-dir/lever.db"))
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(text.contains("/nonexistent-dir/lever.db"), "{text}");
        assert!(text.contains("[store] path"), "{text}");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lever.db");
        Store::open(&path).unwrap();
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = Store::open(&path).err().unwrap();
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }
}
