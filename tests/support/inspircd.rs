//! A private InspIRCd 3 for one test, optionally linked to Atheme services (real accounts,
//! SASL, NickServ), on free loopback ports in a temp folder; killed on drop. The configs follow
//! the verified recipes in `/work/shared/testdata/RIG.md`.
//!
//! Also: client helpers that speak CAP and SASL (the rig's [`Client::connect`] registers with
//! NICK/USER only), NickServ registration, WHOIS account lookups, and a `bot.toml` builder
//! that leaves lever's throttle at its defaults.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use tempfile::TempDir;

use super::{free_port, wait_for_port, Client, Line, WAIT};

/// Packaged example config Atheme's is derived from.
const ATHEME_EXAMPLE: &str = "/usr/share/doc/atheme-services/examples/atheme.conf.example";
/// The line Atheme logs once its burst with the ircd is complete.
const ATHEME_SYNCED: &str = "finished synching with uplink";
const LINK_PASSWORD: &str = "rigLinkPass";

/// How the server is set up.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Link Atheme services (accounts, NickServ, SASL).
    pub atheme: bool,
    /// Load `ircv3_accounttag` (offer `account-tag`). Without it, lever must track accounts
    /// from `extended-join`, `account-notify` and WHOX.
    pub account_tag: bool,
    /// A TLS port too (GnuTLS, its certificate signed by the rig's own CA, `ca_file()`), that
    /// asks clients for a certificate and tells services its fingerprint (CertFP).
    pub tls: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            atheme: false,
            account_tag: true,
            tls: false,
        }
    }
}

/// A running InspIRCd (and Atheme, if asked for).
pub struct InspIRCd {
    dir: TempDir,
    /// Client port with fake lag: floods are slowed down, not killed.
    pub port: u16,
    /// Client port with `fakelag="no"`, threshold 10, commandrate 1000: a client that floods
    /// is disconnected with `Excess Flood`.
    pub flood_port: u16,
    /// The server-link port Atheme connects to.
    pub link_port: u16,
    /// The TLS client port, with [`Options::tls`] (else 0).
    pub tls_port: u16,
    ircd: Option<Child>,
    atheme: Option<Child>,
}

impl InspIRCd {
    /// InspIRCd alone: IRCv3 caps, flood limits, no services.
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    /// InspIRCd with Atheme linked and synced.
    pub fn with_atheme() -> Self {
        Self::start_with(Options {
            atheme: true,
            ..Options::default()
        })
    }

