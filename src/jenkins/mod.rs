//! Jenkins' remote API, as `!build` uses it: trigger a configured job, follow its queue item to
//! the build, and poll the build until it finishes.
//!
//! ```text
//!  POST <url>/job/<path>/buildWithParameters (or /build)  → 201, Location: <root>/queue/item/<id>/
//!  GET  <queue item>/api/json   why while queued; cancelled; executable {number, url} once started
//!  GET  <build>/api/json        building, result, duration (ms)
//! ```
//!
//! Only the triggering POST changes anything, so it is never retried: a retry after a lost
//! answer could queue a second build. Every GET is retried with backoff while the failure looks
//! passing (no connection, no answer in time, 5xx, 429). Everything is bounded by one deadline
//! (`[jenkins] timeout`), so following a build always ends.
//!
//! Credentials go only to the configured `[jenkins] url`: a queue item or build that Jenkins
//! names under another root URL (its configured public address) is read at the same place
//! under `[jenkins] url` instead, and the name Jenkins gave is kept for people to click.

pub mod follow;

use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::time::Instant;

use crate::chat::text::{sanitize_line, truncate_chars};
use crate::config::{JenkinsConfig, JenkinsJob};

/// How long one HTTP call may take (less when the deadline is nearer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait before retrying a failed GET; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(15);
/// How long GETs keep failing before lever gives up on a build (Jenkins restarting, say).
const RETRY_FOR: Duration = Duration::from_secs(120);

/// Why talking to Jenkins failed, worded for the channel: each names what to check.
#[derive(Debug, thiserror::Error)]
pub enum JenkinsError {
    #[error("Jenkins at {url} did not answer: {reason} (check [jenkins] url)")]
    Unreachable { url: String, reason: String },
    #[error("Jenkins did not accept lever's credentials ({status}): check [jenkins] user and LEVER_JENKINS__TOKEN")]
    Unauthorized { status: String },
    #[error("Jenkins refused ({status}{detail}): check [jenkins] user and LEVER_JENKINS__TOKEN (an API token, not a password; the user must be allowed to build the job)")]
    Forbidden { status: String, detail: String },
    #[error("Jenkins has no {what} at {url} (404){hint}")]
    NotFound {
        what: &'static str,
        url: String,
        hint: &'static str,
    },
    #[error("Jenkins answered {status} to {what}{detail}")]
    Failed {
        what: &'static str,
        status: String,
        detail: String,
    },
    #[error("Jenkins took the build but did not say which queue item it is (HTTP {status} without Location; Jenkins before 1.519 answers so, JENKINS-23235): lever cannot follow it — see {job}")]
    NoQueueItem { status: u16, job: String },
    #[error("Jenkins answered {status} pointing to {location}, not to a queue item, so the build may not be queued (a login page? check [jenkins] url, user and LEVER_JENKINS__TOKEN) — see {job}")]
    NotQueued {
        status: u16,
        location: String,
        job: String,
    },
    #[error("Jenkins' answer to {what} was unreadable: {reason}")]
    Unreadable { what: &'static str, reason: String },
    #[error("Jenkins at {url} did not answer the build request within {} s, so it may or may not be queued; lever does not ask again, since that could start it twice — see {job}", REQUEST_TIMEOUT.as_secs())]
    TriggerUnanswered { url: String, job: String },
    /// `[jenkins] timeout` passed; the caller says what was still going on.
    #[error("gave up waiting ([jenkins] timeout)")]
    TimedOut,
}

impl JenkinsError {
    /// Whether the error leaves it open that Jenkins queued the build.
    pub fn maybe_queued(&self) -> bool {
        matches!(
            self,
            JenkinsError::NoQueueItem { .. }
                | JenkinsError::NotQueued { .. }
                | JenkinsError::TriggerUnanswered { .. }
        )
    }
}

/// A queue item as `<queue item>/api/json` describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct QueueItem {
    /// Why it still waits ("Build #9 is already in progress (ETA:15 sec)"); null once it left.
    #[serde(default)]
    pub why: Option<String>,
    /// Present (true) once someone cancelled it.
    #[serde(default)]
    pub cancelled: bool,
    /// Absent while queued, the build once it started, null if cancelled.
    #[serde(default)]
    pub executable: Option<Executable>,
}

