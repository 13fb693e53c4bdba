//! Deploys done by other tools (CI, deployers), reported over HTTP: written to the deploy log
//! like lever's own runs ("Who? When? What?") and announced, with a warning when a hold was in
//! force, since the tool did not ask first.

use super::{DeployError, Deploys};
use crate::events::reports::{ExternalDeploy, ExternalStatus};
use crate::events::Event;
use crate::store::log::NewEntry;
use crate::store::{Hold, LogEntry, LogKind};

impl ExternalDeploy {
    /// The deploy log line, in the manner of lever's own.
    fn log_text(&self) -> String {
        let version = self
            .version
            .as_ref()
            .map(|v| format!(" {v}"))
            .unwrap_or_default();
        let mut notes = vec![format!("via {}", self.via)];
        match self.status {
            ExternalStatus::Started => {
                format!(
                    "starting deploy of {}{version}... ({})",
                    self.target,
                    notes.join("; ")
                )
            }
            ExternalStatus::Succeeded => {
                notes.extend(self.url.clone());
                format!("{} deployed{version} ({})", self.target, notes.join("; "))
            }
            ExternalStatus::Failed => {
                let mut first = self.message.clone().into_iter().collect::<Vec<_>>();
                first.extend(notes);
                format!(
                    "{} deploy{version} FAILED ({})",
                    self.target,
                    first.join("; ")
                )
            }
        }
    }
}

impl Deploys {
    /// Records another tool's deploy in the log and announces it. Returns the entry and the
    /// hold that covered the target when a deploy started or finished anyway.
    pub fn report_external(
        &self,
        report: &ExternalDeploy,
    ) -> Result<(LogEntry, Option<Hold>), DeployError> {
        let kind = match report.status {
            ExternalStatus::Started => LogKind::DeployStarted,
            ExternalStatus::Succeeded => LogKind::Deployed,
            ExternalStatus::Failed => LogKind::RunFailed,
        };
        // A deploy that began, or finished, while a hold was in force is called out.
        let hold = match report.status {
            ExternalStatus::Started | ExternalStatus::Succeeded => self
                .holds_in_force()?
                .into_iter()
                .find(|h| h.covers(&report.target)),
            _ => None,
        };
        let text = report.log_text();
        let entry = self.store.append_log(&NewEntry {
            user: &report.user,
            target: Some(&report.target),
            kind,
            text: &text,
            run_id: None,
            announce: true,
        })?;
        if let Some(hold) = &hold {
            tracing::warn!(target = %report.target, by = %report.user, via = %report.via, holder = %hold.by_nick, "a tool deployed through a hold");
        }
        self.events.publish(Event::ExternalDeploy {
            report: report.clone(),
            entry: entry.clone(),
            hold: hold.clone(),
        });
        Ok((entry, hold))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: ExternalStatus) -> ExternalDeploy {
        ExternalDeploy {
            user: "alice".into(),
            target: "api".into(),
            status,
            version: Some("v1.2".into()),
            url: Some("https://ci.example/42".into()),
            message: Some("smoke test failed".into()),
            via: "ci".into(),
        }
    }

    #[test]
    fn log_lines_read_like_lever_s_own() {
        assert_eq!(
            report(ExternalStatus::Started).log_text(),
            "starting deploy of api v1.2... (via ci)"
        );
        assert_eq!(
            report(ExternalStatus::Succeeded).log_text(),
            "api deployed v1.2 (via ci; https://ci.example/42)"
        );
        assert_eq!(
            report(ExternalStatus::Failed).log_text(),
            "api deploy v1.2 FAILED (smoke test failed; via ci)"
        );
    }
}
