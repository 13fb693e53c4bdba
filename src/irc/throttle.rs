//! A token bucket that paces outgoing lines so servers do not disconnect lever for flooding.
//!
//! `burst` lines may go at once; then one line per `interval`. Protocol lines that must not wait
//! (PONG, JOIN) are [`Throttle::charge`]d without waiting, which may drive the bucket below zero:
//! the server counts every line, so the lines after them wait longer.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct Throttle {
    burst: f64,
    interval: Duration,
    tokens: f64,
    updated: Instant,
}

impl Throttle {
    /// `interval` zero turns throttling off.
    pub fn new(burst: u32, interval: Duration) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            interval,
            tokens: f64::from(burst.max(1)),
            updated: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        if self.interval.is_zero() {
            return;
        }
        let earned = now.duration_since(self.updated).as_secs_f64() / self.interval.as_secs_f64();
        self.tokens = (self.tokens + earned).min(self.burst);
        self.updated = now;
    }

    /// How long until one line may be sent (zero if now).
    pub fn wait_time(&mut self, now: Instant) -> Duration {
        if self.interval.is_zero() {
            return Duration::ZERO;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            self.interval.mul_f64(1.0 - self.tokens)
        }
    }

    /// Waits until one line may be sent. Cancel-safe: it changes nothing.
    pub async fn ready(&mut self) {
        let wait = self.wait_time(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Counts one line sent. Never waits; the balance may go negative (down to `-burst`).
    pub fn charge(&mut self, now: Instant) {
        if self.interval.is_zero() {
            return;
        }
        self.refill(now);
        self.tokens = (self.tokens - 1.0).max(-self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_one_line_per_interval() {
        let start = Instant::now();
        let mut t = Throttle::new(4, Duration::from_secs(1));
        t.updated = start;
        for _ in 0..4 {
            assert_eq!(t.wait_time(start), Duration::ZERO);
            t.charge(start);
        }
        assert_eq!(t.wait_time(start), Duration::from_secs(1));
        let later = start + Duration::from_millis(250);
        assert_eq!(t.wait_time(later), Duration::from_millis(750));
        let full = start + Duration::from_secs(100);
        assert_eq!(t.wait_time(full), Duration::ZERO);
        for _ in 0..4 {
            t.charge(full);
        }
        assert!(
            t.wait_time(full) > Duration::ZERO,
            "refill is capped at the burst"
        );
    }

    #[test]
    fn charges_without_waiting_push_later_lines_back() {
        let start = Instant::now();
        let mut t = Throttle::new(2, Duration::from_secs(1));
        t.updated = start;
        for _ in 0..3 {
            t.charge(start);
        }
        assert_eq!(t.wait_time(start), Duration::from_secs(2));
    }

    #[test]
    fn zero_interval_never_waits() {
        let now = Instant::now();
        let mut t = Throttle::new(1, Duration::ZERO);
        for _ in 0..1000 {
            t.charge(now);
        }
        assert_eq!(t.wait_time(now), Duration::ZERO);
    }
}
