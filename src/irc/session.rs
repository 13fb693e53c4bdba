//! Keeps lever on the network: connect, register, serve, and reconnect forever.
//!
//! One task owns a connection. It reads lines and hands them to the protocol state
//! ([`Conn`]); PRIVMSGs for the bot are delivered to the command layer through a callback that
//! never blocks (handlers run in their own tasks). In the same loop it takes lines from the
//! outbox as the throttle allows, splits them to fit the wire, and passes them to a writer
//! task, so a slow socket never stops the reading.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::delivery::Delivery;
use super::state::{message_line, redact, Conn, Disconnect};
use super::sts::Sts;
use super::throttle::Throttle;
use super::transport::{self, LineDecoder, Route, Stream};
use crate::chat::claim::{Claim, Standing};
use crate::chat::message::Message;
use crate::chat::outbox::{Kind, OutLine, Outbox};
use crate::chat::text;
use crate::config::Config;

/// Receives every message for the command layer. Must not block.
pub type Deliver = Arc<dyn Fn(Message) + Send + Sync>;

/// A connection that stayed ready this long was healthy: the next failure retries quickly.
const STABLE: Duration = Duration::from_secs(30);
/// The longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// On shutdown, how long queued lines may take to go out before lever quits anyway.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);
/// After a claim could not be asked about (the store out of reach), how long before lever
/// says anything more: the line waits at the head of the outbox.
const CLAIM_RETRY: Duration = Duration::from_secs(1);
/// After QUIT, how long to wait for the server to close the connection.
const QUIT_WAIT: Duration = Duration::from_secs(2);

/// The IRC side of the bot.
pub struct Session {
    cfg: Arc<Config>,
    outbox: Outbox,
    deliver: Deliver,
    version: String,
    status: Arc<Status>,
    /// Where STS policies are kept.
    store: Arc<crate::store::Store>,
    /// The TLS port a plain connection's STS offer sent lever to, for this run.
    upgraded: std::sync::Mutex<Option<u16>>,
}

/// What the rest of lever may know of the connection: whether lever is registered and in its
/// channels, and under which nick (for `/readyz` and `/metrics`).
#[derive(Debug, Default)]
pub struct Status {
    ready: std::sync::atomic::AtomicBool,
    nick: std::sync::Mutex<String>,
    became_ready: tokio::sync::Notify,
}

impl Status {
    /// Registered, identified and joined (or joining): lines flow.
    pub fn is_ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The nick lever has on the network (empty before the first registration).
    pub fn nick(&self) -> String {
        self.nick.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Returns once lever is ready (at once if it is).
    pub async fn ready(&self) {
        loop {
            let woken = self.became_ready.notified();
            if self.is_ready() {
                return;
            }
            woken.await;
        }
    }

    fn set(&self, ready: bool, nick: Option<&str>) {
        self.ready
            .store(ready, std::sync::atomic::Ordering::Relaxed);
        if let Some(nick) = nick {
            *self.nick.lock().unwrap_or_else(|p| p.into_inner()) = nick.to_owned();
        }
        if ready {
            self.became_ready.notify_waiters();
        }
    }
}

/// How one connection ended.
enum Ended {
    Shutdown,
    Lost {
        reason: String,
        ready_for: Duration,
    },
    /// The server's STS policy wants TLS: reconnect at once.
    Upgrade,
}

impl Session {
    pub fn new(
        cfg: Arc<Config>,
        outbox: Outbox,
        deliver: Deliver,
        version: String,
        status: Arc<Status>,
        store: Arc<crate::store::Store>,
    ) -> Self {
        Self {
            cfg,
            outbox,
            deliver,
            version,
            status,
            store,
            upgraded: std::sync::Mutex::default(),
        }
    }

    /// How to reach the server now: over TLS on the port an STS policy names (kept, or
    /// learned on this run), else as configured.
    fn route(&self) -> Route {
        let server = &self.cfg.irc.server;
        let kept = match self.store.sts_policy(server) {
            Ok(policy) => policy,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the server's STS policy from the store");
                None
            }
        };
        let upgraded = *self.upgraded.lock().unwrap_or_else(|p| p.into_inner());
        match (kept, upgraded) {
            (Some(policy), _) => {
                if !self.cfg.irc.tls || policy.port != self.cfg.port() {
                    tracing::info!(
                        %server, port = policy.port,
                        until = %crate::store::format_time(policy.expires_at),
                        "the server's STS policy: TLS only"
                    );
                }
                Route {
                    tls: true,
                    port: policy.port,
                }
            }
            (None, Some(port)) => Route { tls: true, port },
            (None, None) => Route::configured(&self.cfg),
        }
    }

