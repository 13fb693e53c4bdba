//! Feature flags and contingency switches (Flickr's fourth tool): declared in `[flags]`, their
//! state in the store, changed from the channel or the API with the deploy log as the audit
//! trail, and evaluated for applications over OpenFeature's OFREP.
//!
//! [`Flags`] is the one place a flag changes: it checks the change against the flag's
//! declaration, writes the state and its log entry in one fenced transaction, publishes the
//! event (announced like a hold), and swaps in a new [`Snapshot`]. Evaluations read a
//! snapshot, never the store, so they cost a hash lookup; levers that did not make a change
//! (standbys, or after a takeover) load the new state within a second.
//!
//! - [`eval`]: one flag for one evaluation context, flagd-compatible rollout buckets
//! - [`flagd`]: the state as a flagd flag definition file

pub mod eval;
pub mod flagd;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use parking_lot::{Mutex, RwLock};

use crate::chat::message::Identity;
use crate::chat::text::human_duration;
use crate::config::{Config, FlagConfig, FlagDefault};
use crate::events::{Event, Events};
use crate::store::flags::FlagState;
use crate::store::log::NewEntry;
use crate::store::{format_time, now_ms, LogEntry, LogKind, Store, StoreError};

/// How often a lever looks for changes another lever made.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// How long a `!kill` waits for its `!confirm`.
const KILL_CONFIRM_WITHIN: Duration = Duration::from_secs(120);

/// A flag as declared: its variants (an on/off flag's are `on` = true and `off` = false).
#[derive(Debug, Clone, PartialEq)]
pub struct FlagDef {
    pub key: String,
    pub description: String,
    /// On/off, rather than variants of its own.
    pub boolean: bool,
    pub variants: IndexMap<String, serde_json::Value>,
    /// The variant served when nothing else applies, and a contingency switch's safe value.
    pub default: String,
    pub contingency: bool,
}

impl FlagDef {
    pub fn new(key: &str, config: &FlagConfig) -> Self {
        let (boolean, variants, default) = match &config.default {
            FlagDefault::On(on) => (
                true,
                IndexMap::from([
                    ("on".to_owned(), serde_json::Value::Bool(true)),
                    ("off".to_owned(), serde_json::Value::Bool(false)),
                ]),
                if *on { "on" } else { "off" }.to_owned(),
            ),
            FlagDefault::Variant(v) => (false, config.variants.clone(), v.clone()),
        };
        Self {
            key: key.to_owned(),
            description: config.description.clone(),
            boolean,
            variants,
            default,
            contingency: config.contingency,
        }
    }

    /// The value of `variant` (one of its own: states are checked against the declaration).
    pub fn value(&self, variant: &str) -> &serde_json::Value {
        static NULL: serde_json::Value = serde_json::Value::Null;
        self.variants.get(variant).unwrap_or(&NULL)
    }

    /// What a rollout's share and the beta list get: the variant served, or `on`.
    pub fn treatment<'a>(&'a self, state: &'a FlagState) -> &'a str {
        if self.boolean {
            "on"
        } else {
            &state.variant
        }
    }

    /// The state of a flag never changed: its default, for everyone.
    pub fn initial(&self) -> FlagState {
        FlagState {
            key: self.key.clone(),
            variant: self.default.clone(),
            enabled: true,
            rollout: None,
            beta: Vec::new(),
            version: 0,
            changed_by: String::new(),
            changed_at: 0,
            reason: String::new(),
        }
    }
}

/// Every flag's state at one moment, and the tag that names that moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Moves on at every change (the sum of the flags' versions).
    pub generation: i64,
    pub states: IndexMap<String, FlagState>,
    /// `"<declarations' digest>-<generation>"`: the bulk evaluation's ETag.
    pub etag: String,
}

/// A change asked for, from the channel or the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Everyone gets this variant (`on`/`off` for an on/off flag); the rollout ends.
    Serve(String),
    /// This share of targeting keys gets the variant (an on/off flag: `on`); the rest the
    /// default.
    Rollout {
        variant: Option<String>,
        percent: u8,
    },
    /// These targeting keys always get the flag (none: nobody).
    Beta(Vec<String>),
    Enable,
    Disable,
    /// A contingency switch to its safe value: the default, for everyone, no beta.
    Kill,
}

