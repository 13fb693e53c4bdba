//! Run ends the store could not take (a full disk, a file locked by another process).
//!
//! The end of a run is always announced: people in the channel must know production changed
//! (or did not) even when the deploy log cannot say so. The end is kept in memory and written
//! to the store as soon as it takes writes again, with the time the run really ended; the
//! channel hears once more when it is in the log. A lever stopped before then leaves the run
//! `running` in the store, and the next start marks it interrupted.

use std::time::Duration;

use super::Deploys;
use crate::events::Event;
use crate::store::{format_time, LogEntry, Millis, Run, RunState, StoreError};

/// How often kept ends are tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(5);

/// The end of one run, as the runner worked it out.
#[derive(Debug, Clone)]
pub(super) struct RunEnd {
    pub run: Run,
    pub state: RunState,
    pub version: Option<String>,
    pub error: Option<String>,
    /// The deploy log line.
    pub text: String,
    pub finished_at: Millis,
}

impl RunEnd {
    /// Writes the end to the store: the run as stored now, and its log entry.
    fn record(&self, deploys: &Deploys, text: &str) -> Result<(Run, LogEntry), StoreError> {
        deploys.store.finish_run(
            self.run.id,
            self.finished_at,
            self.state,
            self.version.as_deref(),
            self.error.as_deref(),
            text,
        )
    }

    /// The run as it ended, for the announcement when the store has no copy.
    fn as_ended(&self) -> Run {
        let mut run = self.run.clone();
        run.state = self.state;
        run.finished_at = Some(self.finished_at);
        if self.version.is_some() {
            run.version.clone_from(&self.version);
        }
        run.error.clone_from(&self.error);
        run
    }
}

impl Deploys {
    /// Stores the end of a run, frees its target and publishes the end; if the store cannot
    /// take it, announces the end anyway, saying why it is not in the deploy log, and keeps it
    /// for [`Deploys::retry_ends`].
    pub(super) fn finish(&self, end: RunEnd) {
        let recorded = end.record(self, &end.text);
        self.release(&end.run.target);
        match recorded {
            Ok((run, entry)) => {
                let steps = self.store.steps(run.id).unwrap_or_default();
                self.events
                    .publish(Event::RunFinished { run, entry, steps });
            }
            Err(e) => {
                tracing::error!(run = end.run.id, error = %e, "cannot record the end of a run; announced, kept to record later");
                // The steps as far as the store has them.
                let steps = self.store.steps(end.run.id).unwrap_or_default();
                self.events.publish(Event::RunEndUnrecorded {
                    run: end.as_ended(),
                    steps,
                    why: e.to_string(),
                });
                self.unrecorded.lock().push(end);
            }
        }
    }

    /// Run ends still waiting for the store, for `!status`.
    pub fn unrecorded_ends(&self, target: &str) -> Vec<Run> {
        self.unrecorded
            .lock()
            .iter()
            .filter(|e| e.run.target == target)
            .map(RunEnd::as_ended)
            .collect()
    }

    /// Tries once to write every kept run end, oldest first; stops at the first that still
    /// fails (the store is not back yet). Returns how many are still kept.
    pub fn retry_ends(&self) -> usize {
        let kept: Vec<RunEnd> = std::mem::take(&mut *self.unrecorded.lock());
        let mut left = Vec::new();
        for end in kept {
            if !left.is_empty() {
                left.push(end);
                continue;
            }
            let text = format!(
                "{} (ended {} UTC; recorded late)",
                end.text,
                format_time(end.finished_at)
            );
            match end.record(self, &text) {
                Ok((run, entry)) => {
                    tracing::info!(run = run.id, "recorded a run end that had to wait");
                    self.events.publish(Event::RunEndRecorded { run, entry });
                }
                Err(e) => {
                    tracing::debug!(run = end.run.id, error = %e, "the store still cannot take a run end");
                    left.push(end);
                }
            }
        }
        let mut kept = self.unrecorded.lock();
        // Ends kept meanwhile came later than these.
        left.append(&mut kept);
        *kept = left;
        kept.len()
    }
}

/// Tries kept run ends again every [`RETRY_EVERY`], for as long as lever runs.
pub(super) async fn retry(deploys: std::sync::Arc<Deploys>) {
    let mut tick = tokio::time::interval(RETRY_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !deploys.unrecorded.lock().is_empty() {
            deploys.retry_ends();
        }
    }
}
