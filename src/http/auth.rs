//! Who may call a hook or write through the API: a bearer token, or an HMAC-SHA256 signature
//! with a shared secret. Compared in constant time; the credential's name (never its value) is
//! logged.
//!
//! A signature alone could be replayed by whoever captured the request, so each scheme carries
//! something fresh. lever's own: `X-Lever-Timestamp: <unix seconds>`, signed with the body as
//! `"<timestamp>.<body>"` (as Stripe and Slack do), accepted only within
//! `[http] signature_window` of lever's clock. GitHub's `X-Hub-Signature-256` has no timestamp,
//! so it needs an `X-GitHub-Delivery` id. Either way a signed request is remembered for the
//! window and accepted once.

use std::collections::{HashSet, VecDeque};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, StatusCode};
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::chat::text::truncate_chars;
use crate::config::{FlagsConfig, HttpConfig};

/// The credential a request proved it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The configured name of the token or secret ("token", "ci", "github").
    pub name: String,
}

/// lever's signature header; it covers `"<X-Lever-Timestamp>.<body>"`.
const LEVER_SIGNATURE: &str = "x-lever-signature";
const LEVER_TIMESTAMP: &str = "x-lever-timestamp";
/// GitHub's signature header; it covers the body alone.
const HUB_SIGNATURE: &str = "x-hub-signature-256";
const HUB_DELIVERY: &str = "x-github-delivery";

/// Most signed requests remembered at once; past it the oldest are forgotten first. Only
/// requests with a valid signature are remembered, so only a holder of a secret can fill it.
pub const REMEMBERED_REQUESTS: usize = 10_000;

/// Signed requests already accepted, each remembered for the signature window so that a
/// replay of it is refused.
#[derive(Debug)]
pub struct Accepted {
    keys: HashSet<String>,
    /// Oldest first: when each key was accepted, in unix seconds.
    order: VecDeque<(i64, String)>,
    cap: usize,
}

impl Accepted {
    pub fn new(cap: usize) -> Self {
        Self {
            keys: HashSet::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    /// How many requests are remembered.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Remembers `keys` as accepted at `now`, unless one of them already was within the last
    /// `keep_for` seconds (then that key is returned and nothing is remembered). One call, one
    /// lock: two copies of a request racing in cannot both pass.
    fn first_time<'k>(
        &mut self,
        keys: &'k [String],
        now: i64,
        keep_for: i64,
    ) -> Result<(), &'k str> {
        while let Some((at, key)) = self.order.front() {
            if now - at <= keep_for {
                break;
            }
            self.keys.remove(key);
            self.order.pop_front();
        }
        if let Some(seen) = keys.iter().find(|k| self.keys.contains(*k)) {
            return Err(seen);
        }
        for key in keys {
            if self.keys.len() >= self.cap {
                if let Some((_, oldest)) = self.order.pop_front() {
                    self.keys.remove(&oldest);
                }
            }
            self.keys.insert(key.clone());
            self.order.push_back((now, key.clone()));
        }
        Ok(())
    }
}

/// One memory per process: a replay is a replay whichever listener it reaches.
static ACCEPTED: LazyLock<Mutex<Accepted>> =
    LazyLock::new(|| Mutex::new(Accepted::new(REMEMBERED_REQUESTS)));

/// The current time in unix seconds, as `X-Lever-Timestamp` carries it.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Checks a request's credentials against `[http]`; the body is needed for signatures.
pub fn authenticate(
    http: Option<&HttpConfig>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Caller, ApiError> {
    check(http, headers, body, true, &ACCEPTED, unix_now())
}

/// For requests without a body worth signing (a DELETE): only a bearer token will do, so the
/// rules stay those of a token whatever a signature scheme would allow.
pub fn authenticate_bearer(
    http: Option<&HttpConfig>,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    check(http, headers, b"", false, &ACCEPTED, unix_now())
}

/// A credential that may read flags: `[flags] tokens` only read; `[http]` tokens may write too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    pub name: String,
    pub may_write: bool,
}

