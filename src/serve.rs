//! `lever run`: the bot on IRC, until SIGTERM or SIGINT.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::bot::{Bot, VERSION};
use crate::config::Config;
use crate::irc::session::Deliver;
use crate::irc::Session;

/// Connects to IRC and serves until a signal asks lever to stop; then says what is queued,
/// QUITs, and returns.
pub async fn run(config: Arc<Config>) -> Result<(), crate::bot::StartError> {
    let bot = Bot::open(config.clone())?;
    if bot.access.is_open() {
        tracing::warn!(
            "no [access] section: everyone in lever's channels may stage, deploy and hold; \
             add [access] to restrict"
        );
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    serve(bot, shutdown).await;
    Ok(())
}

/// Serves `bot` on IRC until `shutdown` is cancelled (the integration tests call this
/// directly, with a bot whose outbox they can fill).
pub async fn serve(bot: Arc<Bot>, shutdown: CancellationToken) {
    let deliver: Deliver = {
        let bot = bot.clone();
        Arc::new(move |msg| {
            bot.handle(msg);
        })
    };
    let session = Session::new(
        bot.config.clone(),
        bot.outbox.clone(),
        deliver,
        VERSION.to_owned(),
    );
    session.run(shutdown).await;
}

/// First SIGTERM/SIGINT: shut down gracefully. Second: exit at once.
async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for signals; stop lever with SIGKILL");
        return;
    };
    for round in 0..2 {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        if round == 0 {
            tracing::info!(signal = name, "stopping");
            shutdown.cancel();
        } else {
            tracing::warn!(signal = name, "second signal: exiting now");
            std::process::exit(1);
        }
    }
}
