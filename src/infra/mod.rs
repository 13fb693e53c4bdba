//! What every part runs on: waits kept off the async runtime ([`blocking`]), work in flight
//! counted ([`activity`]) and what every outgoing HTTP client shares ([`http_client`]).

pub mod activity;
pub mod blocking;
pub mod http_client;
