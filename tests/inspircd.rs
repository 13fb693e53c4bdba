//! lever against a real InspIRCd 3 (flood limits, IRCv3) linked to real Atheme services
//! (accounts, SASL, NickServ). Each test runs its own servers on free loopback ports.

mod support;
use support::inspircd::*;
use support::*;

use lever::chat::outbox::Priority;

/// Lines pushed into lever's outbox in the flood tests.
const FLOOD_LINES: usize = 15;
/// More than the server's threshold (10) even after any penalty has drained.
const CONTROL_LINES: usize = 20;

/// A watcher on the forgiving port, in `channel`, sees `nick` join it.
fn watcher_sees_join(watcher: &mut Client, nick: &str, channel: &str) {
    watcher.expect(|l| {
        l.verb == "JOIN"
            && l.from.eq_ignore_ascii_case(nick)
            && l.params
                .first()
                .is_some_and(|c| c.eq_ignore_ascii_case(channel))
    });
}

/// The next line from lever that is either a PRIVMSG or its QUIT.
fn next_privmsg_or_quit(watcher: &mut Client) -> Line {
    watcher.expect(|l| l.is_privmsg_from("lever") || (l.verb == "QUIT" && l.from == "lever"))
}

/// A watcher in #ops on `server`'s forgiving port, and the lever `start` gives, once the
/// watcher has seen it join.
fn watched<L>(server: InspIRCd, start: impl FnOnce(&InspIRCd) -> L) -> (InspIRCd, Client, L) {
    let mut watcher = Client::connect(server.port, "watcher");
    watcher.join("#ops");
    let lever = start(&server);
    watcher_sees_join(&mut watcher, "lever", "#ops");
    (server, watcher, lever)
}

/// lever's config for #ops on `port`, with `irc_lines` in its `[irc]` section.
fn ops_config(port: u16, irc_lines: &str) -> String {
    lever_config(port, "lever", &["#ops"], irc_lines, "")
}

/// InspIRCd and a watcher, and lever in-process on the kill-on-flood port.
fn lever_on_the_flood_port(irc_lines: &str) -> (InspIRCd, Client, InProcess) {
    watched(InspIRCd::start(), |server| {
        InProcess::start(&ops_config(server.flood_port, irc_lines))
    })
}

/// Pushes `announcement 00` .. `announcement <n - 1>` into lever's outbox.
fn announce(lever: &InProcess, n: usize) {
    for i in 0..n {
        lever
            .bot
            .outbox
            .say("#ops", &format!("announcement {i:02}"), Priority::Announce);
    }
}

#[test]
fn default_throttle_keeps_lever_connected_where_a_flood_gets_it_killed() {
    // lever with its default throttle (burst 4, one line per second).
    let (_server, mut watcher, mut lever) = lever_on_the_flood_port("");
    assert_eq!(lever.bot.config.irc.burst, 4);
    assert_eq!(
        lever.bot.config.irc.line_interval,
        std::time::Duration::from_secs(1)
    );
    announce(&lever, FLOOD_LINES);
    for i in 0..FLOOD_LINES {
        let line = next_privmsg_or_quit(&mut watcher);
        assert_eq!(
            line.verb, "PRIVMSG",
            "lever was disconnected after {i} of {FLOOD_LINES} lines: {}",
            line.raw
        );
        assert_eq!(line.text(), format!("announcement {i:02}"));
    }
    // Still connected and serving: a command round-trips.
    watcher.privmsg("#ops", "!ping");
    let line = next_privmsg_or_quit(&mut watcher);
    assert_eq!(line.verb, "PRIVMSG", "lever was disconnected: {}", line.raw);
    assert_eq!(line.text(), "pong");
    lever.stop();
}

#[test]
fn without_throttle_the_same_flood_gets_lever_killed() {
    let (_server, mut watcher, mut lever) = lever_on_the_flood_port("line_interval = \"0s\"");
    announce(&lever, CONTROL_LINES);
    let mut relayed = 0;
    let quit = loop {
        let line = next_privmsg_or_quit(&mut watcher);
        if line.verb == "QUIT" {
            break line;
        }
        assert_eq!(line.text(), format!("announcement {relayed:02}"));
        relayed += 1;
    };
    assert_eq!(quit.text(), "Excess Flood", "{}", quit.raw);
    assert!(relayed < CONTROL_LINES, "all lines relayed before the kill");
    lever.stop();
}

