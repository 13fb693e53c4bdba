//! Feature flags' state: what each declared flag serves now, and who set it when and why.
//! A flag with no row serves its configured default. Each change bumps the flag's version (what
//! `If-Match` compares) and is written with its deploy log entry in one transaction.

use super::log::{append, NewEntry};
use super::sql::{params, Db, Row};
use super::{LogEntry, Millis, Store, StoreError};

/// A flag's state as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagState {
    pub key: String,
    /// The variant served (to everyone, or to the rollout's share and the beta list).
    pub variant: String,
    /// Off: every evaluation gets the flag's default, with reason DISABLED.
    pub enabled: bool,
    /// The percentage of targeting keys served `variant` (the rest get the default).
    pub rollout: Option<u8>,
    /// Targeting keys that always get the flag.
    pub beta: Vec<String>,
    /// 0 for a flag never changed; one more at each change.
    pub version: i64,
    pub changed_by: String,
    pub changed_at: Millis,
    pub reason: String,
}

const COLUMNS: &str =
    "key, variant, enabled, rollout, beta, version, changed_by, changed_at, reason";

fn from_row(row: &Row) -> Result<FlagState, StoreError> {
    let rollout: Option<i64> = row.get(3)?;
    let beta: String = row.get(4)?;
    Ok(FlagState {
        key: row.get(0)?,
        variant: row.get(1)?,
        enabled: row.get(2)?,
        rollout: rollout.map(|p| p.clamp(0, 100) as u8),
        beta: beta
            .split(',')
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect(),
        version: row.get(5)?,
        changed_by: row.get(6)?,
        changed_at: row.get(7)?,
        reason: row.get(8)?,
    })
}

impl Store {
    /// Every flag that was ever changed.
    pub fn flag_states(&self) -> Result<Vec<FlagState>, StoreError> {
        self.read(|db| {
            db.query(
                &format!("SELECT {COLUMNS} FROM flags ORDER BY key"),
                params![],
            )?
            .iter()
            .map(from_row)
            .collect()
        })
    }

    /// A number that moves on at every change of any flag (the sum of their versions): a lever
    /// compares it to know when another has changed one.
    pub fn flags_generation(&self) -> Result<i64, StoreError> {
        self.read(|db| {
            // SUM of BIGINT is NUMERIC in PostgreSQL: cast back.
            db.query_one(
                "SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM flags",
                params![],
            )?
            .get(0)
        })
    }

    /// Writes `state` (its `version` the new one) if the flag is still at `version - 1`, with
    /// its log entry, in one transaction; `None` if another change came first.
    pub fn save_flag(
        &self,
        state: &FlagState,
        entry: &NewEntry<'_>,
    ) -> Result<Option<LogEntry>, StoreError> {
        self.write(|db| {
            let saved = write(db, state)?;
            if saved == 0 {
                return Ok(None);
            }
            append(db, entry).map(Some)
        })
    }
}

/// Inserts the first version or updates from the one before; the rows it changed (0: a lost
/// update).
fn write(db: &mut dyn Db, s: &FlagState) -> Result<u64, StoreError> {
    let beta = s.beta.join(",");
    let rollout = s.rollout.map(i64::from);
    let values = params![
        s.key.as_str(),
        s.variant.as_str(),
        i64::from(s.enabled),
        rollout,
        beta.as_str(),
        s.version,
        s.changed_by.as_str(),
        s.changed_at,
        s.reason.as_str()
    ];
    if s.version == 1 {
        return db.execute(
            &format!(
                "INSERT INTO flags ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (key) DO NOTHING"
            ),
            values,
        );
    }
    db.execute(
        "UPDATE flags SET variant = ?2, enabled = ?3, rollout = ?4, beta = ?5, version = ?6,
                changed_by = ?7, changed_at = ?8, reason = ?9
         WHERE key = ?1 AND version = ?6 - 1",
        values,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::on_each_engine;
    use crate::store::LogKind;

    fn state(version: i64, variant: &str) -> FlagState {
        FlagState {
            key: "video".into(),
            variant: variant.into(),
            enabled: true,
            rollout: Some(10),
            beta: vec!["alice".into(), "bob".into()],
            version,
            changed_by: "mygrant".into(),
            changed_at: 1_245_330_325_000,
            reason: "dark launch".into(),
        }
    }

    fn entry(text: &str) -> NewEntry<'_> {
        NewEntry {
            user: "mygrant",
            target: None,
            kind: LogKind::Flag,
            text,
            run_id: None,
            announce: true,
        }
    }

    on_each_engine! {
        fn a_change_is_written_with_its_log_entry_and_a_lost_update_is_refused(store) {
            assert_eq!(store.flags_generation().unwrap(), 0);
            let first = store.save_flag(&state(1, "on"), &entry("FLAG video 10% on")).unwrap();
            assert_eq!(first.unwrap().kind, LogKind::Flag);
            assert_eq!(store.flag_states().unwrap(), [state(1, "on")]);
            // Two changes from version 1: the second finds the flag moved on.
            assert!(store.save_flag(&state(2, "off"), &entry("FLAG video off")).unwrap().is_some());
            assert!(store.save_flag(&state(2, "on"), &entry("FLAG video on")).unwrap().is_none());
            assert!(store.save_flag(&state(1, "on"), &entry("FLAG video on")).unwrap().is_none());
            assert_eq!(store.flag_states().unwrap(), [state(2, "off")]);
            assert_eq!(store.flags_generation().unwrap(), 2);
            let texts: Vec<String> = store.log(10, None).unwrap().into_iter().map(|e| e.text).collect();
            assert_eq!(texts, ["FLAG video off", "FLAG video 10% on"], "nothing logged for a lost update");
        }
    }
}
