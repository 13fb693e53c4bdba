//! Holds: NO DEPLOY PLEASE, for one target or for every target, until lifted or expired.

use super::log::{self, LogEntry, LogKind, NewEntry};
use super::sql::{params, Row};
use super::{Millis, Store, StoreError};

/// How the store writes "every target".
const EVERY_TARGET: &str = "*";

/// A hold in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The target held; `None` holds every target.
    pub target: Option<String>,
    pub by_nick: String,
    /// The holder's services account, when the server told us.
    pub by_account: Option<String>,
    /// The holder's `nick!user@host`.
    pub by_source: String,
    pub reason: String,
    pub placed_at: Millis,
    /// When it lifts by itself, if it was placed with a duration.
    pub expires_at: Option<Millis>,
}

impl Hold {
    /// Whether this hold blocks deploys of `target`.
    pub fn covers(&self, target: &str) -> bool {
        self.target.as_deref().is_none_or(|t| t == target)
    }

    /// What the hold is on, for messages: a target name, or "every target".
    pub fn scope(&self) -> &str {
        self.target.as_deref().unwrap_or("every target")
    }
}

fn scope_key(target: Option<&str>) -> &str {
    target.unwrap_or(EVERY_TARGET)
}

fn from_row(row: &Row) -> Result<Hold, StoreError> {
    let scope: String = row.get(0)?;
    Ok(Hold {
        target: (scope != EVERY_TARGET).then_some(scope),
        by_nick: row.get(1)?,
        by_account: row.get(2)?,
        by_source: row.get(3)?,
        reason: row.get(4)?,
        placed_at: row.get(5)?,
        expires_at: row.get(6)?,
    })
}

const COLUMNS: &str = "scope, by_nick, by_account, by_source, reason, placed_at, expires_at";

impl Store {
    /// Places (or replaces) the hold on its scope and logs `text`, in one transaction.
    pub fn place_hold(&self, hold: &Hold, text: &str) -> Result<LogEntry, StoreError> {
        self.write(|db| {
            db.execute(
                &format!(
                    "INSERT INTO holds ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (scope) DO UPDATE SET by_nick = excluded.by_nick,
                        by_account = excluded.by_account, by_source = excluded.by_source,
                        reason = excluded.reason, placed_at = excluded.placed_at,
                        expires_at = excluded.expires_at"
                ),
                params![
                    scope_key(hold.target.as_deref()),
                    &hold.by_nick,
                    hold.by_account.as_ref(),
                    &hold.by_source,
                    &hold.reason,
                    hold.placed_at,
                    hold.expires_at
                ],
            )?;
            log::append(
                db,
                &NewEntry {
                    user: &hold.by_nick,
                    target: hold.target.as_deref(),
                    kind: LogKind::Hold,
                    text,
                    run_id: None,
                    announce: true,
                },
            )
        })
    }

    /// Lifts the hold on `target` (`None`: the hold on every target), logging the text
    /// `describe` makes of it as `by`, in one transaction. With `placed_at`, only the hold
    /// placed at that moment is lifted (not one that replaced it meanwhile). `None` if there
    /// was no such hold.
    pub fn lift_hold(
        &self,
        target: Option<&str>,
        placed_at: Option<Millis>,
        by: &str,
        describe: impl FnOnce(&Hold) -> String,
    ) -> Result<Option<(Hold, LogEntry)>, StoreError> {
        self.write(|db| {
            let hold = db
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM holds WHERE scope = ?1"),
                    params![scope_key(target)],
                )?
                .map(|row| from_row(&row))
                .transpose()?;
            let Some(hold) = hold.filter(|h| placed_at.is_none_or(|at| at == h.placed_at)) else {
                return Ok(None);
            };
            db.execute(
                "DELETE FROM holds WHERE scope = ?1",
                params![scope_key(target)],
            )?;
            let text = describe(&hold);
            let entry = log::append(
                db,
                &NewEntry {
                    user: by,
                    target,
                    kind: LogKind::Unhold,
                    text: &text,
                    run_id: None,
                    announce: true,
                },
            )?;
            Ok(Some((hold, entry)))
        })
    }

    /// Every hold in force, oldest first.
    pub fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        self.read(|db| {
            db.query(
                &format!("SELECT {COLUMNS} FROM holds ORDER BY placed_at"),
                params![],
            )?
            .iter()
            .map(from_row)
            .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::on_each_engine;

    fn hold(target: Option<&str>, reason: &str) -> Hold {
        Hold {
            target: target.map(Into::into),
            by_nick: "mygrant".into(),
            by_account: Some("mygrant".into()),
            by_source: "mygrant!~m@10.0.0.1".into(),
            reason: reason.into(),
            placed_at: 1_000,
            expires_at: None,
        }
    }

    on_each_engine! {
        fn a_hold_and_its_log_line_are_written_together(store) {
            let entry = store
                .place_hold(
                    &hold(None, "db migration"),
                    "NO DEPLOY PLEASE (db migration)",
                )
                .unwrap();
            assert_eq!(entry.kind, LogKind::Hold);
            assert_eq!(entry.target, None);
            assert_eq!(store.holds().unwrap(), [hold(None, "db migration")]);
            assert!(store.holds().unwrap()[0].covers("site"));
        }
    }

    on_each_engine! {
        fn lifting_removes_the_hold_and_logs_who_lifted_it(store) {
            store
                .place_hold(&hold(Some("site"), "flaky"), "NO DEPLOY PLEASE (flaky)")
                .unwrap();
            assert!(store
                .lift_hold(None, None, "aaron", |_| "x".into())
                .unwrap()
                .is_none());
            assert!(
                store
                    .lift_hold(Some("site"), Some(999), "lever", |_| "x".into())
                    .unwrap()
                    .is_none(),
                "a hold placed at another moment is not the one to lift"
            );
            let (lifted, entry) = store
                .lift_hold(Some("site"), Some(1_000), "aaron", |h| {
                    format!("DEPLOY OK (was {}'s)", h.by_nick)
                })
                .unwrap()
                .unwrap();
            assert_eq!(lifted.reason, "flaky");
            assert_eq!(entry.user, "aaron");
            assert_eq!(entry.text, "DEPLOY OK (was mygrant's)");
            assert!(store.holds().unwrap().is_empty());
            assert!(!lifted.covers("api"));
        }
    }
}
