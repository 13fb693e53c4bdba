//! Acting on the deploy page: stage, deploy (after a page that shows what will ship), hold and
//! unhold, for people a trusted proxy signs in ([`super::viewer`]) and `[access]` grants
//! (`"web:NAME"`).
//!
//! Each action makes the call `!stage`, `!deploy`, `!hold` or `!unhold` makes
//! ([`crate::deploy::Deploys`]): holds, deploy windows and the push queue are enforced there,
//! the deploy log records it "from the deploy page", and the channel hears it.
//!
//! A form post is carried out only when
//! - the proxy named someone (else the page is read-only for them),
//! - it was sent from the page's own origin (`Origin`, else `Referer`): another site's form
//!   is refused,
//! - it carries the page's token for that person (an HMAC of their name under a key lever
//!   draws at start: a page loaded before a restart asks to be reloaded),
//! - and they hold the role.
//!
//! Each form carries a key of its own: the same key again (a double click, a form sent twice)
//! gets the first answer, never a second run.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use hmac::{KeyInit, Mac};
use maud::html;
use serde::Deserialize;
use sha2::Sha256;

use super::page;
use super::viewer::{self, Peer};
use crate::access::Role;
use crate::bot::Bot;
use crate::chat::mask::CaseMapping;
use crate::chat::message::Identity;
use crate::chat::text::{clean_line, sanitize_line, truncate_chars};
use crate::deploy::{DeployError, DeployStart};
use crate::store::format_time;

/// How long a form's answer is kept for a second send of it, and how many are kept.
const REMEMBER: Duration = Duration::from_secs(10 * 60);
const REMEMBER_MAX: usize = 10_000;
/// A hold's reason, as `!hold` keeps it.
const MAX_REASON: usize = 200;

/// The deploy page's state: what it last read to show, and for people who act on it, the key
/// of their forms' tokens and the answers given to forms.
pub struct Dashboard {
    pub bot: Arc<Bot>,
    /// The last read of what `/` shows, shared by pages asking at once.
    pub shown: page::LastRead,
    /// Signs each person's form token; drawn at start, never stored or logged. `None` when no
    /// random bytes could be had: then no form is carried out.
    key: Option<[u8; 32]>,
    /// Answers by form key, so a form sent twice is carried out once. Held across an action,
    /// which also takes actions one at a time (they are people's clicks).
    answered: tokio::sync::Mutex<Answered>,
}

/// What the page may offer the person looking at it.
pub struct Controls {
    pub who: String,
    /// The form token for them.
    pub token: String,
    /// This rendering's form key (each form adds its own action to it).
    pub key: String,
    pub stage: bool,
    pub deploy: bool,
    pub hold: bool,
}

/// How an action was answered.
#[derive(Clone)]
enum Answer {
    /// Done: see where it shows.
    Done(String),
    Refused(StatusCode, String),
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Answer::Done(to) => Redirect::to(&to).into_response(),
            Answer::Refused(status, why) => refusal(status, &why),
        }
    }
}

#[derive(Default)]
struct Answered {
    by_key: HashMap<String, Answer>,
    order: VecDeque<(Instant, String)>,
}

impl Answered {
    fn remember(&mut self, key: String, answer: Answer) {
        let now = Instant::now();
        while let Some((at, old)) = self.order.front() {
            if now.duration_since(*at) < REMEMBER && self.order.len() < REMEMBER_MAX {
                break;
            }
            self.by_key.remove(old);
            self.order.pop_front();
        }
        self.order.push_back((now, key.clone()));
        self.by_key.insert(key, answer);
    }
}

/// A button's form: the token and key every form carries, and what some of them ask.
#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    /// The staged run the deploy page showed (deploy).
    staged: Option<i64>,
    /// "all" or a target (hold).
    target: Option<String>,
    reason: Option<String>,
}

impl Dashboard {
    pub fn new(bot: Arc<Bot>) -> Arc<Self> {
        let key = crate::infra::random::bytes::<32>()
            .inspect_err(|e| {
                // Without it the tokens could be guessed: buttons are off (every post refused).
                tracing::error!(error = %e, "cannot read /dev/urandom: the deploy page's buttons are off");
            })
            .ok();
        Arc::new(Dashboard {
            bot,
            shown: page::LastRead::default(),
            key,
            answered: tokio::sync::Mutex::default(),
        })
    }

    /// Who is looking, if a trusted proxy named them.
    pub fn viewer(&self, peer: &Peer, headers: &HeaderMap) -> Option<Identity> {
        viewer::identify(self.bot.config.dashboard.as_ref(), peer, headers)
    }

