//! Recovery at start: runs a previous lever left unfinished.

use std::collections::HashMap;

use super::Deploys;
use crate::events::Event;
use crate::store::StoreError;

impl Deploys {
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
}
