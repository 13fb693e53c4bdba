//! Runs one run: its steps in order, each recorded before it is announced; a failing step
//! stops the run. At the end the run's result is stored, the target freed, and the result
//! published (announced even if the store cannot take it: see [`super::unrecorded`]).

use std::sync::Arc;
use std::time::Duration;

use super::plan::Work;
use super::unrecorded::RunEnd;
use super::{Active, Deploys};
use crate::deploy::backend::{self, script, Ended, OutputTail, Progress, StepResult, StepSpec};
use crate::events::Event;
use crate::infra::activity::Busy;
use crate::store::{now_ms, Phase, Run, RunState};

/// Records each step as the executor reports it: in the store first, then announced (with
/// `announce = "steps"`), and as the target's current step for `!status`.
struct Recorder<'a> {
    deploys: &'a Deploys,
    run: &'a Run,
    output: OutputTail,
    announce_steps: bool,
    /// The index the next step gets.
    next: usize,
    /// Why a step could not be recorded (the first time the store failed).
    broken: Option<String>,
}

impl Progress for Recorder<'_> {
    fn step_started(&mut self, name: &str) {
        self.deploys.set_step(&self.run.target, self.next, name);
        if let Err(e) = self
            .deploys
            .store
            .step_started(self.run.id, self.next, name)
        {
            tracing::error!(run = self.run.id, error = %e, "cannot record a step start");
            self.broken.get_or_insert(e.to_string());
        }
    }

    fn step_spawned(&mut self, pgid: nix::unistd::Pid) {
        let mark = crate::process::leftovers::start_mark(pgid);
        if let Err(e) =
            self.deploys
                .store
                .step_process(self.run.id, self.next, pgid.as_raw(), mark.as_deref())
        {
            tracing::error!(run = self.run.id, error = %e, "cannot record a step's process group");
            self.broken.get_or_insert(e.to_string());
        }
    }

    fn step_finished(&mut self, result: &StepResult, limit: Option<Duration>) {
        let index = self.next;
        self.next += 1;
        let status = (!result.outcome.is_success()
            && result.outcome != backend::StepOutcome::Cancelled)
            .then(|| backend::describe(&result.outcome, limit));
        let tail = result
            .tail
            .iter()
            .rev()
            .take(FAILURE_TAIL)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        let recorded = self.deploys.store.step_finished(
            self.run.id,
            index,
            result.outcome.state(),
            status.as_deref(),
            &tail,
            Some(result.duration),
        );
        match recorded {
            Ok(step) => self.deploys.events.publish(Event::StepFinished {
                target: self.run.target.clone(),
                phase: self.run.phase,
                step,
                to_channel: self.announce_steps,
            }),
            Err(e) => {
                tracing::error!(run = self.run.id, error = %e, "cannot record a step result");
                self.broken.get_or_insert(e.to_string());
            }
        }
    }

    fn output(&self) -> OutputTail {
        self.output.clone()
    }
}

/// How long a target's `version` command may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(60);

/// Output lines kept with a failed step in the store and shown in the failure announcement.
const FAILURE_TAIL: usize = 5;

