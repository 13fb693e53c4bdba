//! How a step runs. A run is a list of steps; each backend knows how to execute one and report
//! how it went. `script` runs a local program (argv, never a shell); the engines teams already
//! run (Jenkins, HTTP deployers) come as further backends.

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
}

/// What a finished step reports.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub outcome: StepOutcome,
    pub duration: Duration,
    /// The last lines of its output (stdout and stderr interleaved as they came).
    pub tail: Vec<String>,
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
    /// Adds a line of output, keeping only the last [`TAIL_LINES`], each cut to [`LINE_CHARS`].
    pub fn push(&self, line: &str) {
        let line = crate::text::truncate_chars(line.trim_end(), LINE_CHARS).into_owned();
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