    /// Acts on the server's `sts` value; whether lever must leave this (plain) connection for
    /// TLS now.
    fn on_sts(&self, value: &str, route: Route) -> bool {
        let server = &self.cfg.irc.server;
        match super::sts::decide(value, route.tls) {
            Sts::Upgrade { port } => {
                tracing::info!(%server, port, "the server requires TLS (STS): reconnecting over TLS");
                *self.upgraded.lock().unwrap_or_else(|p| p.into_inner()) = Some(port);
                return true;
            }
            Sts::Keep { duration } => {
                let policy = crate::store::sts::StsPolicy {
                    host: server.clone(),
                    port: route.port,
                    expires_at: crate::store::now_ms()
                        .saturating_add(duration.saturating_mul(1000).min(i64::MAX as u64) as i64),
                };
                match self.store.save_sts_policy(&policy) {
                    Ok(()) => tracing::info!(
                        %server, port = route.port, seconds = duration,
                        "keeping the server's STS policy: TLS only, also after a restart"
                    ),
                    Err(e) => tracing::warn!(error = %e, "cannot keep the server's STS policy"),
                }
            }
            Sts::Forget => {
                if let Err(e) = self.store.drop_sts_policy(server) {
                    tracing::warn!(error = %e, "cannot forget the server's STS policy");
                }
            }
            Sts::Nothing => {}
        }
        false
    }