/// Checks a flag read's credential: `Authorization: Bearer <token>` or `X-API-Key: <token>`
/// (OFREP's two schemes), against `[flags] tokens` and `[http]` tokens.
pub fn authenticate_reader(
    http: Option<&HttpConfig>,
    flags: &FlagsConfig,
    headers: &HeaderMap,
) -> Result<Reader, ApiError> {
    let token = match (
        headers.get(axum::http::header::AUTHORIZATION),
        headers.get("x-api-key"),
    ) {
        (Some(value), _) => value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| unauthorized("Authorization must be 'Bearer <token>'"))?,
        (None, Some(value)) => value
            .to_str()
            .map(str::trim)
            .map_err(|_| unauthorized("X-API-Key must be a token"))?,
        (None, None) => {
            return Err(unauthorized(
                "missing credentials: send 'Authorization: Bearer <token>' or 'X-API-Key: <token>' with a [flags] or [http] token",
            ))
        }
    };
    let readers = flags
        .tokens
        .iter()
        .map(|(name, t)| (name.as_str(), t, false));
    let writers = http
        .into_iter()
        .flat_map(|h| h.bearer_tokens())
        .map(|(name, t)| (name, t, true));
    match_token(token, readers.chain(writers))
        .map(|(name, may_write)| Reader {
            name: name.to_owned(),
            may_write,
        })
        .ok_or_else(|| unauthorized("bad token"))
}

/// Whether `headers` carry one of `[flags] tokens`, which may only read (a write with one is
/// forbidden, not unauthenticated).
pub fn is_read_only_token(flags: &FlagsConfig, headers: &HeaderMap) -> bool {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, token)| token.trim());
    token.is_some_and(|token| {
        match_token(
            token,
            flags.tokens.iter().map(|(n, t)| (n.as_str(), t, false)),
        )
        .is_some()
    })
}

/// The name (and flag) of the token `offered` matches, compared in constant time.
fn match_token<'a>(
    offered: &str,
    tokens: impl Iterator<Item = (&'a str, &'a crate::config::Secret, bool)>,
) -> Option<(&'a str, bool)> {
    // Hashing first makes every comparison the same length, so timing says nothing.
    let offered = Sha256::digest(offered.as_bytes());
    let mut matched = None;
    for (name, secret, flag) in tokens {
        let expected = Sha256::digest(secret.expose().as_bytes());
        if bool::from(offered.ct_eq(&expected)) && matched.is_none() {
            matched = Some((name, flag));
        }
    }
    matched
}

fn unauthorized(why: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, why)
}