    /// The buttons for the person looking, if anyone is signed in and this lever acts (a
    /// standby's page is read-only: the active lever takes the actions).
    pub fn controls(&self, peer: &Peer, headers: &HeaderMap) -> Option<Controls> {
        let who = self.viewer(peer, headers)?;
        let acts = self.bot.role.acts() && self.key.is_some();
        let may = |role| acts && self.may(&who, role);
        Some(Controls {
            token: self.token(&who.nick).unwrap_or_default(),
            key: format!("{:032x}", fastrand::u128(..)),
            stage: may(Role::Stage),
            deploy: may(Role::Deploy),
            hold: may(Role::Hold),
            who: who.nick,
        })
    }

    fn may(&self, who: &Identity, role: Role) -> bool {
        self.bot.access.grants(who, CaseMapping::Ascii, role)
    }

    fn mac(&self, name: &str) -> Option<hmac::Hmac<Sha256>> {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(self.key.as_ref()?)
            .expect("HMAC takes a key of any length");
        mac.update(b"lever deploy page form\n");
        mac.update(name.as_bytes());
        Some(mac)
    }

    fn token(&self, name: &str) -> Option<String> {
        Some(hex::encode(self.mac(name)?.finalize().into_bytes()))
    }

    fn token_is_theirs(&self, name: &str, token: &str) -> bool {
        let Ok(sent) = hex::decode(token) else {
            return false;
        };
        self.mac(name)
            .is_some_and(|mac| mac.verify_slice(&sent).is_ok())
    }

    /// Who sent the form, once everything a post must show is checked; else the refusal.
    fn sender(
        &self,
        peer: &Peer,
        headers: &HeaderMap,
        form: &ActionForm,
        role: Role,
    ) -> Result<Identity, Answer> {
        let forbidden = |why: String| Answer::Refused(StatusCode::FORBIDDEN, why);
        let Some(config) = self.bot.config.dashboard.as_ref() else {
            return Err(forbidden(
                "The deploy page is read-only: lever has no [dashboard] to know who you are. \
                 Act on IRC, or see the README's \"Deploy page\" section to sign people in."
                    .into(),
            ));
        };
        let Some(who) = self.viewer(peer, headers) else {
            return Err(forbidden(format!(
                "You are not signed in, so the deploy page is read-only for you: lever acts only \
                 for people its trusted proxy names in {}.",
                config.user_header
            )));
        };
        same_origin(headers, config.origin()).map_err(forbidden)?;
        if !self.token_is_theirs(&who.nick, &form.csrf) {
            return Err(forbidden(
                "This page is out of date (lever restarted since it was loaded, or it was loaded \
                 by someone else): reload it and try again."
                    .into(),
            ));
        }
        if !self.may(&who, role) {
            return Err(forbidden(format!(
                "{} may not {role}: [access] {role} does not list \"web:{}\".",
                who.nick, who.nick
            )));
        }
        Ok(who)
    }

    /// Checks the post, then does `action` once per form key.
    async fn act(
        &self,
        (peer, headers): (&Peer, &HeaderMap),
        form: &ActionForm,
        role: Role,
        action: &str,
        run: impl FnOnce(&Identity) -> Result<Answer, DeployError>,
    ) -> Response {
        let who = match self.sender(peer, headers, form, role) {
            Ok(who) => who,
            Err(refused) => return refused.into_response(),
        };
        let key = form.key.trim();
        if key.len() < 16 || key.len() > 64 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return refusal(
                StatusCode::BAD_REQUEST,
                "The form has no key to tell a second send from a new action: reload the page.",
            );
        }
        let key = format!("{}/{key}/{action}", who.nick);
        let mut answered = self.answered.lock().await;
        if let Some(first) = answered.by_key.get(&key) {
            tracing::info!(by = %who.nick, action, "a form sent again: answered as the first time");
            return first.clone().into_response();
        }
        let answer = match run(&who) {
            Ok(answer) => answer,
            Err(DeployError::Refused(why)) => Answer::Refused(StatusCode::CONFLICT, why),
            // Not remembered: the same form may be sent again once the store answers.
            Err(e @ DeployError::Store(_)) => {
                return refusal(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
            }
        };
        if matches!(answer, Answer::Done(_)) {
            tracing::info!(by = %who.nick, action, "done on the deploy page");
        }
        answered.remember(key, answer.clone());
        answer.into_response()
    }
}

