//! Target backends end to end: lever's real binary on a real ngIRCd, a raw client in #ops
//! typing `!deploy`, `!status`, `!cancel` and `!log`, and the engine the target hands its
//! phases to mocked in this process (axum on a free loopback port, on its own runtime):
//!
//! - an HTTP deploy engine (`backend = "http"`, src/backend/engine.rs): the mock takes the
//!   POSTed run, then answers the status URL from a script, one status per poll (a status can
//!   be held until the test lets it go on), and answers DELETE by saying the run stopped;
//! - Jenkins (`backend = "jenkins"`, src/backend/jenkins.rs), answering from the recorded
//!   payloads in `testdata/payloads/jenkins/` like tests/jenkins.rs does, with `stop`,
//!   `queue/cancelItem` and `consoleText` besides.
//!
//! Every mock records each request (method, path, query, body, Authorization, the status it
//! answered), so the tests check what lever sent as well as what it said. Announcements are
//! checked word for word against src/announce.rs. Nothing waits on a clock to decide an
//! outcome: where a test must act while a run is in a given state, the mock holds that state
//! until the test has acted; timeouts only guard against hangs.

mod support;
use support::mock_http::*;
use support::*;

use std::collections::VecDeque;
use std::process::Output;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Talking to lever.

/// A server, a client named `nick` in #ops, and lever on a config with `rest` (targets and
/// sections), once the client has seen lever join.
fn start(nick: &str, rest: &str) -> (Ngircd, Client, Lever) {
    let server = Ngircd::start();
    let mut client = Client::connect(server.port, nick);
    client.join("#ops");
    let lever = Lever::start(&bot_config(server.port, "", rest));
    client.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");
    (server, client, lever)
}

/// `client` says `!deploy target`, and lever starts it: "<nick> is deploying <target>: the
/// current build → live", then `steps` (" (1 step)"; nothing where an engine reports its own).
fn deploys(client: &mut Client, target: &str, steps: &str) {
    client.say_ops(&format!("!deploy {target}"));
    assert_eq!(
        client.lever_says(),
        format!(
            "{} is deploying {target}: the current build → live{steps}",
            client.nick
        )
    );
}

/// lever announces that `client` cancelled their deploy of `target` during its one `step`.
fn hears_cancelled(client: &mut Client, target: &str, step: &str) {
    like(
        &client.lever_says_within(ENGINE_WAIT, ""),
        &format!("{target}: {step}.....CANCELLED ({{dur}})"),
    );
    let nick = client.nick.clone();
    like(
        &client.lever_says_within(ENGINE_WAIT, ""),
        &format!(
            "{target} deploy by {nick} CANCELLED by {nick} during step 1/1 '{step}' after {{dur}}"
        ),
    );
}

/// The ids of `target`'s runs in lever's store (`lever.db` beside its config), oldest first.
fn run_ids(lever: &Lever, target: &str) -> Vec<i64> {
    let conn = rusqlite::Connection::open_with_flags(
        lever.dir.path().join("lever.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open lever's store");
    conn.busy_timeout(Duration::from_secs(5)).ok();
    let mut query = conn
        .prepare("SELECT id FROM runs WHERE target = ?1 ORDER BY id")
        .expect("query runs");
    let ids = query
        .query_map([target], |row| row.get(0))
        .expect("read runs")
        .collect::<Result<Vec<i64>, _>>()
        .expect("read run ids");
    ids
}

/// A poll every 2 s, a retry backoff of 4 s and 8 s: how long lever may need to hear the end
/// of an engine's run. Only a guard against hangs.
const ENGINE_WAIT: Duration = MOCK_WAIT;

// ---------------------------------------------------------------------------------------------
// The HTTP deploy engine.

/// The engine's bearer token (as configured for the target).
const ENGINE_TOKEN: &str = "eng-7c1f9a3e52d84b06";

/// What the mock engine does for one test.
struct Engine {
    /// The answer to `POST /runs`: status and body.
    post: (u16, String),
    /// The answers to `GET /runs/1`, one per poll; the last repeats.
    statuses: Vec<Value>,
    /// A status (by index) repeated until the test opens the gate.
    gate: Option<usize>,
    /// Statuses answered (with a short body) before the scripted ones, one per poll.
    failures: VecDeque<u16>,
    /// What `GET /runs/1` answers once lever sent DELETE.
    after_delete: Value,
    /// Where the script is.
    next: usize,
    /// How often each scripted status was answered.
    served: Vec<usize>,
    deleted: bool,
}

impl Engine {
    /// An engine that takes the run and answers `statuses` in turn.
    fn with(statuses: Vec<Value>) -> Engine {
        let served = vec![0; statuses.len()];
        Engine {
            post: (201, json!({"status_url": "/runs/1"}).to_string()),
            statuses,
            gate: None,
            failures: VecDeque::new(),
            after_delete: json!({"state": "cancelled", "message": "stopped by request"}),
            next: 0,
            served,
            deleted: false,
        }
    }

    /// Holds status `index` until [`Engine::open`].
    fn held_at(mut self, index: usize) -> Engine {
        self.gate = Some(index);
        self
    }

    fn open(&mut self) {
        self.gate = None;
    }
}

fn engine(state: &mut Engine, _root: &str, request: &Seen) -> Answer {
    match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/runs") => Answer::text(state.post.0, &state.post.1),
        ("GET", "/runs/1") => {
            if let Some(status) = state.failures.pop_front() {
                return Answer::text(status, "the deployer is restarting");
            }
            if state.deleted {
                return Answer::json(200, state.after_delete.clone());
            }
            let index = state.next.min(state.statuses.len() - 1);
            state.served[index] += 1;
            if state.gate != Some(index) {
                state.next = index + 1;
            }
            Answer::json(200, state.statuses[index].clone())
        }
        ("DELETE", "/runs/1") => {
            state.deleted = true;
            Answer::json(202, json!({"state": "cancelling"}))
        }
        _ => Answer::text(404, "no such run"),
    }
}

