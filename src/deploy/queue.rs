//! The push queue: PushBot's `.join` and `.done`, harold's conch. Each target has one; while it
//! is not empty, the target's stages and deploys are for its head (and whoever they joined
//! with), and everyone else is told their place and who is up. The head's turn lasts
//! `[queue] lease`, is warned `warn_before` its end, goes on while their run does, then passes
//! to the next in line, who is pinged by name. Every removal is announced with why. The queue
//! is in the store, so it survives a restart and a takeover; an emergency deploy passes it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{refused, same_person, DeployError, Deploys};
use crate::chat::message::Identity;
use crate::events::{Event, QueueNews, Removal};
use crate::store::queue::QueueEntry;
use crate::store::{now_ms, Millis, StoreError};

/// How often turns are checked; also the most a turn's end can be late.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Whether `entry` is `who`: the same services account, else the same `nick!user@host`.
fn is(entry: &QueueEntry, who: &Identity) -> bool {
    let (user, host) = entry
        .source
        .split_once('!')
        .and_then(|(_, rest)| rest.split_once('@'))
        .unwrap_or(("", ""));
    let theirs = Identity {
        nick: entry.nick.clone(),
        user: user.to_owned(),
        host: host.to_owned(),
        account: entry.account.clone(),
    };
    same_person(&theirs, who)
}

/// Whether `who` shares `entry`'s turn: they are it, or the one it joined with.
fn shares(entry: &QueueEntry, who: &Identity) -> bool {
    is(entry, who)
        || entry
            .with_nick
            .as_ref()
            .is_some_and(|w| w.eq_ignore_ascii_case(&who.nick))
}

impl Deploys {
    /// `target`'s queue, in order.
    pub fn queue_of(&self, target: &str) -> Result<Vec<QueueEntry>, DeployError> {
        self.target(target)?;
        Ok(self.store.queue(Some(target))?)
    }

