//! lever's own flags API and the flagd export: `GET /api/v1/flags` (and `/{key}`),
//! `PUT /api/v1/flags/{key}` (the same change as `!flag`, logged and announced; `If-Match`
//! with the flag's version refuses a lost update with 412), and `GET /flags/flagd.json`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::parse_json;
use super::auth::{authenticate, authenticate_reader, is_read_only_token};
use super::ApiError;
use crate::bot::Bot;
use crate::chat::text::{clean_line, sanitize_line};
use crate::flags::{Change, FlagDef, FlagError};
use crate::store::flags::FlagState;

/// A flag, declaration and state, as the API shows it.
fn flag_json(def: &FlagDef, state: &FlagState) -> Value {
    json!({
        "key": def.key,
        "description": def.description,
        "contingency": def.contingency,
        "variants": def.variants,
        "default": def.default,
        "variant": state.variant,
        "enabled": state.enabled,
        "rollout": state.rollout,
        "beta": state.beta,
        "version": state.version,
        "changed_by": (state.version > 0).then_some(&state.changed_by),
        "changed_at": (state.version > 0).then(|| crate::store::format_time(state.changed_at)),
        "reason": state.reason,
    })
}

/// `ETag: "<version>"` for one flag, what `If-Match` sends back.
fn version_tag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

/// `GET /api/v1/flags`
pub async fn list(State(bot): State<Arc<Bot>>) -> Json<Value> {
    let snapshot = bot.flags.snapshot();
    let flags: Vec<Value> = bot
        .flags
        .defs()
        .values()
        .filter_map(|def| Some(flag_json(def, snapshot.states.get(&def.key)?)))
        .collect();
    Json(json!({ "flags": flags, "generation": snapshot.generation }))
}

/// `GET /api/v1/flags/{key}`, with its version as `ETag`.
pub async fn show(
    State(bot): State<Arc<Bot>>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let def = bot.flags.def(&key).map_err(flag_error)?;
    let snapshot = bot.flags.snapshot();
    let state = &snapshot.states[&def.key];
    Ok((
        [(header::ETAG, version_tag(state.version))],
        Json(json!({ "flag": flag_json(def, state) })),
    )
        .into_response())
}

/// What `PUT /api/v1/flags/{key}` may change: one thing at a time.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeRequest {
    by: String,
    #[serde(default)]
    reason: String,
    /// Served to everyone (`on`/`off` for an on/off flag), or with `rollout`, to that share.
    variant: Option<String>,
    /// 0 to 100: the share of targeting keys served the flag.
    rollout: Option<u8>,
    /// Targeting keys that always get the flag (`[]`: nobody).
    beta: Option<Vec<String>>,
    enabled: Option<bool>,
}

/// `PUT /api/v1/flags/{key}`: a change, as `!flag` makes it.
pub async fn change(
    State(bot): State<Arc<Bot>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = match authenticate(bot.config.http.as_ref(), &headers, &body) {
        Ok(caller) => caller,
        Err(_) if is_read_only_token(&bot.config.flags, &headers) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "this token may only read flags ([flags] tokens): changes need an [http] token",
            ))
        }
        Err(e) => return Err(e),
    };
    let request: ChangeRequest = parse_json(&body)?;
    let by = sanitize_line(&request.by);
    let by = by.trim();
    if by.is_empty() || by.chars().count() > 32 || by.contains(char::is_whitespace) {
        return Err(ApiError::bad_request(
            "'by' must name who acts: one word of 1 to 32 characters",
        ));
    }
    let reason = clean_line(&request.reason, 200);
    let change = match (request.variant, request.rollout, request.beta, request.enabled) {
        (variant, Some(percent), None, None) => Change::Rollout { variant, percent },
        (Some(variant), None, None, None) => Change::Serve(variant),
        (None, None, Some(keys), None) => Change::Beta(keys),
        (None, None, None, Some(true)) => Change::Enable,
        (None, None, None, Some(false)) => Change::Disable,
        _ => {
            return Err(ApiError::bad_request(
                "say one change: \"variant\" (with \"rollout\" for a share), \"rollout\", \"beta\" or \"enabled\"",
            ))
        }
    };
    let expected = match headers.get(header::IF_MATCH) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
                .and_then(|v| v.parse::<i64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "If-Match must be the flag's version as its ETag gave it, e.g. \"3\"",
                    )
                })?,
        ),
    };
    let state = bot
        .flags
        .change(&key, &change, by, &reason, expected)
        .map_err(flag_error)?;
    tracing::info!(via = %caller.name, by, flag = %key, version = state.version, "flag changed over HTTP");
    let def = bot.flags.def(&key).map_err(flag_error)?;
    Ok((
        [(header::ETAG, version_tag(state.version))],
        Json(json!({ "flag": flag_json(def, &state) })),
    )
        .into_response())
}

/// `GET /flags/flagd.json`: the flags as a flagd flag definition file (a read token needed),
/// `ETag` and `If-None-Match` as for a bulk evaluation.
pub async fn flagd(State(bot): State<Arc<Bot>>, headers: HeaderMap) -> Result<Response, ApiError> {
    authenticate_reader(bot.config.http.as_ref(), &bot.config.flags, &headers)?;
    let snapshot = bot.flags.snapshot();
    let etag = HeaderValue::from_str(&snapshot.etag).unwrap_or(HeaderValue::from_static("\"\""));
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == snapshot.etag.as_bytes());
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let text = crate::flags::flagd::export(bot.flags.defs(), &snapshot);
    Ok((
        [
            (header::ETAG, etag),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        text,
    )
        .into_response())
}

/// How a flags error answers over HTTP.
fn flag_error(error: FlagError) -> ApiError {
    match error {
        FlagError::Unknown { .. } => ApiError::new(StatusCode::NOT_FOUND, error.to_string()),
        FlagError::Refused(text) => ApiError::bad_request(text),
        FlagError::Conflict { .. } => {
            ApiError::new(StatusCode::PRECONDITION_FAILED, error.to_string())
        }
        FlagError::Store(e) => crate::deploy::DeployError::Store(e).into(),
    }
}
