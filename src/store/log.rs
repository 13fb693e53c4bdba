//! The deploy log: who did what to which target, and when. Everyone reads it before they
//! stage or deploy ("Before staging or deploying anything that might block deploy, you must
//! check and update the deploy log").

use std::fmt;

use super::sql::{params, Db, Row};
use super::{format_time, now_ms, Millis, Store, StoreError};

/// What kind of event a log entry records (for filtering and statistics; the text says it to
/// people).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Hold,
    Unhold,
    Staged,
    DeployStarted,
    Deployed,
    RolledBack,
    RunFailed,
    RunCancelled,
    RunInterrupted,
    StageStarted,
    RollbackStarted,
    /// A feature flag changed (`FLAG video off (transcoder melting)`).
    Flag,
    /// Anything else worth recording (reported by other tools, notes).
    Note,
}

impl LogKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Hold => "hold",
            LogKind::Unhold => "unhold",
            LogKind::Staged => "staged",
            LogKind::DeployStarted => "deploy_started",
            LogKind::Deployed => "deployed",
            LogKind::RolledBack => "rolled_back",
            LogKind::RunFailed => "failed",
            LogKind::RunCancelled => "cancelled",
            LogKind::RunInterrupted => "interrupted",
            LogKind::StageStarted => "stage_started",
            LogKind::RollbackStarted => "rollback_started",
            LogKind::Flag => "flag",
            LogKind::Note => "note",
        }
    }

    fn parse(text: &str) -> LogKind {
        [
            LogKind::Hold,
            LogKind::Unhold,
            LogKind::Staged,
            LogKind::DeployStarted,
            LogKind::Deployed,
            LogKind::RolledBack,
            LogKind::RunFailed,
            LogKind::RunCancelled,
            LogKind::RunInterrupted,
            LogKind::StageStarted,
            LogKind::RollbackStarted,
            LogKind::Flag,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
        .unwrap_or(LogKind::Note)
    }
}

/// One line of the deploy log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub id: i64,
    pub at: Millis,
    /// Who did it (a nick, or a tool's name).
    pub user: String,
    /// The target it concerns; `None` for every target (a global hold).
    pub target: Option<String>,
    pub kind: LogKind,
    pub text: String,
    pub run_id: Option<i64>,
}

impl fmt::Display for LogEntry {
    /// `[2009-06-18 13:05:25] [mygrant] NO DEPLOY PLEASE (db migration)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] [{}] {}",
            format_time(self.at),
            self.user,
            self.text
        )
    }
}

/// What [`Store::unannounced`] found.
#[derive(Debug, Default)]
pub struct Unannounced {
    /// The oldest, up to the limit asked for.
    pub entries: Vec<LogEntry>,
    /// How many wait in all.
    pub total: usize,
    /// The newest one's id (0 with none).
    pub last_id: i64,
}

/// A log entry about to be written.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub user: &'a str,
    pub target: Option<&'a str>,
    pub kind: LogKind,
    pub text: &'a str,
    pub run_id: Option<i64>,
    /// Whether the announcer is to say it: then it is pending until it has been said
    /// ([`Store::mark_announced`]), in the same transaction as what it records.
    pub announce: bool,
}

impl<'a> NewEntry<'a> {
    /// A note, answered to whoever asked for it rather than announced.
    pub fn note(user: &'a str, target: Option<&'a str>, text: &'a str) -> Self {
        Self {
            user,
            target,
            kind: LogKind::Note,
            text,
            run_id: None,
            announce: false,
        }
    }
}

/// Appends an entry inside a transaction the caller commits.
pub(super) fn append(db: &mut dyn Db, entry: &NewEntry<'_>) -> Result<LogEntry, StoreError> {
    let at = now_ms();
    let id: i64 = db
        .query_one(
            r#"INSERT INTO log (at, "user", target, kind, text, run_id, pending)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id"#,
            params![
                at,
                entry.user,
                entry.target,
                entry.kind.as_str(),
                entry.text,
                entry.run_id,
                i64::from(entry.announce)
            ],
        )?
        .get(0)?;
    Ok(LogEntry {
        id,
        at,
        user: entry.user.to_owned(),
        target: entry.target.map(str::to_owned),
        kind: entry.kind,
        text: entry.text.to_owned(),
        run_id: entry.run_id,
    })
}

const COLUMNS: &str = r#"id, at, "user", target, kind, text, run_id"#;