/// `[targets.web]` on the engine at `url`, a line per step, with `extra` keys.
fn web_target(url: &str, extra: &str) -> String {
    format!(
        "[targets.web]\nbackend = \"http\"\nurl = \"{url}\"\ntoken = \"{ENGINE_TOKEN}\"\n\
         announce = \"steps\"\n{extra}\n"
    )
}

/// lever with target `web` on `mock`, and `nick` in #ops.
fn start_web(nick: &str, mock: &Mock<Engine>, extra: &str) -> (Ngircd, Client, Lever) {
    start(nick, &web_target(&format!("{}runs", mock.root()), extra))
}

fn step(name: &str, state: &str, ms: Option<u64>) -> Value {
    match ms {
        Some(ms) => json!({"name": name, "state": state, "duration_ms": ms}),
        None => json!({"name": name, "state": state}),
    }
}

/// The requests of `seen` with `method`.
fn with_method<'a>(seen: &'a [Seen], method: &str) -> Vec<&'a Seen> {
    seen.iter().filter(|s| s.method == method).collect()
}

/// Asserts the one POST lever sent is the run for `nick`, with the bearer token.
fn assert_posted_run(seen: &[Seen], nick: &str, run_id: i64) {
    let posts = with_method(seen, "POST");
    assert_eq!(posts.len(), 1, "one POST, never retried: {seen:#?}");
    let post = posts[0];
    assert_eq!(post.path, "/runs");
    assert_eq!(
        post.authorization.as_deref(),
        Some(format!("Bearer {ENGINE_TOKEN}").as_str()),
        "{post:?}"
    );
    let body: Value = serde_json::from_str(&post.body)
        .unwrap_or_else(|e| panic!("the POST body is not JSON ({e}): {:?}", post.body));
    assert_eq!(body["target"], "web", "{body}");
    assert_eq!(body["phase"], "deploy", "{body}");
    assert_eq!(body["user"], nick, "{body}");
    assert_eq!(body["run_id"], run_id, "{body}");
}

