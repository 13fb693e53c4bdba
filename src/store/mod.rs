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
pub mod log;
pub mod runs;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// Why the store could not do what was asked.
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
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
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
];

/// A handle to the SQLite store. Operations are short; they serialise on one connection.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if missing) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let display = path.display().to_string();
        let open_error = |source| StoreError::Open {
            path: display.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(open_error)?;
        // WAL: readers never block the writer. FULL: a committed change survives power loss,
        // not only a crash of lever.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_error)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_error)?;
        let store = Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        };
        store.migrate().map_err(|e| match e {
            StoreError::Sqlite(source) => open_error(source),
            other => other,
        })?;
        Ok(store)
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // Every write is one transaction, so a panic cannot leave half a change behind.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.lock();
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
    }

    /// Checks that the store accepts writes (for readiness checks).
    pub fn check_writable(&self) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")?;
        Ok(())
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
