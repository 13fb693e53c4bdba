//! The chat contract both front ends (irc/ and the console) implement: what a line is and who
//! said it ([`message`], with IRC names and masks in [`mask`]), how lines leave ([`outbox`];
//! what the deploy log records only once its [`claim`] is won) and what text may go on the wire
//! ([`text`]).

pub mod claim;
pub mod mask;
pub mod message;
pub mod outbox;
pub mod text;
