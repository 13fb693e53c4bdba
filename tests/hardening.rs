//! Hardening from issue 17, each through the path lever really takes: access masks against
//! sources as the IRC session parses them, signed webhooks on real HTTP, sanitised text over
//! real IRC and HTTP, bounded alert de-dup, and the outbox under a flood.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use tokio::time::Instant;

use lever::access::{Access, Role};
use lever::config::Config;
use lever::irc::state::Conn;

// ---------------------------------------------------------------------------------------------
// 1. Access masks never match across an `@` or `!` inside a part of the source
// ---------------------------------------------------------------------------------------------

/// A session past registration whose config grants admin to `admin_mask`, as lever builds it.
fn welcomed_conn(admin_mask: &str) -> (Conn, Access, Instant) {
    let text = format!(
        "[irc]\nserver = \"irc.test\"\nnickname = \"lever\"\nchannels = [\"#ops\"]\n\
         [access]\nadmin = [\"{admin_mask}\"]\n"
    );
    let cfg = Config::from_toml(&text, "test", PathBuf::from(".")).unwrap();
    let access = Access::from_config(cfg.access.as_ref()).unwrap();
    let now = Instant::now();
    let mut conn = Conn::new(Arc::new(cfg), "lever test", now);
    for line in [":s 001 lever :hi", ":s 376 lever :end"] {
        conn.handle(line, now).unwrap();
    }
    (conn, access, now)
}

#[test]
fn a_mask_does_not_match_across_an_at_or_bang_inside_the_source() {
    let (mut conn, access, now) = welcomed_conn("*!*@10.0.0.*");
    let mut is_admin = |source: &str| {
        let line = format!(":{source} PRIVMSG #ops :!deploy");
        let msg = conn
            .handle(&line, now)
            .unwrap()
            .unwrap_or_else(|| panic!("{line:?} should be a message"));
        access.allows(&msg, Role::Admin)
    };
    // The honest source still matches.
    assert!(is_admin("bob!~bob@10.0.0.5"));
    // A fake server or bridge: the host is whatever follows the last '@', and a user part
    // holding '@' or '!' cannot be trusted to mean anything.
    assert!(!is_admin("nick!evil@10.0.0.5@real.host"));
    assert!(!is_admin("nick!ev!il@10.0.0.5"));
    assert!(!is_admin("nick!x@real.host!y@10.0.0.5"));
    assert!(!is_admin("ni@10.0.0.5!x@10.0.0.6"));
}
