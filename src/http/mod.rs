//! The HTTP side: webhooks in, a JSON API out, health for load balancers and orchestrators.
//!
//! Started only when `[http] listen` is set. Every hook and every API write is authenticated
//! ([`auth`]); reads are open (what the deploy log says is shared by design). Writes go through
//! exactly the code `!hold`/`!unhold` use, so they are logged and announced the same way.
//!
//! - [`page`]: the deploy page for people: `/` (holds, targets, the run in progress, the
//!   recent log), `/log`, `/runs/{id}`; [`live`]: `/events`, its updates as they happen;
//!   [`actions`]: its buttons (`/stage/{t}`, `/deploy/{t}`, `/hold`, `/unhold/{t}`) for people
//!   a trusted proxy signs in ([`viewer`])
//! - [`api`]: `/api/v1/status`, `/log`, `/holds` (and the gate a deploy script checks)
//! - [`ofrep`]: OpenFeature's remote evaluation protocol over lever's feature flags
//! - [`flags`]: `/api/v1/flags` (read, and change like `!flag`), `/flags/flagd.json`
//! - [`hooks`]: `/hooks/deploy` (deploys by other tools), `/hooks/build` (CI results),
//!   `/hooks/alertmanager` (alerts)
//! - `/healthz` (alive: its role, node and epoch), `/readyz` (the active lever, its store
//!   writable and IRC registered), `/metrics` (lever's own)
//!
//! A standby (one of several levers sharing a PostgreSQL store, waiting to take over) serves
//! the reads from the shared store and answers every write 503, naming the active lever.

pub mod actions;
pub mod api;
pub mod auth;
mod error;
pub mod flags;
pub mod hooks;
pub mod live;
pub mod ofrep;
pub mod page;
pub mod viewer;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;

use crate::bot::{Bot, Part};
use crate::config::HttpConfig;
use crate::store::lease::Holder;

pub use error::ApiError;

/// Connections the kernel queues for lever to accept. Past it a client waits for its SYN
/// retry (a whole second): 128, the usual default, is overrun when every open deploy page
/// fetches `/` at once after an event.
const BACKLOG: u32 = 1024;

/// Binds the configured address, so a taken port stops lever at start with a clear message.
pub async fn bind(http: &HttpConfig) -> Result<TcpListener, String> {
    let addr = http.addr()?;
    let cannot = |e: std::io::Error| format!("cannot listen on {addr} for [http] listen: {e}");
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(cannot)?;
    // As std's bind does: a restarted lever may take its port while old connections linger.
    socket.set_reuseaddr(true).map_err(cannot)?;
    socket.bind(addr).map_err(cannot)?;
    socket.listen(BACKLOG).map_err(cannot)
}

/// How long requests in flight may take to finish once lever is stopping.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves the HTTP side until `shutdown` is cancelled; requests in flight are let finish.
///
/// Connections are served by hyper directly (not `axum::serve`) for one setting axum does not
/// expose: a deadline on reading the request head, so a client that never finishes its headers
/// cannot hold a connection open forever.
pub async fn serve(listener: TcpListener, bot: Arc<Bot>, shutdown: CancellationToken) {
    let Some(http) = bot.config.http.as_ref() else {
        return;
    };
    if !http.has_credentials() {
        tracing::warn!(
            "[http] has no token or hmac secret: every hook and API write will be refused"
        );
    }
    let header_timeout = http.request_timeout;
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(listen = %local, "HTTP listening");
    let live = live::Live::start(&bot, shutdown.clone());
    let app = router(bot.clone(), live);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!(error = %e, "cannot accept an HTTP connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = stream;
        // The peer's address, for the deploy page's trusted proxies (`viewer::Peer`).
        let app = tower::ServiceExt::map_request(
            app.clone(),
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            },
        );
        let service = hyper_util::service::TowerToHyperService::new(app);
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP requests still running at shutdown were cut off");
    }
}

