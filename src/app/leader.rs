//! Active and standby: several levers on one PostgreSQL store, exactly one of them acting.
//!
//! A lever first waits as standby (not on IRC, touching nothing) until it holds the lease
//! ([`crate::store::lease`]); then it fences its store with the epoch it holds, starts the
//! bot, and keeps the lease, renewing it every third of `[store] lease`. It speaks on IRC only
//! while it is sure of the lease by its own monotonic clock (which runs on while the process is
//! paused), and it stops acting before the lease can expire if it cannot renew: a paused or
//! cut-off lever that wakes after a takeover says nothing and writes nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bot::{Part, Role};
use crate::store::lease::{Claim, Fence, Holder};
use crate::store::{Store, StoreError};

/// The lease this lever holds.
#[derive(Debug, Clone)]
pub struct Held {
    pub fence: Fence,
    /// Who held it before, when this lever took it over.
    pub from: Option<String>,
    /// Until when this lever is sure to hold it, by its own clock.
    pub sure_until: Instant,
}

/// How long after the holder's lease ends a standby asks again: the database's clock has
/// passed the end by then, whatever the round trip.
const ENDS_SLACK: Duration = Duration::from_millis(20);

/// How far before the lease's end lever stops acting: room for its clock and the database's
/// to disagree on how long a lease lasted, and for what was in flight.
fn margin(lease: Duration) -> Duration {
    lease / 5
}

/// Asks once for the lease (noting `http`, where this lever answers): held (and the store
/// fenced with it), or who holds it.
pub fn claim(
    store: &Store,
    node: &str,
    lease: Duration,
    http: Option<&str>,
) -> Result<Result<Held, (Holder, Duration)>, StoreError> {
    // The lease is counted from before the claim was sent: never later than the database.
    let asked = Instant::now();
    Ok(match store.claim_lease(node, lease, http)? {
        Claim::Active { epoch, from } => {
            let fence = Fence {
                node: node.to_owned(),
                epoch,
            };
            store.fence(Some(fence.clone()));
            Ok(Held {
                fence,
                from,
                sure_until: asked + lease - margin(lease),
            })
        }
        Claim::Standby { holder, ends_in } => Err((holder, ends_in)),
    })
}

/// Waits as standby until this lever holds the lease (its store then fenced with it, its
/// role active), keeping `role` told who is active meanwhile.
pub async fn acquire(store: &Arc<Store>, role: &Role, lease: Duration, http: Option<&str>) -> Held {
    let node = role.node();
    let mut said: Option<String> = None;
    loop {
        // Asked every third of a lease, and as soon as the holder's runs out.
        let mut next = lease / 3;
        match claim(store, node, lease, http) {
            Ok(Ok(held)) => {
                tracing::info!(node, epoch = held.fence.epoch, from = ?held.from, "active: this lever holds the lease");
                role.set(Part::Active {
                    epoch: held.fence.epoch,
                });
                return held;
            }
            Ok(Err((holder, ends_in))) => {
                next = next.min(ends_in + ENDS_SLACK);
                let now = format!("{} in epoch {}", holder.node, holder.epoch);
                if said.as_ref() != Some(&now) {
                    tracing::info!(node, active = %holder.node, epoch = holder.epoch, "standby: another lever is active; waiting to take over");
                    said = Some(now);
                }
                role.set(Part::Standby {
                    active: Some(holder),
                });
            }
            Err(e) => tracing::warn!(node, error = %e, "standby: cannot ask for the lease"),
        }
        tokio::time::sleep(next).await;
    }
}

/// Keeps the lease `held`, calling `sure_until` with each new end of certainty; returns why
/// it was lost, once lever must stop acting.
pub async fn keep(
    store: &Arc<Store>,
    mut held: Held,
    lease: Duration,
    sure_until: impl Fn(Instant),
) -> String {
    sure_until(held.sure_until);
    loop {
        let next = (Instant::now() + lease / 3).min(held.sure_until);
        tokio::time::sleep_until(next.into()).await;
        if Instant::now() >= held.sure_until {
            return format!(
                "could not renew the lease of epoch {} in time",
                held.fence.epoch
            );
        }
        let asked = Instant::now();
        match store.renew_lease(&held.fence, lease) {
            Ok(true) => {
                held.sure_until = asked + lease - margin(lease);
                sure_until(held.sure_until);
            }
            Ok(false) => {
                return format!(
                    "the lease of epoch {} was taken over by another lever",
                    held.fence.epoch
                )
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew the lease; trying again"),
        }
    }
}
