//! Running a plugin: a fresh process per command, the invocation as JSON on stdin, reply lines
//! on stdout.
//!
//! The process leads a group of its own, so a timeout stops it and everything it started. Its
//! output is bounded while it is read (lines kept, bytes per line); what it prints is acted on
//! only once it has exited 0, so a failing plugin never half-answers or half-writes the log.
//! Every line is sanitised before it reaches the outbox: a plugin cannot put CR/LF on the wire.

use std::path::Path;
use std::pin::pin;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command as Process;

use serde_json::Value;

use super::Plugin;
use crate::chat::text::clean_line;
use crate::deploy::backend::OutputTail;
use crate::process::{failure, group_of, read_lines, spawn_error, stop_group, DRAIN};

/// Reply lines acted on; the rest are counted ("… 12 more lines").
pub const MAX_LINES: usize = 10;
/// Bytes kept of one stdout line (a JSON line's escapes included); the rest is dropped.
pub const LINE_BYTES: usize = 8 * 1024;
/// Characters said of one reply line (IRC splits longer ones into several messages).
pub const SAY_CHARS: usize = 400;
/// Characters kept of a deploy log line a plugin writes.
pub const LOG_CHARS: usize = 300;
/// Lines of stderr shown when a plugin fails, and characters of each.
const ERROR_LINES: usize = 3;
pub const ERROR_CHARS: usize = 200;

/// How a plugin process ended.
#[derive(Debug)]
pub enum Ran {
    /// It exited 0: the first lines of its stdout, and how many more there were.
    Succeeded { lines: Vec<String>, more: usize },
    /// It exited non-zero or was killed: how, and the last lines of its stderr.
    Failed { status: String, stderr: Vec<String> },
    /// It ran past its timeout; its group was stopped.
    TimedOut,
    /// It could not be started at all.
    NotStarted(String),
}

/// Runs `plugin` with `extra` after its argv and `input` on stdin, for at most `timeout`,
/// keeping at most `max_lines` lines of `line_bytes` each of its stdout.
pub async fn run(
    plugin: &Plugin,
    extra: Option<&str>,
    input: &[u8],
    timeout: Duration,
    (max_lines, line_bytes): (usize, usize),
) -> Ran {
    let Some((program, args)) = plugin.argv.split_first() else {
        return Ran::NotStarted("its command is empty".into());
    };
    let mut process = Process::new(program);
    process
        .args(args)
        .args(extra)
        .current_dir(&plugin.workdir)
        .env_clear()
        .envs(plugin.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match crate::process::tie::spawn_tied(process).await {
        Ok(child) => child,
        Err(e) => return Ran::NotStarted(spawn_error(program, &plugin.workdir, &e)),
    };
    let Some(pgid) = group_of(&child) else {
        return Ran::NotStarted(format!("cannot run {program}: it vanished as it started"));
    };
    let name = format!("plugin {}", plugin.name);
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let mut lines = Vec::new();
    let mut more = 0;
    let errors = OutputTail::default();
    let ended = {
        let feed = async {
            if let Some(mut stdin) = stdin {
                // A plugin that does not read its input may exit before it is written.
                let _ = stdin.write_all(input).await;
            }
        };
        let out = read_lines(stdout, line_bytes, &name, |line| {
            if lines.len() < max_lines {
                lines.push(line.to_owned());
            } else {
                more += 1;
            }
        });
        let err = read_lines(stderr, 4 * ERROR_CHARS, &name, |line| errors.push(line));
        let mut reading = pin!(async { tokio::join!(feed, out, err) });
        let mut read_all = false;
        let deadline = tokio::time::Instant::now() + timeout;
        let ended = loop {
            tokio::select! {
                waited = tokio::time::timeout_at(deadline, child.wait()) => break waited,
                _ = &mut reading, if !read_all => read_all = true,
            }
        };
        if ended.is_err() {
            tracing::info!(plugin = %plugin.name, "plugin timed out; stopping it");
            stop_group(&mut child, pgid, &name).await;
        }
        if !read_all && tokio::time::timeout(DRAIN, reading).await.is_err() {
            tracing::debug!(plugin = %plugin.name, "output still open after it ended; stopped reading");
        }
        ended
    };
    match ended {
        Err(_) => Ran::TimedOut,
        Ok(Err(e)) => Ran::Failed {
            status: format!("lost track of it: {e}"),
            stderr: Vec::new(),
        },
        Ok(Ok(status)) => match failure(status) {
            None => Ran::Succeeded { lines, more },
            Some(status) => Ran::Failed {
                status,
                stderr: errors
                    .last(ERROR_LINES)
                    .into_iter()
                    .filter(|l| !l.trim().is_empty())
                    .collect(),
            },
        },
    }
}

/// Text as one clean line: newlines become spaces, controls go, and it is cut to `max`.
pub fn one_line(text: &str, max: usize) -> String {
    let flat = text.replace(['\r', '\n'], " ");
    clean_line(&flat, max)
}

/// "5 s" for whole seconds, else as the deploy log writes durations.
pub fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        crate::chat::text::human_duration(d)
    }
}

