//! A TCP proxy a test can freeze: a network partition between lever and a server, made
//! without closing anything (no reset, no FIN; the bytes stop crossing, as through a dead
//! switch), then healed.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a frozen or idle pump looks again.
const TICK: Duration = Duration::from_millis(20);

pub struct Proxy {
    pub port: u16,
    frozen: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    /// Bumped by [`Proxy::cut`]: connections made before it end.
    cuts: Arc<AtomicU64>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards each connection to `upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let frozen = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU64::new(0));
        let (f, s, c) = (frozen.clone(), stopped.clone(), cuts.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(TICK);
                        continue;
                    }
                    Err(_) => continue,
                };
                // A connection made during a partition hangs until it heals.
                while f.load(Ordering::SeqCst) && !s.load(Ordering::SeqCst) {
                    std::thread::sleep(TICK);
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let made = c.load(Ordering::SeqCst);
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let (f, s, c) = (f.clone(), s.clone(), c.clone());
                    let cut = move || c.load(Ordering::SeqCst) != made;
                    std::thread::spawn(move || pump(from, to, (&f, &s), cut));
                }
            }
        });
        Proxy {
            port,
            frozen,
            stopped,
            cuts,
        }
    }

    /// Ends every connection made so far, both ways (new ones are made as before).
    pub fn cut(&self) {
        self.cuts.fetch_add(1, Ordering::SeqCst);
    }

    /// Stops every byte both ways, and new connections from reaching the server.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    pub fn thaw(&self) {
        self.frozen.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` while not frozen; ends when either side closes, the proxy stops, or
/// `cut()` says this connection was cut (then both sides are closed).
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    (frozen, stopped): (&AtomicBool, &AtomicBool),
    cut: impl Fn() -> bool,
) {
    from.set_read_timeout(Some(TICK)).unwrap();
    let mut buf = [0u8; 16 * 1024];
    while !stopped.load(Ordering::SeqCst) && !cut() {
        if frozen.load(Ordering::SeqCst) {
            // Unread bytes wait in the kernel's buffers, as on a wire that went quiet.
            std::thread::sleep(TICK);
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    if cut() {
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    } else {
        let _ = to.shutdown(Shutdown::Write);
    }
}
