//! What every part runs on: waits kept off the async runtime ([`blocking`]), work in flight
//! counted ([`activity`]), what every outgoing HTTP client shares ([`http_client`]), the
//! start-up code given back once lever is up ([`resident`]), and unpredictable bytes
//! ([`random`]).

pub mod activity;
pub mod blocking;
pub mod http_client;
pub mod random;
pub mod resident;
