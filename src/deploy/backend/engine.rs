//! A phase run by an HTTP deploy engine (`backend = "http"`): the engines teams already run to
//! fan a deploy out across many hosts. lever POSTs the run, then polls the status URL the
//! engine answers with, recording each step the engine reports with its own timings.
//!
//! The protocol (documented in the README):
//! - `POST <url>` with `{"target","phase","user","run_id","version","prev_version"}` (and
//!   `Authorization: Bearer <token>` when configured) → 2xx with `{"status_url": "…"}` (or a
//!   `Location` header). Never retried: a second POST could start a second deploy.
//! - `GET <status_url>` → `{"state": "queued|running|succeeded|failed|cancelled",
//!   "steps": [{"name", "state": "running|ok|failed", "duration_ms"}], "output": "…" or […],
//!   "message": "…", "version": "…"}`. Retried with backoff while it fails.
//! - `DELETE <status_url>` asks the engine to stop (on `!cancel` or past the timeout).

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::{Ended, Progress, StepOutcome, StepResult};
use crate::chat::text::clean_line;
use crate::deploy::plan::HttpWork;

/// How often the status URL is asked.
const POLL: Duration = Duration::from_secs(2);
/// How long the engine may be unreachable in a row before lever stops following the run.
const GIVE_UP: Duration = Duration::from_secs(120);
/// One request's limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopped run may take to say it stopped.
const STOP_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
struct Accepted {
    status_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Status {
    state: String,
    #[serde(default)]
    steps: Vec<EngineStep>,
    #[serde(default)]
    output: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    version: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct EngineStep {
    name: String,
    state: String,
    #[serde(default)]
    duration_ms: Option<u64>,
}

impl Status {
    fn output_lines(&self) -> Vec<String> {
        let lines: Vec<String> = match &self.output {
            Some(serde_json::Value::String(s)) => s.lines().map(str::to_owned).collect(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        lines
            .iter()
            .map(|l| clean_line(l, 300))
            .filter(|l| !l.is_empty())
            .collect()
    }

    fn is_final(&self) -> bool {
        matches!(self.state.as_str(), "succeeded" | "failed" | "cancelled")
    }
}

/// Steps reported so far: which have been started and finished in lever's record.
struct Steps {
    started: Vec<String>,
    finished: usize,
    began: Instant,
    /// The run's timeout, to word a step cut off by it.
    limit: Duration,
}

impl Steps {
    /// Brings lever's record up to what the engine reports.
    fn sync(&mut self, status: &Status, progress: &mut dyn Progress) {
        for (i, step) in status.steps.iter().enumerate() {
            let name = clean_line(&step.name, 100);
            if i >= self.started.len() {
                // Steps are reported in order; finish the one before first.
                self.close_open(progress, StepOutcome::Succeeded, &[]);
                progress.step_started(&name);
                self.started.push(name);
            }
            if i == self.finished && matches!(step.state.as_str(), "ok" | "failed") {
                let outcome = if step.state == "ok" {
                    StepOutcome::Succeeded
                } else {
                    StepOutcome::Failed {
                        status: status
                            .message
                            .as_deref()
                            .map(|m| clean_line(m, 200))
                            .unwrap_or_else(|| "failed".into()),
                    }
                };
                let duration = step
                    .duration_ms
                    .map(Duration::from_millis)
                    .unwrap_or_else(|| self.began.elapsed());
                let tail = if outcome.is_success() {
                    vec![]
                } else {
                    status.output_lines()
                };
                progress.step_finished(
                    &StepResult {
                        outcome,
                        duration,
                        tail,
                    },
                    None,
                );
                self.finished += 1;
                self.began = Instant::now();
            }
        }
        for line in status.output_lines().iter().rev().take(1) {
            progress.output().push(line);
        }
    }

    fn close_open(&mut self, progress: &mut dyn Progress, outcome: StepOutcome, tail: &[String]) {
        if self.finished < self.started.len() {
            let limit = matches!(outcome, StepOutcome::TimedOut).then_some(self.limit);
            progress.step_finished(
                &StepResult {
                    outcome,
                    duration: self.began.elapsed(),
                    tail: tail.to_vec(),
                },
                limit,
            );
            self.finished += 1;
            self.began = Instant::now();
        }
    }
}

pub async fn run(
    work: &HttpWork,
    progress: &mut dyn Progress,
    cancel: &CancellationToken,
) -> Ended {
    crate::infra::http_client::install_provider();
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let authed = |request: reqwest::RequestBuilder| match &work.token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let began = Instant::now();
    let mut steps = Steps {
        started: Vec::new(),
        finished: 0,
        began,
        limit: work.timeout,
    };
    let status_url = match start(&http, work, &authed).await {
        Ok(url) => url,
        Err(error) => {
            progress.step_started("starting the run");
            progress.step_finished(
                &StepResult {
                    outcome: StepOutcome::NotStarted {
                        error: error.clone(),
                    },
                    duration: began.elapsed(),
                    tail: vec![],
                },
                None,
            );
            return Ended::Failed(format!("the deploy engine did not take the run: {error}"));
        }
    };
    let deadline = began + work.timeout;
    // The token goes only to the engine's own origin, wherever its status_url points.
    let same_origin = match (
        reqwest::Url::parse(&work.url),
        reqwest::Url::parse(&status_url),
    ) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    };
    if !same_origin {
        tracing::warn!(url = %work.url, status_url = %status_url, "the engine's status_url is on another host: following it without the token");
    }
    let status_authed = |request: reqwest::RequestBuilder| {
        if same_origin {
            authed(request)
        } else {
            request
        }
    };
    let mut failing_since: Option<Instant> = None;
    let mut backoff = POLL;
    let status = loop {
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = cancel.cancelled() => {
                let _ = stop(&http, &status_url, &status_authed).await;
                steps.close_open(progress, StepOutcome::Cancelled, &[]);
                return Ended::Cancelled("cancelled; the deploy engine was asked to stop".into());
            }
        }
        if Instant::now() >= deadline {
            let _ = stop(&http, &status_url, &status_authed).await;
            steps.close_open(progress, StepOutcome::TimedOut, &[]);
            return Ended::Failed(format!(
                "the deploy engine's run took longer than {}; it was asked to stop",
                crate::chat::text::human_duration(work.timeout)
            ));
        }
        match poll(&http, &status_url, &status_authed).await {
            Ok(status) => {
                failing_since = None;
                backoff = POLL;
                steps.sync(&status, progress);
                if status.is_final() {
                    break status;
                }
            }
            Err(error) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                tracing::warn!(url = %status_url, %error, "the deploy engine's status did not answer; retrying");
                if since.elapsed() >= GIVE_UP {
                    let why = format!("lost contact with the deploy engine for {}: {error} (the run may still be going there)", crate::chat::text::human_duration(GIVE_UP));
                    steps.close_open(
                        progress,
                        StepOutcome::Failed {
                            status: why.clone(),
                        },
                        &[],
                    );
                    return Ended::Failed(why);
                }
                backoff = (backoff * 2).min(Duration::from_secs(15));
            }
        }
    };
    let message = status.message.as_deref().map(|m| clean_line(m, 200));
    match status.state.as_str() {
        "succeeded" => {
            if steps.started.is_empty() {
                // An engine that reports no steps still gets one, with the run's time.
                progress.step_started("deploy engine");
                progress.step_finished(
                    &StepResult {
                        outcome: StepOutcome::Succeeded,
                        duration: began.elapsed(),
                        tail: vec![],
                    },
                    None,
                );
            }
            steps.close_open(progress, StepOutcome::Succeeded, &[]);
            Ended::Succeeded {
                version: status
                    .version
                    .as_deref()
                    .map(|v| clean_line(v, 64))
                    .filter(|v| !v.is_empty()),
            }
        }
        "cancelled" => {
            steps.close_open(progress, StepOutcome::Cancelled, &[]);
            Ended::Cancelled(match status.message.as_deref() {
                Some(m) => format!("cancelled by the deploy engine: {}", clean_line(m, 200)),
                None => "cancelled by the deploy engine".into(),
            })
        }
        _ => {
            let why = message.unwrap_or_else(|| "failed".into());
            let tail = status.output_lines();
            if steps.started.is_empty() {
                progress.step_started("deploy engine");
                steps.started.push("deploy engine".into());
            }
            let failed_step = steps.started.get(steps.finished).cloned();
            steps.close_open(
                progress,
                StepOutcome::Failed {
                    status: why.clone(),
                },
                &tail,
            );
            match failed_step {
                Some(name) => Ended::Failed(format!("'{name}' failed: {why}")),
                None => Ended::Failed(format!("the deploy engine says the run failed: {why}")),
            }
        }
    }
}

/// POSTs the run; returns the status URL. Never retried.
async fn start(
    http: &reqwest::Client,
    work: &HttpWork,
    authed: &impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> Result<String, String> {
    let response = authed(http.post(&work.url).json(&work.body))
        .send()
        .await
        .map_err(|e| {
            format!(
                "{} did not answer: {} (check the target's url)",
                work.url,
                crate::infra::http_client::error_chain(&e)
            )
        })?;
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        let why = match status.as_u16() {
            401 | 403 => " (check the target's token)".to_owned(),
            _ => String::new(),
        };
        return Err(format!(
            "{} answered {}: {}{why}",
            work.url,
            status,
            clean_line(&body, 200)
        ));
    }
    let named = serde_json::from_str::<Accepted>(&body)
        .ok()
        .and_then(|a| a.status_url)
        .or(location);
    let Some(named) = named else {
        return Err(format!(
            "{} accepted the run but gave no status_url to follow",
            work.url
        ));
    };
    let base = reqwest::Url::parse(&work.url).map_err(|e| format!("bad url {}: {e}", work.url))?;
    base.join(&named)
        .map(|u| u.to_string())
        .map_err(|e| format!("bad status_url {named:?}: {e}"))
}

async fn poll(
    http: &reqwest::Client,
    url: &str,
    authed: &impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> Result<Status, String> {
    let response = authed(http.get(url))
        .send()
        .await
        .map_err(|e| crate::infra::http_client::error_chain(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{url} answered {status}"));
    }
    response.json::<Status>().await.map_err(|e| {
        format!(
            "unreadable status: {}",
            crate::infra::http_client::error_chain(&e)
        )
    })
}

/// Asks the engine to stop, then waits briefly for it to say so.
async fn stop(
    http: &reqwest::Client,
    url: &str,
    authed: &impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> Option<Status> {
    if let Err(e) = authed(http.delete(url)).send().await {
        tracing::warn!(url, error = %crate::infra::http_client::error_chain(&e), "could not ask the deploy engine to stop");
    }
    let until = Instant::now() + STOP_WAIT;
    while Instant::now() < until {
        if let Ok(status) = poll(http, url, authed).await {
            if status.is_final() {
                return Some(status);
            }
        }
        tokio::time::sleep(POLL).await;
    }
    None
}
