//! The JSON shapes of the store's records, as the HTTP API and plugins receive them. Kept with
//! the records so every reader (the API, a plugin's invocation) shows the same fields.

use serde_json::{json, Value};

use super::{format_time, Hold, LogEntry, Millis, Run};

/// A stored time as RFC 3339 in UTC: `2026-12-04T17:00:36Z`.
pub fn rfc3339(at: Millis) -> String {
    format!("{}Z", format_time(at).replacen(' ', "T", 1))
}

pub fn hold(hold: &Hold) -> Value {
    json!({
        "target": hold.target,
        "by": hold.by_nick,
        "by_account": hold.by_account,
        "reason": hold.reason,
        "placed_at": rfc3339(hold.placed_at),
        "expires_at": hold.expires_at.map(rfc3339),
    })
}

pub fn entry(entry: &LogEntry) -> Value {
    json!({
        "id": entry.id,
        "at": rfc3339(entry.at),
        "user": entry.user,
        "target": entry.target,
        "kind": entry.kind.as_str(),
        "text": entry.text,
        "run_id": entry.run_id,
        "line": entry.to_string(),
    })
}

pub fn run(run: &Run) -> Value {
    json!({
        "id": run.id,
        "phase": run.phase.as_str(),
        "state": run.state.as_str(),
        "user": run.user,
        "version": run.version,
        "started_at": rfc3339(run.started_at),
        "finished_at": run.finished_at.map(rfc3339),
    })
}
