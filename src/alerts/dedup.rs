//! The de-dup memory: which status each alert was last announced with, so that Alertmanager
//! re-sending a group does not announce it again.
//!
//! Bounded two ways. By time: an alert Alertmanager has not re-sent for `remember_for` (it
//! re-sends a firing alert at least every `repeat_interval`) is forgotten, and a resolved one
//! sooner, since only the re-sends of its resolution remain to be caught. By count: past
//! `remember_alerts` entries, resolved alerts go first, then those heard of longest ago.
//! Forgetting can only cost a repeat (an alert re-sent after being forgotten is announced
//! again), never a lost announcement.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The longest a resolved alert is remembered: Alertmanager re-sends a resolution for a few
/// group intervals (minutes) at most.
pub const RESOLVED_FOR: Duration = Duration::from_secs(3600);

struct Entry {
    resolved: bool,
    /// When the alert was last heard of with this status.
    seen: Instant,
    /// Order of hearing, to evict the stalest first even among alerts of one notification.
    order: u64,
}

pub struct Dedup {
    entries: HashMap<String, Entry>,
    cap: usize,
    remember_for: Duration,
    next_order: u64,
}

impl Dedup {
    /// A memory of at most `cap` alerts, each kept until unheard of for `remember_for`.
    pub fn new(cap: usize, remember_for: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            cap: cap.max(1),
            remember_for,
            next_order: 0,
        }
    }

    /// How many alerts are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether alert `key` is news with this status (then it is to be announced). Either way it
    /// is remembered as heard of now, so an alert Alertmanager keeps re-sending stays known.
    pub fn is_new(&mut self, key: &str, resolved: bool, now: Instant) -> bool {
        let order = self.next_order;
        self.next_order += 1;
        if let Some(entry) = self.entries.get_mut(key) {
            let new = entry.resolved != resolved;
            *entry = Entry {
                resolved,
                seen: now,
                order,
            };
            return new;
        }
        self.entries.insert(
            key.to_owned(),
            Entry {
                resolved,
                seen: now,
                order,
            },
        );
        if self.entries.len() > self.cap {
            self.evict();
        }
        true
    }

    /// Forgets what is past its useful time, and gives memory back after a storm.
    pub fn forget_expired(&mut self, now: Instant) {
        let firing_for = self.remember_for;
        let resolved_for = RESOLVED_FOR.min(firing_for);
        self.entries.retain(|_, e| {
            let kept_for = if e.resolved { resolved_for } else { firing_for };
            now.saturating_duration_since(e.seen) < kept_for
        });
        if self.entries.capacity() > 64 && self.entries.len() < self.entries.capacity() / 4 {
            self.entries.shrink_to_fit();
        }
    }

    /// Makes room: down to 7/8 of the cap at once (so a storm sorts once per cap/8 new
    /// alerts, not once per alert), resolved alerts first, then the stalest.
    fn evict(&mut self) {
        let keep = self.cap - self.cap / 8;
        let mut ranked: Vec<(bool, u64)> = self
            .entries
            .values()
            .map(|e| (!e.resolved, e.order))
            .collect();
        let drop = ranked.len().saturating_sub(keep);
        if drop == 0 {
            return;
        }
        ranked.select_nth_unstable(drop - 1);
        let last_dropped = ranked[drop - 1];
        self.entries
            .retain(|_, e| (!e.resolved, e.order) > last_dropped);
        tracing::warn!(
            remembered = self.entries.len(),
            cap = self.cap,
            "alert de-dup memory was full; forgot resolved and the longest unheard-of alerts (they may be announced again)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn a_status_is_news_once_and_a_change_is_news_again() {
        let mut d = Dedup::new(10, DAY);
        let now = Instant::now();
        assert!(d.is_new("a", false, now));
        assert!(!d.is_new("a", false, now));
        assert!(d.is_new("a", true, now));
        assert!(!d.is_new("a", true, now));
        assert!(d.is_new("a", false, now), "firing again after resolving");
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn the_count_never_passes_the_cap_and_the_stalest_go_first() {
        let mut d = Dedup::new(64, DAY);
        let now = Instant::now();
        for i in 0..10_000 {
            d.is_new(&format!("storm-{i}"), false, now);
            assert!(d.len() <= 64);
        }
        assert!(!d.is_new("storm-9999", false, now), "the newest are kept");
        assert!(d.is_new("storm-0", false, now), "the oldest were forgotten");
    }

    #[test]
    fn resolved_alerts_are_evicted_before_firing_ones() {
        let mut d = Dedup::new(16, DAY);
        let now = Instant::now();
        for i in 0..8 {
            d.is_new(&format!("firing-{i}"), false, now);
        }
        for i in 0..9 {
            d.is_new(&format!("resolved-{i}"), true, now);
        }
        assert!(d.len() <= 16);
        for i in 0..8 {
            assert!(!d.is_new(&format!("firing-{i}"), false, now), "firing-{i}");
        }
    }

    #[test]
    fn alerts_unheard_of_are_forgotten_and_re_sends_keep_them() {
        let hour = Duration::from_secs(3600);
        let mut d = Dedup::new(100, 4 * hour);
        let t0 = Instant::now();
        d.is_new("still-firing", false, t0);
        d.is_new("gone-quiet", false, t0);
        d.is_new("resolved", true, t0);
        // Alertmanager re-sends what still fires.
        assert!(!d.is_new("still-firing", false, t0 + 3 * hour));
        d.forget_expired(t0 + 2 * hour);
        assert!(
            !d.is_new("gone-quiet", false, t0),
            "not yet past remember_for"
        );
        d.forget_expired(t0 + 4 * hour + Duration::from_secs(1));
        assert_eq!(
            d.len(),
            1,
            "the resolved one went after an hour, the quiet one after 4h"
        );
        assert!(!d.is_new("still-firing", false, t0 + 5 * hour));
    }
}
