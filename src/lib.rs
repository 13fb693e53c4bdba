//! lever: a chat-ops IRC bot after Flickr's "10 deploys per day".
//!
//! # Layout
//!
//! ```text
//!  IRC server ⇄ irc/       session: connect, CAP/SASL, reconnect, watchdog, throttle, splitting
//!  stdin/stdout ⇄ console  the same bot with the terminal as the channel
//!        │ Message { who: Identity, place, text }            ▲ Outbox (ordered, bounded, fair)
//!        ▼                                                   │
//!  bot       the services every command shares (config, access, outbox, activity)
//!  commands/ the list of commands, the dispatcher, one file per command
//!  access    roles from nick!user@host masks and services accounts
//!  config    bot.toml + LEVER_* environment, validated in one place
//!  text      what may go on the wire: sanitising, splitting, durations
//! ```
//!
//! Rules that keep it simple: the IRC read loop never waits on a handler (each command runs in
//! its own task); handlers never touch IRC (they reply through the outbox); the outbox outlives
//! connections, so what is said while disconnected goes out after reconnecting.

pub mod access;
pub mod activity;
pub mod alerts;
pub mod announce;
pub mod backend;
pub mod bot;
pub mod commands;
pub mod config;
pub mod console;
pub mod deploy;
pub mod events;
pub mod http;
pub mod irc;
pub mod jenkins;
pub mod message;
pub mod outbox;
pub mod serve;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod tls;
