//! The process: the services every command shares ([`bot`]), its two front ends (`lever run`
//! on IRC and HTTP in [`serve`], `lever console` in [`console`]) and lever's own metrics
//! ([`telemetry`], served at `GET /metrics`).

pub mod bot;
pub mod console;
pub mod serve;
pub mod telemetry;
