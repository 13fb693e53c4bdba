//! Levers sharing one PostgreSQL store, for the tests of the store, of leadership and of
//! takeovers: a database of this run's cluster, an IRC server with a member in #ops, and
//! levers (the real binary) named by node.

use super::postgres;
use super::*;

/// A fresh database in this run's cluster (its URL and name), an IRC server, and `nick` in
/// #ops.
pub fn setup(nick: &str) -> (String, String, Ngircd, Client) {
    let url = postgres::shared().database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let server = Ngircd::start();
    let mut client = Client::connect(server.port, nick);
    client.join("#ops");
    (url, db, server, client)
}

/// lever's config: its store at `url` with `lease`, and a `site` target whose deploy is one
/// step, `step`, running `argv` (TOML).
pub fn pg_config(irc_port: u16, url: &str, lease: &str, step: &str, argv: &str) -> String {
    bot_config(
        irc_port,
        "",
        &format!(
            "[store]\nurl = \"{url}\"\nlease = \"{lease}\"\nlock_wait = \"1s\"\n\
             [targets.site]\n[[targets.site.deploy]]\nname = \"{step}\"\nrun = {argv}\n"
        ),
    )
}

/// Whether `line` is a lever (any of its nicks) joining #ops.
pub fn lever_joined(line: &Line) -> bool {
    line.verb == "JOIN" && line.from.starts_with("lever") && line.text() == "#ops"
}

/// lever on `irc_port` with its store at `url`, `lease` and a `site` target, once it is in
/// #ops. A lever started after a crash waits for the dead one's lease to end.
pub fn lever_on(irc_port: u16, url: &str, lease: &str, client: &mut Client) -> Lever {
    let lever = Lever::start(&pg_config(irc_port, url, lease, "ship", r#"["true"]"#));
    client.expect(lever_joined);
    lever
}

pub const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// A lever named `node` on `url` with `[http]` on a free port, its HTTP side answering.
pub fn lever_with_http(irc_port: u16, url: &str, node: &str) -> (Lever, u16) {
    let (lever, http, ()) = start_serving_http(|http| {
        let config = pg_config(irc_port, url, "3s", "ship", r#"["true"]"#)
            + &format!("[http]\nlisten = \"127.0.0.1:{http}\"\ntoken = \"{TOKEN}\"\n");
        let mut lever = Lever::prepare(&config);
        lever.set_env(&[("LEVER_STORE__NODE", node)]);
        (lever, ())
    });
    (lever, http)
}

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}
