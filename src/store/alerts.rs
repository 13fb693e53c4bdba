//! Alerts among levers sharing a store: every notification as a lever received it (the
//! standbys too), so the active one, or the next, says what it brings; and each alert's status
//! once said, so no lever says it twice. A lever alone on its store keeps both in memory
//! (`alerts::dedup`) and needs neither.

use super::sql::{params, Db};
use super::{now_ms, Millis, Store, StoreError};

/// An alert's status as said: by Alertmanager's fingerprint, firing or resolved, and when that
/// status began (`startsAt` firing, `endsAt` resolved), so an older status arriving late (a
/// notification a standby kept) never overrides a newer one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertMark {
    pub key: String,
    pub resolved: bool,
    pub at: Millis,
}

/// A notification as a lever kept it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub id: i64,
    pub received_at: Millis,
    pub body: String,
}

/// Whether `mark` is news over what is recorded (a status other than the one said, and not
/// older than it); with the row to write if so.
const NEWS: &str = "alerts_said.resolved <> excluded.resolved AND alerts_said.at <= excluded.at";

impl Store {
    /// Keeps a notification `node` received, whatever its role: unfenced, for a standby keeps
    /// them too. Its id.
    pub fn keep_notification(&self, node: &str, body: &str) -> Result<i64, StoreError> {
        self.needs_postgres()?;
        self.write_unfenced(|db| {
            db.query_one(
                "INSERT INTO alert_inbox (received_at, node, body) VALUES (?1, ?2, ?3)
                 RETURNING id",
                params![now_ms(), node, body],
            )?
            .get(0)
        })
    }

    /// Notifications kept after id `after`, received at or after `since`, oldest first, at
    /// most `limit`.
    pub fn kept_notifications(
        &self,
        after: i64,
        since: Millis,
        limit: usize,
    ) -> Result<Vec<Kept>, StoreError> {
        self.needs_postgres()?;
        self.read(|db| {
            db.query(
                "SELECT id, received_at, body FROM alert_inbox
                 WHERE id > ?1 AND received_at >= ?2 ORDER BY id LIMIT ?3",
                params![after, since, limit],
            )?
            .iter()
            .map(|row| {
                Ok(Kept {
                    id: row.get(0)?,
                    received_at: row.get(1)?,
                    body: row.get(2)?,
                })
            })
            .collect()
        })
    }

    /// Which of `marks` were said already (by this lever or another).
    pub fn alerts_said(&self, marks: &[AlertMark]) -> Result<Vec<bool>, StoreError> {
        self.needs_postgres()?;
        self.read(|db| marks.iter().map(|mark| said(db, mark)).collect())
    }

    /// Records `marks` as said, if any of them is news: `true` if one was (the lines that say
    /// them are this lever's to say). Fenced like every write.
    pub fn claim_alerts(&self, marks: &[AlertMark]) -> Result<bool, StoreError> {
        self.needs_postgres()?;
        self.write(|db| {
            let mut news = false;
            for mark in marks {
                let row = db.query_opt(
                    &format!(
                        "INSERT INTO alerts_said (key, resolved, at, said_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (key) DO UPDATE SET resolved = excluded.resolved,
                             at = excluded.at, said_at = excluded.said_at
                         WHERE {NEWS}
                         RETURNING key"
                    ),
                    params![mark.key.as_str(), i64::from(mark.resolved), mark.at, now_ms()],
                )?;
                news |= row.is_some();
            }
            Ok(news)
        })
    }

    /// Forgets notifications received before `kept_since`, and said statuses older than
    /// `said_since`: Alertmanager re-sends what still matters.
    pub fn forget_alerts(&self, kept_since: Millis, said_since: Millis) -> Result<(), StoreError> {
        self.needs_postgres()?;
        self.write(|db| {
            db.execute(
                "DELETE FROM alert_inbox WHERE received_at < ?1",
                params![kept_since],
            )?;
            db.execute(
                "DELETE FROM alerts_said WHERE said_at < ?1",
                params![said_since],
            )?;
            Ok(())
        })
    }
}

/// Whether `mark` (or a newer status of its alert) was said.
fn said(db: &mut dyn Db, mark: &AlertMark) -> Result<bool, StoreError> {
    let row = db.query_opt(
        "SELECT resolved, at FROM alerts_said WHERE key = ?1",
        params![mark.key.as_str()],
    )?;
    Ok(match row {
        None => false,
        Some(row) => {
            let (resolved, at): (bool, Millis) = (row.get(0)?, row.get(1)?);
            resolved == mark.resolved || at > mark.at
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::lease::Fence;
    use crate::store::tests::postgres_store;

    fn mark(key: &str, resolved: bool, at: Millis) -> AlertMark {
        AlertMark {
            key: key.into(),
            resolved,
            at,
        }
    }

    #[test]
    fn a_status_is_claimed_once_and_an_older_one_arriving_late_is_not_news() {
        let store = postgres_store();
        let firing = [mark("fp1", false, 1_000)];
        assert_eq!(store.alerts_said(&firing).unwrap(), [false]);
        assert!(store.claim_alerts(&firing).unwrap());
        assert!(!store.claim_alerts(&firing).unwrap(), "said once");
        assert_eq!(store.alerts_said(&firing).unwrap(), [true]);

        let resolved = mark("fp1", true, 5_000);
        assert!(store
            .claim_alerts(&[resolved, mark("fp2", false, 1)])
            .unwrap());
        // The firing a standby kept, arriving after the resolution was said: old news.
        assert_eq!(store.alerts_said(&firing).unwrap(), [true]);
        assert!(!store.claim_alerts(&firing).unwrap());
        // Firing again later is news.
        assert!(store.claim_alerts(&[mark("fp1", false, 9_000)]).unwrap());
    }

    #[test]
    fn notifications_are_kept_by_a_standby_and_read_back_in_order_then_forgotten() {
        let store = postgres_store();
        store.fence(Some(Fence::standby("host-b")));
        let first = store.keep_notification("host-b", r#"{"n":1}"#).unwrap();
        let second = store.keep_notification("host-b", r#"{"n":2}"#).unwrap();
        let bodies = |after| -> Vec<String> {
            store
                .kept_notifications(after, 0, 10)
                .unwrap()
                .into_iter()
                .map(|k| k.body)
                .collect()
        };
        assert_eq!(bodies(0), [r#"{"n":1}"#, r#"{"n":2}"#]);
        assert_eq!(bodies(first), [r#"{"n":2}"#]);
        assert_eq!(bodies(second), Vec::<String>::new());
        // Forgetting is the active's to do.
        assert!(store.forget_alerts(now_ms() + 1, 0).is_err());
        store.fence(None);
        store.forget_alerts(now_ms() + 1, 0).unwrap();
        assert_eq!(bodies(0), Vec::<String>::new());
    }

    #[test]
    fn a_file_store_keeps_nothing() {
        let (file, _dir) = crate::store::tests::temp_store();
        assert!(matches!(
            file.keep_notification("host-a", "{}"),
            Err(StoreError::NotShared)
        ));
    }
}
