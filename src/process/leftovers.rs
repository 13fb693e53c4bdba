//! Finding and stopping what a killed lever left running.
//!
//! [`super::tie`] makes a step's leader die with lever, but what the leader started (an
//! `rsync` under a shell script) lives on in the step's process group. lever records each
//! step's group and a mark of its leader's start ([`start_mark`]); at the next start,
//! [`stop_leftovers`] finds processes still in that group and stops them, so no orphaned run
//! goes on changing production beside a new one.
//!
//! A group id cannot be reused while any process is in the group, so members found are the
//! step's own, unless the whole group ended and its id went to a new leader: then the process
//! whose pid is the group id exists with another start time, and the group is left alone.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::GRACE;

/// How often the group is checked during the grace.
const POLL: Duration = Duration::from_millis(50);

/// What identifies one start of process `pid`: this boot's id and the process's start time
/// (clock ticks since boot). `None` if `/proc` cannot say.
pub fn start_mark(pid: Pid) -> Option<String> {
    let boot = boot_id()?;
    let started = stat(pid)?.started;
    Some(format!("{boot}:{started}"))
}

/// Stops the processes left in `pgid`, the group of a step whose leader started as `mark`:
/// SIGTERM, then SIGKILL after [`GRACE`]. Returns how many there were. Blocks for up to the
/// grace: call it off the async runtime.
pub fn stop_leftovers(pgid: Pid, mark: &str) -> usize {
    let found = leftovers(pgid, mark);
    if found == 0 {
        return 0;
    }
    tracing::warn!(
        pgid = pgid.as_raw(),
        processes = found,
        "a step of an interrupted run is still running; stopping it"
    );
    signal(pgid, Signal::SIGTERM);
    let deadline = Instant::now() + GRACE;
    while leftovers(pgid, mark) > 0 && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    if leftovers(pgid, mark) > 0 {
        signal(pgid, Signal::SIGKILL);
    }
    found
}

/// How many processes of the step whose leader started as `mark` are still in `pgid`.
fn leftovers(pgid: Pid, mark: &str) -> usize {
    let Some((boot, started)) = mark.split_once(':') else {
        return 0;
    };
    // Another boot: everything the step started is long gone.
    if boot_id().as_deref() != Some(boot) {
        return 0;
    }
    if let Some(leader) = stat(pgid) {
        if leader.started.to_string() != started {
            return 0;
        }
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| stat(Pid::from_raw(pid)))
        // A zombie is already dead; it waits only for its parent to reap it.
        .filter(|s| s.group == pgid.as_raw() && s.state != 'Z')
        .count()
}

fn signal(pgid: Pid, signal: Signal) {
    match killpg(pgid, signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => {
            tracing::warn!(pgid = pgid.as_raw(), %signal, "cannot stop a leftover step: {e}")
        }
    }
}

struct Stat {
    state: char,
    group: i32,
    started: u64,
}

/// The fields of `/proc/PID/stat` needed here. The command name (field 2) may hold spaces
/// and parentheses, so fields are counted after its last `)`.
fn stat(pid: Pid) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (3), ppid (4), pgrp (5), ... starttime (22).
    Some(Stat {
        state: fields.first()?.chars().next()?,
        group: fields.get(2)?.parse().ok()?,
        started: fields.get(19)?.parse().ok()?,
    })
}

fn boot_id() -> Option<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn a_group_left_behind_is_found_and_stopped_and_a_reused_id_is_not() {
        // A leader that starts a child and is then killed, as a killed lever's step would be.
        let mut leader = std::process::Command::new("sh")
            .args(["-c", "sleep 300 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = Pid::from_raw(leader.id() as i32);
        let mark = start_mark(pgid).unwrap();
        // Wait until the child is in the group.
        let deadline = Instant::now() + Duration::from_secs(10);
        while leftovers(pgid, &mark) < 2 && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        assert_eq!(leftovers(pgid, &mark), 2, "sh and sleep");
        // Another start of the same pid is someone else's group.
        let (boot, _) = mark.split_once(':').unwrap();
        assert_eq!(leftovers(pgid, &format!("{boot}:1")), 0);
        assert_eq!(leftovers(pgid, "another-boot:1"), 0);

        leader.kill().unwrap();
        leader.wait().unwrap();
        // The leader is gone; the sleep it started is still in the group.
        assert_eq!(leftovers(pgid, &mark), 1);
        assert_eq!(stop_leftovers(pgid, &mark), 1);
        // Only a zombie may be left, waiting for whoever inherited it to reap it.
        assert_eq!(leftovers(pgid, &mark), 0);
    }
}
