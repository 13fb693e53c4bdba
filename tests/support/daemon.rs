//! A server a test starts as a child process (Prometheus, Alertmanager): its own folder, a free
//! loopback port, its output in a log file, stopped when the test ends, and its log's tail
//! printed when the test fails.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{free_port, reap_if_exited};

pub struct Daemon {
    /// Where its config, data and log live.
    pub dir: TempDir,
    pub port: u16,
    name: &'static str,
    child: Option<Child>,
}

impl Daemon {
    /// Starts `command(dir, port)` on a free port and waits until `ready(port, log)` holds. A
    /// port found free may be taken by a parallel test before the server binds it; then it
    /// exits (or never gets ready) and another port is tried.
    pub fn start(
        name: &'static str,
        dir: TempDir,
        command: impl Fn(&Path, u16) -> Command,
        ready: impl Fn(u16, &str) -> bool,
    ) -> Daemon {
        let mut daemon = Daemon {
            dir,
            port: 0,
            name,
            child: None,
        };
        for _ in 0..5 {
            daemon.port = free_port();
            if daemon.try_launch(&command, &ready) {
                return daemon;
            }
        }
        panic!("{name} would not start:\n{}", daemon.log());
    }

    fn try_launch(
        &mut self,
        command: &impl Fn(&Path, u16) -> Command,
        ready: &impl Fn(u16, &str) -> bool,
    ) -> bool {
        let log = std::fs::File::create(self.log_path()).expect("log file");
        let child = command(self.dir.path(), self.port)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.name));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if reap_if_exited(&mut self.child) {
                return false;
            }
            if ready(self.port, &self.log()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        false
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.dir.path().join(format!("{}.log", self.name))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether a Prometheus-style server on `port` answers `GET /-/ready` with 200.
pub fn ready_at(port: u16) -> bool {
    let url = format!("http://127.0.0.1:{port}/-/ready");
    matches!(
        super::alertmanager::http(reqwest::Method::GET, &url, None, None),
        Ok((200, _))
    )
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!(
                "--- {} log (last lines) ---\n{}",
                self.name,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}