fn check(
    http: Option<&HttpConfig>,
    headers: &HeaderMap,
    body: &[u8],
    signatures: bool,
    accepted: &Mutex<Accepted>,
    now: i64,
) -> Result<Caller, ApiError> {
    let Some(http) = http else {
        return Err(unauthorized("no credentials are configured"));
    };
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        return bearer(http, value);
    }
    let scheme = if headers.contains_key(LEVER_SIGNATURE) {
        LEVER_SIGNATURE
    } else if headers.contains_key(HUB_SIGNATURE) {
        HUB_SIGNATURE
    } else {
        return Err(unauthorized(
            "missing credentials: send 'Authorization: Bearer <token>', or \
             'X-Lever-Timestamp: <unix seconds>' with \
             'X-Lever-Signature: sha256=<hex HMAC-SHA256 of \"<timestamp>.<body>\">'",
        ));
    };
    if !signatures {
        return Err(unauthorized("this request needs 'Authorization: Bearer <token>' (a signature of an empty body could be replayed)"));
    }
    let window = http.signature_window;
    let window_secs = window.as_secs() as i64;
    // A timestamp up to a window ahead stays valid until a window past it: remember that long.
    let keep_for = 2 * window_secs;
    let window_text = humantime::format_duration(window);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if scheme == LEVER_SIGNATURE {
        let signature = signature_bytes(header(LEVER_SIGNATURE)).ok_or_else(|| {
            unauthorized(
                "X-Lever-Signature must be 'sha256=<hex HMAC-SHA256 of \"<timestamp>.<body>\">', \
                 the timestamp being X-Lever-Timestamp's",
            )
        })?;
        let Some(stamp) = header(LEVER_TIMESTAMP) else {
            return Err(unauthorized(
                "X-Lever-Signature needs 'X-Lever-Timestamp: <unix seconds>', and the signature \
                 must cover \"<timestamp>.<body>\": a signature of the body alone could be replayed",
            ));
        };
        let sent_at = parse_timestamp(stamp).ok_or_else(|| {
            unauthorized(format!(
                "X-Lever-Timestamp must be unix seconds (e.g. 1700000000), not '{}'",
                truncate_chars(stamp, 32)
            ))
        })?;
        let mut signed = Vec::with_capacity(stamp.len() + 1 + body.len());
        signed.extend_from_slice(stamp.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(body);
        let caller = verify(http, &signature, &signed).ok_or_else(|| {
            unauthorized(
                "bad signature: X-Lever-Signature must be sha256=<hex HMAC-SHA256 of \
                 \"<X-Lever-Timestamp>.<body>\"> under one of [http] hmac_secrets",
            )
        })?;
        let skew = now - sent_at;
        if skew.abs() > window_secs {
            let (amount, side) = if skew > 0 {
                (skew, "behind")
            } else {
                (-skew, "ahead of")
            };
            return Err(unauthorized(format!(
                "X-Lever-Timestamp is {amount} s {side} lever's clock, outside the \
                 {window_text} window: stamp each request with the time it is sent \
                 (and check the sender's clock)"
            )));
        }
        let keys = [format!("signature:{}", hex::encode(&signature))];
        first_time(accepted, &keys, now, keep_for).map_err(|_| {
            unauthorized(
                "this signed request was already accepted (a replay): send each request with \
                 a new X-Lever-Timestamp and its own signature",
            )
        })?;
        return Ok(caller);
    }
    let signature = signature_bytes(header(HUB_SIGNATURE)).ok_or_else(|| {
        unauthorized("X-Hub-Signature-256 must be 'sha256=<hex HMAC-SHA256 of the body>'")
    })?;
    let caller = verify(http, &signature, body).ok_or_else(|| {
        unauthorized(
            "bad signature: X-Hub-Signature-256 must be sha256=<hex HMAC-SHA256 of the body> \
             under one of [http] hmac_secrets",
        )
    })?;
    let delivery = header(HUB_DELIVERY).filter(|id| !id.is_empty());
    let Some(delivery) = delivery.filter(|id| id.len() <= 200) else {
        return Err(unauthorized(
            "X-Hub-Signature-256 needs 'X-GitHub-Delivery: <an id unique to the request, at most \
             200 characters>' (GitHub sends one with every delivery) so that a replay can be \
             told apart; or sign with X-Lever-Signature and X-Lever-Timestamp",
        ));
    };
    // The delivery header is not signed: the signature is remembered too, so a captured body
    // resent under a made-up id is still a replay.
    let keys = [
        format!("delivery:{delivery}"),
        format!("signature:{}", hex::encode(&signature)),
    ];
    match first_time(accepted, &keys, now, keep_for) {
        Ok(()) => Ok(caller),
        Err(0) => Err(unauthorized(format!(
            "delivery '{}' was already accepted (a replay): X-GitHub-Delivery must be new for \
             each request",
            truncate_chars(delivery, 64)
        ))),
        Err(_) => Err(unauthorized(format!(
            "this signed body was already accepted within the last {window_text} (a replay \
             under a new X-GitHub-Delivery): a body is accepted once; to resend one, sign it \
             with X-Lever-Signature and a new X-Lever-Timestamp"
        ))),
    }
}

/// Which of `keys` was seen before, by index, if any; else they are remembered.
fn first_time(
    accepted: &Mutex<Accepted>,
    keys: &[String],
    now: i64,
    keep_for: i64,
) -> Result<(), usize> {
    let mut accepted = accepted.lock().unwrap_or_else(PoisonError::into_inner);
    accepted
        .first_time(keys, now, keep_for)
        .map_err(|seen| keys.iter().position(|k| k == seen).unwrap_or(0))
}

fn bearer(http: &HttpConfig, value: &axum::http::HeaderValue) -> Result<Caller, ApiError> {
    let token = value
        .to_str()
        .ok()
        // The scheme is case-insensitive (RFC 9110); the token is not.
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| unauthorized("Authorization must be 'Bearer <token>'"))?;
    match_token(token, http.bearer_tokens().map(|(name, t)| (name, t, true)))
        .map(|(name, _)| Caller {
            name: name.to_owned(),
        })
        .ok_or_else(|| unauthorized("bad bearer token"))
}

/// The bytes of a `sha256=<hex>` header value.
fn signature_bytes(value: Option<&str>) -> Option<Vec<u8>> {
    value
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|hex| hex::decode(hex).ok())
}

/// Unix seconds written as plain digits (signed as sent, so no sign or spaces to normalise).
fn parse_timestamp(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The secret `signature` was made with over `signed`, by name.
fn verify(http: &HttpConfig, signature: &[u8], signed: &[u8]) -> Option<Caller> {
    http.hmac_secrets.iter().find_map(|(name, secret)| {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(signed);
        mac.verify_slice(signature)
            .is_ok()
            .then(|| Caller { name: name.clone() })
    })
}

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac =
        <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The `X-Lever-Signature` value for `body` sent with `X-Lever-Timestamp: <timestamp>`, as a
/// sender computes it.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    hmac_hex(secret, &[timestamp.to_string().as_bytes(), b".", body])
}

