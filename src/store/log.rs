//! The deploy log: who did what to which target, and when. Everyone reads it before they
//! stage or deploy ("Before staging or deploying anything that might block deploy, you must
//! check and update the deploy log").

use std::fmt;

use rusqlite::{params, OptionalExtension, Row, Transaction};

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

/// A log entry about to be written.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub user: &'a str,
    pub target: Option<&'a str>,
    pub kind: LogKind,
    pub text: &'a str,
    pub run_id: Option<i64>,
}

impl<'a> NewEntry<'a> {
    pub fn note(user: &'a str, target: Option<&'a str>, text: &'a str) -> Self {
        Self {
            user,
            target,
            kind: LogKind::Note,
            text,
            run_id: None,
        }
    }
}

/// Appends an entry inside a transaction the caller commits.
pub(super) fn append(tx: &Transaction<'_>, entry: &NewEntry<'_>) -> Result<LogEntry, StoreError> {
    let at = now_ms();
    tx.execute(
        "INSERT INTO log (at, user, target, kind, text, run_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            at,
            entry.user,
            entry.target,
            entry.kind.as_str(),
            entry.text,
            entry.run_id
        ],
    )?;
    Ok(LogEntry {
        id: tx.last_insert_rowid(),
        at,
        user: entry.user.to_owned(),
        target: entry.target.map(str::to_owned),
        kind: entry.kind,
        text: entry.text.to_owned(),
        run_id: entry.run_id,
    })
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<LogEntry> {
    Ok(LogEntry {
        id: row.get(0)?,
        at: row.get(1)?,
        user: row.get(2)?,
        target: row.get(3)?,
        kind: LogKind::parse(&row.get::<_, String>(4)?),
        text: row.get(5)?,
        run_id: row.get(6)?,
    })
}

impl Store {
    /// Appends one entry, durably.
    pub fn append_log(&self, entry: &NewEntry<'_>) -> Result<LogEntry, StoreError> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            let written = append(&tx, entry)?;
            tx.commit()?;
            Ok(written)
        })
    }

    /// The newest `limit` entries, newest first; with a target, that target's entries and those
    /// for every target.
    pub fn log(&self, limit: usize, target: Option<&str>) -> Result<Vec<LogEntry>, StoreError> {
        self.read(|conn| {
        let columns = "id, at, user, target, kind, text, run_id";
        let limit = limit as i64;
        let rows = match target {
            None => {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {columns} FROM log ORDER BY id DESC LIMIT ?1"
                ))?;
                let rows = stmt
                    .query_map(params![limit], from_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                rows
            }
            Some(target) => {
                // Two index range scans merged, so a rare target stays fast on a large log.
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {columns} FROM (
                        SELECT * FROM (SELECT {columns} FROM log WHERE target = ?1 ORDER BY id DESC LIMIT ?2)
                        UNION ALL
                        SELECT * FROM (SELECT {columns} FROM log WHERE target IS NULL ORDER BY id DESC LIMIT ?2)
                     ) ORDER BY id DESC LIMIT ?2"
                ))?;
                let rows = stmt
                    .query_map(params![target, limit], from_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                rows
            }
        };
        Ok(rows)
        })
    }

    /// Entries of `kinds` written in `[from, until]` (milliseconds), oldest first.
    pub fn log_between(
        &self,
        kinds: &[LogKind],
        from: Millis,
        until: Millis,
    ) -> Result<Vec<LogEntry>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, at, user, target, kind, text, run_id FROM log
             WHERE kind = ?1 AND at BETWEEN ?2 AND ?3",
            )?;
            let mut entries = Vec::new();
            for kind in kinds {
                let rows = stmt.query_map(params![kind.as_str(), from, until], from_row)?;
                for row in rows {
                    entries.push(row?);
                }
            }
            entries.sort_by_key(|e| (e.at, e.id));
            Ok(entries)
        })
    }

    /// Whether lever wrote a note about run `run_id` (at or after `since`, when the run ended):
    /// how a deploy watch knows it already reported.
    pub fn lever_noted_run(&self, run_id: i64, since: Millis) -> Result<bool, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM log
             WHERE kind = ?1 AND at >= ?2 AND run_id = ?3 AND user = 'lever')",
            )?;
            Ok(
                stmt.query_row(params![LogKind::Note.as_str(), since, run_id], |row| {
                    row.get(0)
                })?,
            )
        })
    }

    /// One entry by id.
    pub fn log_entry(&self, id: i64) -> Result<Option<LogEntry>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT id, at, user, target, kind, text, run_id FROM log WHERE id = ?1",
                    params![id],
                    from_row,
                )
                .optional()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::temp_store;

    fn entry<'a>(user: &'a str, target: Option<&'a str>, text: &'a str) -> NewEntry<'a> {
        NewEntry {
            user,
            target,
            kind: LogKind::Note,
            text,
            run_id: None,
        }
    }

    #[test]
    fn entries_come_back_newest_first_and_filtered_by_target() {
        let (store, _dir) = temp_store();
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

    #[test]
    fn kinds_round_trip() {
        let (store, _dir) = temp_store();
        let mut e = entry("x", None, "t");
        e.kind = LogKind::Deployed;
        let written = store.append_log(&e).unwrap();
        assert_eq!(
            store.log_entry(written.id).unwrap().unwrap().kind,
            LogKind::Deployed
        );
    }
}
