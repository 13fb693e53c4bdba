//! The event bus: every state change, after it is stored, is published here as a typed
//! [`Event`]; the announcer (and later the HTTP side and metrics) subscribe.
//!
//! Each subscriber gets its own unbounded queue, so a slow one never makes another miss an
//! event (a broadcast channel would drop events for a lagging receiver: a deploy announced not
//! at all). Each delivery carries an [`Activity`] guard until the subscriber has handled it, so
//! the piped console can wait until a run's end has really been announced.

pub mod announce;
pub mod reports;
pub mod telemetry;

pub use reports::{
    AlertGroup, AlertLine, BuildReport, ExternalDeploy, ExternalStatus, HeldBack, QueueNews,
    Removal, WatchReport, Watched,
};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::infra::activity::{Activity, Busy};
use crate::store::alerts::AlertMark;
use crate::store::flags::FlagState;
use crate::store::{Hold, LogEntry, Phase, Run, StepRecord};

/// Something that happened, already stored (all but [`Event::RunEndUnrecorded`]).
#[derive(Debug, Clone)]
pub enum Event {
    HoldPlaced {
        hold: Hold,
        entry: LogEntry,
    },
    HoldLifted {
        hold: Hold,
        /// Who lifted it (lever itself when it expired).
        by: String,
        expired: bool,
        entry: LogEntry,
    },
    /// A hold without a duration is still in force (sent every `deploy.hold_reminder`).
    HoldReminder {
        hold: Hold,
        held_for: Duration,
    },
    RunStarted {
        run: Run,
        entry: LogEntry,
        steps: usize,
        /// What the run is about, for the announcement ("abc123 → live, was 9f8e7d").
        detail: String,
    },
    StepFinished {
        target: String,
        phase: Phase,
        step: StepRecord,
        /// Whether the channel hears it (the target's `announce = "steps"`); the deploy page
        /// always does.
        to_channel: bool,
    },
    /// A run ended: succeeded, failed, cancelled, or found interrupted at start.
    RunFinished {
        run: Run,
        entry: LogEntry,
        steps: Vec<StepRecord>,
    },
    /// A run ended but the store could not record it (a full disk, a locked file): announced
    /// anyway, because a deploy must never end in silence, and kept to be written later.
    /// The one event published before it is stored.
    RunEndUnrecorded {
        run: Run,
        steps: Vec<StepRecord>,
        /// Why it could not be recorded, as the store said.
        why: String,
    },
    /// The end of a run that could not be recorded when it ended is in the deploy log now.
    RunEndRecorded {
        run: Run,
        entry: LogEntry,
    },
    /// Another tool reported a deploy (`/hooks/deploy`); `hold` covered its target as it began.
    ExternalDeploy {
        report: ExternalDeploy,
        entry: LogEntry,
        hold: Option<Hold>,
    },
    /// A CI build finished or started (`/hooks/build`); announced, not logged.
    Build(BuildReport),
    /// Alert lines, already grouped, de-duplicated and rate-capped by the alerts service, each
    /// with its channel; with a shared store, the statuses they say, claimed before they are
    /// said so no lever says them twice.
    Alerts {
        lines: Vec<(String, AlertLine)>,
        marks: Vec<AlertMark>,
    },
    /// The push queue moved: someone joined, is up, is warned, or left.
    Queue(QueueNews),
    /// A channel's topic is to read `text` (the push queue's, with `[queue] topic`).
    Topic {
        channel: String,
        text: String,
    },
    /// A feature flag changed (`!flag`, `!kill`, `PUT /api/v1/flags/{key}`).
    FlagChanged {
        state: FlagState,
        entry: LogEntry,
    },
    /// What watching a deploy found (a regression, an all-clear, or a metric it could not read).
    Watch {
        report: WatchReport,
        entry: LogEntry,
    },
}

/// An event with the guard that keeps the bot "busy" until a subscriber has handled it.
pub struct Delivery {
    pub event: Event,
    _busy: Busy,
}

/// Where events are published.
#[derive(Clone)]
pub struct Events {
    subscribers: Arc<Mutex<Vec<mpsc::UnboundedSender<Delivery>>>>,
    activity: Activity,
    /// Events published so far: what was read before it moved may be out of date.
    published: Arc<std::sync::atomic::AtomicU64>,
}

impl Events {
    pub fn new(activity: Activity) -> Self {
        Self {
            subscribers: Arc::default(),
            activity,
            published: Arc::default(),
        }
    }

    /// How many events have been published; it moves (before any subscriber hears of the
    /// event) after every change lever stores.
    pub fn published(&self) -> u64 {
        self.published.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A new subscriber's queue; it sees every event published from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Delivery> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        rx
    }

    /// Sends `event` to every subscriber.
    pub fn publish(&self, event: Event) {
        self.published
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subscribers.retain(|tx| {
            tx.send(Delivery {
                event: event.clone(),
                _busy: self.activity.begin(),
            })
            .is_ok()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Hold;

    fn hold_event() -> Event {
        let hold = Hold {
            target: None,
            by_nick: "mygrant".into(),
            by_account: None,
            by_source: "mygrant!m@h".into(),
            reason: "db".into(),
            placed_at: 0,
            expires_at: None,
        };
        Event::HoldReminder {
            hold,
            held_for: Duration::from_secs(3600),
        }
    }

    #[tokio::test]
    async fn every_subscriber_gets_every_event_and_activity_waits_for_them() {
        let activity = Activity::default();
        let events = Events::new(activity.clone());
        let mut a = events.subscribe();
        let mut b = events.subscribe();
        events.publish(hold_event());
        events.publish(hold_event());
        assert_eq!(activity.busy(), 4);
        for rx in [&mut a, &mut b] {
            for _ in 0..2 {
                let delivery = rx.recv().await.unwrap();
                assert!(matches!(delivery.event, Event::HoldReminder { .. }));
            }
        }
        assert_eq!(activity.busy(), 0);
    }

    #[tokio::test]
    async fn a_gone_subscriber_is_dropped_without_holding_activity() {
        let activity = Activity::default();
        let events = Events::new(activity.clone());
        drop(events.subscribe());
        events.publish(hold_event());
        assert_eq!(activity.busy(), 0);
    }
}
