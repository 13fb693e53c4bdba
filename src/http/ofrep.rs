//! OpenFeature's Remote Evaluation Protocol (OFREP 0.3, open-feature/protocol's
//! `service/openapi.yaml`): `POST /ofrep/v1/evaluate/flags/{key}` evaluates one flag,
//! `POST /ofrep/v1/evaluate/flags` all of them, for an evaluation context. Every OpenFeature
//! SDK has a stock OFREP provider, so an application reads lever's flags with no daemon.
//!
//! Reads need a token (`Authorization: Bearer` or `X-API-Key`; `[flags] tokens` read, `[http]`
//! tokens too); `[flags] rate_limit` caps each credential (429 with `Retry-After`). Answers come
//! from one snapshot per request, so the bulk answer and its `ETag` always agree; a matching
//! `If-None-Match` gets 304. Every lever answers, standbys too (the snapshot follows the store).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use super::auth::{authenticate_reader, Reader};
use super::ApiError;
use crate::bot::Bot;
use crate::flags::eval::{evaluate, TargetingKeyMissing};
use crate::flags::{FlagDef, Snapshot};

/// `POST /ofrep/v1/evaluate/flags/{key}`
pub async fn evaluate_one(
    State(bot): State<Arc<Bot>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    admit(&bot, &headers)?;
    let targeting = match context(&body) {
        Ok(targeting) => targeting,
        Err((code, details)) => {
            count(&bot, "single", code);
            let body = json!({ "key": key, "errorCode": code, "errorDetails": details });
            return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
        }
    };
    let snapshot = bot.flags.snapshot();
    let Some(def) = bot.flags.defs().get(&key) else {
        count(&bot, "single", "FLAG_NOT_FOUND");
        let details = format!(
            "flag '{}' was not found",
            crate::chat::text::truncate_chars(&key, 64)
        );
        let body = json!({ "key": key, "errorCode": "FLAG_NOT_FOUND", "errorDetails": details });
        return Ok((StatusCode::NOT_FOUND, Json(body)).into_response());
    };
    let answer = one(def, &snapshot, targeting.as_deref());
    let status = match answer.get("errorCode") {
        Some(code) => {
            count(&bot, "single", code.as_str().unwrap_or("GENERAL"));
            StatusCode::BAD_REQUEST
        }
        None => {
            count(&bot, "single", "ok");
            StatusCode::OK
        }
    };
    Ok((status, Json(answer)).into_response())
}

/// `POST /ofrep/v1/evaluate/flags`
pub async fn evaluate_all(
    State(bot): State<Arc<Bot>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    admit(&bot, &headers)?;
    let snapshot = bot.flags.snapshot();
    let etag = HeaderValue::from_str(&snapshot.etag).unwrap_or(HeaderValue::from_static("\"\""));
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim() == snapshot.etag || t.trim() == "*")
        });
    if unchanged {
        count(&bot, "bulk", "not_modified");
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let targeting = match context(&body) {
        Ok(targeting) => targeting,
        Err((code, details)) => {
            count(&bot, "bulk", code);
            let body = json!({ "errorCode": code, "errorDetails": details });
            return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
        }
    };
    let flags: Vec<Value> = bot
        .flags
        .defs()
        .values()
        .map(|def| one(def, &snapshot, targeting.as_deref()))
        .collect();
    count(&bot, "bulk", "ok");
    let body = json!({ "flags": flags, "metadata": { "generation": snapshot.generation } });
    Ok((StatusCode::OK, [(header::ETAG, etag)], Json(body)).into_response())
}

/// One flag's answer: an evaluation, or an evaluation failure (a rollout without a key).
fn one(def: &FlagDef, snapshot: &Snapshot, targeting: Option<&str>) -> Value {
    let Some(state) = snapshot.states.get(&def.key) else {
        return json!({ "key": def.key, "errorCode": "GENERAL", "errorDetails": "no state" });
    };
    let mut metadata = Map::new();
    if !def.description.is_empty() {
        metadata.insert("description".into(), json!(def.description));
    }
    metadata.insert("contingency".into(), json!(def.contingency));
    metadata.insert("version".into(), json!(state.version));
    match evaluate(def, state, targeting) {
        Ok(answer) => json!({
            "key": def.key,
            "value": answer.value,
            "variant": answer.variant,
            "reason": answer.reason.as_str(),
            "metadata": metadata,
        }),
        Err(TargetingKeyMissing) => json!({
            "key": def.key,
            "errorCode": "TARGETING_KEY_MISSING",
            "errorDetails": format!("{} is rolled out to a share of targeting keys: the context needs a targetingKey", def.key),
            "metadata": metadata,
        }),
    }
}