/// One line of a plugin's stdout.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Say(String),
    Notice(String),
    Log {
        text: String,
        target: Option<String>,
    },
    /// A JSON object lever does not understand: why, to show instead.
    Bad(String),
}

impl Reply {
    /// Plain text is said; a JSON object must be one of `{"say": text}`, `{"notice": text}`,
    /// `{"log": text}` (with an optional `"target"`). A line that only looks like JSON (`{x}`)
    /// is plain text.
    pub fn parse(line: &str) -> Reply {
        let trimmed = line.trim();
        if !trimmed.starts_with('{') {
            return Reply::Say(line.to_owned());
        }
        let Ok(Value::Object(object)) = serde_json::from_str::<Value>(trimmed) else {
            return Reply::Say(line.to_owned());
        };
        let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        match keys.as_slice() {
            ["say"] if text("say").is_some() => Reply::Say(text("say").unwrap_or_default()),
            ["notice"] if text("notice").is_some() => {
                Reply::Notice(text("notice").unwrap_or_default())
            }
            ["log"] | ["log", "target"] | ["target", "log"] if text("log").is_some() => {
                match object.get("target") {
                    None | Some(Value::Null) => Reply::Log {
                        text: text("log").unwrap_or_default(),
                        target: None,
                    },
                    Some(Value::String(t)) => Reply::Log {
                        text: text("log").unwrap_or_default(),
                        target: Some(t.clone()),
                    },
                    Some(_) => Reply::Bad("has a \"target\" that is not a string".into()),
                }
            }
            _ => Reply::Bad(
                "is JSON but not {\"say\": text}, {\"notice\": text} or {\"log\": text}".into(),
            ),
        }
    }
}

/// Whether `path` is a file lever may run as a plugin: a regular file (or a link to one) with
/// an execute bit.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_lines_are_text_or_one_of_three_json_forms() {
        let say = |t: &str| Reply::Say(t.to_owned());
        assert_eq!(Reply::parse("plain words"), say("plain words"));
        assert_eq!(Reply::parse(r#"{"say": "hi"}"#), say("hi"));
        assert_eq!(
            Reply::parse(r#" {"notice": "psst"} "#),
            Reply::Notice("psst".into())
        );
        assert_eq!(
            Reply::parse(r#"{"log": "db failover", "target": "site"}"#),
            Reply::Log {
                text: "db failover".into(),
                target: Some("site".into())
            }
        );
        assert_eq!(
            Reply::parse(r#"{"log": "note"}"#),
            Reply::Log {
                text: "note".into(),
                target: None
            }
        );
        // Looks like JSON, is not: said as it is.
        assert_eq!(Reply::parse("{not json}"), say("{not json}"));
        assert_eq!(Reply::parse("{\"say\": \"cut"), say("{\"say\": \"cut"));
        assert!(matches!(Reply::parse(r#"{"sya": "x"}"#), Reply::Bad(_)));
        assert!(matches!(Reply::parse(r#"{"say": 3}"#), Reply::Bad(_)));
        assert!(matches!(
            Reply::parse(r#"{"say": "a", "notice": "b"}"#),
            Reply::Bad(_)
        ));
        assert!(matches!(
            Reply::parse(r#"{"log": "a", "target": 1}"#),
            Reply::Bad(_)
        ));
    }

    #[test]
    fn a_line_cannot_carry_a_second_irc_command() {
        assert_eq!(one_line("hi\r\nQUIT :bye\x01", 400), "hi  QUIT :bye");
        assert_eq!(one_line(&"x".repeat(500), 10), "xxxxxxxxx…");
    }

    #[test]
    fn timeouts_read_in_seconds() {
        assert_eq!(seconds(Duration::from_secs(5)), "5 s");
        assert_eq!(seconds(Duration::from_millis(2500)), "2500 ms");
    }
}
