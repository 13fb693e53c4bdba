//! Leadership: which of several levers sharing one PostgreSQL store is the active one.
//!
//! One row, `lever_lease`, names the holder and an epoch (the fencing token) and when the lease
//! ends, by the database's clock only: lever's hosts may disagree about the time, the database
//! is the one clock they share. Taking an expired lease bumps the epoch. Once a lever holds the
//! lease, [`Store::fence`] makes every write of its store check, in the write's own transaction,
//! that it still holds that epoch (the row is read `FOR SHARE`, so a takeover waits for the
//! write to end, or the write sees the takeover): a lever that was paused past its lease, or cut
//! off, writes nothing once another has taken over. No advisory locks: they are tied to a
//! session, which poolers and cancelled queries break.

use std::time::Duration;

use super::sql::{params, Db};
use super::{Store, StoreError};

/// A fencing token: the node holding the lease and the epoch it holds it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub node: String,
    pub epoch: i64,
}

impl Fence {
    /// The fence of a standby: no epoch (they start at 1), so it writes nothing.
    pub fn standby(node: &str) -> Fence {
        Fence {
            node: node.to_owned(),
            epoch: 0,
        }
    }
}

/// The lever holding the lease, as others see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub node: String,
    pub epoch: i64,
    /// Where its HTTP side answers (`[http] public_url`), for standbys to send writers to.
    pub http: Option<String>,
}

/// What asking for the lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This node holds the lease now, in `epoch`; `from` held it before (it had expired).
    Active { epoch: i64, from: Option<String> },
    /// Another node holds it, for `ends_in` more by the database's clock (a duration, so no
    /// host's clock is compared with it).
    Standby { holder: Holder, ends_in: Duration },
}

/// Milliseconds as the database adds them to its clock.
const LATER: &str = "clock_timestamp() + CAST(?3 AS BIGINT) * interval '1 millisecond'";

impl Store {
    /// Takes the lease for `node` for `lease` if it is free (never taken, or expired), bumping
    /// the epoch and noting where `node` answers HTTP; else says who holds it.
    pub fn claim_lease(
        &self,
        node: &str,
        lease: Duration,
        http: Option<&str>,
    ) -> Result<Claim, StoreError> {
        self.needs_postgres()?;
        let ms = lease.as_millis() as i64;
        self.write_unfenced(|db| {
            let held = db.query_opt(
                "SELECT node, epoch, expires_at <= clock_timestamp(), http,
                        CAST(EXTRACT(EPOCH FROM expires_at - clock_timestamp()) * 1000 AS BIGINT)
                 FROM lever_lease WHERE id = 1 FOR UPDATE",
                params![],
            )?;
            let Some(held) = held else {
                db.execute(
                    &format!(
                        "INSERT INTO lever_lease (id, node, epoch, expires_at, http)
                         VALUES (1, ?1, ?2, {LATER}, ?4)"
                    ),
                    params![node, 1i64, ms, http],
                )?;
                return Ok(Claim::Active {
                    epoch: 1,
                    from: None,
                });
            };
            let (holder, epoch, free): (String, i64, bool) =
                (held.get(0)?, held.get(1)?, held.get(2)?);
            if !free {
                let ms: i64 = held.get(4)?;
                return Ok(Claim::Standby {
                    holder: Holder {
                        node: holder,
                        epoch,
                        http: held.get(3)?,
                    },
                    ends_in: Duration::from_millis(ms.max(0) as u64),
                });
            }
            let epoch = epoch + 1;
            db.execute(
                &format!(
                    "UPDATE lever_lease SET node = ?1, epoch = ?2, expires_at = {LATER}, http = ?4
                     WHERE id = 1"
                ),
                params![node, epoch, ms, http],
            )?;
            Ok(Claim::Active {
                epoch,
                from: Some(holder),
            })
        })
    }

    /// Extends the lease `fence` holds to `lease` from now; `false` if it no longer holds it
    /// (expired, or taken over).
    pub fn renew_lease(&self, fence: &Fence, lease: Duration) -> Result<bool, StoreError> {
        self.needs_postgres()?;
        let ms = lease.as_millis() as i64;
        self.write_unfenced(|db| {
            let renewed = db.execute(
                &format!(
                    "UPDATE lever_lease SET expires_at = {LATER}
                     WHERE id = 1 AND node = ?1 AND epoch = ?2 AND expires_at > clock_timestamp()"
                ),
                params![&fence.node, fence.epoch, ms],
            )?;
            Ok(renewed == 1)
        })
    }

    /// Gives the lease up at once (a clean stop), so a standby need not wait for it to expire.
    pub fn release_lease(&self, fence: &Fence) -> Result<(), StoreError> {
        self.needs_postgres()?;
        self.write_unfenced(|db| {
            db.execute(
                "UPDATE lever_lease SET expires_at = clock_timestamp()
                 WHERE id = 1 AND node = ?1 AND epoch = ?2",
                params![&fence.node, fence.epoch],
            )?;
            Ok(())
        })
    }

    /// Who holds the lease, and whether it is still in force.
    pub fn lease_holder(&self) -> Result<Option<(Holder, bool)>, StoreError> {
        self.needs_postgres()?;
        self.read(|db| {
            db.query_opt(
                "SELECT node, epoch, expires_at > clock_timestamp(), http FROM lever_lease
                 WHERE id = 1",
                params![],
            )?
            .map(|row| {
                Ok((
                    Holder {
                        node: row.get(0)?,
                        epoch: row.get(1)?,
                        http: row.get(3)?,
                    },
                    row.get(2)?,
                ))
            })
            .transpose()
        })
    }

