//! How a run executes. Whatever does the work reports the same way, through [`Progress`]: a
//! step started, a step finished (with its time, outcome and output tail). So the channel,
//! `!status` and the store see the same thing whether the steps are local programs
//! ([`script`]: argv, never a shell), a Jenkins job ([`jenkins`]), or an HTTP deploy engine
//! ([`engine`]) fanning out across many hosts.

pub mod engine;
pub mod jenkins;
pub mod script;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Lines of output kept per step (the rest is counted, not stored).
pub const TAIL_LINES: usize = 20;
/// Characters kept per output line.
pub const LINE_CHARS: usize = 300;

/// One step, ready to run: placeholders already filled in.
#[derive(Debug, Clone)]
pub struct StepSpec {
    pub name: String,
    /// The program and its arguments. Never passed to a shell.
    pub argv: Vec<String>,
    /// Extra environment for the step (on top of lever's, minus lever's own `LEVER_*` settings).
    pub env: Vec<(String, String)>,
    pub workdir: PathBuf,
    pub timeout: Duration,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    Succeeded,
    /// The program exited non-zero or was killed by a signal; `status` reads like
    /// "exit code 3" or "killed by signal 9 (SIGKILL)".
    Failed {
        status: String,
    },
    /// It could not be started at all (missing program, not executable, bad workdir).
    NotStarted {
        error: String,
    },
    /// It ran past its timeout; its whole process group was killed.
    TimedOut,
    /// The run was cancelled; its whole process group was killed.
    Cancelled,
}

impl StepOutcome {
    pub fn is_success(&self) -> bool {
        *self == StepOutcome::Succeeded
    }

    /// The state word the store and the channel use: "ok", "failed", "timed out", "cancelled".
    pub fn state(&self) -> &'static str {
        match self {
            StepOutcome::Succeeded => "ok",
            StepOutcome::Failed { .. } | StepOutcome::NotStarted { .. } => "failed",
            StepOutcome::TimedOut => "timed out",
            StepOutcome::Cancelled => "cancelled",
        }
    }
}

/// Why a step did not succeed, in words ("exit code 3", "timed out after 2000 ms").
pub fn describe(outcome: &StepOutcome, limit: Option<Duration>) -> String {
    match outcome {
        StepOutcome::Succeeded => "ok".into(),
        StepOutcome::Failed { status } => status.clone(),
        StepOutcome::NotStarted { error } => error.clone(),
        StepOutcome::TimedOut => match limit {
            Some(limit) => format!(
                "timed out after {}",
                crate::chat::text::human_duration(limit)
            ),
            None => "timed out".into(),
        },
        StepOutcome::Cancelled => "cancelled".into(),
    }
}

/// What a finished step reports.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub outcome: StepOutcome,
    pub duration: Duration,
    /// The last lines of its output (stdout and stderr interleaved as they came).
    pub tail: Vec<String>,
}

/// Where a run reports its steps as they start and end, whatever executes them.
pub trait Progress: Send {
    fn step_started(&mut self, name: &str);
    /// The running step is a local process group, led by `pgid` (the script backend).
    fn step_spawned(&mut self, _pgid: nix::unistd::Pid) {}
    /// `limit`: the step's own timeout, so a timeout can say what it was.
    fn step_finished(&mut self, result: &StepResult, limit: Option<Duration>);
    /// Where the running step's output goes (`!status` shows its last line).
    fn output(&self) -> OutputTail;
}

/// How a whole run ended, as its executor saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Succeeded {
        /// A version the executor reported (an HTTP engine may).
        version: Option<String>,
    },
    /// Why, for the run's record: "'stage 2' failed: exit code 1".
    Failed(String),
    /// During what: "cancelled during 'stage 2'".
    Cancelled(String),
}

/// The live tail of a running step's output, shared with `!status`.
#[derive(Debug, Clone, Default)]
pub struct OutputTail {
    inner: Arc<Mutex<Tail>>,
}

#[derive(Debug, Default)]
struct Tail {
    lines: VecDeque<String>,
    total: u64,
}

impl OutputTail {
    /// Adds a line of output, keeping only the last [`TAIL_LINES`], each cut to [`LINE_CHARS`]
    /// and without terminal colour codes (which would reach IRC as `[31m` litter).
    pub fn push(&self, line: &str) {
        let line = strip_ansi(line);
        let line = crate::chat::text::truncate_chars(line.trim_end(), LINE_CHARS).into_owned();
        let mut tail = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        tail.total += 1;
        if tail.lines.len() == TAIL_LINES {
            tail.lines.pop_front();
        }
        tail.lines.push_back(line);
    }

    /// The last non-blank line, for `!status`.
    pub fn last_line(&self) -> Option<String> {
        let tail = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        tail.lines
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .cloned()
    }

    /// The last `n` lines.
    pub fn last(&self, n: usize) -> Vec<String> {
        let tail = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let skip = tail.lines.len().saturating_sub(n);
        tail.lines.iter().skip(skip).cloned().collect()
    }

    /// How many lines were seen in all.
    pub fn total(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// Starts over for the next step.
    pub fn clear(&self) {
        let mut tail = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        tail.lines.clear();
        tail.total = 0;
    }
}

/// Removes ANSI escape sequences (`ESC [ ... letter`, and other `ESC x` pairs).
fn strip_ansi(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains('\x1b') {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // CSI: parameters and intermediates up to a final byte in @..~
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: up to BEL or ESC \
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_lines_without_colour_codes() {
        let tail = OutputTail::default();
        for i in 0..(TAIL_LINES + 5) {
            tail.push(&format!("line {i}"));
        }
        tail.push("\x1b[1;31mERROR\x1b[0m: \x1b]0;title\x07disk full  ");
        tail.push("   ");
        assert_eq!(tail.total(), TAIL_LINES as u64 + 7);
        assert_eq!(tail.last(2), ["ERROR: disk full", ""]);
        assert_eq!(tail.last_line().as_deref(), Some("ERROR: disk full"));
        assert_eq!(tail.last(100).len(), TAIL_LINES);
        tail.clear();
        assert_eq!(tail.last_line(), None);
    }
}
