//! The outbox: every line the bot says goes through one ordered, bounded queue.
//!
//! Producers (command handlers, announcements) call [`Outbox::say`]; one consumer (the IRC
//! session's writer, or the console's printer) takes lines with [`Outbox::next`] at the pace it
//! can send them. The outbox lives as long as the bot, not a connection, so lines said while
//! disconnected go out after reconnecting.
//!
//! Two classes share the queue: interactive replies and announcements. Replies go first, so a
//! `!ping` answer is not stuck behind an alert storm; but while announcements wait, every
//! [`REPLIES_PER_ANNOUNCEMENT`]th slot goes to one of them, so a chatty channel cannot starve
//! them either. Within a class, order is kept.
//!
//! The queue is bounded: when it is full, the oldest droppable announcement (a step line, an
//! alert) goes first, then the oldest reply. A [`Priority::Record`] line (a hold placed or
//! lifted, a run started or ended) is never dropped: it is what the channel must know to deploy
//! safely, and there are only ever a few of them, so they may take the queue past its limit.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::chat::claim::Claim;
use crate::chat::text;

/// While announcements wait, at most this many replies go out before one announcement does.
pub const REPLIES_PER_ANNOUNCEMENT: u32 = 3;

/// Which class a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// An answer to someone who just asked.
    Reply,
    /// Something the bot says on its own: run progress, alerts, reminders.
    Announce,
    /// An announcement of what the deploy log records (holds, lifts, run starts and ends): goes
    /// out in order with the other announcements, but is never dropped to make room.
    Record,
}

impl Priority {
    fn droppable(self) -> bool {
        self != Priority::Record
    }
}

/// PRIVMSG, NOTICE, or a channel's TOPIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Privmsg,
    Notice,
    /// Sets the channel's topic to the text (cut to fit, never split).
    Topic,
}

/// One line waiting to be said. `text` is already sanitized and free of line breaks, but may
/// still be longer than one IRC line; the consumer splits it to fit its wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutLine {
    pub target: String,
    pub kind: Kind,
    pub priority: Priority,
    pub text: String,
    /// Said again after a connection was lost before the server confirmed it (see
    /// `irc::delivery`); such a line is not given back a second time.
    pub retried: bool,
    /// Said only once won ([`crate::chat::claim`]): what the deploy log records is said by
    /// exactly one lever.
    pub claim: Option<Claim>,
}

impl OutLine {
    /// A line of `text` for `target`, with no claim.
    pub fn new(target: &str, kind: Kind, priority: Priority, text: String) -> Self {
        Self {
            target: target.to_owned(),
            kind,
            priority,
            text,
            retried: false,
            claim: None,
        }
    }
}

/// A handle to the bot's outbox. Clones share the same queue.
#[derive(Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

struct Shared {
    queues: Mutex<Queues>,
    /// Woken when a line is queued.
    queued: Notify,
    /// Woken when the queue becomes empty and nothing is in flight.
    emptied: Notify,
    limit: usize,
    dropped: AtomicU64,
    /// Until when lines may go out (`None`: always): one of several levers speaks only while
    /// it is sure to hold the lease, and a lever paused past it says nothing on waking.
    speak_until: Mutex<Option<std::time::Instant>>,
}

#[derive(Default)]
struct Queues {
    replies: VecDeque<OutLine>,
    announcements: VecDeque<OutLine>,
    replies_in_a_row: u32,
    /// Lines taken by the consumer and not yet confirmed sent.
    in_flight: usize,
}

impl Queues {
    fn len(&self) -> usize {
        self.replies.len() + self.announcements.len()
    }

    fn pop(&mut self) -> Option<OutLine> {
        let replies_turn = !self.replies.is_empty()
            && (self.announcements.is_empty() || self.replies_in_a_row < REPLIES_PER_ANNOUNCEMENT);
        let line = if replies_turn {
            self.replies_in_a_row += 1;
            self.replies.pop_front()
        } else {
            self.replies_in_a_row = 0;
            self.announcements.pop_front()
        }?;
        self.in_flight += 1;
        Some(line)
    }

    fn class(&mut self, priority: Priority) -> &mut VecDeque<OutLine> {
        match priority {
            Priority::Reply => &mut self.replies,
            Priority::Announce | Priority::Record => &mut self.announcements,
        }
    }

    /// Drops one line to make room: the oldest droppable announcement, else the oldest reply.
    /// Returns whether one was dropped (false when only [`Priority::Record`] lines wait).
    fn drop_one(&mut self) -> bool {
        if let Some(i) = self
            .announcements
            .iter()
            .position(|line| line.priority.droppable())
        {
            self.announcements.remove(i);
            return true;
        }
        self.replies.pop_front().is_some()
    }
}