/// `POST /stage/{target}`: `!stage target`.
pub async fn stage(
    State(d): State<Arc<Dashboard>>,
    Path(target): Path<String>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    let action = format!("stage {target}");
    d.act((&peer, &headers), &form, Role::Stage, &action, |who| {
        d.bot.deploys.stage(&target, who)?;
        Ok(Answer::Done("/".into()))
    })
    .await
}

/// `GET /deploy/{target}`: what a deploy would ship, and the button that ships it.
pub async fn confirm_deploy(
    State(d): State<Arc<Dashboard>>,
    Path(target): Path<String>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let Some(controls) = d.controls(&peer, &headers).filter(|c| c.deploy) else {
        return refusal(
            StatusCode::FORBIDDEN,
            "Deploying from this page needs someone signed in with the deploy role.",
        );
    };
    let Some(config) = d.bot.config.targets.get(&target) else {
        return refusal(
            StatusCode::NOT_FOUND,
            &format!("There is no target '{}'.", truncate_chars(&target, 64)),
        );
    };
    let read = d
        .bot
        .deploys
        .status(&target)
        .and_then(|status| Ok((d.bot.deploys.changes(&target)?, status)));
    let (ships, status) = match read {
        Ok(read) => read,
        Err(DeployError::Refused(why)) => return refusal(StatusCode::CONFLICT, &why),
        Err(e) => return refusal(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let closed = config.schedule().check(jiff::Timestamp::now()).err();
    // Their own hold does not stop them, as on IRC.
    let me = Identity::web(&controls.who);
    let mine = |hold: &crate::store::Hold| crate::deploy::same_holder(hold, &me);
    page::page(
        &format!("Deploy {target}? · lever"),
        html! {
            p { a href="/" { "← lever" } }
            h2 { "Deploy " (target) "?" }
            p.ships { (ships) }
            @if status.staged.is_none() {
                p.failed { "Nothing is staged: stage " (target) " first." }
            }
            @for hold in &status.holds {
                p.failed {
                    "NO DEPLOY PLEASE: " (hold.scope()) " held by " (hold.by_nick) " since "
                    (format_time(hold.placed_at)) " UTC: " (hold.reason)
                    @if !mine(hold) { " — the deploy will be refused." }
                }
            }
            @if let Some(closed) = &closed {
                p.failed { (crate::deploy::closed_text(&target, config, closed)) }
            }
            @if let Some(active) = &status.active {
                p.failed { (active.user) " is " (active.phase_verb()) " " (target) " right now." }
            }
            @if let Some(staged) = &status.staged {
                form.confirm method="post" action={ "/deploy/" (target) } {
                    input type="hidden" name="csrf" value=(controls.token);
                    input type="hidden" name="key" value=(controls.key);
                    input type="hidden" name="staged" value=(staged.id);
                    button.go type="submit" { "Deploy " (target) " now" }
                    " "
                    a href="/" { "Cancel" }
                }
            }
        },
    )
    .into_response()
}

/// `POST /deploy/{target}`: `!deploy target`, if what is staged is still what the person saw.
pub async fn deploy(
    State(d): State<Arc<Dashboard>>,
    Path(target): Path<String>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    let action = format!("deploy {target}");
    d.act((&peer, &headers), &form, Role::Deploy, &action, |who| {
        let deploys = &d.bot.deploys;
        let staged = deploys.status(&target)?.staged;
        if staged.as_ref().map(|r| r.id) != form.staged {
            let now = staged.map_or("nothing".to_owned(), |r| {
                format!("#{} by {}", r.id, r.user)
            });
            return Ok(Answer::Refused(
                StatusCode::CONFLICT,
                format!(
                    "What is staged for {target} changed since you looked (now {now}): look again before deploying."
                ),
            ));
        }
        match deploys.deploy(&target, who, false, None)? {
            DeployStart::Started(_) => {}
            // The page they confirmed on showed what ships: that was the confirmation.
            DeployStart::NeedsConfirm { code, .. } => {
                deploys.confirm(&code, who)?;
            }
        }
        Ok(Answer::Done("/".into()))
    })
    .await
}

/// `POST /hold` (`target`: a target or "all", `reason`): `!hold target reason`.
pub async fn hold(
    State(d): State<Arc<Dashboard>>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    let target = form
        .target
        .as_deref()
        .filter(|t| *t != "all")
        .map(str::to_owned);
    let reason = clean_line(form.reason.as_deref().unwrap_or_default(), MAX_REASON);
    let action = format!("hold {}", target.as_deref().unwrap_or("all"));
    d.act((&peer, &headers), &form, Role::Hold, &action, |who| {
        if reason.is_empty() {
            return Ok(Answer::Refused(
                StatusCode::BAD_REQUEST,
                "Say why deploys are held: the reason goes into the deploy log.".into(),
            ));
        }
        d.bot.deploys.hold(target.as_deref(), who, &reason, None)?;
        Ok(Answer::Done("/".into()))
    })
    .await
}

/// `POST /unhold/{target}` (`all` for the hold on every target): `!unhold target`.
pub async fn unhold(
    State(d): State<Arc<Dashboard>>,
    Path(target): Path<String>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    let action = format!("unhold {target}");
    let scope = (target != "all").then_some(target.as_str());
    d.act((&peer, &headers), &form, Role::Hold, &action, |who| {
        d.bot.deploys.unhold(scope, who, true)?;
        Ok(Answer::Done("/".into()))
    })
    .await
}

/// A form sent from this page: its `Origin` (or, without one, its `Referer`) is `[dashboard]
/// url`'s origin or names the host the request was sent to.
fn same_origin(headers: &HeaderMap, configured: Option<&str>) -> Result<(), String> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let origin = match text(header::ORIGIN) {
        Some(origin) => origin.to_owned(),
        None => match text(header::REFERER) {
            Some(referer) => origin_of(referer),
            None => {
                return Err(
                    "The form came without an Origin or Referer header, so lever cannot \
                            tell it was sent from this page: refused."
                        .into(),
                )
            }
        },
    };
    let authority = origin.split_once("://").map(|(_, rest)| rest);
    let host = text(header::HOST);
    let ours = configured.is_some_and(|c| c.eq_ignore_ascii_case(&origin))
        || (authority.is_some()
            && authority.map(str::to_ascii_lowercase) == host.map(str::to_ascii_lowercase));
    if ours {
        return Ok(());
    }
    Err(format!(
        "The form was sent from {}, not from this page: refused (a form on another site cannot act here).",
        truncate_chars(&sanitize_line(&origin), 100)
    ))
}

/// `https://host:port` of a URL.
fn origin_of(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    format!("{scheme}://{}", &rest[..end])
}

/// A refusal, as a page that says why and leads back.
fn refusal(status: StatusCode, why: &str) -> Response {
    (
        status,
        page::page(
            "lever: not done",
            html! {
                p { a href="/" { "← lever" } }
                p.failed.refusal { (why) }
            },
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (header::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn a_form_must_come_from_the_page_it_acts_on() {
        let ok = |h: &[(&'static str, &str)], configured| same_origin(&headers(h), configured);
        assert!(ok(
            &[
                ("origin", "http://127.0.0.1:8080"),
                ("host", "127.0.0.1:8080")
            ],
            None
        )
        .is_ok());
        assert!(ok(
            &[
                ("origin", "http://DEPLOY.example"),
                ("host", "deploy.example")
            ],
            None
        )
        .is_ok());
        assert!(ok(
            &[
                ("referer", "http://127.0.0.1:8080/deploy/site?x=1"),
                ("host", "127.0.0.1:8080")
            ],
            None
        )
        .is_ok());
        assert!(ok(
            &[
                ("origin", "https://deploy.example.com"),
                ("host", "10.0.0.5:8080")
            ],
            Some("https://deploy.example.com")
        )
        .is_ok());
        let refused = ok(
            &[
                ("origin", "https://evil.example"),
                ("host", "127.0.0.1:8080"),
            ],
            None,
        );
        assert!(refused.unwrap_err().contains("https://evil.example"));
        assert!(ok(&[("origin", "null"), ("host", "127.0.0.1:8080")], None).is_err());
        assert!(ok(&[("host", "127.0.0.1:8080")], None).is_err());
        assert!(ok(&[("origin", "http://127.0.0.1:8080")], None).is_err());
    }

    #[test]
    fn answers_are_forgotten_after_a_while_or_when_too_many() {
        let mut answered = Answered::default();
        for i in 0..REMEMBER_MAX + 5 {
            answered.remember(format!("k{i}"), Answer::Done("/".into()));
        }
        assert_eq!(answered.by_key.len(), REMEMBER_MAX);
        assert!(!answered.by_key.contains_key("k0"));
        assert!(answered
            .by_key
            .contains_key(&format!("k{}", REMEMBER_MAX + 4)));
    }
}
