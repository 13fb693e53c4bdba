//! Test rig: a real ngIRCd on a free loopback port, raw IRC clients that speak the protocol
//! line by line, and lever itself, either as its real binary or in-process (for tests that
//! need to fill its outbox directly).
//!
//! Everything here fails loudly with what it saw: a test that times out prints the lines the
//! client received and lever's log.

#![allow(dead_code)] // each test file uses a different part of the rig
pub mod alertmanager;
pub mod browser;
pub mod certs;
pub mod daemon;
pub mod http;
pub mod inspircd;
pub mod mock_http;
pub mod nginx;
pub mod postgres;
pub mod prometheus;
pub mod proxy;
pub mod scripted;
pub mod shared_store;

#[allow(unused_imports)] // each test file uses a different part of the rig
pub use http::{
    exchange, raw_request, read_reply, request, start_serving_http, start_with_http, Reply,
};

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use lever::bot::Bot;
use lever::config::Config;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// How long any single expectation waits before failing.
pub const WAIT: Duration = Duration::from_secs(15);

/// Finds the ngircd binary, or fails naming the set-up script.
pub fn ngircd_binary() -> PathBuf {
    for candidate in [
        "/usr/sbin/ngircd",
        "/usr/local/sbin/ngircd",
        "/usr/bin/ngircd",
    ] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!("ngircd not found: run scripts/setup.sh (it apt-installs ngircd), then retry");
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A private ngIRCd server for one test.
pub struct Ngircd {
    dir: TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Ngircd {
    /// Starts ngIRCd with penalties off, so tests can send at full speed; flood behaviour is
    /// tested against InspIRCd, which enforces it.
    pub fn start() -> Self {
        Self::start_with("MaxPenaltyTime = 0")
    }

    /// Starts ngIRCd with extra lines in its `[Limits]` section.
    pub fn start_with(limits: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // ngIRCd drops root privileges to `nobody`; let it read its folder.
        let _ = std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        );
        let mut server = Self {
            dir,
            port: 0,
            child: None,
        };
        // A port found free may be taken by a parallel test before ngircd binds it; then
        // ngircd exits, and another port is tried.
        for _ in 0..5 {
            server.port = free_port();
            let port = server.port;
            let conf = format!(
                "[Global]\n\tName = irc.lever.test\n\tInfo = lever test server\n\tListen = 127.0.0.1\n\
                 \tPorts = {port}\n\tMotdPhrase = \"lever test\"\n\
                 [Limits]\n\tMaxConnectionsIP = 0\n\tMaxNickLength = 30\n\tPingTimeout = 120\n\tPongTimeout = 20\n\t{limits}\n\
                 [Options]\n\tDNS = no\n\tIdent = no\n\tPAM = no\n"
            );
            std::fs::write(server.dir.path().join("ngircd.conf"), conf).expect("write ngircd.conf");
            if server.try_launch() {
                return server;
            }
        }
        panic!("ngircd would not start: {}", server.log());
    }

    fn launch(&mut self) {
        for _ in 0..5 {
            if self.try_launch() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("ngircd did not come back on {}: {}", self.port, self.log());
    }

    /// Starts ngircd; true once this very process listens on the port (its log says so).
    fn try_launch(&mut self) -> bool {
        let log = std::fs::File::create(self.dir.path().join("ngircd.log")).expect("log file");
        let child = Command::new(ngircd_binary())
            .arg("-n")
            .arg("-f")
            .arg(self.dir.path().join("ngircd.conf"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start ngircd");
        self.child = Some(child);
        let listening = format!("Now listening on [127.0.0.1]:{}", self.port);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().contains(&listening) {
                return true;
            }
            if reap_if_exited(&mut self.child) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.stop();
        false
    }

    /// Kills the server (every client is disconnected).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// The server's process id (for SIGSTOP/SIGCONT).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ngircd.log")).unwrap_or_default()
    }
}

impl Drop for Ngircd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether the process in `child` has exited; if so, it is taken out (a server that could not
/// bind its port, so the caller tries another).
pub fn reap_if_exited(child: &mut Option<Child>) -> bool {
    let exited = child
        .as_mut()
        .is_some_and(|c| c.try_wait().ok().flatten().is_some());
    if exited {
        *child = None;
    }
    exited
}

/// Sends a signal by name (`TERM`, `STOP`, `CONT`) to a process.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// One IRC line as a test client sees it.
#[derive(Debug, Clone)]
pub struct Line {
    pub raw: String,
    /// The nick (or server name) in the prefix.
    pub from: String,
    pub verb: String,
    pub params: Vec<String>,
}

impl Line {
    pub fn parse(raw: &str) -> Line {
        let mut rest = raw;
        if rest.starts_with('@') {
            rest = rest.split_once(' ').map_or("", |(_, r)| r);
        }
        let mut from = String::new();
        if let Some(r) = rest.strip_prefix(':') {
            let (prefix, r) = r.split_once(' ').unwrap_or((r, ""));
            from = prefix.split('!').next().unwrap_or("").to_owned();
            rest = r;
        }
        let (head, trailing) = match rest.split_once(" :") {
            Some((h, t)) => (h, Some(t)),
            None => (rest, None),
        };
        let mut words = head.split(' ').filter(|w| !w.is_empty());
        let verb = words.next().unwrap_or("").to_owned();
        let mut params: Vec<String> = words.map(str::to_owned).collect();
        params.extend(trailing.map(str::to_owned));
        Line {
            raw: raw.to_owned(),
            from,
            verb,
            params,
        }
    }

    /// The last parameter (a PRIVMSG's text).
    pub fn text(&self) -> &str {
        self.params.last().map_or("", String::as_str)
    }

    /// Whether this is a PRIVMSG from `nick`.
    pub fn is_privmsg_from(&self, nick: &str) -> bool {
        self.verb == "PRIVMSG" && self.from.eq_ignore_ascii_case(nick)
    }
}

/// A raw IRC client: registers, joins, sends lines, and reads what the server relays.
pub struct Client {
    pub nick: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// Every line received, for failure messages.
    pub seen: Vec<String>,
}

impl Client {
    /// Connects and registers as `nick`.
    pub fn connect(port: u16, nick: &str) -> Client {
        let mut client = Client::open(port, nick);
        client.send_registration();
        client.expect(|l| l.verb == "001");
        client
    }

    /// Connects as `nick` without registering (for a caller that sends `PASS` or `CAP` first).
    pub fn open(port: u16, nick: &str) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the IRC server");
        stream.set_nodelay(true).ok();
        Client {
            nick: nick.to_owned(),
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            seen: Vec::new(),
        }
    }

    /// `NICK` and `USER` for the client's nick.
    pub fn send_registration(&mut self) {
        let nick = self.nick.clone();
        self.send(&format!("NICK {nick}"));
        self.send(&format!("USER {nick} 0 * :test client"));
    }

    pub fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write to server");
    }

    pub fn privmsg(&mut self, target: &str, text: &str) {
        self.send(&format!("PRIVMSG {target} :{text}"));
    }

    /// Joins `channel` and waits until the server confirms.
    pub fn join(&mut self, channel: &str) {
        self.send(&format!("JOIN {channel}"));
        self.expect(|l| l.verb == "366");
    }

    /// The next line as raw bytes (CRLF included), answering server PINGs on the way.
    pub fn next_raw(&mut self, within: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.reader
                .get_ref()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok();
            let mut buf = Vec::new();
            match self.reader.read_until(b'\n', &mut buf) {
                Ok(0) => return None,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf).trim_end().to_owned();
                    if let Some(token) = text.strip_prefix("PING ") {
                        self.send(&format!("PONG {token}"));
                        continue;
                    }
                    self.seen.push(text);
                    return Some(buf);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if !buf.is_empty() {
                        panic!(
                            "partial line at timeout: {:?}",
                            String::from_utf8_lossy(&buf)
                        );
                    }
                    return None;
                }
                Err(_) => return None,
            }
        }
    }

    /// The next line, parsed.
    pub fn next_line(&mut self, within: Duration) -> Option<Line> {
        let raw = self.next_raw(within)?;
        Some(Line::parse(String::from_utf8_lossy(&raw).trim_end()))
    }

    /// Reads until a line matches, within [`WAIT`]; fails with the transcript otherwise.
    pub fn expect(&mut self, matches: impl Fn(&Line) -> bool) -> Line {
        self.expect_within(WAIT, matches)
    }

    pub fn expect_within(&mut self, within: Duration, matches: impl Fn(&Line) -> bool) -> Line {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next_line(left) {
                Some(line) if matches(&line) => return line,
                Some(_) => {}
                None => break,
            }
        }
        panic!(
            "{}: expected line not seen within {:?}; last lines:\n{}",
            self.nick,
            within,
            self.seen[self.seen.len().saturating_sub(30)..].join("\n")
        );
    }

    /// Waits for the next PRIVMSG from `nick` and returns its text.
    pub fn expect_privmsg_from(&mut self, nick: &str) -> String {
        self.expect(|l| l.is_privmsg_from(nick)).text().to_owned()
    }

    /// Reads lines for `within` and returns those that match (for "nothing was said" checks).
    pub fn collect_for(&mut self, within: Duration, matches: impl Fn(&Line) -> bool) -> Vec<Line> {
        let deadline = Instant::now() + within;
        let mut found = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next_line(left) {
                Some(line) if matches(&line) => found.push(line),
                Some(_) => {}
                None => break,
            }
        }
        found
    }

    /// What lever said in #ops within `within`, in order.
    pub fn lever_lines_for(&mut self, within: Duration) -> Vec<String> {
        self.collect_for(within, lever_in_ops)
            .into_iter()
            .map(|l| l.text().to_owned())
            .collect()
    }

    /// Says `text` in #ops, the channel every test's lever serves.
    pub fn say_ops(&mut self, text: &str) {
        self.privmsg("#ops", text);
    }

    /// The next thing lever says in #ops, whatever it is.
    pub fn lever_says(&mut self) -> String {
        self.expect(lever_in_ops).text().to_owned()
    }

    /// lever answers `!ping` with nothing else queued before it: everything it had to say to
    /// what came before has been read.
    pub fn pong(&mut self) {
        self.say_ops("!ping");
        assert_eq!(self.lever_says(), "pong");
    }

    /// The next thing lever says in #ops that starts with `prefix` (others are skipped;
    /// `""` takes anything), waiting up to `within`.
    pub fn lever_says_within(&mut self, within: Duration, prefix: &str) -> String {
        self.expect_within(within, |l| lever_in_ops(l) && l.text().starts_with(prefix))
            .text()
            .to_owned()
    }
}