/// Every route, with the body limit (413 past it) and the request timeout (408); `live` feeds
/// the deploy page's event stream.
pub fn router(bot: Arc<Bot>, live: Arc<live::Live>) -> Router {
    let (limit, timeout) = bot
        .config
        .http
        .as_ref()
        .map_or((1024 * 1024, std::time::Duration::from_secs(10)), |h| {
            (h.body_limit, h.request_timeout)
        });
    let dashboard = actions::Dashboard::new(bot.clone());
    Router::new()
        .route("/", get(page::index).with_state(dashboard.clone()))
        .route(
            "/stage/{target}",
            post(actions::stage).with_state(dashboard.clone()),
        )
        .route(
            "/deploy/{target}",
            get(actions::confirm_deploy)
                .post(actions::deploy)
                .with_state(dashboard.clone()),
        )
        .route("/hold", post(actions::hold).with_state(dashboard.clone()))
        .route(
            "/unhold/{target}",
            post(actions::unhold).with_state(dashboard),
        )
        .route("/log", get(page::log))
        .route("/runs/{id}", get(page::run))
        .route("/events", get(live::events).with_state(live))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/log", get(api::log))
        .route("/api/v1/holds", get(api::holds).post(api::place_hold))
        .route(
            "/api/v1/holds/{target}",
            get(api::gate).delete(api::lift_hold),
        )
        .route("/api/v1/targets/{target}/gate", get(api::target_gate))
        .route("/api/v1/flags", get(flags::list))
        .route("/api/v1/flags/{key}", get(flags::show).put(flags::change))
        .route("/flags/flagd.json", get(flags::flagd))
        .route("/ofrep/v1/evaluate/flags", post(ofrep::evaluate_all))
        .route("/ofrep/v1/evaluate/flags/{key}", post(ofrep::evaluate_one))
        .route("/hooks/deploy", post(hooks::deploy))
        .route("/hooks/build", post(hooks::build))
        .route("/hooks/alertmanager", post(hooks::alertmanager))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such endpoint; see the README's HTTP section",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "that method is not allowed here",
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            bot.clone(),
            standby_refuses_writes,
        ))
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::middleware::from_fn_with_state(
            bot.clone(),
            count_requests,
        ))
        .with_state(bot)
}

/// Every error answers `{"error": "…"}`, including those axum and tower produce themselves
/// (an unreadable query, a body over the limit, a timeout), which come as plain text or empty.
async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let response = next.run(request).await;
    let status = response.status();
    // The deploy page's own error pages are for people: left as HTML.
    let own_body = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if status.as_u16() < 400 || own_body {
        return response;
    }
    let text = match axum::body::to_bytes(response.into_body(), 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the body is larger than [http] body_limit allows".to_owned()
        }
        StatusCode::REQUEST_TIMEOUT => {
            "the request took longer than [http] request_timeout".to_owned()
        }
        _ if !text.is_empty() => text,
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    ApiError::new(status, message).into_response()
}

