//! The deploy pipeline: targets, runs, holds.
//!
//! [`Deploys`] is the one place that decides whether a stage, deploy or rollback may start.
//! Taking a target is atomic: the busy check, the hold check and the run's row in the store
//! happen under one lock, so two `!deploy`s at the same instant (from IRC and HTTP alike) start
//! exactly one run. Placing a hold takes the same lock, so a hold and a deploy cannot cross.
//! Every change is stored first, then published as an [`Event`] for the announcer.
//!
//! Each file has one job:
//!
//! - this file: [`Deploys`], its constructor, and the state the others share ([`Active`],
//!   the runs in progress and the deploys waiting for `!confirm`)
//! - `gate`: starting runs (stage, deploy, confirm, rollback) and cancelling them, one run per
//!   target, under the `gate` mutex and one store deadline
//! - `holds`: placing and lifting holds, and what a hold refuses when a run would start
//! - `status`: the read side (`!status`, `!log`, `!changes`, busy targets, staged and live)
//! - `recover`: runs a previous lever left unfinished, at start
//! - [`plan`]: a target's steps as runnable specs (placeholders, paths, environment)
//! - [`runner`]: runs the steps of one run in order, recording and publishing each
//! - [`unrecorded`]: run ends the store could not take, kept and written later
//! - [`hold_clock`]: expires holds placed with a duration and reminds the channel of the others
//! - `queue`: each target's push queue, whose turn it is, and the clock that moves turns on

pub mod backend;
pub mod external;
mod gate;
mod hold_clock;
mod holds;
pub mod plan;
mod queue;
mod recover;
mod runner;
mod status;
mod unrecorded;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::chat::message::Identity;
use crate::config::{Config, TargetConfig};
use crate::deploy::backend::OutputTail;
use crate::events::Events;
use crate::infra::activity::Activity;
use crate::store::{Phase, Store, StoreError};

pub use gate::{closed_text, DeployStart};
pub use holds::{same_holder, MAX_HOLD};
pub use status::TargetStatus;

/// Why a request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Said to the user as is: busy target, hold in force, nothing staged, unknown code.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refused<T>(text: impl Into<String>) -> Result<T, DeployError> {
    Err(DeployError::Refused(text.into()))
}

/// A run in progress, as `!status` and `!cancel` see it.
#[derive(Debug, Clone)]
pub struct Active {
    pub run_id: i64,
    pub phase: Phase,
    pub user: String,
    pub started: Instant,
    pub steps: usize,
    /// The step running now: index, name, when it started.
    pub step: Option<(usize, String, Instant)>,
    pub output: OutputTail,
    cancel: CancellationToken,
    cancelled_by: Option<String>,
}

/// A deploy waiting for `!confirm <code>`.
#[derive(Debug, Clone)]
struct Pending {
    target: String,
    who: Identity,
    force: bool,
    /// Why it is an emergency, if it is one: it passes the deploy windows.
    emergency: Option<String>,
    expires: Instant,
}

#[derive(Default)]
struct State {
    active: HashMap<String, Active>,
    pending: HashMap<String, Pending>,
}

/// The deploy service.
pub struct Deploys {
    config: Arc<Config>,
    store: Arc<Store>,
    events: Events,
    activity: Activity,
    /// Runs in progress and deploys waiting for `!confirm`; held only for moments, never across
    /// a store write, so `!status`, `/healthz` and the runs read it while the store is stuck.
    state: Mutex<State>,
    /// Taken by every request that starts a run or changes a hold, across its checks and its
    /// store write: no deploy starts between a hold's check and its placing, nor two runs on
    /// one target.
    gate: Mutex<()>,
    /// Run ends the store could not take yet.
    unrecorded: Mutex<Vec<unrecorded::RunEnd>>,
}

impl Deploys {
    pub fn new(
        config: Arc<Config>,
        store: Arc<Store>,
        events: Events,
        activity: Activity,
    ) -> Arc<Self> {
        Arc::new(Self {
            config,
            store,
            events,
            activity,
            state: Mutex::default(),
            gate: Mutex::default(),
            unrecorded: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn target(&self, name: &str) -> Result<&TargetConfig, DeployError> {
        match self.config.targets.get(name) {
            Some(target) => Ok(target),
            None => {
                let names: Vec<&str> = self.config.targets.keys().map(String::as_str).collect();
                if names.is_empty() {
                    refused("no targets are configured: add [targets.NAME] to the config")
                } else {
                    refused(format!("no target '{name}'; targets: {}", names.join(", ")))
                }
            }
        }
    }

    /// The target a command means when it names none: the only busy one for `!cancel`, else
    /// the default target.
    pub fn default_target(&self) -> Option<&str> {
        self.config.default_target()
    }
}

impl Active {
    /// "step 2/5 'name'", or "step 2 'name'" when the count is not known in advance.
    pub fn step_label(&self, index: usize, name: &str) -> String {
        if self.steps == 0 {
            format!("step {} '{name}'", index + 1)
        } else {
            format!("step {}/{} '{name}'", index + 1, self.steps)
        }
    }

    /// "staging", "deploying", "rolling back".
    pub fn phase_verb(&self) -> &'static str {
        match self.phase {
            Phase::Stage => "staging",
            Phase::Deploy => "deploying",
            Phase::Rollback => "rolling back",
        }
    }
}

/// Whether two identities are the same person: the same services account where the server told
/// us one, else the same `nick!user@host`.
pub fn same_person(a: &Identity, b: &Identity) -> bool {
    match (&a.account, &b.account) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        (Some(_), None) | (None, Some(_)) => false,
        (None, None) => a.source().eq_ignore_ascii_case(&b.source()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn person(nick: &str, account: Option<&str>) -> Identity {
        Identity {
            nick: nick.into(),
            user: format!("~{nick}"),
            host: "10.0.0.1".into(),
            account: account.map(Into::into),
        }
    }

    #[test]
    fn the_same_person_is_the_same_account_or_the_same_mask() {
        assert!(same_person(
            &person("a", Some("acct")),
            &person("b", Some("ACCT"))
        ));
        assert!(!same_person(&person("a", Some("acct")), &person("a", None)));
        assert!(same_person(&person("a", None), &person("A", None)));
        assert!(!same_person(&person("a", None), &person("b", None)));
    }
}
