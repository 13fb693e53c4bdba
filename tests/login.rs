//! Logging in on real networks, against a scripted server ([`support::scripted`]) that speaks
//! each exchange as the specifications write it: SASL SCRAM-SHA-256 (RFC 7677; the server side
//! computed here from the password, as services do), a wrong password, a server with no
//! mechanism in common, SASL offered late (IRCv3 cap-notify: CAP NEW, CAP DEL) with
//! `irc.require_login`, a TLS server trusted by its pinned fingerprint, and IRCv3 STS (plain to
//! TLS, the policy kept across a restart). lever is its real binary. (PLAIN and NickServ
//! against InspIRCd + Atheme, and EXTERNAL with a client certificate, are in tests/inspircd.rs.)

mod support;
use support::certs;
use support::scripted::{Peer, Scripted};
use support::*;

use std::time::Duration;

use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::Digest;

const PASSWORD: &str = "correct horse battery";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn config(port: u16, irc: &str) -> String {
    format!(
        "[irc]\nserver = \"127.0.0.1\"\nport = {port}\ntls = false\nnickname = \"lever\"\n\
         channels = [\"#ops\"]\n{irc}\n"
    )
}

/// lever connected to `server`, its registration read up to USER.
fn connect(server: &Scripted, irc: &str) -> (Lever, Peer) {
    let lever = Lever::start(&config(server.port, irc));
    let mut peer = server.accept(WAIT).expect("lever connects");
    peer.expect("CAP LS 302", |l| l == "CAP LS 302");
    peer.expect("USER", |l| l.starts_with("USER "));
    (lever, peer)
}

