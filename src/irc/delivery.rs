//! Which said lines the server has provably read. No I/O.
//!
//! A line written to the socket is not a line delivered: when the link dies silently (a
//! partition, a server killed mid-stream), what sat in the socket buffers is gone, and the
//! watchdog notices only after `ping_interval` + `ping_timeout`. A server answers PINGs in
//! order, so a `PONG` to a PING written after some lines proves it read them. lever keeps each
//! line it writes until such a PONG and, when a connection is lost, gives the rest back to the
//! outbox to say again after reconnecting: a deploy's announcement is then said late, not
//! never.
//!
//! The PING is asked for once the outbox has nothing more to say (on the session's next
//! one-second tick), or after [`ACK_EVERY`] lines of a backlog (one line in eleven). A line is given back once at most, so a server that
//! drops lever for what it said (a flood kill) does not see it again and again.

use std::collections::VecDeque;

use crate::chat::outbox::OutLine;

/// Lines written before a confirming PING is sent even while more are waiting.
pub const ACK_EVERY: usize = 10;
/// Unconfirmed lines kept at most (a dead link with a full outbox); older ones are forgotten.
const MAX_UNCONFIRMED: usize = 1000;
/// What starts the PING tokens this module sends (the watchdog's are `lever-N`).
const TOKEN_PREFIX: &str = "lever-ack-";

#[derive(Debug, Default)]
pub struct Delivery {
    /// Written, not yet confirmed, oldest first.
    unconfirmed: VecDeque<OutLine>,
    /// The PING in flight: its token and how many of the oldest lines it confirms.
    pending: Option<(String, usize)>,
    sent_pings: u64,
    /// Lines forgotten because too many were unconfirmed.
    pub forgotten: u64,
}

impl Delivery {
    /// Notes a line (or the piece of one) handed to the wire.
    pub fn written(&mut self, line: OutLine) {
        if self.unconfirmed.len() == MAX_UNCONFIRMED {
            self.unconfirmed.pop_front();
            self.forgotten += 1;
            if let Some((_, covered)) = &mut self.pending {
                *covered = covered.saturating_sub(1);
            }
        }
        self.unconfirmed.push_back(line);
    }

    /// The token of a PING to send now, if one is due: lines are unconfirmed, none is in
    /// flight, and the outbox is idle or [`ACK_EVERY`] lines wait.
    pub fn ping_due(&mut self, outbox_idle: bool) -> Option<String> {
        let waiting = self.unconfirmed.len();
        if self.pending.is_some() || waiting == 0 || (!outbox_idle && waiting < ACK_EVERY) {
            return None;
        }
        self.sent_pings += 1;
        let token = format!("{TOKEN_PREFIX}{}", self.sent_pings);
        self.pending = Some((token.clone(), waiting));
        Some(token)
    }

    /// A PONG's token: if it answers the PING in flight, the lines before it are delivered.
    pub fn pong(&mut self, token: &str) {
        if let Some((pending, covered)) = &self.pending {
            if pending == token {
                let covered = (*covered).min(self.unconfirmed.len());
                self.unconfirmed.drain(..covered);
                self.pending = None;
            }
        }
    }

    /// Whether a PONG token is one of ours (the session need not look further).
    pub fn is_ours(token: &str) -> bool {
        token.starts_with(TOKEN_PREFIX)
    }

    /// The connection is lost: the lines to say again, oldest first, marked `retried` (a line
    /// already said again is not given back a second time).
    pub fn undelivered(self) -> Vec<OutLine> {
        self.unconfirmed
            .into_iter()
            .filter(|line| !line.retried)
            .map(|line| OutLine {
                retried: true,
                ..line
            })
            .collect()
    }

    /// Lines written and not yet confirmed.
    pub fn unconfirmed(&self) -> usize {
        self.unconfirmed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::outbox::{Kind, Priority};

    fn line(text: &str) -> OutLine {
        OutLine::new("#ops", Kind::Privmsg, Priority::Announce, text.into())
    }

    fn texts(lines: Vec<OutLine>) -> Vec<String> {
        lines.into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn a_pong_confirms_what_was_written_before_its_ping() {
        let mut d = Delivery::default();
        assert_eq!(d.ping_due(true), None, "nothing to confirm");
        d.written(line("a"));
        d.written(line("b"));
        assert_eq!(
            d.ping_due(false),
            None,
            "a backlog waits for ACK_EVERY lines"
        );
        let token = d.ping_due(true).expect("idle: a PING is due");
        assert!(Delivery::is_ours(&token));
        d.written(line("c"));
        assert_eq!(d.ping_due(true), None, "one PING in flight at a time");
        d.pong("lever-12345");
        assert_eq!(d.unconfirmed(), 3, "the watchdog's PONG confirms nothing");
        d.pong(&token);
        assert_eq!(
            texts(d.undelivered()),
            ["c"],
            "c was written after the PING"
        );
    }

    #[test]
    fn a_backlog_asks_every_ack_every_lines() {
        let mut d = Delivery::default();
        for i in 0..ACK_EVERY - 1 {
            d.written(line(&i.to_string()));
            assert_eq!(d.ping_due(false), None);
        }
        d.written(line("last"));
        assert!(d.ping_due(false).is_some());
    }

    #[test]
    fn lines_are_given_back_once_and_memory_is_bounded() {
        let mut d = Delivery::default();
        d.written(line("first time"));
        d.written(OutLine {
            retried: true,
            ..line("said again already")
        });
        assert_eq!(texts(d.undelivered()), ["first time"]);
        let mut d = Delivery::default();
        for i in 0..MAX_UNCONFIRMED + 5 {
            d.written(line(&i.to_string()));
        }
        assert_eq!((d.unconfirmed(), d.forgotten), (MAX_UNCONFIRMED, 5));
        assert_eq!(d.undelivered()[0].text, "5");
    }
}
