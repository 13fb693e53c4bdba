//! The read side: `!status`, `!log`, `!changes` and the HTTP reads. Nothing here takes the
//! run gate; the `state` lock is held only to copy what is running, so these answer while a
//! store write waits. What is staged and live, and what a deploy would ship, is worked out here
//! for the gate too.

use super::{plan, refused, Active, DeployError, Deploys};
use crate::config::TargetConfig;
use crate::store::{format_time, Hold, LogEntry, Phase, Run, RunState, StoreError};

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

impl Deploys {
    /// Targets with a run in progress.
    pub fn busy_targets(&self) -> Vec<String> {
        self.lock().active.keys().cloned().collect()
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
    pub(super) fn staged(&self, target: &str) -> Result<Option<Run>, StoreError> {
        Ok(self
            .store
            .runs(target, &[Phase::Stage], RunState::Succeeded, 1)?
            .pop())
    }

    /// The last successful deploy or rollback: what is live.
    pub(super) fn live(&self, target: &str) -> Result<Option<Run>, StoreError> {
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
    pub(super) fn previous_good(
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
    pub(super) fn shipping(
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
    pub(super) fn describe_shipping(
        &self,
        target: &str,
        version: Option<&str>,
        prev: Option<&str>,
    ) -> String {
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
}