    /// Serves until `shutdown` is cancelled, reconnecting with exponential backoff and jitter.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0;
        loop {
            let ended = self.connect_once(&shutdown).await;
            self.status.set(false, None);
            let (reason, ready_for) = match ended {
                Ended::Shutdown => return,
                Ended::Upgrade => continue,
                Ended::Lost { reason, ready_for } => (reason, ready_for),
            };
            if ready_for >= STABLE {
                failures = 0;
            }
            let delay = backoff(failures);
            failures += 1;
            tracing::warn!(
                %reason,
                queued = self.outbox.len(),
                "disconnected; reconnecting in {:.1} s",
                delay.as_secs_f64()
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    async fn connect_once(&self, shutdown: &CancellationToken) -> Ended {
        let cfg = &self.cfg;
        let route = self.route();
        tracing::info!(server = %cfg.irc.server, port = route.port, tls = route.tls, "connecting");
        let stream = tokio::select! {
            stream = transport::connect(cfg, route) => stream,
            _ = shutdown.cancelled() => return Ended::Shutdown,
        };
        let (stream, quick_ack) = match stream {
            Ok(connected) => connected,
            Err(e) => return lost(e.to_string(), None),
        };
        let (read, write) = tokio::io::split(stream);
        let mut lines = FramedRead::new(read, LineDecoder::default());
        let (wire, wire_rx) = mpsc::unbounded_channel();
        let mut writer = tokio::spawn(write_lines(write, wire_rx));
        let mut conn = Conn::new(cfg.clone(), &self.version, Instant::now());
        let mut throttle = Throttle::new(cfg.irc.burst, cfg.irc.line_interval);
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut ready_since: Option<Instant> = None;
        let mut quit_by: Option<Instant> = None;
        let mut delivery = Delivery::default();
        // A line whose claim is being taken (see `chat::claim`), and the task taking it.
        let mut claiming: Option<(OutLine, Claiming)> = None;
        let mut claim_retry_at: Option<Instant> = None;
        let send_protocol = |conn: &mut Conn, throttle: &mut Throttle| {
            for line in conn.take_output() {
                tracing::trace!(line = %redact(&line), ">>");
                throttle.charge(Instant::now());
                let _ = wire.send(line);
            }
        };
        // Asks the server to confirm what lever said, when that is due (see `delivery`): in a
        // backlog every ACK_EVERY lines, else on the next tick once the outbox is idle (so a
        // burst of replies is not thinned out by PINGs).
        let ask_confirmation = |delivery: &mut Delivery, throttle: &mut Throttle, idle: bool| {
            if let Some(token) = delivery.ping_due(idle) {
                throttle.charge(Instant::now());
                let _ = wire.send(format!("PING :{token}\r\n"));
            }
        };
        send_protocol(&mut conn, &mut throttle);

        let ended = loop {
            let now = Instant::now();
            let retry =
                claim_retry_at.map_or(Duration::ZERO, |at| at.saturating_duration_since(now));
            let wait = throttle.wait_time(now).max(retry);
            let outbox = &self.outbox;
            tokio::select! {
                biased;
                _ = shutdown.cancelled(), if quit_by.is_none() => {
                    tracing::info!(queued = outbox.len(), "shutting down: sending what is queued, then QUIT");
                    quit_by = Some(Instant::now() + SHUTDOWN_FLUSH);
                }
                line = lines.next() => {
                    let line = match line {
                        Some(Ok(line)) => line,
                        Some(Err(e)) => break lost(format!("read failed: {e}"), ready_since),
                        None => break lost("the server closed the connection".into(), ready_since),
                    };
                    tracing::trace!(%line, "<<");
                    match conn.handle(&line, Instant::now()) {
                        Ok(Some(message)) => (self.deliver)(message),
                        Ok(None) => {}
                        Err(Disconnect(reason)) => break lost(reason, ready_since),
                    }
                    if let Some(value) = conn.take_sts() {
                        if self.on_sts(&value, route) {
                            // Nothing more on the plain connection, registration included.
                            break Ended::Upgrade;
                        }
                    }
                    let acks = conn.take_acks();
                    if !acks.is_empty() {
                        // Our PING's answer needs no reply: acknowledge it now, not in 40 ms.
                        quick_ack.now();
                    }
                    for token in acks {
                        delivery.pong(&token);
                    }
                    send_protocol(&mut conn, &mut throttle);
                    if conn.is_ready() && ready_since.is_none() {
                        ready_since = Some(Instant::now());
                        self.status.set(true, Some(conn.nick()));
                        tracing::info!(nick = conn.nick(), queued = outbox.len(), "ready; sending queued lines");
                    }
                }
                line = async {
                    // Even a zero sleep waits for the next timer tick (~1 ms): skip it.
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    outbox.next().await
                }, if conn.is_ready() && outbox.may_speak() && claiming.is_none() => {
                    // Checked again: lever may have been paused while it waited for the line.
                    if !outbox.may_speak() {
                        outbox.put_back(line);
                        continue;
                    }
                    match line.claim.as_ref().map(Claim::standing) {
                        Some(Standing::Open) => claiming = Some(start_claim(line)),
                        Some(Standing::Lost) => {
                            tracing::debug!(line = %line.text, "not said: another lever said it");
                            outbox.sent();
                        }
                        None | Some(Standing::Won) => {
                            self.send_line(&mut conn, &mut throttle, &wire, &mut delivery, line);
                            ask_confirmation(&mut delivery, &mut throttle, false);
                        }
                    }
                }
                taken = async { (&mut claiming.as_mut().expect("claiming").1).await }, if claiming.is_some() => {
                    let (line, _) = claiming.take().expect("claiming");
                    match taken.unwrap_or_else(|e| Err(format!("the claim stopped: {e}"))) {
                        Ok(Standing::Won) if outbox.may_speak() => {
                            self.send_line(&mut conn, &mut throttle, &wire, &mut delivery, line);
                            ask_confirmation(&mut delivery, &mut throttle, false);
                        }
                        Ok(Standing::Lost) => {
                            tracing::info!(line = %line.text, "not said: another lever has said it, or this one is no longer active");
                            outbox.sent();
                        }
                        Ok(_) => outbox.put_back(line),
                        Err(why) => {
                            tracing::warn!(error = %why, "cannot mark an announcement said; it waits");
                            outbox.put_back(line);
                            claim_retry_at = Some(Instant::now() + CLAIM_RETRY);
                        }
                    }
                }
                _ = ticker.tick() => {
                    if let Err(Disconnect(reason)) = conn.tick(Instant::now()) {
                        break lost(reason, ready_since);
                    }
                    send_protocol(&mut conn, &mut throttle);
                    if conn.is_ready() {
                        ask_confirmation(&mut delivery, &mut throttle, self.outbox.is_empty());
                    }
                }
                result = &mut writer => {
                    let reason = match result {
                        Ok(Err(e)) => format!("write failed: {e}"),
                        _ => "the writer stopped".to_owned(),
                    };
                    break lost(reason, ready_since);
                }
            }
            if let Some(deadline) = quit_by {
                // Nothing more can go out when lever may not speak (it lost the lease).
                let mute = !outbox.may_speak();
                if !conn.is_ready() || outbox.is_empty() || mute || Instant::now() >= deadline {
                    if let Some((line, _)) = claiming.take() {
                        outbox.put_back(line);
                    }
                    self.quit(conn, wire, writer, lines).await;
                    return Ended::Shutdown;
                }
            }
        };
        if let Some((line, _)) = claiming.take() {
            self.outbox.put_back(line);
        }
        let undelivered = delivery.undelivered();
        if !undelivered.is_empty() {
            tracing::warn!(
                lines = undelivered.len(),
                "the connection was lost before the server confirmed what lever said; it will be said again"
            );
            self.outbox.give_back(undelivered);
        }
        ended
    }

    /// Sends one outbox line, or as much of it as fits; the rest goes back to the outbox.
    fn send_line(
        &self,
        conn: &mut Conn,
        throttle: &mut Throttle,
        wire: &mpsc::UnboundedSender<String>,
        delivery: &mut Delivery,
        line: OutLine,
    ) {
        let verb = match line.kind {
            Kind::Notice => "NOTICE",
            Kind::Privmsg => "PRIVMSG",
            Kind::Topic => "TOPIC",
        };
        let max = conn.max_text_bytes(verb, &line.target);
        let (piece, rest) = text::split_to_fit(&line.text, max);
        // A topic is one line: what does not fit is cut, not said as a second topic.
        let rest = if line.kind == Kind::Topic { "" } else { rest };
        let out = message_line(line.kind, &line.target, piece);
        tracing::trace!(line = %out.trim_end(), ">>");
        throttle.charge(Instant::now());
        let _ = wire.send(out);
        delivery.written(OutLine {
            text: piece.to_owned(),
            ..line.clone()
        });
        if rest.is_empty() {
            self.outbox.sent();
        } else {
            let rest = rest.to_owned();
            self.outbox.put_back(OutLine { text: rest, ..line });
        }
    }

    async fn quit(
        &self,
        mut conn: Conn,
        wire: mpsc::UnboundedSender<String>,
        writer: tokio::task::JoinHandle<std::io::Result<()>>,
        mut lines: FramedRead<tokio::io::ReadHalf<Box<dyn Stream>>, LineDecoder>,
    ) {
        let unsent = self.outbox.len();
        if unsent > 0 {
            tracing::warn!(unsent, "quitting with lines still queued");
        }
        let quit = irc::proto::Command::QUIT(Some(self.cfg.irc.quit_message.clone()));
        let _ = wire.send(format!("{}\r\n", String::from(&quit)));
        drop(wire); // the writer finishes once everything before QUIT is written
        let _ = tokio::time::timeout(QUIT_WAIT, writer).await;
        // Read until the server closes the link, answering nothing more.
        let _ = tokio::time::timeout(QUIT_WAIT, async {
            while let Some(Ok(line)) = lines.next().await {
                let _ = conn.handle(&line, Instant::now());
            }
        })
        .await;
        tracing::info!("disconnected from IRC");
    }
}

/// The task taking a line's claim: how it stands, or why the store could not be asked.
type Claiming = tokio::task::JoinHandle<Result<Standing, String>>;

/// Takes `line`'s claim in a task of its own, so the session goes on reading meanwhile.
fn start_claim(line: OutLine) -> (OutLine, Claiming) {
    let claim = line.claim.clone().expect("a line with a claim");
    // The store's call blocks; it moves off the runtime by itself (`infra::blocking`).
    (line, tokio::spawn(async move { claim.take() }))
}

fn lost(reason: String, ready_since: Option<Instant>) -> Ended {
    Ended::Lost {
        reason,
        ready_for: ready_since.map_or(Duration::ZERO, |t| t.elapsed()),
    }
}

/// Exponential backoff with jitter: about 1 s, 2 s, 4 s ... up to 60 s, each drawn from the
/// upper half of its range so that many bots do not reconnect in step.
fn backoff(failures: u32) -> Duration {
    let ceiling = Duration::from_secs(1u64 << failures.min(6)).min(MAX_BACKOFF);
    ceiling.mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// Writes wire lines in order; batches what is ready before each flush.
async fn write_lines(
    mut out: WriteHalf<Box<dyn Stream>>,
    mut lines: mpsc::UnboundedReceiver<String>,
) -> std::io::Result<()> {
    while let Some(line) = lines.recv().await {
        out.write_all(line.as_bytes()).await?;
        while let Ok(more) = lines.try_recv() {
            out.write_all(more.as_bytes()).await?;
        }
        out.flush().await?;
    }
    let _ = out.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_minute_with_jitter() {
        for _ in 0..100 {
            let first = backoff(0);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
            let fourth = backoff(3);
            assert!(fourth >= Duration::from_secs(4) && fourth <= Duration::from_secs(8));
            let late = backoff(40);
            assert!(late >= Duration::from_secs(30) && late <= MAX_BACKOFF);
        }
    }
}