    pub fn start_with(options: Options) -> Self {
        let inspircd = binary(
            &["/usr/sbin/inspircd", "/usr/bin/inspircd"],
            "apt-get install -y --no-install-recommends inspircd",
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        for sub in ["data", "logs", "run", "atheme"] {
            std::fs::create_dir_all(d.join(sub)).expect("create rig folders");
        }
        // A port found free may be taken by a parallel test's server before this one binds it;
        // then something else answers there. Each server's MOTD names its folder, so the rig
        // checks it reached its own, and tries other ports if not.
        let marker = format!("lever test rig (inspircd) {}", d.display());
        std::fs::write(d.join("inspircd.motd"), format!("{marker}\n")).expect("motd");
        if options.tls {
            super::certs::ca_and_server(d);
        }
        let mut server = Self {
            port: 0,
            flood_port: 0,
            link_port: 0,
            tls_port: 0,
            ircd: None,
            atheme: None,
            dir,
        };
        for attempt in 1..=5 {
            let (port, flood_port, link_port) = distinct_ports();
            (server.port, server.flood_port, server.link_port) = (port, flood_port, link_port);
            server.tls_port = if options.tls { free_port() } else { 0 };
            std::fs::write(
                server.path("inspircd.conf"),
                inspircd_conf(
                    server.dir.path(),
                    port,
                    flood_port,
                    link_port,
                    options.account_tag,
                    server.tls_port,
                ),
            )
            .expect("write inspircd.conf");
            let log = std::fs::File::create(server.path("inspircd.out")).expect("log file");
            let child = Command::new(&inspircd)
                .arg(format!(
                    "--config={}",
                    server.path("inspircd.conf").display()
                ))
                .args(["--nofork", "--runasroot"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start inspircd");
            server.ircd = Some(child);
            let listening = [port, flood_port, link_port]
                .iter()
                .all(|p| wait_for_port(*p, WAIT))
                && (server.tls_port == 0 || wait_for_port(server.tls_port, WAIT));
            if listening && answers_as(port, &marker) && answers_as(flood_port, &marker) {
                break;
            }
            assert!(
                attempt < 5,
                "inspircd did not come up on ports of its own:\n{}",
                server.log()
            );
            if let Some(mut child) = server.ircd.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if options.atheme {
            server.start_atheme();
        }
        server
    }

    /// The CA that signed the TLS port's certificate (for `irc.tls_ca_file`).
    pub fn ca_file(&self) -> PathBuf {
        self.path("ca.pem")
    }

    /// A client certificate `name.pem` / `name.key` in the rig's folder, and its SHA-256
    /// fingerprint as the server reports it (CertFP: lower-case hex of the DER).
    pub fn client_certificate(&self, name: &str) -> (PathBuf, PathBuf, String) {
        let (cert, key, printed) = super::certs::self_signed(self.dir.path(), name);
        (cert, key, printed.replace(':', "").to_lowercase())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn start_atheme(&mut self) {
        let atheme = binary(
            &["/usr/bin/atheme-services", "/usr/sbin/atheme-services"],
            "apt-get install -y --no-install-recommends atheme-services",
        );
        let conf = atheme_conf(&self.path("atheme"), self.link_port);
        std::fs::write(self.path("atheme/atheme.conf"), conf).expect("write atheme.conf");
        let out = std::fs::File::create(self.path("atheme/stdout.log")).expect("log file");
        let child = Command::new(atheme)
            .arg("-n")
            .arg("-c")
            .arg(self.path("atheme/atheme.conf"))
            .arg("-D")
            .arg(self.path("atheme"))
            .arg("-l")
            .arg(self.path("atheme/atheme.log"))
            .arg("-p")
            .arg(self.path("atheme/atheme.pid"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start atheme-services");
        self.atheme = Some(child);
        let deadline = Instant::now() + WAIT;
        loop {
            if self.atheme_log().contains(ATHEME_SYNCED) {
                break;
            }
            if let Some(status) = self
                .atheme
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("atheme exited ({status}) before linking:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "atheme did not sync with inspircd within {WAIT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn atheme_log(&self) -> String {
        std::fs::read_to_string(self.path("atheme/atheme.log")).unwrap_or_default()
    }

    /// The tails of every log, for failure messages.
    pub fn log(&self) -> String {
        let tail = |name: &str| {
            let text = std::fs::read_to_string(self.path(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        format!(
            "--- inspircd stdout ---\n{}\n--- inspircd log ---\n{}\n--- atheme stdout ---\n{}\n--- atheme log ---\n{}",
            tail("inspircd.out"),
            tail("logs/ircd.log"),
            tail("atheme/stdout.log"),
            tail("atheme/atheme.log"),
        )
    }
}

impl Drop for InspIRCd {
    fn drop(&mut self) {
        for child in [self.atheme.take(), self.ircd.take()].into_iter().flatten() {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- inspircd/atheme logs ---\n{}", self.log());
        }
    }
}

fn binary(candidates: &[&str], install: &str) -> PathBuf {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{} not found: {install}", candidates[0]))
}

/// Whether the IRC server on `port` sends `marker` in its MOTD (it is the one the rig started).
fn answers_as(port: u16, marker: &str) -> bool {
    use std::io::{BufRead, BufReader, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let nick = format!("probe{port}");
    if write!(stream, "NICK {nick}\r\nUSER probe 0 * :rig probe\r\n").is_err() {
        return false;
    }
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    let mut seen = false;
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        if line.contains(marker) {
            seen = true;
        }
        // 376: end of MOTD; 422: no MOTD.
        if line.contains(" 376 ") || line.contains(" 422 ") {
            break;
        }
        line.clear();
    }
    let _ = stream.write_all(b"QUIT\r\n");
    seen
}

/// Three different free ports (free_port may hand out the same one twice in a row).
fn distinct_ports() -> (u16, u16, u16) {
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < 3 {
        let p = free_port();
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    (ports[0], ports[1], ports[2])
}

fn inspircd_conf(
    d: &Path,
    port: u16,
    flood_port: u16,
    link_port: u16,
    account_tag: bool,
    tls_port: u16,
) -> String {
    let d = d.display();
    let account_tag = if account_tag {
        "<module name=\"ircv3_accounttag\">\n"
    } else {
        ""
    };
    // GnuTLS on the TLS port, asking for client certificates; sslinfo tells services their
    // fingerprints (CertFP, SASL EXTERNAL).
    let tls = if tls_port == 0 {
        String::new()
    } else {
        format!(
            r#"<module name="ssl_gnutls">
<module name="sslinfo">
<sslprofile name="Clients" provider="gnutls" certfile="{d}/server.pem" keyfile="{d}/server.key" cafile="" crlfile="" dhfile="" hash="sha256" requestclientcert="yes">
<bind address="127.0.0.1" port="{tls_port}" type="clients" sslprofile="Clients">
<connect name="tls" allow="*" port="{tls_port}" timeout="60" pingfreq="120" threshold="10" commandrate="1000" fakelag="yes"
         hardsendq="1M" softsendq="10240" recvq="10K" localmax="100" globalmax="100" resolvehostnames="no" useident="no">
"#
        )
    };
    format!(
        r#"<server name="irc.lever.test" description="lever test rig (inspircd)" network="LeverRig">
<admin name="lever rig" nick="rig" email="root@localhost">
<path configdir="{d}" datadir="{d}/data" logdir="{d}/logs" moduledir="/usr/lib/inspircd/modules" runtimedir="{d}/run">
<pid file="{d}/run/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{d}/logs/ircd.log">
<dns server="127.0.0.1" timeout="1">
<bind address="127.0.0.1" port="{port},{flood_port}" type="clients">
<bind address="127.0.0.1" port="{link_port}" type="servers">
<connect name="nofakelag" allow="*" port="{flood_port}" timeout="60" pingfreq="120" threshold="10" commandrate="1000" fakelag="no"
         hardsendq="1M" softsendq="10240" recvq="10K" localmax="100" globalmax="100" resolvehostnames="no" useident="no">
<connect name="main" allow="*" port="{port}" timeout="60" pingfreq="120" threshold="10" commandrate="1000" fakelag="yes"
         hardsendq="1M" softsendq="10240" recvq="10K" localmax="100" globalmax="100" resolvehostnames="no" useident="no">
<class name="All" commands="*" privs="*" usermodes="*" chanmodes="*">
<type name="RigAdmin" classes="All">
<oper name="rigoper" password="rigpass" host="*@*" type="RigAdmin">
<options prefixquit="Quit: " hostintopic="no" defaultmodes="not">
<security hidesplits="no" hideulines="no" announceinvites="dynamic">
<files motd="{d}/inspircd.motd">
<module name="cap">
<module name="ircv3">
{account_tag}<module name="ircv3_batch">
<module name="ircv3_capnotify">
<module name="ircv3_chghost">
<module name="ircv3_ctctags">
<module name="ircv3_echomessage">
<module name="ircv3_invitenotify">
<module name="ircv3_labeledresponse">
<module name="ircv3_msgid">
<module name="ircv3_servertime">
<module name="monitor">
<module name="namesx">
<module name="uhnames">
<module name="services_account">
<module name="sasl">
<module name="spanningtree">
<module name="svshold">
<module name="hidechans">
<module name="chghost">
<link name="services.lever.test" ipaddr="127.0.0.1" port="{link_port}" allowmask="127.0.0.0/8" sendpass="{LINK_PASSWORD}" recvpass="{LINK_PASSWORD}">
<uline server="services.lever.test" silent="yes">
<sasl target="services.lever.test">
{tls}"#
    )
}

/// The packaged example with the RIG's five edits, paths in `dir`, uplink on `link_port`.
fn atheme_conf(dir: &Path, link_port: u16) -> String {
    let example = std::fs::read_to_string(ATHEME_EXAMPLE).unwrap_or_else(|e| {
        panic!("{ATHEME_EXAMPLE}: {e} (apt-get install -y --no-install-recommends atheme-services)")
    });
    let replace_once = |s: String, from: &str, to: &str| -> String {
        assert!(s.contains(from), "atheme example config lacks {from:?}");
        s.replacen(from, to, 1)
    };
    // Removes the block that starts with `head` (through the next "\n};\n").
    let cut_block = |s: String, head: &str, with: &str| -> String {
        let start = s
            .find(head)
            .unwrap_or_else(|| panic!("atheme example config lacks {head:?}"));
        let end = start + s[start..].find("\n};\n").expect("end of block") + "\n};\n".len();
        format!("{}{with}{}", &s[..start], &s[end..])
    };
    let mut s = example;
    s = replace_once(
        s,
        "#loadmodule \"modules/protocol/charybdis\";",
        "loadmodule \"modules/protocol/inspircd\";",
    );
    s = replace_once(
        s,
        "name = \"services.int\";",
        "name = \"services.lever.test\";",
    );
    s = replace_once(
        s,
        "netname = \"misconfigured network\";",
        "netname = \"LeverRig\";",
    );
    s = cut_block(
        s,
        "uplink \"irc.example.net\" {",
        &format!(
            "uplink \"irc.lever.test\" {{\n\thost = \"127.0.0.1\";\n\tsend_password = \"{LINK_PASSWORD}\";\n\
             \treceive_password = \"{LINK_PASSWORD}\";\n\tport = {link_port};\n}};\n"
        ),
    );
    s = cut_block(s, "uplink \"irc6.example.net\" {", "");
    // CertFP: NickServ CERT and SASL EXTERNAL.
    s = replace_once(
        s,
        "#loadmodule \"modules/nickserv/cert\";",
        "loadmodule \"modules/nickserv/cert\";",
    );
    s = replace_once(
        s,
        "loadmodule \"modules/saslserv/plain\";",
        "loadmodule \"modules/saslserv/plain\";\nloadmodule \"modules/saslserv/external\";",
    );
    s.replace("logfile \"var/", &format!("logfile \"{}/", dir.display()))
}

/// Connects with capability negotiation: requests `caps` (each must be offered), logs in with
/// SASL PLAIN if `sasl` is `(account, password)` (and fails unless the server says 903), then
/// ends negotiation and waits for the welcome.
pub fn connect_with(port: u16, nick: &str, caps: &[&str], sasl: Option<(&str, &str)>) -> Client {
    let mut client = Client::open(port, nick);
    client.send("CAP LS 302");
    client.send_registration();
    let mut offered: Vec<String> = Vec::new();
    loop {
        let ls = client.expect(|l| l.verb == "CAP" && is_sub(l, "LS"));
        offered.extend(
            ls.text()
                .split_whitespace()
                .map(|c| c.split('=').next().unwrap_or(c).to_owned()),
        );
        // `CAP * LS * :...` means more lines follow.
        if !(ls.params.len() >= 4 && ls.params[2] == "*") {
            break;
        }
    }
    let mut wanted: Vec<&str> = caps.to_vec();
    if sasl.is_some() {
        wanted.push("sasl");
    }
    for cap in &wanted {
        assert!(
            offered.iter().any(|o| o == cap),
            "{nick}: the server does not offer {cap}; offered: {offered:?}"
        );
    }
    if !wanted.is_empty() {
        client.send(&format!("CAP REQ :{}", wanted.join(" ")));
        let reply = client.expect(|l| l.verb == "CAP" && (is_sub(l, "ACK") || is_sub(l, "NAK")));
        assert!(
            is_sub(&reply, "ACK"),
            "{nick}: CAP REQ refused: {}",
            reply.raw
        );
    }
    if let Some((account, password)) = sasl {
        client.send("AUTHENTICATE PLAIN");
        client.expect(|l| l.verb == "AUTHENTICATE" && l.text() == "+");
        let payload = base64::engine::general_purpose::STANDARD
            .encode(format!("{account}\0{account}\0{password}"));
        client.send(&format!("AUTHENTICATE {payload}"));
        let outcome =
            client.expect(|l| matches!(l.verb.as_str(), "902" | "903" | "904" | "905" | "906"));
        assert_eq!(
            outcome.verb,
            "903",
            "{nick}: SASL login as {account} failed:\n{}",
            client.seen.join("\n")
        );
    }
    client.send("CAP END");
    client.expect(|l| l.verb == "001");
    client
}

fn is_sub(line: &Line, sub: &str) -> bool {
    line.params
        .get(1)
        .is_some_and(|s| s.eq_ignore_ascii_case(sub))
}

/// Registers the services account `account` (the client's nick) with NickServ, then
/// disconnects, so the nick is free again.
pub fn register_account(port: u16, account: &str, password: &str) {
    let mut client = Client::connect(port, account);
    client.privmsg(
        "NickServ",
        &format!("REGISTER {password} {account}@example.test"),
    );
    client.expect(|l| {
        l.verb == "NOTICE" && l.from == "NickServ" && l.text().contains("is now registered")
    });
    client.send("QUIT :registered");
    client.expect(|l| l.verb == "ERROR");
}

/// The account `nick` is logged in to according to the server's WHOIS (330), if any.
pub fn whois_account(client: &mut Client, nick: &str) -> Option<String> {
    client.send(&format!("WHOIS {nick}"));
    let mut account = None;
    loop {
        let line = client.expect(|l| matches!(l.verb.as_str(), "330" | "318" | "401"));
        match line.verb.as_str() {
            "330" => {
                assert!(
                    line.params
                        .get(1)
                        .is_some_and(|n| n.eq_ignore_ascii_case(nick))
                        && line.text() == "is logged in as",
                    "unexpected 330: {}",
                    line.raw
                );
                account = line.params.get(2).cloned();
            }
            "401" => panic!("WHOIS {nick}: no such nick: {}", line.raw),
            _ => return account,
        }
    }
}

/// A `bot.toml` for lever on the test server. Unlike the rig's `bot_config`, it sets nothing
/// lever has a default for (the throttle stays at burst 4, one line per second) unless
/// `extra_irc` does.
pub fn lever_config(
    port: u16,
    nick: &str,
    channels: &[&str],
    extra_irc: &str,
    rest: &str,
) -> String {
    let channels: Vec<String> = channels.iter().map(|c| format!("\"{c}\"")).collect();
    format!(
        "[irc]\nserver = \"127.0.0.1\"\nport = {port}\ntls = false\nnickname = \"{nick}\"\n\
         channels = [{}]\n{extra_irc}\n{rest}\n",
        channels.join(", ")
    )
}