/// The `X-Hub-Signature-256` value for `body`, as GitHub computes it.
pub fn sign_body(secret: &str, body: &[u8]) -> String {
    hmac_hex(secret, &[body])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use axum::http::HeaderValue;
    use std::path::PathBuf;

    const SECRET: &str = "0123456789abcdef-gh";
    const NOW: i64 = 1_700_000_000;

    fn http() -> HttpConfig {
        let text = "[irc]\nserver = \"h\"\n[http]\nlisten = \"127.0.0.1:0\"\ntoken = \"0123456789abcdef-default\"\n\
                    tokens = { ci = \"0123456789abcdef-ci\" }\nhmac_secrets = { github = \"0123456789abcdef-gh\" }\n";
        Config::from_toml(text, "t", PathBuf::from("."))
            .unwrap()
            .http
            .unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    /// Checks with a memory of its own, at `NOW`.
    fn at(
        http: &HttpConfig,
        accepted: &Mutex<Accepted>,
        h: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<String, String> {
        check(Some(http), h, body, true, accepted, now)
            .map(|c| c.name)
            .map_err(|e| {
                assert_eq!(e.status, StatusCode::UNAUTHORIZED);
                e.message
            })
    }

    fn lever_signed(stamp: i64, body: &[u8]) -> HeaderMap {
        headers(&[
            ("x-lever-timestamp", &stamp.to_string()),
            ("x-lever-signature", &sign(SECRET, stamp, body)),
        ])
    }

    #[test]
    fn bearer_tokens_are_known_by_name() {
        let http = http();
        let ok = |v: &str| {
            authenticate(Some(&http), &headers(&[("authorization", v)]), b"").map(|c| c.name)
        };
        assert_eq!(ok("Bearer 0123456789abcdef-default").unwrap(), "token");
        assert_eq!(ok("Bearer 0123456789abcdef-ci").unwrap(), "ci");
        assert_eq!(
            ok("Bearer nope").unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            ok("Basic abc").unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(ok("BEARER 0123456789abcdef-ci").unwrap(), "ci");
    }

    #[test]
    fn lever_signatures_cover_the_timestamp_and_the_body() {
        let (http, mem) = (http(), Mutex::new(Accepted::new(100)));
        let body = br#"{"user":"alice"}"#;
        assert_eq!(
            at(&http, &mem, &lever_signed(NOW, body), body, NOW).unwrap(),
            "github"
        );
        let tampered = at(
            &http,
            &mem,
            &lever_signed(NOW, body),
            br#"{"user":"mallory"}"#,
            NOW,
        );
        assert!(tampered.unwrap_err().starts_with("bad signature"));
        // The signature of one timestamp under another.
        let mut moved = lever_signed(NOW, body);
        moved.insert("x-lever-timestamp", HeaderValue::from(NOW + 1));
        assert!(at(&http, &mem, &moved, body, NOW)
            .unwrap_err()
            .starts_with("bad signature"));
        let garbage = at(
            &http,
            &mem,
            &headers(&[("x-lever-signature", "md5=abc")]),
            body,
            NOW,
        );
        assert!(garbage
            .unwrap_err()
            .starts_with("X-Lever-Signature must be"));
    }

    #[test]
    fn lever_signatures_are_accepted_once_within_the_window() {
        let (http, mem) = (http(), Mutex::new(Accepted::new(100)));
        let body = b"{}";
        let edge = NOW - 300;
        assert!(at(&http, &mem, &lever_signed(edge, body), body, NOW).is_ok());
        let replay = at(&http, &mem, &lever_signed(edge, body), body, NOW).unwrap_err();
        assert!(replay.contains("already accepted"), "{replay}");
        // Stamped a whole window ahead, it is still refused when the clock catches up.
        let early = lever_signed(NOW + 300, body);
        assert!(at(&http, &mem, &early, body, NOW).is_ok());
        let caught_up = at(&http, &mem, &early, body, NOW + 301).unwrap_err();
        assert!(caught_up.contains("already accepted"), "{caught_up}");
        let stale = at(&http, &mem, &lever_signed(NOW - 301, body), body, NOW).unwrap_err();
        assert_eq!(
            stale,
            "X-Lever-Timestamp is 301 s behind lever's clock, outside the 5m window: stamp each \
             request with the time it is sent (and check the sender's clock)"
        );
        let ahead = at(&http, &mem, &lever_signed(NOW + 301, body), body, NOW).unwrap_err();
        assert!(ahead.contains("301 s ahead of lever's clock"), "{ahead}");
        let bare = headers(&[("x-lever-signature", &sign_body(SECRET, body))]);
        let missing = at(&http, &mem, &bare, body, NOW).unwrap_err();
        assert!(missing.contains("needs 'X-Lever-Timestamp"), "{missing}");
        for bad in ["-5", "1e9", "soon", "99999999999999"] {
            let mut h = lever_signed(NOW, body);
            h.insert("x-lever-timestamp", HeaderValue::from_str(bad).unwrap());
            let err = at(&http, &mem, &h, body, NOW).unwrap_err();
            assert!(err.contains("must be unix seconds"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_window_is_configurable_and_must_be_sane() {
        let config = |window: &str| {
            let text = format!(
                "[irc]\nserver = \"h\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
                 hmac_secrets = {{ github = \"{SECRET}\" }}\nsignature_window = \"{window}\"\n"
            );
            Config::from_toml(&text, "t", PathBuf::from("."))
        };
        let http = config("1m").unwrap().http.unwrap();
        let mem = Mutex::new(Accepted::new(100));
        let stale = at(&http, &mem, &lever_signed(NOW - 61, b""), b"", NOW).unwrap_err();
        assert!(stale.contains("outside the 1m window"), "{stale}");
        assert!(at(&http, &mem, &lever_signed(NOW - 60, b""), b"", NOW).is_ok());
        let zero = config("0s").unwrap_err().to_string();
        assert!(zero.contains("http.signature_window"), "{zero}");
    }

    #[test]
    fn github_signatures_need_a_new_delivery_and_a_new_body() {
        let (http, mem) = (http(), Mutex::new(Accepted::new(100)));
        let hub = |delivery: &str, body: &[u8]| {
            let sig = sign_body(SECRET, body);
            let mut pairs = vec![("x-hub-signature-256", sig.as_str())];
            if !delivery.is_empty() {
                pairs.push(("x-github-delivery", delivery));
            }
            headers(&pairs)
        };
        assert!(at(&http, &mem, &hub("d1", b"1"), b"1", NOW).is_ok());
        let again = at(&http, &mem, &hub("d1", b"2"), b"2", NOW).unwrap_err();
        assert!(
            again.starts_with("delivery 'd1' was already accepted"),
            "{again}"
        );
        let same_body = at(&http, &mem, &hub("d2", b"1"), b"1", NOW).unwrap_err();
        assert!(
            same_body.starts_with("this signed body was already accepted"),
            "{same_body}"
        );
        let none = at(&http, &mem, &hub("", b"3"), b"3", NOW).unwrap_err();
        assert!(none.contains("needs 'X-GitHub-Delivery"), "{none}");
        // Two windows on, both are forgotten.
        assert!(at(&http, &mem, &hub("d1", b"2"), b"2", NOW + 599).is_err());
        assert!(at(&http, &mem, &hub("d1", b"1"), b"1", NOW + 601).is_ok());
    }

    #[test]
    fn the_memory_of_accepted_requests_is_capped_oldest_first() {
        let mut mem = Accepted::new(3);
        let key = |i: usize| vec![format!("k{i}")];
        for i in 0..10 {
            assert!(mem.first_time(&key(i), NOW, 300).is_ok());
            assert!(mem.len() <= 3);
        }
        assert!(mem.first_time(&key(9), NOW, 300).is_err());
        assert!(
            mem.first_time(&key(0), NOW, 300).is_ok(),
            "the oldest went first"
        );
        // Expiry empties it.
        assert!(mem.first_time(&key(20), NOW + 1000, 300).is_ok());
        assert_eq!(mem.len(), 1);
    }

    #[test]
    fn no_credentials_no_entry() {
        let http = http();
        let err = authenticate(Some(&http), &HeaderMap::new(), b"").unwrap_err();
        assert!(
            err.message.starts_with("missing credentials"),
            "{}",
            err.message
        );
        assert!(authenticate(None, &headers(&[("authorization", "Bearer x")]), b"").is_err());
        let signed = lever_signed(unix_now(), b"");
        let delete = authenticate_bearer(Some(&http), &signed).unwrap_err();
        assert!(
            delete.message.contains("needs 'Authorization: Bearer"),
            "{}",
            delete.message
        );
    }
}
