mod support;
use support::*;

#[test]
fn smoke_ping() {
    let server = Ngircd::start();
    let mut alice = Client::connect(server.port, "alice");
    alice.join("#ops");
    let _lever = Lever::start(&bot_config(server.port, "", ""));
    alice.expect(|l| l.verb == "JOIN" && l.from == "lever");
    alice.privmsg("#ops", "!ping");
    assert_eq!(alice.expect_privmsg_from("lever"), "pong");
}