/// Why a flag could not be changed or read.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// No such flag (with the closest name, if one is close).
    #[error("no flag '{name}'{}", .close.as_ref().map(|c| format!(" (did you mean {c}?)")).unwrap_or_default())]
    Unknown { name: String, close: Option<String> },
    /// What was asked does not fit the flag: said to the user as is.
    #[error("{0}")]
    Refused(String),
    /// Another change came first (the version the caller had is not the flag's any more).
    #[error("{key} changed meanwhile: it is at version {version} now; read it again, then retry")]
    Conflict { key: String, version: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A `!kill` waiting for its `!confirm`.
#[derive(Debug, Clone)]
struct PendingKill {
    key: String,
    who: Identity,
    reason: String,
    expires: Instant,
}

/// The flags service.
pub struct Flags {
    defs: IndexMap<String, FlagDef>,
    digest: String,
    store: Arc<Store>,
    events: Events,
    snapshot: RwLock<Arc<Snapshot>>,
    kills: Mutex<HashMap<String, PendingKill>>,
    /// Where the flagd export goes after each change, if anywhere.
    file: Option<std::path::PathBuf>,
}

impl Flags {
    /// The service for `config`'s flags on `store`, with their state as the store has it now
    /// (the defaults if the store cannot be read; the refresh catches up).
    pub fn new(config: &Config, store: Arc<Store>, events: Events) -> Arc<Self> {
        let defs: IndexMap<String, FlagDef> = config
            .flags
            .flags
            .iter()
            .map(|(key, flag)| (key.clone(), FlagDef::new(key, flag)))
            .collect();
        let digest = format!("{:08x}", digest(&defs));
        let flags = Arc::new(Self {
            snapshot: RwLock::new(Arc::new(Snapshot {
                generation: 0,
                states: defs
                    .values()
                    .map(|d| (d.key.clone(), d.initial()))
                    .collect(),
                etag: format!("\"{digest}-0\""),
            })),
            defs,
            digest,
            store,
            events,
            kills: Mutex::default(),
            file: config.flags.file.as_ref().map(|f| config.resolve(f)),
        });
        if !flags.defs.is_empty() {
            if let Err(e) = flags.reload() {
                tracing::warn!(error = %e, "cannot read the flags' state yet; serving their defaults until the store answers");
            }
        }
        flags
    }

    /// The declared flags, in config order.
    pub fn defs(&self) -> &IndexMap<String, FlagDef> {
        &self.defs
    }

    /// The flag named `name`, or why not (with a did-you-mean).
    pub fn def(&self, name: &str) -> Result<&FlagDef, FlagError> {
        self.defs.get(name).ok_or_else(|| FlagError::Unknown {
            name: crate::chat::text::truncate_chars(name, 40).into_owned(),
            close: self
                .defs
                .keys()
                .map(|k| (strsim::damerau_levenshtein(&name.to_lowercase(), k), k))
                .filter(|(d, k)| *d <= 2 && *d < k.len())
                .min_by_key(|(d, _)| *d)
                .map(|(_, k)| k.clone()),
        })
    }

    /// The state now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().clone()
    }

    /// Changes flag `key` as asked by `by`, if it is still at `expected` (a version) when one is
    /// given: stored with its log entry, announced, and served from now on.
    pub fn change(
        &self,
        key: &str,
        change: &Change,
        by: &str,
        reason: &str,
        expected: Option<i64>,
    ) -> Result<FlagState, FlagError> {
        let def = self.def(key)?;
        let current = self.current(key)?;
        if expected.is_some_and(|v| v != current.version) {
            return Err(FlagError::Conflict {
                key: key.to_owned(),
                version: current.version,
            });
        }
        let next = apply(def, &current, change, by, reason)?;
        let text = log_text(def, &next, change, reason);
        let entry = NewEntry {
            user: by,
            target: None,
            kind: LogKind::Flag,
            text: &text,
            run_id: None,
            announce: true,
        };
        let Some(entry) = self.store.save_flag(&next, &entry)? else {
            let version = self.current(key).map_or(current.version + 1, |s| s.version);
            return Err(FlagError::Conflict {
                key: key.to_owned(),
                version,
            });
        };
        self.put(next.clone());
        self.events.publish(Event::FlagChanged {
            state: next.clone(),
            entry,
        });
        Ok(next)
    }

    /// The stored state of `key` (the store, not the snapshot: a change starts from the truth).
    fn current(&self, key: &str) -> Result<FlagState, FlagError> {
        let def = self.def(key)?;
        let stored = self.store.flag_states()?;
        Ok(stored
            .into_iter()
            .find(|s| s.key == key)
            .unwrap_or_else(|| def.initial()))
    }

    /// `!kill`: asks `who` to confirm turning contingency switch `key` to its safe value; the
    /// code to confirm with.
    pub fn ask_kill(&self, key: &str, who: &Identity, reason: &str) -> Result<String, FlagError> {
        let def = self.def(key)?;
        if !def.contingency {
            return Err(FlagError::Refused(format!(
                "{key} is not a contingency switch (contingency = true in its [flags.{key}]); use !flag {key} {} to change it",
                def.default
            )));
        }
        let mut kills = self.kills.lock();
        kills.retain(|_, k| k.expires > Instant::now());
        let code = loop {
            const ALPHABET: &[u8] = b"ACDEFGHJKLMNPQRTUVWXY34679";
            let code: String = (0..6)
                .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
                .collect();
            if !kills.contains_key(&code) {
                break code;
            }
        };
        kills.insert(
            code.clone(),
            PendingKill {
                key: key.to_owned(),
                who: who.clone(),
                reason: reason.to_owned(),
                expires: Instant::now() + KILL_CONFIRM_WITHIN,
            },
        );
        Ok(code)
    }

    /// `!confirm <code>` for a `!kill`: `None` if no kill waits for that code.
    pub fn confirm_kill(&self, code: &str, who: &Identity) -> Option<Result<FlagState, FlagError>> {
        let code = code.to_uppercase();
        let pending = {
            let mut kills = self.kills.lock();
            let pending = kills.get(&code)?.clone();
            if pending.expires <= Instant::now() {
                kills.remove(&code);
                return Some(Err(FlagError::Refused(format!(
                    "the kill of {} waited too long for its confirmation; !kill it again",
                    pending.key
                ))));
            }
            if !crate::deploy::same_person(&pending.who, who) {
                return Some(Err(FlagError::Refused(format!(
                    "only {} can confirm the kill of {}",
                    pending.who.nick, pending.key
                ))));
            }
            kills.remove(&code);
            pending
        };
        Some(self.change(
            &pending.key,
            &Change::Kill,
            &pending.who.nick,
            &pending.reason,
            None,
        ))
    }

    /// `key`'s changes, newest first, from the deploy log.
    pub fn history(&self, key: &str, limit: usize) -> Result<Vec<LogEntry>, FlagError> {
        self.def(key)?;
        let prefix = format!("FLAG {key} ");
        let found = self
            .store
            .log_between(&[LogKind::Flag], 0, i64::MAX)?
            .into_iter()
            .rev()
            .filter(|e| e.text.starts_with(&prefix))
            .take(limit)
            .collect();
        Ok(found)
    }

    /// Serves `state` from now on (a change this lever made).
    fn put(&self, state: FlagState) {
        {
            let mut snapshot = self.snapshot.write();
            let mut next = (**snapshot).clone();
            next.generation += 1;
            next.etag = format!("\"{}-{}\"", self.digest, next.generation);
            next.states.insert(state.key.clone(), state);
            *snapshot = Arc::new(next);
        }
        self.write_file();
    }

    /// Loads every flag's state from the store.
    fn reload(&self) -> Result<(), StoreError> {
        let generation = self.store.flags_generation()?;
        let stored = self.store.flag_states()?;
        let mut states: IndexMap<String, FlagState> = self
            .defs
            .values()
            .map(|d| (d.key.clone(), d.initial()))
            .collect();
        for state in stored {
            // A flag since removed from the config is not served; one whose variant is gone
            // serves its default.
            if let Some(def) = self.defs.get(&state.key) {
                let fits = def.variants.contains_key(&state.variant);
                states.insert(state.key.clone(), if fits { state } else { def.initial() });
            }
        }
        *self.snapshot.write() = Arc::new(Snapshot {
            generation,
            states,
            etag: format!("\"{}-{generation}\"", self.digest),
        });
        self.write_file();
        Ok(())
    }

    /// Loads the state again whenever another lever changed a flag (every lever runs this:
    /// standbys serve evaluations too).
    pub fn start_refresh(self: &Arc<Self>) {
        if self.defs.is_empty() {
            return;
        }
        let flags = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(REFRESH_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let seen = flags.snapshot().generation;
                match flags.store.flags_generation() {
                    Ok(now) if now != seen => {
                        if let Err(e) = flags.reload() {
                            tracing::warn!(error = %e, "cannot load the flags' new state yet");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "cannot check the flags' state"),
                }
            }
        });
    }

    /// Writes the flagd export to `[flags] file`, atomically (a reader never sees half).
    fn write_file(&self) {
        let Some(path) = &self.file else {
            return;
        };
        let text = flagd::export(&self.defs, &self.snapshot());
        let tmp = path.with_extension("json.tmp");
        let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            tracing::error!(path = %path.display(), error = %e, "cannot write the flagd export ([flags] file)");
        }
    }
}