pub(super) async fn execute(
    deploys: Arc<Deploys>,
    run: Run,
    work: Work,
    active: Active,
    _busy: Busy,
) {
    let target = run.target.clone();
    let announce_steps = deploys
        .config
        .targets
        .get(&target)
        .is_some_and(|t| t.announce == crate::config::Announce::Steps);
    let mut recorder = Recorder {
        deploys: &deploys,
        run: &run,
        output: active.output.clone(),
        announce_steps,
        next: 0,
        broken: None,
    };
    let ended = match &work {
        Work::Steps(steps) => script::run_steps(steps, &mut recorder, &active.cancel).await,
        Work::Jenkins(job) => match deploys.config.jenkins.as_ref() {
            Some(jenkins) => {
                backend::jenkins::run(jenkins, job, &mut recorder, &active.cancel).await
            }
            None => Ended::Failed("no [jenkins] section is configured".into()),
        },
        Work::Http(request) => backend::engine::run(request, &mut recorder, &active.cancel).await,
    };
    let (failure, reported_version) = match ended {
        Ended::Succeeded { version } => (None, version),
        Ended::Failed(why) => (Some((RunState::Failed, why)), None),
        Ended::Cancelled(why) => (Some((RunState::Cancelled, why)), None),
    };
    // The steps ran as they ran, whatever the store said: production changed (or did not) all
    // the same, so the run's result is theirs and the log line says what it misses.
    let unrecorded_steps = recorder.broken.take();
    let mut version = reported_version;
    if failure.is_none() && run.phase == Phase::Stage && version.is_none() {
        version = stage_version(&deploys, &run, &active.cancel).await;
    }
    let cancelled_by = deploys.cancelled_by(&target);
    if let (Some(who), Some((RunState::Cancelled, _))) = (&cancelled_by, &failure) {
        if let Err(e) = deploys.store.record_stopped_by(run.id, who) {
            tracing::error!(run = run.id, error = %e, "cannot record who cancelled a run");
        }
    }
    let (state, error) = match failure {
        None => (RunState::Succeeded, None),
        // Cancelled from the channel says by whom; an engine that stopped a run itself says so
        // in `why`.
        Some((RunState::Cancelled, why)) => match cancelled_by.as_deref() {
            Some(who) => (RunState::Cancelled, Some(format!("{why} by {who}"))),
            None => (RunState::Cancelled, Some(why)),
        },
        Some((state, why)) => (state, Some(why)),
    };
    let mut text = log_text(
        &run,
        state,
        version.as_deref().or(run.version.as_deref()),
        error.as_deref(),
        &deploys,
    );
    if let Some(why) = unrecorded_steps {
        text.push_str(&format!(" (steps missing from the deploy log: {why})"));
    }
    deploys.finish(RunEnd {
        run,
        state,
        version,
        error,
        text,
        finished_at: now_ms(),
    });
}

/// Runs the target's `version` command after a good stage; its first line is the version.
async fn stage_version(
    deploys: &Deploys,
    run: &Run,
    cancel: &tokio_util::sync::CancellationToken,
) -> Option<String> {
    let target = deploys.config.targets.get(&run.target)?;
    let argv = target.version.clone()?;
    let workdir = super::plan::target_workdir(&deploys.config, target);
    let spec = StepSpec {
        name: "version".into(),
        argv: {
            let mut argv = argv;
            if argv[0].contains('/') && std::path::Path::new(&argv[0]).is_relative() {
                argv[0] = workdir.join(&argv[0]).to_string_lossy().into_owned();
            }
            argv
        },
        env: vec![
            ("LEVER_TARGET".into(), run.target.clone()),
            ("LEVER_USER".into(), run.user.clone()),
            ("LEVER_RUN_ID".into(), run.id.to_string()),
            ("LEVER_PHASE".into(), run.phase.as_str().into()),
        ],
        workdir,
        timeout: VERSION_TIMEOUT,
    };
    let output = OutputTail::default();
    let result = script::run_step(&spec, cancel, &output).await;
    if !result.outcome.is_success() {
        tracing::warn!(target = %run.target, outcome = ?result.outcome, "the version command failed; the stage has no version");
        return None;
    }
    let first = result.tail.into_iter().find(|l| !l.trim().is_empty())?;
    Some(crate::chat::text::truncate_chars(first.trim(), 64).into_owned())
}

/// The deploy log line for a finished run, in the spirit of Flickr's
/// `site deployed (changes...)`.
fn log_text(
    run: &Run,
    state: RunState,
    version: Option<&str>,
    error: Option<&str>,
    deploys: &Deploys,
) -> String {
    let target = &run.target;
    let version = version.map(|v| format!(" {v}")).unwrap_or_default();
    match (state, run.phase) {
        (RunState::Succeeded, Phase::Stage) => format!("{target} staged{version}"),
        (RunState::Succeeded, Phase::Deploy) => {
            let mut text = format!("{target} deployed{version}");
            if let (Some(v), Some(p)) = (run.version.as_deref(), run.prev_version.as_deref()) {
                text.push_str(&format!(" (was {p}"));
                if let Some(url) = deploys
                    .config
                    .targets
                    .get(target)
                    .and_then(|t| t.changes_url.as_ref())
                {
                    if v != p {
                        text.push_str(&format!(
                            "; changes: {}",
                            url.replace("{from}", p).replace("{to}", v)
                        ));
                    }
                }
                text.push(')');
            }
            text
        }
        (RunState::Succeeded, Phase::Rollback) => format!("{target} rolled back to{version}"),
        (RunState::Cancelled, phase) => format!(
            "{target} {} CANCELLED ({})",
            phase.as_str(),
            error.unwrap_or("")
        ),
        (_, phase) => format!(
            "{target} {} FAILED ({})",
            phase.as_str(),
            error.unwrap_or("")
        ),
    }
}
