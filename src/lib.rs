//! lever: a chat-ops IRC bot after Flickr's "10 deploys per day".
//!
//! # Layout
//!
//! ```text
//!  IRC server ⇄ irc/       session: connect, CAP/SASL, reconnect, watchdog, throttle, splitting
//!  stdin/stdout ⇄ console  the same bot with the terminal as the channel
//!  HTTP ⇄ http/            hooks in (deploys, builds, alerts), JSON API, /metrics, health
//!        │ Message { who: Identity, place, text }            ▲ Outbox (ordered, bounded, fair)
//!        ▼                                                   │
//!  bot       the services every command shares
//!  commands/ the list of commands, the dispatcher, one file per command
//!  plugins/  commands in any language: executables asked for a manifest, run per command
//!        ▼ handlers call services, never IRC
//!  deploy/   targets, runs, holds: the one place that decides (backend/ runs a step)
//!  store/    SQLite: deploy log, holds, runs, steps: the source of truth
//!  alerts/   Alertmanager notifications (de-dup, caps, routes, auto-hold) and its API
//!  jenkins   Jenkins' remote API for !build
//!  metrics/  Prometheus/Graphite queries, sparklines, deploy markers and watches, !stats
//!        ▼ store first, then publish
//!  events    typed events to every subscriber → announce (channel lines) → outbox
//!  access    roles from nick!user@host masks and services accounts
//!  config/   bot.toml + LEVER_* environment, validated in one place
//!  process   child processes in groups of their own: stopped as a group, bounded output
//!  text      what may go on the wire: sanitising, splitting, durations
//! ```
//!
//! Rules that keep it simple: the IRC read loop never waits on a handler (each command runs in
//! its own task); handlers never touch IRC (they reply through the outbox or publish events);
//! nothing is announced that is not stored; the outbox outlives connections, so what is said
//! while disconnected goes out after reconnecting.

pub mod access;
pub mod activity;
pub mod alerts;
pub mod announce;
pub mod backend;
pub mod blocking;
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
pub mod metrics;
pub mod outbound;
pub mod outbox;
pub mod plugins;
pub mod process;
pub mod serve;
pub mod store;
pub mod telemetry;
pub mod text;
