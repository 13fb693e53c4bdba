//! `!build` end to end: lever's real binary on a real ngIRCd, a raw IRC client in #ops, and a
//! mock Jenkins (axum, on a free loopback port in this process) that answers with the recorded
//! responses in `testdata/payloads/jenkins/` — the queue item first pending, then running, the
//! build first building, then finished — checks HTTP Basic auth and records every request.

mod support;
use support::*;

use support::mock_http::{Answer, Mock, Seen};

use base64::Engine as _;
use serde_json::Value;

const PENDING: &str = include_str!("../testdata/payloads/jenkins/queueItemPending.json");
const RUNNING: &str = include_str!("../testdata/payloads/jenkins/queueItemRunning.json");
const CANCELLED: &str = include_str!("../testdata/payloads/jenkins/queueItemCancelled.json");
const BUILD: &str = include_str!("../testdata/payloads/jenkins/build-info.json");

/// The credentials the mock accepts.
const USER: &str = "lever";
const TOKEN: &str = "11aa22bb33cc44dd55ee66ff";
/// The wait the recorded pending queue item gives.
const WHY: &str = "Build #9 is already in progress (ETA:15 sec)";

/// What the mock Jenkins does for one test.
#[derive(Clone)]
struct Script {
    /// The queue item's answers in turn (the last one repeats).
    queue: Vec<&'static str>,
    /// The build's result once it stops building.
    result: &'static str,
    /// Answer the first GET of the build 503 Service Unavailable.
    fail_first_build_get: bool,
}

impl Script {
    fn builds(result: &'static str) -> Script {
        Script {
            queue: vec![PENDING, RUNNING],
            result,
            fail_first_build_get: false,
        }
    }
}

/// The mock Jenkins' state: its script and how often the queue item and build were read.
struct Jenkins {
    script: Script,
    queue_gets: usize,
    build_gets: usize,
}

/// A Jenkins for one test (the rig's mock), answering from the recorded payloads.
fn mock_jenkins(script: Script) -> Mock<Jenkins> {
    let state = Jenkins {
        script,
        queue_gets: 0,
        build_gets: 0,
    };
    Mock::start(state, respond)
}

/// Jenkins' answer to `request`, under `root` (as lever is configured with it and as the mock
/// names its builds).
fn respond(shared: &mut Jenkins, root: &str, request: &Seen) -> Answer {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{TOKEN}"))
    );
    if request.authorization.as_deref() != Some(basic.as_str()) {
        let page = "<html><head><title>Error 401 Unauthorized</title></head><body>Invalid password/token for user: lever</body></html>";
        return Answer::text(401, page);
    }
    match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/job/test/buildWithParameters" | "/job/team/job/nightly/build") => Answer {
            status: 201,
            location: Some(format!("{root}queue/item/143/")),
            body: String::new(),
        },
        ("GET", "/queue/item/143/api/json") => {
            let script = &shared.script.queue;
            let recorded = script[shared.queue_gets.min(script.len() - 1)];
            shared.queue_gets += 1;
            let mut item: Value = serde_json::from_str(recorded).unwrap();
            // The recorded build lives on another machine; name it under the mock.
            if let Some(executable) = item.get_mut("executable").filter(|e| e.is_object()) {
                executable["url"] = format!("{root}job/test/14/").into();
            }
            Answer::json(200, item)
        }
        ("GET", "/job/test/14/api/json") => {
            shared.build_gets += 1;
            if shared.script.fail_first_build_get && shared.build_gets == 1 {
                return Answer::text(503, "Jenkins is restarting");
            }
            let mut build: Value = serde_json::from_str(BUILD).unwrap();
            build["number"] = 14.into();
            build["url"] = format!("{root}job/test/14/").into();
            let first = shared.build_gets == 1 + usize::from(shared.script.fail_first_build_get);
            if first {
                build["building"] = true.into();
                build["result"] = Value::Null;
                build["duration"] = 0.into();
            } else {
                build["result"] = shared.script.result.into();
            }
            Answer::json(200, build)
        }
        _ => Answer::text(404, "Not Found"),
    }
}

