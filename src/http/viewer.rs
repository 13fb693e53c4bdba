//! Who is looking at the deploy page: the person a trusted proxy signed in, or nobody.
//!
//! lever believes the `[dashboard] user_header` only on a connection from one of the
//! `trusted_proxies`; the same header from any other address is ignored (and logged), so
//! nobody can name themselves. A name is one word of at most 64 visible characters (a login or
//! an e-mail address); anything else is refused, never cut to fit.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::chat::message::Identity;
use crate::config::DashboardConfig;

/// The longest user name believed from the proxy.
const MAX_NAME: usize = 64;

/// The address a request came from (set on every connection by `super::serve`; absent when
/// the router is driven without a socket, which then identifies nobody).
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| *addr),
        ))
    }
}

/// The person the request is from, as the trusted proxy names them; `None` without a
/// `[dashboard]`, from an untrusted address, or without the header.
pub fn identify(
    config: Option<&DashboardConfig>,
    peer: &Peer,
    headers: &HeaderMap,
) -> Option<Identity> {
    let config = config?;
    let value = headers.get(config.user_header.as_str())?;
    let addr = peer.0?;
    if !config.trusts(addr.ip()) {
        tracing::warn!(
            from = %addr.ip(),
            header = %config.user_header,
            "a user header from an address not in [dashboard] trusted_proxies was ignored"
        );
        return None;
    }
    let name = value.to_str().ok().map(str::trim).filter(|n| is_name(n));
    if name.is_none() {
        tracing::warn!(
            header = %config.user_header,
            "the proxy's user header is not one word of visible characters; nobody is signed in"
        );
    }
    name.map(Identity::web)
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_NAME
        && name.chars().all(|c| c.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DashboardConfig {
        toml::from_str("user_header = \"X-Forwarded-User\"\ntrusted_proxies = [\"127.0.0.1\"]")
            .unwrap()
    }

    fn from(addr: &str, user: Option<&str>) -> Option<Identity> {
        let mut headers = HeaderMap::new();
        if let Some(user) = user {
            headers.insert("x-forwarded-user", user.parse().unwrap());
        }
        identify(
            Some(&config()),
            &Peer(Some(addr.parse().unwrap())),
            &headers,
        )
    }

    #[test]
    fn only_a_trusted_proxy_names_the_viewer() {
        let alice = from("127.0.0.1:5000", Some("alice")).unwrap();
        assert!(alice.is_web());
        assert_eq!(alice.nick, "alice");
        assert_eq!(
            from("127.0.0.1:5000", Some("a.b@example.com"))
                .unwrap()
                .nick,
            "a.b@example.com"
        );
        assert_eq!(from("127.0.0.2:5000", Some("alice")), None);
        assert_eq!(from("127.0.0.1:5000", None), None);
        assert_eq!(from("127.0.0.1:5000", Some("two words")), None);
        assert_eq!(from("127.0.0.1:5000", Some("")), None);
        assert_eq!(from("127.0.0.1:5000", Some(&"a".repeat(65))), None);
        let headers: HeaderMap = [(
            "x-forwarded-user".parse().unwrap(),
            "alice".parse().unwrap(),
        )]
        .into_iter()
        .collect();
        assert_eq!(
            identify(None, &Peer(Some("127.0.0.1:1".parse().unwrap())), &headers),
            None
        );
        assert_eq!(identify(Some(&config()), &Peer(None), &headers), None);
    }
}
