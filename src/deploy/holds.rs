//! Holds: NO DEPLOY PLEASE and DEPLOY OK. Placing and lifting a hold take the run gate, so a
//! hold and a deploy cannot cross; [`Deploys::hold_gate`] is what a hold refuses when a run
//! would start. Expiry and reminders run in [`super::hold_clock`], started by
//! [`Deploys::start_clocks`].

use std::sync::Arc;
use std::time::Duration;

use super::{hold_clock, refused, same_person, unrecorded, DeployError, Deploys};
use crate::chat::message::Identity;
use crate::chat::text::human_duration;
use crate::events::Event;
use crate::store::{format_time, now_ms, Hold, StoreError};

/// The longest a hold may be placed for with a duration; longer holds are simply open-ended.
pub const MAX_HOLD: Duration = Duration::from_secs(366 * 24 * 3600);

impl Deploys {
    /// Starts the background tasks: expiring holds and reminding of old ones, writing run ends
    /// the store could not take when they happened, and moving the push queues' turns on.
    pub fn start_clocks(self: &Arc<Self>) {
        tokio::spawn(hold_clock::run(self.clone()));
        tokio::spawn(unrecorded::retry(self.clone()));
        tokio::spawn(super::queue::run(self.clone()));
    }

    /// NO DEPLOY PLEASE: holds `target` (`None`: every target) until lifted or, with a
    /// duration, until it expires.
    pub fn hold(
        &self,
        target: Option<&str>,
        who: &Identity,
        reason: &str,
        duration: Option<Duration>,
    ) -> Result<(Hold, Option<String>), DeployError> {
        if let Some(target) = target {
            self.target(target)?;
        }
        if duration.is_some_and(|d| d > MAX_HOLD) {
            return refused(format!(
                "a hold can last at most {} days; leave the duration out to hold until !unhold",
                MAX_HOLD.as_secs() / 86_400
            ));
        }
        let _gate = self.gate()?;
        let holds = self.holds_in_force()?;
        if let Some(existing) = holds.iter().find(|h| h.target.as_deref() == target) {
            if !same_holder(existing, who) {
                return refused(format!(
                    "{} is already held by {} since {} UTC: {} (lift it with !unhold{} first)",
                    existing.scope(),
                    existing.by_nick,
                    format_time(existing.placed_at),
                    existing.reason,
                    target.map(|t| format!(" {t}")).unwrap_or_default()
                ));
            }
        }
        let placed_at = now_ms();
        let hold = Hold {
            target: target.map(str::to_owned),
            by_nick: who.nick.clone(),
            by_account: who.account.clone(),
            by_source: who.source(),
            reason: reason.to_owned(),
            placed_at,
            expires_at: duration
                .map(|d| placed_at.saturating_add(d.as_millis().min(i64::MAX as u128) as i64)),
        };
        let mut text = "NO DEPLOY PLEASE".to_owned();
        if let Some(target) = target {
            text.push_str(&format!(": {target}"));
        }
        text.push_str(&format!(" ({reason})"));
        if let Some(until) = hold.expires_at {
            text.push_str(&format!(" until {} UTC", format_time(until)));
        }
        text.push_str(from_the_page(who));
        let entry = self.store.place_hold(&hold, &text)?;
        // A run already going is not stopped by a hold; say so.
        let running = self
            .lock()
            .active
            .iter()
            .find(|(t, _)| hold.covers(t))
            .map(|(t, a)| format!("{} is {} {t} right now; the hold applies from the next deploy (!cancel {t} stops it)", a.user, a.phase_verb()));
        self.events.publish(Event::HoldPlaced {
            hold: hold.clone(),
            entry,
        });
        Ok((hold, running))
    }

