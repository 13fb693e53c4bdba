//! Following a queued build to its end, as `!build` does: what it reaches (started, finished)
//! and, in words for the asker, why it is waiting or why lever stopped following it.

use std::time::Duration;

use tokio::time::Instant;

use super::{Client, Finished, JenkinsError, Queued, Started};
use crate::chat::text::{human_duration, sanitize_line, truncate_chars};

/// Jenkins' own word for the wait every build has; not worth telling anyone.
const QUIET_PERIOD: &str = "In the quiet period";

/// What following a build came to, step by step.
#[derive(Debug)]
pub enum Update<'a> {
    /// Something the asker should hear (a wait in the queue, a cancel, a lost track), worded.
    Tell(String),
    /// The build left the queue and runs.
    Started(&'a Started),
    /// The build ended.
    Finished(&'a Started, &'a Finished),
}

/// Follows `queued` (a build of job `name`) until it ends, it is cancelled or `deadline`
/// passes (`timeout` is that budget, for the words), reporting each step to `update`.
pub async fn follow(
    client: &Client,
    name: &str,
    queued: &Queued,
    deadline: Instant,
    timeout: Duration,
    mut update: impl FnMut(Update<'_>),
) {
    let mut told_why = false;
    let waiting = client
        .wait_for_start(queued, deadline, |why| {
            if !told_why && !why.starts_with(QUIET_PERIOD) {
                told_why = true;
                let why = sanitize_line(why);
                update(Update::Tell(format!(
                    "{name} is waiting in Jenkins' queue: {}",
                    truncate_chars(why.trim(), 200)
                )));
            }
        })
        .await;
    let started = match waiting {
        Ok(Some(started)) => started,
        Ok(None) => {
            update(Update::Tell(format!(
                "build {name} was cancelled in the queue"
            )));
            return;
        }
        Err(JenkinsError::TimedOut) => {
            update(Update::Tell(format!(
                "build {name} is still in Jenkins' queue after {}; lever stopped following it ([jenkins] timeout) — {}",
                human_duration(timeout),
                queued.job
            )));
            return;
        }
        Err(error) => {
            update(Update::Tell(format!(
                "lost track of build {name} in Jenkins' queue: {error} — see {}",
                queued.job
            )));
            return;
        }
    };
    update(Update::Started(&started));
    match client.wait_for_end(&started, deadline).await {
        Ok(finished) => update(Update::Finished(&started, &finished)),
        Err(JenkinsError::TimedOut) => update(Update::Tell(format!(
            "build {name} #{} is still running after {}; lever stopped following it ([jenkins] timeout) — {}",
            started.number,
            human_duration(timeout),
            started.link
        ))),
        Err(error) => update(Update::Tell(format!(
            "lost track of build {name} #{}: {error} — it may still be running: {}",
            started.number, started.link
        ))),
    }
}