#[test]
fn an_engine_deploy_is_followed_step_by_step_with_the_engines_times_and_version() {
    let mock = Mock::start(
        Engine::with(vec![
            json!({"state": "queued"}),
            json!({"state": "running", "steps": [step("syncing web1", "running", None)],
                   "output": "web1: 312 files"}),
            json!({"state": "running", "steps": [step("syncing web1", "ok", Some(1500)),
                                                 step("syncing web2", "running", None)],
                   "output": ["web1: done", "web2: 1204 files"]}),
            json!({"state": "running", "steps": [step("syncing web1", "ok", Some(1500)),
                                                 step("syncing web2", "ok", Some(2500)),
                                                 step("restarting", "running", None)],
                   "output": ["web2: done", "restarting app servers"]}),
            json!({"state": "succeeded", "steps": [step("syncing web1", "ok", Some(1500)),
                                                   step("syncing web2", "ok", Some(2500)),
                                                   step("restarting", "ok", Some(900))],
                   "output": "all hosts on v42", "version": "v42"}),
        ])
        .held_at(3),
        engine,
    );
    let (_server, mut ana, lever) = start_web("ana", &mock, "");

    ana.say_ops("!deploy web");
    assert_eq!(
        ana.lever_says(),
        "ana is deploying web: the current build → live",
        "no step count: the engine reports its own steps"
    );
    assert_eq!(
        ana.lever_says_within(ENGINE_WAIT, ""),
        "web: syncing web1.....ok (1500 ms)"
    );
    assert_eq!(
        ana.lever_says_within(ENGINE_WAIT, ""),
        "web: syncing web2.....ok (2500 ms)"
    );

    // The engine is on 'restarting' until the test lets it finish; once lever has asked
    // twice, it has recorded the step and its output.
    mock.wait_for("lever polling the 'restarting' status twice", |e, _| {
        e.served[3] >= 2
    });
    ana.say_ops("!status web");
    let status = ana.lever_says();
    let parts = like(
        &status,
        "web: not held · nothing live yet · nothing staged · ana is deploying it for {dur}, \
         step {word} 'restarting' for {dur} — last output: restarting app servers",
    );
    mock.with(Engine::open);

    assert_eq!(
        ana.lever_says_within(ENGINE_WAIT, ""),
        "web: restarting.....ok (900 ms)"
    );
    like(
        &ana.lever_says_within(ENGINE_WAIT, ""),
        "web deployed by ana in {dur}: v42 — slowest: syncing web2 2500 ms, syncing web1 1500 ms",
    );

    ana.say_ops("!log 2");
    like(&ana.lever_says(), "[{time}] [ana] web deployed v42");
    like(
        &ana.lever_says(),
        "[{time}] [ana] starting deploy of web... (the current build → live)",
    );
    ana.pong();

    let seen = mock.seen();
    let ids = run_ids(&lever, "web");
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_posted_run(&seen, "ana", ids[0]);
    assert!(
        seen.iter()
            .filter(|s| s.method == "GET")
            .all(|s| s.path == "/runs/1"
                && s.authorization.as_deref() == Some(&format!("Bearer {ENGINE_TOKEN}")[..])),
        "every poll goes to the status URL with the token: {seen:#?}"
    );
    assert!(
        with_method(&seen, "DELETE").is_empty(),
        "nobody asked the engine to stop: {seen:#?}"
    );
    // Last, so the run itself is checked even while this wording is off: the engine's step
    // count is not known in advance, and "step 3/0" reads as broken.
    let number = &parts[1];
    assert!(
        number == "3" || number == "3/3",
        "!status names the engine's step as {number:?}: {status}"
    );
}

#[test]
fn a_failed_engine_run_names_the_step_the_engines_message_and_its_output() {
    let mock = Mock::start(
        Engine::with(vec![
            json!({"state": "running", "steps": [step("syncing web1", "running", None)]}),
            json!({"state": "failed",
                   "steps": [step("syncing web1", "ok", Some(1200)),
                             step("migrating db", "failed", Some(3100))],
                   "message": "migration 0042 failed: duplicate column",
                   "output": ["applying 0041... ok", "applying 0042...",
                              "ERROR: column \"email\" already exists"]}),
        ]),
        engine,
    );
    let (_server, mut bo, _lever) = start_web("bo", &mock, "");

    deploys(&mut bo, "web", "");
    assert_eq!(
        bo.lever_says_within(ENGINE_WAIT, ""),
        "web: syncing web1.....ok (1200 ms)"
    );
    assert_eq!(
        bo.lever_says_within(ENGINE_WAIT, ""),
        "web: migrating db.....FAILED (3100 ms, migration 0042 failed: duplicate column)"
    );
    like(
        &bo.lever_says_within(ENGINE_WAIT, ""),
        "web deploy by bo FAILED after {dur} at step 2/2 'migrating db': migration 0042 failed: \
         duplicate column — last output: applying 0041... ok | applying 0042... | \
         ERROR: column \"email\" already exists",
    );
    bo.say_ops("!log 1");
    like(
        &bo.lever_says(),
        "[{time}] [bo] web deploy FAILED ({*}migration 0042 failed: duplicate column)",
    );
    let seen = mock.seen();
    assert_eq!(with_method(&seen, "POST").len(), 1, "{seen:#?}");
    assert!(with_method(&seen, "DELETE").is_empty(), "{seen:#?}");
}

