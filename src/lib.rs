//! lever: a chat-ops IRC bot after Flickr's "10 deploys per day".
//!
//! # Layout
//!
//! Folders are layers; an arrow only ever points down the list (a module never imports from a
//! layer above it).
//!
//! ```text
//!  app/       the process: bot (the services every command shares), serve (`lever run`: IRC +
//!             HTTP until a signal), console (`lever console`), telemetry (lever's own /metrics)
//!  irc/       IRC session: connect, CAP/SASL, reconnect, watchdog, throttle, splitting, accounts
//!  http/      hooks in (deploys, builds, alerts), JSON API, /metrics, health; HMAC auth
//!  commands/  the list of commands, the dispatcher, one file per command (parse, then run)
//!  plugins/   commands in any language: executables asked for a manifest, run per command
//!  events/    the bus: typed events after they are stored → announce (their words) → outbox
//!  deploy/    targets, runs, holds: the one place that decides; backend/ runs a step (local
//!             argv, HTTP engine, Jenkins job)
//!  alerts/    Alertmanager notifications (de-dup, caps, routes, auto-hold) and its API
//!  metrics/   Prometheus/Graphite queries, sparklines, deploy markers and watches, !stats
//!  jenkins/   Jenkins' remote API (trigger, queue, build) and following a build to its end
//!  store/     SQLite: deploy log, holds, runs, steps: the source of truth
//!  access     roles from nick!user@host masks and services accounts
//!  chat/      the chat contract: message (who said what, where), mask (IRC names), outbox
//!             (ordered, bounded, fair), text (what may go on the wire)
//!  config/    bot.toml + LEVER_* environment, one file per section, each validating itself
//!  process/   child processes in groups of their own, tied to lever's life, bounded output
//!  infra/     blocking (waits off the runtime), activity (work in flight), http_client
//! ```
//!
//! Rules that keep it simple: the IRC read loop never waits on a handler (each command runs in
//! its own task); handlers never touch IRC (they reply through the outbox or publish events);
//! nothing is announced that is not stored; the outbox outlives connections, so what is said
//! while disconnected goes out after reconnecting.

pub mod access;
pub mod alerts;
pub mod app;
pub mod bot;
pub mod chat;
pub mod commands;
pub mod config;
pub mod deploy;
pub mod events;
pub mod http;
pub mod infra;
pub mod irc;
pub mod jenkins;
pub mod metrics;
pub mod plugins;
pub mod process;
pub mod store;
