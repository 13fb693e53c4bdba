//! The SQLite engine: one file on this machine, the default. WAL with `synchronous = FULL`, a
//! write and a read connection (for a file), so `!log` and `!status` read on while a write
//! waits for a lock another process holds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rusqlite::Connection;

use super::sql::Db;
use super::StoreError;

/// Schema migrations, applied in order; `PRAGMA user_version` counts how many ran. The
/// PostgreSQL schema (`postgres.rs`) is kept equal to the last of these.
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
    r"
    -- Version 6 is PostgreSQL's lease (levers share only a PostgreSQL store); nothing here.
",
    r"
    -- Entries the announcer has yet to say: a lever that dies before saying one leaves it
    -- for the next to say.
    ALTER TABLE log ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX log_pending ON log(id) WHERE pending = 1;
",
    r"
    -- Version 8 is PostgreSQL's alert inbox (levers share only a PostgreSQL store); nothing here.
",
    r"
    -- Feature flags' state: a row once a flag is changed from its configured default.
    CREATE TABLE flags (
        key         TEXT PRIMARY KEY,
        variant     TEXT NOT NULL,
        enabled     INTEGER NOT NULL,
        rollout     INTEGER,
        beta        TEXT NOT NULL,
        version     INTEGER NOT NULL,
        changed_by  TEXT NOT NULL,
        changed_at  INTEGER NOT NULL,
        reason      TEXT NOT NULL
    );
",
    r"
    -- Each target's push queue, in order, with the head's turn.
    CREATE TABLE queue (
        id          INTEGER PRIMARY KEY,
        target      TEXT NOT NULL,
        nick        TEXT NOT NULL,
        source      TEXT NOT NULL,
        account     TEXT,
        with_nick   TEXT,
        note        TEXT NOT NULL,
        ready       INTEGER NOT NULL,
        joined_at   INTEGER NOT NULL,
        up_since    INTEGER,
        until       INTEGER,
        warned      INTEGER NOT NULL
    );
    CREATE INDEX queue_by_target ON queue(target, id);
",
    r"
    -- IRCv3 STS policies: IRC hosts lever must reach over TLS, and until when.
    CREATE TABLE sts (
        host        TEXT PRIMARY KEY,
        port        INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
    );
",
];

/// The schema version this lever writes: the number of migrations.
pub const SCHEMA: i64 = MIGRATIONS.len() as i64;

/// Free space below which the store's disk counts as full: a hold or a run's end must fit.
const MIN_FREE_BYTES: u64 = 1024 * 1024;

pub struct Sqlite {
    writer: Mutex<Connection>,
    /// `None` for `:memory:`, where a second connection would be a second, empty database.
    reader: Option<Mutex<Connection>>,
    path: PathBuf,
}

impl Sqlite {
    /// Opens (creating if missing) the file at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Sqlite, StoreError> {
        let display = path.display().to_string();
        let open_error = |source: rusqlite::Error| StoreError::Open {
            store: display.clone(),
            reason: source.to_string(),
            check: "[store] path or LEVER_STORE__PATH, and that its folder is writable",
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
        let mut engine = Sqlite {
            writer: Mutex::new(writer),
            reader: None,
            path: path.to_path_buf(),
        };
        engine.migrate().map_err(|e| match e {
            StoreError::Sqlite(source) => open_error(source),
            other => other,
        })?;
        if path != Path::new(":memory:") {
            let reader = Connection::open(path).map_err(open_error)?;
            reader
                .pragma_update(None, "query_only", "ON")
                .map_err(open_error)?;
            engine.reader = Some(Mutex::new(reader));
        }
        Ok(engine)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `op` in one transaction on the write connection, by `deadline`.
    pub fn write<T>(
        &self,
        deadline: Instant,
        waited: Duration,
        op: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with(&self.writer, deadline, waited, op)
    }

    /// Runs `op` on the read connection, by `deadline`.
    pub fn read<T>(
        &self,
        deadline: Instant,
        waited: Duration,
        op: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.reader.as_ref().unwrap_or(&self.writer);
        self.with(conn, deadline, waited, op)
    }

    /// Runs `op` in one transaction on `conn` (a read sees one snapshot).
    fn with<T>(
        &self,
        conn: &Mutex<Connection>,
        deadline: Instant,
        waited: Duration,
        op: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // The time may go waiting behind other store work, itself waiting for the lock.
        let Some(mut conn) = conn.try_lock_until(deadline) else {
            return Err(self.locked(waited));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.locked(waited));
        }
        conn.busy_timeout(left)?;
        let run = |conn: &mut Connection| {
            let mut tx = conn.transaction()?;
            let value = op(&mut tx)?;
            tx.commit()?;
            Ok(value)
        };
        run(&mut conn).map_err(|e| self.classify(e, waited))
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
            Some(rusqlite::ErrorCode::DiskFull) => self.full(),
            _ => error,
        }
    }

    pub fn locked(&self, waited: Duration) -> StoreError {
        StoreError::Locked {
            path: self.path.display().to_string(),
            waited: humantime::format_duration(waited).to_string(),
        }
    }

    fn full(&self) -> StoreError {
        StoreError::Full {
            store: self.path.display().to_string(),
        }
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let conn = self.writer.get_mut();
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA {
            return Err(StoreError::TooNew {
                store: self.path.display().to_string(),
                found: version,
                known: SCHEMA,
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

    /// Whether the disk holding the file has room for a hold or a run's end.
    pub fn check_disk(&self) -> Result<(), StoreError> {
        match self.free_bytes() {
            Some(free) if free < MIN_FREE_BYTES => Err(self.full()),
            _ => Ok(()),
        }
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