#[test]
fn cancelling_an_engine_run_deletes_its_status_url_and_ends_cancelled() {
    let mock = Mock::start(
        Engine::with(vec![json!({
            "state": "running",
            "steps": [step("syncing web1", "running", None)],
            "output": "web1: 312 files",
        })])
        .held_at(0),
        engine,
    );
    let (_server, mut cy, _lever) = start_web("cy", &mock, "");

    deploys(&mut cy, "web", "");
    mock.wait_for("lever polling the running status twice", |e, _| {
        e.served[0] >= 2
    });
    // A second deploy meanwhile is refused as busy.
    cy.say_ops("!deploy web");
    let busy = cy.lever_says();
    like(
        &busy,
        "cy: web is busy: cy is deploying it (step {word} 'syncing web1', {dur} so far); \
         !status web shows more",
    );
    cy.say_ops("!cancel web");
    let cancelling = cy.lever_says();
    like(
        &cancelling,
        "cy: cancelling cy's deploy of web, step {word} 'syncing web1'",
    );
    hears_cancelled(&mut cy, "web", "syncing web1");

    let seen = mock.seen();
    let deletes = with_method(&seen, "DELETE");
    assert_eq!(deletes.len(), 1, "{seen:#?}");
    assert_eq!(deletes[0].path, "/runs/1");
    assert_eq!(
        deletes[0].authorization.as_deref(),
        Some(format!("Bearer {ENGINE_TOKEN}").as_str())
    );
    assert_eq!(
        with_method(&seen, "POST").len(),
        1,
        "the refused second deploy reached no engine: {seen:#?}"
    );

    // The target is free again.
    cy.say_ops("!status web");
    like(
        &cy.lever_says(),
        "web: not held · nothing live yet · nothing staged · idle",
    );
    // Last: an engine's step count is not known in advance; "/0" reads as broken.
    for text in [&busy, &cancelling] {
        assert!(
            !text.contains("step 1/0"),
            "the engine's step is numbered out of 0: {text}"
        );
    }
}

#[test]
fn a_run_the_engine_cancels_itself_is_not_blamed_on_someone() {
    let mock = Mock::start(
        Engine::with(vec![
            json!({"state": "running", "steps": [step("syncing web1", "running", None)]}),
            json!({"state": "cancelled", "steps": [step("syncing web1", "running", None)],
                   "message": "stopped by mia on the deployer"}),
        ]),
        engine,
    );
    let (_server, mut lou, _lever) = start_web("lou", &mock, "");

    deploys(&mut lou, "web", "");
    like(
        &lou.lever_says_within(ENGINE_WAIT, ""),
        "web: syncing web1.....CANCELLED ({dur})",
    );
    let cancelled = lou.lever_says_within(ENGINE_WAIT, "");
    let parts = like(
        &cancelled,
        "web deploy by lou CANCELLED{*} during step 1/1 'syncing web1' after {dur}",
    );
    lou.say_ops("!log 1");
    let logged = lou.lever_says();
    like(&logged, "[{time}] [lou] web deploy CANCELLED ({*})");
    let seen = mock.seen();
    assert!(
        with_method(&seen, "DELETE").is_empty(),
        "nobody in the channel cancelled: {seen:#?}"
    );
    // Nobody in the channel cancelled it: the engine did.
    assert!(
        !parts[0].contains("someone") && parts[0].contains("engine"),
        "says who cancelled: {cancelled}"
    );
    assert!(
        !logged.contains("someone"),
        "the log says who cancelled: {logged}"
    );
}

#[test]
fn an_engine_refusing_the_run_fails_it_at_once_with_the_engines_answer() {
    let mock = Mock::start(
        Engine {
            post: (500, "the deployer is in maintenance mode\n".into()),
            ..Engine::with(vec![json!({"state": "succeeded"})])
        },
        engine,
    );
    let (_server, mut di, _lever) = start_web("di", &mock, "");
    let url = format!("{}runs", mock.root());

    deploys(&mut di, "web", "");
    let failed = di.lever_says_within(ENGINE_WAIT, "web deploy by di FAILED");
    like(
        &failed,
        &format!(
            "web deploy by di FAILED after {{dur}} at step 1/1 '{{*}}': {url} answered 500 \
             Internal Server Error: the deployer is in maintenance mode"
        ),
    );
    let seen = mock.seen();
    assert_eq!(
        with_method(&seen, "POST").len(),
        1,
        "never retried: {seen:#?}"
    );
    assert_eq!(
        seen.len(),
        1,
        "nothing was followed after the refusal: {seen:#?}"
    );

    // A token the engine does not take: the message says what to check.
    mock.with(|e| e.post = (401, json!({"error": "bad token"}).to_string()));
    di.say_ops("!deploy web");
    assert_eq!(
        di.lever_says(),
        "di is deploying web: the current build → live",
        "the target is free after the refusal"
    );
    let failed = di.lever_says_within(ENGINE_WAIT, "web deploy by di FAILED");
    like(
        &failed,
        &format!(
            "web deploy by di FAILED after {{dur}} at step 1/1 '{{*}}': {url} answered 401 \
             Unauthorized: {{\"error\":\"bad token\"}} (check the target's token)"
        ),
    );
    let seen = mock.seen();
    assert_eq!(
        seen.len(),
        2,
        "one POST per deploy, nothing else: {seen:#?}"
    );
    assert!(seen.iter().all(|s| s.method == "POST"), "{seen:#?}");
}

