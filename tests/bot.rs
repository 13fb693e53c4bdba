//! lever's real binary against a real ngIRCd, spoken to the way people in a channel would.

mod support;
use support::*;

use std::time::Duration;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A server, a client named `nick` in #ops, and lever (started with `extra_irc` in `[irc]` and
/// `rest` after it), once the client has seen lever join #ops.
fn setup(nick: &str, extra_irc: &str, rest: &str) -> (Ngircd, Client, Lever) {
    let server = Ngircd::start();
    let mut client = Client::connect(server.port, nick);
    client.join("#ops");
    let lever = Lever::start(&bot_config(server.port, extra_irc, rest));
    client.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");
    (server, client, lever)
}

/// Whether `line` is something lever said (PRIVMSG or NOTICE) as `nick`.
fn said_by(line: &Line, nick: &str) -> bool {
    (line.verb == "PRIVMSG" || line.verb == "NOTICE") && line.from.eq_ignore_ascii_case(nick)
}

/// Sends `text` to #ops and returns lever's next line (PRIVMSG or NOTICE, anywhere).
fn ask(client: &mut Client, text: &str) -> Line {
    client.privmsg("#ops", text);
    client.expect(|l| said_by(l, "lever"))
}

/// Asserts that `line` is a PRIVMSG to #ops with exactly `text`.
fn assert_channel_reply(line: &Line, text: &str) {
    assert_eq!(line.verb, "PRIVMSG", "{}", line.raw);
    assert_eq!(line.params[0], "#ops", "{}", line.raw);
    assert_eq!(line.text(), text, "{}", line.raw);
}

#[test]
fn ping_by_prefix_by_nick_and_in_private() {
    let (_server, mut pia, _lever) = setup("pia", "", "");
    assert_channel_reply(&ask(&mut pia, "!ping"), "pong");
    assert_channel_reply(&ask(&mut pia, "lever: ping"), "pong");
    assert_channel_reply(&ask(&mut pia, "lever, ping"), "pong");
    pia.privmsg("lever", "ping");
    let reply = pia.expect(|l| said_by(l, "lever"));
    assert_eq!(reply.verb, "PRIVMSG", "{}", reply.raw);
    assert_eq!(
        reply.params[0], "pia",
        "private replies go to the asker: {}",
        reply.raw
    );
    assert_eq!(reply.text(), "pong");
}

#[test]
fn help_lists_explains_and_admits_what_it_does_not_know() {
    let (_server, mut hana, _lever) = setup("hana", "", "");
    // Everyone may do everything without [access]: every built-in command, in COMMANDS' order.
    let names: Vec<&str> = lever::commands::COMMANDS.iter().map(|s| s.name).collect();
    assert!(names.len() > 20 && names.contains(&"deploy"), "{names:?}");
    assert_channel_reply(
        &ask(&mut hana, "!help"),
        &format!(
            "commands you can use: {}; !help <command> explains one",
            names.join(", ")
        ),
    );
    assert_channel_reply(
        &ask(&mut hana, "!help ping"),
        "!ping — Checks that lever is alive; it answers pong. Example: !ping",
    );
    assert_channel_reply(
        &ask(&mut hana, "!help nosuch"),
        "hana: no command 'nosuch'; !help lists them",
    );
}

#[test]
fn unknown_prefixed_words_are_ignored_but_addressed_ones_get_a_suggestion() {
    let (_server, mut uma, _lever) = setup("uma", "", "");
    uma.privmsg("#ops", "!nosuchcmd");
    // Whatever lever says next must be the answer to this ping: nothing came for !nosuchcmd.
    assert_channel_reply(&ask(&mut uma, "!ping"), "pong");
    assert_channel_reply(
        &ask(&mut uma, "lever: pnig"),
        "uma: unknown command 'pnig' (did you mean !ping?); try !help",
    );
}

#[test]
fn ctcp_version_is_answered_in_private_only() {
    let (_server, mut cleo, _lever) = setup("cleo", "", "");
    cleo.privmsg("#ops", "\x01VERSION\x01");
    // The next thing lever says anywhere is the pong: the channel CTCP got no answer.
    assert_channel_reply(&ask(&mut cleo, "!ping"), "pong");
    cleo.privmsg("lever", "\x01VERSION\x01");
    let answer = cleo.expect(|l| said_by(l, "lever"));
    assert_eq!(answer.verb, "NOTICE", "{}", answer.raw);
    assert_eq!(answer.params[0], "cleo", "{}", answer.raw);
    assert_eq!(answer.text(), format!("\x01VERSION lever {VERSION}\x01"));
}

