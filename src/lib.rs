//! Jaseur, an XMPP server.
//!
//! A map of the modules, in the order a stanza meets them:
//! - `config`: the TOML configuration file.
//! - `server`: binds listeners, runs until a signal, shuts down.
//! - `state`: the shared state every task gets (explicitly, never a global).
//! - `c2s`: client sessions, whatever carries them (`transport`), their negotiation (SASL,
//!   bind) and the TCP listeners (STARTTLS, direct TLS).
//! - `http`: the HTTP listener: XMPP over WebSocket (a c2s transport) and host-meta.
//! - `stream`: RFC 6120 stream machinery (framing, parsing, headers, errors, TLS).
//! - `sasl`: SASL mechanisms as pure state machines.
//! - `auth`: credential backends and throttling.
//! - `router`: where a stanza goes; the session registry.
//! - `features`: what the server answers itself (listed in `features/mod.rs`).
//! - `storage`: the SQL database and the stores' implementations.
//! - `memory`: giving freed memory back to the system after large stanzas.
//! - `supervise`: background services owned by the server's tracker, alive through a panic.
//! - `admin`: the local admin socket used by the CLI.
//! - `cli`: the sysadmin's commands.
//! - `xmpp`: pure protocol helpers.

pub mod admin;
pub mod auth;
pub mod c2s;
pub mod cli;
pub mod config;
pub mod features;
pub mod http;
pub mod memory;
pub mod muc;
pub mod router;
pub mod sasl;
pub mod server;
pub mod state;
pub mod storage;
pub mod stream;
pub mod supervise;
pub mod xmpp;