/// The build a queue item became.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Executable {
    pub number: u64,
    pub url: String,
}

/// Where a queue item stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueState {
    Waiting { why: Option<String> },
    Cancelled,
    Started(Executable),
}

impl QueueItem {
    pub fn state(&self) -> QueueState {
        match (&self.executable, self.cancelled) {
            (Some(executable), _) => QueueState::Started(executable.clone()),
            (None, true) => QueueState::Cancelled,
            // A left item without its build yet: the build is being created.
            (None, false) => QueueState::Waiting {
                why: self.why.clone(),
            },
        }
    }
}

/// A build as `<build>/api/json` describes it (the fields lever reads).
#[derive(Debug, Clone, Deserialize)]
pub struct BuildInfo {
    #[serde(default)]
    pub building: bool,
    /// SUCCESS, UNSTABLE, FAILURE, NOT_BUILT, ABORTED; null while building.
    #[serde(default)]
    pub result: Option<String>,
    /// Milliseconds; 0 while building.
    #[serde(default)]
    pub duration: i64,
    #[serde(default)]
    pub number: Option<u64>,
}

impl BuildInfo {
    /// Whether the build is over (not building, and a result recorded).
    pub fn finished(&self) -> bool {
        !self.building && self.result.is_some()
    }
}

/// A build waiting in Jenkins' queue.
#[derive(Debug, Clone)]
pub struct Queued {
    /// The queue item, under `[jenkins] url`.
    pub item: Url,
    /// The job, under `[jenkins] url`.
    pub job: Url,
}

/// A build that started.
#[derive(Debug, Clone)]
pub struct Started {
    pub number: u64,
    /// The build's page as Jenkins names it (sanitised), for people.
    pub link: String,
    /// Where lever reads it.
    api: Url,
    /// Its page under `[jenkins] url` (for stop and console).
    page: Url,
}

/// A build that finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Jenkins' result word (SUCCESS, FAILURE, ...), reduced to `A-Z_`.
    pub result: String,
    pub duration_ms: Option<u64>,
}

/// One attempt at a GET: whether trying again may help.
enum Attempt {
    Retry(JenkinsError),
    Stop(JenkinsError),
}

/// Jenkins' remote API at `[jenkins] url`, with the configured credentials.
pub struct Client {
    http: reqwest::Client,
    /// `[jenkins] url`, ending in `/`.
    base: Url,
    auth: Option<(String, String)>,
    poll_interval: Duration,
}

impl Client {
    pub fn new(config: &JenkinsConfig) -> Client {
        crate::infra::http_client::install_provider();
        let http = reqwest::Client::builder()
            // A 302 answer to the trigger is Jenkins' own word, not a page to fetch.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let mut base =
            Url::parse(&config.url).unwrap_or_else(|_| Url::parse("http://invalid/").unwrap());
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Client {
            http,
            base,
            auth: match (&config.user, &config.token) {
                (Some(user), Some(token)) => Some((user.clone(), token.expose().to_owned())),
                _ => None,
            },
            poll_interval: config.poll_interval,
        }
    }

    /// `[jenkins] url` as configured, for messages.
    fn shown_base(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    /// The job's page: `<url>/job/team/job/app/`.
    pub fn job_url(&self, job: &JenkinsJob, name: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            for part in job.path(name) {
                segments.push("job").push(part);
            }
            segments.push("");
        }
        url
    }

    fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.auth {
            Some((user, token)) => request.basic_auth(user, Some(token)),
            None => request,
        }
    }

    /// Queues a build of `job` (named `name` in chat) with `params`: `buildWithParameters`
    /// for a job that declares parameters, `build` for one that does not. Never retried.
    pub async fn trigger(
        &self,
        job: &JenkinsJob,
        name: &str,
        params: &[(String, String)],
    ) -> Result<Queued, JenkinsError> {
        let job_url = self.job_url(job, name);
        let endpoint = if job.params.is_empty() {
            "build"
        } else {
            "buildWithParameters"
        };
        let url = job_url.join(endpoint).unwrap_or_else(|_| job_url.clone());
        let mut request = self
            .request(reqwest::Method::POST, url)
            .timeout(REQUEST_TIMEOUT);
        if !job.params.is_empty() {
            request = request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form_body(params));
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                JenkinsError::TriggerUnanswered {
                    url: self.shown_base(),
                    job: job_url.to_string(),
                }
            } else {
                self.unreachable(&e)
            }
        })?;
        let status = response.status();
        if !(status.is_success() || status.is_redirection()) {
            let body = response.text().await.unwrap_or_default();
            return Err(self.refusal(status, &body, "the build request", "job", &job_url));
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
            .filter(|v| !v.is_empty());
        let Some(location) = location else {
            return Err(JenkinsError::NoQueueItem {
                status: status.as_u16(),
                job: job_url.to_string(),
            });
        };
        let named = self.base.join(&location).ok();
        let Some(id) = named.as_ref().and_then(queue_id) else {
            return Err(JenkinsError::NotQueued {
                status: status.as_u16(),
                location: truncate_chars(&sanitize_line(&location), 200).into_owned(),
                job: job_url.to_string(),
            });
        };
        let item = named.filter(|l| self.is_ours(l)).unwrap_or_else(|| {
            self.base
                .join(&format!("queue/item/{id}/"))
                .unwrap_or_else(|_| self.base.clone())
        });
        Ok(Queued { item, job: job_url })
    }

    /// Follows a queue item until its build starts (`Some`) or it is cancelled (`None`); `why`
    /// is told each reason Jenkins gives for the wait.
    pub async fn wait_for_start(
        &self,
        queued: &Queued,
        deadline: Instant,
        mut why: impl FnMut(&str),
    ) -> Result<Option<Started>, JenkinsError> {
        let api = api_json(&queued.item);
        loop {
            let item: QueueItem = self.get_json(&api, "the queue item", deadline).await?;
            match item.state() {
                QueueState::Started(executable) => {
                    return Ok(Some(self.started(queued, executable)));
                }
                QueueState::Cancelled => return Ok(None),
                QueueState::Waiting { why: Some(reason) } => why(&reason),
                QueueState::Waiting { why: None } => {}
            }
            self.pause(deadline).await?;
        }
    }

    /// Polls a build until it finishes.
    pub async fn wait_for_end(
        &self,
        build: &Started,
        deadline: Instant,
    ) -> Result<Finished, JenkinsError> {
        loop {
            let info: BuildInfo = self.get_json(&build.api, "the build", deadline).await?;
            if info.finished() {
                let result: String = info
                    .result
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| c.is_ascii_uppercase() || *c == '_')
                    .take(20)
                    .collect();
                return Ok(Finished {
                    result: if result.is_empty() {
                        "UNKNOWN".into()
                    } else {
                        result
                    },
                    duration_ms: u64::try_from(info.duration).ok().filter(|d| *d > 0),
                });
            }
            self.pause(deadline).await?;
        }
    }

    /// The build a queue item became: read under `[jenkins] url`, shown as Jenkins named it.
    fn started(&self, queued: &Queued, executable: Executable) -> Started {
        let fallback = queued
            .job
            .join(&format!("{}/", executable.number))
            .unwrap_or_else(|_| queued.job.clone());
        let named = self.base.join(&executable.url).ok();
        let page = named
            .as_ref()
            .filter(|u| self.is_ours(u))
            .cloned()
            .unwrap_or_else(|| fallback.clone());
        let shown = sanitize_line(&executable.url);
        let link = if (shown.starts_with("http://") || shown.starts_with("https://"))
            && !shown.contains(' ')
        {
            truncate_chars(&shown, 300).into_owned()
        } else {
            page.to_string()
        };
        Started {
            number: executable.number,
            link,
            api: api_json(&page),
            page,
        }
    }

    /// Takes a build out of the queue before it starts. Sent once, never retried.
    pub async fn cancel_queued(&self, queued: &Queued) -> Result<(), JenkinsError> {
        let id = queue_id(&queued.item).unwrap_or_default();
        let url = self
            .base
            .join(&format!("queue/cancelItem?id={id}"))
            .unwrap_or_else(|_| self.base.clone());
        self.post_once(url, "cancelling the queued build", &queued.job)
            .await
    }

    /// Asks a running build to stop. Sent once, never retried.
    pub async fn stop(&self, build: &Started) -> Result<(), JenkinsError> {
        let url = build
            .page
            .join("stop")
            .unwrap_or_else(|_| build.page.clone());
        self.post_once(url, "stopping the build", &build.page).await
    }

    async fn post_once(
        &self,
        url: Url,
        what: &'static str,
        about: &Url,
    ) -> Result<(), JenkinsError> {
        let response = self
            .request(reqwest::Method::POST, url)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if status.is_success() || status.is_redirection() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(self.refusal(status, &body, what, "build", about))
    }

    /// The last `lines` lines of a build's console log, read in bounded memory; empty if
    /// Jenkins will not give it.
    pub async fn console_tail(&self, build: &Started, lines: usize) -> Vec<String> {
        let url = build
            .page
            .join("consoleText")
            .unwrap_or_else(|_| build.page.clone());
        let Ok(mut response) = self
            .request(reqwest::Method::GET, url)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
        else {
            return Vec::new();
        };
        if !response.status().is_success() {
            return Vec::new();
        }
        // Keep only the end of what arrives: a console can be gigabytes.
        let mut tail: Vec<u8> = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            tail.extend_from_slice(&chunk);
            if tail.len() > 64 * 1024 {
                tail.drain(..tail.len() - 64 * 1024);
            }
        }
        let text = String::from_utf8_lossy(&tail);
        let mut last: Vec<String> = text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .map(|l| truncate_chars(&sanitize_line(l), 300).into_owned())
            .collect();
        let skip = last.len().saturating_sub(lines);
        last.drain(..skip);
        last
    }

    /// Whether `url` lies under `[jenkins] url` (same scheme, host, port and path prefix).
    fn is_ours(&self, url: &Url) -> bool {
        url.origin() == self.base.origin() && url.path().starts_with(self.base.path())
    }

    /// Waits one poll interval, or fails once the deadline has passed.
    async fn pause(&self, deadline: Instant) -> Result<(), JenkinsError> {
        if Instant::now() >= deadline {
            return Err(JenkinsError::TimedOut);
        }
        tokio::time::sleep_until(deadline.min(Instant::now() + self.poll_interval)).await;
        Ok(())
    }

    /// GETs `url` as JSON, retrying passing failures with backoff for up to [`RETRY_FOR`]
    /// (never past the deadline).
    async fn get_json<T: DeserializeOwned>(
        &self,
        url: &Url,
        what: &'static str,
        deadline: Instant,
    ) -> Result<T, JenkinsError> {
        let mut backoff = BACKOFF_START;
        let mut failing_since: Option<Instant> = None;
        loop {
            let error = match self.get_once(url, what, deadline).await {
                Ok(text) => {
                    return serde_json::from_str(&text).map_err(|e| JenkinsError::Unreadable {
                        what,
                        reason: e.to_string(),
                    })
                }
                Err(Attempt::Stop(error)) => return Err(error),
                Err(Attempt::Retry(error)) => error,
            };
            let since = *failing_since.get_or_insert_with(Instant::now);
            let wait = backoff.mul_f64(0.75 + fastrand::f64() / 2.0);
            let next = Instant::now() + wait;
            if next >= deadline || next.duration_since(since) > RETRY_FOR {
                return Err(error);
            }
            tracing::warn!(error = %error, %url, retry_in = ?wait, "Jenkins GET failed; retrying");
            tokio::time::sleep_until(next).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn get_once(
        &self,
        url: &Url,
        what: &'static str,
        deadline: Instant,
    ) -> Result<String, Attempt> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Attempt::Stop(JenkinsError::TimedOut));
        }
        let response = self
            .request(reqwest::Method::GET, url.clone())
            .timeout(left.min(REQUEST_TIMEOUT))
            .send()
            .await
            .map_err(|e| Attempt::Retry(self.unreachable(&e)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| Attempt::Retry(self.unreachable(&e)))?;
        if status.is_success() {
            return Ok(text);
        }
        let thing = what.trim_start_matches("the ");
        let error = self.refusal(status, &text, what, thing, url);
        if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
        {
            Err(Attempt::Retry(error))
        } else {
            Err(Attempt::Stop(error))
        }
    }

    fn unreachable(&self, error: &reqwest::Error) -> JenkinsError {
        JenkinsError::Unreachable {
            url: self.shown_base(),
            reason: reason(error),
        }
    }

    /// An error status, with what Jenkins said about it.
    fn refusal(
        &self,
        status: StatusCode,
        body: &str,
        request: &'static str,
        thing: &'static str,
        url: &Url,
    ) -> JenkinsError {
        let shown = status_text(status);
        let detail = page_text(body)
            .map(|t| format!(": {t}"))
            .unwrap_or_default();
        match status {
            StatusCode::UNAUTHORIZED => JenkinsError::Unauthorized { status: shown },
            StatusCode::FORBIDDEN => JenkinsError::Forbidden {
                status: shown,
                detail,
            },
            StatusCode::NOT_FOUND => JenkinsError::NotFound {
                what: thing,
                url: url.to_string(),
                hint: if thing == "job" {
                    " (check the job's `job` path in [jenkins.jobs])"
                } else {
                    ""
                },
            },
            _ => JenkinsError::Failed {
                what: request,
                status: shown,
                detail,
            },
        }
    }
}