/// The state `change` makes of `current`, checked against the declaration.
fn apply(
    def: &FlagDef,
    current: &FlagState,
    change: &Change,
    by: &str,
    reason: &str,
) -> Result<FlagState, FlagError> {
    let mut next = FlagState {
        version: current.version + 1,
        changed_by: by.to_owned(),
        changed_at: now_ms(),
        reason: reason.to_owned(),
        ..current.clone()
    };
    let known = |variant: &str| -> Result<String, FlagError> {
        if def.variants.contains_key(variant) {
            return Ok(variant.to_owned());
        }
        let names: Vec<&str> = def.variants.keys().map(String::as_str).collect();
        Err(FlagError::Refused(format!(
            "{} has no variant '{}'; say one of {}",
            def.key,
            crate::chat::text::truncate_chars(variant, 32),
            names.join(", ")
        )))
    };
    match change {
        Change::Serve(variant) => {
            next.variant = known(variant)?;
            next.rollout = None;
        }
        Change::Rollout { variant, percent } => {
            if *percent > 100 {
                return Err(FlagError::Refused(
                    "a rollout is a percentage from 0% to 100%".into(),
                ));
            }
            next.variant = match (variant, def.boolean) {
                (Some(v), _) => known(v)?,
                (None, true) => "on".to_owned(),
                (None, false) => next.variant,
            };
            if next.variant == def.default {
                return Err(FlagError::Refused(format!(
                    "{} already serves {} to everyone else; name the variant to roll out: !flag {} <variant> {percent}%",
                    def.key, def.default, def.key
                )));
            }
            next.rollout = Some(*percent);
        }
        Change::Beta(keys) => next.beta = keys.clone(),
        Change::Enable => next.enabled = true,
        Change::Disable => next.enabled = false,
        Change::Kill => {
            next.variant = def.default.clone();
            next.rollout = None;
            next.beta = Vec::new();
            next.enabled = true;
        }
    }
    Ok(next)
}