#[test]
fn whoami_without_access_section_grants_every_role() {
    let (_server, mut wren, _lever) = setup("wren", "", "");
    assert_channel_reply(
        &ask(&mut wren, "!whoami"),
        "wren: you are wren!~wren@127.0.0.1, not logged in to services; \
         roles: stage, deploy, hold, metrics, alerts, flags, admin \
         (no [access] section: everyone holds every role)",
    );
}

#[test]
fn whoami_reports_exactly_the_roles_a_mask_grants() {
    let (_server, mut dora, _lever) = setup("dora", "", "[access]\ndeploy = [\"*!*@127.0.0.1\"]\n");
    assert_channel_reply(
        &ask(&mut dora, "!whoami"),
        "dora: you are dora!~dora@127.0.0.1, not logged in to services; roles: deploy",
    );
}

#[test]
fn an_account_rule_never_matches_a_bare_nick() {
    // ngIRCd has no services: the client named alice is not logged in to any account.
    let (_server, mut alice, _lever) =
        setup("alice", "", "[access]\nadmin = [\"account:alice\"]\n");
    assert_channel_reply(
        &ask(&mut alice, "!whoami"),
        "alice: you are alice!~alice@127.0.0.1, not logged in to services; roles: none",
    );
}

#[test]
fn version_names_the_release_and_uptime() {
    let (_server, mut vic, _lever) = setup("vic", "", "");
    let reply = ask(&mut vic, "!version");
    assert_eq!(reply.verb, "PRIVMSG");
    assert_eq!(reply.params[0], "#ops");
    let pattern = regex::Regex::new(&format!(
        r"^lever {}, up [\d.]+ (ms|s|min \d+ s|h \d+ min|d \d+ h)$",
        regex::escape(VERSION)
    ))
    .unwrap();
    assert!(pattern.is_match(reply.text()), "{:?}", reply.text());
}

/// The reason in a relayed QUIT. ngIRCd relays a client's reason in double quotes
/// (`QUIT :"bye"`) so that it cannot pass for a server message; one such pair is removed.
fn quit_reason(quit: &Line) -> &str {
    let text = quit.text();
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

/// SIGTERM makes lever QUIT with `reason` and exit 0.
fn assert_sigterm_quits_with(nick: &str, extra_irc: &str, reason: &str) {
    let (_server, mut client, mut lever) = setup(nick, extra_irc, "");
    // Make sure lever is fully serving before the signal.
    assert_channel_reply(&ask(&mut client, "!ping"), "pong");
    signal(lever.pid(), "TERM");
    let quit = client.expect(|l| l.verb == "QUIT" && l.from == "lever");
    assert_eq!(quit_reason(&quit), reason, "{}", quit.raw);
    let status = lever
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("lever did not exit after SIGTERM:\n{}", lever.log()));
    assert!(status.success(), "exit status {status:?}:\n{}", lever.log());
}

#[test]
fn sigterm_quits_with_the_default_message_and_exits_0() {
    assert_sigterm_quits_with("tess", "", "lever shutting down");
}

#[test]
fn sigterm_quits_with_a_configured_message() {
    assert_sigterm_quits_with(
        "quinn",
        "quit_message = \"off to lunch, back soon\"",
        "off to lunch, back soon",
    );
}

#[test]
fn nick_in_use_takes_an_alternate_then_regains_it_when_freed() {
    let server = Ngircd::start();
    let mut holder = Client::connect(server.port, "lever");
    holder.join("#ops");
    let mut nora = Client::connect(server.port, "nora");
    nora.join("#ops");
    let _lever = Lever::start(&bot_config(server.port, "", ""));
    nora.expect(|l| l.verb == "JOIN" && l.from == "lever_" && l.text() == "#ops");
    // Addressed by the nick it has now.
    nora.privmsg("#ops", "lever_: ping");
    let reply = nora.expect(|l| said_by(l, "lever_"));
    assert_channel_reply(&reply, "pong");
    holder.send("QUIT :done here");
    let nick = nora.expect(|l| l.verb == "NICK" && l.from == "lever_");
    assert_eq!(nick.text(), "lever", "{}", nick.raw);
    assert!(nick.raw.starts_with(":lever_!"), "{}", nick.raw);
    assert_channel_reply(&ask(&mut nora, "!ping"), "pong");
}

#[test]
fn the_environment_overrides_the_config_file() {
    let server = Ngircd::start();
    let mut evan = Client::connect(server.port, "evan");
    evan.join("#ops");
    let port = server.port.to_string();
    // Port 1 in the file: only the environment can bring lever to this server.
    let mut lever = Lever::start_with_env(
        &bot_config(1, "", ""),
        &[("LEVER_IRC__PORT", port.as_str())],
    );
    evan.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");
    assert_channel_reply(&ask(&mut evan, "!ping"), "pong");
    lever.kill();
}