impl Outbox {
    /// An outbox that holds at most `limit` lines; past that the oldest droppable announcement
    /// (or, with none queued, the oldest reply) is dropped and counted. [`Priority::Record`]
    /// lines are never dropped.
    pub fn new(limit: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                queues: Mutex::new(Queues::default()),
                queued: Notify::new(),
                emptied: Notify::new(),
                limit: limit.max(1),
                dropped: AtomicU64::new(0),
                speak_until: Mutex::new(None),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queues> {
        // A panic while holding this lock cannot leave the queues half-changed (each operation
        // is a single push or pop), so a poisoned lock is still safe to use.
        self.shared
            .queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lines may go out until `until` (`None`: always); queued lines wait past it.
    pub fn speak_until(&self, until: Option<std::time::Instant>) {
        *self
            .shared
            .speak_until
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = until;
    }

    /// Whether a line may go out now.
    pub fn may_speak(&self) -> bool {
        self.shared
            .speak_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none_or(|until| std::time::Instant::now() < until)
    }

    /// Queues `text` for `target` as PRIVMSGs, one per line of text.
    pub fn say(&self, target: &str, text: &str, priority: Priority) {
        self.queue(target, text, Kind::Privmsg, priority, None);
    }

    /// [`Outbox::say`], each line said only once `claim` is won.
    pub fn say_claimed(&self, target: &str, text: &str, priority: Priority, claim: &Claim) {
        self.queue(target, text, Kind::Privmsg, priority, Some(claim));
    }

    /// Queues `text` for `target` as NOTICEs, one per line of text.
    pub fn notice(&self, target: &str, text: &str, priority: Priority) {
        self.queue(target, text, Kind::Notice, priority, None);
    }

    /// Queues setting `channel`'s topic to `text` (its first line).
    pub fn topic(&self, channel: &str, text: &str) {
        let first = text::lines(text).next().unwrap_or_default();
        self.queue(channel, &first, Kind::Topic, Priority::Announce, None);
    }

    fn queue(
        &self,
        target: &str,
        text: &str,
        kind: Kind,
        priority: Priority,
        claim: Option<&Claim>,
    ) {
        if !is_valid_target(target) {
            tracing::error!(target = ?target, "refusing to send to a malformed target");
            return;
        }
        let mut dropped = 0;
        {
            let mut q = self.lock();
            for line in text::lines(text) {
                q.class(priority).push_back(OutLine {
                    claim: claim.cloned(),
                    ..OutLine::new(target, kind, priority, line)
                });
                // The new line itself may be the one dropped (a reply, with only records ahead).
                while q.len() > self.shared.limit && q.drop_one() {
                    dropped += 1;
                }
            }
        }
        if dropped > 0 {
            let total = self.shared.dropped.fetch_add(dropped, Ordering::Relaxed) + dropped;
            tracing::warn!(
                dropped,
                total,
                limit = self.shared.limit,
                "outbox full: dropped the oldest lines (never a hold, lift or run start or end)"
            );
        }
        self.shared.queued.notify_one();
    }

    /// Takes the next line to send, waiting for one. Cancel-safe: a line is only taken in the
    /// poll that returns it. The consumer calls [`Outbox::sent`] once it has written the line.
    pub async fn next(&self) -> OutLine {
        loop {
            let queued = self.shared.queued.notified();
            if let Some(line) = self.try_next() {
                return line;
            }
            queued.await;
        }
    }

    /// Takes the next line if there is one.
    pub fn try_next(&self) -> Option<OutLine> {
        self.lock().pop()
    }

    /// Puts back the unsent remainder of a line the consumer had to split; it goes out next in
    /// its class. Counts as the taken line's confirmation.
    pub fn put_back(&self, line: OutLine) {
        {
            let mut q = self.lock();
            q.in_flight = q.in_flight.saturating_sub(1);
            q.class(line.priority).push_front(line);
        }
        self.shared.queued.notify_one();
    }

    /// Gives back lines that were written on a connection since lost, before the server
    /// confirmed them: they go out first in their class, in their order, after reconnecting.
    /// (They were confirmed as written already, so nothing is in flight for them.)
    pub fn give_back(&self, lines: Vec<OutLine>) {
        if lines.is_empty() {
            return;
        }
        {
            let mut q = self.lock();
            for line in lines.into_iter().rev() {
                q.class(line.priority).push_front(line);
            }
        }
        self.shared.queued.notify_one();
    }

    /// Confirms that a line taken with [`Outbox::next`] was written.
    pub fn sent(&self) {
        let mut q = self.lock();
        q.in_flight = q.in_flight.saturating_sub(1);
        if q.in_flight == 0 && q.len() == 0 {
            self.shared.emptied.notify_waiters();
        }
    }

    /// Lines waiting (not counting those in flight).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no line is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many lines were dropped because the outbox was full, since start.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every queued line has been taken and confirmed sent, or `limit` passes.
    /// Returns whether the outbox is empty.
    pub async fn flushed(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let emptied = self.shared.emptied.notified();
                {
                    let q = self.lock();
                    if q.len() == 0 && q.in_flight == 0 {
                        return;
                    }
                }
                emptied.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

/// A channel or nick we can address: non-empty, no spaces, commas or control characters.
fn is_valid_target(target: &str) -> bool {
    !target.is_empty()
        && !target.starts_with(':')
        && !target
            .chars()
            .any(|c| c == ' ' || c == ',' || c.is_ascii_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(outbox: &Outbox) -> Vec<String> {
        std::iter::from_fn(|| {
            let line = outbox.try_next()?;
            outbox.sent();
            Some(line.text)
        })
        .collect()
    }

    #[test]
    fn text_is_split_into_sanitized_lines_in_order() {
        let outbox = Outbox::new(100);
        outbox.say(
            "#ops",
            "one\r\nQUIT :evil\n\x01ACTION x\x01",
            Priority::Reply,
        );
        assert_eq!(texts(&outbox), ["one", "QUIT :evil", "ACTION x"]);
    }

    #[test]
    fn malformed_targets_are_refused() {
        let outbox = Outbox::new(100);
        for target in ["", "#a b", "#a,#b", "#a\r\nQUIT", ":x"] {
            outbox.say(target, "hi", Priority::Reply);
        }
        assert!(outbox.is_empty());
    }

    #[test]
    fn replies_overtake_announcements_but_do_not_starve_them() {
        let outbox = Outbox::new(100);
        for i in 0..5 {
            outbox.say("#ops", &format!("a{i}"), Priority::Announce);
        }
        for i in 0..7 {
            outbox.say("#ops", &format!("r{i}"), Priority::Reply);
        }
        assert_eq!(
            texts(&outbox),
            ["r0", "r1", "r2", "a0", "r3", "r4", "r5", "a1", "r6", "a2", "a3", "a4"]
        );
    }

    #[test]
    fn a_full_outbox_drops_the_oldest_announcement_and_counts_it() {
        let outbox = Outbox::new(3);
        outbox.say("#ops", "a0\na1", Priority::Announce);
        outbox.say("#ops", "r0", Priority::Reply);
        outbox.say("#ops", "r1", Priority::Reply);
        assert_eq!(outbox.dropped(), 1);
        assert_eq!(texts(&outbox), ["r0", "r1", "a1"]);
        outbox.say("#ops", "r2\nr3\nr4\nr5", Priority::Reply);
        assert_eq!(outbox.dropped(), 2);
        assert_eq!(texts(&outbox), ["r3", "r4", "r5"]);
    }

    #[test]
    fn a_full_outbox_never_drops_a_record_line_for_a_reply() {
        let outbox = Outbox::new(3);
        outbox.say("#ops", "step 1", Priority::Announce);
        outbox.say("#ops", "NO DEPLOY PLEASE", Priority::Record);
        outbox.say("#ops", "step 2", Priority::Announce);
        outbox.say("#ops", "r0\nr1\nr2\nr3", Priority::Reply);
        // Both step lines, then the oldest replies, made room; the hold stayed.
        assert_eq!(outbox.dropped(), 4);
        assert_eq!(texts(&outbox), ["r2", "r3", "NO DEPLOY PLEASE"]);

        // With only records queued, the limit gives way to them, and a reply is the one dropped.
        for i in 0..5 {
            outbox.say("#ops", &format!("DEPLOY OK {i}"), Priority::Record);
        }
        outbox.say("#ops", "pong", Priority::Reply);
        assert_eq!(outbox.dropped(), 5);
        assert_eq!(
            texts(&outbox),
            [
                "DEPLOY OK 0",
                "DEPLOY OK 1",
                "DEPLOY OK 2",
                "DEPLOY OK 3",
                "DEPLOY OK 4"
            ]
        );
    }

    #[test]
    fn a_put_back_remainder_goes_out_next_in_its_class() {
        let outbox = Outbox::new(10);
        outbox.say("#ops", "long", Priority::Reply);
        outbox.say("#ops", "after", Priority::Reply);
        let mut first = outbox.try_next().unwrap();
        first.text = "rest of long".into();
        outbox.put_back(first);
        assert_eq!(texts(&outbox), ["rest of long", "after"]);
    }

    #[tokio::test]
    async fn flushed_waits_for_confirmation_not_just_an_empty_queue() {
        let outbox = Outbox::new(10);
        assert!(outbox.flushed(Duration::from_millis(1)).await);
        outbox.say("#ops", "x", Priority::Reply);
        let _line = outbox.next().await;
        assert!(!outbox.flushed(Duration::from_millis(20)).await);
        outbox.sent();
        assert!(outbox.flushed(Duration::from_millis(20)).await);
    }
}
