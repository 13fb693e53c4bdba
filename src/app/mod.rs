//! The process's two front ends: `lever run` (IRC and HTTP until a signal, in [`serve`]) and
//! `lever console` (the terminal as the channel, in [`console`]). Both build the services
//! ([`crate::bot`]) and feed what they hear to the dispatcher ([`crate::commands`]). With
//! several levers on one PostgreSQL store, [`leader`] decides which one acts.

pub mod console;
pub mod leader;
pub mod serve;