/// InspIRCd with Atheme, where the account `lever` (password `leverpass1`) is registered; a
/// watcher; and lever.
fn lever_with_account(irc_lines: &str) -> (InspIRCd, Client, Lever) {
    let server = InspIRCd::with_atheme();
    register_account(server.port, "lever", "leverpass1");
    watched(server, |server| {
        Lever::start(&ops_config(server.port, irc_lines))
    })
}

#[test]
fn sasl_plain_logs_lever_in_during_cap_negotiation() {
    let (_server, mut watcher, lever) =
        lever_with_account("sasl_account = \"lever\"\nsasl_password = \"leverpass1\"");
    assert_eq!(
        whois_account(&mut watcher, "lever").as_deref(),
        Some("lever")
    );
    let log = lever.log();
    assert!(log.contains("logged in to services"), "{log}");
    assert!(!log.contains("SASL login failed"), "{log}");
}

#[test]
fn sasl_with_a_wrong_password_still_joins_unauthenticated_and_logs_why() {
    let (_server, mut watcher, lever) =
        lever_with_account("sasl_account = \"lever\"\nsasl_password = \"wrong-password\"");
    assert_eq!(whois_account(&mut watcher, "lever"), None);
    let log = lever.log();
    assert!(log.contains("SASL login failed"), "{log}");
    assert!(
        !log.contains("wrong-password"),
        "password leaked to the log:\n{log}"
    );
}

#[test]
fn nickserv_identify_is_the_fallback_without_sasl() {
    let (_server, mut watcher, lever) = lever_with_account("nickserv_password = \"leverpass1\"");
    assert_eq!(
        whois_account(&mut watcher, "lever").as_deref(),
        Some("lever")
    );
    let log = lever.log();
    assert!(
        !log.contains("leverpass1"),
        "password leaked to the log:\n{log}"
    );
}

/// A ghost holds lever's nick (an old connection not yet timed out, a lever that lost its
/// lease and sleeps): lever comes in on an alternate, logs in, has NickServ GHOST the holder,
/// and takes its nick.
#[test]
fn a_ghost_holding_levers_nick_is_ghosted_through_services_and_the_nick_taken_back() {
    let server = InspIRCd::with_atheme();
    register_account(server.port, "lever", "leverpass1");
    let mut ghost = Client::connect(server.port, "lever");
    ghost.join("#ops");
    let mut watcher = Client::connect(server.port, "watcher");
    watcher.join("#ops");
    let lever = Lever::start(&ops_config(
        server.port,
        "sasl_account = \"lever\"\nsasl_password = \"leverpass1\"",
    ));
    watcher_sees_join(&mut watcher, "lever_", "#ops");
    let killed = watcher.expect(|l| l.verb == "QUIT" && l.from == "lever");
    assert!(killed.text().contains("GHOST"), "{}", killed.raw);
    let taken = watcher.expect(|l| l.verb == "NICK" && l.from == "lever_");
    assert_eq!(taken.text(), "lever");
    let log = lever.log();
    assert!(
        log.contains("asking services to free lever's nick"),
        "{log}"
    );
    assert!(
        !log.contains("leverpass1"),
        "password leaked to the log:\n{log}"
    );
}

