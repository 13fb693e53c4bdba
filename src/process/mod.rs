//! Child processes lever starts (deploy steps, plugins): each leads a process group of its own,
//! is stopped as a group, and has its output read in bounded lines.
//!
//! A group lets one `killpg` stop the program and everything it started: SIGTERM first, SIGKILL
//! after a grace. Lines are cut at a byte limit while they are read, so a program printing a
//! 40 MB line costs no more memory than one printing a short one.
//!
//! - [`tie`]: a child is started so that it dies with lever
//! - [`leftovers`]: what a killed lever's steps left running, found and stopped at the next start

pub mod leftovers;
pub mod tie;

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Child;

/// How long a stopped process group gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(2);
/// How long output is still read after the process has exited: a process that left the group
/// (`setsid cmd &`) can hold the pipe open for ever, and the result must not wait for it.
pub const DRAIN: Duration = Duration::from_secs(1);
/// How often the group is checked for survivors during the grace.
const POLL: Duration = Duration::from_millis(50);
/// Read buffer per stream.
const READ_BUF: usize = 8 * 1024;

/// The process group a child started with `process_group(0)` leads: its id is the child's pid.
/// `None` once the child has been waited for.
pub fn group_of(child: &Child) -> Option<Pid> {
    child.id().map(|id| Pid::from_raw(id as i32))
}

/// SIGTERM to the whole group; SIGKILL to whatever is left of it after [`GRACE`]. `name` says
/// what the group is, for the log.
pub async fn stop_group(child: &mut Child, pgid: Pid, name: &str) {
    signal_group(pgid, Signal::SIGTERM, name);
    let deadline = tokio::time::Instant::now() + GRACE;
    // The leader's exit is seen by waiting for it (which also reaps it, so it stops counting as
    // a member); the rest of the group can only be polled.
    let _ = tokio::time::timeout_at(deadline, child.wait()).await;
    while group_alive(pgid) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
    if group_alive(pgid) {
        tracing::info!(process = %name, "still running after SIGTERM; sending SIGKILL");
        signal_group(pgid, Signal::SIGKILL, name);
    }
    // SIGKILL cannot be caught, but a process stuck in the kernel (a dead NFS mount) may still
    // take a while to go; the caller is not held up for it.
    if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
        tracing::warn!(process = %name, pgid = pgid.as_raw(), "did not exit after SIGKILL");
    }
}

fn signal_group(pgid: Pid, signal: Signal, name: &str) {
    match killpg(pgid, signal) {
        // The group is already gone: nothing left to stop.
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => {
            tracing::warn!(
                process = %name,
                pgid = pgid.as_raw(),
                %signal,
                "cannot signal the process group: {e}"
            )
        }
    }
}

/// Whether any process is left in the group (signal 0 checks without sending anything).
fn group_alive(pgid: Pid) -> bool {
    killpg(pgid, None) != Err(Errno::ESRCH)
}

/// Reads `stream` line by line, giving each line (at most `max_bytes` of it; the rest is read
/// and dropped) to `each`, as text with invalid UTF-8 replaced. `what` names the stream in the
/// log.
pub async fn read_lines(
    stream: Option<impl AsyncRead + Unpin>,
    max_bytes: usize,
    what: &str,
    mut each: impl FnMut(&str),
) {
    let Some(stream) = stream else { return };
    let mut reader = BufReader::with_capacity(READ_BUF, stream);
    let mut line = Vec::with_capacity(max_bytes.min(READ_BUF));
    let mut emit = |line: &[u8]| {
        let text = String::from_utf8_lossy(line);
        tracing::debug!(stream = what, "{text}");
        each(&text);
    };
    loop {
        let buf = match reader.fill_buf().await {
            Ok(buf) => buf,
            Err(e) => {
                tracing::debug!(stream = what, "cannot read the output: {e}");
                break;
            }
        };
        if buf.is_empty() {
            break;
        }
        let (chunk, used, ends_line) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        // Past the cap the rest of the line is read and dropped, so memory stays bounded.
        let room = max_bytes - line.len();
        line.extend_from_slice(&chunk[..room.min(chunk.len())]);
        reader.consume(used);
        if ends_line {
            emit(&line);
            line.clear();
        }
    }
    if !line.is_empty() {
        emit(&line);
    }
}

/// How a process ended, unless it succeeded: "exit code 3", "killed by signal 9 (SIGKILL)".
pub fn failure(status: ExitStatus) -> Option<String> {
    if let Some(code) = status.code() {
        return (code != 0).then(|| format!("exit code {code}"));
    }
    Some(match status.signal() {
        Some(n) => match Signal::try_from(n) {
            Ok(signal) => format!("killed by signal {n} ({})", signal.as_str()),
            Err(_) => format!("killed by signal {n}"),
        },
        None => format!("ended with {status}"),
    })
}

/// Says what could not be run from `workdir` and why; for a missing file, where it was looked
/// for.
pub fn spawn_error(program: &str, workdir: &Path, e: &io::Error) -> String {
    let why = os_error(e);
    let path = Path::new(program);
    if !program.contains('/') {
        return if e.kind() == io::ErrorKind::NotFound {
            format!("cannot run {program}: not found on PATH")
        } else {
            format!("cannot run {program}: {why}")
        };
    }
    let full = workdir.join(path);
    let place = if path.is_relative() {
        format!("{program} in {}", workdir.display())
    } else {
        program.to_string()
    };
    // ENOENT for a file that is there means its `#!` interpreter is missing.
    if e.kind() == io::ErrorKind::NotFound && full.exists() {
        return format!("cannot run {place}: {why} (is the interpreter on its #! line missing?)");
    }
    format!("cannot run {place}: {why}")
}

/// An OS error as the OS says it ("No such file or directory"), without Rust's "(os error 2)".
pub fn os_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_cut_and_the_rest_dropped() {
        let long = "é".repeat(1000);
        let input = [long.as_bytes(), b"\r\nshort\n\xff bad\nlast"].concat();
        let mut lines = Vec::new();
        read_lines(Some(&input[..]), 101, "test", |l| lines.push(l.to_owned())).await;
        assert_eq!(lines.len(), 4);
        // 101 bytes end inside an "é": the half character becomes one replacement character.
        assert_eq!(lines[0], format!("{}\u{fffd}", "é".repeat(50)));
        assert_eq!(lines[1..], ["short", "\u{fffd} bad", "last"]);
    }

    #[test]
    fn failures_read_like_the_shell_says_them() {
        assert_eq!(failure(ExitStatus::from_raw(0)), None);
        assert_eq!(
            failure(ExitStatus::from_raw(3 << 8)).as_deref(),
            Some("exit code 3")
        );
        assert_eq!(
            failure(ExitStatus::from_raw(9)).as_deref(),
            Some("killed by signal 9 (SIGKILL)")
        );
    }
}