/// `<page>api/json`.
fn api_json(page: &Url) -> Url {
    let mut page = page.clone();
    if !page.path().ends_with('/') {
        let path = format!("{}/", page.path());
        page.set_path(&path);
    }
    page.join("api/json").unwrap_or(page)
}

/// The id in `<root>/queue/item/<id>/`.
fn queue_id(location: &Url) -> Option<u64> {
    let segments: Vec<&str> = location
        .path_segments()?
        .filter(|s| !s.is_empty())
        .collect();
    match segments.as_slice() {
        [.., "queue", "item", id] => id.parse().ok(),
        _ => None,
    }
}

/// `K=V&K2=V2`, form-encoded.
fn form_body(params: &[(String, String)]) -> String {
    let mut scratch = Url::parse("http://form.invalid/").expect("a fixed URL parses");
    scratch
        .query_pairs_mut()
        .extend_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    scratch.query().unwrap_or("").to_owned()
}

/// "503 Service Unavailable".
fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// A short line from an error body: an HTML page's `<title>`, else its first line.
fn page_text(body: &str) -> Option<String> {
    let body = body.trim();
    let text = if body.starts_with('<') {
        let lower = body.to_ascii_lowercase();
        let start = lower.find("<title>")? + "<title>".len();
        let end = lower[start..].find("</title>")? + start;
        &body[start..end]
    } else {
        body.lines().next()?
    };
    let text = sanitize_line(text);
    let text = text.trim();
    (!text.is_empty()).then(|| truncate_chars(text, 200).into_owned())
}

