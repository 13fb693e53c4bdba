//! The bot's services, shared by every command: config, access policy, outbox, activity.
//!
//! Both front ends, the IRC session and the console, feed [`Message`]s to [`Bot::handle`];
//! handlers reach the rest of lever only through this struct.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::task::JoinHandle;

use crate::access::Access;
use crate::activity::Activity;
use crate::commands;
use crate::config::{Config, ConfigError};
use crate::message::Message;
use crate::outbox::Outbox;

/// lever's version string, as `!version` and CTCP VERSION report it.
pub const VERSION: &str = concat!("lever ", env!("CARGO_PKG_VERSION"));

pub struct Bot {
    pub config: Arc<Config>,
    pub access: Access,
    pub outbox: Outbox,
    /// Work in flight (command tasks; later, runs), for the piped console.
    pub activity: Activity,
    pub started: SystemTime,
}

impl Bot {
    /// Builds the services from a config.
    pub fn new(config: Arc<Config>) -> Result<Arc<Self>, ConfigError> {
        let access = Access::from_config(config.access.as_ref()).map_err(|(key, message)| {
            ConfigError::Invalid {
                origin: config.origin.clone(),
                key,
                message,
            }
        })?;
        let outbox = Outbox::new(config.irc.queue_limit);
        Ok(Arc::new(Self {
            config,
            access,
            outbox,
            activity: Activity::default(),
            started: SystemTime::now(),
        }))
    }

    /// Handles one chat line. Never blocks: a command runs in a task of its own, whose handle
    /// is returned.
    pub fn handle(self: &Arc<Self>, msg: Message) -> Option<JoinHandle<()>> {
        commands::dispatch(self, msg)
    }
}