    /// DEPLOY OK: lifts the hold on `target`; with none named, the hold on every target, or
    /// (unless `exact`, as the API asks) the only hold there is.
    pub fn unhold(
        &self,
        target: Option<&str>,
        who: &Identity,
        exact: bool,
    ) -> Result<Hold, DeployError> {
        if let Some(target) = target {
            self.target(target)?;
        }
        let _gate = self.gate()?;
        let holds = self.store.holds()?;
        let scope = match target {
            Some(t) => Some(t.to_owned()),
            None if exact || holds.iter().any(|h| h.target.is_none()) => None,
            None => match holds.as_slice() {
                [] => return refused("nothing is held"),
                [only] => only.target.clone(),
                many => {
                    let names: Vec<String> = many
                        .iter()
                        .map(|h| format!("{} ({})", h.scope(), h.by_nick))
                        .collect();
                    return refused(format!(
                        "several holds: {}; say which: !unhold <target>",
                        names.join(", ")
                    ));
                }
            },
        };
        let lifted = self
            .store
            .lift_hold(scope.as_deref(), None, &who.nick, |hold| {
                let mut text = "DEPLOY OK".to_owned();
                if let Some(t) = &hold.target {
                    text.push_str(&format!(": {t}"));
                }
                if !same_holder(hold, who) {
                    text.push_str(&format!(
                        " (lifted {}'s hold: {})",
                        hold.by_nick, hold.reason
                    ));
                }
                text.push_str(from_the_page(who));
                text
            })?;
        let Some((hold, entry)) = lifted else {
            return refused(match &scope {
                Some(t) if holds.iter().any(|h| h.target.is_none()) => {
                    format!("{t} has no hold of its own; every target is held: !unhold lifts that")
                }
                Some(t) => format!("{t} is not held"),
                None if exact && !holds.is_empty() => "there is no hold on every target".to_owned(),
                None => "nothing is held".to_owned(),
            });
        };
        self.events.publish(Event::HoldLifted {
            hold: hold.clone(),
            by: who.nick.clone(),
            expired: false,
            entry,
        });
        Ok(hold)
    }

    /// Every hold in force. A hold past its expiry no longer counts, even in the moments
    /// before the hold clock lifts it.
    pub fn holds(&self) -> Result<Vec<Hold>, DeployError> {
        Ok(self.holds_in_force()?)
    }

    pub(super) fn holds_in_force(&self) -> Result<Vec<Hold>, StoreError> {
        let now = now_ms();
        let mut holds = self.store.holds()?;
        holds.retain(|h| h.expires_at.is_none_or(|at| at > now));
        Ok(holds)
    }

    /// Refuses a deploy while a hold covers `target`, unless the holder deploys through their
    /// own hold or an admin forces it; either way the note says so for the log.
    pub(super) fn hold_gate(
        &self,
        target: &str,
        who: &Identity,
        force: bool,
    ) -> Result<Option<String>, DeployError> {
        let holds: Vec<Hold> = self
            .holds_in_force()?
            .into_iter()
            .filter(|h| h.covers(target))
            .collect();
        let Some(hold) = holds.first() else {
            return Ok(None);
        };
        if holds.iter().all(|h| same_holder(h, who)) {
            return Ok(Some(format!(
                "through {}'s own hold ({})",
                who.nick, hold.reason
            )));
        }
        let other = holds.iter().find(|h| !same_holder(h, who)).unwrap_or(hold);
        if force {
            return Ok(Some(format!(
                "FORCED through {}'s hold ({})",
                other.by_nick, other.reason
            )));
        }
        let held_for = Duration::from_millis((now_ms() - other.placed_at).max(0) as u64);
        let until = other
            .expires_at
            .map(|at| format!(" (lifts by itself at {} UTC)", format_time(at)))
            .unwrap_or_default();
        let unhold = format!(
            "!unhold{}",
            other
                .target
                .as_ref()
                .map(|t| format!(" {t}"))
                .unwrap_or_default()
        );
        // A hold lever placed itself (for an alert) has nobody to ask.
        let ask = if other
            .by_nick
            .eq_ignore_ascii_case(&self.config.irc.nickname)
        {
            format!("{unhold} when it is safe")
        } else {
            format!("Ask {}, or {unhold} when it is safe", other.by_nick)
        };
        refused(format!(
            "{} is held: NO DEPLOY PLEASE by {} since {} UTC ({} ago): {}{until}. {ask}",
            target,
            other.by_nick,
            format_time(other.placed_at),
            human_duration(held_for),
            other.reason,
        ))
    }
}

