//! Holds that lift themselves, and holds that must not be forgotten: a hold placed with a
//! duration expires (logged and announced as DEPLOY OK); one without is recalled in the
//! channel every `deploy.hold_reminder`, so a forgotten hold does not block a team silently.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::Deploys;
use crate::events::Event;
use crate::store::{now_ms, Millis};

/// How often holds are checked; also the most an expiry can be late.
const CHECK_EVERY: Duration = Duration::from_secs(5);

pub(super) async fn run(deploys: Arc<Deploys>) {
    // How many reminders each hold (by scope and placement time) has had.
    let mut reminded: HashMap<(Option<String>, Millis), u64> = HashMap::new();
    let mut ticker = tokio::time::interval(CHECK_EVERY);
    loop {
        ticker.tick().await;
        if let Err(e) = check(&deploys, &mut reminded) {
            tracing::error!(error = %e, "checking holds failed; retrying");
        }
    }
}

fn check(
    deploys: &Deploys,
    reminded: &mut HashMap<(Option<String>, Millis), u64>,
) -> Result<(), crate::store::StoreError> {
    let now = now_ms();
    let holds = deploys.store.holds()?;
    reminded.retain(|(scope, placed), _| {
        holds
            .iter()
            .any(|h| &h.target == scope && h.placed_at == *placed)
    });
    for hold in holds {
        match hold.expires_at {
            Some(expires) if expires <= now => {
                let _state = deploys.lock();
                let lifted = deploys.store.lift_hold(
                    hold.target.as_deref(),
                    Some(hold.placed_at),
                    "lever",
                    |h| {
                        let scope = h
                            .target
                            .as_ref()
                            .map(|t| format!(": {t}"))
                            .unwrap_or_default();
                        format!(
                            "DEPLOY OK{scope} ({}'s hold expired: {})",
                            h.by_nick, h.reason
                        )
                    },
                )?;
                if let Some((hold, entry)) = lifted {
                    tracing::info!(scope = hold.scope(), by = %hold.by_nick, "hold expired");
                    deploys.events.publish(Event::HoldLifted {
                        hold,
                        by: "lever".into(),
                        expired: true,
                        entry,
                    });
                }
            }
            Some(_) => {}
            None => {
                let every = deploys.config.deploy.hold_reminder.as_millis() as i64;
                if every == 0 {
                    continue;
                }
                let due = ((now - hold.placed_at) / every).max(0) as u64;
                let seen = reminded
                    .entry((hold.target.clone(), hold.placed_at))
                    .or_insert(0);
                if due > *seen {
                    *seen = due;
                    let held_for = Duration::from_millis((now - hold.placed_at) as u64);
                    deploys
                        .events
                        .publish(Event::HoldReminder { hold, held_for });
                }
            }
        }
    }
    Ok(())
}