/// `[jenkins]` at `url` with `token`: job `app` (Jenkins' `test`, parameter BRANCH) and job
/// `nightly` (in folder `team`, no parameters).
fn jenkins_config(url: &str, token: &str) -> String {
    format!(
        "[jenkins]\nurl = \"{url}\"\nuser = \"{USER}\"\ntoken = \"{token}\"\n\
         poll_interval = \"100ms\"\ntimeout = \"30s\"\n\
         [jenkins.jobs.app]\njob = \"test\"\nparams = [\"BRANCH\"]\n\
         [jenkins.jobs.nightly]\njob = \"team/nightly\"\n"
    )
}

/// A server, a client named `nick` in #ops, and lever with `[jenkins]` at `url`, once the
/// client has seen lever join.
fn setup(nick: &str, url: &str, token: &str) -> (Ngircd, Client, Lever) {
    let server = Ngircd::start();
    let mut client = Client::connect(server.port, nick);
    client.join("#ops");
    let lever = Lever::start(&bot_config(server.port, "", &jenkins_config(url, token)));
    client.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");
    (server, client, lever)
}

/// The text of the next line lever says in #ops.
fn next_in_ops(client: &mut Client) -> String {
    let line = client.expect(|l| l.is_privmsg_from("lever"));
    assert_eq!(line.params[0], "#ops", "{}", line.raw);
    line.text().to_owned()
}

#[test]
fn a_build_is_queued_followed_and_announced_with_result_duration_and_link() {
    let jenkins = mock_jenkins(Script::builds("SUCCESS"));
    let (_server, mut ana, _lever) = setup("ana", jenkins.root(), TOKEN);
    ana.privmsg("#ops", "!build app BRANCH=main");
    assert_eq!(next_in_ops(&mut ana), "ana: building app (queued)");
    assert_eq!(
        next_in_ops(&mut ana),
        format!("ana: app is waiting in Jenkins' queue: {WHY}")
    );
    let link = format!("{}job/test/14/", jenkins.root());
    assert_eq!(
        next_in_ops(&mut ana),
        format!("build app #14 STARTED (ana) — {link}")
    );
    assert_eq!(
        next_in_ops(&mut ana),
        format!("build app #14 SUCCESS in 1 min (ana) — {link}")
    );
    let seen = jenkins.seen();
    let posts: Vec<&Seen> = seen.iter().filter(|s| s.method == "POST").collect();
    assert_eq!(posts.len(), 1, "{seen:?}");
    assert_eq!(posts[0].path, "/job/test/buildWithParameters");
    assert_eq!(posts[0].body, "BRANCH=main");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{TOKEN}"));
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() == Some(&format!("Basic {basic}")[..])),
        "{seen:?}"
    );
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/job/test/buildWithParameters",
            "/queue/item/143/api/json",
            "/queue/item/143/api/json",
            "/job/test/14/api/json",
            "/job/test/14/api/json",
        ]
    );
}

#[test]
fn a_failed_build_is_announced_with_a_warning() {
    let jenkins = mock_jenkins(Script::builds("FAILURE"));
    let (_server, mut bo, _lever) = setup("bo", jenkins.root(), TOKEN);
    bo.privmsg("#ops", "!build app BRANCH=release-2");
    assert_eq!(next_in_ops(&mut bo), "bo: building app (queued)");
    assert_eq!(
        next_in_ops(&mut bo),
        format!("bo: app is waiting in Jenkins' queue: {WHY}")
    );
    let link = format!("{}job/test/14/", jenkins.root());
    assert_eq!(
        next_in_ops(&mut bo),
        format!("build app #14 STARTED (bo) — {link}")
    );
    assert_eq!(
        next_in_ops(&mut bo),
        format!("build app #14 ⚠ FAILURE in 1 min (bo) — {link}")
    );
    let seen = jenkins.seen();
    assert_eq!(seen[0].body, "BRANCH=release-2");
}

#[test]
fn a_build_cancelled_in_the_queue_is_reported() {
    let jenkins = mock_jenkins(Script {
        queue: vec![PENDING, CANCELLED],
        ..Script::builds("SUCCESS")
    });
    let (_server, mut cy, _lever) = setup("cy", jenkins.root(), TOKEN);
    cy.privmsg("#ops", "!build nightly");
    assert_eq!(next_in_ops(&mut cy), "cy: building nightly (queued)");
    assert_eq!(
        next_in_ops(&mut cy),
        format!("cy: nightly is waiting in Jenkins' queue: {WHY}")
    );
    assert_eq!(
        next_in_ops(&mut cy),
        "cy: build nightly was cancelled in the queue"
    );
    let seen = jenkins.seen();
    assert_eq!(
        seen[0].path, "/job/team/job/nightly/build",
        "a job without params is started with /build, in its folder"
    );
    assert_eq!(seen[0].body, "");
    assert!(
        seen.iter().all(|s| !s.path.starts_with("/job/test/14")),
        "no build was polled: {seen:?}"
    );
}