/// `+R` (InspIRCd's services_account module, "reginvite"): only users logged in to an account
/// may join. lever must be identified before it sends JOIN, or the server refuses it (477) and
/// lever only retries a minute later, long after these tests give up.
#[test]
fn lever_joins_a_registered_only_channel_only_after_identifying() {
    let server = InspIRCd::with_atheme();
    register_account(server.port, "lever", "leverpass1");
    register_account(server.port, "leverns", "leverpass2");
    let mut op = Client::connect(server.port, "chanop");
    op.join("#reg");
    op.send("MODE #reg +R");
    op.expect(|l| l.verb == "MODE" && l.params.get(1).is_some_and(|m| m == "+R"));
    // The mode is enforced: an unidentified client is refused.
    let mut stranger = Client::connect(server.port, "stranger");
    stranger.send("JOIN #reg");
    let refused = stranger.expect(|l| l.verb == "477" || l.verb == "JOIN");
    assert_eq!(refused.verb, "477", "{}", refused.raw);

    // With SASL: logged in before registration completes.
    let _sasl = Lever::start(&lever_config(
        server.port,
        "lever",
        &["#reg"],
        "sasl_account = \"lever\"\nsasl_password = \"leverpass1\"",
        "",
    ));
    watcher_sees_join(&mut op, "lever", "#reg");
    // With NickServ IDENTIFY: lever holds its JOIN until services confirm.
    let ns = Lever::start(&lever_config(
        server.port,
        "leverns",
        &["#reg"],
        "nickserv_password = \"leverpass2\"",
        "",
    ));
    watcher_sees_join(&mut op, "leverns", "#reg");
    let log = ns.log();
    assert!(!log.contains("cannot join"), "{log}");
}

/// The reply lever gives `client` to `!whoami` in #ops.
fn whoami(client: &mut Client) -> String {
    client.privmsg("#ops", "!whoami");
    let nick = client.nick.clone();
    let reply = client.expect(|l| {
        l.is_privmsg_from("lever") && l.text().starts_with(&format!("{nick}: you are "))
    });
    reply.text().to_owned()
}

/// Renames `client` and waits for the server to confirm.
fn rename(client: &mut Client, to: &str) {
    client.send(&format!("NICK {to}"));
    client.expect(|l| l.verb == "NICK" && l.text().eq_ignore_ascii_case(to));
    client.nick = to.to_owned();
}

/// The core security property, over `account-tag`: rights granted to `account:alice` go with
/// alice's login, never with the nick `alice`.
#[test]
fn rights_follow_the_account_not_the_nick() {
    rights_follow_the_account(support::inspircd::Options {
        atheme: true,
        account_tag: true,
        tls: false,
    });
}

/// The same, on a server without `account-tag`: lever tracks accounts from `extended-join`,
/// `account-notify` and WHOX (alice is already in the channel when lever joins).
#[test]
fn rights_follow_the_account_not_the_nick_without_account_tag() {
    rights_follow_the_account(support::inspircd::Options {
        atheme: true,
        account_tag: false,
        tls: false,
    });
}

fn rights_follow_the_account(options: support::inspircd::Options) {
    let server = InspIRCd::start_with(options);
    register_account(server.port, "alice", "alicepass1");
    register_account(server.port, "bob", "bobpass12");
    let mut alice = connect_with(server.port, "alice", &[], Some(("alice", "alicepass1")));
    alice.join("#ops");
    let lever = Lever::start(&lever_config(
        server.port,
        "lever",
        &["#ops"],
        "",
        "[access]\nadmin = [\"account:alice\"]",
    ));
    watcher_sees_join(&mut alice, "lever", "#ops");
    // Without account-tag, lever learns who is already in #ops from its WHO right after the
    // join; a command that arrives before the reply is (safely) treated as not logged in. A
    // round trip orders things: lever's answer leaves after its WHO, so once alice sees it the
    // server has already queued the WHO replies to lever ahead of anything alice sends next.
    alice.privmsg("#ops", "!ping");
    assert_eq!(alice.expect_privmsg_from("lever"), "pong");
    let log = lever.log();
    let caps = log
        .lines()
        .find(|l| l.contains("capabilities enabled"))
        .unwrap_or_else(|| panic!("lever logged no capabilities:\n{log}"));
    assert!(
        caps.contains("extended-join") && caps.contains("account-notify"),
        "{caps}"
    );
    assert_eq!(caps.contains("account-tag"), options.account_tag, "{caps}");

    let reply = whoami(&mut alice);
    assert!(reply.contains(", logged in as alice;"), "{reply}");
    assert!(
        reply.ends_with("; roles: stage, deploy, hold, metrics, alerts, flags, admin"),
        "{reply}"
    );

    // alice steps away; a client that is not logged in takes her nick.
    rename(&mut alice, "alice_away");
    let mut mallory = Client::connect(server.port, "mallory");
    mallory.join("#ops");
    rename(&mut mallory, "alice");
    let reply = whoami(&mut mallory);
    assert!(
        reply.ends_with(", not logged in to services; roles: none"),
        "{reply}"
    );

    // Someone logged in, but as bob, under the nick alice: bob's rights (none), not alice's.
    rename(&mut mallory, "mallory");
    let mut bob = connect_with(server.port, "bob", &[], Some(("bob", "bobpass12")));
    bob.join("#ops");
    rename(&mut bob, "alice");
    let reply = whoami(&mut bob);
    assert!(
        reply.ends_with(", logged in as bob; roles: none"),
        "{reply}"
    );

    // The real alice still has her rights under another nick.
    let reply = whoami(&mut alice);
    assert!(
        reply.contains(
            "logged in as alice; roles: stage, deploy, hold, metrics, alerts, flags, admin"
        ),
        "{reply}"
    );

    // She logs out: her rights end with the login (account-notify's `ACCOUNT *` without
    // account-tag). 901 (logged out) comes from the server once it has applied the logout, so
    // lever has been told before anything alice says next.
    alice.privmsg("NickServ", "LOGOUT");
    alice.expect(|l| l.verb == "901");
    let reply = whoami(&mut alice);
    assert!(
        reply.ends_with(", not logged in to services; roles: none"),
        "{reply}"
    );
}

