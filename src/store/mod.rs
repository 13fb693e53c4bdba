//! The store: lever's one source of truth, in SQLite (one machine, the default) or
//! PostgreSQL (a database server that outlives any one host).
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
//! - [`alerts`]: with a shared store, alert notifications kept and alert statuses said
//! - [`flags`]: feature flags' state
//! - [`queue`]: each target's push queue
//! - [`sts`]: IRCv3 STS policies learned from IRC servers
//! - [`lease`]: which of several levers sharing a PostgreSQL store is active
//! - `sql`: the SQL both engines speak, written once; `sqlite` and `postgres`: the engines

pub mod alerts;
pub mod copy;
pub mod flags;
pub mod holds;
pub mod json;
pub mod lease;
pub mod log;
mod postgres;
pub mod queue;
pub mod runs;
pub(crate) mod sql;
mod sqlite;
pub mod sts;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sql::Db;

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

/// Why the store could not do what was asked. [`StoreError::is_operational`] ones are said to
/// the user as they are: they name the cause and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store {store}: {reason} (check {check})")]
    Open {
        store: String,
        reason: String,
        check: &'static str,
    },
    #[error(
        "the store {store} was written by a newer lever (schema {found}, this lever knows {known})"
    )]
    TooNew {
        store: String,
        found: i64,
        known: i64,
    },
    #[error("the deploy log is locked by another process: {path} stayed busy for {waited}; nothing was changed (find what holds it, e.g. `fuser {path}`, then try again)")]
    Locked { path: String, waited: String },
    #[error("the deploy log's database {store} did not answer within {waited}; nothing was changed (check its load and locks, e.g. pg_stat_activity, then try again)")]
    Busy { store: String, waited: String },
    #[error("cannot reach the deploy log's database {store}: {reason}; nothing was changed (check that PostgreSQL is up and reachable, then try again)")]
    Unreachable { store: String, reason: String },
    #[error("the disk holding the deploy log is full: {store} cannot be written; nothing was changed (free space on that disk, then try again)")]
    Full { store: String },
    #[error("this lever is no longer the active one: {node} held the lease in epoch {epoch}, and another lever has taken over; nothing was changed")]
    Fenced { node: String, epoch: i64 },
    #[error("this lever ({node}) is a standby: only the active lever writes to the deploy log; nothing was changed")]
    Standby { node: String },
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store: {}", postgres::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("a lease needs a PostgreSQL store ([store] url): several levers share only that")]
    NotShared,
    /// A row that does not read as what lever wrote.
    #[error("store: unexpected data: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether this is a state of the machine an operator can fix (a lock, a full disk, a
    /// database out of reach), to be said as it is, rather than a fault inside lever.
    pub fn is_operational(&self) -> bool {
        matches!(
            self,
            StoreError::Locked { .. }
                | StoreError::Busy { .. }
                | StoreError::Unreachable { .. }
                | StoreError::Full { .. }
                | StoreError::Fenced { .. }
                | StoreError::Standby { .. }
        )
    }
}

/// How long a store operation waits for its turn and for a file lock another process holds,
/// unless `[store] lock_wait` says otherwise.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(2);
/// How long the readiness probe waits: `/readyz` must answer fast.
const PROBE_WAIT: Duration = Duration::from_millis(250);

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

/// A handle to the store, on either engine.
///
/// Every operation runs off the async runtime ([`crate::infra::blocking`]) and within `lock_wait` of
/// being asked, counting the wait behind other store work: a write that cannot happen in time
/// fails with [`StoreError::Locked`] (or `Busy`) instead of queueing, and is never applied
/// later, after its caller (an HTTP client, a person in the channel) was told it failed.
pub struct Store {
    engine: Engine,
    lock_wait: Duration,
    /// Set while this lever holds the lease: every write checks it first ([`lease`]).
    fence: parking_lot::RwLock<Option<lease::Fence>>,
}

// One store a process, behind an Arc: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Engine {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