fn from_row(row: &Row) -> Result<LogEntry, StoreError> {
    Ok(LogEntry {
        id: row.get(0)?,
        at: row.get(1)?,
        user: row.get(2)?,
        target: row.get(3)?,
        kind: LogKind::parse(&row.get::<String>(4)?),
        text: row.get(5)?,
        run_id: row.get(6)?,
    })
}

fn entries(rows: Vec<Row>) -> Result<Vec<LogEntry>, StoreError> {
    rows.iter().map(from_row).collect()
}

impl Store {
    /// Appends one entry, durably.
    pub fn append_log(&self, entry: &NewEntry<'_>) -> Result<LogEntry, StoreError> {
        self.write(|db| append(db, entry))
    }

    /// The newest `limit` entries, newest first; with a target, that target's entries and those
    /// for every target.
    pub fn log(&self, limit: usize, target: Option<&str>) -> Result<Vec<LogEntry>, StoreError> {
        self.read(|db| {
            let rows = match target {
                None => db.query(
                    &format!("SELECT {COLUMNS} FROM log ORDER BY id DESC LIMIT ?1"),
                    params![limit],
                )?,
                // Two index range scans merged, so a rare target stays fast on a large log.
                Some(target) => db.query(
                    &format!(
                        "SELECT {COLUMNS} FROM (
                            SELECT * FROM (SELECT {COLUMNS} FROM log WHERE target = ?1 ORDER BY id DESC LIMIT ?2) AS mine
                            UNION ALL
                            SELECT * FROM (SELECT {COLUMNS} FROM log WHERE target IS NULL ORDER BY id DESC LIMIT ?2) AS everyones
                         ) AS merged ORDER BY id DESC LIMIT ?2"
                    ),
                    params![target, limit],
                )?,
            };
            entries(rows)
        })
    }

    /// The `limit` entries before entry `before` (all, newest first, without it): a page of
    /// the log, the next one asked for with the last id shown.
    pub fn log_before(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        self.read(|db| {
            entries(db.query(
                &format!("SELECT {COLUMNS} FROM log WHERE id < ?1 ORDER BY id DESC LIMIT ?2"),
                params![before.unwrap_or(i64::MAX), limit],
            )?)
        })
    }

    /// Entries of `kinds` written in `[from, until]` (milliseconds), oldest first.
    pub fn log_between(
        &self,
        kinds: &[LogKind],
        from: Millis,
        until: Millis,
    ) -> Result<Vec<LogEntry>, StoreError> {
        self.read(|db| {
            let mut found = Vec::new();
            for kind in kinds {
                found.extend(entries(db.query(
                    &format!("SELECT {COLUMNS} FROM log WHERE kind = ?1 AND at BETWEEN ?2 AND ?3"),
                    params![kind.as_str(), from, until],
                )?)?);
            }
            found.sort_by_key(|e| (e.at, e.id));
            Ok(found)
        })
    }

    /// Whether lever wrote a note about run `run_id` (at or after `since`, when the run ended):
    /// how a deploy watch knows it already reported.
    pub fn lever_noted_run(&self, run_id: i64, since: Millis) -> Result<bool, StoreError> {
        self.read(|db| {
            db.query_one(
                r#"SELECT EXISTS(SELECT 1 FROM log
                   WHERE kind = ?1 AND at >= ?2 AND run_id = ?3 AND "user" = 'lever')"#,
                params![LogKind::Note.as_str(), since, run_id],
            )?
            .get(0)
        })
    }

    /// Marks entry `id` said, if no lever has said it yet: `true` if this call did, so the
    /// caller says it now ([`crate::chat::claim`]). Fenced like every write: a lever that lost
    /// the lease cannot claim.
    pub fn claim_announcement(&self, id: i64) -> Result<bool, StoreError> {
        self.write(|db| {
            let claimed = db.execute(
                "UPDATE log SET pending = 0 WHERE id = ?1 AND pending = 1",
                params![id],
            )?;
            Ok(claimed == 1)
        })
    }

    /// Marks said every entry still waiting to be, with an id in `from..=through`: `true` if
    /// there was one (those summed up in one line rather than said one by one).
    pub fn claim_announcements(&self, from: i64, through: i64) -> Result<bool, StoreError> {
        self.write(|db| {
            let claimed = db.execute(
                "UPDATE log SET pending = 0 WHERE id BETWEEN ?1 AND ?2 AND pending = 1",
                params![from, through],
            )?;
            Ok(claimed > 0)
        })
    }

    /// Entries written to be announced that no lever has said yet (one died first), oldest
    /// first, at most `limit`; with how many there are in all and the newest one's id.
    pub fn unannounced(&self, limit: usize) -> Result<Unannounced, StoreError> {
        self.read(|db| {
            let entries = entries(db.query(
                &format!("SELECT {COLUMNS} FROM log WHERE pending = 1 ORDER BY id LIMIT ?1"),
                params![limit],
            )?)?;
            let row = db.query_one(
                "SELECT count(*), COALESCE(MAX(id), 0) FROM log WHERE pending = 1",
                params![],
            )?;
            Ok(Unannounced {
                entries,
                total: usize::try_from(row.get::<i64>(0)?).unwrap_or(0),
                last_id: row.get(1)?,
            })
        })
    }

    /// One entry by id.
    pub fn log_entry(&self, id: i64) -> Result<Option<LogEntry>, StoreError> {
        self.read(|db| {
            db.query_opt(
                &format!("SELECT {COLUMNS} FROM log WHERE id = ?1"),
                params![id],
            )?
            .map(|row| from_row(&row))
            .transpose()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::on_each_engine;

    fn entry<'a>(user: &'a str, target: Option<&'a str>, text: &'a str) -> NewEntry<'a> {
        NewEntry {
            user,
            target,
            kind: LogKind::Note,
            text,
            run_id: None,
            announce: false,
        }
    }

    on_each_engine! {
        fn entries_come_back_newest_first_and_filtered_by_target(store) {
            store
                .append_log(&entry("aaron", Some("site"), "site staged"))
                .unwrap();
            store
                .append_log(&entry("mygrant", None, "NO DEPLOY PLEASE"))
                .unwrap();
            store
                .append_log(&entry("harmes", Some("api"), "api deployed"))
                .unwrap();
            let all: Vec<_> = store
                .log(10, None)
                .unwrap()
                .into_iter()
                .map(|e| e.text)
                .collect();
            assert_eq!(all, ["api deployed", "NO DEPLOY PLEASE", "site staged"]);
            let site: Vec<_> = store
                .log(10, Some("site"))
                .unwrap()
                .into_iter()
                .map(|e| e.text)
                .collect();
            assert_eq!(site, ["NO DEPLOY PLEASE", "site staged"]);
            assert_eq!(store.log(1, None).unwrap().len(), 1);
            assert_eq!(
                store.log(1, Some("site")).unwrap()[0].text,
                "NO DEPLOY PLEASE"
            );
        }
    }

    #[test]
    fn an_entry_prints_in_the_deploy_log_format() {
        let e = LogEntry {
            id: 1,
            at: 1_245_330_325_000,
            user: "mygrant".into(),
            target: None,
            kind: LogKind::Hold,
            text: "NO DEPLOY PLEASE (db migration)".into(),
            run_id: None,
        };
        assert_eq!(
            e.to_string(),
            "[2009-06-18 13:05:25] [mygrant] NO DEPLOY PLEASE (db migration)"
        );
    }

    on_each_engine! {
        fn kinds_round_trip(store) {
            let mut e = entry("x", None, "t");
            e.kind = LogKind::Deployed;
            let written = store.append_log(&e).unwrap();
            assert_eq!(
                store.log_entry(written.id).unwrap().unwrap().kind,
                LogKind::Deployed
            );
        }
    }

    on_each_engine! {
        fn an_entry_to_announce_is_claimed_once_and_waits_until_it_is(store) {
            let announced = |text| NewEntry { announce: true, ..entry("mygrant", None, text) };
            let hold = store.append_log(&announced("NO DEPLOY PLEASE (db)")).unwrap();
            store.append_log(&entry("lever", None, "a note nobody announces")).unwrap();
            let lift = store.append_log(&announced("DEPLOY OK")).unwrap();
            let waiting = store.unannounced(1).unwrap();
            assert_eq!(waiting.entries.iter().map(|e| e.id).collect::<Vec<_>>(), [hold.id]);
            assert_eq!((waiting.total, waiting.last_id), (2, lift.id));

            assert!(store.claim_announcement(hold.id).unwrap(), "the first claim wins");
            assert!(!store.claim_announcement(hold.id).unwrap(), "a second loses");
            let waiting = store.unannounced(10).unwrap();
            assert_eq!(waiting.entries.iter().map(|e| e.id).collect::<Vec<_>>(), [lift.id]);

            assert!(store.claim_announcements(hold.id, lift.id).unwrap());
            assert!(!store.claim_announcements(hold.id, lift.id).unwrap());
            let waiting = store.unannounced(10).unwrap();
            assert!(waiting.entries.is_empty());
            assert_eq!((waiting.total, waiting.last_id), (0, 0));
        }
    }
}