#[test]
fn an_unreachable_engine_fails_clearly_and_leaves_the_target_free() {
    let url = format!("http://127.0.0.1:{}/runs", free_port());
    let (_server, mut ed, _lever) = start("ed", &web_target(&url, ""));
    for _ in 0..2 {
        ed.say_ops("!deploy web");
        assert_eq!(
            ed.lever_says(),
            "ed is deploying web: the current build → live",
            "not busy: the failed run freed the target"
        );
        let failed = ed.lever_says_within(ENGINE_WAIT, "web deploy by ed FAILED");
        let parts = like(
            &failed,
            &format!(
                "web deploy by ed FAILED after {{dur}} at step 1/1 '{{*}}': {url} did not \
                 answer: {{*}} (check the target's url)"
            ),
        );
        assert!(
            parts[2].to_lowercase().contains("refused"),
            "names the cause: {failed}"
        );
    }
}

#[test]
fn a_status_url_failing_for_a_while_is_followed_to_the_result() {
    let mock = Mock::start(
        Engine {
            failures: VecDeque::from([503, 503]),
            ..Engine::with(vec![json!({
                "state": "succeeded",
                "steps": [step("rolling out", "ok", Some(4000))],
                "version": "v43",
            })])
        },
        engine,
    );
    let (_server, mut flo, _lever) = start_web("flo", &mock, "");

    deploys(&mut flo, "web", "");
    assert_eq!(
        flo.lever_says_within(ENGINE_WAIT, ""),
        "web: rolling out.....ok (4000 ms)"
    );
    like(
        &flo.lever_says_within(ENGINE_WAIT, ""),
        "web deployed by flo in {dur}: v43",
    );
    let seen = mock.seen();
    let polls: Vec<u16> = with_method(&seen, "GET").iter().map(|s| s.status).collect();
    assert_eq!(polls, [503, 503, 200], "{seen:#?}");
    assert_eq!(with_method(&seen, "POST").len(), 1, "{seen:#?}");
    assert!(with_method(&seen, "DELETE").is_empty(), "{seen:#?}");
}

#[test]
fn an_engine_run_past_the_targets_timeout_fails_naming_the_limit_and_is_stopped() {
    let mock = Mock::start(
        Engine::with(vec![json!({
            "state": "running",
            "steps": [step("syncing web1", "running", None)],
            "output": "web1: still copying",
        })]),
        engine,
    );
    let (_server, mut gus, _lever) = start_web("gus", &mock, "timeout = \"3s\"");

    deploys(&mut gus, "web", "");
    let step_line = gus.lever_says_within(ENGINE_WAIT, "");
    let failed = gus.lever_says_within(ENGINE_WAIT, "web deploy by gus FAILED");
    let seen = mock.seen();
    let deletes = with_method(&seen, "DELETE");
    assert_eq!(deletes.len(), 1, "the engine was asked to stop: {seen:#?}");
    assert_eq!(deletes[0].path, "/runs/1");
    gus.say_ops("!log 1");
    like(
        &gus.lever_says(),
        "[{time}] [gus] web deploy FAILED (the deploy engine's run took longer than 3000 ms; \
         it was asked to stop)",
    );
    gus.say_ops("!status web");
    like(
        &gus.lever_says(),
        "web: not held · nothing live yet · nothing staged · idle",
    );
    // What the channel hears names the limit: the step line and the failure line.
    assert_eq!(
        step_line, "web: syncing web1.....TIMED OUT (limit 3000 ms)",
        "the step line names the target's timeout"
    );
    like(
        &failed,
        "web deploy by gus FAILED after {dur} at step 1/1 'syncing web1': timed out after \
         3000 ms",
    );
}

