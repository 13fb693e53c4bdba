//! A private PostgreSQL cluster for one test run: `initdb` in a temp folder, the server on a
//! free loopback port, each test in a database of its own. The server refuses to run as root,
//! so under root it runs as the `postgres` user (Debian's package creates it). It is started
//! from a thread that lives as long as the test process and told to die with it, so no run
//! leaves a server behind, however it ends.
//!
//! Shared by the store's unit tests (`#[path]`-included from `src/store/mod.rs`) and the
//! integration tests.

#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A running cluster.
pub struct Cluster {
    pub port: u16,
    /// Whether commits wait for the disk (benchmarks); tests run without fsync.
    durable: bool,
    dir: PathBuf,
    server: Mutex<Option<Child>>,
    databases: AtomicUsize,
    _keep: tempfile::TempDir,
}

/// The cluster every test of this process shares, started on first use.
pub fn shared() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(Cluster::start)
}

/// Where Debian keeps the server's programs (`/usr/lib/postgresql/15/bin`).
fn bin_dir() -> PathBuf {
    bin_dir_if_installed().unwrap_or_else(|| {
        panic!("PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/postgres): run scripts/setup.sh, or apt-get install postgresql")
    })
}

/// The server's programs, if the server is installed.
pub fn bin_dir_if_installed() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|versions| {
            versions
                .flatten()
                .map(|v| v.path().join("bin"))
                .filter(|bin| bin.join("postgres").exists())
                .max()
        })
}

/// Runs as the `postgres` user when we are root (the server refuses root).
fn as_server_user(command: &mut Command) {
    if nix::unistd::geteuid().is_root() {
        let user = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .expect(
                "a `postgres` user to run the server as (created by Debian's postgresql package)",
            );
        command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `command` from a thread that never ends, with SIGKILL sent to the child when this
/// process dies (the kernel ties the signal to the spawning thread, not the process).
fn spawn_tied(command: Command) -> Child {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("postgres-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    // SAFETY: between fork and exec only prctl runs.
                    unsafe {
                        command.pre_exec(|| {
                            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                                .map_err(std::io::Error::from)
                        });
                    }
                    let _ = reply.send(command.spawn());
                }
            })
            .unwrap();
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    spawner.lock().unwrap().send((command, reply)).unwrap();
    answer.recv().unwrap().expect("start postgres")
}

impl Cluster {
    /// initdb, then the server on a free port, without fsync (tests); waits until it accepts
    /// connections.
    pub fn start() -> Cluster {
        Self::start_as(false)
    }

    /// A cluster whose commits wait for the disk, as a production server's do (benchmarks).
    pub fn start_durable() -> Cluster {
        Self::start_as(true)
    }

    fn start_as(durable: bool) -> Cluster {
        let keep = tempfile::tempdir().unwrap();
        // The server's user must reach its folder.
        std::fs::set_permissions(keep.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let dir = keep.path().to_path_buf();
        let bin = bin_dir();
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args([
                "-D",
                "db",
                "-A",
                "trust",
                "-U",
                "lever",
                "--no-sync",
                "-E",
                "UTF8",
            ])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        as_server_user(&mut initdb);
        let out = initdb.output().expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Cluster {
            port: free_port(),
            durable,
            dir,
            server: Mutex::new(None),
            databases: AtomicUsize::new(0),
            _keep: keep,
        };
        cluster.start_server();
        cluster
    }

    fn start_server(&self) {
        let mut server = Command::new(bin_dir().join("postgres"));
        server
            .args(["-D", "db", "-p", &self.port.to_string(), "-k"])
            .arg(&self.dir)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args([
                "-c",
                if self.durable {
                    "fsync=on"
                } else {
                    "fsync=off"
                },
            ])
            .args(["-c", "max_connections=200"])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("server.log")).unwrap());
        as_server_user(&mut server);
        *self.server.lock().unwrap() = Some(spawn_tied(server));
        self.wait_ready();
    }

    /// Waits until the server accepts a connection to `postgres`.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ok = Command::new("psql")
                .args([&self.url("postgres"), "-qAtc", "select 1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "postgres did not start on port {}: {}",
            self.port,
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
    }

    /// The URL of database `db` (user `lever`, no password: the cluster trusts loopback).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://lever@127.0.0.1:{}/{db}", self.port)
    }

    /// A new, empty database; its URL.
    pub fn database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        let name = format!("test_{}_{n}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Runs SQL in database `db` with psql; its output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([&self.url(db), "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn server_pid(&self) -> Pid {
        let server = self.server.lock().unwrap();
        Pid::from_raw(server.as_ref().expect("server running").id() as i32)
    }

    /// Stops the server as a crash would (SIGQUIT: immediate shutdown, no checkpoint).
    pub fn stop(&self) {
        let mut server = self.server.lock().unwrap();
        if let Some(mut child) = server.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGQUIT);
            let _ = child.wait();
        }
    }

    /// Starts the server again after [`Cluster::stop`].
    pub fn restart(&self) {
        self.start_server();
    }

    /// Freezes the server (SIGSTOP on the postmaster and every backend): it holds its
    /// connections open and answers nothing.
    pub fn freeze(&self) {
        self.signal_all(Signal::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.signal_all(Signal::SIGCONT);
    }

    fn signal_all(&self, signal: Signal) {
        let postmaster = self.server_pid();
        let _ = kill(postmaster, signal);
        for pid in children_of(postmaster) {
            let _ = kill(pid, signal);
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The processes whose parent is `parent` (the server's backends).
fn children_of(parent: Pid) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let after = stat.rsplit_once(')')?.1;
                    after.split_whitespace().nth(1)?.parse::<i32>().ok()
                })
                == Some(parent.as_raw())
        })
        .map(Pid::from_raw)
        .collect()
}
