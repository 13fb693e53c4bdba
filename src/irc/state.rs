//! One connection's protocol state: registration, CAP and SASL, identification, joins, nick
//! regain, the idle watchdog, and turning PRIVMSGs into [`Message`]s.
//!
//! It does no I/O. The session feeds it each line read ([`Conn::handle`]) and a clock tick
//! ([`Conn::tick`]), and sends the protocol lines it queues ([`Conn::take_output`]). That keeps
//! the whole registration dance testable line by line, without a socket.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use irc::proto::{CapSubCommand, Command, Prefix};
use tokio::time::Instant;

use super::accounts::Accounts;
use super::ctcp;
use super::delivery::Delivery;
use super::sasl::{self, Login, Mechanism};
use crate::chat::mask::{self, CaseMapping};
use crate::chat::message::{Identity, Message, Place};
use crate::chat::outbox::Kind;
use crate::config::Config;

/// Capabilities lever asks for when the server offers them.
const WANTED_CAPS: &[&str] = &[
    "cap-notify",
    "account-tag",
    "extended-join",
    "account-notify",
    "server-time",
    "message-tags",
    "multi-prefix",
];
/// Without a welcome (001) by then, the server is not going to register us.
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(60);
/// Servers that send no end-of-MOTD: go on this long after the welcome.
const MOTD_GRACE: Duration = Duration::from_secs(3);
/// After asking services to free lever's nick, how long before lever takes it.
const SERVICES_FREE_NICK: Duration = Duration::from_secs(2);
/// How long to wait for NickServ to confirm an IDENTIFY before joining anyway.
const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// After NickServ says "identified", how long to wait for the server's 900 before joining.
const LOGIN_GRACE: Duration = Duration::from_secs(2);
/// Retry a channel that refused us (banned, +r, full) this often.
const JOIN_RETRY: Duration = Duration::from_secs(60);
/// After a KICK, rejoin after this long.
const KICK_REJOIN: Duration = Duration::from_secs(5);
/// At most one CTCP answer per this interval, so CTCP floods cannot get lever killed.
const CTCP_INTERVAL: Duration = Duration::from_secs(2);
/// The WHOX token lever uses to recognise its own account queries.
const WHOX_TOKEN: &str = "42";
/// Until lever sees its own user@host, assume the longest the server might add.
const HOST_GUESS: usize = 63;

/// Why the connection has to be dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect(pub String);

/// How far the session has got from connecting to being able to talk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Registration {
    /// Sent NICK/USER, waiting for the welcome.
    Registering,
    /// Welcomed; waiting for the end of the MOTD (and with it ISUPPORT).
    Welcomed { since: Instant },
    /// Sent NickServ IDENTIFY; waiting for confirmation.
    Identifying { until: Instant },
    /// Not logged in, and `irc.require_login` keeps lever off the channels until it is.
    AwaitingLogin,
    /// Channels joined (or being joined); the outbox may flow.
    Ready,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sasl {
    NotTried,
    Authenticating,
    Succeeded,
    Failed,
}

/// Protocol state of one connection.
pub struct Conn {
    cfg: Arc<Config>,
    version: String,
    nicks: Vec<String>,
    nick_attempt: usize,
    nick: String,
    me: Arc<str>,
    registration: Registration,
    connected_at: Instant,
    /// CAP negotiation still holds registration open (we owe the server `CAP END`).
    cap_open: bool,
    cap_offered: HashMap<String, String>,
    caps: HashSet<String>,
    sasl: Sasl,
    /// The mechanism chosen for this server, and the exchange in progress.
    mechanism: Option<Mechanism>,
    login: Option<Login>,
    /// A server SASL message arriving in 400-byte pieces, so far.
    sasl_in: String,
    /// SCRAM's client nonce for this login.
    nonce: String,
    /// The server's `sts` capability value, not yet acted on (the session acts on it).
    sts: Option<String>,
    /// A mechanism to try when the one tried fails: a server that did not list its mechanisms
    /// before (sasl-3.1) names them in 908 when refusing one.
    retry: Option<Mechanism>,
    logged_in_as: Option<String>,
    /// NickServ answered our IDENTIFY with success.
    nickserv_confirmed: bool,
    casemap: CaseMapping,
    chantypes: String,
    whox: bool,
    own_user: Option<String>,
    own_host: Option<String>,
    accounts: Accounts,
    joined: HashSet<String>,
    join_due: HashMap<String, Instant>,
    last_rx: Instant,
    ping_sent: Option<Instant>,
    next_regain: Instant,
    next_ctcp: Instant,
    output: Vec<String>,
    /// Tokens of PONGs answering delivery PINGs (see `delivery`), for the session.
    acks: Vec<String>,
}

impl Conn {
    /// State for a new connection; queues the registration lines.
    pub fn new(cfg: Arc<Config>, version: &str, now: Instant) -> Self {
        let nicks = cfg.nicks();
        let nick = nicks[0].clone();
        let mut conn = Self {
            version: version.to_owned(),
            me: Arc::from(nick.as_str()),
            nick,
            nicks,
            nick_attempt: 0,
            registration: Registration::Registering,
            connected_at: now,
            cap_open: true,
            cap_offered: HashMap::new(),
            caps: HashSet::new(),
            sasl: Sasl::NotTried,
            mechanism: None,
            login: None,
            sasl_in: String::new(),
            nonce: String::new(),
            retry: None,
            sts: None,
            logged_in_as: None,
            nickserv_confirmed: false,
            casemap: CaseMapping::default(),
            chantypes: "#&".into(),
            whox: false,
            own_user: None,
            own_host: None,
            accounts: Accounts::default(),
            joined: HashSet::new(),
            join_due: HashMap::new(),
            last_rx: now,
            ping_sent: None,
            next_regain: now,
            next_ctcp: now,
            output: Vec::new(),
            acks: Vec::new(),
            cfg,
        };
        if let Some(password) = &conn.cfg.irc.password {
            conn.send(Command::PASS(password.expose().to_owned()));
        }
        conn.send(Command::Raw("CAP".into(), vec!["LS".into(), "302".into()]));
        conn.send(Command::NICK(conn.nick.clone()));
        conn.send(Command::USER(
            conn.cfg.irc.username.clone(),
            "0".into(),
            conn.cfg.irc.realname.clone(),
        ));
        conn
    }

    /// The nick lever has on this connection now.
    pub fn nick(&self) -> &str {
        &self.nick
    }

    /// Whether registration and identification are done and channels are joined or joining:
    /// from then on the outbox may be sent.
    pub fn is_ready(&self) -> bool {
        self.registration == Registration::Ready
    }

    /// Channels lever is in now.
    pub fn joined(&self) -> usize {
        self.joined.len()
    }

    /// Whether a capability was acknowledged by the server.
    pub fn has_cap(&self, cap: &str) -> bool {
        self.caps.contains(cap)
    }

    /// Protocol lines queued since the last call, each ending in CRLF.
    pub fn take_output(&mut self) -> Vec<String> {
        std::mem::take(&mut self.output)
    }

    /// The server's STS policy (`sts` capability value), once, when it offers one.
    pub fn take_sts(&mut self) -> Option<String> {
        self.sts.take()
    }

    /// Tokens of delivery PONGs received since the last call.
    pub fn take_acks(&mut self) -> Vec<String> {
        std::mem::take(&mut self.acks)
    }

    fn send(&mut self, command: Command) {
        let mut line = String::from(&command);
        line.push_str("\r\n");
        self.output.push(line);
    }