/// Whether `line` is lever speaking in #ops.
pub fn lever_in_ops(line: &Line) -> bool {
    line.verb == "PRIVMSG"
        && line.from == "lever"
        && line.params.first().is_some_and(|c| c == "#ops")
}

/// One request to lever's HTTP side on `port` (the rig's [`request`]), with
/// `Authorization: Bearer` when a token is given; the status and body.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> (u16, String) {
    let auth: Vec<(String, String)> = bearer
        .map(|t| ("Authorization".to_owned(), format!("Bearer {t}")))
        .into_iter()
        .collect();
    let reply = request(port, method, path, &auth, body.as_bytes());
    (reply.status, reply.body)
}

/// A `bot.toml` for lever on the test server: plain TCP, throttle off unless `extra` sets it.
pub fn bot_config(port: u16, extra_irc: &str, rest: &str) -> String {
    format!(
        "[irc]\nserver = \"127.0.0.1\"\nport = {port}\ntls = false\nnickname = \"lever\"\n\
         channels = [\"#ops\"]\n{}\n{extra_irc}\n{rest}\n",
        if extra_irc.contains("line_interval") {
            ""
        } else {
            "line_interval = \"0s\""
        }
    )
}

/// lever's real binary, running `lever run` on `bot.toml` in a temp folder that also holds
/// what the config needs (step scripts) and its store (`lever.db`). The one way tests and
/// benches start the binary: [`Lever::prepare`] the folder, put things in it, then
/// [`Lever::launch`] (again after a stop or a kill: same config, same store, log appended to).
pub struct Lever {
    pub dir: TempDir,
    child: Option<Child>,
    /// Added to lever's environment at every launch (after `RUST_LOG=lever=debug`, so it may
    /// set another level).
    env: Vec<(String, String)>,
    /// Another build of lever to launch (a bench's release binary); default: cargo's.
    binary: Option<PathBuf>,
}

