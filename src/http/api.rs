//! `/api/v1`: the deploy log, holds and status as JSON. Reads are open; writes need a
//! credential and go through the same code as `!hold` and `!unhold`.
//!
//! A deploy script gates itself with one request: `curl --fail http://lever/api/v1/holds/site`
//! answers 200 when `site` may be deployed and 423 (Locked) while a hold covers it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{authenticate, authenticate_bearer, Caller};
use super::ApiError;
use crate::bot::Bot;
use crate::chat::message::Identity;
use crate::chat::text::{clean_line, sanitize_line, truncate_chars};
use crate::deploy::Active;
use crate::store::{format_time, json};

/// Entries `/api/v1/log` returns without a limit, and at most.
const DEFAULT_LOG: usize = 50;
const MAX_LOG: usize = 1000;
/// The word that names the hold on every target in a path.
const EVERY_TARGET: &str = "all";

fn active_json(active: &Active) -> Value {
    json!({
        "run_id": active.run_id,
        "phase": active.phase.as_str(),
        "user": active.user,
        "elapsed_ms": active.started.elapsed().as_millis() as u64,
        "steps": active.steps,
        "step": active.step.as_ref().map(|(i, name, since)| json!({
            "number": i + 1,
            "name": name,
            "elapsed_ms": since.elapsed().as_millis() as u64,
        })),
        "last_output": active.output.last_line(),
    })
}

/// `GET /api/v1/status`: every target's holds, versions and run in progress; IRC state.
pub async fn status(State(bot): State<Arc<Bot>>) -> Result<Json<Value>, ApiError> {
    let mut targets = Vec::new();
    for name in bot.config.targets.keys() {
        let status = bot.deploys.status(name)?;
        targets.push(json!({
            "name": name,
            "held": !status.holds.is_empty(),
            "holds": status.holds.iter().map(json::hold).collect::<Vec<_>>(),
            "live": status.live.as_ref().map(json::run),
            "staged": status.staged.as_ref().map(json::run),
            "active": status.active.as_ref().map(active_json),
        }));
    }
    let holds = bot.deploys.holds()?;
    Ok(Json(json!({
        "irc": { "ready": bot.irc.is_ready(), "nick": bot.irc.nick() },
        "holds": holds.iter().map(json::hold).collect::<Vec<_>>(),
        "targets": targets,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    limit: Option<usize>,
    target: Option<String>,
}

/// `GET /api/v1/log?limit=&target=`: the deploy log, newest first.
pub async fn log(
    State(bot): State<Arc<Bot>>,
    Query(query): Query<LogQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LOG);
    if limit == 0 || limit > MAX_LOG {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_LOG}"
        )));
    }
    let entries = bot
        .deploys
        .log(limit, query.target.as_deref())
        .map_err(not_found_target)?;
    Ok(Json(
        json!({ "entries": entries.iter().map(json::entry).collect::<Vec<_>>() }),
    ))
}

/// A refusal naming an unknown target is a 404, as for every other endpoint.
fn not_found_target(error: crate::deploy::DeployError) -> ApiError {
    let mut e = ApiError::from(error);
    if e.message.starts_with("no target") {
        e.status = StatusCode::NOT_FOUND;
    }
    e
}

/// `GET /api/v1/holds`: every hold in force.
pub async fn holds(State(bot): State<Arc<Bot>>) -> Result<Json<Value>, ApiError> {
    let holds = bot.deploys.holds()?;
    Ok(Json(
        json!({ "holds": holds.iter().map(json::hold).collect::<Vec<_>>() }),
    ))
}