// ---------------------------------------------------------------------------------------------
// Jenkins.

const PENDING: &str = include_str!("../testdata/payloads/jenkins/queueItemPending.json");
const RUNNING: &str = include_str!("../testdata/payloads/jenkins/queueItemRunning.json");
const CANCELLED: &str = include_str!("../testdata/payloads/jenkins/queueItemCancelled.json");
const BUILD: &str = include_str!("../testdata/payloads/jenkins/build-info.json");

const JENKINS_USER: &str = "lever";
const JENKINS_TOKEN: &str = "11aa22bb33cc44dd55ee66ff";

/// What the mock Jenkins does for one test.
struct Jenkins {
    /// The queue item's answers in turn (the last repeats) until it is cancelled.
    queue: Vec<&'static str>,
    /// The build keeps building until it is stopped.
    builds_until_stopped: bool,
    /// The build's result once it stops building.
    result: &'static str,
    duration_ms: i64,
    console: &'static str,
    queue_gets: usize,
    build_gets: usize,
    cancelled: bool,
    stopped: bool,
}

impl Jenkins {
    fn builds(result: &'static str) -> Jenkins {
        Jenkins {
            queue: vec![PENDING, RUNNING],
            builds_until_stopped: false,
            result,
            duration_ms: 42_300,
            console: "",
            queue_gets: 0,
            build_gets: 0,
            cancelled: false,
            stopped: false,
        }
    }
}

fn jenkins(state: &mut Jenkins, root: &str, request: &Seen) -> Answer {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{JENKINS_USER}:{JENKINS_TOKEN}"))
    );
    if request.authorization.as_deref() != Some(basic.as_str()) {
        return Answer::text(
            401,
            "<html><head><title>Error 401 Unauthorized</title></head></html>",
        );
    }
    let build = format!("{root}job/api-deploy/14/");
    match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/job/api-deploy/buildWithParameters") => Answer {
            status: 201,
            location: Some(format!("{root}queue/item/143/")),
            body: String::new(),
        },
        ("GET", "/queue/item/143/api/json") => {
            let recorded = if state.cancelled {
                CANCELLED
            } else {
                state.queue[state.queue_gets.min(state.queue.len() - 1)]
            };
            state.queue_gets += 1;
            let mut item: Value = serde_json::from_str(recorded).unwrap();
            if let Some(executable) = item.get_mut("executable").filter(|e| e.is_object()) {
                executable["url"] = build.clone().into();
            }
            Answer::json(200, item)
        }
        ("POST", "/queue/cancelItem") => {
            state.cancelled = true;
            Answer::text(204, "")
        }
        ("GET", "/job/api-deploy/14/api/json") => {
            state.build_gets += 1;
            let mut info: Value = serde_json::from_str(BUILD).unwrap();
            info["number"] = 14.into();
            info["url"] = build.clone().into();
            let building = !state.stopped && (state.build_gets == 1 || state.builds_until_stopped);
            if building {
                info["building"] = true.into();
                info["result"] = Value::Null;
                info["duration"] = 0.into();
            } else {
                info["building"] = false.into();
                info["result"] = if state.stopped {
                    "ABORTED"
                } else {
                    state.result
                }
                .into();
                info["duration"] = state.duration_ms.into();
            }
            Answer::json(200, info)
        }
        ("POST", "/job/api-deploy/14/stop") => {
            state.stopped = true;
            Answer {
                status: 302,
                location: Some(build),
                body: String::new(),
            }
        }
        ("GET", "/job/api-deploy/14/consoleText") => Answer::text(200, state.console),
        _ => Answer::text(404, "Not Found"),
    }
}

/// `[jenkins]` at `url` with job `api-deploy` receiving three LEVER_* values, and target
/// `api` deploying with it, a line per step.
fn api_config(url: &str) -> String {
    format!(
        "[jenkins]\nurl = \"{url}\"\nuser = \"{JENKINS_USER}\"\ntoken = \"{JENKINS_TOKEN}\"\n\
         poll_interval = \"100ms\"\n\
         [jenkins.jobs.api-deploy]\njob = \"api-deploy\"\n\
         params = [\"LEVER_TARGET\", \"LEVER_USER\", \"LEVER_RUN_ID\"]\n\
         [targets.api]\nbackend = \"jenkins\"\njobs = {{ deploy = \"api-deploy\" }}\n\
         announce = \"steps\"\n"
    )
}

