//! `[queue]`: the push queue, PushBot's and harold's: whose turn it is to stage and deploy.

use std::time::Duration;

use serde::Deserialize;

use super::{duration, Invalid};

/// `[queue]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// How long the head of a queue has its turn ("the conch"); extended while their run goes
    /// on. Default: "55m".
    #[serde(default = "default_lease", with = "duration")]
    pub lease: Duration,
    /// How long before the turn ends the head is warned. Default: "5m".
    #[serde(default = "default_warn_before", with = "duration")]
    pub warn_before: Duration,
    /// Show each target's queue in its channels' topic (lever must be allowed to set it), at
    /// most one change a channel every 30 s; edits by people are left alone. Default: false.
    #[serde(default)]
    pub topic: bool,
    /// With `topic`: the least time between two topic changes of one channel. Default: "30s".
    #[serde(default = "default_topic_every", with = "duration")]
    pub topic_every: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            lease: default_lease(),
            warn_before: default_warn_before(),
            topic: false,
            topic_every: default_topic_every(),
        }
    }
}

fn default_lease() -> Duration {
    Duration::from_secs(55 * 60)
}

fn default_topic_every() -> Duration {
    Duration::from_secs(30)
}

fn default_warn_before() -> Duration {
    Duration::from_secs(5 * 60)
}

impl QueueConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if self.lease < Duration::from_secs(2) || self.lease > Duration::from_secs(24 * 3600) {
            return Err(Invalid::new("queue.lease", "must be between 2s and 24h"));
        }
        if self.warn_before >= self.lease {
            return Err(Invalid::new(
                "queue.warn_before",
                "must be shorter than queue.lease",
            ));
        }
        if self.topic_every < Duration::from_secs(1) {
            return Err(Invalid::new("queue.topic_every", "must be at least 1s"));
        }
        Ok(())
    }
}
