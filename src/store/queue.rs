//! The push queue of each target: who is waiting to stage and deploy, in order, and the head's
//! turn (since when, until when, warned or not), so it survives a restart and a takeover.

use super::sql::{params, Row};
use super::{Millis, Store, StoreError};

/// One person in a target's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// Their place: lower is earlier.
    pub id: i64,
    pub target: String,
    pub nick: String,
    /// `nick!user@host` when they joined, and their services account if the server said one:
    /// how they are told apart from someone who takes their nick.
    pub source: String,
    pub account: Option<String>,
    /// Who shares their turn (`!queue join with bob`).
    pub with_nick: Option<String>,
    pub note: String,
    /// Said `!queue ready` (PushBot's `.good`).
    pub ready: bool,
    pub joined_at: Millis,
    /// Since when their turn runs, and until when (the head only).
    pub up_since: Option<Millis>,
    pub until: Option<Millis>,
    /// Told their turn is about to end.
    pub warned: bool,
}

const COLUMNS: &str = r#"id, target, nick, source, account, with_nick, note, ready, joined_at,
    up_since, until, warned"#;

fn from_row(row: &Row) -> Result<QueueEntry, StoreError> {
    Ok(QueueEntry {
        id: row.get(0)?,
        target: row.get(1)?,
        nick: row.get(2)?,
        source: row.get(3)?,
        account: row.get(4)?,
        with_nick: row.get(5)?,
        note: row.get(6)?,
        ready: row.get(7)?,
        joined_at: row.get(8)?,
        up_since: row.get(9)?,
        until: row.get(10)?,
        warned: row.get(11)?,
    })
}

impl Store {
    /// `target`'s queue, in order (every target's with `None`).
    pub fn queue(&self, target: Option<&str>) -> Result<Vec<QueueEntry>, StoreError> {
        self.read(|db| {
            let rows = match target {
                Some(t) => db.query(
                    &format!("SELECT {COLUMNS} FROM queue WHERE target = ?1 ORDER BY id"),
                    params![t],
                )?,
                None => db.query(
                    &format!("SELECT {COLUMNS} FROM queue ORDER BY target, id"),
                    params![],
                )?,
            };
            rows.iter().map(from_row).collect()
        })
    }

    /// Puts `entry` at the end of its target's queue; it as stored (with its id).
    pub fn queue_join(&self, entry: &QueueEntry) -> Result<QueueEntry, StoreError> {
        self.write(|db| {
            let id: i64 = db
                .query_one(
                    "INSERT INTO queue (target, nick, source, account, with_nick, note, ready,
                         joined_at, up_since, until, warned)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id",
                    params![
                        entry.target.as_str(),
                        entry.nick.as_str(),
                        entry.source.as_str(),
                        entry.account.as_deref(),
                        entry.with_nick.as_deref(),
                        entry.note.as_str(),
                        i64::from(entry.ready),
                        entry.joined_at,
                        entry.up_since,
                        entry.until,
                        i64::from(entry.warned)
                    ],
                )?
                .get(0)?;
            Ok(QueueEntry {
                id,
                ..entry.clone()
            })
        })
    }

    /// Writes back what changes while someone waits or has their turn.
    pub fn queue_update(&self, entry: &QueueEntry) -> Result<(), StoreError> {
        self.write(|db| {
            db.execute(
                "UPDATE queue SET ready = ?2, up_since = ?3, until = ?4, warned = ?5, note = ?6
                 WHERE id = ?1",
                params![
                    entry.id,
                    i64::from(entry.ready),
                    entry.up_since,
                    entry.until,
                    i64::from(entry.warned),
                    entry.note.as_str()
                ],
            )?;
            Ok(())
        })
    }

    /// Takes `id` out of its queue: `false` if it was not there (any more).
    pub fn queue_remove(&self, id: i64) -> Result<bool, StoreError> {
        self.write(|db| Ok(db.execute("DELETE FROM queue WHERE id = ?1", params![id])? == 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::on_each_engine;

    pub fn entry(target: &str, nick: &str) -> QueueEntry {
        QueueEntry {
            id: 0,
            target: target.into(),
            nick: nick.into(),
            source: format!("{nick}!~{nick}@10.0.0.1"),
            account: None,
            with_nick: None,
            note: String::new(),
            ready: false,
            joined_at: 1,
            up_since: None,
            until: None,
            warned: false,
        }
    }

    on_each_engine! {
        fn a_queue_keeps_its_order_and_the_heads_turn(store) {
            let alice = store.queue_join(&entry("site", "alice")).unwrap();
            store.queue_join(&entry("api", "bob")).unwrap();
            let carol = store.queue_join(&entry("site", "carol")).unwrap();
            let up = QueueEntry { up_since: Some(10), until: Some(3_310), ready: true, ..alice.clone() };
            store.queue_update(&up).unwrap();
            let site = store.queue(Some("site")).unwrap();
            assert_eq!(site, [up, carol.clone()]);
            assert!(store.queue_remove(alice.id).unwrap());
            assert!(!store.queue_remove(alice.id).unwrap(), "gone already");
            assert_eq!(store.queue(Some("site")).unwrap(), [carol]);
            assert_eq!(store.queue(None).unwrap().len(), 2);
        }
    }
}
