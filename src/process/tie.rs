//! Starting a child that dies with lever.
//!
//! A `kill -9` of lever must not leave a deploy step changing production with nobody watching.
//! Each child is started with `PR_SET_PDEATHSIG = SIGKILL`, so the kernel kills it the moment
//! lever is gone. The kernel's "parent" for that is the *thread* that started the child, not
//! the process, and the async runtime's threads come and go (a blocking section hands its
//! thread over): so every child is started from one thread that lives as long as lever does.
//! What the child started itself is not covered; [`super::leftovers`] finds that at the next
//! start.

use std::io;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use nix::sys::signal::Signal;
use tokio::process::{Child, Command};

type Job = Box<dyn FnOnce() + Send>;

/// The thread children are started from; `None` if it could not be started.
static SPAWNER: OnceLock<Option<Mutex<mpsc::Sender<Job>>>> = OnceLock::new();

fn spawner() -> Option<&'static Mutex<mpsc::Sender<Job>>> {
    SPAWNER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let started = std::thread::Builder::new()
                .name("lever-spawner".into())
                .spawn(move || {
                    for job in rx {
                        job();
                    }
                });
            match started {
                Ok(_) => Some(Mutex::new(tx)),
                Err(e) => {
                    tracing::warn!("cannot start the thread that starts steps ({e}); a step may then outlive a killed lever until the next start");
                    None
                }
            }
        })
        .as_ref()
}

/// Starts `command` so that it dies with lever: the kernel sends it SIGKILL when lever exits,
/// however it exits. Must be called inside a tokio runtime.
pub async fn spawn_tied(mut command: Command) -> io::Result<Child> {
    let lever = std::process::id();
    // SAFETY: the closure runs between fork and exec and calls only prctl and getppid, both
    // async-signal-safe, and builds its error without allocating.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
            // lever died between the fork and the prctl: the signal will never come.
            if nix::unistd::getppid().as_raw() as u32 != lever {
                return Err(io::Error::from_raw_os_error(libc_esrch()));
            }
            Ok(())
        });
    }
    let Some(spawner) = spawner() else {
        return command.spawn();
    };
    let runtime = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // The child is reaped by the caller's runtime.
        let _entered = runtime.enter();
        let spawned = command.spawn();
        // The command holds the caller's copies of pipe ends: they must close now, not when
        // the caller drops its handle.
        drop(command);
        let _ = tx.send(spawned);
    });
    let sent = spawner.lock().unwrap_or_else(|p| p.into_inner()).send(job);
    if sent.is_err() {
        return Err(io::Error::other("the thread that starts steps has stopped"));
    }
    rx.await
        .unwrap_or_else(|_| Err(io::Error::other("the thread that starts steps has stopped")))
}

fn libc_esrch() -> i32 {
    nix::errno::Errno::ESRCH as i32
}
