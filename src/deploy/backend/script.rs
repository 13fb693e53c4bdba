//! The `script` backend: a step is a local program, run as a child process in a process group
//! of its own.
//!
//! The program is started from its argv, never through a shell, so nothing in a target name or
//! a nick can become shell syntax. Its own process group lets a timeout or `!cancel` stop the
//! step and everything it started with one `killpg`: SIGTERM first, SIGKILL after a grace.
//! Output is read line by line into the step's [`OutputTail`] with bounded memory, however much
//! or however long the lines the step prints. lever's own `LEVER_*` settings (which carry
//! secrets such as `LEVER_IRC__PASSWORD`) are kept out of the step's environment.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::pin::pin;
use std::process::Stdio;
use std::time::Instant;

use nix::fcntl::OFlag;
use nix::unistd::{pipe2, Pid};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::{OutputTail, StepOutcome, StepResult, StepSpec, LINE_CHARS};
use crate::chat::text::human_duration;
use crate::process::tie::spawn_tied;
use crate::process::{failure, group_of, os_error, read_lines, spawn_error, stop_group, DRAIN};

/// Bytes kept of one output line. A UTF-8 character is at most 4 bytes, so a line cut here still
/// has more than [`LINE_CHARS`] characters and [`OutputTail::push`] marks the cut with `…`.
const LINE_BYTES: usize = 4 * LINE_CHARS + 4;
/// Lines of output a finished step reports in [`StepResult::tail`].
const RESULT_LINES: usize = 10;
/// The prefix of lever's own settings, which the step must not see. Matched without regard to
/// case, as the config loader does (`lever_irc__password` overrides the password too).
const SCRUBBED_PREFIX: &[u8] = b"LEVER_";

/// Runs one step as a child process in a process group of its own.
///
/// The program `step.argv[0]` gets the arguments `step.argv[1..]` verbatim, runs in
/// `step.workdir` with stdin closed, and sees lever's environment minus every `LEVER_*` variable,
/// plus `step.env`. Its stdout and stderr lines go to `output` (cleared first) as they come.
/// Past `step.timeout`, or once `cancel` fires, its whole process group gets SIGTERM and, after
/// a 2 s grace, SIGKILL. Never fails: a step that could not start is
/// [`StepOutcome::NotStarted`].
pub async fn run_step(
    step: &StepSpec,
    cancel: &CancellationToken,
    output: &OutputTail,
) -> StepResult {
    // Collected now: the iterator is not Send, and the caller runs this future in a task.
    let env = std::env::vars_os().collect();
    run_step_in(step, cancel, output, env, &mut |_| {}).await
}

/// Runs `steps` in order, reporting each; a step that does not succeed ends the run.
pub async fn run_steps(
    steps: &[StepSpec],
    progress: &mut dyn super::Progress,
    cancel: &CancellationToken,
) -> super::Ended {
    for step in steps {
        progress.step_started(&step.name);
        let output = progress.output();
        let env = std::env::vars_os().collect();
        // Recorded as soon as it starts, so a restart after a kill -9 finds what it left.
        let mut spawned = |pgid: Pid| progress.step_spawned(pgid);
        let result = run_step_in(step, cancel, &output, env, &mut spawned).await;
        progress.step_finished(&result, Some(step.timeout));
        match &result.outcome {
            StepOutcome::Succeeded => {}
            StepOutcome::Cancelled => {
                return super::Ended::Cancelled(format!("cancelled during '{}'", step.name));
            }
            other => {
                return super::Ended::Failed(format!(
                    "'{}' failed: {}",
                    step.name,
                    super::describe(other, Some(step.timeout))
                ));
            }
        }
    }
    super::Ended::Succeeded { version: None }
}

/// [`run_step`] with the environment to start from given, so tests need not change lever's.
async fn run_step_in(
    step: &StepSpec,
    cancel: &CancellationToken,
    output: &OutputTail,
    base_env: Vec<(OsString, OsString)>,
    on_spawn: &mut (dyn FnMut(Pid) + Send),
) -> StepResult {
    output.clear();
    let started = Instant::now();
    let outcome = run(step, cancel, output, base_env, on_spawn).await;
    let duration = started.elapsed();
    tracing::info!(
        step = %step.name,
        outcome = ?outcome,
        duration = %human_duration(duration),
        "step finished"
    );
    StepResult {
        outcome,
        duration,
        tail: output.last(RESULT_LINES),
    }
}

