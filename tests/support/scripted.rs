//! A scripted IRC server: one connection, driven line by line by the test the way the IRCv3
//! specifications write their examples, over plain TCP or TLS. For what the real servers here
//! cannot show: SCRAM logins (Atheme 7.2 has none) and CAP NEW/DEL (InspIRCd 3 announces
//! neither when services come and go).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::WAIT;

trait Wire: Read + Write + Send {}
impl<T: Read + Write + Send> Wire for T {}

pub struct Scripted {
    listener: TcpListener,
    pub port: u16,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Scripted {
    /// Listens on a free loopback port, plain TCP.
    pub fn start() -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the scripted server");
        let port = listener.local_addr().unwrap().port();
        Scripted {
            listener,
            port,
            tls: None,
        }
    }

    /// Listens with TLS, presenting the PEM certificate and key given.
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> Scripted {
        use rustls::pki_types::pem::PemObject;
        let chain = rustls::pki_types::CertificateDer::pem_file_iter(cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("a usable certificate");
        Scripted {
            tls: Some(Arc::new(config)),
            ..Scripted::start()
        }
    }

    /// The next client to connect (lever), within `within`.
    pub fn accept(&self, within: Duration) -> Option<Peer> {
        self.listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + within;
        let tcp = loop {
            match self.listener.accept() {
                Ok((tcp, _)) => break tcp,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(_) => return None,
            }
        };
        tcp.set_nonblocking(false).unwrap();
        tcp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let wire: Box<dyn Wire> = match &self.tls {
            None => Box::new(tcp),
            Some(config) => {
                let server = rustls::ServerConnection::new(config.clone()).unwrap();
                Box::new(
                    rustls::StreamOwned::<rustls::ServerConnection, TcpStream>::new(server, tcp),
                )
            }
        };
        Some(Peer {
            wire,
            buffer: Vec::new(),
            seen: Vec::new(),
        })
    }
}

/// lever's connection to the scripted server.
pub struct Peer {
    wire: Box<dyn Wire>,
    buffer: Vec<u8>,
    /// Every line lever sent, for failure messages.
    seen: Vec<String>,
}

impl Peer {
    /// Sends one line (CRLF added).
    pub fn send(&mut self, line: &str) {
        self.wire
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write to lever");
        self.wire.flush().ok();
    }

    /// The next line from lever, if one comes within `within`.
    pub fn line(&mut self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let raw: Vec<u8> = self.buffer.drain(..=end).collect();
                let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
                self.seen.push(line.clone());
                return Some(line);
            }
            if Instant::now() >= deadline {
                return None;
            }
            let mut chunk = [0u8; 4096];
            match self.wire.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return None,
            }
        }
    }

    /// Reads lines until one matches; fails the test, showing what lever sent, if none does.
    pub fn expect(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(line) = self.line(deadline - Instant::now()) {
                if matches(&line) {
                    return line;
                }
            }
        }
        panic!(
            "lever never sent {what}; it sent:\n{}",
            self.seen.join("\n")
        );
    }

    /// The lines lever sends within `within` that match, read to the end of it.
    pub fn collect_for(&mut self, within: Duration, matches: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut found = Vec::new();
        while Instant::now() < deadline {
            if let Some(line) = self.line(deadline - Instant::now()) {
                if matches(&line) {
                    found.push(line);
                }
            }
        }
        found
    }

    /// Registration as a server does it once lever has sent NICK and USER (and CAP END).
    pub fn welcome(&mut self, nick: &str) {
        self.send(&format!(
            ":irc.test 001 {nick} :Welcome to the test network {nick}!lever@127.0.0.1"
        ));
        self.send(&format!(
            ":irc.test 005 {nick} CASEMAPPING=rfc1459 CHANTYPES=# :are supported"
        ));
        self.send(&format!(":irc.test 422 {nick} :MOTD File is missing"));
    }
}