/// On a standby, every write (but an alert notification, kept for the active) is answered 503
/// with where the active lever is: it alone writes.
async fn standby_refuses_writes(
    State(bot): State<Arc<Bot>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::Method;
    use axum::response::IntoResponse;
    // Alertmanager notifies every lever; a standby keeps what it is sent (`hooks`). An OFREP
    // evaluation is a POST that only reads.
    let path = request.uri().path();
    let allowed = matches!(*request.method(), Method::GET | Method::HEAD)
        || path == "/hooks/alertmanager"
        || path.starts_with("/ofrep/");
    let Part::Standby { active } = bot.role.part() else {
        return next.run(request).await;
    };
    if allowed {
        return next.run(request).await;
    }
    let node = bot.role.node();
    let message = match &active {
        Some(holder) => {
            let at = holder.http.as_ref().map(|u| format!(" at {u}")).unwrap_or_default();
            format!(
                "this lever ({node}) is a standby: send writes to the active lever, {}{at}",
                holder.node
            )
        }
        None => format!(
            "this lever ({node}) is a standby and no lever is active yet; try again in a few seconds"
        ),
    };
    let body = serde_json::json!({
        "error": message,
        "role": "standby",
        "active": active_json(active.as_ref()),
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    response
}

/// `GET /healthz`: alive, and which part this lever plays (a standby: and who is active).
async fn healthz(State(bot): State<Arc<Bot>>) -> Json<serde_json::Value> {
    let mut health = serde_json::json!({
        "status": "ok",
        "role": bot.role.name(),
        "node": bot.role.node(),
        "epoch": bot.role.epoch(),
    });
    if let Part::Standby { active } = bot.role.part() {
        health["active"] = active_json(active.as_ref());
    }
    Json(health)
}

/// The active lever as a standby last saw it.
fn active_json(active: Option<&Holder>) -> serde_json::Value {
    active.map_or(
        serde_json::Value::Null,
        |h| serde_json::json!({"node": h.node, "epoch": h.epoch, "url": h.http}),
    )
}

/// Counts every request by route (the pattern, not the path: no unbounded label values) and
/// status.
async fn count_requests(
    State(bot): State<Arc<Bot>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let response = next.run(request).await;
    bot.telemetry.count(
        "lever_http_requests_total",
        vec![
            ("route", route),
            ("status", response.status().as_u16().to_string()),
        ],
    );
    response
}

/// `GET /metrics`: lever's own counters and gauges in Prometheus' text format.
async fn metrics(
    State(bot): State<Arc<Bot>>,
) -> Result<([(axum::http::header::HeaderName, &'static str); 1], String), ApiError> {
    use crate::events::telemetry::gauge;
    let mut out = String::new();
    bot.telemetry.render_counters(&mut out);
    let irc = if bot.irc.is_ready() { 1.0 } else { 0.0 };
    gauge(
        &mut out,
        "lever_irc_connected",
        "1 while lever is registered on IRC.",
        &[(vec![], irc)],
    );
    let role = &bot.role;
    gauge(
        &mut out,
        "lever_active",
        "1 while this lever acts (alone on its store, or holding the lease); 0 as a standby.",
        &[(
            vec![("node", role.node().to_owned())],
            if role.acts() { 1.0 } else { 0.0 },
        )],
    );
    if let Some(epoch) = role.epoch() {
        gauge(
            &mut out,
            "lever_lease_epoch",
            "The epoch of the lease this lever holds.",
            &[(vec![], epoch as f64)],
        );
    }
    gauge(
        &mut out,
        "lever_outbox_depth",
        "Lines waiting in the outbox.",
        &[(vec![], bot.outbox.len() as f64)],
    );
    gauge(
        &mut out,
        "lever_outbox_dropped",
        "Lines dropped because the outbox was full, since start.",
        &[(vec![], bot.outbox.dropped() as f64)],
    );
    let busy = bot.deploys.busy_targets();
    let mut held = Vec::new();
    let mut active = Vec::new();
    for target in bot.config.targets.keys() {
        let holds = bot.deploys.status(target)?.holds;
        held.push((
            vec![("target", target.clone())],
            if holds.is_empty() { 0.0 } else { 1.0 },
        ));
        active.push((
            vec![("target", target.clone())],
            if busy.contains(target) { 1.0 } else { 0.0 },
        ));
    }
    gauge(
        &mut out,
        "lever_hold_active",
        "1 while a hold covers the target.",
        &held,
    );
    gauge(
        &mut out,
        "lever_run_active",
        "1 while a run is in progress on the target.",
        &active,
    );
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    ))
}

/// Ready when lever acts, its store takes writes and it is registered on IRC; otherwise 503
/// with why.
async fn readyz(State(bot): State<Arc<Bot>>) -> (StatusCode, Json<serde_json::Value>) {
    let mut why = Vec::new();
    if let Part::Standby { active } = bot.role.part() {
        let active = active.map_or("none yet".to_owned(), |h| h.node);
        why.push(format!("a standby: the active lever is {active}"));
        let reply = serde_json::json!({ "ready": false, "why": why });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(reply));
    }
    if let Err(e) = bot.store.check_writable() {
        why.push(format!("the store is not writable: {e}"));
    }
    if !bot.irc.is_ready() {
        why.push("not registered on IRC (connecting or reconnecting)".to_owned());
    }
    let status = if why.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({ "ready": why.is_empty(), "why": why })),
    )
}
