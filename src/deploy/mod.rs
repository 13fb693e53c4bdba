//! The deploy pipeline: targets, runs, holds.
//!
//! [`Deploys`] is the one place that decides whether a stage, deploy or rollback may start.
//! Taking a target is atomic: the busy check, the hold check and the run's row in the store
//! happen under one lock, so two `!deploy`s at the same instant (from IRC and HTTP alike) start
//! exactly one run. Placing a hold takes the same lock, so a hold and a deploy cannot cross.
//! Every change is stored first, then published as an [`Event`] for the announcer.
//!
//! - [`plan`]: a target's steps as runnable specs (placeholders, paths, environment)
//! - [`runner`]: runs the steps of one run in order, recording and publishing each
//! - [`watch`]: expires holds placed with a duration and reminds the channel of the others

pub mod backend;
pub mod external;
pub mod plan;
mod runner;
mod unrecorded;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::chat::message::Identity;
use crate::chat::text::human_duration;
use crate::config::{Config, TargetConfig};
use crate::deploy::backend::OutputTail;
use crate::events::{Event, Events};
use crate::infra::activity::Activity;
use crate::store::runs::NewRun;
use crate::store::{
    format_time, now_ms, Deadline, Hold, LogEntry, Phase, Run, RunState, Store, StoreError,
};

/// The longest a hold may be placed for with a duration; longer holds are simply open-ended.
pub const MAX_HOLD: Duration = Duration::from_secs(366 * 24 * 3600);

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
    expires: Instant,
}

#[derive(Default)]
struct State {
    active: HashMap<String, Active>,
    pending: HashMap<String, Pending>,
}

/// What `!deploy` led to.
#[derive(Debug)]
pub enum DeployStart {
    Started(Run),
    /// The target wants a confirmation: tell the user what will ship and the code to confirm.
    NeedsConfirm {
        code: String,
        summary: String,
    },
}

/// A target's state for `!status`.
#[derive(Debug)]
pub struct TargetStatus {
    pub target: String,
    pub holds: Vec<Hold>,
    pub staged: Option<Run>,
    pub live: Option<Run>,
    pub active: Option<Active>,
    /// Runs that ended but are not in the deploy log yet (the store could not take them).
    pub unrecorded: Vec<Run>,
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

