//! What services report through the bus, as plain data: a CI build, a deploy another tool
//! ran, what watching a deploy found. Their words are the announcer's (and the deploy log's,
//! written by the service that stores them).

use std::time::Duration;

use crate::store::Millis;

/// A CI build, as `/hooks/build` or `!build` reports it. Every text is already sanitised and
/// bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildReport {
    pub job: String,
    pub number: Option<u64>,
    /// "SUCCESS", "FAILURE", "UNSTABLE", "ABORTED", or "STARTED".
    pub status: String,
    pub url: Option<String>,
    pub duration_ms: Option<u64>,
    pub user: Option<String>,
    /// The credential the report came with.
    pub via: String,
    /// Where to announce it; empty, every channel.
    pub channels: Vec<String>,
}

/// Where another tool's deploy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalStatus {
    Started,
    Succeeded,
    Failed,
}

/// A deploy another tool reports. Every text is already sanitised and bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalDeploy {
    pub user: String,
    pub target: String,
    pub status: ExternalStatus,
    pub version: Option<String>,
    pub url: Option<String>,
    pub message: Option<String>,
    /// The credential the report came with ("ci").
    pub via: String,
}

/// The deploy being watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub target: String,
    pub user: String,
    /// lever's run id; `None` for a deploy another tool reported.
    pub run_id: Option<i64>,
    pub version: Option<String>,
    pub started_at: Millis,
    /// When it ended: the rules' windows count from here.
    pub finished_at: Millis,
}

/// What a watch found, as logged and announced.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchReport {
    /// A metric went above its limit.
    Regression {
        deploy: Watched,
        metric: String,
        unit: Option<String>,
        before: f64,
        now: f64,
        ratio: f64,
        max_ratio: f64,
        /// lever is placing a hold (`auto_hold`).
        holding: bool,
    },
    /// Every rule's window passed without a regression: each metric with its last ratio.
    AllClear {
        deploy: Watched,
        window: Duration,
        ratios: Vec<(String, f64)>,
    },
    /// A rule's metric could not be read, so the deploy went unwatched on it.
    Unwatched {
        deploy: Watched,
        metric: String,
        reason: String,
    },
}

impl WatchReport {
    /// The deploy the report is about.
    pub fn deploy(&self) -> &Watched {
        match self {
            WatchReport::Regression { deploy, .. }
            | WatchReport::AllClear { deploy, .. }
            | WatchReport::Unwatched { deploy, .. } => deploy,
        }
    }
}