/// The request's targeting key, from `{"context": {"targetingKey": "…", …}}`; or the OFREP
/// error code and why.
fn context(body: &[u8]) -> Result<Option<String>, (&'static str, String)> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|e| ("PARSE_ERROR", format!("the body is not JSON: {e}")))?;
    let Some(context) = request.get("context") else {
        return Err((
            "INVALID_CONTEXT",
            "the body must be {\"context\": {\"targetingKey\": \"…\", …}}".into(),
        ));
    };
    let Some(context) = context.as_object() else {
        return Err(("INVALID_CONTEXT", "context must be an object".into()));
    };
    match context.get("targetingKey") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(key)) => Ok(Some(key.clone())),
        Some(_) => Err(("INVALID_CONTEXT", "targetingKey must be a string".into())),
    }
}

/// Authenticates, then takes one request from the credential's allowance.
fn admit(bot: &Bot, headers: &HeaderMap) -> Result<Reader, ApiError> {
    let reader = authenticate_reader(bot.config.http.as_ref(), &bot.config.flags, headers)?;
    if let Some(rate) = bot.config.flags.rate_limit {
        if let Err(wait) = take(&reader.name, rate) {
            count(bot, "any", "RATE_LIMITED");
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "more than {rate} evaluations a second from '{}'; retry after {wait} s",
                    reader.name
                ),
            )
            .retry_after(wait));
        }
    }
    Ok(reader)
}

/// Each credential's token bucket: (tokens left, when last filled).
static BUCKETS: LazyLock<Mutex<HashMap<String, (f64, Instant)>>> = LazyLock::new(Mutex::default);

/// Takes one request from `name`'s bucket of `rate` a second; else the seconds to wait.
fn take(name: &str, rate: u32) -> Result<(), u64> {
    let rate = f64::from(rate);
    let now = Instant::now();
    let mut buckets = BUCKETS.lock();
    let (tokens, filled) = buckets.entry(name.to_owned()).or_insert((rate, now));
    *tokens = (*tokens + now.duration_since(*filled).as_secs_f64() * rate).min(rate);
    *filled = now;
    if *tokens >= 1.0 {
        *tokens -= 1.0;
        Ok(())
    } else {
        Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
    }
}

fn count(bot: &Bot, kind: &'static str, result: &str) {
    bot.telemetry.count(
        "lever_ofrep_evaluations_total",
        vec![("kind", kind.to_owned()), ("result", result.to_owned())],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_gives_the_targeting_key_or_an_ofrep_error_code() {
        assert_eq!(
            context(br#"{"context":{"targetingKey":"alice","plan":"pro"}}"#),
            Ok(Some("alice".into()))
        );
        assert_eq!(context(br#"{"context":{}}"#), Ok(None));
        assert_eq!(context(b"{").unwrap_err().0, "PARSE_ERROR");
        assert_eq!(context(br#"{"ctx":{}}"#).unwrap_err().0, "INVALID_CONTEXT");
        assert_eq!(
            context(br#"{"context":[]}"#).unwrap_err().0,
            "INVALID_CONTEXT"
        );
        assert_eq!(
            context(br#"{"context":{"targetingKey":7}}"#).unwrap_err().0,
            "INVALID_CONTEXT"
        );
    }

    #[test]
    fn a_credential_gets_its_rate_a_second_then_a_wait() {
        for _ in 0..3 {
            assert_eq!(take("ofrep-test", 3), Ok(()));
        }
        assert_eq!(take("ofrep-test", 3), Err(1));
        assert_eq!(take("another", 3), Ok(()), "each credential has its own");
    }
}