impl Store {
    /// Opens (creating if missing) the SQLite store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(path, DEFAULT_LOCK_WAIT)
    }

    /// [`Store::open`] with how long an operation may wait for a lock.
    pub fn open_with(path: &Path, lock_wait: Duration) -> Result<Store, StoreError> {
        Ok(Store {
            engine: Engine::Sqlite(sqlite::Sqlite::open(path)?),
            lock_wait,
            fence: Default::default(),
        })
    }

    /// Connects to the PostgreSQL store at `url` (with `password` unless the URL has one) and
    /// brings its schema up to date.
    pub fn open_postgres(
        url: &str,
        password: Option<&str>,
        lock_wait: Duration,
    ) -> Result<Store, StoreError> {
        let wait = lock_wait.max(Duration::from_secs(5));
        Ok(Store {
            engine: Engine::Postgres(postgres::Postgres::open(url, password, wait)?),
            lock_wait,
            fence: Default::default(),
        })
    }

    /// Where the store lives: a file's path, or a database URL without its password.
    pub fn location(&self) -> String {
        match &self.engine {
            Engine::Sqlite(e) => e.path().display().to_string(),
            Engine::Postgres(e) => e.shown().to_owned(),
        }
    }

    /// Whether other levers may share this store (PostgreSQL), so a lease decides who acts.
    pub fn is_shared(&self) -> bool {
        matches!(self.engine, Engine::Postgres(_))
    }

    /// "sqlite" or "postgres".
    pub fn engine(&self) -> &'static str {
        match &self.engine {
            Engine::Sqlite(_) => "sqlite",
            Engine::Postgres(_) => "postgres",
        }
    }

    /// Runs a write as one transaction, so a failure cannot leave half a change behind.
    fn write<T>(
        &self,
        op: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_within(self.lock_wait, op)
    }

    /// From now on every write checks, in its own transaction, that `fence` still holds the
    /// lease (`None`: no check, as on a store no other lever shares).
    pub fn fence(&self, fence: Option<lease::Fence>) {
        *self.fence.write() = fence;
    }

    /// The lease this store's writes are fenced with, if any.
    pub fn fenced(&self) -> Option<lease::Fence> {
        self.fence.read().clone()
    }

    /// [`Store::write`] with a wait of its own (a copy of a whole store takes longer than any
    /// request may).
    fn write_within<T>(
        &self,
        wait: Duration,
        op: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let fence = self.fence.read().clone();
        self.write_as(wait, |db| {
            if let Some(fence) = &fence {
                lease::check(db, fence)?;
            }
            op(db)
        })
    }

    /// A write that does not check the fence: taking and renewing the lease itself.
    fn write_unfenced<T>(
        &self,
        op: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_as(self.lock_wait, op)
    }

    fn write_as<T>(
        &self,
        wait: Duration,
        op: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let deadline = self.deadline(wait);
        crate::infra::blocking::off_runtime(|| match &self.engine {
            Engine::Sqlite(e) => e.write(deadline, wait, op),
            Engine::Postgres(e) => e.write(deadline, wait, op),
        })
    }

    /// After a copy wrote rows with their ids: new rows go on from the highest.
    fn after_copy(&self, db: &mut dyn Db) -> Result<(), StoreError> {
        if let Engine::Postgres(_) = self.engine {
            for table in ["log", "runs"] {
                db.query(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                       (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
                    ),
                    sql::params![],
                )?;
            }
        }
        Ok(())
    }

    /// Runs a read.
    fn read<T>(
        &self,
        op: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let deadline = self.deadline(self.lock_wait);
        crate::infra::blocking::off_runtime(|| match &self.engine {
            Engine::Sqlite(e) => e.read(deadline, self.lock_wait, op),
            Engine::Postgres(e) => e.read(deadline, self.lock_wait, op),
        })
    }

    /// `wait` from now, or the request's [`Deadline`] if sooner.
    fn deadline(&self, wait: Duration) -> Instant {
        let own = Instant::now() + wait;
        DEADLINE.get().map_or(own, |d| d.min(own))
    }

    /// How long an operation may wait for a lock.
    pub fn lock_wait(&self) -> Duration {
        self.lock_wait
    }

    /// The error for a wait of `waited` that did not get its turn.
    pub fn locked(&self, waited: Duration) -> StoreError {
        match &self.engine {
            Engine::Sqlite(e) => e.locked(waited),
            Engine::Postgres(e) => e.busy(waited),
        }
    }

    /// Checks that a write would succeed now (for readiness checks), fast: the disk has room
    /// and a real write commits within a short wait.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        if let Engine::Sqlite(e) = &self.engine {
            e.check_disk()?;
        }
        self.write_within(PROBE_WAIT, |db| {
            db.execute(
                "INSERT INTO probe (id, at) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                sql::params![now_ms()],
            )?;
            Ok(())
        })
    }
}

/// The tests' private PostgreSQL cluster, shared with the integration tests.
#[cfg(test)]
#[path = "../../tests/support/postgres.rs"]
pub(crate) mod test_cluster;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) use super::test_cluster as cluster;

    /// A fresh store in a temp folder (kept alive by the returned guard).
    pub fn temp_store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("lever.db")).unwrap();
        (store, dir)
    }

    /// A fresh PostgreSQL store: a database of its own in this run's cluster.
    pub fn postgres_store() -> Store {
        let url = cluster::shared().database();
        Store::open_postgres(&url, None, DEFAULT_LOCK_WAIT).unwrap()
    }

    /// One store test, run on each engine: `NAME::sqlite` and `NAME::postgres`, each on a
    /// fresh store.
    macro_rules! on_each_engine {
        (fn $name:ident($store:ident) $body:block) => {
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                use crate::store::Store;

                fn check($store: &Store) $body

                #[test]
                fn sqlite() {
                    let (store, _dir) = crate::store::tests::temp_store();
                    check(&store);
                }

                #[test]
                fn postgres() {
                    check(&crate::store::tests::postgres_store());
                }
            }
        };
    }
    pub(crate) use on_each_engine;

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
        rusqlite::Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = Store::open(&path).err().unwrap();
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }
}