/// Asserts every request carried the configured Basic credentials.
fn assert_basic_auth(seen: &[Seen]) {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{JENKINS_USER}:{JENKINS_TOKEN}"))
    );
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() == Some(basic.as_str()) && s.status != 401),
        "every request with lever's Basic credentials: {seen:#?}"
    );
}

/// The form fields of a request body, in order.
fn form(body: &str) -> Vec<(String, String)> {
    let url = reqwest::Url::parse(&format!("http://form.invalid/?{body}")).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[test]
fn a_jenkins_deploy_sends_the_declared_values_and_reports_the_build() {
    let mock = Mock::start(Jenkins::builds("SUCCESS"), jenkins);
    let (_server, mut hal, lever) = start("hal", &api_config(mock.root()));

    deploys(&mut hal, "api", " (1 step)");
    assert_eq!(
        hal.lever_says_within(ENGINE_WAIT, ""),
        "api: jenkins api-deploy.....ok (42.3 s)",
        "the build's own duration"
    );
    like(
        &hal.lever_says_within(ENGINE_WAIT, ""),
        "api deployed by hal in {dur}",
    );

    let seen = mock.seen();
    assert_basic_auth(&seen);
    let posts = with_method(&seen, "POST");
    assert_eq!(posts.len(), 1, "{seen:#?}");
    assert_eq!(posts[0].path, "/job/api-deploy/buildWithParameters");
    let ids = run_ids(&lever, "api");
    assert_eq!(ids.len(), 1, "{ids:?}");
    let params = form(&posts[0].body);
    let expected: Vec<(String, String)> = [
        ("LEVER_TARGET", "api".to_owned()),
        ("LEVER_USER", "hal".to_owned()),
        ("LEVER_RUN_ID", ids[0].to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(
        params, expected,
        "exactly the declared values: {:?}",
        posts[0].body
    );
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/job/api-deploy/buildWithParameters",
            "/queue/item/143/api/json",
            "/queue/item/143/api/json",
            "/job/api-deploy/14/api/json",
            "/job/api-deploy/14/api/json",
        ]
    );
}

#[test]
fn a_failed_jenkins_build_is_named_with_its_link_and_last_console_lines() {
    let mock = Mock::start(
        Jenkins {
            console: "Started by user lever\nBuilding in workspace /var/jenkins/api\n\
                      + ./deploy.sh api\nconnecting to api1\nconnecting to api2\n\
                      api2: permission denied (publickey)\n\nBuild step 'Execute shell' marked \
                      build as failure\nFinished: FAILURE\n",
            duration_ms: 8_100,
            ..Jenkins::builds("FAILURE")
        },
        jenkins,
    );
    let (_server, mut ida, _lever) = start("ida", &api_config(mock.root()));
    let link = format!("{}job/api-deploy/14/", mock.root());

    deploys(&mut ida, "api", " (1 step)");
    assert_eq!(
        ida.lever_says_within(ENGINE_WAIT, ""),
        format!("api: jenkins api-deploy.....FAILED (8100 ms, Jenkins says FAILURE — {link})")
    );
    like(
        &ida.lever_says_within(ENGINE_WAIT, ""),
        &format!(
            "api deploy by ida FAILED after {{dur}} at step 1/1 'jenkins api-deploy': Jenkins \
             says FAILURE — {link} — last output: connecting to api1 | connecting to api2 | \
             api2: permission denied (publickey) | Build step 'Execute shell' marked build as \
             failure | Finished: FAILURE"
        ),
    );
    let seen = mock.seen();
    assert_basic_auth(&seen);
    assert!(
        seen.iter()
            .any(|s| s.method == "GET" && s.path == "/job/api-deploy/14/consoleText"),
        "{seen:#?}"
    );
}

#[test]
fn cancelling_a_running_jenkins_build_stops_it() {
    let mock = Mock::start(
        Jenkins {
            queue: vec![RUNNING],
            builds_until_stopped: true,
            ..Jenkins::builds("SUCCESS")
        },
        jenkins,
    );
    let (_server, mut jo, _lever) = start("jo", &api_config(mock.root()));

    deploys(&mut jo, "api", " (1 step)");
    mock.wait_for("lever polling the running build twice", |j, _| {
        j.build_gets >= 2
    });
    jo.say_ops("!cancel api");
    assert_eq!(
        jo.lever_says(),
        "jo: cancelling jo's deploy of api, step 1/1 'jenkins api-deploy'"
    );
    hears_cancelled(&mut jo, "api", "jenkins api-deploy");
    let seen = mock.seen();
    assert_basic_auth(&seen);
    let posts: Vec<&str> = with_method(&seen, "POST")
        .iter()
        .map(|s| s.path.as_str())
        .collect();
    assert_eq!(
        posts,
        [
            "/job/api-deploy/buildWithParameters",
            "/job/api-deploy/14/stop"
        ]
    );
    let stop = seen
        .iter()
        .position(|s| s.path == "/job/api-deploy/14/stop")
        .unwrap();
    assert!(
        seen[stop + 1..]
            .iter()
            .any(|s| s.path == "/job/api-deploy/14/api/json"),
        "lever waited for Jenkins to say ABORTED: {seen:#?}"
    );
    assert!(mock.with(|j| j.stopped));
}

#[test]
fn cancelling_a_queued_jenkins_build_takes_it_out_of_the_queue() {
    let mock = Mock::start(
        Jenkins {
            queue: vec![PENDING],
            ..Jenkins::builds("SUCCESS")
        },
        jenkins,
    );
    let (_server, mut kim, _lever) = start("kim", &api_config(mock.root()));

    deploys(&mut kim, "api", " (1 step)");
    mock.wait_for("lever polling the queue item twice", |j, _| {
        j.queue_gets >= 2
    });
    kim.say_ops("!status api");
    like(
        &kim.lever_says(),
        "api: not held · nothing live yet · nothing staged · kim is deploying it for {dur}, \
         step 1/1 'jenkins api-deploy' for {dur} — last output: waiting: Build #9 is already in \
         progress (ETA:15 sec)",
    );
    kim.say_ops("!cancel api");
    assert_eq!(
        kim.lever_says(),
        "kim: cancelling kim's deploy of api, step 1/1 'jenkins api-deploy'"
    );
    hears_cancelled(&mut kim, "api", "jenkins api-deploy");
    let seen = mock.seen();
    assert_basic_auth(&seen);
    let posts: Vec<(&str, Option<&str>)> = with_method(&seen, "POST")
        .iter()
        .map(|s| (s.path.as_str(), s.query.as_deref()))
        .collect();
    assert_eq!(
        posts,
        [
            ("/job/api-deploy/buildWithParameters", None),
            ("/queue/cancelItem", Some("id=143")),
        ]
    );
    assert!(
        seen.iter()
            .all(|s| !s.path.starts_with("/job/api-deploy/14")),
        "no build was followed: {seen:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Config errors, as `lever check` reports them.

/// `lever check --config <text in a temp file>`, without inherited `LEVER_*` settings.
fn check(text: &str) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).expect("write config");
    let path = path.to_str().expect("a UTF-8 temp path");
    lever_in(dir.path(), &["check", "--config", path], "tester", &[], b"")
}

/// Asserts `lever check` failed with exit code 1, naming `key` in `c.toml`; returns stderr.
fn assert_rejected(output: &Output, key: &str) -> String {
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "stderr: {err}");
    assert!(
        err.contains(&format!("c.toml: {key}: ")),
        "stderr does not name {key}: {err}"
    );
    err
}

