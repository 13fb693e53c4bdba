//! `lever run`: the bot on IRC, until SIGTERM or SIGINT; SIGHUP rescans the plugins.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bot::{Bot, Part, StartError, VERSION};
use crate::chat::outbox::Priority;
use crate::config::Config;
use crate::irc::session::Deliver;
use crate::irc::Session;
use crate::store::lease::Fence;

/// Connects to IRC and serves until a signal asks lever to stop; then says what is queued,
/// QUITs, and returns. On a PostgreSQL store shared with other levers, it first waits as
/// standby ([`super::leader`]): off IRC, its HTTP side answering reads and sending writers to
/// the active lever, until it holds the lease.
pub async fn run(config: Arc<Config>) -> Result<Stopped, StartError> {
    let store = open_store(&config).await?;
    let shared = config.store.url.is_some();
    let node = config.store.node_name();
    let part = if shared {
        // Until it leads, the store refuses this lever's writes.
        store.fence(Some(Fence::standby(&node)));
        Part::Standby { active: None }
    } else {
        Part::Alone
    };
    let bot = Bot::standing_by(config.clone(), store.clone(), part)?;
    if bot.access.is_open() {
        tracing::warn!(
            "no [access] section: everyone in lever's channels may stage, deploy and hold; \
             add [access] to restrict"
        );
    }
    // Bind before anything else, so a taken port stops lever at start with a clear message.
    let listener = match &config.http {
        Some(http) => Some(crate::http::bind(http).await.map_err(StartError::Http)?),
        None => None,
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(handle_signals(bot.clone(), shutdown.clone()));
    let http = listener
        .map(|listener| tokio::spawn(crate::http::serve(listener, bot.clone(), shutdown.clone())));
    let held = match shared {
        true => {
            let public = config.http.as_ref().map(|h| h.public_url(&node));
            let lease = config.store.lease;
            tokio::select! {
                held = super::leader::acquire(&store, &bot.role, lease, public.as_deref()) => Some(held),
                _ = shutdown.cancelled() => {
                    tracing::info!("stopped while standby");
                    if let Some(http) = http {
                        let _ = http.await;
                    }
                    return Ok(Stopped::Asked);
                }
            }
        }
        false => None,
    };
    let lost = Arc::new(std::sync::OnceLock::new());
    if let Some(held) = &held {
        lead(&bot, held.clone(), shutdown.clone(), lost.clone());
    }
    bot.take_charge()?;
    // Before serving, so plugin commands answer from the first line.
    crate::commands::reload_plugins(&bot).await;
    tokio::spawn(reload_on_hangup(bot.clone()));
    tokio::spawn(forget_start_up_code(bot.clone()));
    serve(bot, shutdown).await;
    if let Some(http) = http {
        let _ = http.await;
    }
    if let Some(why) = lost.get() {
        return Ok(Stopped::LostLease(why.clone()));
    }
    if let Some(held) = held {
        // A clean stop hands over at once: a standby need not wait for the lease to run out.
        if let Err(e) = store.release_lease(&held.fence) {
            tracing::warn!(error = %e, "could not give up the lease; a standby takes over when it expires");
        }
    }
    Ok(Stopped::Asked)
}

/// Why `lever run` stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// A signal asked it to.
    Asked,
    /// It lost the lease (why): another lever acts now. lever exits 3, so a supervisor that
    /// restarts it brings it back as a standby.
    LostLease(String),
}

