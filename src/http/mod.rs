//! The HTTP side: webhooks in, a JSON API out, health for load balancers and orchestrators.
//!
//! Started only when `[http] listen` is set. Every hook and every API write is authenticated
//! ([`auth`]); reads are open (what the deploy log says is shared by design). Writes go through
//! exactly the code `!hold`/`!unhold` use, so they are logged and announced the same way.
//!
//! - [`api`]: `/api/v1/status`, `/log`, `/holds` (and the gate a deploy script checks)
//! - [`hooks`]: `/hooks/deploy` (deploys by other tools), `/hooks/build` (CI results),
//!   `/hooks/alertmanager` (alerts)
//! - `/healthz` (alive), `/readyz` (store writable and IRC registered), `/metrics` (lever's own)

pub mod api;
pub mod auth;
mod error;
pub mod hooks;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;

use crate::bot::Bot;
use crate::config::HttpConfig;

pub use error::ApiError;

/// Binds the configured address, so a taken port stops lever at start with a clear message.
pub async fn bind(http: &HttpConfig) -> Result<TcpListener, String> {
    let addr = http.addr()?;
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} for [http] listen: {e}"))
}

/// Serves the HTTP side until `shutdown` is cancelled; requests in flight are let finish.
pub async fn serve(listener: TcpListener, bot: Arc<Bot>, shutdown: CancellationToken) {
    let Some(http) = bot.config.http.as_ref() else {
        return;
    };
    if !http.has_credentials() {
        tracing::warn!(
            "[http] has no token or hmac secret: every hook and API write will be refused"
        );
    }
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(listen = %local, "HTTP listening");
    let app = router(bot.clone());
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "the HTTP server stopped");
    }
}

/// Every route, with the body limit (413 past it) and the request timeout (408).
pub fn router(bot: Arc<Bot>) -> Router {
    let (limit, timeout) = bot
        .config
        .http
        .as_ref()
        .map_or((1024 * 1024, std::time::Duration::from_secs(10)), |h| {
            (h.body_limit, h.request_timeout)
        });
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/log", get(api::log))
        .route("/api/v1/holds", get(api::holds).post(api::place_hold))
        .route(
            "/api/v1/holds/{target}",
            get(api::gate).delete(api::lift_hold),
        )
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
        .layer(DefaultBodyLimit::max(limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            bot.clone(),
            count_requests,
        ))
        .with_state(bot)
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
    use crate::telemetry::gauge;
    let mut out = String::new();
    bot.telemetry.render_counters(&mut out);
    let irc = if bot.irc.is_ready() { 1.0 } else { 0.0 };
    gauge(
        &mut out,
        "lever_irc_connected",
        "1 while lever is registered on IRC.",
        &[(vec![], irc)],
    );
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

/// Ready when the store takes writes and lever is registered on IRC; otherwise 503 with why.
async fn readyz(State(bot): State<Arc<Bot>>) -> (StatusCode, Json<serde_json::Value>) {
    let mut why = Vec::new();
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