impl Lever {
    /// A folder with `bot.toml`; lever is not started yet (write the scripts first).
    pub fn prepare(config: &str) -> Lever {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("bot.toml"), config).expect("write bot.toml");
        Lever {
            dir,
            child: None,
            env: Vec::new(),
            binary: None,
        }
    }

    pub fn start(config: &str) -> Lever {
        Self::start_with_env(config, &[])
    }

    /// Starts lever after `prepare` has put what the config needs (step scripts) in its folder.
    pub fn start_prepared(config: &str, prepare: impl FnOnce(&Path)) -> Lever {
        let mut lever = Self::prepare(config);
        prepare(lever.dir.path());
        lever.launch();
        lever
    }

    /// Starts lever with `env` added to its environment (secrets, as operators pass them).
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Lever {
        let mut lever = Self::prepare(config);
        lever.set_env(env);
        lever.launch();
        lever
    }

    /// What every later launch adds to lever's environment.
    pub fn set_env(&mut self, env: &[(&str, &str)]) {
        self.env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
    }

    /// Launches `binary` instead of the build cargo made for this test or bench.
    pub fn set_binary(&mut self, binary: &Path) {
        self.binary = Some(binary.to_owned());
    }

    /// `name` in lever's folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes an executable `#!/bin/sh` script `name` into lever's folder.
    pub fn script(&self, name: &str, body: &str) {
        script(self.dir.path(), name, body);
    }

    /// Starts `lever run` on the folder, with no inherited `LEVER_*` variables: only what the
    /// test sets reaches it.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "lever is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("lever.log"))
            .expect("log file");
        let binary = self.binary.as_deref();
        let mut command = Command::new(binary.unwrap_or(Path::new(env!("CARGO_BIN_EXE_lever"))));
        command
            .args(["run", "--config"])
            .arg(self.path("bot.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        clear_lever_env(&mut command);
        command
            .env("RUST_LOG", "lever=debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        self.child = Some(command.spawn().expect("start lever"));
    }

    /// Kills lever (SIGKILL, as a crash would) and starts it again on the same folder: same
    /// config, same store, its log appended to.
    pub fn crash_and_restart(&mut self) {
        self.kill();
        self.launch();
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("lever is running").id()
    }

    /// Whether lever is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("wait for lever").is_none())
    }

    /// Waits up to `within` for lever to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("wait for lever") {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits (against a hang) for lever to exit, within [`WAIT`]; kills it and fails otherwise.
    pub fn exits(&mut self) -> ExitStatus {
        match self.wait_exit(WAIT) {
            Some(status) => status,
            None => {
                self.kill();
                panic!("lever did not exit within {WAIT:?}:\n{}", self.log())
            }
        }
    }

    /// SIGTERM, and lever exits 0.
    pub fn terminate(&mut self) {
        signal(self.pid(), "TERM");
        let status = self.exits();
        assert!(status.success(), "lever exited non-zero:\n{}", self.log());
    }

    /// `kill -9`: no chance to record or say anything.
    pub fn kill9(&mut self) {
        signal(self.pid(), "KILL");
        assert!(!self.exits().success(), "SIGKILL cannot end in exit 0");
    }

    /// SIGTERM with `within` to exit, then SIGKILL (benches: a full outbox would take its
    /// whole flush time).
    pub fn stop(&mut self, within: Duration) {
        signal(self.pid(), "TERM");
        if self.wait_exit(within).is_none() {
            self.kill();
        }
    }

    /// SIGKILL, and the process reaped.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("lever.log")).unwrap_or_default()
    }

    /// Waits (against a hang) until lever's log says `what`; the log then, or a failure
    /// with it.
    pub fn wait_for_log(&self, what: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.log();
            if log.contains(what) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "lever never logged {what:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Lever {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- lever log ---\n{}", self.log());
        }
    }
}

