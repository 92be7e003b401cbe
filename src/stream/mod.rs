//! RFC 6120 stream machinery shared by every kind of stream: framing,
//! parsing, headers, errors and TLS.

pub mod builder;
pub mod connection;
pub mod error;
pub mod framer;
pub mod header;
pub mod tls;
