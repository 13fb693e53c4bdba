//! Stopping lever while a run is in progress: the run is let finish (a deploy cut in half is
//! worse than a late restart); a second signal cancels it, recorded, before lever quits.

mod support;
use support::*;

use std::time::Duration;

/// A target whose one deploy step takes `seconds` and leaves a marker when it completes.
fn config(port: u16, dir: &std::path::Path, seconds: u32) -> String {
    let marker = dir.join("finished");
    let target = format!(
        "[store]\npath = \"{db}\"\n[targets.site]\n[[targets.site.deploy]]\nname = \"slow sync\"\n\
         run = [\"sh\", \"-c\", \"sleep {seconds} && touch {marker}\"]\n",
        db = dir.join("lever.db").display(),
        marker = marker.display(),
    );
    bot_config(port, "", &target)
}

fn said(line: &Line) -> bool {
    line.verb == "PRIVMSG" && line.from == "lever"
}

#[test]
fn a_first_signal_lets_the_running_deploy_finish_then_quits() {
    let dir = tempfile::tempdir().unwrap();
    let server = Ngircd::start();
    let mut ops = Client::connect(server.port, "ops1");
    ops.join("#ops");
    let mut lever = Lever::start(&config(server.port, dir.path(), 3));
    ops.expect(|l| l.verb == "JOIN" && l.from == "lever");
    ops.privmsg("#ops", "!deploy");
    ops.expect(|l| said(l) && l.text().starts_with("ops1 is deploying site"));
    signal(lever.pid(), "TERM");
    let waiting = ops.expect(said);
    assert_eq!(
        waiting.text(),
        "lever is stopping once the run on site has finished (!cancel stops it sooner)"
    );
    let done = ops.expect(said);
    assert!(
        done.text().starts_with("site deployed by ops1 in "),
        "{}",
        done.raw
    );
    assert!(
        dir.path().join("finished").exists(),
        "the step ran to its end"
    );
    ops.expect(|l| l.verb == "QUIT" && l.from == "lever");
    let status = lever
        .wait_exit(Duration::from_secs(15))
        .expect("lever exits");
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_second_signal_cancels_the_run_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Ngircd::start();
    let mut ops = Client::connect(server.port, "ops2");
    ops.join("#ops");
    let cfg = config(server.port, dir.path(), 60);
    let mut lever = Lever::start(&cfg);
    ops.expect(|l| l.verb == "JOIN" && l.from == "lever");
    ops.privmsg("#ops", "!deploy");
    ops.expect(|l| said(l) && l.text().starts_with("ops2 is deploying site"));
    signal(lever.pid(), "TERM");
    ops.expect(|l| said(l) && l.text().starts_with("lever is stopping once"));
    signal(lever.pid(), "TERM");
    let cancelled = ops.expect(said);
    assert!(
        cancelled
            .text()
            .starts_with("site deploy by ops2 CANCELLED by lever (shutting down) during step 1/1 'slow sync' after "),
        "{}",
        cancelled.raw
    );
    let status = lever
        .wait_exit(Duration::from_secs(20))
        .expect("lever exits");
    assert!(status.success(), "{status:?}");
    assert!(!dir.path().join("finished").exists(), "the step was killed");
    // The next lever finds nothing to recover: the cancel was recorded.
    let mut again = Lever::start(&cfg);
    ops.expect(|l| l.verb == "JOIN" && l.from == "lever");
    ops.privmsg("#ops", "!log 2");
    let newest = ops.expect(said);
    assert!(
        newest.text().contains(
            "site deploy CANCELLED (cancelled during 'slow sync' by lever (shutting down))"
        ),
        "{}",
        newest.raw
    );
    signal(again.pid(), "TERM");
    again.wait_exit(Duration::from_secs(15)).expect("exits");
}