/// `GET /api/v1/holds/{target}`: 200 when `target` may be deployed, 423 while held.
pub async fn gate(
    State(bot): State<Arc<Bot>>,
    Path(target): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !bot.config.targets.contains_key(&target) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no target '{}'", truncate_chars(&target, 64)),
        ));
    }
    let holds = bot.deploys.status(&target)?.holds;
    let Some(first) = holds.first() else {
        return Ok((
            StatusCode::OK,
            Json(json!({ "target": target, "held": false })),
        ));
    };
    let message = format!(
        "NO DEPLOY PLEASE: {} held by {} since {} UTC: {}",
        first.scope(),
        first.by_nick,
        format_time(first.placed_at),
        first.reason
    );
    Ok((
        StatusCode::LOCKED,
        Json(json!({
            "target": target,
            "held": true,
            "error": message,
            "holds": holds.iter().map(json::hold).collect::<Vec<_>>(),
        })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateQuery {
    /// Who would deploy: their turn in the push queue counts.
    by: Option<String>,
}

/// `GET /api/v1/targets/{target}/gate?by=NAME`: everything that decides whether a deploy of
/// `target` may start now, in one answer for a deploy script: 200 `{"free": true}`, or 423
/// naming each thing in the way (a hold, a closed window or freeze, someone else's turn).
pub async fn target_gate(
    State(bot): State<Arc<Bot>>,
    Path(target): Path<String>,
    Query(query): Query<GateQuery>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Some(config) = bot.config.targets.get(&target) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no target '{}'", truncate_chars(&target, 64)),
        ));
    };
    let mut why = Vec::new();
    let holds = bot.deploys.status(&target)?.holds;
    if let Some(first) = holds.first() {
        why.push(format!(
            "NO DEPLOY PLEASE: {} held by {} since {} UTC: {}",
            first.scope(),
            first.by_nick,
            format_time(first.placed_at),
            first.reason
        ));
    }
    let window = match config.schedule().check(jiff::Timestamp::now()) {
        Ok(()) => Value::Null,
        Err(crate::config::Closed::Frozen { until, reason }) => {
            why.push(format!("frozen until {until} included: {reason}"));
            json!({ "open": false, "frozen_until": until.to_string(), "reason": reason })
        }
        Err(crate::config::Closed::Outside { next }) => {
            let next = next.map(|n| n.timestamp().to_string());
            why.push(format!(
                "outside its deploy windows ({}); next opens {}",
                config.schedule().windows_text(),
                next.as_deref().unwrap_or("not within a year")
            ));
            json!({ "open": false, "next": next, "windows": config.schedule().windows_text() })
        }
    };
    let queue = bot.deploys.queue_of(&target)?;
    let by = query.by.as_deref().map(str::trim).filter(|b| !b.is_empty());
    let turn = match queue.first() {
        None => Value::Null,
        Some(head) => {
            let theirs = |e: &crate::store::queue::QueueEntry, nick: &str| {
                e.nick.eq_ignore_ascii_case(nick)
                    || e.with_nick
                        .as_ref()
                        .is_some_and(|w| w.eq_ignore_ascii_case(nick))
            };
            let mine = by.is_some_and(|b| theirs(head, b));
            if !mine {
                why.push(format!("it is {}'s turn in the {target} queue", head.nick));
            }
            let position = by.and_then(|b| queue.iter().position(|e| theirs(e, b)).map(|i| i + 1));
            json!({ "head": head.nick, "with": head.with_nick, "yours": mine, "position": position })
        }
    };
    let free = why.is_empty();
    let body = json!({
        "target": target,
        "free": free,
        "held": !holds.is_empty(),
        "holds": holds.iter().map(json::hold).collect::<Vec<_>>(),
        "window": window,
        "turn": turn,
        "why": why,
    });
    let status = if free {
        StatusCode::OK
    } else {
        StatusCode::LOCKED
    };
    Ok((status, Json(body)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldRequest {
    /// A target; absent (or "all") holds every target.
    target: Option<String>,
    reason: String,
    by: String,
    /// "2h", "30m"; absent: until lifted.
    duration: Option<String>,
}

/// Who a write is from: the `by` the caller names, vouched for by its credential.
fn api_identity(by: &str, caller: &Caller) -> Result<Identity, ApiError> {
    let by = sanitize_line(by);
    let by = by.trim();
    if by.is_empty() || by.chars().count() > 32 || by.contains(char::is_whitespace) {
        return Err(ApiError::bad_request(
            "'by' must name who acts: one word of 1 to 32 characters",
        ));
    }
    Ok(Identity {
        nick: by.to_owned(),
        user: "api".into(),
        host: caller.name.clone(),
        account: None,
    })
}

/// The JSON body, or 400 saying exactly what is wrong with it.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))
}

fn target_word(target: Option<&str>) -> Option<&str> {
    target.filter(|t| *t != EVERY_TARGET)
}

/// `POST /api/v1/holds` `{"target"?, "reason", "by", "duration"?}`: NO DEPLOY PLEASE, as `!hold`.
pub async fn place_hold(
    State(bot): State<Arc<Bot>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = authenticate(bot.config.http.as_ref(), &headers, &body)?;
    let request: HoldRequest = parse_json(&body)?;
    let who = api_identity(&request.by, &caller)?;
    let reason = clean_line(&request.reason, 200);
    if reason.is_empty() {
        return Err(ApiError::bad_request(
            "'reason' must say why deploys are held",
        ));
    }
    let duration = match request.duration.as_deref() {
        None => None,
        Some(text) => Some(humantime::parse_duration(text).map_err(|e| {
            ApiError::bad_request(format!(
                "'duration' {text:?} is not a duration ({e}); write e.g. \"2h\""
            ))
        })?),
    };
    if duration.is_some_and(|d| d > crate::deploy::MAX_HOLD || d.is_zero()) {
        return Err(ApiError::bad_request(format!(
            "'duration' must be more than 0 and at most {} days; leave it out to hold until lifted",
            crate::deploy::MAX_HOLD.as_secs() / 86_400
        )));
    }
    let target = target_word(request.target.as_deref());
    let (hold, running) = bot
        .deploys
        .hold(target, &who, &reason, duration)
        .map_err(not_found_target)?;
    tracing::info!(via = %caller.name, by = %who.nick, scope = hold.scope(), "hold placed over HTTP");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "hold": json::hold(&hold), "note": running })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiftQuery {
    by: Option<String>,
}

/// `DELETE /api/v1/holds/{target}?by=NAME` (`all` for the hold on every target): DEPLOY OK.
pub async fn lift_hold(
    State(bot): State<Arc<Bot>>,
    Path(target): Path<String>,
    Query(query): Query<LiftQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let _ = body;
    let caller = authenticate_bearer(bot.config.http.as_ref(), &headers)?;
    let by = query
        .by
        .ok_or_else(|| ApiError::bad_request("say who lifts the hold: ?by=NAME"))?;
    let who = api_identity(&by, &caller)?;
    let hold = bot
        .deploys
        .unhold(target_word(Some(&target)), &who, true)
        .map_err(|e| {
            let mut e = ApiError::from(e);
            if e.message.starts_with("no target")
                || e.message.contains("is not held")
                || e.message.starts_with("there is no hold")
                || e.message == "nothing is held"
            {
                e.status = StatusCode::NOT_FOUND;
            }
            e
        })?;
    tracing::info!(via = %caller.name, by = %who.nick, scope = hold.scope(), "hold lifted over HTTP");
    Ok(Json(json!({ "lifted": json::hold(&hold) })))
}
