//! IRCv3 STS policies lever has learned: which IRC hosts must be reached over TLS, on which
//! port, until when. Kept in the store so a restart (or a standby taking over) honours them
//! for their whole duration, as the specification asks.

use super::sql::params;
use super::{now_ms, Millis, Store, StoreError};

/// One host's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsPolicy {
    pub host: String,
    pub port: u16,
    pub expires_at: Millis,
}

impl Store {
    /// `host`'s policy, if one is in force.
    pub fn sts_policy(&self, host: &str) -> Result<Option<StsPolicy>, StoreError> {
        let host = host.to_ascii_lowercase();
        self.read(|db| {
            let Some(row) = db.query_opt(
                "SELECT host, port, expires_at FROM sts WHERE host = ?1 AND expires_at > ?2",
                params![host.as_str(), now_ms()],
            )?
            else {
                return Ok(None);
            };
            let port: i64 = row.get(1)?;
            Ok(Some(StsPolicy {
                host: row.get(0)?,
                port: u16::try_from(port).unwrap_or(6697),
                expires_at: row.get(2)?,
            }))
        })
    }

    /// Records (or renews) a policy.
    pub fn save_sts_policy(&self, policy: &StsPolicy) -> Result<(), StoreError> {
        let host = policy.host.to_ascii_lowercase();
        self.write(|db| {
            db.execute(
                "INSERT INTO sts (host, port, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (host) DO UPDATE SET port = excluded.port, expires_at = excluded.expires_at",
                params![host.as_str(), i64::from(policy.port), policy.expires_at],
            )?;
            Ok(())
        })
    }

    /// Forgets `host`'s policy (the server said `duration=0`).
    pub fn drop_sts_policy(&self, host: &str) -> Result<(), StoreError> {
        let host = host.to_ascii_lowercase();
        self.write(|db| {
            db.execute("DELETE FROM sts WHERE host = ?1", params![host.as_str()])?;
            Ok(())
        })
    }
}