/// The decoded payload of lever's next `AUTHENTICATE`.
fn authenticate(peer: &mut Peer) -> String {
    let line = peer.expect("AUTHENTICATE", |l| l.starts_with("AUTHENTICATE "));
    let data = &line["AUTHENTICATE ".len()..];
    if data == "+" {
        return String::new();
    }
    String::from_utf8(b64().decode(data).expect("base64")).unwrap()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The server's side of SCRAM-SHA-256 (RFC 5802 §3) for `password`: the ClientProof it expects
/// for `auth` (the AuthMessage) and its own ServerSignature.
fn server_side(password: &str, salt: &[u8], auth: &str) -> (String, String) {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2::<hmac::Hmac<sha2::Sha256>>(password.as_bytes(), salt, 4096, &mut salted)
        .unwrap();
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = sha2::Sha256::digest(&client_key);
    let signature = hmac(&stored_key, auth.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let server_key = hmac(&salted, b"Server Key");
    (
        b64().encode(proof),
        b64().encode(hmac(&server_key, auth.as_bytes())),
    )
}

/// Runs SCRAM-SHA-256 as services knowing `known` would; whether lever's proof was right.
fn scram_exchange(peer: &mut Peer, known: &str) -> bool {
    peer.send(":irc.test CAP * LS :cap-notify sasl=PLAIN,SCRAM-SHA-256,EXTERNAL");
    let request = peer.expect("CAP REQ", |l| l.starts_with("CAP REQ"));
    assert!(request.contains("sasl"), "{request}");
    peer.send(":irc.test CAP * ACK :cap-notify sasl");
    peer.expect("the strongest mechanism lever can use", |l| {
        l == "AUTHENTICATE SCRAM-SHA-256"
    });
    peer.send("AUTHENTICATE +");
    let client_first = authenticate(peer);
    let bare = client_first
        .strip_prefix("n,,")
        .expect("no channel binding");
    let nonce = bare.strip_prefix("n=lever,r=").expect("user and nonce");
    let salt = b"salt of the test";
    let server_first = format!(
        "r={nonce}3rfcNHYJY1ZVvWVs7j,s={},i=4096",
        b64().encode(salt)
    );
    peer.send(&format!("AUTHENTICATE {}", b64().encode(&server_first)));
    let client_final = authenticate(peer);
    let (without_proof, proof) = client_final.rsplit_once(",p=").expect("a proof");
    assert_eq!(without_proof, format!("c=biws,r={nonce}3rfcNHYJY1ZVvWVs7j"));
    let auth = format!("{bare},{server_first},{without_proof}");
    let (expected, signature) = server_side(known, salt, &auth);
    if proof != expected {
        return false;
    }
    peer.send(&format!(
        "AUTHENTICATE {}",
        b64().encode(format!("v={signature}"))
    ));
    assert_eq!(
        authenticate(peer),
        "",
        "lever accepts the server's signature"
    );
    true
}

#[test]
fn scram_sha_256_logs_lever_in_without_the_password_crossing_the_wire() {
    let server = Scripted::start();
    let (lever, mut peer) = connect(
        &server,
        &format!("sasl_account = \"lever\"\nsasl_password = \"{PASSWORD}\"\nrequire_login = true"),
    );
    assert!(
        scram_exchange(&mut peer, PASSWORD),
        "lever's proof was wrong"
    );
    peer.send(":irc.test 900 lever lever!lever@127.0.0.1 lever :You are now logged in as lever");
    peer.send(":irc.test 903 lever :SASL authentication successful");
    peer.expect("CAP END", |l| l == "CAP END");
    peer.welcome("lever");
    peer.expect("JOIN", |l| l == "JOIN #ops");
    let log = lever.log();
    assert!(
        log.contains("logging in with SASL mechanism=\"SCRAM-SHA-256\""),
        "{log}"
    );
    assert!(
        !log.contains(PASSWORD),
        "the password is in the log:\n{log}"
    );
}

#[test]
fn a_wrong_password_is_told_with_what_to_check_and_require_login_keeps_lever_out() {
    let server = Scripted::start();
    let (lever, mut peer) = connect(
        &server,
        "sasl_account = \"lever\"\nsasl_password = \"not the password\"\nrequire_login = true",
    );
    assert!(
        !scram_exchange(&mut peer, PASSWORD),
        "a wrong password gave the right proof"
    );
    peer.send(":irc.test 904 lever :SASL authentication failed");
    peer.expect("CAP END", |l| l == "CAP END");
    peer.welcome("lever");
    let log = lever.wait_for_log("staying off the channels");
    assert!(
        log.contains("SASL login failed: check irc.sasl_account and LEVER_IRC__SASL_PASSWORD"),
        "{log}"
    );
    let joins = peer.collect_for(Duration::from_secs(2), |l| l.starts_with("JOIN"));
    assert!(joins.is_empty(), "joined without a login: {joins:?}");
}

#[test]
fn with_no_mechanism_in_common_lever_says_so_and_joins_unidentified() {
    let server = Scripted::start();
    let (lever, mut peer) = connect(
        &server,
        &format!("sasl_account = \"lever\"\nsasl_password = \"{PASSWORD}\""),
    );
    peer.send(":irc.test CAP * LS :cap-notify sasl=ECDSA-NIST256P-CHALLENGE");
    let request = peer.expect("CAP REQ", |l| l.starts_with("CAP REQ"));
    assert!(!request.contains("sasl"), "{request}");
    peer.send(":irc.test CAP * ACK :cap-notify");
    peer.expect("CAP END", |l| l == "CAP END");
    peer.welcome("lever");
    peer.expect("JOIN", |l| l == "JOIN #ops");
    let log = lever.log();
    assert!(
        log.contains("the server offers SASL ECDSA-NIST256P-CHALLENGE and lever can do"),
        "{log}"
    );
    assert!(log.contains("no mechanism in common"), "{log}");
}

#[test]
fn sasl_offered_late_by_cap_new_logs_lever_in_and_only_then_it_joins() {
    let server = Scripted::start();
    let (lever, mut peer) = connect(
        &server,
        &format!("sasl_account = \"lever\"\nsasl_password = \"{PASSWORD}\"\nrequire_login = true"),
    );
    // Services are not linked yet: no SASL on offer.
    peer.send(":irc.test CAP * LS :cap-notify account-tag");
    peer.expect("CAP REQ", |l| l.starts_with("CAP REQ"));
    peer.send(":irc.test CAP * ACK :cap-notify account-tag");
    peer.expect("CAP END", |l| l == "CAP END");
    peer.welcome("lever");
    lever.wait_for_log("staying off the channels");
    let joins = peer.collect_for(Duration::from_secs(2), |l| l.starts_with("JOIN"));
    assert!(joins.is_empty(), "joined without a login: {joins:?}");

    // Services link (IRCv3 cap-notify): lever asks for SASL and logs in.
    peer.send(":irc.test CAP lever NEW :sasl=PLAIN");
    let request = peer.expect("CAP REQ", |l| l.starts_with("CAP REQ"));
    assert!(request.ends_with("sasl"), "{request}");
    peer.send(":irc.test CAP lever ACK :sasl");
    peer.expect("AUTHENTICATE PLAIN", |l| l == "AUTHENTICATE PLAIN");
    peer.send("AUTHENTICATE +");
    assert_eq!(authenticate(&mut peer), format!("lever\0lever\0{PASSWORD}"));
    peer.send(":irc.test 900 lever lever!lever@127.0.0.1 lever :You are now logged in as lever");
    peer.send(":irc.test 903 lever :SASL authentication successful");
    peer.expect("JOIN once logged in", |l| l == "JOIN #ops");

    // Services go away: lever hears it and stays.
    peer.send(":irc.test CAP lever DEL :sasl");
    lever.wait_for_log("the server withdrew capabilities");
}

#[test]
fn a_pinned_certificate_is_trusted_alone_and_another_is_refused_with_its_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, fingerprint) = certs::self_signed(dir.path(), "irc.private.test");
    let tls = |pin: &str| format!("tls = true\ntls_fingerprint = \"sha256:{pin}\"\n");

    // The pinned one: TLS comes up (the certificate is self-signed and names another host).
    let server = Scripted::start_tls(&cert, &key);
    let lever = Lever::start(&config(server.port, &tls(&fingerprint)).replace("tls = false\n", ""));
    let mut peer = server.accept(WAIT).expect("lever connects");
    peer.expect("NICK over TLS", |l| l == "NICK lever");
    drop(lever);

    // Another pin: lever refuses the server, naming what it presented.
    let server = Scripted::start_tls(&cert, &key);
    let other = "00".repeat(32);
    let lever = Lever::start(&config(server.port, &tls(&other)).replace("tls = false\n", ""));
    let mut peer = server.accept(WAIT).expect("lever connects");
    // Reading drives the server's side of the handshake, which lever breaks off.
    let line = peer.line(Duration::from_secs(3));
    assert_eq!(line, None, "no IRC over a refused server");
    let log = lever.wait_for_log("not the one irc.tls_fingerprint pins");
    let seen = fingerprint.replace(':', "").to_lowercase();
    assert!(log.contains(&format!("sha256:{seen}")), "{log}");
}

