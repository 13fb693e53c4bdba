//! The channel, as a raw client in #ops sees it: on its own thread, so it reads while a storm
//! is sent and answers the server's PINGs; what lever said, when, and `!ping` on demand.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::rig::support::Client;

struct Heard {
    at: Instant,
    /// PRIVMSG text, or `<JOIN>` / `<QUIT>` / `<PART>` for lever's membership changes.
    text: String,
}

pub struct Observer {
    heard: Arc<Mutex<Vec<Heard>>>,
    pings: mpsc::Sender<mpsc::Sender<Instant>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Observer {
    pub fn start(mut client: Client) -> Observer {
        let heard: Arc<Mutex<Vec<Heard>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (pings, requests) = mpsc::channel::<mpsc::Sender<Instant>>();
        let thread = {
            let heard = heard.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    while let Ok(reply) = requests.try_recv() {
                        client.privmsg("#ops", "!ping");
                        let _ = reply.send(Instant::now());
                    }
                    let Some(line) = client.next_line(Duration::from_millis(20)) else {
                        continue;
                    };
                    let at = Instant::now();
                    if !line.from.eq_ignore_ascii_case("lever") {
                        continue;
                    }
                    let text = match line.verb.as_str() {
                        "PRIVMSG" | "NOTICE" => line.text().to_owned(),
                        "JOIN" | "QUIT" | "PART" => format!("<{}>", line.verb),
                        _ => continue,
                    };
                    heard.lock().unwrap().push(Heard { at, text });
                }
            })
        };
        Observer {
            heard,
            pings,
            stop,
            thread: Some(thread),
        }
    }

    /// Lines lever said at or after `since`: (when, text).
    pub fn since(&self, since: Instant) -> Vec<(Instant, String)> {
        self.heard
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.at >= since)
            .map(|h| (h.at, h.text.clone()))
            .collect()
    }

    /// Waits up to `within` for a line from lever after `since` matching `matches`.
    pub fn wait_for(
        &self,
        since: Instant,
        within: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<Instant> {
        let deadline = Instant::now() + within;
        loop {
            if let Some((at, _)) = self.since(since).into_iter().find(|(_, t)| matches(t)) {
                return Some(at);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `!ping` in #ops; ms until lever's `pong` (None if none within 15 s).
    pub fn ping(&self) -> Option<f64> {
        let (tx, rx) = mpsc::channel();
        self.pings.send(tx).expect("observer thread");
        let sent = rx.recv().expect("observer thread");
        self.wait_for(sent, Duration::from_secs(15), |t| t == "pong")
            .map(|at| (at - sent).as_secs_f64() * 1e3)
    }

    pub fn wait_join(&self, since: Instant) {
        self.wait_for(since, Duration::from_secs(15), |t| t == "<JOIN>")
            .expect("lever's JOIN in #ops");
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn is_summary(text: &str) -> bool {
    text.starts_with("… held back ")
}

pub fn is_alert_line(text: &str) -> bool {
    text != "pong" && !text.starts_with('<') && !is_summary(text)
}

/// "… held back 380 alert lines …" → 380.
pub fn held_back_in(text: &str) -> Option<u64> {
    text.strip_prefix("… held back ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
