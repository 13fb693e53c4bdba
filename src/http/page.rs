//! The deploy page, after Flickr's Deployinator screen: what people in an incident would rather
//! look at than scroll back for. `/` shows at a glance whether deploys may go (a red NO DEPLOY
//! PLEASE banner with who, why, since and until, or DEPLOY OK), each target's live and staged
//! build and its run in progress (every finished step with its time, the running step with its
//! elapsed time and last output line), what alerts fire, the feature flags, and the recent
//! deploy log; `/log` pages through the whole log; `/runs/{id}` shows one run, every step
//! with its output tail.
//!
//! Server-rendered (maud escapes every value, so a hold's reason is text, never markup), one
//! stylesheet and one small script inline, nothing fetched from elsewhere: it works on a
//! network without internet. The script follows `/events` ([`super::live`]) and renders the
//! page anew when something happens; with JavaScript off the page is the same, a reload away
//! from news. For someone a trusted proxy signs in, it has the buttons `[access]` grants them
//! (stage, deploy, hold, lift); [`super::actions`] carries them out. For anyone else it is
//! read-only.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;

use super::actions::{Controls, Dashboard};
use super::viewer::Peer;
use crate::bot::Bot;
use crate::chat::text::human_duration;
use crate::deploy::{Active, TargetStatus};
use crate::store::{format_time, now_ms, Hold, LogEntry, Millis, Run, RunState, StepRecord};

/// Log entries on `/`, and on each page of `/log`.
const RECENT: usize = 15;
const PER_PAGE: usize = 50;

const STYLE: &str = include_str!("page.css");
/// Follows `/events` and renders the page anew on each; without it the page is the same, a
/// reload away from news.
const LIVE: &str = include_str!("page.js");

/// `GET /`: the banner, every target, the recent log; the buttons the viewer may press.
pub async fn index(
    State(dashboard): State<Arc<Dashboard>>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let bot = &dashboard.bot;
    let controls = dashboard.controls(&peer, &headers);
    let shown = match dashboard.shown.read(bot).await {
        Ok(shown) => shown,
        Err(why) => return unavailable(&why),
    };
    let Shown {
        holds,
        targets,
        log,
    } = &*shown;
    let now = now_ms();
    let controls = controls.as_ref();
    page(
        "lever",
        html! {
            @if let Some(c) = controls { (signed_in(c)) }
            (banner(holds, now, controls))
            (firing(bot))
            @if targets.is_empty() {
                p.quiet { "No targets are configured: add [targets.NAME] to bot.toml." }
            }
            section.targets {
                @for (status, steps) in targets { (target(bot, status, steps, now, controls)) }
            }
            (flags(bot))
            section {
                h2 { "Deploy log" }
                (log_table(log))
                p { a href="/log" { "The whole log →" } }
            }
        },
    )
    .into_response()
}

/// What `/` shows from the store: the holds, each target with its run's steps, the recent log.
pub struct Shown {
    holds: Vec<Hold>,
    targets: Vec<(TargetStatus, Vec<StepRecord>)>,
    log: Vec<LogEntry>,
}

/// How long a read of [`Shown`] serves pages, when no event says it changed. Short: a standby
/// hears no events (the active lever makes them), and a step's last output line moves without.
const FRESH: Duration = Duration::from_millis(500);

/// The last read of what `/` shows, shared by every page asking at once. After an event every
/// open page fetches `/` together; they wait here for one read (an async wait each) instead of
/// each taking a thread for a store read of its own.
#[derive(Default)]
pub struct LastRead {
    kept: tokio::sync::Mutex<Option<Kept>>,
}

struct Kept {
    /// `Events::published` when the read began: an event since means it may be out of date.
    events: u64,
    at: std::time::Instant,
    shown: Arc<Shown>,
}

impl LastRead {
    pub async fn read(&self, bot: &Bot) -> Result<Arc<Shown>, String> {
        let mut kept = self.kept.lock().await;
        let events = bot.events.published();
        if let Some(k) = kept
            .as_ref()
            .filter(|k| k.events == events && k.at.elapsed() < FRESH)
        {
            return Ok(k.shown.clone());
        }
        let shown = Arc::new(read_shown(bot)?);
        *kept = Some(Kept {
            events,
            at: std::time::Instant::now(),
            shown: shown.clone(),
        });
        Ok(shown)
    }
}

