//! What services report through the bus, as plain data: a CI build, a deploy another tool
//! ran, what watching a deploy found, the lines of an alert announcement. Their words are the announcer's (and the deploy log's,
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

/// One line of an alert announcement, as data. The alerts service has de-duplicated, routed
/// and rate-capped them (its caps count these, one line each); every text is already cleaned
/// and bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertLine {
    /// A group's head line: `[FIRING:3] HighErrorRate critical — www1, www2 — … — runbook: …`.
    Group(AlertGroup),
    /// One alert of a group whose alerts have different summaries.
    Detail {
        instance: String,
        summary: Option<String>,
    },
    /// How many per-alert lines did not fit `lines_per_group`.
    MoreDetails(usize),
    /// An alert that placed a hold has resolved: lifting the hold is proposed to a person.
    ProposeUnhold {
        alert: String,
        /// The hold's target; `None` for every target.
        target: Option<String>,
    },
    /// What the per-minute cap held back in the minute that is over, by alert name.
    HeldBack(Vec<HeldBack>),
}

/// The alerts of one notification with one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertGroup {
    /// "firing" or "resolved".
    pub status: String,
    pub count: usize,
    pub name: String,
    pub severity: Option<String>,
    /// The first few instances, in order, and how many more there were.
    pub instances: Vec<String>,
    pub more_instances: usize,
    pub summary: Option<String>,
    pub runbook: Option<String>,
    /// Alerts of the group Alertmanager did not send (its `truncatedAlerts`).
    pub not_sent: u64,
}

/// Lines held back for one alert name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    pub name: String,
    pub lines: usize,
    pub critical: bool,
}

/// Something the push queue says (see `deploy::queue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueNews {
    /// `nick` (with `with`) joined `target`'s queue at `position` (1 = up now).
    Joined {
        target: String,
        nick: String,
        with: Option<String>,
        position: usize,
        note: String,
    },
    /// Their turn starts now, for `lease`.
    Up {
        target: String,
        nick: String,
        with: Option<String>,
        lease: Duration,
    },
    /// Their turn ends in `left`.
    Warned {
        target: String,
        nick: String,
        left: Duration,
    },
    /// Their turn went past its end while their run goes on: it lasts until the run is over.
    Extended { target: String, nick: String },
    /// `nick` left `target`'s queue, and why.
    Removed {
        target: String,
        nick: String,
        why: Removal,
    },
    /// `nick` said ready (or not).
    Ready {
        target: String,
        nick: String,
        ready: bool,
    },
}

/// Why someone left a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Left,
    Done,
    Kicked {
        by: String,
    },
    /// Their turn ran out (it lasted this long).
    Expired {
        lasted: Duration,
    },
}

impl QueueNews {
    pub fn target(&self) -> &str {
        match self {
            QueueNews::Joined { target, .. }
            | QueueNews::Up { target, .. }
            | QueueNews::Warned { target, .. }
            | QueueNews::Extended { target, .. }
            | QueueNews::Removed { target, .. }
            | QueueNews::Ready { target, .. } => target,
        }
    }
}