    /// Every non-empty queue, target by target in config order.
    pub fn queues(&self) -> Result<Vec<(String, Vec<QueueEntry>)>, DeployError> {
        let all = self.store.queue(None)?;
        Ok(self
            .config
            .targets
            .keys()
            .map(|t| {
                (
                    t.clone(),
                    all.iter()
                        .filter(|e| &e.target == t)
                        .cloned()
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, q)| !q.is_empty())
            .collect())
    }

    /// `who` joins `target`'s queue (sharing their turn `with` someone); their place.
    pub fn queue_join(
        &self,
        target: &str,
        who: &Identity,
        with: Option<&str>,
        note: &str,
    ) -> Result<usize, DeployError> {
        self.target(target)?;
        let _gate = self.gate()?;
        let queue = self.store.queue(Some(target))?;
        if let Some(at) = queue.iter().position(|e| is(e, who)) {
            return refused(format!("you are already #{} in the {target} queue", at + 1));
        }
        let entry = self.store.queue_join(&QueueEntry {
            id: 0,
            target: target.to_owned(),
            nick: who.nick.clone(),
            source: who.source(),
            account: who.account.clone(),
            with_nick: with.map(str::to_owned),
            note: note.to_owned(),
            ready: false,
            joined_at: now_ms(),
            up_since: None,
            until: None,
            warned: false,
        })?;
        let position = queue.len() + 1;
        if position > 1 {
            self.events.publish(Event::Queue(QueueNews::Joined {
                target: target.to_owned(),
                nick: entry.nick,
                with: entry.with_nick,
                position,
                note: entry.note,
            }));
        }
        self.turns(now_ms())?;
        Ok(position)
    }

    /// `who` leaves `target`'s queue: done (their turn is over) or just leaving.
    pub fn queue_leave(&self, target: &str, who: &Identity, done: bool) -> Result<(), DeployError> {
        self.target(target)?;
        let _gate = self.gate()?;
        let queue = self.store.queue(Some(target))?;
        let Some(at) = queue.iter().position(|e| is(e, who)) else {
            return refused(format!("you are not in the {target} queue"));
        };
        if done && at > 0 {
            return refused(format!(
                "it is not your turn on {target} (you are #{}): !queue {target} leave to leave the queue",
                at + 1
            ));
        }
        let why = if done { Removal::Done } else { Removal::Left };
        self.remove(&queue[at], why)?;
        self.turns(now_ms())?;
        Ok(())
    }

    /// Takes `nick` out of `target`'s queue (the hold role decides who may).
    pub fn queue_kick(&self, target: &str, nick: &str, by: &str) -> Result<(), DeployError> {
        self.target(target)?;
        let _gate = self.gate()?;
        let queue = self.store.queue(Some(target))?;
        let Some(entry) = queue.iter().find(|e| e.nick.eq_ignore_ascii_case(nick)) else {
            return refused(format!("{nick} is not in the {target} queue"));
        };
        self.remove(entry, Removal::Kicked { by: by.to_owned() })?;
        self.turns(now_ms())?;
        Ok(())
    }

    /// `who` says they are ready (or not) on `target`.
    pub fn queue_ready(
        &self,
        target: &str,
        who: &Identity,
        ready: bool,
    ) -> Result<(), DeployError> {
        self.target(target)?;
        let _gate = self.gate()?;
        let queue = self.store.queue(Some(target))?;
        let Some(entry) = queue.iter().find(|e| is(e, who)) else {
            return refused(format!(
                "you are not in the {target} queue: !queue {target} join first"
            ));
        };
        self.store.queue_update(&QueueEntry {
            ready,
            ..entry.clone()
        })?;
        self.events.publish(Event::Queue(QueueNews::Ready {
            target: target.to_owned(),
            nick: entry.nick.clone(),
            ready,
        }));
        Ok(())
    }

    /// Refuses `who` a stage or deploy of `target` while it is someone else's turn.
    pub(super) fn turn_gate(&self, target: &str, who: &Identity) -> Result<(), DeployError> {
        let queue = self.store.queue(Some(target))?;
        let Some(head) = queue.first() else {
            return Ok(());
        };
        if shares(head, who) {
            return Ok(());
        }
        let with = head
            .with_nick
            .as_ref()
            .map(|w| format!(" (with {w})"))
            .unwrap_or_default();
        let place = match queue.iter().position(|e| shares(e, who)) {
            Some(at) => format!("you are #{} in its queue", at + 1),
            None => format!("you are not in its queue: !queue {target} join"),
        };
        refused(format!(
            "it is {}'s turn on {target}{with}; {place}",
            head.nick
        ))
    }

    fn remove(&self, entry: &QueueEntry, why: Removal) -> Result<(), StoreError> {
        if self.store.queue_remove(entry.id)? {
            self.events.publish(Event::Queue(QueueNews::Removed {
                target: entry.target.clone(),
                nick: entry.nick.clone(),
                why,
            }));
        }
        Ok(())
    }

    /// Starts, warns, extends and ends turns as `now` says; a head whose turn ended is taken
    /// out and the next one's starts at once.
    fn turns(&self, now: Millis) -> Result<(), StoreError> {
        let lease = self.config.queue.lease;
        let warn = self.config.queue.warn_before.as_millis() as Millis;
        for (target, _) in self.config.targets.iter() {
            loop {
                let queue = self.store.queue(Some(target))?;
                let Some(head) = queue.into_iter().next() else {
                    break;
                };
                let (Some(since), Some(until)) = (head.up_since, head.until) else {
                    let up = QueueEntry {
                        up_since: Some(now),
                        until: Some(now + lease.as_millis() as Millis),
                        warned: false,
                        ..head
                    };
                    self.store.queue_update(&up)?;
                    self.events.publish(Event::Queue(QueueNews::Up {
                        target: target.clone(),
                        nick: up.nick,
                        with: up.with_nick,
                        lease,
                    }));
                    break;
                };
                if now >= until {
                    let running = self.lock().active.get(target).is_some_and(|run| {
                        run.user.eq_ignore_ascii_case(&head.nick)
                            || head
                                .with_nick
                                .as_ref()
                                .is_some_and(|w| w.eq_ignore_ascii_case(&run.user))
                    });
                    if running {
                        let first = until == since + lease.as_millis() as Millis;
                        let extended = QueueEntry {
                            until: Some(now + warn.max(1000)),
                            warned: true,
                            ..head.clone()
                        };
                        self.store.queue_update(&extended)?;
                        if first {
                            self.events.publish(Event::Queue(QueueNews::Extended {
                                target: target.clone(),
                                nick: head.nick,
                            }));
                        }
                        break;
                    }
                    let lasted = Duration::from_millis((now - since).max(0) as u64);
                    self.remove(&head, Removal::Expired { lasted })?;
                    continue;
                }
                if !head.warned && now >= until - warn {
                    let left = Duration::from_millis((until - now).max(0) as u64);
                    self.store.queue_update(&QueueEntry {
                        warned: true,
                        ..head.clone()
                    })?;
                    self.events.publish(Event::Queue(QueueNews::Warned {
                        target: target.clone(),
                        nick: head.nick,
                        left,
                    }));
                }
                break;
            }
        }
        Ok(())
    }
}

impl Deploys {
    /// What each channel's topic says of the queues of the targets announced there:
    /// `queue: site: alice (with bob) → carol · api: dave`, or `queue: empty`.
    fn queue_topics(&self) -> Result<HashMap<String, String>, StoreError> {
        let all = self.store.queue(None)?;
        let mut topics: HashMap<String, Vec<String>> = self
            .config
            .irc
            .channels
            .iter()
            .map(|c| (c.clone(), Vec::new()))
            .collect();
        for target in self.config.targets.keys() {
            let people: Vec<String> = all
                .iter()
                .filter(|e| &e.target == target)
                .map(|e| match &e.with_nick {
                    Some(with) => format!("{} (with {with})", e.nick),
                    None => e.nick.clone(),
                })
                .collect();
            if people.is_empty() {
                continue;
            }
            for channel in self.config.target_channels(target) {
                if let Some(parts) = topics.get_mut(channel) {
                    parts.push(format!("{target}: {}", people.join(" → ")));
                }
            }
        }
        Ok(topics
            .into_iter()
            .map(|(channel, parts)| {
                let text = match parts.is_empty() {
                    true => "queue: empty".to_owned(),
                    false => format!("queue: {}", parts.join(" · ")),
                };
                (channel, text)
            })
            .collect())
    }
}

/// Each channel's last topic set, and when: a channel's topic changes at most every
/// `[queue] topic_every`, and only when the queue's words change (a person's edit stands until
/// the queue moves).
#[derive(Default)]
struct Topics(HashMap<String, (String, Option<tokio::time::Instant>)>);

impl Topics {
    fn update(&mut self, deploys: &Deploys) -> Result<(), StoreError> {
        let every = deploys.config.queue.topic_every;
        for (channel, text) in deploys.queue_topics()? {
            let (last, at) = self.0.entry(channel.clone()).or_default();
            if *last == text || at.is_some_and(|at| at.elapsed() < every) {
                continue;
            }
            *last = text.clone();
            *at = Some(tokio::time::Instant::now());
            deploys.events.publish(Event::Topic { channel, text });
        }
        Ok(())
    }
}

/// Keeps turns moving (and, with `[queue] topic`, the topics saying so) for as long as lever
/// acts.
pub(super) async fn run(deploys: Arc<Deploys>) {
    let mut ticker = tokio::time::interval(CHECK_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // What the topics say already (set by this lever before a restart, or by the last one):
    // nothing is set until the queue moves, so a restart does not overwrite a person's topic.
    let mut topics = Topics::default();
    if let Ok(now) = deploys.queue_topics() {
        topics.0 = now.into_iter().map(|(c, text)| (c, (text, None))).collect();
    }
    loop {
        ticker.tick().await;
        let result = match deploys.gate() {
            Ok(_gate) => deploys.turns(now_ms()).map_err(DeployError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "checking the push queues failed; retrying");
        }
        if deploys.config.queue.topic {
            if let Err(e) = topics.update(&deploys) {
                tracing::debug!(error = %e, "cannot read the queues for the topic");
            }
        }
    }
}