/// CertFP: lever's client certificate, added to its account with NickServ CERT ADD, logs it in
/// with SASL EXTERNAL over TLS (the server's certificate checked against the rig's CA), with
/// no password anywhere. A certificate services do not know is refused with what to do.
#[test]
fn sasl_external_logs_lever_in_with_its_client_certificate() {
    let server = InspIRCd::start_with(support::inspircd::Options {
        atheme: true,
        tls: true,
        ..Default::default()
    });
    register_account(server.port, "lever", "leverpass1");
    let (cert, key, fingerprint) = server.client_certificate("lever");
    // lever's owner, identified, adds the certificate's fingerprint to the account.
    let mut owner = Client::connect(server.port, "owner");
    owner.privmsg("NickServ", "IDENTIFY lever leverpass1");
    owner.expect(|l| l.verb == "NOTICE" && l.from == "NickServ" && l.text().contains("identified"));
    owner.privmsg("NickServ", &format!("CERT ADD {fingerprint}"));
    owner.expect(|l| {
        l.verb == "NOTICE" && l.from == "NickServ" && l.text().contains("Added fingerprint")
    });

    let tls = |cert: &std::path::Path, key: &std::path::Path| {
        format!(
            "tls_ca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\nrequire_login = true",
            server.ca_file().display(),
            cert.display(),
            key.display()
        )
    };
    let config = lever_config(server.tls_port, "lever", &["#ops"], &tls(&cert, &key), "")
        .replace("tls = false", "tls = true");
    let mut watcher = Client::connect(server.port, "watcher");
    watcher.join("#ops");
    let lever = Lever::start(&config);
    watcher_sees_join(&mut watcher, "lever", "#ops");
    assert_eq!(
        whois_account(&mut watcher, "lever").as_deref(),
        Some("lever")
    );
    let log = lever.log();
    assert!(
        log.contains("logging in with SASL mechanism=\"EXTERNAL\""),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "presenting the client certificate sha256={fingerprint}"
        )),
        "{log}"
    );
    drop(lever);

    // Another certificate: services do not know it; lever says what to do and stays out.
    let (cert, key, _) = server.client_certificate("stranger");
    let config = lever_config(server.tls_port, "lever", &["#ops"], &tls(&cert, &key), "")
        .replace("tls = false", "tls = true");
    let lever = Lever::start(&config);
    let log = lever.wait_for_log("staying off the channels");
    assert!(
        log.contains("services did not accept the client certificate"),
        "{log}"
    );
    assert!(log.contains("CERT ADD"), "{log}");
}