async fn run(
    step: &StepSpec,
    cancel: &CancellationToken,
    output: &OutputTail,
    base_env: Vec<(OsString, OsString)>,
    on_spawn: &mut (dyn FnMut(Pid) + Send),
) -> StepOutcome {
    let Some((program, args)) = step.argv.split_first() else {
        return StepOutcome::NotStarted {
            error: "no program to run (the step's command is empty)".to_string(),
        };
    };
    // A missing workdir makes spawn fail with the same ENOENT as a missing program; checking
    // first lets the message say which one it was.
    match std::fs::metadata(&step.workdir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return StepOutcome::NotStarted {
                error: format!("workdir {} is not a directory", step.workdir.display()),
            }
        }
        Err(e) => {
            return StepOutcome::NotStarted {
                error: format!(
                    "cannot use workdir {}: {}",
                    step.workdir.display(),
                    os_error(&e)
                ),
            }
        }
    }

    tracing::debug!(
        step = %step.name,
        argv = ?step.argv,
        workdir = %step.workdir.display(),
        "starting step"
    );
    // stdout and stderr share one pipe, so the output reads in the order it was written (two
    // pipes would put "error: boom" before the "compiling" printed first). Close-on-exec keeps
    // the write end out of steps started meanwhile, which would hold our reader open.
    let (output_pipe, writer) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(ends) => ends,
        Err(e) => {
            return StepOutcome::NotStarted {
                error: format!("cannot run {program}: no pipe for its output: {e}"),
            }
        }
    };
    let stderr_writer = match writer.try_clone() {
        Ok(fd) => fd,
        Err(e) => {
            return StepOutcome::NotStarted {
                error: format!("cannot run {program}: no pipe for its output: {e}"),
            }
        }
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(&step.workdir)
        .env_clear()
        .envs(step_env(base_env, &step.env))
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(stderr_writer))
        .process_group(0)
        .kill_on_drop(true);
    // The command holds our copies of the pipe's write end: they are dropped with it as it is
    // spawned, or no EOF ever comes.
    let spawned = spawn_tied(command).await;
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            return StepOutcome::NotStarted {
                error: spawn_error(program, &step.workdir, &e),
            }
        }
    };
    // With `process_group(0)` the child leads a new group whose id is its pid. The id is there
    // until the child has been waited for, which has not happened yet.
    let Some(pgid) = group_of(&child) else {
        return StepOutcome::NotStarted {
            error: format!("cannot run {program}: it vanished as it started"),
        };
    };
    on_spawn(pgid);

    let reader = match tokio::net::unix::pipe::Receiver::from_owned_fd(output_pipe) {
        Ok(reader) => Some(reader),
        Err(e) => {
            tracing::warn!(step = %step.name, "cannot read the step's output: {e}");
            None
        }
    };
    let mut pump = pin!(read_lines(reader, LINE_BYTES, &step.name, |line| {
        output.push(line)
    }));
    let mut supervised = pin!(supervise(&mut child, pgid, step, cancel));
    let mut drained = false;
    let outcome = loop {
        tokio::select! {
            outcome = &mut supervised => break outcome,
            () = &mut pump, if !drained => drained = true,
        }
    };
    if !drained && tokio::time::timeout(DRAIN, pump).await.is_err() {
        tracing::debug!(
            step = %step.name,
            "output still open after the step ended; stopped reading"
        );
    }
    outcome
}

/// Waits for the step to end on its own, or stops its group on timeout or cancellation.
async fn supervise(
    child: &mut Child,
    pgid: Pid,
    step: &StepSpec,
    cancel: &CancellationToken,
) -> StepOutcome {
    tokio::select! {
        status = child.wait() => match status {
            Ok(status) => match failure(status) {
                None => StepOutcome::Succeeded,
                Some(status) => StepOutcome::Failed { status },
            },
            Err(e) => StepOutcome::Failed { status: format!("lost track of it: {e}") },
        },
        () = tokio::time::sleep(step.timeout) => {
            tracing::info!(
                step = %step.name,
                timeout = %human_duration(step.timeout),
                "step timed out; stopping it"
            );
            stop_group(child, pgid, &step.name).await;
            StepOutcome::TimedOut
        }
        () = cancel.cancelled() => {
            tracing::info!(step = %step.name, "step cancelled; stopping it");
            stop_group(child, pgid, &step.name).await;
            StepOutcome::Cancelled
        }
    }
}

