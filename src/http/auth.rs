//! Who may call a hook or write through the API: a bearer token, or an HMAC-SHA256 signature
//! of the body with a shared secret. Compared in constant time; the credential's name (never
//! its value) is logged.

use axum::http::{HeaderMap, StatusCode};
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::config::HttpConfig;

/// The credential a request proved it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The configured name of the token or secret ("token", "ci", "github").
    pub name: String,
}

const SIGNATURE_HEADERS: &[&str] = &["x-lever-signature", "x-hub-signature-256"];

/// Checks a request's credentials against `[http]`; the body is needed for signatures.
pub fn authenticate(
    http: Option<&HttpConfig>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Caller, ApiError> {
    check(http, headers, body, true)
}

/// For requests without a body worth signing (a DELETE): a signature of an empty body never
/// changes, so one captured request could be replayed for ever. Only a bearer token will do.
pub fn authenticate_bearer(
    http: Option<&HttpConfig>,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    check(http, headers, b"", false)
}

fn check(
    http: Option<&HttpConfig>,
    headers: &HeaderMap,
    body: &[u8],
    signatures: bool,
) -> Result<Caller, ApiError> {
    let unauthorized = |why: &str| ApiError::new(StatusCode::UNAUTHORIZED, why);
    let Some(http) = http else {
        return Err(unauthorized("no credentials are configured"));
    };
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            // The scheme is case-insensitive (RFC 9110); the token is not.
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| unauthorized("Authorization must be 'Bearer <token>'"))?;
        // Hashing first makes every comparison the same length, so timing says nothing.
        let offered = Sha256::digest(token.as_bytes());
        let mut matched = None;
        for (name, secret) in http.bearer_tokens() {
            let expected = Sha256::digest(secret.expose().as_bytes());
            if bool::from(offered.ct_eq(&expected)) && matched.is_none() {
                matched = Some(name);
            }
        }
        return matched
            .map(|name| Caller {
                name: name.to_owned(),
            })
            .ok_or_else(|| unauthorized("bad bearer token"));
    }
    for header in SIGNATURE_HEADERS {
        let Some(value) = headers.get(*header) else {
            continue;
        };
        if !signatures {
            return Err(unauthorized("this request needs 'Authorization: Bearer <token>' (a signature of an empty body could be replayed)"));
        }
        let signature = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().strip_prefix("sha256="))
            .and_then(|hex| hex::decode(hex).ok())
            .ok_or_else(|| {
                unauthorized("a signature header must be 'sha256=<hex of HMAC-SHA256 of the body>'")
            })?;
        for (name, secret) in &http.hmac_secrets {
            let mut mac =
                <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes())
                    .expect("HMAC takes a key of any length");
            mac.update(body);
            if mac.verify_slice(&signature).is_ok() {
                return Ok(Caller { name: name.clone() });
            }
        }
        return Err(unauthorized("bad signature"));
    }
    Err(unauthorized(
        "missing credentials: send 'Authorization: Bearer <token>' or 'X-Lever-Signature: sha256=<hmac>'",
    ))
}

/// The signature header value for `body` under `secret`, as a sender computes it.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use axum::http::HeaderValue;
    use std::path::PathBuf;

    fn http() -> HttpConfig {
        let text = "[irc]\nserver = \"h\"\n[http]\nlisten = \"127.0.0.1:0\"\ntoken = \"0123456789abcdef-default\"\n\
                    tokens = { ci = \"0123456789abcdef-ci\" }\nhmac_secrets = { github = \"0123456789abcdef-gh\" }\n";
        Config::from_toml(text, "t", PathBuf::from("."))
            .unwrap()
            .http
            .unwrap()
    }

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_tokens_are_known_by_name() {
        let http = http();
        let ok =
            |v: &str| authenticate(Some(&http), &headers("authorization", v), b"").map(|c| c.name);
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
    fn signatures_cover_the_body() {
        let http = http();
        let body = br#"{"user":"alice"}"#;
        let good = sign("0123456789abcdef-gh", body);
        for header in ["x-lever-signature", "x-hub-signature-256"] {
            let caller = authenticate(Some(&http), &headers(header, &good), body).unwrap();
            assert_eq!(caller.name, "github");
        }
        let tampered = authenticate(
            Some(&http),
            &headers("x-lever-signature", &good),
            br#"{"user":"mallory"}"#,
        );
        assert_eq!(tampered.unwrap_err().message, "bad signature");
        let garbage = authenticate(Some(&http), &headers("x-lever-signature", "md5=abc"), body);
        assert_eq!(garbage.unwrap_err().status, StatusCode::UNAUTHORIZED);
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
        assert!(authenticate(None, &headers("authorization", "Bearer x"), b"").is_err());
    }
}
