//! Webhooks from other tools: deploys they did (`/hooks/deploy`, logged and announced like
//! lever's own) and CI builds (`/hooks/build`, lever's JSON or Jenkins' notification plugin).
//! Every text taken from a body is sanitised (no CR/LF or control characters) and bounded
//! before it goes anywhere.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::parse_json;
use super::auth::authenticate;
use super::ApiError;
use crate::bot::Bot;
use crate::chat::text::{sanitize_line, truncate_chars};
use crate::events::{BuildReport, Event};
use crate::events::{ExternalDeploy, ExternalStatus};
use crate::store::json;

/// A field's text, cleaned and cut to `max` characters; empty counts as absent.
fn clean(text: Option<&str>, max: usize) -> Option<String> {
    let text = sanitize_line(text?);
    let text = text.trim();
    (!text.is_empty()).then(|| truncate_chars(text, max).into_owned())
}

fn required(field: &str, text: Option<String>) -> Result<String, ApiError> {
    text.ok_or_else(|| ApiError::bad_request(format!("'{field}' is missing or empty")))
}

/// Links must be http(s); anything else is dropped rather than shown.
fn link(text: Option<&str>) -> Option<String> {
    clean(text, 300)
        .filter(|u| (u.starts_with("https://") || u.starts_with("http://")) && !u.contains(' '))
}

#[derive(Deserialize)]
struct DeployHook {
    user: Option<String>,
    target: Option<String>,
    status: Option<String>,
    version: Option<String>,
    url: Option<String>,
    message: Option<String>,
}

/// `POST /hooks/deploy` `{"user","target","status":"started|succeeded|failed","version","url","message"}`.
pub async fn deploy(
    State(bot): State<Arc<Bot>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = authenticate(bot.config.http.as_ref(), &headers, &body)?;
    let hook: DeployHook = parse_json(&body)?;
    let target = required("target", clean(hook.target.as_deref(), 64))?;
    if !target
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
    {
        return Err(ApiError::bad_request(
            "'target' may hold letters, digits and . _ - / only",
        ));
    }
    let status = match hook.status.as_deref() {
        Some("started") => ExternalStatus::Started,
        Some("succeeded") => ExternalStatus::Succeeded,
        Some("failed") => ExternalStatus::Failed,
        _ => {
            return Err(ApiError::bad_request(
                "'status' must be \"started\", \"succeeded\" or \"failed\"",
            ))
        }
    };
    let report = ExternalDeploy {
        user: required("user", clean(hook.user.as_deref(), 32))?,
        target,
        status,
        version: clean(hook.version.as_deref(), 64),
        url: link(hook.url.as_deref()),
        message: clean(hook.message.as_deref(), 200),
        via: caller.name,
    };
    let (entry, hold) = bot.deploys.report_external(&report)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "logged": entry.to_string(), "held": hold.as_ref().map(json::hold) })),
    ))
}

/// lever's own build shape.
#[derive(Deserialize)]
struct BuildHook {
    job: Option<String>,
    number: Option<u64>,
    status: Option<String>,
    url: Option<String>,
    duration_ms: Option<u64>,
    user: Option<String>,
}

/// Jenkins' notification plugin: `{"name", "build": {"number", "phase", "status", "full_url", "duration"}}`.
#[derive(Deserialize)]
struct JenkinsNotification {
    name: Option<String>,
    build: JenkinsBuild,
}

#[derive(Deserialize)]
struct JenkinsBuild {
    number: Option<u64>,
    phase: Option<String>,
    status: Option<String>,
    full_url: Option<String>,
    duration: Option<u64>,
}