/// A client that sends `PASS` first (the rig's [`Client::connect`] sends none), for a server
/// with a password.
fn pass_client(port: u16, password: &str, nick: &str) -> Client {
    let mut client = Client::open(port, nick);
    client.send(&format!("PASS {password}"));
    client.send_registration();
    client.expect(|l| l.verb == "001");
    client
}

#[test]
fn a_password_from_the_environment_is_sent_but_never_logged() {
    // ngIRCd (PAM off) lets in only a PASS equal to its own password, so it gets this one:
    // lever joining proves the secret from the environment went out on the wire.
    let server = Ngircd::start_with("MaxPenaltyTime = 0\n[Global]\n\tPassword = hunter2-secret");
    let mut sam = pass_client(server.port, "hunter2-secret", "sam");
    sam.send("JOIN #ops");
    sam.expect(|l| l.verb == "366");
    let mut lever = Lever::start_with_env(
        &bot_config(server.port, "", ""),
        &[
            ("LEVER_IRC__PASSWORD", "hunter2-secret"),
            ("RUST_LOG", "trace"),
        ],
    );
    sam.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");
    sam.send("PRIVMSG #ops :!ping");
    assert_channel_reply(&sam.expect(|l| said_by(l, "lever")), "pong");
    lever.kill();
    let log = lever.log();
    // The log really is at trace level, showing the wire: PASS went out, redacted.
    assert!(
        log.contains("PASS <redacted>"),
        "no redacted PASS in the log:\n{log}"
    );
    assert!(
        !log.contains("hunter2-secret"),
        "the password is in the log:\n{log}"
    );
}

#[test]
fn a_number_like_password_from_the_environment_arrives_unchanged() {
    // Environment values that look like numbers must not be turned into numbers: the leading
    // zeros of this password would be lost, and ngIRCd would refuse lever.
    let secret = "000123456789";
    let server = Ngircd::start_with(&format!(
        "MaxPenaltyTime = 0\n[Global]\n\tPassword = {secret}"
    ));
    let mut tom = pass_client(server.port, secret, "tom");
    tom.send("JOIN #ops");
    tom.expect(|l| l.verb == "366");
    let mut lever = Lever::start_with_env(
        &bot_config(server.port, "", ""),
        &[("LEVER_IRC__PASSWORD", secret)],
    );
    tom.expect(|l| l.verb == "JOIN" && l.from == "lever" && l.text() == "#ops");
    lever.kill();
}

#[test]
fn once_joined_lever_gives_back_its_start_up_code_and_still_answers() {
    let (_server, mut alice, lever) = setup("alice", "", "");
    let log = lever.wait_for_log("start-up code given back to the kernel");
    let line = log
        .lines()
        .find(|l| l.contains("start-up code given back"))
        .expect("the line");
    let given_back: u64 = line
        .split("kb=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("kb=N in {line:?}"));
    // What lever's executable has resident now from the file (read-only mappings, less their
    // relocated, private part), as it was given back.
    let exe = std::fs::read_link(format!("/proc/{}/exe", lever.pid())).expect("exe");
    let resident_code = || -> u64 {
        let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", lever.pid())).unwrap();
        let mut total = 0;
        let mut counting = false;
        for l in smaps.lines() {
            let mut words = l.split_whitespace();
            let first = words.next().unwrap_or("");
            if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                let perms = words.next().unwrap_or("");
                counting = !perms.contains('w') && l.ends_with(exe.to_str().unwrap());
            } else if counting && (first == "Rss:" || first == "Anonymous:") {
                let kb = words
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                total = if first == "Rss:" {
                    total + kb
                } else {
                    total - kb
                };
            }
        }
        total
    };
    assert!(given_back > 1024, "{line}");
    // What runs after start-up comes back (in a debug build, much of it); what only start-up
    // ran does not.
    let now = resident_code();
    assert!(
        now < given_back,
        "gave back {given_back} kB, {now} kB resident again"
    );
    // The code comes back as it is needed.
    assert_channel_reply(&ask(&mut alice, "!ping"), "pong");
    assert_channel_reply(
        &ask(&mut alice, "!whoami"),
        "alice: you are alice!~alice@127.0.0.1, not logged in to services; \
         roles: stage, deploy, hold, metrics, alerts, flags, admin \
         (no [access] section: everyone holds every role)",
    );
}
