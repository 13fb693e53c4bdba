//! The bot's services, shared by every command: config, access policy, outbox, store, events
//! and the deploy pipeline.
//!
//! Both front ends, the IRC session and the console, feed what they hear to the dispatcher
//! (`commands::dispatch`) with this struct; handlers reach the rest of lever only
//! through it.

pub mod role;

pub use role::{Part, Role};

use std::sync::Arc;
use std::time::SystemTime;

use crate::access::Access;
use crate::alerts::Alerts;
use crate::chat::outbox::Outbox;
use crate::config::{Config, ConfigError};
use crate::deploy::Deploys;
use crate::events::announce;
use crate::events::Events;
use crate::infra::activity::Activity;
use crate::store::{Store, StoreError};

/// lever's version string, as `!version` and CTCP VERSION report it.
pub const VERSION: &str = concat!("lever ", env!("CARGO_PKG_VERSION"));

/// Why the bot could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Http(String),
}

pub struct Bot {
    pub config: Arc<Config>,
    pub access: Access,
    pub outbox: Outbox,
    /// Work in flight (command tasks, runs, undelivered events), for the piped console.
    pub activity: Activity,
    pub store: Arc<Store>,
    pub events: Events,
    pub deploys: Arc<Deploys>,
    /// Alertmanager's notifications, de-duplicated and rate-capped.
    pub alerts: Arc<Alerts>,
    /// Feature flags and contingency switches.
    pub flags: Arc<crate::flags::Flags>,
    /// Prometheus and Graphite, for `!metric` and `!graph`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// lever's own counters, for `/metrics`.
    pub telemetry: Arc<crate::events::telemetry::Telemetry>,
    /// Commands from plugins; empty until [`crate::plugins::Plugins::reload`].
    pub plugins: crate::plugins::Plugins,
    /// The IRC connection, as far as the rest of lever needs to know it.
    pub irc: Arc<crate::irc::Status>,
    /// Alone, active or standby.
    pub role: role::Role,
    pub started: SystemTime,
}

impl Bot {
    /// Opens the store named in the config and starts the bot's services.
    pub fn open(config: Arc<Config>) -> Result<Arc<Self>, StartError> {
        let store = Self::open_store(&config)?;
        Self::new(config, store)
    }

    /// Opens the store the config names: its SQLite file, or its PostgreSQL database.
    pub fn open_store(config: &Config) -> Result<Arc<Store>, StartError> {
        let settings = &config.store;
        let store = match &settings.url {
            Some(url) => Store::open_postgres(
                url,
                settings.password.as_ref().map(|p| p.expose()),
                settings.lock_wait,
            )?,
            None => Store::open_with(&config.resolve(&settings.path), settings.lock_wait)?,
        };
        tracing::info!(store = %store.location(), engine = store.engine(), "store open");
        Ok(Arc::new(store))
    }

    /// The bot on `store`, acting at once: [`Bot::standing_by`], then [`Bot::take_charge`].
    /// Must be called inside a tokio runtime.
    pub fn new(config: Arc<Config>, store: Arc<Store>) -> Result<Arc<Self>, StartError> {
        // A store no other lever shares is this lever's alone; a shared one is fenced by now
        // with the lease this lever holds (the console takes it first).
        let part = match store.fenced() {
            Some(fence) => Part::Active { epoch: fence.epoch },
            None => Part::Alone,
        };
        let bot = Self::standing_by(config, store, part)?;
        bot.take_charge()?;
        Ok(bot)
    }

    /// Builds the bot's services on `store` without acting: what a standby needs to answer
    /// reads (HTTP), and the subscribers that only react to what an active lever does (the
    /// announcer, counters, deploy markers and watches). Must be called inside a tokio runtime.
    pub fn standing_by(
        config: Arc<Config>,
        store: Arc<Store>,
        part: Part,
    ) -> Result<Arc<Self>, StartError> {
        let access = Access::from_config(config.access.as_ref()).map_err(|(key, message)| {
            ConfigError::Invalid {
                origin: config.origin.clone(),
                key,
                message,
            }
        })?;
        let outbox = Outbox::new(config.irc.queue_limit);
        let activity = Activity::default();
        let events = Events::new(activity.clone());
        announce::spawn(config.clone(), &events, outbox.clone(), store.clone());
        let deploys = Deploys::new(
            config.clone(),
            store.clone(),
            events.clone(),
            activity.clone(),
        );
        let alerts = Alerts::new(config.clone(), deploys.clone(), events.clone());
        // Every lever serves evaluations, standbys too: each follows the store's state.
        let flags = crate::flags::Flags::new(&config, store.clone(), events.clone());
        flags.start_refresh();
        let telemetry = crate::events::telemetry::Telemetry::new();
        telemetry.count_events(&events);
        let metrics = Arc::new(crate::metrics::Metrics::new(config.clone()));
        crate::metrics::markers::spawn(config.clone(), &events, telemetry.clone());
        crate::metrics::watch::Watcher::spawn(
            config.clone(),
            metrics.clone(),
            store.clone(),
            deploys.clone(),
            &events,
        );
        Ok(Arc::new(Self {
            access,
            outbox,
            activity,
            store,
            events,
            deploys,
            alerts,
            flags,
            metrics,
            telemetry,
            plugins: crate::plugins::Plugins::new(config.clone()),
            irc: Arc::default(),
            role: Role::new(config.store.node_name(), part),
            config,
            started: SystemTime::now(),
        }))
    }

    /// Starts acting, once this lever may (alone on its store, or holding the lease): says
    /// what the last lever stored and did not say, finishes the runs it left, and starts the
    /// clocks (hold expiry and reminders, alert summaries, late run ends).
    pub fn take_charge(&self) -> Result<(), StartError> {
        // Before this lever writes anything: what is pending now was the last one's.
        let late = announce::replay(&self.config, &self.store, &self.outbox)?;
        if late > 0 {
            tracing::warn!(
                entries = late,
                "the deploy log holds entries the last lever did not announce; saying them now"
            );
        }
        let interrupted = self.deploys.recover()?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "runs left unfinished by the last stop are marked interrupted"
            );
        }
        self.deploys.start_clocks();
        self.alerts.start_summaries();
        self.alerts.start_inbox();
        Ok(())
    }
}
