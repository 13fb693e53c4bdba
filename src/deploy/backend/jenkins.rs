//! A phase run as a Jenkins job (`backend = "jenkins"`): one step, "jenkins <job>", from the
//! moment it is queued until the build's result; cancelling takes it out of the queue or
//! stops the build. Jenkins fans the deploy out; lever keeps the log, the holds and the
//! channel informed.

use std::time::Duration;

use tokio::time::Instant;

use tokio_util::sync::CancellationToken;

use super::{Ended, Progress, StepOutcome, StepResult};
use crate::config::JenkinsConfig;
use crate::deploy::plan::JenkinsWork;
use crate::jenkins::{Client, JenkinsError};

/// How long a stopped build may take to say it was aborted.
const STOP_WAIT: Duration = Duration::from_secs(30);
/// Console lines kept with a failed build.
const TAIL: usize = 5;

pub async fn run(
    config: &JenkinsConfig,
    work: &JenkinsWork,
    progress: &mut dyn Progress,
    cancel: &CancellationToken,
) -> Ended {
    let name = format!("jenkins {}", work.job);
    progress.step_started(&name);
    let output = progress.output();
    let began = Instant::now();
    let finish = |progress: &mut dyn Progress, outcome: StepOutcome, tail: Vec<String>| {
        progress.step_finished(
            &StepResult {
                outcome,
                duration: began.elapsed(),
                tail,
            },
            Some(work.timeout),
        );
    };
    let Some(job) = config.jobs.get(&work.job) else {
        let error = format!("'{}' is not a [jenkins.jobs] entry", work.job);
        finish(
            progress,
            StepOutcome::NotStarted {
                error: error.clone(),
            },
            vec![],
        );
        return Ended::Failed(format!("'{name}' failed: {error}"));
    };
    let client = Client::new(config);
    let deadline = began + work.timeout;
    let queued = match client.trigger(job, &work.job, &work.params).await {
        Ok(queued) => queued,
        Err(e) => {
            finish(
                progress,
                StepOutcome::NotStarted {
                    error: e.to_string(),
                },
                vec![],
            );
            return Ended::Failed(format!("'{name}' failed: {e}"));
        }
    };
    output.push(&format!("queued in Jenkins: {}", queued.job));
    let started = tokio::select! {
        started = client.wait_for_start(&queued, deadline, |why| output.push(&format!("waiting: {why}"))) => started,
        _ = cancel.cancelled() => {
            if let Err(e) = client.cancel_queued(&queued).await {
                tracing::warn!(job = %work.job, error = %e, "could not take the build out of Jenkins' queue");
            }
            finish(progress, StepOutcome::Cancelled, vec![]);
            return Ended::Cancelled(format!("cancelled during '{name}' (taken out of Jenkins' queue)"));
        }
    };
    let started = match started {
        Ok(Some(started)) => started,
        Ok(None) => {
            let status = "cancelled in Jenkins' queue".to_owned();
            finish(
                progress,
                StepOutcome::Failed {
                    status: status.clone(),
                },
                vec![],
            );
            return Ended::Failed(format!("'{name}' failed: {status}"));
        }
        Err(e) => return lost(progress, &name, e, began, work.timeout),
    };
    output.push(&format!(
        "build #{} running: {}",
        started.number, started.link
    ));
    let finished = tokio::select! {
        finished = client.wait_for_end(&started, deadline) => finished,
        _ = cancel.cancelled() => {
            if let Err(e) = client.stop(&started).await {
                tracing::warn!(job = %work.job, error = %e, "could not stop the Jenkins build");
            }
            // Wait (briefly) for Jenkins to say ABORTED, so the channel hears the truth.
            let _ = client.wait_for_end(&started, Instant::now() + STOP_WAIT).await;
            finish(progress, StepOutcome::Cancelled, vec![]);
            return Ended::Cancelled(format!("cancelled during '{name}' (build #{} stopped)", started.number));
        }
    };
    let done = match finished {
        Ok(done) => done,
        Err(e) => return lost(progress, &name, e, began, work.timeout),
    };
    // Jenkins' own figure; lever's clock when it gives none.
    let duration = done
        .duration_ms
        .map(Duration::from_millis)
        .unwrap_or_else(|| began.elapsed());
    if done.result == "SUCCESS" {
        progress.step_finished(
            &StepResult {
                outcome: StepOutcome::Succeeded,
                duration,
                tail: vec![],
            },
            None,
        );
        return Ended::Succeeded { version: None };
    }
    let status = format!("Jenkins says {} — {}", done.result, started.link);
    let tail = client.console_tail(&started, TAIL).await;
    progress.step_finished(
        &StepResult {
            outcome: StepOutcome::Failed {
                status: status.clone(),
            },
            duration,
            tail,
        },
        None,
    );
    Ended::Failed(format!("'{name}' failed: {status}"))
}

/// Lost track of the build (unreachable for too long, or past the timeout): the run ends, so
/// the target is free, and the message says the build may still be going.
fn lost(
    progress: &mut dyn Progress,
    name: &str,
    error: JenkinsError,
    began: Instant,
    limit: Duration,
) -> Ended {
    let outcome = match error {
        JenkinsError::TimedOut => StepOutcome::TimedOut,
        other => StepOutcome::Failed {
            status: format!("lost track of it: {other} (it may still be running in Jenkins)"),
        },
    };
    let why = super::describe(&outcome, Some(limit));
    progress.step_finished(
        &StepResult {
            outcome,
            duration: began.elapsed(),
            tail: vec![],
        },
        Some(limit),
    );
    Ended::Failed(format!("'{name}' failed: {why}"))
}