#[test]
fn lever_check_names_the_key_of_a_backend_misconfiguration() {
    let irc = "[irc]\nserver = \"irc.example.net\"\nchannels = [\"#ops\"]\n";
    let jenkins = api_config("http://127.0.0.1:9/");
    let web = web_target("http://127.0.0.1:9/runs", "");
    let good = format!("{irc}{jenkins}{web}");
    let out = check(&good);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the base config is good: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let unknown_job = good.replace(
        "jobs = { deploy = \"api-deploy\" }",
        "jobs = { deploy = \"api-release\" }",
    );
    assert_ne!(unknown_job, good);
    let err = assert_rejected(&check(&unknown_job), "targets.api.jobs.deploy");
    assert!(
        err.contains("'api-release' is not a [jenkins.jobs] entry"),
        "{err}"
    );

    let no_url = good.replace("url = \"http://127.0.0.1:9/runs\"\n", "");
    assert_ne!(no_url, good);
    let err = assert_rejected(&check(&no_url), "targets.web.url");
    assert!(err.contains("missing"), "{err}");

    let with_steps =
        format!("{good}[[targets.api.deploy]]\nname = \"ship\"\nrun = [\"./ship.sh\"]\n");
    let err = assert_rejected(&check(&with_steps), "targets.api.backend");
    assert!(err.contains("jenkins"), "{err}");
}