#[test]
fn a_job_not_in_the_config_is_refused_without_any_request() {
    let jenkins = mock_jenkins(Script::builds("SUCCESS"));
    let (_server, mut di, _lever) = setup("di", jenkins.root(), TOKEN);
    di.privmsg("#ops", "!build deploy-prod");
    assert_eq!(
        next_in_ops(&mut di),
        "di: no job 'deploy-prod'; jobs: app, nightly"
    );
    di.privmsg("#ops", "!build ../../script");
    assert_eq!(
        next_in_ops(&mut di),
        "di: no job '../../script'; jobs: app, nightly"
    );
    assert!(jenkins.seen().is_empty(), "{:?}", jenkins.seen());
}

#[test]
fn a_parameter_not_in_params_is_refused() {
    let jenkins = mock_jenkins(Script::builds("SUCCESS"));
    let (_server, mut ed, _lever) = setup("ed", jenkins.root(), TOKEN);
    ed.privmsg("#ops", "!build app BRANCH=main SKIP_TESTS=true");
    assert_eq!(
        next_in_ops(&mut ed),
        "ed: app takes no parameter SKIP_TESTS; it takes BRANCH"
    );
    ed.privmsg("#ops", "!build app main");
    assert_eq!(
        next_in_ops(&mut ed),
        "ed: 'main' is not a parameter: write KEY=value"
    );
    assert!(jenkins.seen().is_empty(), "{:?}", jenkins.seen());
}

#[test]
fn wrong_credentials_get_a_message_naming_the_user_and_token() {
    let jenkins = mock_jenkins(Script::builds("SUCCESS"));
    let (_server, mut flo, _lever) = setup("flo", jenkins.root(), "not-the-token");
    flo.privmsg("#ops", "!build app BRANCH=main");
    assert_eq!(
        next_in_ops(&mut flo),
        "flo: build app not started: Jenkins did not accept lever's credentials (401 Unauthorized): \
         check [jenkins] user and LEVER_JENKINS__TOKEN"
    );
    let seen = jenkins.seen();
    assert_eq!(seen.len(), 1, "the POST is not retried: {seen:?}");
    assert_eq!(seen[0].status, 401);
}

#[test]
fn an_unreachable_jenkins_gets_a_clear_message() {
    let dead = format!("http://127.0.0.1:{}/", free_port());
    let (_server, mut gus, _lever) = setup("gus", &dead, TOKEN);
    gus.privmsg("#ops", "!build app BRANCH=main");
    let reply = next_in_ops(&mut gus);
    let start = format!(
        "gus: build app not started: Jenkins at {} did not answer: ",
        dead.trim_end_matches('/')
    );
    assert!(reply.starts_with(&start), "{reply}");
    assert!(reply.ends_with(" (check [jenkins] url)"), "{reply}");
    assert!(reply.to_lowercase().contains("refused"), "{reply}");
}

#[test]
fn a_get_failing_once_is_retried_and_the_result_still_reported() {
    let jenkins = mock_jenkins(Script {
        queue: vec![RUNNING],
        fail_first_build_get: true,
        ..Script::builds("SUCCESS")
    });
    let (_server, mut hal, _lever) = setup("hal", jenkins.root(), TOKEN);
    hal.privmsg("#ops", "!build app");
    assert_eq!(next_in_ops(&mut hal), "hal: building app (queued)");
    let link = format!("{}job/test/14/", jenkins.root());
    assert_eq!(
        next_in_ops(&mut hal),
        format!("build app #14 STARTED (hal) — {link}")
    );
    assert_eq!(
        next_in_ops(&mut hal),
        format!("build app #14 SUCCESS in 1 min (hal) — {link}")
    );
    let statuses: Vec<(String, u16)> = jenkins
        .seen()
        .into_iter()
        .filter(|s| s.path == "/job/test/14/api/json")
        .map(|s| (s.path, s.status))
        .collect();
    assert_eq!(
        statuses.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        [503, 200, 200],
        "{statuses:?}"
    );
    let posts = jenkins.seen().iter().filter(|s| s.method == "POST").count();
    assert_eq!(posts, 1);
}
