//! Live updates for the deploy page: Server-Sent Events at `GET /events`.
//!
//! One subscriber to the event bus keeps the last [`KEEP`] page-worthy events, numbered; each
//! stream sends them as `id:`/`event:`/`data:` records. A browser that loses the stream
//! reconnects with `Last-Event-ID` and gets exactly the events after that one, none lost and
//! none twice; one that was away longer than the buffer holds gets `event: reload`. Quiet
//! streams get a keep-alive comment, so proxies do not cut them; streams end when lever stops.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures::Stream;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::bot::Bot;
use crate::events::Event;

/// Events kept for streams that reconnect.
const KEEP: usize = 1000;
/// A comment on a quiet stream this often.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The numbered events and the streams' wake-up.
pub struct Live {
    kept: Mutex<VecDeque<Record>>,
    /// The newest id; streams wait for it to move.
    newest: watch::Sender<u64>,
    stopped: CancellationToken,
}

/// One event as a stream sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: u64,
    pub kind: &'static str,
    pub data: Value,
}

impl Live {
    /// Subscribes to `bot`'s events until `stopped` is cancelled (which also ends the streams).
    pub fn start(bot: &Bot, stopped: CancellationToken) -> Arc<Live> {
        let live = Arc::new(Live {
            kept: Mutex::new(VecDeque::with_capacity(KEEP)),
            newest: watch::Sender::new(0),
            stopped: stopped.clone(),
        });
        let mut events = bot.events.subscribe();
        let feeding = live.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    delivery = events.recv() => match delivery {
                        Some(delivery) => {
                            if let Some((kind, data)) = record(&delivery.event) {
                                feeding.push(kind, data);
                            }
                        }
                        None => return,
                    },
                    _ = stopped.cancelled() => return,
                }
            }
        });
        live
    }

    fn push(&self, kind: &'static str, data: Value) {
        let mut kept = self.kept.lock();
        let id = kept.back().map_or(1, |r| r.id + 1);
        if kept.len() == KEEP {
            kept.pop_front();
        }
        kept.push_back(Record { id, kind, data });
        drop(kept);
        self.newest.send_replace(id);
    }

    /// What a stream that saw up to `last` sends next; `None` when `last` fell out of the
    /// buffer (the page must reload).
    fn after(&self, last: u64) -> Option<Vec<Record>> {
        let kept = self.kept.lock();
        let newest = kept.back().map_or(0, |r| r.id);
        let oldest = kept.front().map_or(1, |r| r.id);
        // Newer than anything here: an id from before lever restarted (ids start again).
        if last > newest || last + 1 < oldest {
            return None;
        }
        Some(kept.iter().filter(|r| r.id > last).cloned().collect())
    }

    fn newest(&self) -> u64 {
        *self.newest.borrow()
    }
}

/// An event's kind and what the page needs of it; `None` for what does not change the page.
fn record(event: &Event) -> Option<(&'static str, Value)> {
    Some(match event {
        Event::HoldPlaced { hold, entry } => (
            "hold",
            json!({ "target": hold.target, "by": hold.by_nick, "reason": hold.reason, "line": entry.to_string() }),
        ),
        Event::HoldLifted {
            hold, by, entry, ..
        } => (
            "unhold",
            json!({ "target": hold.target, "by": by, "line": entry.to_string() }),
        ),
        Event::RunStarted { run, steps, .. } => (
            "run",
            json!({ "run_id": run.id, "target": run.target, "phase": run.phase.as_str(), "user": run.user, "steps": steps }),
        ),
        Event::StepFinished { target, step, .. } => (
            "step",
            json!({
                "run_id": step.run_id, "target": target, "number": step.idx + 1,
                "name": step.name, "state": step.state, "ms": step.duration_ms(),
            }),
        ),
        Event::RunFinished { run, .. }
        | Event::RunEndRecorded { run, .. }
        | Event::RunEndUnrecorded { run, .. } => (
            "run_end",
            json!({ "run_id": run.id, "target": run.target, "state": run.state.as_str(), "version": run.version }),
        ),
        Event::ExternalDeploy { entry, .. } | Event::FlagChanged { entry, .. } => {
            ("log", json!({ "line": entry.to_string() }))
        }
        Event::Alerts { lines, .. } => {
            // Each line once, though it goes to several channels.
            let mut said: Vec<String> = lines
                .iter()
                .map(|(_, l)| crate::events::announce::alert_line(l))
                .collect();
            said.dedup();
            ("alert", json!({ "lines": said }))
        }
        _ => return None,
    })
}

/// `GET /events`: the stream. `Last-Event-ID` (sent by a reconnecting browser) resumes after
/// that event; without it the stream starts with what happens next.
pub async fn events(State(live): State<Arc<Live>>, headers: HeaderMap) -> impl IntoResponse {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let last = resume.unwrap_or_else(|| live.newest());
    Sse::new(stream(live, last)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

fn stream(live: Arc<Live>, last: u64) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let pending = VecDeque::new();
    let woken = live.newest.subscribe();
    futures::stream::unfold(
        (live, last, pending, woken, false),
        |(live, mut last, mut pending, mut woken, done)| async move {
            if done {
                return None;
            }
            loop {
                if let Some(record) = pending.pop_front() {
                    let record: Record = record;
                    last = record.id;
                    let event = SseEvent::default()
                        .id(record.id.to_string())
                        .event(record.kind)
                        .data(record.data.to_string());
                    return Some((Ok(event), (live, last, pending, woken, false)));
                }
                match live.after(last) {
                    None => {
                        let reload = SseEvent::default()
                            .event("reload")
                            .data("events were missed; load the page again");
                        return Some((Ok(reload), (live, last, pending, woken, true)));
                    }
                    Some(records) if !records.is_empty() => pending.extend(records),
                    Some(_) => {
                        tokio::select! {
                            changed = woken.changed() => if changed.is_err() { return None },
                            _ = live.stopped.cancelled() => return None,
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Live {
        Live {
            kept: Mutex::new(VecDeque::new()),
            newest: watch::Sender::new(0),
            stopped: CancellationToken::new(),
        }
    }

    #[test]
    fn a_resumed_stream_gets_exactly_what_came_after_its_last_event() {
        let live = live();
        for i in 0..5 {
            live.push("step", json!({ "n": i }));
        }
        let after = live.after(3).expect("kept");
        assert_eq!(after.iter().map(|r| r.id).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(after[0].data, json!({ "n": 3 }));
        assert_eq!(live.after(5).expect("kept"), []);
        assert_eq!(live.newest(), 5);
    }

    #[test]
    fn a_stream_away_longer_than_the_buffer_must_reload() {
        let live = live();
        for i in 0..KEEP + 10 {
            live.push("step", json!({ "n": i }));
        }
        // Ids 11..=1010 are kept: 10 is the last a stream may have seen and still resume.
        assert!(live.after(9).is_none());
        assert_eq!(live.after(10).expect("kept").len(), KEEP);
        assert_eq!(live.kept.lock().len(), KEEP);
    }

    #[test]
    fn an_id_from_before_a_restart_must_reload() {
        let live = live();
        assert_eq!(live.after(0).expect("nothing yet"), []);
        assert!(live.after(42).is_none());
        live.push("hold", json!({}));
        assert!(live.after(42).is_none());
        assert_eq!(live.after(0).expect("kept").len(), 1);
    }
}
