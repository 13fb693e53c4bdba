//! `[dashboard]`: who may act on the deploy page. Without it the page is read-only.
//!
//! lever does not log people in itself: a reverse proxy in front of it does (oauth2-proxy,
//! nginx with `auth_request`, a company SSO gateway) and names the signed-in user in a header.
//! That header is believed only on connections from the proxies listed here; from anywhere
//! else it is ignored, so a forged header grants nothing.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use super::Invalid;

/// `[dashboard]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {
    /// The request header the proxy names the signed-in user in: "X-Forwarded-User",
    /// "X-Auth-Request-User", "Remote-User". Rights come from `[access]` `"web:NAME"` entries.
    pub user_header: String,
    /// Addresses the header is believed from: the proxies' own, "127.0.0.1" or ranges such as
    /// "10.0.0.0/24". Required: with none, nobody could act.
    pub trusted_proxies: Vec<String>,
    /// Where people open the page, when the proxy does not pass the `Host` they used:
    /// "https://deploy.example.com". A button's form must come from this origin (or from the
    /// host the request names).
    #[serde(default)]
    pub url: Option<String>,
}

impl DashboardConfig {
    /// Whether the user header is believed from `peer`.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        self.proxies().any(|net| net.contains(&peer))
    }

    fn proxies(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.trusted_proxies
            .iter()
            .filter_map(|p| parse_proxy(p).ok())
    }

    /// The origin of `url` (`https://deploy.example.com`), if set.
    pub fn origin(&self) -> Option<&str> {
        self.url.as_deref().map(|u| {
            let rest = u.split_once("://").map_or(u, |(_, rest)| rest);
            let path = rest.find('/').map_or(u.len(), |i| u.len() - rest.len() + i);
            &u[..path]
        })
    }

    pub(super) fn validate(&self) -> Result<(), Invalid> {
        let header = self.user_header.trim();
        let token = |c: char| c.is_ascii_alphanumeric() || "-_".contains(c);
        if header.is_empty() || !header.chars().all(token) {
            return Err(Invalid::new(
                "dashboard.user_header",
                "must be a header name such as \"X-Forwarded-User\"",
            ));
        }
        if self.trusted_proxies.is_empty() {
            return Err(Invalid::new(
                "dashboard.trusted_proxies",
                "must list the address of the proxy that signs people in, e.g. [\"127.0.0.1\"]",
            ));
        }
        for (i, proxy) in self.trusted_proxies.iter().enumerate() {
            let net = parse_proxy(proxy)
                .map_err(|why| Invalid::new(format!("dashboard.trusted_proxies[{i}]"), why))?;
            if net.prefix_len() == 0 {
                return Err(Invalid::new(
                    format!("dashboard.trusted_proxies[{i}]"),
                    format!("'{proxy}' trusts every address, so anyone could name themselves; list the proxy's own address"),
                ));
            }
        }
        if let Some(url) = &self.url {
            let scheme = url.starts_with("http://") || url.starts_with("https://");
            if !scheme || url.contains(char::is_whitespace) {
                return Err(Invalid::new(
                    "dashboard.url",
                    "must be an http:// or https:// URL such as \"https://deploy.example.com\"",
                ));
            }
        }
        Ok(())
    }
}

/// "10.0.0.5" (one address) or "10.0.0.0/24".
fn parse_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("'{text}' is not an address or range such as \"127.0.0.1\" or \"10.0.0.0/24\"")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dashboard(text: &str) -> DashboardConfig {
        toml::from_str(&format!("user_header = \"X-Forwarded-User\"\n{text}")).unwrap()
    }

    #[test]
    fn the_header_is_believed_only_from_the_listed_proxies() {
        let d = dashboard("trusted_proxies = [\"127.0.0.1\", \"10.1.0.0/16\"]");
        assert_eq!(d.validate(), Ok(()));
        assert!(d.trusts("127.0.0.1".parse().unwrap()));
        assert!(d.trusts("::ffff:127.0.0.1".parse().unwrap()));
        assert!(d.trusts("10.1.200.3".parse().unwrap()));
        assert!(!d.trusts("127.0.0.2".parse().unwrap()));
        assert!(!d.trusts("10.2.0.1".parse().unwrap()));
        assert!(!d.trusts("::1".parse().unwrap()));
    }

    #[test]
    fn bad_settings_name_their_key() {
        let key = |d: DashboardConfig| d.validate().unwrap_err().key;
        assert_eq!(
            key(dashboard("trusted_proxies = []")),
            "dashboard.trusted_proxies"
        );
        assert_eq!(
            key(dashboard(
                "trusted_proxies = [\"127.0.0.1\", \"proxy.internal\"]"
            )),
            "dashboard.trusted_proxies[1]"
        );
        assert_eq!(
            key(dashboard("trusted_proxies = [\"0.0.0.0/0\"]")),
            "dashboard.trusted_proxies[0]"
        );
        let bad_header: DashboardConfig =
            toml::from_str("user_header = \"X User\"\ntrusted_proxies = [\"127.0.0.1\"]").unwrap();
        assert_eq!(key(bad_header), "dashboard.user_header");
        assert_eq!(
            key(dashboard(
                "trusted_proxies = [\"127.0.0.1\"]\nurl = \"deploy.example\""
            )),
            "dashboard.url"
        );
    }

    #[test]
    fn the_origin_is_the_url_without_its_path() {
        let d = dashboard(
            "trusted_proxies = [\"127.0.0.1\"]\nurl = \"https://deploy.example.com/lever/\"",
        );
        assert_eq!(d.origin(), Some("https://deploy.example.com"));
        let bare = dashboard("trusted_proxies = [\"127.0.0.1\"]\nurl = \"http://10.0.0.1:8080\"");
        assert_eq!(bare.origin(), Some("http://10.0.0.1:8080"));
    }
}