/// Writes an executable `#!/bin/sh` script `name` with `body` into `dir`.
pub fn script(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Takes every inherited `LEVER_*` variable (any case) out of `command`'s environment.
pub fn clear_lever_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key
            .to_string_lossy()
            .to_ascii_uppercase()
            .starts_with("LEVER_")
        {
            command.env_remove(key);
        }
    }
}

/// lever in this process, on its own runtime, so a test can fill its outbox directly.
pub struct InProcess {
    pub bot: Arc<Bot>,
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: CancellationToken,
    _dir: TempDir,
}

impl InProcess {
    pub fn start(config: &str) -> InProcess {
        init_tracing();
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config::from_toml(config, "test bot.toml", dir.path().to_path_buf())
            .unwrap_or_else(|e| panic!("test config: {e}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let bot = runtime
            .block_on(async { Bot::open(Arc::new(config)) })
            .unwrap_or_else(|e| panic!("start lever: {e}"));
        let shutdown = CancellationToken::new();
        runtime.spawn(lever::app::serve::serve(bot.clone(), shutdown.clone()));
        InProcess {
            bot,
            runtime: Some(runtime),
            shutdown,
            _dir: dir,
        }
    }

    /// Asks lever to shut down (flush, QUIT) and waits for it.
    pub fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(10));
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Logs from in-process lever go to the test output (shown for failing tests); `RUST_LOG`
/// sets the level.
pub fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("lever=debug"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// Asserts that `text` is exactly `template`, where `{time}` stands for a time as lever writes
/// it (`2009-06-18 13:05:25`), `{iso}` for an RFC 3339 time (`2009-06-18T13:05:25Z`), `{dur}`
/// for a duration (`3202 ms`, `42.9 s`, `2 min 16 s`, `2 min`), `{word}` for one word, `{code}`
/// for a confirm code and `{*}` for anything. Returns what the placeholders stood for, in order.
pub fn like(text: &str, template: &str) -> Vec<String> {
    try_like(text, template).unwrap_or_else(|mismatch| panic!("{mismatch}"))
}

/// [`like`], with a mismatch as an error rather than a panic.
pub fn try_like(text: &str, template: &str) -> Result<Vec<String>, String> {
    let holes = regex::Regex::new(r"\{(time|iso|dur|word|code|\*)\}").unwrap();
    let mut pattern = String::from("^");
    let mut last = 0;
    for hole in holes.captures_iter(template) {
        let whole = hole.get(0).unwrap();
        pattern.push_str(&regex::escape(&template[last..whole.start()]));
        pattern.push_str(match &hole[1] {
            "time" => r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)",
            "iso" => r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)",
            "dur" => r"(\d+ ms|\d+\.\d s|\d+ min(?: \d+ s)?|\d+ h(?: \d+ min)?|\d+ d(?: \d+ h)?)",
            "word" => r"(\S+)",
            "code" => r"([ACDEFGHJKLMNPQRTUVWXY34679]{4})",
            _ => r"(.*)",
        });
        last = whole.end();
    }
    pattern.push_str(&regex::escape(&template[last..]));
    pattern.push('$');
    let re = regex::Regex::new(&pattern).unwrap();
    let caps = re
        .captures(text)
        .ok_or_else(|| format!("lever said:\n  {text:?}\nexpected:\n  {template:?}"))?;
    Ok(caps
        .iter()
        .skip(1)
        .map(|c| c.map_or(String::new(), |m| m.as_str().to_owned()))
        .collect())
}

/// `lever` with `args`, run in `cwd` as `USER=user` (unless `env` says otherwise), with no
/// inherited `LEVER_*` or `RUST_LOG`, and `stdin` piped in; waits for it to exit.
pub fn lever_in(
    cwd: &Path,
    args: &[&str],
    user: &str,
    env: &[(&str, &str)],
    stdin: &[u8],
) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lever"));
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .env("USER", user)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    clear_lever_env(&mut command);
    command.envs(env.iter().copied());
    let mut child = command.spawn().expect("start lever");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // Written from a thread so a lever that stops reading cannot block the test on a full pipe.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let output = child.wait_with_output().expect("wait for lever");
    writer.join().unwrap();
    output
}

/// A finished command's stdout, as text.
pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A finished command's stderr, as text.
pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