/// IRCv3 STS: a plain server says TLS is required on another port; lever leaves before
/// registering, comes back over TLS, keeps the policy the TLS server gives, and after a restart
/// goes straight to TLS; `duration=0` ends it.
#[test]
fn an_sts_policy_moves_lever_to_tls_and_is_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certs::ca_and_server(dir.path());
    let plain = Scripted::start();
    let secure = Scripted::start_tls(&cert, &key);
    let mut lever = Lever::start(&config(
        plain.port,
        &format!("tls_ca_file = \"{}\"", ca.display()),
    ));

    let mut first = plain.accept(WAIT).expect("lever connects in plain text");
    first.expect("CAP LS 302", |l| l == "CAP LS 302");
    first.send(&format!(
        ":irc.test CAP * LS :sts=port={},duration=300 multi-prefix",
        secure.port
    ));
    let after = first.collect_for(Duration::from_secs(1), |l| {
        l.starts_with("CAP REQ") || l == "CAP END"
    });
    assert!(
        after.is_empty(),
        "went on registering in plain text: {after:?}"
    );

    let mut tls = secure.accept(WAIT).expect("lever comes back over TLS");
    tls.expect("CAP LS 302 over TLS", |l| l == "CAP LS 302");
    tls.send(":irc.test CAP * LS :sts=duration=300");
    tls.expect("CAP END", |l| l == "CAP END");
    tls.welcome("lever");
    tls.expect("JOIN over TLS", |l| l == "JOIN #ops");
    lever.wait_for_log("keeping the server's STS policy");

    // Restarted, lever goes straight to TLS: the plain port hears nothing.
    lever.stop(WAIT);
    lever.launch();
    let mut again = secure
        .accept(WAIT)
        .expect("lever reconnects over TLS at once");
    again.expect("CAP LS 302", |l| l == "CAP LS 302");
    assert!(
        plain.accept(Duration::from_secs(1)).is_none(),
        "tried plain text despite the policy"
    );
    // The server ends the policy: after the next restart lever connects as configured.
    again.send(":irc.test CAP * LS :sts=duration=0");
    again.expect("CAP END", |l| l == "CAP END");
    std::thread::sleep(Duration::from_millis(300));
    lever.stop(WAIT);
    lever.launch();
    let mut back = plain
        .accept(WAIT)
        .expect("lever connects as configured again");
    back.expect("CAP LS 302", |l| l == "CAP LS 302");
}
