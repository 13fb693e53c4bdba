//! The rig's HTTP/1.1 client, written by hand over a plain `TcpStream` so a test controls every
//! byte: one request per connection (`Connection: close`), the response read to EOF, chunked
//! bodies decoded. Also: starting lever with its HTTP side up.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{bot_config, free_port, Lever, WAIT};

/// A response as read off the wire.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, or a failure showing the whole response.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {self:?}"))
    }

    /// The `error` text of a JSON error response.
    pub fn error(&self) -> String {
        match self.json().get("error") {
            Some(Value::String(text)) => text.clone(),
            _ => panic!("no \"error\" text in {self:?}"),
        }
    }

    /// Asserts the status, showing the whole response otherwise; returns the body as JSON.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected status: {self:?}");
        self.json()
    }
}

/// Sends `raw` (a whole request) on a fresh connection and reads the response to EOF.
pub fn exchange(port: u16, raw: &[u8], timeout: Duration) -> Result<Reply, String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(timeout)).ok();
    stream.set_write_timeout(Some(timeout)).ok();
    stream.write_all(raw).map_err(|e| format!("write: {e}"))?;
    read_reply(&mut stream)
}

/// Reads one response (the server closes after it: every request says `Connection: close`).
pub fn read_reply(stream: &mut TcpStream) -> Result<Reply, String> {
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .map_err(|e| format!("read: {e} (after {:?})", String::from_utf8_lossy(&bytes)))?;
    parse_reply(&bytes)
}

fn parse_reply(bytes: &[u8]) -> Result<Reply, String> {
    let shown = || String::from_utf8_lossy(bytes).into_owned();
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {:?}", shown()))?;
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut body = bytes[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line in {:?}", shown()))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body).ok_or_else(|| format!("bad chunked body in {:?}", shown()))?;
    }
    Ok(Reply {
        status,
        headers,
        body: String::from_utf8(body).map_err(|e| format!("body is not UTF-8: {e}"))?,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// A request with `Content-Length` and `Connection: close`.
pub fn raw_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    raw
}

pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Reply {
    let raw = raw_request(port, method, path, headers, body);
    exchange(port, &raw, WAIT)
        .unwrap_or_else(|e| panic!("{method} {path} on port {port} failed: {e}"))
}

/// Starts lever with its HTTP side on a free port and waits until `/healthz` answers.
/// `prepare(port)` gives lever's folder, not launched yet (a config naming that port, and what
/// it needs), and whatever goes with it; a parallel test may take the port before lever binds
/// it: then lever exits, and all is prepared again on another port.
pub fn start_serving_http<T>(mut prepare: impl FnMut(u16) -> (Lever, T)) -> (Lever, u16, T) {
    let mut last = String::new();
    for _ in 0..5 {
        let http = free_port();
        let (mut lever, with) = prepare(http);
        lever.launch();
        let deadline = Instant::now() + WAIT;
        loop {
            if lever.wait_exit(Duration::from_millis(1)).is_some() {
                last = lever.log();
                break;
            }
            let probe = raw_request(http, "GET", "/healthz", &[], b"");
            if let Ok(reply) = exchange(http, &probe, Duration::from_secs(1)) {
                if reply.status == 200 && reply.body.contains(r#""status":"ok""#) {
                    return (lever, http, with);
                }
            }
            assert!(
                Instant::now() < deadline,
                "lever's /healthz did not answer within {WAIT:?}:\n{}",
                lever.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("lever would not start its HTTP side:\n{last}");
}

/// [`start_serving_http`] for the rig's `bot_config` on `irc_port` (`irc_extra` in `[irc]`)
/// with `[http]` taking `token`, then `rest`.
pub fn start_with_http(irc_port: u16, irc_extra: &str, token: &str, rest: &str) -> (Lever, u16) {
    let (lever, http, ()) = start_serving_http(|http| {
        let rest = format!("[http]\nlisten = \"127.0.0.1:{http}\"\ntoken = \"{token}\"\n{rest}");
        (Lever::prepare(&bot_config(irc_port, irc_extra, &rest)), ())
    });
    (lever, http)
}
