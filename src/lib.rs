//! lever: a chat-ops IRC bot after Flickr's "10 deploys per day".
//!
//! # Layout
//!
//! Folders are layers, top first; a module only imports from layers below its own
//! (`tests/layers.rs` checks it).
//!
//! ```text
//!  app/       the front ends: serve (`lever run`: IRC + HTTP until a signal), console;
//!             leader (active and standby among levers sharing a store)
//!  http/      the deploy page, hooks in (deploys, builds, alerts), JSON API, /metrics,
//!             health; HMAC auth
//!  commands/  the list of commands, the dispatcher, one file per command (parse, then run);
//!             plugin: a command answered by a plugin
//!  bot/       the services every command shares, built and wired at start; role (alone,
//!             active or standby)
//!  plugins/   executables that declare commands: scan, manifest, run one, reply lines
//!  metrics/   Prometheus/Graphite queries, sparklines, deploy markers and watches, !stats
//!  flags/     feature flags and contingency switches: declared, changed, evaluated (OFREP),
//!             exported for flagd
//!  alerts/    Alertmanager notifications (de-dup, caps, routes, auto-hold) and its API
//!  deploy/    targets, runs, holds: the one place that decides (gate, holds, status, recover,
//!             hold_clock); backend/ runs a step (local argv, HTTP engine, Jenkins job)
//!  jenkins/   Jenkins' remote API (trigger, queue, build) and following a build to its end
//!  irc/       IRC session: connect, CAP/SASL, reconnect, watchdog, throttle, splitting, accounts
//!  events/    the bus (plain data) → announce (every word said) → outbox; telemetry (counters)
//!  config/    bot.toml + LEVER_* environment, one file per section that validates itself
//!  store/     deploy log, holds, runs, steps: the source of truth, on SQLite or PostgreSQL (one SQL)
//!  access     roles from nick!user@host masks and services accounts
//!  process/   child processes in groups of their own, tied to lever's life, bounded output
//!  infra/     blocking (waits off the runtime), activity (work in flight), http_client,
//!             resident (start-up code given back)
//!  chat/      the chat contract: message (who said what, where), mask (IRC names), outbox
//!             (ordered, bounded, fair), claim (said by one lever, once), text (what may go
//!             on the wire)
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
pub mod flags;
pub mod http;
pub mod infra;
pub mod irc;
pub mod jenkins;
pub mod metrics;
pub mod plugins;
pub mod process;
pub mod store;
