//! The IRC session: everything between the bot and an IRC server.
//!
//! - [`session`] keeps one connection alive: connect, register, serve, reconnect with backoff.
//! - [`state`] is one connection's protocol state (CAP/SASL, NickServ, joins, nick regain,
//!   watchdog, accounts), driven line by line without I/O; [`sasl`] chooses the login
//!   mechanism and speaks its exchange (EXTERNAL, SCRAM-SHA-256/1, PLAIN).
//! - [`sts`] reads a server's Strict Transport Security policy (move to TLS, keep it);
//!   [`transport`] is TCP/TLS and line framing; [`throttle`] paces what we send;
//!   [`delivery`] keeps what was said until the server proves it read it.
//! - [`crate::chat::mask`] (case mapping, wildcard masks), [`accounts`] (who is logged in as what) and
//!   [`ctcp`] are the protocol's smaller pieces.
//!
//! The rest of the bot sees only [`crate::chat::message::Message`]s coming in and the
//! [`crate::chat::outbox::Outbox`] going out.

pub mod accounts;
pub mod ctcp;
pub mod delivery;
pub mod sasl;
pub mod session;
pub mod state;
pub mod sts;
pub mod throttle;
pub mod transport;

pub use session::{Session, Status};
