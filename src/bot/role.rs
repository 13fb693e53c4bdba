//! Which part this lever plays: alone on its store, or one of several levers sharing a
//! PostgreSQL store, active or standby (decided by `app::leader`). The HTTP side reads it to
//! answer health checks and to send writers to the active lever; `!status` and `!version` name
//! the node and epoch.

use parking_lot::RwLock;

use crate::store::lease::Holder;

/// This lever's part, as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// The only lever on its store (SQLite): always acting.
    Alone,
    /// Waiting to take over from `active` (as last seen; `None` before the first look).
    Standby { active: Option<Holder> },
    /// Holding the lease in `epoch`.
    Active { epoch: i64 },
}

pub struct Role {
    node: String,
    part: RwLock<Part>,
}

impl Role {
    pub fn new(node: String, part: Part) -> Self {
        Self {
            node,
            part: RwLock::new(part),
        }
    }

    /// This lever's name among those sharing the store (`[store] node`).
    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn part(&self) -> Part {
        self.part.read().clone()
    }

    pub fn set(&self, part: Part) {
        *self.part.write() = part;
    }

    /// Whether this lever acts (alone, or holding the lease).
    pub fn acts(&self) -> bool {
        !matches!(*self.part.read(), Part::Standby { .. })
    }

    /// The epoch of the lease this lever holds, if it holds one.
    pub fn epoch(&self) -> Option<i64> {
        match *self.part.read() {
            Part::Active { epoch } => Some(epoch),
            _ => None,
        }
    }

    /// "active" or "standby", as `/healthz` and `/metrics` say it.
    pub fn name(&self) -> &'static str {
        match *self.part.read() {
            Part::Standby { .. } => "standby",
            Part::Alone | Part::Active { .. } => "active",
        }
    }
}