    /// The most text bytes one PRIVMSG/NOTICE to `target` may carry, so that the line the
    /// server relays (with lever's `:nick!user@host` prefix) stays within 512 bytes.
    pub fn max_text_bytes(&self, verb: &str, target: &str) -> usize {
        let user = self
            .own_user
            .as_ref()
            .map_or((self.cfg.irc.username.len() + 1).max(10), String::len);
        let host = self.own_host.as_ref().map_or(HOST_GUESS, String::len);
        // ":" nick "!" user "@" host " " verb " " target " :" text "\r\n"
        let overhead =
            1 + self.nick.len() + 1 + user + 1 + host + 1 + verb.len() + 1 + target.len() + 2 + 2;
        512usize.saturating_sub(overhead).max(32)
    }

    /// Handles one line from the server. Returns a message for the command layer when the line
    /// is a PRIVMSG to a channel or to lever; an error when the connection must be dropped.
    pub fn handle(&mut self, line: &str, now: Instant) -> Result<Option<Message>, Disconnect> {
        self.last_rx = now;
        self.ping_sent = None;
        let parsed: irc::proto::Message = match line.parse() {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(line, error = %e, "unparsable line from server ignored");
                return Ok(None);
            }
        };
        let (nick, user, host) = match &parsed.prefix {
            Some(Prefix::Nickname(n, u, h)) => (n.as_str(), u.as_str(), h.as_str()),
            _ => ("", "", ""),
        };
        let from_me = !nick.is_empty() && self.casemap.eq(nick, &self.nick);
        match &parsed.command {
            Command::PING(token, _) => self.send(Command::PONG(token.clone(), None)),
            // `PONG server :token` (RFC 2812), or `PONG token` from some servers.
            Command::PONG(first, second) => {
                let token = second.as_ref().unwrap_or(first);
                if Delivery::is_ours(token) {
                    self.acks.push(token.clone());
                }
            }
            Command::ERROR(text) => {
                return Err(Disconnect(format!("server closed the link: {text}")));
            }
            Command::CAP(_, sub, a, b) => self.on_cap(*sub, a.as_deref(), b.as_deref()),
            Command::AUTHENTICATE(data) => self.on_authenticate(data),
            Command::PRIVMSG(target, text) => {
                if !from_me {
                    return Ok(self.on_privmsg(&parsed, target, text, now));
                }
            }
            Command::NOTICE(_, text) => self.on_notice(nick, text, now),
            Command::JOIN(channel, account, _) => {
                if from_me {
                    self.own_user = Some(user.to_owned());
                    self.own_host = Some(host.to_owned());
                    self.on_self_join(channel);
                } else {
                    let account = if self.has_cap("extended-join") {
                        account.as_deref().filter(|a| *a != "*")
                    } else {
                        None
                    };
                    self.accounts.seen(nick, channel, account);
                }
            }
            Command::PART(channel, _) => {
                if from_me {
                    self.on_self_left(channel, now + KICK_REJOIN);
                } else {
                    self.accounts.left(nick, channel);
                }
            }
            Command::KICK(channel, victim, reason) => {
                if self.casemap.eq(victim, &self.nick) {
                    tracing::warn!(
                        %channel, by = nick, reason = reason.as_deref().unwrap_or(""),
                        "kicked; rejoining in {}s", KICK_REJOIN.as_secs()
                    );
                    self.on_self_left(channel, now + KICK_REJOIN);
                } else {
                    self.accounts.left(victim, channel);
                }
            }
            Command::QUIT(_) => {
                self.accounts.quit(nick);
                self.maybe_regain_from(nick);
            }
            Command::NICK(new) => {
                if from_me {
                    tracing::info!(old = %self.nick, new = %new, "nick changed");
                    self.set_nick(new.clone());
                } else {
                    self.accounts.renamed(nick, new);
                    self.maybe_regain_from(nick);
                }
            }
            Command::ACCOUNT(account) => {
                let account = Some(account.as_str()).filter(|a| *a != "*");
                self.accounts.set_account(nick, account);
            }
            command => {
                if let Some((code, args)) = numeric(command) {
                    self.on_numeric(code, args, now)?;
                }
            }
        }
        Ok(None)
    }

    fn on_cap(&mut self, sub: CapSubCommand, a: Option<&str>, b: Option<&str>) {
        // `CAP * LS * :caps` (more to come) or `CAP * LS :caps`; ACK/NAK/NEW/DEL alike.
        let (more, list) = match (a, b) {
            (Some("*"), Some(list)) => (true, list),
            (Some(list), None) | (_, Some(list)) => (false, list),
            (None, None) => (false, ""),
        };
        match sub {
            CapSubCommand::LS => {
                for cap in list.split_whitespace() {
                    let (name, value) = cap.split_once('=').unwrap_or((cap, ""));
                    if name == "sts" {
                        self.sts = Some(value.to_owned());
                    }
                    self.cap_offered.insert(name.to_owned(), value.to_owned());
                }
                if !more && self.cap_open {
                    self.request_caps();
                }
            }
            CapSubCommand::ACK => {
                for cap in list.split_whitespace() {
                    match cap.strip_prefix('-') {
                        Some(off) => self.caps.remove(off),
                        None => self.caps.insert(cap.to_owned()),
                    };
                }
                tracing::debug!(caps = ?self.caps, "capabilities enabled");
                // During registration, or later when the server offered SASL late (CAP NEW).
                let login = self.has_cap("sasl") && self.sasl == Sasl::NotTried;
                match self.mechanism.filter(|_| login) {
                    Some(mechanism) => self.start_login(mechanism),
                    None => self.cap_end(),
                }
            }
            CapSubCommand::NAK => {
                tracing::warn!(
                    caps = list,
                    "server refused capabilities; going on without them"
                );
                self.cap_end();
            }
            // cap-notify: offered now (SASL once services link, account-tag back again)…
            CapSubCommand::NEW => {
                let mut new = Vec::new();
                for cap in list.split_whitespace() {
                    let (name, value) = cap.split_once('=').unwrap_or((cap, ""));
                    if name == "sts" {
                        self.sts = Some(value.to_owned());
                    }
                    self.cap_offered.insert(name.to_owned(), value.to_owned());
                    new.push(name.to_owned());
                }
                tracing::info!(caps = list, "the server offers new capabilities");
                let enabled = self.caps.clone();
                let wanted =
                    self.wanted_caps(|c| new.iter().any(|n| n == c) && !enabled.contains(c));
                if !wanted.is_empty() {
                    let list = wanted.join(" ");
                    self.send(Command::CAP(None, CapSubCommand::REQ, None, Some(list)));
                }
            }
            // …or no more (services gone: logins and account tags stop until they are back).
            CapSubCommand::DEL => {
                tracing::warn!(caps = list, "the server withdrew capabilities");
                for cap in list.split_whitespace() {
                    self.caps.remove(cap);
                    self.cap_offered.remove(cap);
                }
            }
            _ => {}
        }
    }

    /// What lever logs in with, if anything is configured.
    fn credentials(&self) -> Option<sasl::Credentials> {
        let have = sasl::Credentials {
            certificate: self.cfg.irc.client_cert.is_some(),
            password: self.cfg.irc.sasl_account.is_some(),
        };
        (have.certificate || have.password).then_some(have)
    }

    /// The offered capabilities lever wants among those `considered`; `sasl` when it can log in
    /// with one of the offered mechanisms (the one chosen is kept), else why not is logged.
    fn wanted_caps(&mut self, considered: impl Fn(&str) -> bool) -> Vec<&'static str> {
        let mut wanted: Vec<&'static str> = WANTED_CAPS
            .iter()
            .copied()
            .filter(|c| considered(c) && self.cap_offered.contains_key(*c))
            .collect();
        let Some(have) = self.credentials().filter(|_| considered("sasl")) else {
            return wanted;
        };
        let fallback = if self.cfg.irc.nickserv_password.is_some() {
            "will identify to NickServ instead"
        } else {
            "lever will not be logged in (set irc.nickserv_password for a fallback)"
        };
        match self.cap_offered.get("sasl") {
            Some(offered) => match sasl::choose(self.cfg.irc.sasl_mechanism, have, offered) {
                Ok(mechanism) => {
                    self.mechanism = Some(mechanism);
                    wanted.push("sasl");
                }
                Err(why) => tracing::error!("cannot log in with SASL: {why}; {fallback}"),
            },
            None => tracing::warn!("the server does not offer SASL (yet); {fallback}"),
        }
        wanted
    }

    fn request_caps(&mut self) {
        let wanted = self.wanted_caps(|_| true);
        if wanted.is_empty() {
            self.cap_end();
        } else {
            self.send(Command::CAP(
                None,
                CapSubCommand::REQ,
                None,
                Some(wanted.join(" ")),
            ));
        }
    }

    fn cap_end(&mut self) {
        if self.cap_open {
            self.cap_open = false;
            self.send(Command::CAP(None, CapSubCommand::END, None, None));
        }
    }

    fn start_login(&mut self, mechanism: Mechanism) {
        self.nonce = match sasl::new_nonce() {
            Ok(nonce) => nonce,
            Err(sasl::Abort(why)) => {
                tracing::error!("cannot log in with SASL: {why}");
                self.sasl = Sasl::Failed;
                self.cap_end();
                return;
            }
        };
        tracing::info!(mechanism = mechanism.name(), "logging in with SASL");
        self.sasl = Sasl::Authenticating;
        self.login = Some(Login::new(mechanism));
        self.sasl_in.clear();
        self.send(Command::AUTHENTICATE(mechanism.name().into()));
    }

    /// One `AUTHENTICATE` from the server: a piece of its message (400 bytes of base64 each; a
    /// shorter piece, or `+`, ends it). The whole message gets the login's answer.
    fn on_authenticate(&mut self, data: &str) {
        if self.sasl != Sasl::Authenticating {
            return;
        }
        if data != "+" {
            self.sasl_in.push_str(data);
            // SASL messages are short: anything past a few kilobytes is not a login.
            if self.sasl_in.len() > 8192 {
                return self.abort_login("the server's SASL message is too long");
            }
            if data.len() == 400 {
                return;
            }
        }
        let encoded = std::mem::take(&mut self.sasl_in);
        let Ok(challenge) = base64::engine::general_purpose::STANDARD.decode(&encoded) else {
            return self.abort_login("the server's SASL message is not base64");
        };
        let account = self.cfg.irc.sasl_account.clone().unwrap_or_default();
        let password = self
            .cfg
            .irc
            .sasl_password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        let Some(login) = self.login.as_mut() else {
            return;
        };
        match login.respond(&challenge, &account, &password, &self.nonce) {
            Ok(response) => self.send_sasl(&response),
            Err(sasl::Abort(why)) => self.abort_login(&why),
        }
    }

    /// Sends a SASL message: base64 in 400-byte pieces; an empty one, or an exact multiple's
    /// end, is a lone `+`.
    fn send_sasl(&mut self, message: &[u8]) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(message);
        for chunk in encoded.as_bytes().chunks(400) {
            self.send(Command::AUTHENTICATE(
                String::from_utf8_lossy(chunk).into_owned(),
            ));
        }
        if encoded.len() % 400 == 0 {
            self.send(Command::AUTHENTICATE("+".into()));
        }
    }

    /// Gives up a login on lever's side (`AUTHENTICATE *`); the server's 906 then ends it.
    fn abort_login(&mut self, why: &str) {
        tracing::error!(
            mechanism = self.login.as_ref().map_or("", |l| l.mechanism().name()),
            "SASL login given up: {why}"
        );
        self.sasl_in.clear();
        self.sasl = Sasl::Failed;
        self.send(Command::AUTHENTICATE("*".into()));
    }

    fn on_numeric(&mut self, code: u16, args: &[String], now: Instant) -> Result<(), Disconnect> {
        let arg = |i: usize| args.get(i).map_or("", String::as_str);
        let text = args.last().map_or("", String::as_str);
        match code {
            // RPL_WELCOME
            1 if self.registration == Registration::Registering => {
                self.set_nick(arg(0).to_owned());
                // "Welcome to the ... Network nick!user@host" tells our own prefix.
                if let Some(source) = text.rsplit(' ').next().filter(|s| s.contains('!')) {
                    let (_, user, host) = mask::split_source(source);
                    if !user.is_empty() && !host.is_empty() {
                        self.own_user = Some(user.to_owned());
                        self.own_host = Some(host.to_owned());
                    }
                }
                tracing::info!(nick = %self.nick, "registered with the server");
                self.registration = Registration::Welcomed { since: now };
                self.cap_open = false;
            }
            // RPL_ISUPPORT
            5 => self.on_isupport(&args[1.min(args.len())..args.len().saturating_sub(1)]),
            // RPL_ENDOFMOTD, ERR_NOMOTD
            376 | 422 if matches!(self.registration, Registration::Welcomed { .. }) => {
                self.after_welcome(now)
            }
            // RPL_HOSTHIDDEN: our displayed host changed (cloak)
            396 => self.own_host = Some(arg(1).to_owned()),
            // WHOX reply to our account query: me token channel nick account
            354 if arg(1) == WHOX_TOKEN => {
                let account = Some(arg(4)).filter(|a| *a != "0" && !a.is_empty());
                self.accounts.seen(arg(3), arg(2), account);
            }
            // ERR_UNKNOWNCOMMAND for CAP: a server without capability negotiation
            421 if arg(1).eq_ignore_ascii_case("CAP") => self.cap_open = false,
            // ERR_ERRONEUSNICKNAME, ERR_NICKNAMEINUSE, ERR_NICKCOLLISION, ERR_UNAVAILRESOURCE
            432 | 433 | 436 | 437 if self.registration == Registration::Registering => {
                self.next_nick(arg(1), text)
            }
            433 | 437 => {
                tracing::debug!(nick = arg(1), "nick still taken");
            }
            // ERR_PASSWDMISMATCH
            464 => {
                return Err(Disconnect(
                    "the server rejected the password (464): check irc.password".into(),
                ))
            }
            // ERR_YOUREBANNEDCREEP
            465 => return Err(Disconnect(format!("banned from this server (465): {text}"))),
            // Cannot join: no such channel, too many, full, invite-only, banned, bad key,
            // needs a registered nick, throttled.
            403 | 405 | 471 | 473 | 474 | 475 | 477 | 489 => {
                let channel = arg(1).to_owned();
                if self
                    .cfg
                    .irc
                    .channels
                    .iter()
                    .any(|c| self.casemap.eq(c, &channel))
                {
                    tracing::warn!(
                        %channel, code, reason = text,
                        "cannot join; retrying in {}s", JOIN_RETRY.as_secs()
                    );
                    self.join_due.insert(channel, now + JOIN_RETRY);
                }
            }
            // ERR_CHANOPRIVSNEEDED: most likely a topic lever may not set ([queue] topic).
            482 => tracing::warn!(
                channel = arg(1), reason = text,
                "the server refused lever a channel operator's change (is it allowed to set the topic?)"
            ),
            // RPL_LOGGEDIN: account name is the third parameter
            900 => {
                tracing::info!(account = arg(2), "logged in to services");
                self.logged_in_as = Some(arg(2).to_owned());
                if matches!(
                    self.registration,
                    Registration::Identifying { .. } | Registration::AwaitingLogin
                ) {
                    self.become_ready(now);
                }
            }
            // RPL_SASLSUCCESS, ERR_SASLALREADY
            903 | 907 => {
                self.sasl = Sasl::Succeeded;
                self.cap_end();
            }
            // ERR_NICKLOCKED, ERR_SASLFAIL, ERR_SASLTOOLONG, ERR_SASLABORTED
            // RPL_SASLMECHS: the mechanisms the server has, after it refused ours
            908 if self.sasl == Sasl::Authenticating => {
                let tried = self.login.as_ref().map(Login::mechanism);
                self.retry = self.credentials().and_then(|have| {
                    sasl::choose(self.cfg.irc.sasl_mechanism, have, arg(1))
                        .ok()
                        .filter(|m| Some(*m) != tried)
                });
            }
            904 | 905 if self.sasl == Sasl::Authenticating && self.retry.is_some() => {
                let next = self.retry.take().expect("checked");
                tracing::warn!(
                    refused = self.login.as_ref().map_or("", |l| l.mechanism().name()),
                    next = next.name(),
                    "the server refused that SASL mechanism; trying the next it has"
                );
                self.start_login(next);
            }
            902 | 904 | 905 | 906 if self.sasl == Sasl::Authenticating => {
                self.sasl = Sasl::Failed;
                let mechanism = self.login.as_ref().map_or(Mechanism::Plain, Login::mechanism);
                tracing::error!(
                    account = self.cfg.irc.sasl_account.as_deref().unwrap_or(""),
                    mechanism = mechanism.name(),
                    code,
                    reason = text,
                    "SASL login failed: {}",
                    mechanism.what_to_check()
                );
                self.cap_end();
                self.after_failed_login(now);
            }
            // Our own abort answered.
            906 => self.cap_end(),
            _ => {}
        }
        Ok(())
    }

    fn on_isupport(&mut self, tokens: &[String]) {
        for token in tokens {
            let (key, value) = token.split_once('=').unwrap_or((token, ""));
            match key {
                "CASEMAPPING" => {
                    self.casemap = CaseMapping::from_isupport(value);
                    self.accounts.reset(self.casemap);
                }
                "CHANTYPES" => self.chantypes = value.to_owned(),
                "WHOX" => self.whox = true,
                _ => {}
            }
        }
    }

    fn next_nick(&mut self, rejected: &str, why: &str) {
        self.nick_attempt += 1;
        let next = match self.nicks.get(self.nick_attempt) {
            Some(nick) => nick.clone(),
            // Out of alternates: a short stem plus digits fits even a NICKLEN of 9.
            None => {
                let stem: String = self.nicks[0].chars().take(5).collect();
                format!("{stem}{:04}", fastrand::u16(..10000))
            }
        };
        tracing::warn!(%rejected, reason = why, %next, "nick not available; trying another");
        self.set_nick(next.clone());
        self.send(Command::NICK(next));
    }

    fn set_nick(&mut self, nick: String) {
        if nick != self.nick {
            self.me = Arc::from(nick.as_str());
            self.nick = nick;
        }
    }

    /// Someone who had lever's configured nick left it: take it back at once.
    fn maybe_regain_from(&mut self, old_nick: &str) {
        let wanted = &self.nicks[0];
        if self.is_ready()
            && self.casemap.eq(old_nick, wanted)
            && !self.casemap.eq(&self.nick, wanted)
        {
            let wanted = wanted.clone();
            self.send(Command::NICK(wanted));
        }
    }

    /// A SASL login failed after registration (one offered late): NickServ, if configured,
    /// may still identify lever.
    fn after_failed_login(&mut self, now: Instant) {
        if self.registration == Registration::AwaitingLogin {
            self.after_welcome(now);
        }
    }

    fn after_welcome(&mut self, now: Instant) {
        match &self.cfg.irc.nickserv_password {
            Some(password) if self.logged_in_as.is_none() => {
                let password = password.expose().to_owned();
                self.send(Command::PRIVMSG(
                    "NickServ".into(),
                    format!("IDENTIFY {password}"),
                ));
                self.registration = Registration::Identifying {
                    until: now + IDENTIFY_TIMEOUT,
                };
            }
            _ => self.become_ready(now),
        }
    }

    fn become_ready(&mut self, now: Instant) {
        if self.registration == Registration::Ready {
            return;
        }
        let logged_in = self.logged_in_as.is_some() || self.nickserv_confirmed;
        if self.cfg.irc.require_login && !logged_in {
            if self.registration != Registration::AwaitingLogin {
                tracing::error!(
                    "not logged in to services, and irc.require_login is set: staying off the \
                     channels until a login succeeds (see the errors above for why it did not)"
                );
                self.registration = Registration::AwaitingLogin;
            }
            return;
        }
        self.registration = Registration::Ready;
        self.next_regain = now + self.cfg.irc.regain_interval;
        let channels = self.cfg.irc.channels.clone();
        for channel in channels {
            self.join(&channel, now);
        }
        self.ask_services_for_nick(now);
    }

    /// On an alternate nick while logged in to services: asks NickServ to free lever's nick
    /// (`irc.regain_command`), and tries to take it shortly after.
    fn ask_services_for_nick(&mut self, now: Instant) {
        let wanted = self.nicks[0].clone();
        let command = self.cfg.irc.regain_command.trim();
        let logged_in = self.logged_in_as.is_some() || self.nickserv_confirmed;
        if !logged_in || command.is_empty() || self.casemap.eq(&self.nick, &wanted) {
            return;
        }
        tracing::info!(nick = %wanted, on = %self.nick, "asking services to free lever's nick");
        let command = command.replace("{nick}", &wanted);
        self.send(Command::PRIVMSG("NickServ".into(), command));
        self.next_regain = now + SERVICES_FREE_NICK;
    }

    fn join(&mut self, channel: &str, now: Instant) {
        let key = self
            .cfg
            .irc
            .channel_keys
            .get(channel)
            .map(|k| k.expose().to_owned());
        self.send(Command::JOIN(channel.to_owned(), key, None));
        // If no JOIN echo arrives (lost, or silently refused), try again later.
        self.join_due.insert(channel.to_owned(), now + JOIN_RETRY);
    }

    fn on_self_join(&mut self, channel: &str) {
        tracing::info!(%channel, "joined");
        self.joined.insert(self.casemap.fold(channel));
        self.join_due.retain(|c, _| !self.casemap.eq(c, channel));
        // Learn the accounts of people already there, unless every message will carry one.
        if self.whox && !self.has_cap("account-tag") && self.has_cap("account-notify") {
            self.send(Command::Raw(
                "WHO".into(),
                vec![channel.to_owned(), format!("%tcna,{WHOX_TOKEN}")],
            ));
        }
    }

    fn on_self_left(&mut self, channel: &str, rejoin_at: Instant) {
        self.joined.remove(&self.casemap.fold(channel));
        self.accounts.lever_left(channel);
        if let Some(configured) = self
            .cfg
            .irc
            .channels
            .iter()
            .find(|c| self.casemap.eq(c, channel))
        {
            self.join_due.insert(configured.clone(), rejoin_at);
        }
    }

    fn on_notice(&mut self, from: &str, text: &str, now: Instant) {
        if !matches!(self.registration, Registration::Identifying { .. })
            || !from.eq_ignore_ascii_case("NickServ")
        {
            return;
        }
        let lower = text.to_lowercase();
        if ["identified", "recognized", "logged in"]
            .iter()
            .any(|w| lower.contains(w))
        {
            // Services often tell the server (RPL_LOGGEDIN, 900) just after they tell us; a
            // JOIN racing ahead of it would bounce off a registered-only channel. Wait briefly
            // for the 900, which joins at once.
            tracing::info!("identified to NickServ");
            self.nickserv_confirmed = true;
            let grace = now + LOGIN_GRACE;
            if let Registration::Identifying { until } = &mut self.registration {
                *until = (*until).min(grace);
            }
        } else if ["invalid", "incorrect", "denied", "not registered"]
            .iter()
            .any(|w| lower.contains(w))
        {
            tracing::error!(
                reply = text,
                "NickServ refused IDENTIFY: check irc.nickserv_password"
            );
            self.become_ready(now);
        }
    }

    fn on_privmsg(
        &mut self,
        parsed: &irc::proto::Message,
        target: &str,
        text: &str,
        now: Instant,
    ) -> Option<Message> {
        let Some(prefix @ Prefix::Nickname(..)) = &parsed.prefix else {
            return None; // from a server
        };
        // Split the source as sent (host after the last '@'), not as the protocol crate did
        // (host after the first), so a user name holding '@' cannot pass for a host.
        let source = prefix.to_string();
        let (nick, user, host) = mask::split_source(&source);
        let place = if target.starts_with(|c: char| self.chantypes.contains(c)) {
            Place::Channel(target.to_owned())
        } else if self.casemap.eq(target, &self.nick) {
            Place::Private
        } else {
            return None; // e.g. a STATUSMSG (@#chan) or a mask
        };
        if let Some(request) = ctcp::parse(text) {
            // Answer in private only, and rarely enough that a CTCP flood cannot flood us off.
            if place == Place::Private && now >= self.next_ctcp {
                if let Some(answer) = ctcp::answer(&request, &self.version) {
                    self.next_ctcp = now + CTCP_INTERVAL;
                    self.send(Command::NOTICE(nick.to_owned(), answer));
                }
            }
            return None;
        }
        let account = if self.has_cap("account-tag") {
            parsed
                .tags
                .as_ref()
                .and_then(|tags| tags.iter().find(|t| t.0 == "account"))
                .and_then(|t| t.1.clone())
        } else if self.has_cap("account-notify") && self.has_cap("extended-join") {
            self.accounts.get(nick).map(str::to_owned)
        } else {
            None
        };
        Some(Message {
            who: Identity {
                nick: nick.to_owned(),
                user: user.to_owned(),
                host: host.to_owned(),
                account,
            },
            place,
            text: text.to_owned(),
            me: self.me.clone(),
            casemap: self.casemap,
            trusted: false,
        })
    }

    /// Time-driven work: registration and identification timeouts, the idle watchdog, nick
    /// regain and channel (re)joins.
    pub fn tick(&mut self, now: Instant) -> Result<(), Disconnect> {
        match self.registration {
            Registration::Registering
                if now.duration_since(self.connected_at) > REGISTRATION_TIMEOUT =>
            {
                return Err(Disconnect(format!(
                    "the server did not welcome lever within {} s",
                    REGISTRATION_TIMEOUT.as_secs()
                )));
            }
            Registration::Welcomed { since } if now.duration_since(since) > MOTD_GRACE => {
                self.after_welcome(now)
            }
            Registration::Identifying { until } if now >= until => {
                if !self.nickserv_confirmed {
                    tracing::warn!(
                        "NickServ did not confirm IDENTIFY within {} s; joining anyway",
                        IDENTIFY_TIMEOUT.as_secs()
                    );
                }
                self.become_ready(now);
            }
            _ => {}
        }
        let irc = &self.cfg.irc;
        match self.ping_sent {
            Some(sent) if now.duration_since(sent) > irc.ping_timeout => {
                return Err(Disconnect(format!(
                    "no traffic from the server for {} s",
                    now.duration_since(self.last_rx).as_secs()
                )));
            }
            None if now.duration_since(self.last_rx) > irc.ping_interval => {
                self.ping_sent = Some(now);
                self.send(Command::PING(format!("lever-{}", fastrand::u32(..)), None));
            }
            _ => {}
        }
        if self.registration != Registration::Ready {
            return Ok(());
        }
        if now >= self.next_regain && !self.casemap.eq(&self.nick, &self.nicks[0]) {
            self.next_regain = now + self.cfg.irc.regain_interval;
            self.send(Command::NICK(self.nicks[0].clone()));
        }
        let due: Vec<String> = self
            .join_due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(c, _)| c.clone())
            .collect();
        for channel in due {
            self.join(&channel, now);
        }
        Ok(())
    }
}

