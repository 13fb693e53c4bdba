//! A real browser for the deploy page's tests: Debian's chromium, headless, driven over
//! WebDriver by its chromedriver (started on a free loopback port, with a fresh profile).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;

use super::http::raw_request;
use super::{free_port, wait_for_port, WAIT};

/// Flags that let chromium run on a machine without a display or internet.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: TempDir,
}

impl Browser {
    /// A headless chromium `width` × `height` pixels.
    pub fn start(width: u32, height: u32) -> Browser {
        // A port found free may be taken by a parallel test first: chromedriver then exits,
        // and another port is tried.
        let (driver, port) = (1..=5)
            .find_map(|_| {
                let port = free_port();
                // A group of its own: dropping the browser stops chromium with it, even if
                // the WebDriver session was never made or closed.
                let mut driver = Command::new("chromedriver")
                    .arg(format!("--port={port}"))
                    .process_group(0)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("chromedriver (scripts/setup.sh installs chromium-driver)");
                let up = wait_for_port(port, WAIT)
                    && matches!(driver.try_wait(), Ok(None))
                    && exchange(port, &raw_request(port, "GET", "/status", &[], b""))
                        .1
                        .contains("ChromeDriver");
                if up {
                    return Some((driver, port));
                }
                let _ = driver.kill();
                let _ = driver.wait();
                None
            })
            .expect("chromedriver did not come up on a port of its own");
        let profile = tempfile::tempdir().expect("temp dir");
        let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push(format!("--window-size={width},{height}"));
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        let created = browser.call(
            "POST",
            "/session",
            json!({ "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args },
            }}}),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let (status, text) = exchange(self.port, &raw_request(self.port, method, path, &[], &body));
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("chromedriver {method} {path}: {e}: {text}"));
        assert_eq!(status, 200, "chromedriver {method} {path}: {value}");
        value["value"].clone()
    }

    fn in_session(&self, method: &str, path: &str, body: Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn goto(&self, url: &str) {
        self.in_session("POST", "/url", json!({ "url": url }));
    }

    /// The document as it is now (after its script changed it).
    pub fn html(&self) -> String {
        self.in_session("GET", "/source", Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `script` in the page; what it returns.
    pub fn run(&self, script: &str) -> Value {
        self.in_session(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
    }

    /// The element `selector` (CSS) finds, by its WebDriver id; fails the test without one.
    fn element(&self, selector: &str) -> String {
        let found = self.in_session(
            "POST",
            "/element",
            json!({ "using": "css selector", "value": selector }),
        );
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {selector:?} on the page:\n{}", self.html()))
            .to_owned()
    }

    /// Clicks what `selector` finds, as a person would (it must be visible and enabled).
    pub fn click(&self, selector: &str) {
        let id = self.element(selector);
        self.in_session("POST", &format!("/element/{id}/click"), json!({}));
    }

    /// Types `text` into the field `selector` finds.
    pub fn type_into(&self, selector: &str, text: &str) {
        let id = self.element(selector);
        self.in_session(
            "POST",
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        );
    }

    /// The page's address now.
    pub fn url(&self) -> String {
        self.in_session("GET", "/url", Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Sends `headers` with every request from now on, as a browser extension could (over the
    /// DevTools protocol chromedriver passes on).
    pub fn send_headers(&self, headers: Value) {
        self.in_session(
            "POST",
            "/goog/cdp/execute",
            json!({ "cmd": "Network.enable", "params": {} }),
        );
        self.in_session(
            "POST",
            "/goog/cdp/execute",
            json!({ "cmd": "Network.setExtraHTTPHeaders", "params": { "headers": headers } }),
        );
    }

    /// Waits until the document contains `text`; how long that took.
    pub fn wait_for(&self, text: &str, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.html().contains(text) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "the page never showed {text:?} within {within:?}:\n{}",
                self.html()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Saves a PNG of the window to `path` (its folder is made).
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let png = self.in_session("GET", "/screenshot", Value::Null);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("a base64 PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot folder");
        }
        std::fs::write(path, bytes).expect("write the screenshot");
    }
}

/// One request to chromedriver and its reply, read by its `Content-Length` (chromedriver keeps
/// the connection open after it, whatever the request asked).
fn exchange(port: u16, raw: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to chromedriver");
    stream.set_read_timeout(Some(Duration::from_secs(60))).ok();
    stream.write_all(raw).expect("write to chromedriver");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .expect("chromedriver's status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).expect("chromedriver's headers");
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("chromedriver's body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                exchange(
                    self.port,
                    &raw_request(self.port, "DELETE", &path, &[], b""),
                )
            }));
        }
        let group = nix::unistd::Pid::from_raw(self.driver.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.driver.wait();
    }
}