/// The step's environment: `base` without lever's own `LEVER_*` settings, then `extra` (which
/// is how lever passes `LEVER_TARGET` and friends, so they must come after the scrub).
fn step_env(
    base: impl IntoIterator<Item = (OsString, OsString)>,
    extra: &[(String, String)],
) -> Vec<(OsString, OsString)> {
    base.into_iter()
        .filter(|(name, _)| !is_lever_setting(name))
        .chain(extra.iter().map(|(k, v)| (k.into(), v.into())))
        .collect()
}

fn is_lever_setting(name: &OsStr) -> bool {
    name.as_bytes()
        .get(..SCRUBBED_PREFIX.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(SCRUBBED_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::backend::TAIL_LINES;
    use crate::process::GRACE;
    use nix::sys::signal::Signal;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::time::Duration;

    /// Generous upper bound for any one step in these tests, so a bug fails instead of hanging.
    const HANG: Duration = Duration::from_secs(60);

    /// Writes an executable `#!/bin/sh` script.
    fn script(dir: &Path, name: &str, body: &str) {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn spec(dir: &Path, argv: &[&str], timeout: Duration) -> StepSpec {
        StepSpec {
            name: "test".to_string(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            env: vec![],
            workdir: dir.to_path_buf(),
            timeout,
        }
    }

    async fn run_with(
        step: &StepSpec,
        cancel: &CancellationToken,
        output: &OutputTail,
        env: Vec<(OsString, OsString)>,
    ) -> StepResult {
        // A script written just now can fail with ETXTBSY while another test thread is between
        // fork and exec (the child briefly holds our write descriptor); trying again is the
        // usual cure.
        for _ in 0..20 {
            let mut spawned = |_| {};
            let run = run_step_in(step, cancel, output, env.clone(), &mut spawned);
            let result = tokio::time::timeout(HANG, run).await.expect("step hung");
            match &result.outcome {
                StepOutcome::NotStarted { error } if error.contains("Text file busy") => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ => return result,
            }
        }
        panic!("script stayed busy");
    }

    async fn run(step: &StepSpec) -> (StepResult, OutputTail) {
        let output = OutputTail::default();
        let env = std::env::vars_os().collect();
        let result = run_with(step, &CancellationToken::new(), &output, env).await;
        (result, output)
    }

    fn read_pid(path: &Path) -> Pid {
        let text = std::fs::read_to_string(path).unwrap();
        Pid::from_raw(text.trim().parse().unwrap())
    }

    /// Whether `pid` is a live process; a zombie counts as gone (it may wait long for a reaper
    /// in a container whose init does not reap).
    fn alive(pid: Pid) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
        !matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X'))
    }

    async fn assert_gone(pid: Pid) {
        for _ in 0..100 {
            if !alive(pid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("process {pid} is still running");
    }

    /// Waits for the script to write its pid files (it may be slow on a loaded machine).
    async fn wait_for_file(path: &Path) {
        for _ in 0..600 {
            if std::fs::read_to_string(path).is_ok_and(|t| t.ends_with('\n')) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} never appeared", path.display());
    }

    /// The runner spawns steps as tasks, so the future must be `Send`; this fails to compile
    /// otherwise.
    #[allow(dead_code)]
    fn run_step_future_is_send(step: &StepSpec, cancel: &CancellationToken, output: &OutputTail) {
        fn send<T: Send>(_: T) {}
        send(run_step(step, cancel, output));
    }

    #[tokio::test]
    async fn success_captures_stdout_and_stderr_in_order() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "ok.sh",
            "echo one; echo two >&2; echo three; echo four >&2; printf 'no newline'",
        );
        let (result, output) = run(&spec(dir.path(), &["./ok.sh"], HANG)).await;
        assert_eq!(result.outcome, StepOutcome::Succeeded);
        // One pipe for both streams: the lines read in the order they were written.
        assert_eq!(result.tail, ["one", "two", "three", "four", "no newline"]);
        assert_eq!(output.total(), 5);
    }

    #[tokio::test]
    async fn nonzero_exit_code_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "fail.sh", "echo oops >&2; exit 3");
        let (result, _) = run(&spec(dir.path(), &["./fail.sh"], HANG)).await;
        let status = "exit code 3".to_string();
        assert_eq!(result.outcome, StepOutcome::Failed { status });
        assert_eq!(result.tail, ["oops"]);
    }

    #[tokio::test]
    async fn death_by_signal_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "die.sh", "kill -9 $$");
        let (result, _) = run(&spec(dir.path(), &["./die.sh"], HANG)).await;
        let status = "killed by signal 9 (SIGKILL)".to_string();
        assert_eq!(result.outcome, StepOutcome::Failed { status });
    }

    #[tokio::test]
    async fn missing_program_is_not_started() {
        let dir = tempfile::tempdir().unwrap();
        let (result, _) = run(&spec(dir.path(), &["./steps/sync.sh"], HANG)).await;
        let want = format!(
            "cannot run ./steps/sync.sh in {}: No such file or directory",
            dir.path().display()
        );
        assert_eq!(result.outcome, StepOutcome::NotStarted { error: want });

        let (result, _) = run(&spec(dir.path(), &["lever-no-such-program"], HANG)).await;
        let error = "cannot run lever-no-such-program: not found on PATH".to_string();
        assert_eq!(result.outcome, StepOutcome::NotStarted { error });

        std::fs::write(dir.path().join("plain.txt"), "not a program").unwrap();
        let (result, _) = run(&spec(dir.path(), &["./plain.txt"], HANG)).await;
        // Not executable: exec refuses it, even for root.
        let error = format!(
            "cannot run ./plain.txt in {}: Permission denied",
            dir.path().display()
        );
        assert_eq!(result.outcome, StepOutcome::NotStarted { error });

        let (result, _) = run(&spec(dir.path(), &[], HANG)).await;
        assert!(matches!(result.outcome, StepOutcome::NotStarted { .. }));
    }

    #[tokio::test]
    async fn missing_workdir_is_not_started() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let (result, _) = run(&spec(&gone, &["/bin/true"], HANG)).await;
        let error = format!(
            "cannot use workdir {}: No such file or directory",
            gone.display()
        );
        assert_eq!(result.outcome, StepOutcome::NotStarted { error });
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "slow.sh",
            "sleep 1000 & echo $! > bg.pid; echo $$ > sh.pid; echo started; sleep 1000",
        );
        let step = spec(dir.path(), &["./slow.sh"], Duration::from_secs(2));
        let (result, _) = run(&step).await;
        assert_eq!(result.outcome, StepOutcome::TimedOut);
        wait_for_file(&dir.path().join("bg.pid")).await;
        assert_gone(read_pid(&dir.path().join("sh.pid"))).await;
        assert_gone(read_pid(&dir.path().join("bg.pid"))).await;
        assert!(result.duration >= Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_step_ignoring_sigterm_is_killed_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        // An ignored signal stays ignored across exec, so the sleep ignores SIGTERM too.
        script(
            dir.path(),
            "stubborn.sh",
            "trap '' TERM; echo $$ > sh.pid; echo started; sleep 1000",
        );
        let step = spec(dir.path(), &["./stubborn.sh"], Duration::from_secs(1));
        let (result, output) = run(&step).await;
        assert_eq!(result.outcome, StepOutcome::TimedOut);
        assert_eq!(output.last_line().as_deref(), Some("started"));
        assert_gone(read_pid(&dir.path().join("sh.pid"))).await;
        // Nothing ended it before SIGKILL, which comes only after the full grace.
        assert!(result.duration >= Duration::from_secs(1) + GRACE);
    }

    #[tokio::test]
    async fn cancel_kills_the_group() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "long.sh",
            "sleep 1000 & echo $! > bg.pid; echo $$ > sh.pid; echo started; sleep 1000",
        );
        let step = spec(dir.path(), &["./long.sh"], Duration::from_secs(600));
        let cancel = CancellationToken::new();
        let output = OutputTail::default();
        let canceller = tokio::spawn({
            let (cancel, output) = (cancel.clone(), output.clone());
            async move {
                while output.last_line().as_deref() != Some("started") {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                cancel.cancel();
            }
        });
        let env = std::env::vars_os().collect();
        let result = run_with(&step, &cancel, &output, env).await;
        canceller.await.unwrap();
        assert_eq!(result.outcome, StepOutcome::Cancelled);
        assert_gone(read_pid(&dir.path().join("sh.pid"))).await;
        assert_gone(read_pid(&dir.path().join("bg.pid"))).await;
    }

    #[tokio::test]
    async fn an_escaped_grandchild_holding_stdout_does_not_hang_the_step() {
        let dir = tempfile::tempdir().unwrap();
        // `setsid` leaves the group, so the stop would not reach it; it keeps stdout open.
        script(
            dir.path(),
            "escape.sh",
            "setsid sleep 100 & echo $! > gc.pid; echo done",
        );
        let (result, _) = run(&spec(dir.path(), &["./escape.sh"], HANG)).await;
        assert_eq!(result.outcome, StepOutcome::Succeeded);
        assert_eq!(result.tail, ["done"]);
        assert!(result.duration < HANG / 2, "{:?}", result.duration);
        let grandchild = read_pid(&dir.path().join("gc.pid"));
        let _ = nix::sys::signal::kill(grandchild, Signal::SIGKILL);
    }

    #[test]
    fn lever_settings_are_scrubbed_but_step_env_is_added() {
        let os = |(k, v): (&str, &str)| (OsString::from(k), OsString::from(v));
        let base = [
            ("PATH", "/usr/bin:/bin"),
            ("LEVER_IRC__PASSWORD", "hunter2"),
            ("lever_irc__sasl_password", "hunter3"),
            ("LEVER_TARGET", "stale"),
            ("LEVERAGE", "kept"),
            ("MY_LEVER_X", "kept"),
            ("HOME", "/root"),
        ]
        .map(os);
        let extra = [("LEVER_TARGET", "prod"), ("LEVER_USER", "alice")]
            .map(|(k, v)| (k.to_string(), v.to_string()));
        let got = step_env(base, &extra);
        let want = [
            ("PATH", "/usr/bin:/bin"),
            ("LEVERAGE", "kept"),
            ("MY_LEVER_X", "kept"),
            ("HOME", "/root"),
            ("LEVER_TARGET", "prod"),
            ("LEVER_USER", "alice"),
        ]
        .map(os);
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn the_child_sees_the_scrubbed_environment() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "env.sh", "env | grep -i '^lever' | sort");
        let mut step = spec(dir.path(), &["./env.sh"], HANG);
        step.env = vec![("LEVER_TARGET".to_string(), "prod".to_string())];
        // The secret goes into the environment run_step starts from, not lever's own, so no
        // other test can see it.
        let mut env: Vec<_> = std::env::vars_os().collect();
        env.push(("LEVER_SCRIPT_TEST_SECRET".into(), "hunter2".into()));
        env.push(("LEVERAGE_SCRIPT_TEST".into(), "kept".into()));
        let output = OutputTail::default();
        let result = run_with(&step, &CancellationToken::new(), &output, env).await;
        assert_eq!(result.outcome, StepOutcome::Succeeded);
        assert_eq!(
            result.tail,
            ["LEVERAGE_SCRIPT_TEST=kept", "LEVER_TARGET=prod"]
        );
    }

    #[tokio::test]
    async fn argv_is_passed_verbatim_without_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "echo.sh", r#"printf '%s\n' "$1"; echo "$#""#);
        let marker = dir.path().join("marker");
        let nasty = format!("$(touch {}); `id` && rm -rf", marker.display());
        let (result, _) = run(&spec(dir.path(), &["./echo.sh", &nasty], HANG)).await;
        assert_eq!(result.outcome, StepOutcome::Succeeded);
        assert_eq!(result.tail, [nasty.as_str(), "1"]);
        assert!(!marker.exists());
    }

    /// Peak resident memory of this process, in KiB.
    fn peak_rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn huge_output_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        // 40 MB in one line, then 10 MB of short lines.
        script(
            dir.path(),
            "loud.sh",
            "head -c 40000000 /dev/zero | tr '\\0' x; echo\n\
             yes 'a line of output, and another one' | head -c 10000000",
        );
        let before = peak_rss_kib();
        let (result, output) = run(&spec(dir.path(), &["./loud.sh"], HANG)).await;
        assert_eq!(result.outcome, StepOutcome::Succeeded);
        assert!(output.total() > 250_000, "{}", output.total());
        let tail = output.last(usize::MAX);
        assert!(tail.len() <= TAIL_LINES);
        assert!(tail.iter().all(|l| l.chars().count() <= LINE_CHARS));
        // Reading the long line whole would have raised the peak by 40 MB or more. The peak is
        // the whole process's: a test that raised it earlier only weakens this check, and no
        // test here allocates anywhere near 20 MB at once.
        let grown = peak_rss_kib().saturating_sub(before);
        assert!(grown < 20 * 1024, "peak memory grew by {grown} KiB");
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_the_rest_dropped() {
        let long = "é".repeat(10 * LINE_CHARS);
        let input = [long.as_bytes(), b"\r\nshort\n\xff bad\nlast"].concat();
        let output = OutputTail::default();
        read_lines(Some(&input[..]), LINE_BYTES, "test", |l| output.push(l)).await;
        let lines = output.last(10);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].chars().count(), LINE_CHARS);
        assert!(lines[0].ends_with('…'));
        assert_eq!(lines[1..], ["short", "\u{fffd} bad", "last"]);
    }
}