fn read_shown(bot: &Bot) -> Result<Shown, String> {
    let holds = bot.deploys.holds().map_err(|e| e.to_string())?;
    let mut targets = Vec::new();
    for name in bot.config.targets.keys() {
        let status = bot.deploys.status(name).map_err(|e| e.to_string())?;
        let steps = match &status.active {
            Some(active) => bot.store.steps(active.run_id).map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        targets.push((status, steps));
    }
    let log = bot.deploys.log(RECENT, None).map_err(|e| e.to_string())?;
    Ok(Shown {
        holds,
        targets,
        log,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    before: Option<i64>,
}

/// `GET /log?before=ID`: the deploy log, [`PER_PAGE`] entries a page, newest first.
pub async fn log(State(bot): State<Arc<Bot>>, Query(query): Query<LogQuery>) -> Response {
    let entries = match bot.store.log_before(query.before, PER_PAGE) {
        Ok(entries) => entries,
        Err(e) => return unavailable(&e.to_string()),
    };
    let older = (entries.len() == PER_PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    page(
        "Deploy log · lever",
        html! {
            p { a href="/" { "← lever" } }
            h2 { "Deploy log" }
            @if entries.is_empty() { p.quiet { "Nothing is in the log yet." } }
            @else { (log_table(&entries)) }
            nav.pages {
                @if query.before.is_some() { a href="/log" { "Newest" } }
                @if let Some(id) = older { a href={ "/log?before=" (id) } { "Older →" } }
            }
        },
    )
    .into_response()
}

/// `GET /runs/{id}`: one run, every step with its output tail.
pub async fn run(State(bot): State<Arc<Bot>>, Path(id): Path<i64>) -> Response {
    let found = bot
        .store
        .run(id)
        .and_then(|run| Ok((run, bot.store.steps(id)?)));
    let (run, steps) = match found {
        Ok((Some(run), steps)) => (run, steps),
        Ok((None, _)) => {
            return (
                StatusCode::NOT_FOUND,
                page(
                    "No such run · lever",
                    html! {
                        p { a href="/" { "← lever" } }
                        p.quiet { "There is no run " (id) " in the deploy log." }
                    },
                ),
            )
                .into_response()
        }
        Err(e) => return unavailable(&e.to_string()),
    };
    let now = now_ms();
    page(
        &format!("{} {} #{} · lever", run.target, run.phase.as_str(), run.id),
        html! {
            p { a href="/" { "← lever" } }
            h2 { (run.target) " " (run.phase.as_str()) " #" (run.id) }
            p { (run_summary(&run, now)) }
            @if let Some(note) = &run.note { p.quiet { (note) } }
            @if let Some(error) = &run.error { p.failed { (error) } }
            ol.steps {
                @for step in &steps {
                    li class=(step_class(&step.state)) {
                        (step_line(step, now))
                        @if let Some(status) = &step.status { " — " (status) }
                        @if let Some(tail) = step.tail.as_ref().filter(|t| !t.is_empty()) {
                            pre { (tail) }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

/// The whole document around `body`.
pub(super) fn page(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) }
                    style { (PreEscaped(STYLE)) }
                }
                body {
                    header { h1 { a href="/" { "lever" } } }
                    main { (body) }
                    script { (PreEscaped(LIVE)) }
                }
            }
        }
        .into_string(),
    )
}

/// The store could not be read: a page that says so, 503.
fn unavailable(why: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        page(
            "lever: the deploy log cannot be read",
            html! {
                p.failed { "The deploy log cannot be read right now: " (why) }
                p.quiet { "Holds and runs are as IRC last said them; reload in a moment." }
            },
        ),
    )
        .into_response()
}

/// Who the page is for, and what they may do here.
fn signed_in(c: &Controls) -> Markup {
    let may: Vec<&str> = [(c.stage, "stage"), (c.deploy, "deploy"), (c.hold, "hold")]
        .into_iter()
        .filter_map(|(may, what)| may.then_some(what))
        .collect();
    html! {
        p.viewer {
            "Signed in as " b { (c.who) } ": "
            @if may.is_empty() { "read-only (no [access] role names web:" (c.who) ")." }
            @else { "you may " (may.join(", ")) " here." }
        }
    }
}

/// The hidden fields every form carries: the person's token and this form's key.
fn form_fields(c: &Controls) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(c.token);
        input type="hidden" name="key" value=(c.key);
    }
}

/// A hold form: a reason and the button; `target` is a target or "all".
fn hold_form(c: &Controls, target: &str, label: &str) -> Markup {
    html! {
        form.hold method="post" action="/hold" {
            (form_fields(c))
            input type="hidden" name="target" value=(target);
            input type="text" name="reason" id={ "reason-" (target) } required maxlength="200"
                placeholder="why (goes into the deploy log)" aria-label={ "Why " (label) };
            button type="submit" { (label) }
        }
    }
}

/// Red NO DEPLOY PLEASE with every hold, or green DEPLOY OK; with the hold role, the buttons
/// that lift each hold or hold everything.
fn banner(holds: &[Hold], now: Millis, controls: Option<&Controls>) -> Markup {
    let holder = controls.filter(|c| c.hold);
    html! {
        @if holds.is_empty() {
            div.banner.ok {
                strong { "DEPLOY OK" } span { "no holds" }
                @if let Some(c) = holder { (hold_form(c, "all", "Hold every target")) }
            }
        } @else {
            div.banner.held {
                strong { "NO DEPLOY PLEASE" }
                ul {
                    @for hold in holds {
                        li {
                            b { (hold.scope()) } " held by " b { (hold.by_nick) }
                            " since " (format_time(hold.placed_at)) " UTC ("
                            (ago(hold.placed_at, now)) " ago): " (hold.reason)
                            @if let Some(until) = hold.expires_at {
                                " — until " (format_time(until)) " UTC"
                            }
                            @if let Some(c) = holder {
                                form.lift method="post"
                                    action={ "/unhold/" (hold.target.as_deref().unwrap_or("all")) } {
                                    (form_fields(c))
                                    button type="submit" { "Lift (DEPLOY OK)" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What fires now, as Alertmanager's notifications said (critical first); nothing when
/// nothing does.
fn firing(bot: &Bot) -> Markup {
    let alerts = bot.alerts.firing();
    html! {
        @if !alerts.is_empty() {
            section.alerts {
                h2 { "Firing alerts (" (alerts.len()) ")" }
                ul {
                    @for alert in &alerts {
                        li.critical[alert.critical()] {
                            b { (alert.name) }
                            @if let Some(instance) = &alert.instance { " on " (instance) }
                            @if let Some(severity) = &alert.severity { " · " (severity) }
                            @if let Some(summary) = &alert.summary { ": " (summary) }
                            @if !alert.since.is_empty() {
                                span.quiet { " — since " (alert.since) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Feature flags as `!flag` lists them; a disabled one stands out.
fn flags(bot: &Bot) -> Markup {
    let snapshot = bot.flags.snapshot();
    let defs = bot.flags.defs();
    html! {
        @if !defs.is_empty() {
            section {
                h2 { "Feature flags" }
                ul.flags {
                    @for def in defs.values() {
                        @if let Some(state) = snapshot.states.get(&def.key) {
                            li.off[!state.enabled] {
                                (crate::flags::describe(def, state, false))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A target's card: held or not, live and staged, the run in progress, and the buttons the
/// viewer may press.
fn target(
    bot: &Bot,
    status: &TargetStatus,
    steps: &[StepRecord],
    now: Millis,
    controls: Option<&Controls>,
) -> Markup {
    let held = !status.holds.is_empty();
    html! {
        article.target.held[held] {
            h2 { (status.target) @if held { span.tag { "held" } } }
            dl {
                dt { "live" } dd { (build(status.live.as_ref())) }
                dt { "staged" } dd { (build(status.staged.as_ref())) }
            }
            @if let Some(active) = &status.active { (active_run(active, steps, now)) }
            @if let Some(c) = controls { (target_buttons(bot, status, c)) }
        }
    }
}

/// Stage, deploy (to the page that shows what will ship) and hold, as the viewer may; off
/// while a run is in progress.
fn target_buttons(bot: &Bot, status: &TargetStatus, c: &Controls) -> Markup {
    let name = &status.target;
    let config = bot.config.targets.get(name);
    let can = |phase| config.is_some_and(|t| crate::deploy::plan::supports(t, phase));
    let busy = status.active.is_some();
    html! {
        div.actions {
            @if c.stage && can(crate::store::Phase::Stage) {
                form method="post" action={ "/stage/" (name) } {
                    (form_fields(c))
                    button type="submit" disabled[busy] { "Stage " (name) }
                }
            }
            @if c.deploy && can(crate::store::Phase::Deploy) {
                @if busy { button disabled { "Deploy " (name) "…" } }
                @else { a.button href={ "/deploy/" (name) } { "Deploy " (name) "…" } }
            }
            @if c.hold { (hold_form(c, name, &format!("Hold {name}"))) }
        }
    }
}

/// A build: its version, who made it and when, linked to its run.
fn build(run: Option<&Run>) -> Markup {
    html! {
        @match run {
            None => span.quiet { "none yet" },
            Some(run) => {
                a href={ "/runs/" (run.id) } { (run.version.as_deref().unwrap_or("(no version)")) }
                span.quiet {
                    " by " (run.user) " at "
                    (format_time(run.finished_at.unwrap_or(run.started_at))) " UTC"
                }
            }
        }
    }
}

/// "Active Deploy": who runs what for how long, each finished step, the running one.
fn active_run(active: &Active, steps: &[StepRecord], now: Millis) -> Markup {
    let running = active.step.as_ref();
    html! {
        div.active {
            h3 {
                "Active " (active.phase.as_str()) " by " (active.user) " — running for "
                (human_duration(active.started.elapsed()))
            }
            ol.steps {
                @for step in steps.iter().filter(|s| s.state != "running") {
                    li class=(step_class(&step.state)) { (step_line(step, now)) }
                }
                @if let Some((i, name, since)) = running {
                    li.running {
                        (name) " (" (i + 1) " of " (active.steps) ")….. running for "
                        (human_duration(since.elapsed()))
                        @if let Some(last) = active.output.last_line() { pre { (last) } }
                    }
                }
            }
            p { a href={ "/runs/" (active.run_id) } { "The run →" } }
        }
    }
}

/// `exporting svn.....ok (3202 ms)`, as the channel says it.
fn step_line(step: &StepRecord, now: Millis) -> String {
    let took = step.duration_ms().unwrap_or(now - step.started_at);
    format!(
        "{}.....{} ({})",
        step.name,
        step.state,
        human_duration(Duration::from_millis(took.max(0) as u64))
    )
}

fn step_class(state: &str) -> &'static str {
    match state {
        "ok" => "ok",
        "running" => "running",
        _ => "failed",
    }
}

/// How a run went: state, who, when, how long, from which version to which.
fn run_summary(run: &Run, now: Millis) -> String {
    let took = run.finished_at.unwrap_or(now) - run.started_at;
    let mut text = format!(
        "{} by {}, started {} UTC, {} {}",
        run.state.as_str(),
        run.user,
        format_time(run.started_at),
        if run.state == RunState::Running {
            "running for"
        } else {
            "took"
        },
        human_duration(Duration::from_millis(took.max(0) as u64))
    );
    match (&run.prev_version, &run.version) {
        (Some(from), Some(to)) => text.push_str(&format!("; {from} → {to}")),
        (None, Some(to)) => text.push_str(&format!("; {to}")),
        _ => {}
    }
    if let Some(by) = &run.stopped_by {
        text.push_str(&format!("; stopped by {by}"));
    }
    text
}

fn log_table(entries: &[LogEntry]) -> Markup {
    html! {
        table.log {
            @for entry in entries {
                tr class=(entry.kind.as_str()) {
                    td.when { (format_time(entry.at)) }
                    td.who { (entry.user) }
                    td {
                        @match entry.run_id {
                            Some(run) => a href={ "/runs/" (run) } { (entry.text) },
                            None => (entry.text),
                        }
                    }
                }
            }
        }
    }
}

fn ago(at: Millis, now: Millis) -> String {
    human_duration(Duration::from_millis((now - at).max(0) as u64))
}