/// A numeric reply's code and parameters, whether or not the protocol crate knows its name.
fn numeric(command: &Command) -> Option<(u16, &[String])> {
    match command {
        Command::Response(response, args) => Some((*response as u16, args)),
        Command::Raw(verb, args) if verb.len() == 3 => {
            verb.parse().ok().map(|code| (code, args.as_slice()))
        }
        _ => None,
    }
}

/// The wire line for an outgoing PRIVMSG or NOTICE, with CRLF.
pub fn message_line(kind: Kind, target: &str, text: &str) -> String {
    let command = match kind {
        Kind::Notice => Command::NOTICE(target.to_owned(), text.to_owned()),
        Kind::Privmsg => Command::PRIVMSG(target.to_owned(), text.to_owned()),
        Kind::Topic => Command::TOPIC(target.to_owned(), Some(text.to_owned())),
    };
    let mut line = String::from(&command);
    line.push_str("\r\n");
    line
}

/// A wire line as it may appear in logs: passwords replaced.
pub fn redact(line: &str) -> String {
    let line = line.trim_end();
    let upper = line.to_ascii_uppercase();
    if upper.starts_with("PASS ")
        || (upper.starts_with("AUTHENTICATE ")
            && !matches!(
                &upper[13..],
                "PLAIN" | "EXTERNAL" | "SCRAM-SHA-256" | "SCRAM-SHA-1" | "+" | "*"
            ))
        || upper.starts_with("PRIVMSG NICKSERV :IDENTIFY")
        || (upper.starts_with("JOIN ") && line.split(' ').count() > 2)
    {
        let verb = line.split(' ').next().unwrap_or("");
        return format!("{verb} <redacted>");
    }
    line.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn conn(extra: &str) -> (Conn, Instant) {
        let text = format!(
            "[irc]\nserver = \"irc.test\"\nnickname = \"lever\"\nchannels = [\"#ops\", \"#dev\"]\n{extra}"
        );
        let cfg = Config::from_toml(&text, "test", PathBuf::from(".")).unwrap();
        let now = Instant::now();
        (Conn::new(Arc::new(cfg), "lever test", now), now)
    }

    fn feed(c: &mut Conn, now: Instant, lines: &[&str]) -> Vec<String> {
        for line in lines {
            c.handle(line, now).unwrap();
        }
        c.take_output()
            .iter()
            .map(|l| l.trim_end().to_owned())
            .collect()
    }

    #[test]
    fn registers_negotiates_caps_and_joins_after_the_motd() {
        let (mut c, now) = conn("");
        let out = feed(&mut c, now, &[]);
        assert_eq!(
            out,
            [
                "CAP LS 302",
                "NICK lever",
                "USER lever 0 * :lever chat-ops bot"
            ]
        );
        let out = feed(
            &mut c,
            now,
            &[
                ":irc.test CAP * LS * :multi-prefix sasl=PLAIN,EXTERNAL",
                ":irc.test CAP * LS :account-tag extended-join away-notify",
            ],
        );
        assert_eq!(out, ["CAP REQ :account-tag extended-join multi-prefix"]);
        let out = feed(
            &mut c,
            now,
            &[":irc.test CAP * ACK :account-tag extended-join multi-prefix"],
        );
        assert_eq!(out, ["CAP END"]);
        let out = feed(
            &mut c,
            now,
            &[
                ":irc.test 001 lever :Welcome to the Network lever!~lever@10.1.2.3",
                ":irc.test 005 lever CASEMAPPING=ascii CHANTYPES=# :are supported",
            ],
        );
        assert!(out.is_empty());
        assert!(!c.is_ready());
        let out = feed(&mut c, now, &[":irc.test 376 lever :End of MOTD"]);
        assert_eq!(out, ["JOIN #ops", "JOIN #dev"]);
        assert!(c.is_ready());
        assert_eq!(c.casemap, CaseMapping::Ascii);
    }

    #[test]
    fn sasl_plain_then_cap_end() {
        let (mut c, now) = conn("sasl_account = \"lever\"\nsasl_password = \"s3cret\"\n");
        feed(&mut c, now, &[]);
        let out = feed(&mut c, now, &[":s CAP * LS :sasl=PLAIN account-tag"]);
        assert_eq!(out, ["CAP REQ :account-tag sasl"]);
        let out = feed(&mut c, now, &[":s CAP lever ACK :account-tag sasl"]);
        assert_eq!(out, ["AUTHENTICATE PLAIN"]);
        let out = feed(&mut c, now, &["AUTHENTICATE +"]);
        let expected = base64::engine::general_purpose::STANDARD.encode("lever\0lever\0s3cret");
        assert_eq!(out, [format!("AUTHENTICATE {expected}")]);
        let out = feed(
            &mut c,
            now,
            &[
                ":s 900 lever lever!l@h lever :You are now logged in as lever",
                ":s 903 lever :SASL authentication successful",
            ],
        );
        assert_eq!(out, ["CAP END"]);
        assert_eq!(c.logged_in_as.as_deref(), Some("lever"));
    }

    #[test]
    fn scram_sha_256_logs_in_in_pieces_and_checks_the_server() {
        let (mut c, now) = conn("sasl_account = \"user\"\nsasl_password = \"pencil\"\n");
        feed(&mut c, now, &[]);
        let out = feed(&mut c, now, &[":s CAP * LS :sasl=PLAIN,SCRAM-SHA-256"]);
        assert_eq!(out, ["CAP REQ sasl"]);
        let out = feed(&mut c, now, &[":s CAP * ACK :sasl"]);
        assert_eq!(out, ["AUTHENTICATE SCRAM-SHA-256"]);
        let out = feed(&mut c, now, &["AUTHENTICATE +"]);
        let b64 = base64::engine::general_purpose::STANDARD;
        let first = String::from_utf8(
            b64.decode(out[0].strip_prefix("AUTHENTICATE ").unwrap())
                .unwrap(),
        )
        .unwrap();
        let nonce = first
            .strip_prefix("n,,n=user,r=")
            .expect("a client-first message")
            .to_owned();
        // The server's first message, sent in a 400-byte piece and the rest.
        let salt = b64.encode([7u8; 300]);
        let server_first = format!("r={nonce}srv,s={salt},i=4096");
        let encoded = b64.encode(&server_first);
        assert!(encoded.len() > 400);
        let (a, b) = encoded.split_at(400);
        assert!(
            feed(&mut c, now, &[&format!("AUTHENTICATE {a}")]).is_empty(),
            "waits for the rest"
        );
        let out = feed(&mut c, now, &[&format!("AUTHENTICATE {b}")]);
        let last = String::from_utf8(
            b64.decode(out[0].strip_prefix("AUTHENTICATE ").unwrap())
                .unwrap(),
        )
        .unwrap();
        assert!(
            last.starts_with(&format!("c=biws,r={nonce}srv,p=")),
            "{last}"
        );
        // A server that cannot sign with the password is refused.
        let out = feed(
            &mut c,
            now,
            &[&format!("AUTHENTICATE {}", b64.encode("v=AAAA"))],
        );
        assert_eq!(out, ["AUTHENTICATE *"]);
        let out = feed(&mut c, now, &[":s 906 lever :SASL authentication aborted"]);
        assert_eq!(out, ["CAP END"]);
        assert_eq!(c.logged_in_as, None);
    }

    #[test]
    fn external_presents_the_certificate_and_says_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["c.pem", "k.pem"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let (mut c, now) = conn(&format!(
            "tls = true\nclient_cert = \"{0}/c.pem\"\nclient_key = \"{0}/k.pem\"\n",
            dir.path().display()
        ));
        feed(&mut c, now, &[]);
        let out = feed(&mut c, now, &[":s CAP * LS :sasl=PLAIN,EXTERNAL"]);
        assert_eq!(out, ["CAP REQ sasl"]);
        let out = feed(&mut c, now, &[":s CAP * ACK :sasl"]);
        assert_eq!(out, ["AUTHENTICATE EXTERNAL"]);
        let out = feed(&mut c, now, &["AUTHENTICATE +"]);
        assert_eq!(out, ["AUTHENTICATE +"]);
    }

    #[test]
    fn a_server_that_lists_no_mechanisms_names_them_when_refusing_and_lever_tries_the_next() {
        let (mut c, now) = conn("sasl_account = \"lever\"\nsasl_password = \"s3cret\"\n");
        feed(&mut c, now, &[]);
        feed(&mut c, now, &[":s CAP * LS :sasl"]);
        let out = feed(&mut c, now, &[":s CAP * ACK :sasl"]);
        assert_eq!(out, ["AUTHENTICATE SCRAM-SHA-256"]);
        let out = feed(
            &mut c,
            now,
            &[
                ":s 908 lever PLAIN,EXTERNAL :are available SASL mechanisms",
                ":s 904 lever :SASL authentication failed",
            ],
        );
        assert_eq!(out, ["AUTHENTICATE PLAIN"]);
    }

    #[test]
    fn sasl_offered_late_logs_in_then_joins_when_login_is_required() {
        let (mut c, now) =
            conn("sasl_account = \"lever\"\nsasl_password = \"s3cret\"\nrequire_login = true\n");
        feed(&mut c, now, &[]);
        // Services are not linked yet: no SASL on offer.
        let out = feed(&mut c, now, &[":s CAP * LS :cap-notify account-tag"]);
        assert_eq!(out, ["CAP REQ :cap-notify account-tag"]);
        let out = feed(
            &mut c,
            now,
            &[
                ":s CAP * ACK :cap-notify account-tag",
                ":s 001 lever :Welcome",
                ":s 422 lever :No MOTD",
            ],
        );
        assert_eq!(
            out,
            ["CAP END"],
            "registered, but joins nothing unidentified"
        );
        assert!(!c.is_ready());
        c.tick(now + Duration::from_secs(90)).unwrap();
        assert!(!c.take_output().iter().any(|l| l.starts_with("JOIN")));
        // Services link: the server offers SASL now.
        let out = feed(&mut c, now, &[":s CAP lever NEW :sasl=PLAIN"]);
        assert_eq!(out, ["CAP REQ sasl"]);
        let out = feed(&mut c, now, &[":s CAP lever ACK :sasl"]);
        assert_eq!(out, ["AUTHENTICATE PLAIN"]);
        feed(&mut c, now, &["AUTHENTICATE +"]);
        let out = feed(
            &mut c,
            now,
            &[
                ":s 900 lever lever!l@h lever :You are now logged in as lever",
                ":s 903 lever :SASL authentication successful",
            ],
        );
        assert!(c.is_ready());
        assert_eq!(
            out,
            ["JOIN #ops", "JOIN #dev"],
            "no CAP END after registration"
        );
        // Services go away: the capability goes with them.
        feed(&mut c, now, &[":s CAP lever DEL :sasl"]);
        assert!(!c.has_cap("sasl"));
        // account-tag withdrawn, then offered again: asked for again.
        feed(&mut c, now, &[":s CAP lever DEL :account-tag"]);
        assert!(!c.has_cap("account-tag"));
        let out = feed(&mut c, now, &[":s CAP lever NEW :account-tag"]);
        assert_eq!(out, ["CAP REQ account-tag"]);
        feed(&mut c, now, &[":s CAP lever ACK :account-tag"]);
        assert!(c.has_cap("account-tag"));
    }

    #[test]
    fn failed_sasl_falls_back_to_nickserv_before_joining() {
        let (mut c, now) =
            conn("sasl_account = \"lever\"\nsasl_password = \"bad\"\nnickserv_password = \"ns\"\n");
        feed(
            &mut c,
            now,
            &[":s CAP * LS :sasl", ":s CAP * ACK :sasl", "AUTHENTICATE +"],
        );
        let out = feed(&mut c, now, &[":s 904 lever :SASL authentication failed"]);
        assert_eq!(out, ["CAP END"]);
        let out = feed(
            &mut c,
            now,
            &[":s 001 lever :Welcome", ":s 422 lever :No MOTD"],
        );
        assert_eq!(out, ["PRIVMSG NickServ :IDENTIFY ns"]);
        assert!(!c.is_ready());
        let out = feed(
            &mut c,
            now,
            &[":NickServ!NickServ@services. NOTICE lever :You are now identified for lever."],
        );
        assert!(out.is_empty(), "waits for the server's 900 first: {out:?}");
        let out = feed(
            &mut c,
            now,
            &[":s 900 lever lever!l@h lever :You are now logged in as lever"],
        );
        assert_eq!(out, ["JOIN #ops", "JOIN #dev"]);
        // Without a 900, NickServ's word is enough after a short grace.
        let (mut c, now) = conn("nickserv_password = \"ns\"\n");
        feed(&mut c, now, &[":s 001 lever :hi", ":s 422 lever :No MOTD"]);
        let notice = ":NickServ!s@services. NOTICE lever :You are now identified for lever.";
        feed(&mut c, now, &[notice]);
        c.tick(now + Duration::from_secs(1)).unwrap();
        assert!(!c.is_ready());
        c.tick(now + LOGIN_GRACE + Duration::from_millis(1))
            .unwrap();
        assert!(c.is_ready());
    }

    #[test]
    fn identify_timeout_joins_anyway() {
        let (mut c, now) = conn("nickserv_password = \"ns\"\n");
        feed(
            &mut c,
            now,
            &[
                ":s 421 lever CAP :Unknown command",
                ":s 001 lever :hi",
                ":s 376 lever :end",
            ],
        );
        assert!(!c.is_ready());
        c.tick(now + IDENTIFY_TIMEOUT + Duration::from_secs(1))
            .unwrap();
        assert!(c.is_ready());
        let out: Vec<_> = c
            .take_output()
            .iter()
            .map(|l| l.trim_end().to_owned())
            .collect();
        assert_eq!(out, ["JOIN #ops", "JOIN #dev"]);
    }

    #[test]
    fn nick_in_use_tries_alternates_then_regains() {
        let (mut c, now) = conn("");
        feed(&mut c, now, &[]);
        let out = feed(&mut c, now, &[":s 433 * lever :Nickname is already in use"]);
        assert_eq!(out, ["NICK lever_"]);
        let out = feed(&mut c, now, &[":s 433 * lever_ :in use"]);
        assert_eq!(out, ["NICK lever__"]);
        let out = feed(&mut c, now, &[":s 433 * lever__ :in use"]);
        assert!(
            out[0].starts_with("NICK lever") && out[0].len() == "NICK lever0000".len(),
            "{out:?}"
        );
        let fallback = c.nick().to_owned();
        feed(
            &mut c,
            now,
            &[&format!(":s 001 {fallback} :hi"), ":s 376 x :end"],
        );
        // The holder quits: take the nick back at once.
        let out = feed(&mut c, now, &[":lever!u@h QUIT :bye"]);
        assert_eq!(out, ["NICK lever"]);
        feed(&mut c, now, &[&format!(":{fallback}!u@h NICK :lever")]);
        assert_eq!(c.nick(), "lever");
        // And on a timer otherwise.
        let (mut c, now) = conn("regain_interval = \"30s\"\n");
        feed(
            &mut c,
            now,
            &[
                ":s 433 * lever :in use",
                ":s 001 lever_ :hi",
                ":s 376 x :end",
            ],
        );
        c.tick(now + Duration::from_secs(31)).unwrap();
        let out: Vec<_> = c
            .take_output()
            .iter()
            .map(|l| l.trim_end().to_owned())
            .collect();
        assert!(out.contains(&"NICK lever".to_owned()), "{out:?}");
    }

    #[test]
    fn on_an_alternate_and_logged_in_lever_asks_services_for_its_nick_then_takes_it() {
        let (mut c, now) = conn("nickserv_password = \"ns\"\n");
        feed(
            &mut c,
            now,
            &[":s 433 * lever :in use", ":s 001 lever_ :hi"],
        );
        let out = feed(&mut c, now, &[":s 422 lever_ :No MOTD"]);
        assert_eq!(out, ["PRIVMSG NickServ :IDENTIFY ns"]);
        let out = feed(
            &mut c,
            now,
            &[
                ":NickServ!s@services. NOTICE lever_ :You are now identified for lever.",
                ":s 900 lever_ lever_!l@h lever :You are now logged in as lever",
            ],
        );
        assert_eq!(
            out,
            ["JOIN #ops", "JOIN #dev", "PRIVMSG NickServ :GHOST lever"]
        );
        // The ghost goes (lever may not see it go: they share no channel); lever takes the
        // nick shortly after, not a whole regain_interval later.
        c.tick(now + SERVICES_FREE_NICK).unwrap();
        let out: Vec<_> = c
            .take_output()
            .iter()
            .map(|l| l.trim_end().to_owned())
            .collect();
        assert_eq!(out, ["NICK lever"]);

        // Configured off, or not logged in: nothing is asked.
        for extra in ["nickserv_password = \"ns\"\nregain_command = \"\"\n", ""] {
            let (mut c, now) = conn(extra);
            feed(
                &mut c,
                now,
                &[
                    ":s 433 * lever :in use",
                    ":s 001 lever_ :hi",
                    ":s 422 lever_ :x",
                ],
            );
            let out = feed(
                &mut c,
                now,
                &[":s 900 lever_ lever_!l@h lever :You are now logged in as lever"],
            );
            assert!(
                !out.iter().any(|l| l.contains("GHOST")),
                "{extra:?}: {out:?}"
            );
        }
    }

    #[test]
    fn watchdog_pings_then_gives_up() {
        let (mut c, now) = conn("ping_interval = \"60s\"\nping_timeout = \"30s\"\n");
        feed(&mut c, now, &[":s 001 lever :hi", ":s 376 x :end"]);
        c.take_output();
        c.tick(now + Duration::from_secs(59)).unwrap();
        assert!(c.take_output().is_empty());
        c.tick(now + Duration::from_secs(61)).unwrap();
        assert!(c.take_output()[0].starts_with("PING lever-"));
        c.tick(now + Duration::from_secs(80)).unwrap();
        let err = c.tick(now + Duration::from_secs(92)).unwrap_err();
        assert!(err.0.contains("no traffic"), "{err:?}");
        // Any line in between resets it.
        let (mut c, now) = conn("");
        feed(&mut c, now, &[":s 001 lever :hi", ":s 376 x :end"]);
        c.tick(now + Duration::from_secs(61)).unwrap();
        c.handle(":s PONG s :lever-1", now + Duration::from_secs(62))
            .unwrap();
        c.tick(now + Duration::from_secs(100)).unwrap();
    }

    #[test]
    fn answers_server_pings_and_reports_errors() {
        let (mut c, now) = conn("");
        feed(&mut c, now, &[]);
        assert_eq!(feed(&mut c, now, &["PING :abc"]), ["PONG abc"]);
        let err = c
            .handle("ERROR :Closing link: (Excess Flood)", now)
            .unwrap_err();
        assert!(err.0.contains("Excess Flood"));
        let err = c.handle(":s 464 * :Password incorrect", now).unwrap_err();
        assert!(err.0.contains("irc.password"));
    }

    #[test]
    fn privmsgs_become_messages_with_the_tagged_account() {
        let (mut c, now) = conn("");
        feed(
            &mut c,
            now,
            &[
                ":s CAP * LS :account-tag",
                ":s CAP * ACK :account-tag",
                ":s 001 lever :hi",
                ":s 376 x :end",
            ],
        );
        c.take_output();
        let m = c
            .handle("@account=alice :alice!a@h PRIVMSG #ops :!deploy", now)
            .unwrap()
            .unwrap();
        assert_eq!(m.who.account.as_deref(), Some("alice"));
        assert_eq!(m.place, Place::Channel("#ops".into()));
        assert_eq!(&*m.me, "lever");
        let m = c
            .handle(":alice!a@h PRIVMSG lever :ping", now)
            .unwrap()
            .unwrap();
        assert_eq!(m.who.account, None, "no tag, no account");
        assert_eq!(m.place, Place::Private);
        assert!(c
            .handle(":lever!l@h PRIVMSG #ops :own echo", now)
            .unwrap()
            .is_none());
        assert!(c
            .handle(":irc.test PRIVMSG #ops :from a server", now)
            .unwrap()
            .is_none());
    }

    #[test]
    fn tracked_accounts_are_used_without_account_tag() {
        let (mut c, now) = conn("");
        feed(
            &mut c,
            now,
            &[
                ":s CAP * LS :extended-join account-notify",
                ":s CAP * ACK :extended-join account-notify",
                ":s 001 lever :hi",
                ":s 005 lever WHOX :are supported",
                ":s 376 x :end",
            ],
        );
        c.take_output();
        let out = feed(&mut c, now, &[":lever!~l@host JOIN #ops * :lever"]);
        assert_eq!(out, ["WHO #ops %tcna,42"]);
        feed(
            &mut c,
            now,
            &[
                ":s 354 lever 42 #ops bob bob",
                ":alice!a@h JOIN #ops alice :Alice",
                ":mallory!m@h JOIN #ops * :Mallory",
            ],
        );
        let who = |c: &mut Conn, line: &str| c.handle(line, now).unwrap().unwrap().who.account;
        assert_eq!(
            who(&mut c, ":alice!a@h PRIVMSG #ops :x").as_deref(),
            Some("alice")
        );
        assert_eq!(
            who(&mut c, ":bob!b@h PRIVMSG #ops :x").as_deref(),
            Some("bob")
        );
        assert_eq!(who(&mut c, ":mallory!m@h PRIVMSG #ops :x"), None);
        // alice leaves; mallory takes her nick: no rights follow the nick.
        feed(
            &mut c,
            now,
            &[":alice!a@h PART #ops", ":mallory!m@h NICK alice"],
        );
        assert_eq!(who(&mut c, ":alice!m@h PRIVMSG #ops :x"), None);
        feed(&mut c, now, &[":bob!b@h ACCOUNT *"]);
        assert_eq!(who(&mut c, ":bob!b@h PRIVMSG #ops :x"), None);
    }

    #[test]
    fn ctcp_is_answered_in_private_only_and_rate_limited() {
        let (mut c, now) = conn("");
        feed(&mut c, now, &[":s 001 lever :hi", ":s 376 x :end"]);
        c.take_output();
        assert!(c
            .handle(":eve!e@h PRIVMSG #ops :\x01VERSION\x01", now)
            .unwrap()
            .is_none());
        assert!(c.take_output().is_empty());
        assert!(c
            .handle(":eve!e@h PRIVMSG lever :\x01VERSION\x01", now)
            .unwrap()
            .is_none());
        assert_eq!(
            c.take_output(),
            ["NOTICE eve :\x01VERSION lever test\x01\r\n"]
        );
        c.handle(":eve!e@h PRIVMSG lever :\x01VERSION\x01", now)
            .unwrap();
        assert!(
            c.take_output().is_empty(),
            "second CTCP within the interval is ignored"
        );
    }

    #[test]
    fn refused_joins_and_kicks_are_retried() {
        let (mut c, now) = conn("ping_interval = \"1h\"\n");
        feed(
            &mut c,
            now,
            &[":s 001 lever :hi", ":s 376 x :end", ":lever!l@h JOIN #ops"],
        );
        c.take_output();
        feed(
            &mut c,
            now,
            &[":s 474 lever #dev :Cannot join channel (+b)"],
        );
        c.tick(now + Duration::from_secs(30)).unwrap();
        assert!(c.take_output().is_empty());
        c.tick(now + JOIN_RETRY + Duration::from_secs(1)).unwrap();
        assert_eq!(c.take_output(), ["JOIN #dev\r\n"]);
        feed(&mut c, now, &[":op!o@h KICK #ops lever :out"]);
        assert_eq!(c.joined(), 0);
        c.tick(now + KICK_REJOIN + Duration::from_secs(1)).unwrap();
        assert_eq!(c.take_output(), ["JOIN #ops\r\n"]);
    }

    #[test]
    fn split_budget_uses_the_prefix_the_server_will_add() {
        let (mut c, now) = conn("");
        let guess = c.max_text_bytes("PRIVMSG", "#ops");
        feed(
            &mut c,
            now,
            &[
                ":s 001 lever :hi",
                ":s 376 x :end",
                ":lever!~lever@127.0.0.1 JOIN #ops",
            ],
        );
        let exact = c.max_text_bytes("PRIVMSG", "#ops");
        assert!(guess < exact);
        let wire = format!(
            ":lever!~lever@127.0.0.1 PRIVMSG #ops :{}\r\n",
            "x".repeat(exact)
        );
        assert_eq!(wire.len(), 512);
    }

    #[test]
    fn secrets_are_redacted_from_logged_lines() {
        assert_eq!(redact("PASS hunter2\r\n"), "PASS <redacted>");
        assert_eq!(redact("AUTHENTICATE bGV2ZXIA"), "AUTHENTICATE <redacted>");
        assert_eq!(redact("AUTHENTICATE PLAIN"), "AUTHENTICATE PLAIN");
        assert_eq!(
            redact("PRIVMSG NickServ :IDENTIFY pw"),
            "PRIVMSG <redacted>"
        );
        assert_eq!(redact("JOIN #secret key"), "JOIN <redacted>");
        assert_eq!(redact("PRIVMSG #ops :hello"), "PRIVMSG #ops :hello");
    }
}