/// `POST /hooks/build`: a CI result, announced with result, duration and link.
pub async fn build(
    State(bot): State<Arc<Bot>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = authenticate(bot.config.http.as_ref(), &headers, &body)?;
    let value: Value = parse_json(&body)?;
    let report = if value.get("build").is_some_and(Value::is_object) {
        let hook: JenkinsNotification = serde_json::from_value(value)
            .map_err(|e| ApiError::bad_request(format!("bad Jenkins notification: {e}")))?;
        let phase = hook.build.phase.as_deref().unwrap_or("");
        // Jenkins sends STARTED, COMPLETED and FINALIZED; one line each for start and end.
        if phase == "FINALIZED" || phase == "QUEUED" {
            return Ok((
                StatusCode::ACCEPTED,
                Json(
                    json!({ "announced": false, "why": format!("phase {phase} is not announced") }),
                ),
            ));
        }
        let status = if phase == "STARTED" {
            Some("STARTED")
        } else {
            hook.build.status.as_deref()
        };
        BuildReport {
            job: required("name", clean(hook.name.as_deref(), 100))?,
            number: hook.build.number,
            status: normalise_status(status)?,
            url: link(hook.build.full_url.as_deref()),
            duration_ms: hook.build.duration.filter(|d| *d > 0),
            user: None,
            via: caller.name,
            channels: Vec::new(),
        }
    } else {
        let hook: BuildHook = serde_json::from_value(value)
            .map_err(|e| ApiError::bad_request(format!("bad build report: {e}")))?;
        BuildReport {
            job: required("job", clean(hook.job.as_deref(), 100))?,
            number: hook.number,
            status: normalise_status(hook.status.as_deref())?,
            url: link(hook.url.as_deref()),
            duration_ms: hook.duration_ms,
            user: clean(hook.user.as_deref(), 32),
            via: caller.name,
            channels: Vec::new(),
        }
    };
    bot.events.publish(Event::Build(report));
    Ok((StatusCode::ACCEPTED, Json(json!({ "announced": true }))))
}

fn normalise_status(status: Option<&str>) -> Result<String, ApiError> {
    let status = status.unwrap_or("").to_ascii_uppercase();
    match status.as_str() {
        "SUCCESS" | "SUCCEEDED" | "PASSED" | "OK" => Ok("SUCCESS".into()),
        "FAILURE" | "FAILED" | "ERROR" => Ok("FAILURE".into()),
        "UNSTABLE" | "ABORTED" | "STARTED" | "NOT_BUILT" => Ok(status),
        _ => Err(ApiError::bad_request(
            "'status' must be one of success, failure, unstable, aborted, started",
        )),
    }
}

/// `POST /hooks/alertmanager`: Alertmanager's webhook (version 4). Announced as Alertmanager
/// groups it, once per alert and status, within the configured caps.
pub async fn alertmanager(
    State(bot): State<Arc<Bot>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let caller = authenticate(bot.config.http.as_ref(), &headers, &body)?;
    let hook = crate::alerts::webhook::Webhook::parse(&body).map_err(ApiError::bad_request)?;
    // With levers sharing a store, each keeps what it is sent (Alertmanager is pointed at every
    // one): the active says it, and a standby's copy is there for whichever lever is active
    // next. Not kept, not taken: Alertmanager sends it again.
    if bot.store.is_shared() {
        let text = String::from_utf8_lossy(&body);
        if let Err(e) = bot.store.keep_notification(bot.role.node(), &text) {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot keep the notification: {e}"),
            ));
        }
        if !bot.role.acts() {
            tracing::debug!(via = %caller.name, group = %hook.group_key, "alert notification kept for the active lever");
            return Ok(Json(json!({ "kept": true, "role": "standby" })));
        }
    }
    let receipt = bot.alerts.receive(&hook);
    tracing::debug!(via = %caller.name, group = %hook.group_key, new = receipt.new, duplicates = receipt.duplicates, held_back = receipt.held_back, "alert notification");
    Ok(Json(json!({
        "new": receipt.new,
        "duplicates": receipt.duplicates,
        "lines": receipt.lines,
        "held_back": receipt.held_back,
        "remembered": receipt.remembered,
    })))
}
