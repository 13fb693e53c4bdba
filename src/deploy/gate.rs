//! The run gate: starting and cancelling runs, one at a time per target.
//!
//! Every request that starts a run takes the `gate` mutex ([`Deploys::gate`]) across its checks
//! (busy, hold, what would ship) and the run's row in the store, with one store [`Deadline`] for
//! all of it; the `state` lock is taken only for moments inside that. Confirmation codes for
//! `!confirm` live here too, and the run task's reports back (step, who cancelled, release).

use std::sync::Arc;

use parking_lot::MutexGuard;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::{plan, refused, runner, same_person, Active, DeployError, Deploys, Pending, State};
use crate::chat::message::Identity;
use crate::chat::text::human_duration;
use crate::config::{Closed, TargetConfig};
use crate::deploy::backend::OutputTail;
use crate::events::Event;
use crate::store::runs::NewRun;
use crate::store::{Deadline, Phase, Run};

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

impl Deploys {
    /// The gate for a request that changes something, with the request's store deadline:
    /// waiting for the gate and every store operation after it share one lock wait, so
    /// requests queued behind a write stuck on a locked file fail in time instead of being
    /// applied long after they were asked.
    pub(super) fn gate(&self) -> Result<(MutexGuard<'_, ()>, Deadline), DeployError> {
        let wait = self.store.lock_wait();
        let deadline = Deadline::start(wait);
        let gate = match self.gate.try_lock() {
            Some(gate) => gate,
            None => crate::infra::blocking::off_runtime(|| self.gate.try_lock_until(deadline.at()))
                .ok_or_else(|| DeployError::Store(self.store.locked(wait)))?,
        };
        Ok((gate, deadline))
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
        self.turn_gate(target, who)?;
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
    /// hold; the caller has checked that the user may force. An `emergency` (its reason)
    /// passes the deploy windows, logged and announced as such.
    pub fn deploy(
        self: &Arc<Self>,
        target: &str,
        who: &Identity,
        force: bool,
        emergency: Option<&str>,
    ) -> Result<DeployStart, DeployError> {
        let config = self.target(target)?;
        if !plan::supports(config, Phase::Deploy) {
            return refused(format!("{target} has no deploy steps or job configured"));
        }
        let _gate = self.gate()?;
        check_free(&self.lock(), target)?;
        if emergency.is_none() {
            window_gate(target, config)?;
            self.turn_gate(target, who)?;
        }
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
                    emergency: emergency.map(str::to_owned),
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
        self.begin_deploy(target, who, (version, prev), notes(note, emergency))
            .map(DeployStart::Started)
    }

    /// Starts the deploy run itself, once the hold gate has let it through (`note`: what the
    /// gate had to say, such as a forced hold).
    fn begin_deploy(
        self: &Arc<Self>,
        target: &str,
        who: &Identity,
        (version, prev): (Option<String>, Option<String>),
        note: Option<String>,
    ) -> Result<Run, DeployError> {
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
        // A window closed or a hold placed since the request counts too.
        if pending.emergency.is_none() {
            window_gate(&target, config)?;
            self.turn_gate(&target, who)?;
        }
        let note = self.hold_gate(&target, who, pending.force)?;
        let (version, prev) = self.shipping(&target, config)?;
        self.lock().pending.remove(&code);
        let note = notes(note, pending.emergency.as_deref());
        self.begin_deploy(&target, who, (version, prev), note)
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
        // A run started on the deploy page says so, in the log and on IRC.
        let note = match (note, who.is_web()) {
            (Some(note), true) => Some(format!("{note}; from the deploy page")),
            (None, true) => Some("from the deploy page".to_owned()),
            (note, false) => note.map(str::to_owned),
        };
        let note = note.as_deref();
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
    pub(super) fn set_step(&self, target: &str, index: usize, name: &str) {
        if let Some(active) = self.lock().active.get_mut(target) {
            active.step = Some((index, name.to_owned(), Instant::now()));
        }
    }

    /// Who cancelled the run on `target`, if anyone did.
    pub(super) fn cancelled_by(&self, target: &str) -> Option<String> {
        self.lock()
            .active
            .get(target)
            .and_then(|a| a.cancelled_by.clone())
    }

    /// The run task is done and its end stored: the target is free.
    pub(super) fn release(&self, target: &str) {
        self.lock().active.remove(target);
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

/// The hold gate's note and an emergency's, as the run records them.
fn notes(hold: Option<String>, emergency: Option<&str>) -> Option<String> {
    let emergency = emergency.map(|why| format!("EMERGENCY: {why}"));
    match (hold, emergency) {
        (Some(hold), Some(emergency)) => Some(format!("{emergency}; {hold}")),
        (hold, emergency) => emergency.or(hold),
    }
}

/// Refuses a deploy outside `target`'s windows or in a freeze, saying when it may go.
fn window_gate(target: &str, config: &TargetConfig) -> Result<(), DeployError> {
    match config.schedule().check(jiff::Timestamp::now()) {
        Ok(()) => Ok(()),
        Err(closed) => refused(format!(
            "{}; for an emergency: !deploy {target} emergency <reason>",
            closed_text(target, config, &closed)
        )),
    }
}

/// Why `target` may not be deployed now by its schedule, and when it may.
pub fn closed_text(target: &str, config: &TargetConfig, closed: &Closed) -> String {
    match closed {
        Closed::Frozen { until, reason } => {
            let why = if reason.is_empty() {
                String::new()
            } else {
                format!(" ({reason})")
            };
            format!("{target} is frozen until {until} included{why}")
        }
        Closed::Outside { next } => {
            let when = match next {
                Some(next) => format!(
                    "; the next window opens {} {} ({} from now)",
                    crate::config::weekday_name(next.weekday()),
                    next.strftime("%Y-%m-%d %H:%M %Z"),
                    human_duration(std::time::Duration::from_secs(
                        (next.timestamp().as_second() - jiff::Timestamp::now().as_second()).max(0)
                            as u64
                    ))
                ),
                None => "; no window opens within a year".to_owned(),
            };
            format!(
                "{target} deploys only {}{when}",
                config.schedule().windows_text()
            )
        }
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
    use crate::deploy::tests::person;
    use crate::store::RunState;

    const SLOW: &str =
        "[targets.site]\n[[targets.site.deploy]]\nname = \"wait\"\nrun = [\"sleep\", \"2\"]\n";

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
                    deploys.deploy("site", &person(&format!("user{i}"), None), false, None)
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
    async fn confirm_needs_the_code_from_the_same_person_in_time() {
        let bot = bot("[targets.site]\nconfirm = true\n[[targets.site.deploy]]\nname = \"ok\"\nrun = [\"true\"]\n");
        let alice = person("alice", Some("alice"));
        let DeployStart::NeedsConfirm { code, summary } =
            bot.deploys.deploy("site", &alice, false, None).unwrap()
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
            bot.deploys.deploy("site", &who, false, None).unwrap();
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
}