    /// The gate for a request that changes something, with the request's store deadline:
    /// waiting for the gate and every store operation after it share one lock wait, so
    /// requests queued behind a write stuck on a locked file fail in time instead of being
    /// applied long after they were asked.
    fn gate(&self) -> Result<(MutexGuard<'_, ()>, Deadline), DeployError> {
        let wait = self.store.lock_wait();
        let deadline = Deadline::start(wait);
        let gate = match self.gate.try_lock() {
            Some(gate) => gate,
            None => crate::infra::blocking::off_runtime(|| self.gate.try_lock_until(deadline.at()))
                .ok_or_else(|| DeployError::Store(self.store.locked(wait)))?,
        };
        Ok((gate, deadline))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Marks runs a previous lever left unfinished as interrupted and announces them, after
    /// stopping any process their steps left running; their targets are free again. Call once
    /// at start.
    pub fn recover(&self) -> Result<usize, StoreError> {
        // First what their steps left running: a run is not over while its processes are.
        let mut stopped: HashMap<i64, String> = HashMap::new();
        for group in self.store.running_groups()? {
            let pgid = nix::unistd::Pid::from_raw(group.pgid);
            let count = crate::infra::blocking::off_runtime(|| {
                crate::process::leftovers::stop_leftovers(pgid, &group.mark)
            });
            if count > 0 {
                stopped.insert(
                    group.run_id,
                    format!(
                        "step '{}' was still running ({count} process{} in group {}) and lever stopped it",
                        group.step,
                        if count == 1 { "" } else { "es" },
                        group.pgid
                    ),
                );
            }
        }
        let interrupted = self.store.interrupt_unfinished(
            |run| stopped.get(&run.id).cloned(),
            |run| {
                format!(
                    "{} {} interrupted ({})",
                    run.target,
                    run.phase.as_str(),
                    run.error.as_deref().unwrap_or_default()
                )
            },
        )?;
        let count = interrupted.len();
        for (run, entry) in interrupted {
            tracing::warn!(run = run.id, target = %run.target, phase = run.phase.as_str(), "run was interrupted by a stop of lever");
            let steps = self.store.steps(run.id)?;
            self.events
                .publish(Event::RunFinished { run, entry, steps });
        }
        Ok(count)
    }

    /// Starts the background tasks: expiring holds and reminding of old ones, and writing run
    /// ends the store could not take when they happened.
    pub fn watch_holds(self: &Arc<Self>) {
        tokio::spawn(watch::run(self.clone()));
        tokio::spawn(unrecorded::retry(self.clone()));
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

    /// Starts staging `target`.
    pub fn stage(self: &Arc<Self>, target: &str, who: &Identity) -> Result<Run, DeployError> {
        let config = self.target(target)?;
        if !plan::supports(config, Phase::Stage) {
            return refused(format!(
                "{target} has no stage steps; !deploy {target} ships it directly"
            ));
        }
        let _gate = self.gate()?;
        check_free(&self.lock(), target)?;
        let live = self.live(target)?;
        self.begin(
            target,
            Phase::Stage,
            who,
            None,
            live.and_then(|r| r.version).as_deref(),
            None,
            String::new(),
        )
    }

    /// Starts deploying `target` (or asks for a confirmation first). `force` passes anyone's
    /// hold; the caller has checked that the user may force.
    pub fn deploy(
        self: &Arc<Self>,
        target: &str,
        who: &Identity,
        force: bool,
    ) -> Result<DeployStart, DeployError> {
        let config = self.target(target)?;
        if !plan::supports(config, Phase::Deploy) {
            return refused(format!("{target} has no deploy steps or job configured"));
        }
        let _gate = self.gate()?;
        check_free(&self.lock(), target)?;
        // Checked now so the user hears at once; checked again at !confirm.
        self.hold_gate(target, who, force)?;
        let (version, prev) = self.shipping(target, config)?;
        if config.confirm {
            let mut state = self.lock();
            let code = new_code(&state);
            let within = self.config.deploy.confirm_within;
            state.pending.retain(|_, p| p.expires > Instant::now());
            state.pending.insert(
                code.clone(),
                Pending {
                    target: target.to_owned(),
                    who: who.clone(),
                    force,
                    expires: Instant::now() + within,
                },
            );
            let summary = format!(
                "{target}: will ship {}{}. To go ahead, say !confirm {code} within {}",
                self.describe_shipping(target, version.as_deref(), prev.as_deref()),
                if force { " (through the hold)" } else { "" },
                human_duration(within)
            );
            return Ok(DeployStart::NeedsConfirm { code, summary });
        }
        let note = self.hold_gate(target, who, force)?;
        let detail = self.describe_shipping(target, version.as_deref(), prev.as_deref());
        self.begin(
            target,
            Phase::Deploy,
            who,
            version.as_deref(),
            prev.as_deref(),
            note.as_deref(),
            detail,
        )
        .map(DeployStart::Started)
    }

    /// Goes ahead with a deploy that waited for `!confirm <code>`, if `who` asked for it.
    pub fn confirm(self: &Arc<Self>, code: &str, who: &Identity) -> Result<Run, DeployError> {
        let _gate = self.gate()?;
        let code = code.to_ascii_uppercase();
        let mut state = self.lock();
        let Some(pending) = state.pending.get(&code).cloned() else {
            return refused(format!("no deploy is waiting for code {code}"));
        };
        if pending.expires <= Instant::now() {
            state.pending.remove(&code);
            return refused(format!(
                "code {code} has expired; !deploy {} again",
                pending.target
            ));
        }
        if !same_person(&pending.who, who) {
            return refused(format!(
                "code {code} belongs to {}'s deploy; only they can confirm it",
                pending.who.nick
            ));
        }
        let target = pending.target.clone();
        let config = self.target(&target)?;
        check_free(&state, &target)?;
        drop(state);
        // A hold placed since the request counts too.
        let note = self.hold_gate(&target, who, pending.force)?;
        let (version, prev) = self.shipping(&target, config)?;
        self.lock().pending.remove(&code);
        let detail = self.describe_shipping(&target, version.as_deref(), prev.as_deref());
        self.begin(
            &target,
            Phase::Deploy,
            who,
            version.as_deref(),
            prev.as_deref(),
            note.as_deref(),
            detail,
        )
    }

    /// Rolls `target` back to the version live before the current one.
    pub fn rollback(
        self: &Arc<Self>,
        target: &str,
        who: &Identity,
        force: bool,
    ) -> Result<Run, DeployError> {
        let config = self.target(target)?;
        if !plan::supports(config, Phase::Rollback) {
            return refused(format!("{target} has no rollback steps configured"));
        }
        let _gate = self.gate()?;
        check_free(&self.lock(), target)?;
        let note = self.hold_gate(target, who, force)?;
        let live = self.live(target)?.and_then(|r| r.version);
        let Some(previous) = self.previous_good(target, live.as_deref())? else {
            return refused(format!(
                "{target} has no earlier good version to roll back to"
            ));
        };
        let detail = format!(
            "back to {previous}{}",
            live.as_ref()
                .map(|v| format!(", was {v}"))
                .unwrap_or_default()
        );
        self.begin(
            target,
            Phase::Rollback,
            who,
            Some(&previous),
            live.as_deref(),
            note.as_deref(),
            detail,
        )
    }

    /// Stops the active run of `target`: kills its step's process group, marks it cancelled.
    pub fn cancel(&self, target: &str, who: &Identity) -> Result<Active, DeployError> {
        self.target(target)?;
        let mut state = self.lock();
        let Some(active) = state.active.get_mut(target) else {
            return refused(format!("nothing is running on {target}"));
        };
        if active.cancelled_by.is_none() {
            active.cancelled_by = Some(who.nick.clone());
            active.cancel.cancel();
        }
        Ok(active.clone())
    }

    /// Cancels every run in progress (lever is shutting down).
    pub fn cancel_all(&self, by: &str) {
        for active in self.lock().active.values_mut() {
            if active.cancelled_by.is_none() {
                active.cancelled_by = Some(by.to_owned());
                active.cancel.cancel();
            }
        }
    }

    /// The target a command means when it names none: the only busy one for `!cancel`, else
    /// the default target.
    pub fn default_target(&self) -> Option<&str> {
        self.config.default_target()
    }

    /// Targets with a run in progress.
    pub fn busy_targets(&self) -> Vec<String> {
        self.lock().active.keys().cloned().collect()
    }

    /// NO DEPLOY PLEASE: holds `target` (`None`: every target) until lifted or, with a
    /// duration, until it expires.
    pub fn hold(
        &self,
        target: Option<&str>,
        who: &Identity,
        reason: &str,
        duration: Option<Duration>,
    ) -> Result<(Hold, Option<String>), DeployError> {
        if let Some(target) = target {
            self.target(target)?;
        }
        if duration.is_some_and(|d| d > MAX_HOLD) {
            return refused(format!(
                "a hold can last at most {} days; leave the duration out to hold until !unhold",
                MAX_HOLD.as_secs() / 86_400
            ));
        }
        let _gate = self.gate()?;
        let holds = self.holds_in_force()?;
        if let Some(existing) = holds.iter().find(|h| h.target.as_deref() == target) {
            if !same_holder(existing, who) {
                return refused(format!(
                    "{} is already held by {} since {} UTC: {} (lift it with !unhold{} first)",
                    existing.scope(),
                    existing.by_nick,
                    format_time(existing.placed_at),
                    existing.reason,
                    target.map(|t| format!(" {t}")).unwrap_or_default()
                ));
            }
        }
        let placed_at = now_ms();
        let hold = Hold {
            target: target.map(str::to_owned),
            by_nick: who.nick.clone(),
            by_account: who.account.clone(),
            by_source: who.source(),
            reason: reason.to_owned(),
            placed_at,
            expires_at: duration
                .map(|d| placed_at.saturating_add(d.as_millis().min(i64::MAX as u128) as i64)),
        };
        let mut text = "NO DEPLOY PLEASE".to_owned();
        if let Some(target) = target {
            text.push_str(&format!(": {target}"));
        }
        text.push_str(&format!(" ({reason})"));
        if let Some(until) = hold.expires_at {
            text.push_str(&format!(" until {} UTC", format_time(until)));
        }
        let entry = self.store.place_hold(&hold, &text)?;
        // A run already going is not stopped by a hold; say so.
        let running = self
            .lock()
            .active
            .iter()
            .find(|(t, _)| hold.covers(t))
            .map(|(t, a)| format!("{} is {} {t} right now; the hold applies from the next deploy (!cancel {t} stops it)", a.user, a.phase_verb()));
        self.events.publish(Event::HoldPlaced {
            hold: hold.clone(),
            entry,
        });
        Ok((hold, running))
    }

    /// DEPLOY OK: lifts the hold on `target`; with none named, the hold on every target, or
    /// (unless `exact`, as the API asks) the only hold there is.
    pub fn unhold(
        &self,
        target: Option<&str>,
        who: &Identity,
        exact: bool,
    ) -> Result<Hold, DeployError> {
        if let Some(target) = target {
            self.target(target)?;
        }
        let _gate = self.gate()?;
        let holds = self.store.holds()?;
        let scope = match target {
            Some(t) => Some(t.to_owned()),
            None if exact || holds.iter().any(|h| h.target.is_none()) => None,
            None => match holds.as_slice() {
                [] => return refused("nothing is held"),
                [only] => only.target.clone(),
                many => {
                    let names: Vec<String> = many
                        .iter()
                        .map(|h| format!("{} ({})", h.scope(), h.by_nick))
                        .collect();
                    return refused(format!(
                        "several holds: {}; say which: !unhold <target>",
                        names.join(", ")
                    ));
                }
            },
        };
        let lifted = self
            .store
            .lift_hold(scope.as_deref(), None, &who.nick, |hold| {
                let mut text = "DEPLOY OK".to_owned();
                if let Some(t) = &hold.target {
                    text.push_str(&format!(": {t}"));
                }
                if !same_holder(hold, who) {
                    text.push_str(&format!(
                        " (lifted {}'s hold: {})",
                        hold.by_nick, hold.reason
                    ));
                }
                text
            })?;
        let Some((hold, entry)) = lifted else {
            return refused(match &scope {
                Some(t) if holds.iter().any(|h| h.target.is_none()) => {
                    format!("{t} has no hold of its own; every target is held: !unhold lifts that")
                }
                Some(t) => format!("{t} is not held"),
                None if exact && !holds.is_empty() => "there is no hold on every target".to_owned(),
                None => "nothing is held".to_owned(),
            });
        };
        self.events.publish(Event::HoldLifted {
            hold: hold.clone(),
            by: who.nick.clone(),
            expired: false,
            entry,
        });
        Ok(hold)
    }

    /// Every hold in force. A hold past its expiry no longer counts, even in the moments
    /// before the watcher lifts it.
    pub fn holds(&self) -> Result<Vec<Hold>, DeployError> {
        Ok(self.holds_in_force()?)
    }

    fn holds_in_force(&self) -> Result<Vec<Hold>, StoreError> {
        let now = now_ms();
        let mut holds = self.store.holds()?;
        holds.retain(|h| h.expires_at.is_none_or(|at| at > now));
        Ok(holds)
    }

    /// The deploy log, newest first.
    pub fn log(&self, limit: usize, target: Option<&str>) -> Result<Vec<LogEntry>, DeployError> {
        if let Some(target) = target {
            self.target(target)?;
        }
        Ok(self.store.log(limit, target)?)
    }

    /// Holds, staged and live versions, and the run in progress, for `target`.
    pub fn status(&self, target: &str) -> Result<TargetStatus, DeployError> {
        self.target(target)?;
        let holds = self
            .holds_in_force()?
            .into_iter()
            .filter(|h| h.covers(target))
            .collect();
        let staged = self.staged(target)?;
        let live = self.live(target)?;
        let active = self.lock().active.get(target).cloned();
        Ok(TargetStatus {
            target: target.to_owned(),
            holds,
            staged,
            live,
            active,
            unrecorded: self.unrecorded_ends(target),
        })
    }

    /// What a deploy of `target` would ship now.
    pub fn changes(&self, target: &str) -> Result<String, DeployError> {
        let config = self.target(target)?;
        let (version, prev) = self.shipping(target, config)?;
        let mut text = format!(
            "{target} would ship {}",
            self.describe_shipping(target, version.as_deref(), prev.as_deref())
        );
        if let Some(staged) = self.staged(target)? {
            text.push_str(&format!(
                " (staged by {} at {} UTC)",
                staged.user,
                format_time(staged.finished_at.unwrap_or(staged.started_at))
            ));
        }
        Ok(text)
    }

    /// The last successful stage.
    fn staged(&self, target: &str) -> Result<Option<Run>, StoreError> {
        Ok(self
            .store
            .runs(target, &[Phase::Stage], RunState::Succeeded, 1)?
            .pop())
    }

    /// The last successful deploy or rollback: what is live.
    fn live(&self, target: &str) -> Result<Option<Run>, StoreError> {
        Ok(self
            .store
            .runs(
                target,
                &[Phase::Deploy, Phase::Rollback],
                RunState::Succeeded,
                1,
            )?
            .pop())
    }

    /// The newest good version before `live`.
    fn previous_good(
        &self,
        target: &str,
        live: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let runs = self.store.runs(
            target,
            &[Phase::Deploy, Phase::Rollback],
            RunState::Succeeded,
            50,
        )?;
        Ok(runs
            .into_iter()
            .filter_map(|r| r.version)
            .find(|v| Some(v.as_str()) != live))
    }

    /// The version a deploy would ship and the one it replaces.
    fn shipping(
        &self,
        target: &str,
        config: &TargetConfig,
    ) -> Result<(Option<String>, Option<String>), DeployError> {
        let staged = self.staged(target)?;
        if plan::stages_first(config) && staged.is_none() {
            return refused(format!(
                "{target} has not been staged yet: !stage {target} first"
            ));
        }
        let live = self.live(target)?.and_then(|r| r.version);
        Ok((staged.and_then(|r| r.version), live))
    }

    /// "abc123 → live, was 9f8e7d (changes: URL)".
    fn describe_shipping(&self, target: &str, version: Option<&str>, prev: Option<&str>) -> String {
        let mut text = match (version, prev) {
            (Some(v), Some(p)) if v == p => format!("{v} (already live)"),
            (Some(v), Some(p)) => format!("{v} → live, was {p}"),
            (Some(v), None) => format!("{v} → live"),
            (None, _)
                if self
                    .config
                    .targets
                    .get(target)
                    .is_some_and(|t| !plan::stages_first(t)) =>
            {
                "the current build → live".to_owned()
            }
            (None, _) => "the staged build (no version) → live".to_owned(),
        };
        if let (Some(url), Some(v), Some(p)) = (
            self.config
                .targets
                .get(target)
                .and_then(|t| t.changes_url.as_ref()),
            version,
            prev,
        ) {
            if v != p {
                text.push_str(&format!(
                    "; changes: {}",
                    url.replace("{from}", p).replace("{to}", v)
                ));
            }
        }
        text
    }

    /// Refuses a deploy while a hold covers `target`, unless the holder deploys through their
    /// own hold or an admin forces it; either way the note says so for the log.
    fn hold_gate(
        &self,
        target: &str,
        who: &Identity,
        force: bool,
    ) -> Result<Option<String>, DeployError> {
        let holds: Vec<Hold> = self
            .holds_in_force()?
            .into_iter()
            .filter(|h| h.covers(target))
            .collect();
        let Some(hold) = holds.first() else {
            return Ok(None);
        };
        if holds.iter().all(|h| same_holder(h, who)) {
            return Ok(Some(format!(
                "through {}'s own hold ({})",
                who.nick, hold.reason
            )));
        }
        let other = holds.iter().find(|h| !same_holder(h, who)).unwrap_or(hold);
        if force {
            return Ok(Some(format!(
                "FORCED through {}'s hold ({})",
                other.by_nick, other.reason
            )));
        }
        let held_for = Duration::from_millis((now_ms() - other.placed_at).max(0) as u64);
        let until = other
            .expires_at
            .map(|at| format!(" (lifts by itself at {} UTC)", format_time(at)))
            .unwrap_or_default();
        let unhold = format!(
            "!unhold{}",
            other
                .target
                .as_ref()
                .map(|t| format!(" {t}"))
                .unwrap_or_default()
        );
        // A hold lever placed itself (for an alert) has nobody to ask.
        let ask = if other
            .by_nick
            .eq_ignore_ascii_case(&self.config.irc.nickname)
        {
            format!("{unhold} when it is safe")
        } else {
            format!("Ask {}, or {unhold} when it is safe", other.by_nick)
        };
        refused(format!(
            "{} is held: NO DEPLOY PLEASE by {} since {} UTC ({} ago): {}{until}. {ask}",
            target,
            other.by_nick,
            format_time(other.placed_at),
            human_duration(held_for),
            other.reason,
        ))
    }

    /// Records the run, takes the target and starts the run task. Called through the gate, so
    /// no other run can take the target in between.
    #[allow(clippy::too_many_arguments)]
    fn begin(
        self: &Arc<Self>,
        target: &str,
        phase: Phase,
        who: &Identity,
        version: Option<&str>,
        prev_version: Option<&str>,
        note: Option<&str>,
        detail: String,
    ) -> Result<Run, DeployError> {
        let config = self.target(target)?;
        let mut text = match phase {
            Phase::Stage => format!("starting stage of {target}..."),
            Phase::Deploy => format!("starting deploy of {target}..."),
            Phase::Rollback => format!("starting rollback of {target}..."),
        };
        if !detail.is_empty() {
            text.push_str(&format!(" ({detail})"));
        }
        if let Some(note) = note {
            text.push_str(&format!(" {note}"));
        }
        let (run, entry) = self.store.start_run(
            &NewRun {
                target,
                phase,
                user: &who.nick,
                version,
                prev_version,
                note,
                steps: plan::planned_steps(config, phase),
            },
            &text,
        )?;
        let planned = plan::planned_steps(config, phase);
        let work = plan::work(
            &self.config,
            config,
            &plan::RunContext {
                target,
                phase,
                user: &who.nick,
                run_id: run.id,
                version,
                prev_version,
            },
        );
        let active = Active {
            run_id: run.id,
            phase,
            user: who.nick.clone(),
            started: Instant::now(),
            steps: planned,
            step: None,
            output: OutputTail::default(),
            cancel: CancellationToken::new(),
            cancelled_by: None,
        };
        self.lock().active.insert(target.to_owned(), active.clone());
        self.events.publish(Event::RunStarted {
            run: run.clone(),
            entry,
            steps: planned,
            detail,
        });
        let busy = self.activity.begin();
        tokio::spawn(runner::execute(
            self.clone(),
            run.clone(),
            work,
            active,
            busy,
        ));
        Ok(run)
    }

    /// The run task reports the step it is on.
    fn set_step(&self, target: &str, index: usize, name: &str) {
        if let Some(active) = self.lock().active.get_mut(target) {
            active.step = Some((index, name.to_owned(), Instant::now()));
        }
    }

    /// Who cancelled the run on `target`, if anyone did.
    fn cancelled_by(&self, target: &str) -> Option<String> {
        self.lock()
            .active
            .get(target)
            .and_then(|a| a.cancelled_by.clone())
    }

    /// The run task is done and its end stored: the target is free.
    fn release(&self, target: &str) {
        self.lock().active.remove(target);
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

fn check_free(state: &State, target: &str) -> Result<(), DeployError> {
    let Some(active) = state.active.get(target) else {
        return Ok(());
    };
    let step = match &active.step {
        Some((i, name, _)) => format!("{}, ", active.step_label(*i, name)),
        None => String::new(),
    };
    refused(format!(
        "{target} is busy: {} is {} it ({step}{} so far); !status {target} shows more",
        active.user,
        active.phase_verb(),
        human_duration(active.started.elapsed())
    ))
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

fn same_holder(hold: &Hold, who: &Identity) -> bool {
    let holder = Identity {
        nick: String::new(),
        user: String::new(),
        host: String::new(),
        account: hold.by_account.clone(),
    };
    match (&hold.by_account, &who.account) {
        (Some(_), _) => same_person(&holder, who),
        (None, None) => hold.by_source.eq_ignore_ascii_case(&who.source()),
        (None, Some(_)) => false,
    }
}

/// A short code for `!confirm`, unique among those pending; no easily confused characters.
fn new_code(state: &State) -> String {
    const ALPHABET: &[u8] = b"ACDEFGHJKLMNPQRTUVWXY34679";
    loop {
        let code: String = (0..4)
            .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
            .collect();
        if !state.pending.contains_key(&code) {
            return code;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::bot;

    const SLOW: &str =
        "[targets.site]\n[[targets.site.deploy]]\nname = \"wait\"\nrun = [\"sleep\", \"2\"]\n";

    fn person(nick: &str, account: Option<&str>) -> Identity {
        Identity {
            nick: nick.into(),
            user: format!("~{nick}"),
            host: "10.0.0.1".into(),
            account: account.map(Into::into),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn simultaneous_deploys_start_exactly_one_run() {
        let bot = bot(SLOW);
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let runtime = tokio::runtime::Handle::current();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (deploys, barrier, runtime) =
                    (bot.deploys.clone(), barrier.clone(), runtime.clone());
                std::thread::spawn(move || {
                    let _entered = runtime.enter();
                    barrier.wait();
                    deploys.deploy("site", &person(&format!("user{i}"), None), false)
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let started = results
            .iter()
            .filter(|r| matches!(r, Ok(DeployStart::Started(_))))
            .count();
        assert_eq!(started, 1, "{results:?}");
        for result in &results {
            if let Err(DeployError::Refused(why)) = result {
                assert!(why.starts_with("site is busy: user"), "{why}");
            }
        }
        let running = bot
            .store
            .runs("site", &[Phase::Deploy], RunState::Running, 10)
            .unwrap();
        assert_eq!(running.len(), 1);
        bot.deploys.cancel("site", &person("x", None)).unwrap();
    }

    #[tokio::test]
    async fn a_hold_blocks_others_but_not_its_holder_and_force_passes_it_loudly() {
        let bot = bot("[targets.site]\n[[targets.site.deploy]]\nname = \"ok\"\nrun = [\"true\"]\n");
        let deploys = &bot.deploys;
        let mygrant = person("mygrant", Some("mygrant"));
        deploys.hold(None, &mygrant, "db migration", None).unwrap();
        let Err(DeployError::Refused(why)) =
            deploys.deploy("site", &person("harmes", Some("harmes")), false)
        else {
            panic!("a held target deployed");
        };
        assert!(
            why.starts_with("site is held: NO DEPLOY PLEASE by mygrant since "),
            "{why}"
        );
        assert!(
            why.ends_with(": db migration. Ask mygrant, or !unhold when it is safe"),
            "{why}"
        );
        // The same account under another nick is the same person.
        let DeployStart::Started(run) = deploys
            .deploy("site", &person("mygrant_away", Some("mygrant")), false)
            .unwrap()
        else {
            panic!("no confirm configured");
        };
        assert_eq!(
            run.note.as_deref(),
            Some("through mygrant_away's own hold (db migration)")
        );
        bot.activity.idle().await;
        let DeployStart::Started(run) = deploys
            .deploy("site", &person("root", Some("root")), true)
            .unwrap()
        else {
            panic!("no confirm configured");
        };
        assert_eq!(
            run.note.as_deref(),
            Some("FORCED through mygrant's hold (db migration)")
        );
        bot.activity.idle().await;
        let log = bot.store.log(1, Some("site")).unwrap();
        assert!(log[0].text.starts_with("site deployed"), "{:?}", log[0]);
        let started = bot.store.log(2, Some("site")).unwrap();
        assert!(
            started[1]
                .text
                .contains("FORCED through mygrant's hold (db migration)"),
            "{started:?}"
        );
    }

    #[tokio::test]
    async fn a_nick_without_the_account_is_not_the_holder() {
        let bot = bot("[targets.site]\n[[targets.site.deploy]]\nname = \"ok\"\nrun = [\"true\"]\n");
        bot.deploys
            .hold(Some("site"), &person("alice", Some("alice")), "mine", None)
            .unwrap();
        let impostor = person("alice", None);
        assert!(matches!(
            bot.deploys.deploy("site", &impostor, false),
            Err(DeployError::Refused(_))
        ));
        assert!(matches!(
            bot.deploys.hold(Some("site"), &impostor, "taking over", None),
            Err(DeployError::Refused(why)) if why.starts_with("site is already held by alice")
        ));
    }

    #[tokio::test]
    async fn confirm_needs_the_code_from_the_same_person_in_time() {
        let bot = bot("[targets.site]\nconfirm = true\n[[targets.site.deploy]]\nname = \"ok\"\nrun = [\"true\"]\n");
        let alice = person("alice", Some("alice"));
        let DeployStart::NeedsConfirm { code, summary } =
            bot.deploys.deploy("site", &alice, false).unwrap()
        else {
            panic!("confirm = true must ask first");
        };
        assert!(
            summary.starts_with(
                "site: will ship the current build → live. To go ahead, say !confirm "
            ),
            "{summary}"
        );
        assert!(summary.ends_with(" within 5 min"), "{summary}");
        let bob = person("bob", Some("bob"));
        assert!(
            matches!(bot.deploys.confirm(&code, &bob), Err(DeployError::Refused(why)) if why.contains("only they can confirm"))
        );
        assert!(matches!(
            bot.deploys.confirm("ZZZZ", &alice),
            Err(DeployError::Refused(_))
        ));
        let run = bot.deploys.confirm(&code.to_lowercase(), &alice).unwrap();
        assert_eq!(run.phase, Phase::Deploy);
        bot.activity.idle().await;
        assert!(
            matches!(
                bot.deploys.confirm(&code, &alice),
                Err(DeployError::Refused(_))
            ),
            "a code works once"
        );
    }

    #[tokio::test]
    async fn rollback_goes_back_to_the_previous_good_version() {
        let bot = bot(
            "[targets.site]\nversion = [\"sh\", \"-c\", \"echo v$LEVER_RUN_ID\"]\n\
             [[targets.site.stage]]\nname = \"build\"\nrun = [\"true\"]\n\
             [[targets.site.deploy]]\nname = \"ship\"\nrun = [\"true\"]\n\
             [[targets.site.rollback]]\nname = \"back\"\nrun = [\"sh\", \"-c\", \"test \\\"$LEVER_VERSION\\\" = v1\"]\n",
        );
        let who = person("harmes", None);
        for _ in 0..2 {
            bot.deploys.stage("site", &who).unwrap();
            bot.activity.idle().await;
            bot.deploys.deploy("site", &who, false).unwrap();
            bot.activity.idle().await;
        }
        let live = bot.deploys.status("site").unwrap().live.unwrap();
        assert_eq!(
            live.version.as_deref(),
            Some("v3"),
            "stage runs are 1 and 3"
        );
        let run = bot.deploys.rollback("site", &who, false).unwrap();
        assert_eq!(run.version.as_deref(), Some("v1"));
        bot.activity.idle().await;
        let done = bot.store.run(run.id).unwrap().unwrap();
        assert_eq!(
            done.state,
            RunState::Succeeded,
            "the rollback step saw LEVER_VERSION=v1"
        );
        assert_eq!(
            bot.deploys
                .status("site")
                .unwrap()
                .live
                .unwrap()
                .version
                .as_deref(),
            Some("v1")
        );
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
