//! A claim on saying something once, among every lever that might say it.
//!
//! What the deploy log records (a hold, a lift, a run's start and end) must reach the channel
//! exactly once, even when the lever that stored it dies before saying it and another takes
//! over. So such lines carry a [`Claim`], and the consumer (the IRC session, the console's
//! printer) takes it right before the first of them goes to the wire, never earlier: the store
//! marks the entry said, in a transaction fenced by the lease, only if no lever has yet. Won:
//! the lines are said. Lost: another lever said it, or this one is no longer the active one:
//! the lines are dropped. Not now (the store is out of reach): the line waits and is tried
//! again. A lever killed between the mark and the write loses that line; that gap is the
//! time of one write to a socket, where marking after the write would say it twice whenever
//! a lever died within a database round trip of speaking.

use std::fmt;
use std::sync::{Arc, Mutex};

/// How a claim stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Not taken yet.
    Open,
    /// This lever says it.
    Won,
    /// Said already, or not this lever's to say: its lines are dropped.
    Lost,
}

/// Asks the store once: `Ok(true)` won, `Ok(false)` lost, `Err` with why it could not ask.
type Take = dyn Fn() -> Result<bool, String> + Send + Sync;

/// Shared by every line that says one thing; see the module docs.
#[derive(Clone)]
pub struct Claim(Arc<Inner>);

struct Inner {
    standing: Mutex<Standing>,
    take: Box<Take>,
}

impl Claim {
    /// A claim won or lost by `take`, which may block (the consumer calls it off the runtime).
    pub fn new(take: impl Fn() -> Result<bool, String> + Send + Sync + 'static) -> Self {
        Self(Arc::new(Inner {
            standing: Mutex::new(Standing::Open),
            take: Box::new(take),
        }))
    }

    pub fn standing(&self) -> Standing {
        *self.0.standing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the claim if it is still open (blocking); how it stands then, or why the store
    /// could not be asked (it stays open, to be tried again).
    pub fn take(&self) -> Result<Standing, String> {
        // Held while asking: two lines of one claim are never asked about at once.
        let mut standing = self.0.standing.lock().unwrap_or_else(|p| p.into_inner());
        if *standing == Standing::Open {
            *standing = match (self.0.take)()? {
                true => Standing::Won,
                false => Standing::Lost,
            };
        }
        Ok(*standing)
    }
}

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Claim({:?})", self.standing())
    }
}

/// Two lines carry the same claim, or none.
impl PartialEq for Claim {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Claim {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_claim_is_asked_once_and_every_line_sharing_it_sees_the_answer() {
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        let claim = Claim::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(true)
        });
        let other_line = claim.clone();
        assert_eq!(claim.standing(), Standing::Open);
        assert_eq!(claim.take(), Ok(Standing::Won));
        assert_eq!(other_line.take(), Ok(Standing::Won));
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        let lost = Claim::new(|| Ok(false));
        assert_eq!(lost.take(), Ok(Standing::Lost));
    }

    #[test]
    fn a_store_out_of_reach_leaves_the_claim_open_to_try_again() {
        let tries = Arc::new(AtomicUsize::new(0));
        let counter = tries.clone();
        let claim = Claim::new(move || match counter.fetch_add(1, Ordering::SeqCst) {
            0 => Err("cannot reach the database".into()),
            _ => Ok(true),
        });
        assert_eq!(claim.take(), Err("cannot reach the database".into()));
        assert_eq!(claim.standing(), Standing::Open);
        assert_eq!(claim.take(), Ok(Standing::Won));
    }
}