/// What went wrong with a request, down to its root cause ("Connection refused (os error 111)").
fn reason(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("no answer within {} s", REQUEST_TIMEOUT.as_secs());
    }
    let mut text = None;
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text = Some(inner.to_string());
        source = inner.source();
    }
    text.unwrap_or_else(|| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PENDING: &str = include_str!("../../testdata/payloads/jenkins/queueItemPending.json");
    const RUNNING: &str = include_str!("../../testdata/payloads/jenkins/queueItemRunning.json");
    const CANCELLED: &str = include_str!("../../testdata/payloads/jenkins/queueItemCancelled.json");
    const BUILD: &str = include_str!("../../testdata/payloads/jenkins/build-info.json");

    fn client(url: &str) -> Client {
        let config = JenkinsConfig {
            url: url.into(),
            user: Some("lever".into()),
            token: Some(crate::config::Secret::new("t0k")),
            poll_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
            jobs: Default::default(),
        };
        Client::new(&config)
    }

    fn job(path: Option<&str>) -> JenkinsJob {
        JenkinsJob {
            job: path.map(str::to_owned),
            ..JenkinsJob::default()
        }
    }

    #[test]
    fn queue_items_read_as_waiting_started_or_cancelled() {
        let state = |text: &str| serde_json::from_str::<QueueItem>(text).unwrap().state();
        assert_eq!(
            state(PENDING),
            QueueState::Waiting {
                why: Some("Build #9 is already in progress (ETA:15 sec)".into())
            }
        );
        assert_eq!(
            state(RUNNING),
            QueueState::Started(Executable {
                number: 14,
                url: "http://localhost:8082/job/test/14/".into()
            })
        );
        assert_eq!(state(CANCELLED), QueueState::Cancelled);
        assert_eq!(
            state(r#"{"why": null, "cancelled": false, "executable": null}"#),
            QueueState::Waiting { why: None },
            "left the queue, build not created yet"
        );
    }

    #[test]
    fn a_build_reads_with_result_and_duration() {
        let info: BuildInfo = serde_json::from_str(BUILD).unwrap();
        assert!(info.finished());
        assert_eq!(info.result.as_deref(), Some("SUCCESS"));
        assert_eq!(info.duration, 60_750);
        assert_eq!(info.number, Some(10));
        let running: BuildInfo =
            serde_json::from_str(r#"{"building": true, "result": null, "duration": 0}"#).unwrap();
        assert!(!running.finished());
    }

    #[test]
    fn job_urls_nest_folders_and_encode_names() {
        let c = client("https://ci.example/jenkins");
        assert_eq!(
            c.job_url(&job(None), "app").as_str(),
            "https://ci.example/jenkins/job/app/"
        );
        assert_eq!(
            c.job_url(&job(Some("team/my app")), "x").as_str(),
            "https://ci.example/jenkins/job/team/job/my%20app/"
        );
        assert_eq!(
            api_json(&Url::parse("http://h/queue/item/7").unwrap()).as_str(),
            "http://h/queue/item/7/api/json"
        );
    }

    #[test]
    fn queue_ids_come_from_location() {
        let id = |u: &str| queue_id(&Url::parse(u).unwrap());
        assert_eq!(id("http://h:8080/queue/item/143/"), Some(143));
        assert_eq!(id("http://h/jenkins/queue/item/9"), Some(9));
        assert_eq!(id("http://h/job/app/"), None);
    }

    #[test]
    fn builds_named_under_another_root_are_read_under_the_configured_url() {
        let c = client("http://jenkins.internal:8080/");
        let job_url = c.job_url(&job(Some("test")), "app");
        let queued = Queued {
            item: c.base.join("queue/item/143/").unwrap(),
            job: job_url,
        };
        let foreign = Executable {
            number: 14,
            url: "https://ci.example.com/job/test/14/".into(),
        };
        let started = c.started(&queued, foreign);
        assert_eq!(started.link, "https://ci.example.com/job/test/14/");
        assert_eq!(
            started.api.as_str(),
            "http://jenkins.internal:8080/job/test/14/api/json"
        );
        let own = Executable {
            number: 14,
            url: "http://jenkins.internal:8080/job/test/14/".into(),
        };
        assert_eq!(
            c.started(&queued, own).api.as_str(),
            "http://jenkins.internal:8080/job/test/14/api/json"
        );
    }

    #[test]
    fn parameters_are_form_encoded() {
        let params = [
            ("BRANCH".to_owned(), "main".to_owned()),
            ("NOTE".to_owned(), "a b&c=d/é".to_owned()),
        ];
        assert_eq!(form_body(&params), "BRANCH=main&NOTE=a+b%26c%3Dd%2F%C3%A9");
    }

    /// A one-trick HTTP server on a free loopback port: every request gets `answer(path)`, a
    /// whole HTTP/1.1 response. Returns the root URL.
    async fn canned(answer: fn(&str) -> String) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = vec![0; 4096];
                let n = stream.read(&mut request).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&request[..n]).into_owned();
                let path = text.split(' ').nth(1).unwrap_or("").to_owned();
                let _ = stream.write_all(answer(&path).as_bytes()).await;
            }
        });
        url
    }

    fn plain(status: &str, headers: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn a_trigger_without_a_queue_item_is_explained_not_followed() {
        let url = canned(|_| plain("302 Found", "", "")).await;
        let e = client(&url)
            .trigger(&job(None), "app", &[])
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "Jenkins took the build but did not say which queue item it is (HTTP 302 without \
                 Location; Jenkins before 1.519 answers so, JENKINS-23235): lever cannot follow \
                 it — see {url}job/app/"
            )
        );
        let url = canned(|_| plain("302 Found", "Location: /login?from=%2Fjob\r\n", "")).await;
        let e = client(&url)
            .trigger(&job(None), "app", &[])
            .await
            .unwrap_err();
        assert!(
            e.to_string().starts_with(
                "Jenkins answered 302 pointing to /login?from=%2Fjob, not to a queue item"
            ),
            "{e}"
        );
        let url = canned(|_| plain("201 Created", "Location: /queue/item/7/\r\n", "")).await;
        let queued = client(&url).trigger(&job(None), "app", &[]).await.unwrap();
        assert_eq!(queued.item.as_str(), format!("{url}queue/item/7/"));
    }

    #[tokio::test]
    async fn following_ends_at_the_deadline() {
        let url = canned(|_| {
            let body = r#"{"why": "Waiting for next available executor", "blocked": false}"#;
            plain("200 OK", "Content-Type: application/json\r\n", body)
        })
        .await;
        let mut c = client(&url);
        c.poll_interval = Duration::from_millis(100);
        let queued = Queued {
            item: Url::parse(&format!("{url}queue/item/7/")).unwrap(),
            job: Url::parse(&format!("{url}job/app/")).unwrap(),
        };
        let began = Instant::now();
        let mut whys = 0;
        let result = c
            .wait_for_start(&queued, began + Duration::from_millis(600), |_| whys += 1)
            .await;
        assert!(matches!(result, Err(JenkinsError::TimedOut)), "{result:?}");
        assert!(began.elapsed() < Duration::from_secs(2));
        assert!(whys >= 3, "polled every 100 ms: {whys}");
    }

    #[test]
    fn refusals_name_what_to_check() {
        let c = client("http://h/");
        let url = Url::parse("http://h/job/app/").unwrap();
        let e = c.refusal(
            StatusCode::UNAUTHORIZED,
            "",
            "the build request",
            "job",
            &url,
        );
        assert_eq!(
            e.to_string(),
            "Jenkins did not accept lever's credentials (401 Unauthorized): check [jenkins] user and LEVER_JENKINS__TOKEN"
        );
        let page = "<html><head><title>Error 403 No valid crumb was included in the request</title></head></html>";
        let e = c.refusal(
            StatusCode::FORBIDDEN,
            page,
            "the build request",
            "job",
            &url,
        );
        assert!(
            e.to_string().starts_with(
                "Jenkins refused (403 Forbidden: Error 403 No valid crumb was included in the request): check [jenkins] user and LEVER_JENKINS__TOKEN"
            ),
            "{e}"
        );
        let e = c.refusal(StatusCode::NOT_FOUND, "", "the build request", "job", &url);
        assert_eq!(
            e.to_string(),
            "Jenkins has no job at http://h/job/app/ (404) (check the job's `job` path in [jenkins.jobs])"
        );
        let e = c.refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "boom\nstack",
            "the build request",
            "job",
            &url,
        );
        assert_eq!(
            e.to_string(),
            "Jenkins answered 500 Internal Server Error to the build request: boom"
        );
    }
}
