//! `jaseur-bench`: a load generator for XMPP servers (Jaseur, and later
//! Prosody and ejabberd for comparison).
//!
//! It speaks just enough client XMPP to log many accounts in quickly while
//! staying cheap itself: fixed strings are serialised once, replies are
//! recognised by substring (`</stream:features>`, `<proceed`, `<success`,
//! `</iq>`), and an established session is held by a tiny task that only
//! reads and discards. Nothing here is specific to Jaseur, so the same runs
//! can be made against other servers.
//!
//! Connections are XML streams over TCP with STARTTLS, or, with
//! `--transport websocket`, XMPP over WebSocket (RFC 7395: one element per
//! text message) on the server's HTTP listener, for `login`, `idle` and
//! `msg`. SCRAM is the library's own client (`jaseur::sasl::scram`).
//!
//! Scenarios (one subcommand each):
//! - `login`: N accounts each connect (STARTTLS or WebSocket), authenticate
//!   (SASL SCRAM-SHA-256 by default, or PLAIN), bind, fetch the roster, send
//!   initial presence and close the stream, a bounded number at a time;
//!   logins per second and login times.
//! - `idle`: log N accounts in (STARTTLS or WebSocket; SASL PLAIN by
//!   default), bind, send initial presence, hold the sessions idle, and
//!   report the server's resident memory per session (from
//!   `/proc/PID/status`).
//! - `muc` (TCP only): log N accounts in, put them in rooms of `--room-size` occupants
//!   (XEP-0045), let a few senders per room send groupchat messages
//!   closed-loop or at a fixed rate, and report delivered stanzas per second,
//!   end-to-end latency, lost messages and the server's CPU and memory.
//! - `msg`: N accounts in pairs sending each other chat messages (over TCP
//!   or WebSocket), closed-loop (a window of messages in flight per sender)
//!   or at a fixed total rate; delivered messages per second, end-to-end
//!   latency, lost messages.
//! - `storm` (TCP only): N accounts send mutated stanzas (forbidden characters, broken
//!   and oversized XML, hostile addresses) for a bounded time while two probe
//!   accounts keep logging in and chatting; probe times, the server's
//!   memory, and whether it survived.
//!
//! Every wait is bounded by a deadline and the tool stops by itself. The open
//! file limit is raised by the calling script (`ulimit -n`): raising it from
//! here would need `unsafe` and `libc`, which this crate does not use.

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clap::{Args, Parser, Subcommand};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};
use tokio_rustls::client::TlsStream;

#[derive(Parser)]
#[command(
    name = "jaseur-bench",
    version,
    about = "Load generator for XMPP servers"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Log N accounts in and out (STARTTLS or WebSocket, SASL, bind, roster, presence, close): logins/s.
    Login(LoginArgs),
    /// Log N accounts in, hold the sessions idle, report the server's memory per session.
    Idle(IdleArgs),
    /// Groupchat fan-out: rooms of M occupants, a few senders each (TCP only).
    Muc(MucArgs),
    /// One-to-one chat: N accounts in pairs, closed loop or at a fixed rate.
    Msg(MsgArgs),
    /// Hostile input: N accounts send mutated stanzas while probes log in and chat (TCP only).
    Storm(storm::StormArgs),
}

/// The SASL mechanism the generator logs in with.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Mechanism {
    /// SASL PLAIN (RFC 4616): the server checks the password itself.
    Plain,
    /// SCRAM-SHA-256 (RFC 7677) without channel binding; the generator
    /// caches each account's derived keys, as real clients do.
    #[value(name = "scram-sha-256")]
    ScramSha256,
}

impl Mechanism {
    fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "plain",
            Mechanism::ScramSha256 => "scram-sha-256",
        }
    }
}

/// How XMPP is carried.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    /// An XML stream over TCP, with STARTTLS (RFC 6120).
    Tcp,
    /// XMPP over WebSocket (RFC 7395), `ws://` on the server's HTTP listener.
    Websocket,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Websocket => "websocket",
        }
    }
}

/// Where to connect and as whom: shared by every scenario.
#[derive(Args, Debug, Clone)]
struct TargetArgs {
    /// The server's STARTTLS client port; with `--transport websocket`, its
    /// HTTP listener.
    #[arg(long)]
    server: SocketAddr,
    /// How XMPP is carried: `tcp` (STARTTLS) or `websocket` (RFC 7395; for
    /// `login`, `idle` and `msg`).
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    transport: Transport,
    /// WebSocket: the URL asked for (default: ws://SERVER/xmpp-websocket).
    /// The connection still goes to --server, so the URL's host may be a
    /// name the server knows itself by.
    #[arg(long)]
    ws_url: Option<String>,
    /// The XMPP domain (stream `to`, TLS SNI, account domain).
    #[arg(long, default_value = "localhost")]
    domain: String,
    /// Accounts to log in: PREFIX{first}..PREFIX{first+users-1}.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Number of the first account.
    #[arg(long, default_value_t = 1)]
    first_user: usize,
    /// Account I is USER_PREFIX + I.
    #[arg(long, default_value = "user")]
    user_prefix: String,
    /// Account I's password is PASSWORD_PREFIX + I.
    #[arg(long, default_value = "pass")]
    password_prefix: String,
    /// Logins in flight at once.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Trust this PEM certificate (or CA) for the server (TCP: STARTTLS).
    #[arg(long, conflicts_with = "insecure")]
    ca: Option<PathBuf>,
    /// Accept any server certificate (handshake signatures are still checked).
    #[arg(long)]
    insecure: bool,
    /// Local addresses to bind, rotated per connection (each gives ~28k ports).
    /// Default for a loopback server: 127.0.0.1, 127.0.0.2, ... one per 20,000 users.
    #[arg(long, value_delimiter = ',')]
    sources: Vec<IpAddr>,
    /// Seconds one login may take, from connect to bound.
    #[arg(long, default_value_t = 30)]
    login_timeout: u64,
    /// The server's process id, to read its memory from /proc (local servers only).
    #[arg(long)]
    server_pid: Option<u32>,
    /// SASL mechanism (default: scram-sha-256 for `login`, plain for the
    /// scenarios where logging in is only the setup).
    #[arg(long, value_enum)]
    mechanism: Option<Mechanism>,
}