/// Opens the store; a PostgreSQL database out of reach is waited for (a server restarting, a
/// network coming back), so a supervisor restarting lever does not make it loop.
async fn open_store(config: &Config) -> Result<Arc<crate::store::Store>, StartError> {
    use crate::store::StoreError;
    let mut warned = false;
    loop {
        match Bot::open_store(config) {
            Err(StartError::Store(
                e @ (StoreError::Unreachable { .. } | StoreError::Busy { .. }),
            )) if config.store.url.is_some() => {
                if !warned {
                    tracing::warn!(error = %e, "waiting for the deploy log's database");
                    warned = true;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            other => {
                if warned && other.is_ok() {
                    tracing::info!("the deploy log's database answers");
                }
                return other;
            }
        }
    }
}

/// As the active lever: says so if it took over, and keeps the lease; once it is lost, stops
/// speaking, cancels its runs and shuts lever down with the reason in `lost` (lever exits 3,
/// for a supervisor to start it again, as a standby).
fn lead(
    bot: &Arc<Bot>,
    held: super::leader::Held,
    shutdown: CancellationToken,
    lost: Arc<std::sync::OnceLock<String>>,
) {
    let node = held.fence.node.clone();
    if let Some(from) = held.from.as_ref().filter(|from| **from != node) {
        let text = format!("lever is back (on {node}, took over from {from})");
        for channel in &bot.config.irc.channels {
            bot.outbox.say(channel, &text, Priority::Record);
        }
    }
    let bot = bot.clone();
    tokio::spawn(async move {
        let outbox = bot.outbox.clone();
        let why = super::leader::keep(&bot.store, held, bot.config.store.lease, |until| {
            outbox.speak_until(Some(until))
        })
        .await;
        bot.outbox.speak_until(Some(std::time::Instant::now()));
        // Nothing more is written either, though the lease may have a moment left by the
        // database's clock: this lever has stopped acting.
        bot.store.fence(Some(Fence::standby(bot.role.node())));
        bot.role.set(Part::Standby { active: None });
        tracing::error!(reason = %why, "lost leadership: stopping runs, leaving IRC and exiting, to come back as a standby");
        bot.deploys.cancel_all("lever (lost leadership)");
        let _ = lost.set(why);
        shutdown.cancel();
    });
}

/// Serves `bot` on IRC until `shutdown` is cancelled (the integration tests call this
/// directly, with a bot whose outbox they can fill).
pub async fn serve(bot: Arc<Bot>, shutdown: CancellationToken) {
    let deliver: Deliver = {
        let bot = bot.clone();
        Arc::new(move |msg| {
            crate::commands::dispatch(&bot, msg);
        })
    };
    let session = Session::new(
        bot.config.clone(),
        bot.outbox.clone(),
        deliver,
        VERSION.to_owned(),
        bot.irc.clone(),
        bot.store.clone(),
    );
    session.run(shutdown).await;
}

/// Once lever is first in its channels, its start is over: the code only that needed is given
/// back to the kernel (see [`crate::infra::resident`]).
async fn forget_start_up_code(bot: Arc<Bot>) {
    bot.irc.ready().await;
    match crate::infra::resident::forget_start_up_code() {
        Ok(done) => tracing::debug!(
            kb = done.kb,
            mappings = done.mappings,
            "start-up code given back to the kernel"
        ),
        Err(e) => tracing::debug!(error = %e, "cannot give start-up code back; it stays resident"),
    }
}

/// How long cancelled runs get to stop and record it before lever quits anyway.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// The first SIGTERM/SIGINT stops lever gracefully: a run in progress is let finish (a deploy
/// cut in half is worse than a late restart), and the channel is told. A second signal cancels
/// the runs (killing their process groups, recorded as cancelled) and stops. A third exits at
/// once.
async fn handle_signals(bot: Arc<Bot>, shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for signals; stop lever with SIGKILL");
        return;
    };
    let mut next_signal = async move || {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    };
    let name = next_signal().await;
    tracing::info!(signal = name, "stopping");
    let busy = bot.deploys.busy_targets();
    if !busy.is_empty() {
        let text = format!(
            "lever is stopping once the run on {} has finished (!cancel stops it sooner)",
            busy.join(", ")
        );
        tracing::warn!(runs = ?busy, "waiting for runs to finish; signal again to cancel them");
        for channel in &bot.config.irc.channels {
            bot.outbox.say(channel, &text, Priority::Record);
        }
        tokio::select! {
            _ = runs_finished(&bot) => {}
            name = next_signal() => {
                tracing::warn!(signal = name, "second signal: cancelling runs");
                bot.deploys.cancel_all("lever (shutting down)");
                let _ = tokio::time::timeout(CANCEL_WAIT, runs_finished(&bot)).await;
            }
        }
    }
    shutdown.cancel();
    let name = next_signal().await;
    tracing::warn!(signal = name, "another signal: exiting now");
    std::process::exit(1);
}

/// SIGHUP rescans the plugins, as `!reload` does.
async fn reload_on_hangup(bot: Arc<Bot>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot listen for SIGHUP; use !reload to rescan the plugins");
        return;
    };
    while hangup.recv().await.is_some() {
        let report = crate::commands::reload_plugins(&bot).await;
        tracing::info!("SIGHUP: {report}");
    }
}

/// Waits until no run is in progress, and its end has been announced.
async fn runs_finished(bot: &Bot) {
    while !bot.deploys.busy_targets().is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bot.activity.idle().await;
}
