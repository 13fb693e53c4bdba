//! The bot's services, shared by every command: config, access policy, outbox, store, events
//! and the deploy pipeline.
//!
//! Both front ends, the IRC session and the console, feed what they hear to the dispatcher
//! (`commands::dispatch`) with this struct; handlers reach the rest of lever only
//! through it.

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
    /// Prometheus and Graphite, for `!metric` and `!graph`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// lever's own counters, for `/metrics`.
    pub telemetry: Arc<crate::events::telemetry::Telemetry>,
    /// Commands from plugins; empty until [`crate::plugins::Plugins::reload`].
    pub plugins: crate::plugins::Plugins,
    /// The IRC connection, as far as the rest of lever needs to know it.
    pub irc: Arc<crate::irc::Status>,
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

    /// Starts the bot's services on `store`: the announcer, the hold clock, and the recovery
    /// of runs a previous lever left unfinished (announced once lever is in its channels).
    /// Must be called inside a tokio runtime.
    pub fn new(config: Arc<Config>, store: Arc<Store>) -> Result<Arc<Self>, StartError> {
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
        announce::spawn(config.clone(), &events, outbox.clone());
        let deploys = Deploys::new(
            config.clone(),
            store.clone(),
            events.clone(),
            activity.clone(),
        );
        let interrupted = deploys.recover()?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "runs left unfinished by the last stop are marked interrupted"
            );
        }
        deploys.start_hold_clock();
        let alerts = Alerts::new(config.clone(), deploys.clone(), events.clone());
        alerts.start_summaries();
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
            metrics,
            telemetry,
            plugins: crate::plugins::Plugins::new(config.clone()),
            irc: Arc::default(),
            config,
            started: SystemTime::now(),
        }))
    }
}