#[derive(Args, Debug, Clone)]
struct LoginArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Times each account logs in during the measured pass.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// SCRAM: skip the warm-up pass that fills the generator's key cache,
    /// so that the measured pass computes PBKDF2 once per account (the
    /// generator then usually limits the figure).
    #[arg(long)]
    cold: bool,
    /// Seconds all logins of one pass together may take; the rest are abandoned (failed).
    #[arg(long, default_value_t = 600)]
    ramp_timeout: u64,
}

#[derive(Args, Debug, Clone)]
struct MsgArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Messages per second across all senders (open loop); every account
    /// sends, at evenly spread times. Without it, closed loop: each sender
    /// keeps `--window` messages in flight (saturation).
    #[arg(long)]
    rate: Option<f64>,
    /// Closed loop: messages each sender keeps in flight.
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds to wait after the last send for deliveries still on their way.
    #[arg(long, default_value_t = 10)]
    drain: u64,
    /// Seconds all logins together may take.
    #[arg(long, default_value_t = 600)]
    ramp_timeout: u64,
    /// Seconds to wait once everyone is logged in, before sending.
    #[arg(long, default_value_t = 1)]
    settle: u64,
}

#[derive(Args, Debug, Clone)]
struct IdleArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Seconds to keep the sessions open once every login is done.
    #[arg(long, default_value_t = 30)]
    hold: u64,
    /// Seconds to wait after the last login before measuring memory.
    #[arg(long, default_value_t = 5)]
    settle: u64,
    /// Seconds all logins together may take; the rest are abandoned after it.
    #[arg(long, default_value_t = 1200)]
    ramp_timeout: u64,
}

#[derive(Args, Debug, Clone)]
struct MucArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Occupants per room; the users are split into USERS / ROOM_SIZE rooms.
    #[arg(long, default_value_t = 10)]
    room_size: usize,
    /// Occupants of each room that send messages (the first ones).
    #[arg(long, default_value_t = 2)]
    senders: usize,
    /// Messages per second across all senders (open loop). Without it,
    /// closed loop: each sender waits for its own message to come back
    /// before sending the next (saturation).
    #[arg(long)]
    rate: Option<f64>,
    /// Closed loop: messages each sender keeps in flight.
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds to wait after the last send for deliveries still on their way.
    #[arg(long, default_value_t = 10)]
    drain: u64,
    /// The MUC service (default: conference.DOMAIN).
    #[arg(long)]
    service: Option<String>,
    /// Room I (from 1) is ROOM_PREFIX + I at the service.
    #[arg(long, default_value = "bench")]
    room_prefix: String,
    /// The room's maximum occupants set by its creator (default: the room size).
    #[arg(long)]
    max_users: Option<usize>,
    /// Joins in flight at once across all rooms (each join is broadcast to
    /// the room: a burst larger than the server's per-session queue gets
    /// occupants disconnected).
    #[arg(long, default_value_t = 32)]
    join_concurrency: usize,
    /// Seconds all logins together may take.
    #[arg(long, default_value_t = 600)]
    ramp_timeout: u64,
    /// Seconds room creation and every join together may take.
    #[arg(long, default_value_t = 300)]
    join_timeout: u64,
    /// Seconds to wait once everyone has joined, before sending.
    #[arg(long, default_value_t = 1)]
    settle: u64,
}

impl TargetArgs {
    /// The WebSocket URL to ask for.
    fn ws_url(&self) -> String {
        self.ws_url
            .clone()
            .unwrap_or_else(|| format!("ws://{}/xmpp-websocket", self.server))
    }

    /// For the scenarios that run over TCP only.
    fn require_tcp(&self, scenario: &str) -> anyhow::Result<()> {
        if self.transport != Transport::Tcp {
            bail!("{scenario} runs over TCP with STARTTLS only (--transport tcp)");
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("jaseur-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.scenario {
            Scenario::Login(args) => logins::run(args).await,
            Scenario::Idle(args) => idle::run(args).await,
            Scenario::Muc(args) => muc::run(args).await,
            Scenario::Msg(args) => msg::run(args).await,
            Scenario::Storm(args) => storm::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jaseur-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

mod conn;
mod idle;
mod login;
mod logins;
mod msg;
mod muc;
mod proc;
mod scan;
mod session;
mod stats;
mod storm;
mod tls;
