//! IRCv3 Strict Transport Security: a server that says `sts` in its capabilities wants its
//! clients on TLS. Offered on a plain connection (`sts=port=6697`), lever leaves at once and
//! comes back over TLS on that port; offered over TLS (`sts=duration=2592000`), lever keeps the
//! policy (in the store) and reaches that host only over TLS until it expires, across
//! restarts. `duration=0` ends it. A TLS connection that fails is retried over TLS, never
//! plain.

/// What an `sts` value asks of lever on this connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sts {
    /// Plain connection: reconnect over TLS on this port.
    Upgrade { port: u16 },
    /// TLS connection: keep (or renew) the policy for this long, in seconds.
    Keep { duration: u64 },
    /// TLS connection, `duration=0`: the policy ends.
    Forget,
    /// Nothing to do (a value without what this kind of connection needs).
    Nothing,
}

/// Reads the `sts` capability's value (`port=6697,duration=300,preload`) for a connection
/// that is `secure` or not.
pub fn decide(value: &str, secure: bool) -> Sts {
    let get = |key: &str| {
        value
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    };
    if !secure {
        // Over a plain connection only the port counts; a duration there could be forged.
        return match get("port").and_then(|p| p.parse::<u16>().ok()) {
            Some(port) if port > 0 => Sts::Upgrade { port },
            _ => Sts::Nothing,
        };
    }
    match get("duration").and_then(|d| d.parse::<u64>().ok()) {
        Some(0) => Sts::Forget,
        Some(duration) => Sts::Keep { duration },
        None => Sts::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_connections_upgrade_and_tls_connections_keep_the_policy() {
        assert_eq!(
            decide("port=6697,duration=300", false),
            Sts::Upgrade { port: 6697 }
        );
        assert_eq!(decide("duration=300", false), Sts::Nothing);
        assert_eq!(decide("port=0", false), Sts::Nothing);
        assert_eq!(decide("port=x", false), Sts::Nothing);
        assert_eq!(
            decide("duration=2592000,port=6697,preload", true),
            Sts::Keep {
                duration: 2_592_000
            }
        );
        assert_eq!(decide("duration=0", true), Sts::Forget);
        assert_eq!(decide("port=6697", true), Sts::Nothing);
    }
}