/// The deploy log's line for a change: `FLAG video off (transcoder melting)`.
pub fn log_text(def: &FlagDef, next: &FlagState, change: &Change, reason: &str) -> String {
    let what = match change {
        Change::Serve(v) => v.clone(),
        Change::Rollout { percent, .. } => format!("{} {percent}%", next.variant),
        Change::Beta(keys) if keys.is_empty() => "beta none".to_owned(),
        Change::Beta(keys) => format!("beta {}", keys.join(",")),
        Change::Enable => "enabled".to_owned(),
        Change::Disable => "disabled".to_owned(),
        Change::Kill => format!("KILLED → {}", def.default),
    };
    match reason.is_empty() {
        true => format!("FLAG {} {what}", def.key),
        false => format!("FLAG {} {what} ({reason})", def.key),
    }
}

/// A digest of the declarations, so a change of config changes every ETag.
fn digest(defs: &IndexMap<String, FlagDef>) -> u32 {
    let text = format!("{defs:?}");
    mur3::murmurhash3_x86_32(text.as_bytes(), 0)
}

/// `video: on for 10% of targeting keys and beta alice, bob (off otherwise)`; in full, with
/// who set it, when and why, its version, and what it is.
pub fn describe(def: &FlagDef, state: &FlagState, full: bool) -> String {
    let mut text = format!("{}: ", def.key);
    if !state.enabled {
        text.push_str(&format!("DISABLED (serves {})", def.default));
    } else {
        let treated = def.treatment(state);
        let mut who = Vec::new();
        if let Some(p) = state.rollout {
            who.push(format!("{p}% of targeting keys"));
        }
        if !state.beta.is_empty() {
            who.push(format!("beta {}", state.beta.join(", ")));
        }
        match who.is_empty() {
            true => text.push_str(&state.variant),
            false => text.push_str(&format!(
                "{treated} for {} ({} otherwise)",
                who.join(" and "),
                if state.rollout.is_some() {
                    &def.default
                } else {
                    &state.variant
                }
            )),
        }
    }
    if def.contingency {
        text.push_str(&format!(" · contingency switch (safe: {})", def.default));
    }
    if !full {
        return text;
    }
    if state.version == 0 {
        text.push_str(" · never changed (its default)");
    } else {
        let ago = Duration::from_millis((now_ms() - state.changed_at).max(0) as u64);
        text.push_str(&format!(
            " · set by {} at {} UTC ({} ago)",
            state.changed_by,
            format_time(state.changed_at),
            human_duration(ago)
        ));
        if !state.reason.is_empty() {
            text.push_str(&format!(": {}", state.reason));
        }
        text.push_str(&format!(" · version {}", state.version));
    }
    if !def.description.is_empty() {
        text.push_str(&format!(" — {}", def.description));
    }
    text
}