/// What the deploy log adds to something done on the deploy page.
pub(super) fn from_the_page(who: &Identity) -> &'static str {
    if who.is_web() {
        " — from the deploy page"
    } else {
        ""
    }
}

/// Whether `who` placed `hold`: the same services account, else the same `nick!user@host`.
pub fn same_holder(hold: &Hold, who: &Identity) -> bool {
    let holder = Identity {
        nick: String::new(),
        user: String::new(),
        host: String::new(),
        account: hold.by_account.clone(),
    };
    match (&hold.by_account, &who.account) {
        (Some(_), _) => same_person(&holder, who),
        (None, None) => hold.by_source.eq_ignore_ascii_case(&who.source()),
        (None, Some(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::bot;
    use crate::deploy::tests::person;
    use crate::deploy::DeployStart;

    #[tokio::test]
    async fn a_hold_blocks_others_but_not_its_holder_and_force_passes_it_loudly() {
        let bot = bot("[targets.site]\n[[targets.site.deploy]]\nname = \"ok\"\nrun = [\"true\"]\n");
        let deploys = &bot.deploys;
        let mygrant = person("mygrant", Some("mygrant"));
        deploys.hold(None, &mygrant, "db migration", None).unwrap();
        let Err(DeployError::Refused(why)) =
            deploys.deploy("site", &person("harmes", Some("harmes")), false, None)
        else {
            panic!("a held target deployed");
        };
        assert!(
            why.starts_with("site is held: NO DEPLOY PLEASE by mygrant since "),
            "{why}"
        );
        assert!(
            why.ends_with(": db migration. Ask mygrant, or !unhold when it is safe"),
            "{why}"
        );
        // The same account under another nick is the same person.
        let DeployStart::Started(run) = deploys
            .deploy(
                "site",
                &person("mygrant_away", Some("mygrant")),
                false,
                None,
            )
            .unwrap()
        else {
            panic!("no confirm configured");
        };
        assert_eq!(
            run.note.as_deref(),
            Some("through mygrant_away's own hold (db migration)")
        );
        bot.activity.idle().await;
        let DeployStart::Started(run) = deploys
            .deploy("site", &person("root", Some("root")), true, None)
            .unwrap()
        else {
            panic!("no confirm configured");
        };
        assert_eq!(
            run.note.as_deref(),
            Some("FORCED through mygrant's hold (db migration)")
        );
        bot.activity.idle().await;
        let log = bot.store.log(1, Some("site")).unwrap();
        assert!(log[0].text.starts_with("site deployed"), "{:?}", log[0]);
        let started = bot.store.log(2, Some("site")).unwrap();
        assert!(
            started[1]
                .text
                .contains("FORCED through mygrant's hold (db migration)"),
            "{started:?}"
        );
    }

    #[tokio::test]
    async fn a_nick_without_the_account_is_not_the_holder() {
        let bot = bot("[targets.site]\n[[targets.site.deploy]]\nname = \"ok\"\nrun = [\"true\"]\n");
        bot.deploys
            .hold(Some("site"), &person("alice", Some("alice")), "mine", None)
            .unwrap();
        let impostor = person("alice", None);
        assert!(matches!(
            bot.deploys.deploy("site", &impostor, false, None),
            Err(DeployError::Refused(_))
        ));
        assert!(matches!(
            bot.deploys.hold(Some("site"), &impostor, "taking over", None),
            Err(DeployError::Refused(why)) if why.starts_with("site is already held by alice")
        ));
    }
}