    pub(super) fn needs_postgres(&self) -> Result<(), StoreError> {
        match self.is_shared() {
            true => Ok(()),
            false => Err(StoreError::NotShared),
        }
    }
}

/// The check every fenced write makes first, in its own transaction.
pub(super) fn check(db: &mut dyn Db, fence: &Fence) -> Result<(), StoreError> {
    if fence.epoch == 0 {
        return Err(StoreError::Standby {
            node: fence.node.clone(),
        });
    }
    let held = db.query_opt(
        "SELECT 1 FROM lever_lease
         WHERE id = 1 AND node = ?1 AND epoch = ?2 AND expires_at > clock_timestamp()
         FOR SHARE",
        params![&fence.node, fence.epoch],
    )?;
    match held {
        Some(_) => Ok(()),
        None => Err(StoreError::Fenced {
            node: fence.node.clone(),
            epoch: fence.epoch,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::log::NewEntry;
    use crate::store::tests::cluster;

    const LEASE: Duration = Duration::from_millis(600);

    /// Two levers' stores on one database.
    fn two() -> (Store, Store) {
        let url = cluster::shared().database();
        let open = || Store::open_postgres(&url, None, crate::store::DEFAULT_LOCK_WAIT).unwrap();
        (open(), open())
    }

    #[test]
    fn one_node_holds_the_lease_until_it_expires_then_the_epoch_moves_on() {
        let (a, b) = two();
        assert_eq!(
            a.claim_lease("host-a", LEASE, Some("http://host-a:8080"))
                .unwrap(),
            Claim::Active {
                epoch: 1,
                from: None
            }
        );
        let Claim::Standby { holder, ends_in } = b.claim_lease("host-b", LEASE, None).unwrap()
        else {
            panic!("host-a holds the lease")
        };
        assert_eq!(
            holder,
            Holder {
                node: "host-a".into(),
                epoch: 1,
                http: Some("http://host-a:8080".into()),
            }
        );
        assert!(ends_in > Duration::ZERO && ends_in <= LEASE, "{ends_in:?}");
        let fence_a = Fence {
            node: "host-a".into(),
            epoch: 1,
        };
        assert!(a.renew_lease(&fence_a, LEASE).unwrap());
        std::thread::sleep(LEASE + Duration::from_millis(200));
        assert_eq!(
            b.claim_lease("host-b", LEASE, None).unwrap(),
            Claim::Active {
                epoch: 2,
                from: Some("host-a".into())
            }
        );
        assert!(
            !a.renew_lease(&fence_a, LEASE).unwrap(),
            "an expired lease taken over is not renewed"
        );
        let fence_b = Fence {
            node: "host-b".into(),
            epoch: 2,
        };
        let holder_b = Holder {
            node: "host-b".into(),
            epoch: 2,
            http: None,
        };
        assert_eq!(a.lease_holder().unwrap(), Some((holder_b, true)));
        b.release_lease(&fence_b).unwrap();
        assert_eq!(
            a.claim_lease("host-a", LEASE, None).unwrap(),
            Claim::Active {
                epoch: 3,
                from: Some("host-b".into())
            },
            "a released lease is free at once"
        );
    }

    #[test]
    fn a_fenced_store_writes_nothing_once_its_epoch_is_over() {
        let (a, b) = two();
        a.claim_lease("host-a", LEASE, None).unwrap();
        a.fence(Some(Fence {
            node: "host-a".into(),
            epoch: 1,
        }));
        a.append_log(&NewEntry::note("alice", None, "while active"))
            .unwrap();
        // host-a is paused past its lease; host-b takes over.
        std::thread::sleep(LEASE + Duration::from_millis(200));
        assert!(matches!(
            b.claim_lease("host-b", LEASE, None).unwrap(),
            Claim::Active { epoch: 2, .. }
        ));
        let refused = a
            .append_log(&NewEntry::note("alice", None, "after waking up"))
            .unwrap_err();
        assert!(
            matches!(refused, StoreError::Fenced { epoch: 1, .. }),
            "{refused}"
        );
        assert!(refused.is_operational());
        let texts: Vec<String> = b
            .log(10, None)
            .unwrap()
            .into_iter()
            .map(|e| e.text)
            .collect();
        assert_eq!(
            texts,
            ["while active"],
            "nothing written after the takeover"
        );
    }

    #[test]
    fn a_standby_writes_nothing() {
        let (a, _) = two();
        a.fence(Some(Fence::standby("host-b")));
        let refused = a
            .append_log(&NewEntry::note("alice", None, "from a standby"))
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "this lever (host-b) is a standby: only the active lever writes to the deploy log; nothing was changed"
        );
        assert!(refused.is_operational());
        assert!(a.log(10, None).unwrap().is_empty());
    }

    #[test]
    fn a_lease_needs_postgres() {
        let (file, _dir) = crate::store::tests::temp_store();
        let refused = file.claim_lease("host-a", LEASE, None).unwrap_err();
        assert!(
            refused.to_string().contains("needs a PostgreSQL store"),
            "{refused}"
        );
    }
}
