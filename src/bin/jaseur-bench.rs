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
//! Scenarios (one subcommand each):
//! - `login`: N accounts each connect over STARTTLS, authenticate (SASL
//!   SCRAM-SHA-256 by default, or PLAIN), bind, fetch the roster, send initial
//!   presence and close the stream, a bounded number at a time; logins per
//!   second and login times.
//! - `idle`: log N accounts in over STARTTLS + SASL PLAIN, bind, send initial
//!   presence, hold the sessions idle, and report the server's resident memory
//!   per session (from `/proc/PID/status`).
//! - `muc`: log N accounts in, put them in rooms of `--room-size` occupants
//!   (XEP-0045), let a few senders per room send groupchat messages
//!   closed-loop or at a fixed rate, and report delivered stanzas per second,
//!   end-to-end latency, lost messages and the server's CPU and memory.
//! - `msg`: N accounts in pairs sending each other chat messages, closed-loop
//!   (a window of messages in flight per sender) or at a fixed total rate;
//!   delivered messages per second, end-to-end latency, lost messages.
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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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
    /// Log N accounts in and out (STARTTLS, SASL, bind, roster, presence, close): logins/s.
    Login(LoginArgs),
    /// Log N accounts in, hold the sessions idle, report the server's memory per session.
    Idle(IdleArgs),
    /// Groupchat fan-out: rooms of M occupants, a few senders each.
    Muc(MucArgs),
    /// One-to-one chat: N accounts in pairs, closed loop or at a fixed rate.
    Msg(MsgArgs),
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

/// Where to connect and as whom: shared by every scenario.
#[derive(Args, Debug, Clone)]
struct TargetArgs {
    /// The server's STARTTLS client port.
    #[arg(long)]
    server: SocketAddr,
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
    /// Trust this PEM certificate (or CA) for the server.
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

/// TLS client configuration.
mod tls {
    use super::*;
    use rustls::DigitallySignedStruct;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, UnixTime};

    /// A client config trusting `ca`, or any certificate when `ca` is None.
    ///
    /// Resumption is off: N simulated clients would not share a session
    /// cache, and every login should cost the server a full handshake.
    pub fn client_config(ca: Option<&std::path::Path>) -> anyhow::Result<Arc<ClientConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let mut config = match ca {
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(path)
                    .with_context(|| format!("cannot read {}", path.display()))?
                {
                    roots.add(cert.with_context(|| format!("bad PEM in {}", path.display()))?)?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
                .with_no_client_auth(),
        };
        config.resumption = rustls::client::Resumption::disabled();
        Ok(Arc::new(config))
    }

    /// Accepts any certificate, for servers with self-signed ones (`--insecure`).
    #[derive(Debug)]
    struct AcceptAnyCert(Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAnyCert {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

/// A byte stream read by substring: just enough XML for a load generator.
mod conn {
    use super::*;

    /// Bytes buffered while waiting for a reply; more means the server is
    /// not answering what we asked.
    const MAX_BUFFER: usize = 256 * 1024;

    /// A transport and what was read from it but not consumed yet.
    pub struct Conn<S> {
        pub io: S,
        buf: Vec<u8>,
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
        pub fn new(io: S) -> Self {
            Conn {
                io,
                buf: Vec::new(),
            }
        }

        /// Write and flush.
        pub async fn send(&mut self, data: &[u8], deadline: Instant) -> anyhow::Result<()> {
            timeout_at(deadline, async {
                self.io.write_all(data).await?;
                self.io.flush().await
            })
            .await
            .map_err(|_| anyhow!("timed out writing"))?
            .context("write")
        }

        /// Read until one of `needles` appears; consume up to the end of the
        /// first one found and return its index with the consumed bytes.
        pub async fn wait_any(
            &mut self,
            needles: &[&str],
            deadline: Instant,
        ) -> anyhow::Result<(usize, Vec<u8>)> {
            loop {
                let hit = needles
                    .iter()
                    .enumerate()
                    .filter_map(|(i, n)| find(&self.buf, n.as_bytes()).map(|p| (p + n.len(), i)))
                    .min();
                if let Some((end, i)) = hit {
                    return Ok((i, self.buf.drain(..end).collect()));
                }
                if find(&self.buf, b"<stream:error").is_some()
                    || find(&self.buf, b"</stream:stream>").is_some()
                {
                    bail!("stream closed by server: {}", self.snippet());
                }
                if self.buf.len() > MAX_BUFFER {
                    bail!("no {needles:?} in {} bytes", self.buf.len());
                }
                let mut chunk = [0u8; 2048];
                let n = timeout_at(deadline, self.io.read(&mut chunk))
                    .await
                    .map_err(|_| anyhow!("timed out waiting for {needles:?}: {}", self.snippet()))?
                    .context("read")?;
                if n == 0 {
                    bail!(
                        "connection closed waiting for {needles:?}: {}",
                        self.snippet()
                    );
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }

        /// Wait for one needle.
        pub async fn wait(&mut self, needle: &str, deadline: Instant) -> anyhow::Result<Vec<u8>> {
            Ok(self.wait_any(&[needle], deadline).await?.1)
        }

        /// After sending our `</stream:stream>`: read (and discard) until the
        /// server closes its stream or the connection. False if it did not
        /// by `deadline`.
        pub async fn wait_closed(&mut self, deadline: Instant) -> bool {
            const END: &[u8] = b"</stream:stream>";
            loop {
                if find(&self.buf, END).is_some() {
                    return true;
                }
                // Keep only what could be the start of the end tag.
                let keep = self.buf.len().min(END.len() - 1);
                self.buf.drain(..self.buf.len() - keep);
                let mut chunk = [0u8; 2048];
                match timeout_at(deadline, self.io.read(&mut chunk)).await {
                    Err(_) => return false,
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
                    Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        }

        /// The start of what is buffered, for error messages.
        fn snippet(&self) -> String {
            let end = self.buf.len().min(300);
            String::from_utf8_lossy(&self.buf[..end]).into_owned()
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        if needle.is_empty() || haystack.len() < needle.len() {
            return None;
        }
        haystack.windows(needle.len()).position(|w| w == needle)
    }
}

/// Logging one account in: TCP, STARTTLS, TLS, SASL (PLAIN or
/// SCRAM-SHA-256), bind, presence.
mod login {
    use super::conn::Conn;
    use super::*;
    use std::collections::HashMap;

    const STARTTLS: &[u8] = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
    const BIND: &[u8] =
        b"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>";
    const ROSTER_ID: &str = "roster1";
    const ROSTER: &[u8] = b"<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>";
    const PRESENCE: &[u8] = b"<presence/>";
    const CLOSE: &[u8] = b"</stream:stream>";
    const FEATURES_END: &str = "</stream:features>";
    const SASL_NS: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
    /// How long a closing stream may wait for the server's own close.
    const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

    /// An account's SCRAM keys, valid for one salt and iteration count.
    struct CachedKeys {
        salt: Vec<u8>,
        iterations: u32,
        keys: scram::Keys,
    }

    /// An authenticated, bound TLS session.
    pub type Session = TlsStream<TcpStream>;

    /// Everything a login needs that is the same for every account.
    pub struct Client {
        server: SocketAddr,
        sources: Vec<IpAddr>,
        tls: tokio_rustls::TlsConnector,
        server_name: ServerName<'static>,
        /// The stream header, serialised once.
        header: Vec<u8>,
        user_prefix: String,
        password_prefix: String,
        domain: String,
        timeout: Duration,
        mechanism: Mechanism,
        /// SCRAM keys per account name, as a real client keeps them.
        keys: std::sync::Mutex<HashMap<String, CachedKeys>>,
        /// PBKDF2 derivations done (cache misses).
        derivations: AtomicUsize,
    }

    /// How a login ended once its session was closed.
    pub struct Closed {
        /// From the connection to the initial presence sent (roster received).
        pub elapsed: Duration,
        /// Whether the server closed its stream in answer within CLOSE_TIMEOUT.
        pub clean: bool,
    }

    impl Client {
        /// `mechanism`: the scenario's default, unless `--mechanism` says
        /// otherwise. `connections`: how many connections the run opens (for
        /// the default source addresses).
        pub fn new(
            t: &TargetArgs,
            mechanism: Mechanism,
            connections: usize,
        ) -> anyhow::Result<Client> {
            if t.ca.is_none() && !t.insecure {
                bail!("give --ca CERT.pem to trust the server, or --insecure");
            }
            let server_name = ServerName::try_from(t.domain.clone())
                .with_context(|| format!("{} is not a valid TLS server name", t.domain))?;
            let header = format!(
                "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xml:lang='en' \
                 xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
                t.domain
            );
            Ok(Client {
                server: t.server,
                sources: sources(t, connections),
                tls: tokio_rustls::TlsConnector::from(tls::client_config(t.ca.as_deref())?),
                server_name,
                header: header.into_bytes(),
                user_prefix: t.user_prefix.clone(),
                password_prefix: t.password_prefix.clone(),
                domain: t.domain.clone(),
                timeout: Duration::from_secs(t.login_timeout),
                mechanism: t.mechanism.unwrap_or(mechanism),
                keys: std::sync::Mutex::new(HashMap::new()),
                derivations: AtomicUsize::new(0),
            })
        }

        /// PBKDF2 derivations done so far (SCRAM key cache misses).
        pub fn derivations(&self) -> usize {
            self.derivations.load(Ordering::Relaxed)
        }

        /// The local addresses connections are bound to (empty: the kernel's choice).
        pub fn sources(&self) -> &[IpAddr] {
            &self.sources
        }

        /// Log account number `account` in, on the `index`-th connection (which
        /// picks its source address), and send initial presence.
        pub async fn login(&self, index: usize, account: usize) -> anyhow::Result<Session> {
            let deadline = Instant::now() + self.timeout;
            let mut c = self.bound(index, account, deadline).await?;
            c.send(PRESENCE, deadline).await?;
            Ok(c.io)
        }

        /// The `login` scenario's whole session: log in, fetch the roster,
        /// send initial presence, close the stream and wait for the server
        /// to close its own.
        pub async fn login_and_out(&self, index: usize, account: usize) -> anyhow::Result<Closed> {
            let start = Instant::now();
            let deadline = start + self.timeout;
            let mut c = self.bound(index, account, deadline).await?;
            c.send(ROSTER, deadline).await?;
            let reply = c.wait("</iq>", deadline).await.context("roster")?;
            let reply = String::from_utf8_lossy(&reply);
            if !reply.contains(ROSTER_ID)
                || reply.contains("type='error'")
                || reply.contains("type=\"error\"")
            {
                bail!("roster get failed: {reply}");
            }
            c.send(PRESENCE, deadline).await?;
            let elapsed = start.elapsed();
            let close_deadline = Instant::now() + CLOSE_TIMEOUT;
            c.send(CLOSE, close_deadline).await?;
            let clean = c.wait_closed(close_deadline).await;
            let _ = timeout_at(close_deadline, c.io.shutdown()).await;
            Ok(Closed { elapsed, clean })
        }

        /// Connect, STARTTLS, authenticate and bind a resource.
        async fn bound(
            &self,
            index: usize,
            account: usize,
            deadline: Instant,
        ) -> anyhow::Result<Conn<Session>> {
            let user = format!("{}{account}", self.user_prefix);
            let password = format!("{}{account}", self.password_prefix);
            let tcp = timeout_at(deadline, self.connect(index))
                .await
                .map_err(|_| anyhow!("timed out connecting"))?
                .context("connect")?;
            let mut c = Conn::new(tcp);
            c.send(&self.header, deadline).await?;
            c.wait(FEATURES_END, deadline).await.context("features")?;
            c.send(STARTTLS, deadline).await?;
            if c.wait_any(&["<proceed", "<failure"], deadline).await?.0 != 0 {
                bail!("STARTTLS refused");
            }
            let tls = timeout_at(deadline, self.tls.connect(self.server_name.clone(), c.io))
                .await
                .map_err(|_| anyhow!("timed out in the TLS handshake"))?
                .context("TLS handshake")?;
            let mut c = Conn::new(tls);
            c.send(&self.header, deadline).await?;
            let features = c
                .wait(FEATURES_END, deadline)
                .await
                .context("features after TLS")?;
            match self.mechanism {
                Mechanism::Plain => self.plain(&mut c, &user, &password, deadline).await?,
                Mechanism::ScramSha256 => {
                    let offered = String::from_utf8_lossy(&features);
                    if !offered.contains(">SCRAM-SHA-256<") {
                        bail!("the server does not offer SCRAM-SHA-256: {offered}");
                    }
                    self.scram(&mut c, &user, &password, deadline)
                        .await
                        .with_context(|| format!("SCRAM-SHA-256 for {user}@{}", self.domain))?
                }
            }
            c.send(&self.header, deadline).await?;
            c.wait(FEATURES_END, deadline)
                .await
                .context("features after SASL")?;
            c.send(BIND, deadline).await?;
            let reply = c.wait("</iq>", deadline).await.context("bind")?;
            let reply = String::from_utf8_lossy(&reply);
            if reply.contains("type='error'") || reply.contains("type=\"error\"") {
                bail!("bind failed: {reply}");
            }
            Ok(c)
        }

        async fn plain(
            &self,
            c: &mut Conn<Session>,
            user: &str,
            password: &str,
            deadline: Instant,
        ) -> anyhow::Result<()> {
            let auth = format!(
                "<auth xmlns='{SASL_NS}' mechanism='PLAIN'>{}</auth>",
                B64.encode(format!("\0{user}\0{password}"))
            );
            c.send(auth.as_bytes(), deadline).await?;
            let (outcome, text) = c.wait_any(&["<success", "<failure"], deadline).await?;
            if outcome != 0 {
                bail!(
                    "SASL PLAIN failed for {user}@{}: {}",
                    self.domain,
                    String::from_utf8_lossy(&text)
                );
            }
            Ok(())
        }

        /// SCRAM-SHA-256 without channel binding (`n,,`), checking the
        /// server's signature. PBKDF2 runs only when the cache has no keys
        /// for this account, salt and iteration count.
        async fn scram(
            &self,
            c: &mut Conn<Session>,
            user: &str,
            password: &str,
            deadline: Instant,
        ) -> anyhow::Result<()> {
            let nonce = B64.encode(rand::random::<[u8; 18]>());
            let exchange = scram::Exchange::new(user, &nonce);
            let auth = format!(
                "<auth xmlns='{SASL_NS}' mechanism='SCRAM-SHA-256'>{}</auth>",
                B64.encode(exchange.client_first())
            );
            c.send(auth.as_bytes(), deadline).await?;
            let (i, text) = c.wait_any(&["</challenge>", "<failure"], deadline).await?;
            if i != 0 {
                bail!("refused: {}", String::from_utf8_lossy(&text));
            }
            let server_first = sasl_data(&text, "challenge")?;
            let first = scram::parse_server_first(&server_first, &nonce)?;
            let keys = self.keys(user, password, &first).await?;
            let (client_final, signature) = exchange.client_final(&server_first, &first, &keys);
            let response = format!(
                "<response xmlns='{SASL_NS}'>{}</response>",
                B64.encode(client_final)
            );
            c.send(response.as_bytes(), deadline).await?;
            // The server's signature comes with <success/> or, from some
            // servers, in a last challenge answered with an empty response.
            let (i, text) = c
                .wait_any(&["</success>", "</challenge>", "<failure"], deadline)
                .await?;
            match i {
                0 => scram::check_server_final(&sasl_data(&text, "success")?, &signature),
                1 => {
                    scram::check_server_final(&sasl_data(&text, "challenge")?, &signature)?;
                    c.send(
                        format!("<response xmlns='{SASL_NS}'/>").as_bytes(),
                        deadline,
                    )
                    .await?;
                    if c.wait_any(&["<success", "<failure"], deadline).await?.0 != 0 {
                        bail!("refused after the server's signature");
                    }
                    Ok(())
                }
                _ => bail!("refused: {}", String::from_utf8_lossy(&text)),
            }
        }

        /// The account's SCRAM keys, from the cache or derived (and cached).
        async fn keys(
            &self,
            user: &str,
            password: &str,
            first: &scram::ServerFirst,
        ) -> anyhow::Result<scram::Keys> {
            {
                let cache = self
                    .keys
                    .lock()
                    .map_err(|_| anyhow!("key cache poisoned"))?;
                if let Some(k) = cache.get(user)
                    && k.salt == first.salt
                    && k.iterations == first.iterations
                {
                    return Ok(k.keys.clone());
                }
            }
            let (pw, salt, iterations) = (
                password.as_bytes().to_vec(),
                first.salt.clone(),
                first.iterations,
            );
            // PBKDF2 takes milliseconds: off the reactor's threads.
            let keys =
                tokio::task::spawn_blocking(move || scram::derive(&pw, &salt, iterations)).await?;
            self.derivations.fetch_add(1, Ordering::Relaxed);
            self.keys
                .lock()
                .map_err(|_| anyhow!("key cache poisoned"))?
                .insert(
                    user.to_owned(),
                    CachedKeys {
                        salt: first.salt.clone(),
                        iterations: first.iterations,
                        keys: keys.clone(),
                    },
                );
            Ok(keys)
        }

        async fn connect(&self, index: usize) -> std::io::Result<TcpStream> {
            let socket = if self.server.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            if !self.sources.is_empty() {
                let source = self.sources[index % self.sources.len()];
                socket.bind(SocketAddr::new(source, 0))?;
            }
            let tcp = socket.connect(self.server).await?;
            tcp.set_nodelay(true)?;
            Ok(tcp)
        }
    }

    /// The decoded text of a SASL element (`<challenge>`, `<success>`) read
    /// whole in `text`; empty for an empty or self-closed element.
    fn sasl_data(text: &[u8], name: &str) -> anyhow::Result<String> {
        let text = String::from_utf8_lossy(text);
        let open = text
            .find(&format!("<{name}"))
            .ok_or_else(|| anyhow!("no <{name}> in {text}"))?;
        let rest = &text[open..];
        let gt = rest.find('>').ok_or_else(|| anyhow!("bad <{name}>"))?;
        if rest[..gt].ends_with('/') {
            return Ok(String::new());
        }
        let body = &rest[gt + 1..];
        let end = body.find('<').unwrap_or(body.len());
        let data = body[..end].trim();
        if data == "=" {
            return Ok(String::new());
        }
        let bytes = B64
            .decode(data)
            .with_context(|| format!("bad base64 in <{name}>"))?;
        String::from_utf8(bytes).with_context(|| format!("<{name}> is not UTF-8"))
    }

    /// The sources given, or for a loopback server one 127.0.0.x per 20,000
    /// connections: an address gives one connection per ephemeral port (~28k).
    fn sources(t: &TargetArgs, connections: usize) -> Vec<IpAddr> {
        if !t.sources.is_empty() {
            return t.sources.clone();
        }
        match t.server.ip() {
            IpAddr::V4(ip) if ip.is_loopback() => {
                let count = connections.div_ceil(20_000).clamp(1, 250);
                (1..=count)
                    .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i as u8)))
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// The outcome of logging many accounts in.
    pub struct Logins {
        /// Session `i` is account `first + i`; None where the login failed.
        pub sessions: Vec<Option<Session>>,
        /// Time each successful login took.
        pub latencies: Vec<Duration>,
        pub failed: usize,
        /// From the first connection to the last login's end.
        pub elapsed: Duration,
    }

    /// Log accounts `first..first + count` in, `concurrency` at a time; the
    /// ones still unfinished after `ramp_timeout` are abandoned (failed).
    pub async fn login_all(
        client: &Arc<Client>,
        first: usize,
        count: usize,
        concurrency: usize,
        ramp_timeout: Duration,
    ) -> Logins {
        const ERRORS_SHOWN: usize = 5;
        let mut sessions: Vec<Option<Session>> = (0..count).map(|_| None).collect();
        let mut latencies = Vec::with_capacity(count);
        let mut failed = 0usize;
        let mut logins: JoinSet<(usize, Duration, anyhow::Result<Session>)> = JoinSet::new();
        let started = Instant::now();
        let ramp_end = started + ramp_timeout;
        let mut next = 0usize;
        loop {
            while next < count && logins.len() < concurrency.max(1) {
                let client = client.clone();
                let index = next;
                logins.spawn(async move {
                    let start = Instant::now();
                    let r = client.login(index, first + index).await;
                    (index, start.elapsed(), r)
                });
                next += 1;
            }
            if logins.is_empty() {
                break;
            }
            tokio::select! {
                joined = logins.join_next() => match joined {
                    Some(Ok((index, elapsed, Ok(session)))) => {
                        latencies.push(elapsed);
                        sessions[index] = Some(session);
                    }
                    Some(Ok((_, _, Err(e)))) => {
                        failed += 1;
                        if failed <= ERRORS_SHOWN {
                            eprintln!("login failed: {e:#}");
                        }
                    }
                    Some(Err(e)) => {
                        failed += 1;
                        eprintln!("login task failed: {e}");
                    }
                    None => break,
                },
                _ = sleep_until(ramp_end) => {
                    let abandoned = logins.len() + (count - next);
                    eprintln!("ramp timeout: abandoning {abandoned} logins");
                    failed += abandoned;
                    logins.abort_all();
                    break;
                }
            }
        }
        Logins {
            sessions,
            latencies,
            failed,
            elapsed: started.elapsed(),
        }
    }

    /// What the holding tasks saw, shared by all of them.
    #[derive(Default)]
    pub struct HoldStats {
        /// Sessions the server closed.
        pub closed: AtomicUsize,
        /// Server pings answered.
        pub pings: AtomicUsize,
    }

    /// Hold a session: read and discard, answering server pings (XEP-0199)
    /// so that a live client is simulated. Returns when the server closes
    /// the session; the owner aborts it at the end of the run.
    pub async fn hold(mut session: Session, stats: Arc<HoldStats>) {
        let mut buf = [0u8; 512];
        loop {
            match session.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(reply) = ping_reply(&buf[..n]) {
                        if session.write_all(reply.as_bytes()).await.is_err() {
                            break;
                        }
                        stats.pings.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        stats.closed.fetch_add(1, Ordering::Relaxed);
    }

    /// The result for a ping request read whole in `chunk`. A ping split
    /// across two reads is missed: idle servers send them alone and small.
    pub fn ping_reply(chunk: &[u8]) -> Option<String> {
        let text = String::from_utf8_lossy(chunk);
        let at = text.find("urn:xmpp:ping")?;
        let start = text[..at].rfind("<iq")?;
        let tag = &text[start..start + text[start..].find('>')?];
        if attr(tag, "type")? != "get" {
            return None;
        }
        let id = attr(tag, "id")?.replace('\'', "&apos;");
        Some(match attr(tag, "from") {
            Some(from) => format!(
                "<iq type='result' id='{id}' to='{}'/>",
                from.replace('\'', "&apos;")
            ),
            None => format!("<iq type='result' id='{id}'/>"),
        })
    }

    /// The value of attribute `name` in a start tag (either quote style).
    fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
        ['\'', '"'].into_iter().find_map(|q| {
            let pattern = format!(" {name}={q}");
            let value = &tag[tag.find(&pattern)? + pattern.len()..];
            Some(&value[..value.find(q)?])
        })
    }

    #[cfg(test)]
    mod tests {
        use super::ping_reply;

        #[test]
        fn answers_pings_in_either_quote_style() {
            let jaseur = b"<iq type='get' id='jaseur-ping' from='localhost' to='u@localhost/r'><ping xmlns='urn:xmpp:ping'/></iq>";
            assert_eq!(
                ping_reply(jaseur).as_deref(),
                Some("<iq type='result' id='jaseur-ping' to='localhost'/>")
            );
            let other = b"<iq id=\"p1\" type=\"get\"><ping xmlns=\"urn:xmpp:ping\"/></iq>";
            assert_eq!(
                ping_reply(other).as_deref(),
                Some("<iq type='result' id='p1'/>")
            );
            assert_eq!(ping_reply(b"<presence/>"), None);
            assert_eq!(
                ping_reply(b"<iq type='result' id='x'><ping xmlns='urn:xmpp:ping'/></iq>"),
                None
            );
        }
    }
}

/// The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel
/// binding. Account names and passwords are the generator's own ASCII ones:
/// no SASLprep.
mod scram {
    use super::*;
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::{Digest, Sha256};

    /// What a client keeps from PBKDF2: ClientKey and ServerKey.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Keys {
        pub client_key: [u8; 32],
        pub server_key: [u8; 32],
    }

    fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .expect("HMAC accepts keys of any length");
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// SaltedPassword by PBKDF2, and the two keys derived from it.
    pub fn derive(password: &[u8], salt: &[u8], iterations: u32) -> Keys {
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut salted);
        Keys {
            client_key: hmac(&salted, b"Client Key"),
            server_key: hmac(&salted, b"Server Key"),
        }
    }

    /// The server-first-message.
    #[derive(Debug)]
    pub struct ServerFirst {
        pub nonce: String,
        pub salt: Vec<u8>,
        pub iterations: u32,
    }

    pub fn parse_server_first(msg: &str, client_nonce: &str) -> anyhow::Result<ServerFirst> {
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attr in msg.split(',') {
            match attr.split_at_checked(2) {
                Some(("r=", v)) => nonce = Some(v),
                Some(("s=", v)) => salt = Some(B64.decode(v).context("bad salt")?),
                Some(("i=", v)) => iterations = Some(v.parse::<u32>().context("bad i=")?),
                Some(("e=", v)) => bail!("server error: {v}"),
                Some(("m=", _)) => bail!("mandatory extension not supported"),
                _ => {}
            }
        }
        let nonce = nonce.ok_or_else(|| anyhow!("no nonce in {msg}"))?;
        if !nonce.starts_with(client_nonce) || nonce.len() == client_nonce.len() {
            bail!("the server nonce does not extend ours: {msg}");
        }
        let iterations = iterations.ok_or_else(|| anyhow!("no iteration count in {msg}"))?;
        if iterations == 0 {
            bail!("iteration count 0");
        }
        Ok(ServerFirst {
            nonce: nonce.to_owned(),
            salt: salt.ok_or_else(|| anyhow!("no salt in {msg}"))?,
            iterations,
        })
    }

    /// One exchange, from the client-first-message on.
    pub struct Exchange {
        client_first_bare: String,
    }

    impl Exchange {
        pub fn new(user: &str, nonce: &str) -> Exchange {
            let user = user.replace('=', "=3D").replace(',', "=2C");
            Exchange {
                client_first_bare: format!("n={user},r={nonce}"),
            }
        }

        /// `n,,` (no channel binding) and the bare message.
        pub fn client_first(&self) -> String {
            format!("n,,{}", self.client_first_bare)
        }

        /// The client-final-message and the ServerSignature to expect.
        pub fn client_final(
            &self,
            server_first: &str,
            first: &ServerFirst,
            keys: &Keys,
        ) -> (String, [u8; 32]) {
            // c=biws: base64 of the GS2 header `n,,`.
            let without_proof = format!("c=biws,r={}", first.nonce);
            let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
            let stored_key: [u8; 32] = Sha256::digest(keys.client_key).into();
            let signature = hmac(&stored_key, auth_message.as_bytes());
            let mut proof = keys.client_key;
            for (p, s) in proof.iter_mut().zip(signature) {
                *p ^= s;
            }
            let server_signature = hmac(&keys.server_key, auth_message.as_bytes());
            (
                format!("{without_proof},p={}", B64.encode(proof)),
                server_signature,
            )
        }
    }

    /// Check the server-final-message's `v=` against the expected signature.
    pub fn check_server_final(msg: &str, expected: &[u8; 32]) -> anyhow::Result<()> {
        let mut verifier = None;
        for attr in msg.split(',') {
            match attr.split_at_checked(2) {
                Some(("e=", v)) => bail!("server error: {v}"),
                Some(("v=", v)) => verifier = Some(v),
                _ => {}
            }
        }
        let verifier = verifier.ok_or_else(|| anyhow!("no server signature in {msg:?}"))?;
        let got = B64.decode(verifier).context("bad base64 in v=")?;
        if got != expected {
            bail!("wrong server signature: the server does not know the password");
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// RFC 7677 §3.
        #[test]
        fn rfc7677_test_vector() {
            let nonce = "rOprNGfwEbeRWgbNEkqO";
            let exchange = Exchange::new("user", nonce);
            assert_eq!(exchange.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
            let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
            let first = parse_server_first(server_first, nonce).expect("server-first");
            assert_eq!(first.iterations, 4096);
            let keys = derive(b"pencil", &first.salt, first.iterations);
            let (client_final, signature) = exchange.client_final(server_first, &first, &keys);
            assert_eq!(
                client_final,
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                 p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
            );
            check_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", &signature)
                .expect("server signature");
            assert!(
                check_server_final("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", &signature)
                    .is_err()
            );
            assert!(check_server_final("e=invalid-proof", &signature).is_err());
        }

        #[test]
        fn refuses_bad_server_first_messages() {
            let ok = "r=abcXYZ,s=QSXCR+Q6sek8bf92,i=4096";
            assert!(parse_server_first(ok, "abc").is_ok());
            // Not our nonce, or not extended.
            assert!(parse_server_first(ok, "abd").is_err());
            assert!(parse_server_first("r=abc,s=QSXCR+Q6sek8bf92,i=4096", "abc").is_err());
            assert!(parse_server_first("r=abcX,s=QSXCR+Q6sek8bf92", "abc").is_err());
            assert!(parse_server_first("r=abcX,s=QSXCR+Q6sek8bf92,i=0", "abc").is_err());
            assert!(parse_server_first("m=x,r=abcX,s=QSXCR+Q6sek8bf92,i=1", "abc").is_err());
            assert_eq!(
                Exchange::new("a=b,c", "n").client_first(),
                "n,,n=a=3Db=2Cc,r=n"
            );
        }
    }
}

/// Process memory and limits, from /proc.
mod proc {
    /// A `KEY:   N kB` field of /proc/PID/status, in KiB.
    pub fn status_kib(pid: &str, key: &str) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    }

    /// User plus system CPU time of a process (`self` or a pid), in clock
    /// ticks, from /proc/PID/stat.
    pub fn cpu_ticks(pid: &str) -> Option<u64> {
        parse_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// utime + stime (fields 14 and 15) of a /proc/PID/stat line. The
    /// command name (field 2) may hold spaces and parentheses: fields are
    /// counted after its last `)`.
    pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace().skip(11);
        let utime: u64 = fields.next()?.parse().ok()?;
        let stime: u64 = fields.next()?.parse().ok()?;
        Some(utime + stime)
    }

    /// Clock ticks per second in /proc (USER_HZ): 100 on every Linux
    /// architecture this runs on. Reading it properly needs
    /// `sysconf(_SC_CLK_TCK)`, hence libc and `unsafe`.
    pub const TICKS_PER_SECOND: f64 = 100.0;

    /// CPU time used so far by the server (when its pid is known) and by the
    /// generator, at one moment.
    #[derive(Clone, Copy)]
    pub struct CpuMark {
        server: Option<u64>,
        generator: Option<u64>,
        at: tokio::time::Instant,
    }

    impl CpuMark {
        pub fn now(server_pid: Option<&str>) -> CpuMark {
            CpuMark {
                server: server_pid.and_then(cpu_ticks),
                generator: cpu_ticks("self"),
                at: tokio::time::Instant::now(),
            }
        }

        /// What was used from this mark to `later`.
        pub fn until(&self, later: &CpuMark) -> CpuUse {
            let s = |before: Option<u64>, after: Option<u64>| {
                Some(after?.saturating_sub(before?) as f64 / TICKS_PER_SECOND)
            };
            CpuUse {
                server_s: s(self.server, later.server),
                generator_s: s(self.generator, later.generator),
                wall_s: later.at.saturating_duration_since(self.at).as_secs_f64(),
            }
        }
    }

    /// CPU seconds used over `wall_s` seconds.
    pub struct CpuUse {
        pub server_s: Option<f64>,
        pub generator_s: Option<f64>,
        pub wall_s: f64,
    }

    impl CpuUse {
        fn pct(&self, s: Option<f64>) -> String {
            match s {
                Some(s) if self.wall_s > 0.0 => format!("{:.0}", 100.0 * s / self.wall_s),
                _ => "na".to_owned(),
            }
        }

        /// The server's CPU use in % of one core, or `na`.
        pub fn server_pct(&self) -> String {
            self.pct(self.server_s)
        }

        /// The generator's CPU use in % of one core, or `na`.
        pub fn generator_pct(&self) -> String {
            self.pct(self.generator_s)
        }

        /// `count` per second of server CPU, or `na`.
        pub fn per_server_cpu_s(&self, count: u64) -> String {
            self.server_s
                .filter(|s| *s > 0.0)
                .map_or_else(|| "na".to_owned(), |s| format!("{:.0}", count as f64 / s))
        }
    }

    /// A KiB figure, or `na`.
    pub fn kib(v: Option<u64>) -> String {
        v.map_or_else(|| "na".to_owned(), |v| v.to_string())
    }

    #[cfg(test)]
    #[test]
    fn reads_cpu_ticks() {
        let stat = "1234 (tokio (rt) x) S 1 1234 1234 0 -1 4194560 1000 0 0 0                     250 75 0 0 20 0 3 0 100 1000000 2000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert!(cpu_ticks("self").is_some());
    }

    /// The soft limit on open files of this process.
    pub fn open_files_limit() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = text.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse().ok()
    }
}

/// Latency percentiles.
mod stats {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// Values below this are counted exactly.
    const LINEAR: u64 = 64;
    /// Sub-buckets per power of two above LINEAR (precision 1/32, about 3 %).
    const SUB_BITS: u32 = 5;
    /// Enough buckets for any u64.
    const BUCKETS: usize = LINEAR as usize + (64 - 6) * (1 << SUB_BITS);

    /// A log-linear histogram of durations in microseconds, shared by all
    /// the receiving tasks (one relaxed atomic add per sample, no
    /// per-receiver state).
    pub struct Histogram {
        counts: Vec<AtomicU64>,
        max: AtomicU64,
    }

    impl Default for Histogram {
        fn default() -> Self {
            Histogram {
                counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
                max: AtomicU64::new(0),
            }
        }
    }

    /// The bucket of a value.
    pub fn bucket(v: u64) -> usize {
        if v < LINEAR {
            return v as usize;
        }
        let k = 63 - v.leading_zeros(); // v in [2^k, 2^(k+1)), k >= 6
        let shift = k - SUB_BITS;
        let mantissa = (v >> shift) as usize - (1 << SUB_BITS); // 0..32
        LINEAR as usize + (k as usize - 6) * (1 << SUB_BITS) + mantissa
    }

    /// The range [low, high] of values in a bucket.
    pub fn bucket_range(b: usize) -> (u64, u64) {
        if b < LINEAR as usize {
            return (b as u64, b as u64);
        }
        let i = b - LINEAR as usize;
        let k = (i >> SUB_BITS) as u32 + 6;
        let mantissa = (i & ((1 << SUB_BITS) - 1)) as u64 + (1 << SUB_BITS);
        let shift = k - SUB_BITS;
        let low = mantissa << shift;
        (low, low + ((1u64 << shift) - 1))
    }

    impl Histogram {
        pub fn record_us(&self, us: u64) {
            self.counts[bucket(us)].fetch_add(1, Ordering::Relaxed);
            self.max.fetch_max(us, Ordering::Relaxed);
        }

        pub fn count(&self) -> u64 {
            self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
        }

        /// The nearest-rank percentile `p` (0-100), in ms: the middle of its
        /// bucket, never above the largest value recorded.
        pub fn percentile_ms(&self, p: f64) -> f64 {
            let total = self.count();
            if total == 0 {
                return 0.0;
            }
            let rank = (((p / 100.0) * total as f64).ceil() as u64).clamp(1, total);
            let mut seen = 0;
            for (b, c) in self.counts.iter().enumerate() {
                seen += c.load(Ordering::Relaxed);
                if seen >= rank {
                    let (low, high) = bucket_range(b);
                    let mid = low + (high - low) / 2;
                    return mid.min(self.max.load(Ordering::Relaxed)) as f64 / 1000.0;
                }
            }
            self.max_ms()
        }

        pub fn max_ms(&self) -> f64 {
            self.max.load(Ordering::Relaxed) as f64 / 1000.0
        }
    }

    /// The nearest-rank percentile `p` (0-100) of sorted samples, in ms.
    pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        let i = rank.clamp(1, sorted.len()) - 1;
        sorted[i].as_secs_f64() * 1000.0
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn buckets_cover_values_in_order() {
            let mut last = 0;
            for v in (0..5000u64).chain([1 << 20, (1 << 20) + 12345, u64::MAX / 3, u64::MAX]) {
                let b = bucket(v);
                assert!(b < BUCKETS);
                let (low, high) = bucket_range(b);
                assert!(low <= v && v <= high, "{v} in bucket {b} [{low}, {high}]");
                assert!(high - low <= low / 32 + 1, "bucket {b} too wide");
                if v < 5000 {
                    assert!(b >= last);
                    last = b;
                }
            }
        }

        #[test]
        fn histogram_percentiles() {
            let h = Histogram::default();
            assert_eq!(h.percentile_ms(99.0), 0.0);
            for us in 1..=1000 {
                h.record_us(us);
            }
            assert_eq!(h.count(), 1000);
            let p50 = h.percentile_ms(50.0);
            assert!((0.485..=0.515).contains(&p50), "p50 {p50}");
            let p99 = h.percentile_ms(99.0);
            assert!((0.96..=1.0).contains(&p99), "p99 {p99}");
            assert_eq!(h.max_ms(), 1.0);
        }
    }
}

/// The `idle` scenario.
mod idle {
    use super::*;

    use super::proc::kib;

    /// Login errors printed in full; later ones are only counted.
    const ERRORS_SHOWN: usize = 5;

    /// Protocol version, cipher suite and key exchange group of a connection.
    fn negotiated(conn: &rustls::ClientConnection) -> String {
        let version = conn
            .protocol_version()
            .map_or_else(|| "?".to_owned(), |v| format!("{v:?}"));
        let suite = conn
            .negotiated_cipher_suite()
            .map_or_else(|| "?".to_owned(), |s| format!("{:?}", s.suite()));
        let group = conn
            .negotiated_key_exchange_group()
            .map_or_else(|| "?".to_owned(), |g| format!("{:?}", g.name()));
        format!("{version}/{suite}/{group}")
    }

    pub async fn run(args: IdleArgs) -> anyhow::Result<()> {
        let t = &args.target;
        if t.users == 0 || t.concurrency == 0 {
            bail!("--users and --concurrency must be at least 1");
        }
        let client = Arc::new(login::Client::new(t, Mechanism::Plain, t.users)?);
        if let Some(limit) = proc::open_files_limit()
            && limit < t.users as u64 + 64
        {
            eprintln!(
                "warning: open files limit is {limit}, below {} users; raise it with `ulimit -n`",
                t.users
            );
        }
        let pid = t.server_pid.map(|p| p.to_string());
        let server_rss = || pid.as_deref().and_then(|p| proc::status_kib(p, "VmRSS"));
        let before = server_rss();
        if let Some(p) = &pid
            && before.is_none()
        {
            bail!("cannot read /proc/{p}/status: is the server running on this machine?");
        }
        eprintln!(
            "idle: {} users against {} (sources {:?}), {} at a time; server RSS before: {} KiB",
            t.users,
            t.server,
            client.sources(),
            t.concurrency,
            kib(before)
        );

        let stats = Arc::new(login::HoldStats::default());
        let mut holders = JoinSet::new();
        let mut logins: JoinSet<(Duration, anyhow::Result<login::Session>)> = JoinSet::new();
        let mut latencies = Vec::with_capacity(t.users);
        let mut failed = 0usize;
        // What the first session negotiated, e.g. `TLSv1_3/TLS13_AES_256_GCM_SHA384/X25519`.
        let mut tls = None;
        let started = Instant::now();
        let ramp_end = started + Duration::from_secs(args.ramp_timeout);
        let mut progress = tokio::time::interval(Duration::from_secs(5));
        progress.tick().await;
        let mut next = 0usize;
        loop {
            // The number of logins in flight is the concurrency bound.
            while next < t.users && logins.len() < t.concurrency {
                let client = client.clone();
                let (index, account) = (next, t.first_user + next);
                logins.spawn(async move {
                    let start = Instant::now();
                    let r = client.login(index, account).await;
                    (start.elapsed(), r)
                });
                next += 1;
            }
            if logins.is_empty() {
                break;
            }
            tokio::select! {
                joined = logins.join_next() => match joined {
                    Some(Ok((elapsed, Ok(session)))) => {
                        if tls.is_none() {
                            tls = Some(negotiated(session.get_ref().1));
                        }
                        latencies.push(elapsed);
                        holders.spawn(login::hold(session, stats.clone()));
                    }
                    Some(Ok((_, Err(e)))) => {
                        failed += 1;
                        if failed <= ERRORS_SHOWN {
                            eprintln!("login failed: {e:#}");
                        }
                    }
                    Some(Err(e)) => {
                        failed += 1;
                        eprintln!("login task failed: {e}");
                    }
                    None => break,
                },
                _ = sleep_until(ramp_end) => {
                    let abandoned = logins.len() + (t.users - next);
                    eprintln!("ramp timeout: abandoning {abandoned} logins");
                    failed += abandoned;
                    logins.abort_all();
                    break;
                }
                _ = progress.tick() => eprintln!(
                    "  {:>6.1}s established {} failed {} in flight {} server RSS {} KiB",
                    started.elapsed().as_secs_f64(),
                    latencies.len(),
                    failed,
                    logins.len(),
                    kib(server_rss()),
                ),
            }
        }
        let ramp = started.elapsed();
        let established = latencies.len();
        eprintln!(
            "logins done in {:.1}s: {established} established, {failed} failed; settling {}s",
            ramp.as_secs_f64(),
            args.settle
        );

        sleep(Duration::from_secs(args.settle)).await;
        let after = server_rss();
        let hwm = pid.as_deref().and_then(|p| proc::status_kib(p, "VmHWM"));
        let gen_rss = proc::status_kib("self", "VmRSS");
        let alive = established.saturating_sub(stats.closed.load(Ordering::Relaxed));
        let per_session = match (before, after) {
            (Some(b), Some(a)) if alive > 0 => {
                format!("{:.2}", (a as f64 - b as f64) / alive as f64)
            }
            _ => "na".to_owned(),
        };
        eprintln!(
            "after {}s: {alive} sessions alive, server RSS {} KiB ({per_session} KiB/session); holding {}s",
            args.settle,
            kib(after),
            args.hold.saturating_sub(args.settle)
        );
        sleep(Duration::from_secs(args.hold.saturating_sub(args.settle))).await;
        let end = server_rss();
        let lost = stats.closed.load(Ordering::Relaxed);
        let pings = stats.pings.load(Ordering::Relaxed);

        latencies.sort_unstable();
        println!(
            "idle users={} established={established} failed={failed} lost={lost} pings={pings} \
             tls={} ramp_s={:.1} login_p50_ms={:.2} login_p99_ms={:.2} login_max_ms={:.2} \
             server_rss_before_kib={} server_rss_after_kib={} kib_per_session={per_session} \
             server_rss_end_kib={} server_hwm_kib={} gen_rss_kib={}",
            t.users,
            tls.as_deref().unwrap_or("none"),
            ramp.as_secs_f64(),
            stats::percentile_ms(&latencies, 50.0),
            stats::percentile_ms(&latencies, 99.0),
            stats::percentile_ms(&latencies, 100.0),
            kib(before),
            kib(after),
            kib(end),
            kib(hwm),
            kib(gen_rss),
        );

        holders.abort_all();
        if timeout(Duration::from_secs(10), async {
            while holders.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            eprintln!("some sessions did not stop in time");
        }
        if established == 0 {
            bail!("no session could be established");
        }
        Ok(())
    }
}

/// The `login` scenario: login throughput.
mod logins {
    use super::proc::{CpuMark, kib};
    use super::*;

    /// Problems printed in full; later ones are only counted.
    const SHOWN: usize = 5;

    /// What one pass over the accounts gave.
    struct Pass {
        times: Vec<Duration>,
        failed: usize,
        /// Sessions whose stream the server did not close in answer to ours.
        unclean: usize,
        elapsed: Duration,
    }

    /// Log every account in and out `rounds` times, `concurrency` at a time.
    async fn pass(
        client: &Arc<login::Client>,
        t: &TargetArgs,
        rounds: usize,
        ramp_timeout: Duration,
        what: &str,
    ) -> Pass {
        let total = t.users * rounds;
        let mut times = Vec::with_capacity(total);
        let (mut failed, mut unclean) = (0usize, 0usize);
        let mut tasks: JoinSet<anyhow::Result<login::Closed>> = JoinSet::new();
        let started = Instant::now();
        let ramp_end = started + ramp_timeout;
        let mut progress = tokio::time::interval(Duration::from_secs(5));
        progress.tick().await;
        let mut next = 0usize;
        loop {
            while next < total && tasks.len() < t.concurrency {
                let client = client.clone();
                let (index, account) = (next, t.first_user + next % t.users);
                tasks.spawn(async move { client.login_and_out(index, account).await });
                next += 1;
            }
            if tasks.is_empty() {
                break;
            }
            tokio::select! {
                joined = tasks.join_next() => match joined {
                    Some(Ok(Ok(closed))) => {
                        times.push(closed.elapsed);
                        unclean += usize::from(!closed.clean);
                    }
                    Some(Ok(Err(e))) => {
                        failed += 1;
                        if failed <= SHOWN {
                            eprintln!("login failed: {e:#}");
                        }
                    }
                    Some(Err(e)) => {
                        failed += 1;
                        eprintln!("login task failed: {e}");
                    }
                    None => break,
                },
                _ = sleep_until(ramp_end) => {
                    let abandoned = tasks.len() + (total - next);
                    eprintln!("{what}: ramp timeout, abandoning {abandoned} logins");
                    failed += abandoned;
                    tasks.abort_all();
                    break;
                }
                _ = progress.tick() => eprintln!(
                    "  {what} {:>6.1}s done {} failed {failed} in flight {}",
                    started.elapsed().as_secs_f64(),
                    times.len(),
                    tasks.len(),
                ),
            }
        }
        Pass {
            times,
            failed,
            unclean,
            elapsed: started.elapsed(),
        }
    }

    pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
        let t = &args.target;
        if t.users == 0 || t.concurrency == 0 || args.rounds == 0 {
            bail!("--users, --concurrency and --rounds must be at least 1");
        }
        let mechanism = t.mechanism.unwrap_or(Mechanism::ScramSha256);
        let warm_up = mechanism == Mechanism::ScramSha256 && !args.cold;
        let connections = t.users * (args.rounds + usize::from(warm_up));
        let client = Arc::new(login::Client::new(t, mechanism, connections)?);
        let pid = t.server_pid.map(|p| p.to_string());
        let server_rss = || pid.as_deref().and_then(|p| proc::status_kib(p, "VmRSS"));
        let rss_before = server_rss();
        if let Some(p) = &pid
            && rss_before.is_none()
        {
            bail!("cannot read /proc/{p}/status: is the server running on this machine?");
        }
        let ramp_timeout = Duration::from_secs(args.ramp_timeout);
        eprintln!(
            "login: {} users x {} rounds with {} against {} (sources {:?}), {} at a time",
            t.users,
            args.rounds,
            mechanism.name(),
            t.server,
            client.sources(),
            t.concurrency
        );

        // SCRAM: one login per account first, so that the measured pass
        // finds every account's keys cached, as a returning client would.
        let mut warmup_s = 0.0;
        if warm_up {
            let warm = pass(&client, t, 1, ramp_timeout, "warm-up").await;
            warmup_s = warm.elapsed.as_secs_f64();
            eprintln!(
                "warm-up done in {warmup_s:.1}s: {} logins, {} failed, {} keys derived",
                warm.times.len(),
                warm.failed,
                client.derivations()
            );
            if warm.failed > 0 {
                bail!("{} warm-up logins failed", warm.failed);
            }
        }
        let derived_before = client.derivations();

        let cpu_before = CpuMark::now(pid.as_deref());
        let mut measured = pass(&client, t, args.rounds, ramp_timeout, "login").await;
        let cpu = cpu_before.until(&CpuMark::now(pid.as_deref()));
        let rss_after = server_rss();
        let hwm = pid.as_deref().and_then(|p| proc::status_kib(p, "VmHWM"));
        let derived = client.derivations() - derived_before;
        let ok = measured.times.len();
        measured.times.sort_unstable();
        let cache = match mechanism {
            Mechanism::Plain => "na",
            Mechanism::ScramSha256 if derived == 0 => "warm",
            Mechanism::ScramSha256 if derived >= ok => "cold",
            Mechanism::ScramSha256 => "partial",
        };
        let elapsed = measured.elapsed.as_secs_f64();
        println!(
            "login users={} rounds={} mechanism={} cache={cache} pbkdf2={derived} \
             concurrency={} logins={ok} failed={} unclean_close={} elapsed_s={elapsed:.2} \
             logins_per_s={:.0} login_p50_ms={:.2} login_p99_ms={:.2} login_max_ms={:.2} \
             server_cpu_pct={} gen_cpu_pct={} logins_per_server_cpu_s={} \
             server_rss_before_kib={} server_rss_after_kib={} server_hwm_kib={} \
             warmup_s={warmup_s:.1} gen_rss_kib={}",
            t.users,
            args.rounds,
            mechanism.name(),
            t.concurrency,
            measured.failed,
            measured.unclean,
            ok as f64 / elapsed.max(1e-9),
            stats::percentile_ms(&measured.times, 50.0),
            stats::percentile_ms(&measured.times, 99.0),
            stats::percentile_ms(&measured.times, 100.0),
            cpu.server_pct(),
            cpu.generator_pct(),
            cpu.per_server_cpu_s(ok as u64),
            kib(rss_before),
            kib(rss_after),
            kib(hwm),
            kib(proc::status_kib("self", "VmRSS")),
        );
        if measured.failed > 0 {
            bail!("{} logins failed", measured.failed);
        }
        Ok(())
    }
}

/// Cheap XML for the receiving side: top-level elements found by scanning
/// for `<` and `>`, looked into by substring.
mod scan {
    /// Cuts a stream of top-level elements (the stanzas of an established
    /// stream, after its header) into whole elements, keeping only the
    /// unfinished one buffered. It does not check XML: it assumes what
    /// servers send, where `>` in attribute values is escaped.
    #[derive(Default)]
    pub struct Splitter {
        buf: Vec<u8>,
        /// Where scanning resumes.
        pos: usize,
        /// Open elements of the current stanza.
        depth: usize,
        /// Where the current stanza starts.
        start: usize,
    }

    /// Whether the stream goes on after what was fed.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Flow {
        Open,
        /// `</stream:stream>` came.
        Closed,
    }

    impl Splitter {
        /// Bytes buffered (an unfinished stanza).
        #[cfg(test)]
        pub fn buffered(&self) -> usize {
            self.buf.len()
        }

        /// Add `data`, calling `stanza` for every element it completes.
        pub fn feed(&mut self, data: &[u8], mut stanza: impl FnMut(&[u8])) -> Flow {
            self.buf.extend_from_slice(data);
            let buf = &self.buf;
            let (mut pos, mut depth, mut start) = (self.pos, self.depth, self.start);
            // Bytes handled for good: dropped at the end.
            let mut done = if depth == 0 { pos } else { start };
            let mut flow = Flow::Open;
            while let Some(lt) = buf[pos..].iter().position(|&b| b == b'<') {
                let lt = pos + lt;
                if depth == 0 {
                    done = lt; // whitespace between stanzas
                }
                let Some(gt) = buf[lt + 1..].iter().position(|&b| b == b'>') else {
                    pos = lt; // an unfinished tag: scan it again with more data
                    break;
                };
                let gt = lt + 1 + gt;
                pos = gt + 1;
                match buf.get(lt + 1) {
                    Some(b'/') => {
                        if depth == 0 {
                            flow = Flow::Closed;
                            done = pos;
                            break;
                        }
                        depth -= 1;
                        if depth == 0 {
                            stanza(&buf[start..pos]);
                            done = pos;
                        }
                    }
                    Some(b'?') | Some(b'!') => {
                        if depth == 0 {
                            done = pos;
                        }
                    }
                    _ => {
                        if depth == 0 {
                            start = lt;
                        }
                        if buf[gt - 1] == b'/' {
                            if depth == 0 {
                                stanza(&buf[lt..pos]);
                                done = pos;
                            }
                        } else {
                            depth += 1;
                        }
                    }
                }
            }
            if depth == 0 && !buf[pos..].contains(&b'<') {
                // Only text (keepalive whitespace) is left.
                pos = buf.len();
                done = pos;
            }
            self.buf.drain(..done);
            self.pos = pos - done;
            self.start = start.saturating_sub(done);
            self.depth = depth;
            flow
        }
    }

    /// Where `needle` starts in `haystack`.
    pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        if needle.is_empty() || haystack.len() < needle.len() {
            return None;
        }
        let first = needle[0];
        let last = haystack.len() - needle.len();
        let mut i = 0;
        while i <= last {
            let at = haystack[i..=last].iter().position(|&b| b == first)?;
            i += at;
            if &haystack[i..i + needle.len()] == needle {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    /// The start tag of an element (up to its first `>`).
    pub fn start_tag(element: &[u8]) -> &[u8] {
        match element.iter().position(|&b| b == b'>') {
            Some(end) => &element[..=end],
            None => element,
        }
    }

    /// Whether the start tag has `name='value'` (either quote style).
    pub fn has_attr(tag: &[u8], name: &str, value: &str) -> bool {
        find(tag, format!(" {name}='{value}'").as_bytes()).is_some()
            || find(tag, format!(" {name}=\"{value}\"").as_bytes()).is_some()
    }

    /// Whether the element has a `<status code='CODE'/>` (either quote style).
    pub fn has_status(element: &[u8], code: &str) -> bool {
        find(element, format!("code='{code}'").as_bytes()).is_some()
            || find(element, format!("code=\"{code}\"").as_bytes()).is_some()
    }

    /// The start of an element, for error messages.
    pub fn snippet(element: &[u8]) -> String {
        String::from_utf8_lossy(&element[..element.len().min(400)]).into_owned()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn split(chunks: &[&str]) -> (Vec<String>, Flow, usize) {
            let mut s = Splitter::default();
            let mut out = Vec::new();
            let mut flow = Flow::Open;
            for c in chunks {
                flow = s.feed(c.as_bytes(), |e| {
                    out.push(String::from_utf8(e.to_vec()).expect("utf-8"))
                });
            }
            (out, flow, s.buffered())
        }

        #[test]
        fn cuts_stanzas_whatever_the_reads() {
            let stream = "<presence from='a'/> <message type='groupchat'><body>jb 0 1 2</body>\
                          <stanza-id xmlns='urn:xmpp:sid:0' id='x'/></message>\n\
                          <iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>";
            let whole = split(&[stream]);
            assert_eq!(
                whole.0,
                vec![
                    "<presence from='a'/>".to_owned(),
                    "<message type='groupchat'><body>jb 0 1 2</body>\
                     <stanza-id xmlns='urn:xmpp:sid:0' id='x'/></message>"
                        .to_owned(),
                    "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>".to_owned(),
                ]
            );
            assert_eq!(whole.1, Flow::Open);
            assert_eq!(whole.2, 0);
            // The same bytes one at a time, and cut at every position.
            let bytes: Vec<String> = stream.chars().map(String::from).collect();
            let refs: Vec<&str> = bytes.iter().map(String::as_str).collect();
            assert_eq!(split(&refs).0, whole.0);
            for cut in 1..stream.len() {
                let (a, b) = stream.split_at(cut);
                assert_eq!(split(&[a, b]).0, whole.0, "cut at {cut}");
            }
        }

        #[test]
        fn keeps_only_the_unfinished_stanza() {
            let (out, flow, buffered) = split(&["<message><body>hel", "lo</bo"]);
            assert!(out.is_empty());
            assert_eq!(flow, Flow::Open);
            assert_eq!(buffered, "<message><body>hello</bo".len());
            let (out, _, buffered) = split(&["<a/>   ", "  "]);
            assert_eq!(out, vec!["<a/>".to_owned()]);
            assert_eq!(buffered, 0);
        }

        #[test]
        fn sees_the_end_of_the_stream() {
            let (out, flow, _) = split(&["<a/><stream:error><x/></stream:error></stream:stream>"]);
            assert_eq!(out.len(), 2);
            assert_eq!(flow, Flow::Closed);
        }

        #[test]
        fn finds_attributes_and_status_codes() {
            let p =
                b"<presence from=\"r@c/n\" type=\"error\"><x><status code=\"110\"/></x></presence>";
            assert!(has_attr(start_tag(p), "type", "error"));
            assert!(!has_attr(start_tag(p), "type", "get"));
            assert!(has_status(p, "110"));
            assert!(!has_status(p, "201"));
            assert_eq!(find(b"abcabd", b"abd"), Some(3));
            assert_eq!(find(b"ab", b"abc"), None);
        }
    }
}

/// The `muc` scenario: groupchat fan-out.
mod muc {
    use super::proc::{CpuMark, kib};
    use super::scan::{Flow, Splitter, find, has_attr, has_status, snippet, start_tag};
    use super::stats::Histogram;
    use super::*;
    use std::io::Write as _;
    use std::sync::atomic::AtomicU64;
    use tokio::sync::{Semaphore, mpsc, watch};
    use tokio_util::sync::CancellationToken;

    /// What starts a message body: `jb SENDER SEQ NANOS`, where SENDER is the
    /// sender's place in its room, SEQ counts its messages from 0 and NANOS is
    /// the (planned) send time in nanoseconds since the generator started.
    const MARKER: &[u8] = b"<body>jb ";
    /// The id of the room configuration request.
    const CONFIG_ID: &str = "jb-config";
    /// Problems printed in full; later ones are only counted.
    const SHOWN: u64 = 5;

    /// Sender, sequence number and send time of a benchmark message.
    pub fn parse_body(stanza: &[u8]) -> Option<(usize, u64, u64)> {
        let mut fields = body_fields(stanza)?;
        let sender = usize::try_from(number(fields.next()?)?).ok()?;
        let seq = number(fields.next()?)?;
        let nanos = number(fields.next()?)?;
        Some((sender, seq, nanos))
    }

    /// The optional fifth field of a body (`jb SENDER SEQ PLANNED SENT`):
    /// when the message actually left the generator, in ns.
    pub fn parse_sent(stanza: &[u8]) -> Option<u64> {
        number(body_fields(stanza)?.nth(3)?)
    }

    /// The space-separated fields after the benchmark marker.
    fn body_fields(stanza: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
        let at = find(stanza, MARKER)? + MARKER.len();
        let rest = &stanza[at..];
        let end = rest.iter().position(|&b| b == b'<')?;
        Some(rest[..end].split(|&b| b == b' '))
    }

    /// A decimal u64 field (no sign, no overflow).
    fn number(f: &[u8]) -> Option<u64> {
        if f.is_empty() || f.len() > 20 {
            return None;
        }
        f.iter().try_fold(0u64, |n, &d| {
            d.is_ascii_digit()
                .then(|| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))?
        })
    }

    /// When sending starts and stops.
    #[derive(Clone, Copy)]
    struct Go {
        start: Instant,
        send_end: Instant,
    }

    /// State shared by every occupant task.
    struct Shared {
        /// The clock of the message timestamps.
        base: Instant,
        /// Messages sent, per room.
        sent: Vec<AtomicU64>,
        delivered: AtomicU64,
        /// Error stanzas received (bounced messages, refused joins...).
        errors: AtomicU64,
        /// Latest delivery, in ns since `base`.
        last_delivery: AtomicU64,
        latency: Histogram,
        /// Sent messages in open loop planned but sent late (generator behind).
        late: AtomicU64,
        joins: Semaphore,
        go: watch::Receiver<Option<Go>>,
        cancel: CancellationToken,
        args: MucArgs,
        service: String,
        /// Closed loop: None. Open loop: the interval between two messages of one sender.
        interval: Option<Duration>,
        senders_total: usize,
    }

    impl Shared {
        fn nanos(&self, at: Instant) -> u64 {
            u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
        }

        fn error(&self, what: &str, stanza: &[u8]) {
            let n = self.errors.fetch_add(1, Ordering::Relaxed);
            if n < SHOWN {
                eprintln!("{what}: {}", snippet(stanza));
            }
        }
    }

    /// What one occupant saw, returned when its task ends.
    struct Outcome {
        room: usize,
        received: u64,
        out_of_order: u64,
        closed: bool,
    }

    /// One occupant: its session and just enough state to count.
    struct Occupant {
        session: login::Session,
        splitter: Splitter,
        room: usize,
        /// Place in the room (0 created it; below `senders` sends).
        place: usize,
        /// `room@service`.
        room_jid: String,
        nick: String,
        /// Messages received.
        received: u64,
        /// Next expected sequence number from each sender of the room.
        next_seq: Vec<u64>,
        out_of_order: u64,
        // Filled by `handle`, acted upon by the task:
        /// Own messages that came back (closed loop: send the next).
        own_back: usize,
        /// Joined (true: the room was created by this join).
        joined: Option<bool>,
        /// Answer to the configuration request.
        configured: Option<Result<(), String>>,
        join_error: Option<String>,
        replies: Vec<String>,
        closed: bool,
    }

    impl Occupant {
        /// Look at one stanza.
        fn handle(&mut self, stanza: &[u8], now: u64, shared: &Shared) {
            let tag = start_tag(stanza);
            if tag.starts_with(b"<message") {
                if has_attr(tag, "type", "error") {
                    shared.error("error message", stanza);
                    return;
                }
                let Some((sender, seq, sent_at)) = parse_body(stanza) else {
                    return; // the subject, or something else
                };
                self.received += 1;
                shared.delivered.fetch_add(1, Ordering::Relaxed);
                shared.last_delivery.fetch_max(now, Ordering::Relaxed);
                shared.latency.record_us(now.saturating_sub(sent_at) / 1000);
                if let Some(next) = self.next_seq.get_mut(sender) {
                    if seq < *next {
                        self.out_of_order += 1;
                    }
                    *next = (*next).max(seq + 1);
                }
                if sender == self.place && self.place < self.next_seq.len() {
                    self.own_back += 1;
                }
            } else if tag.starts_with(b"<presence") {
                if self.joined.is_some() {
                    return;
                }
                if has_attr(tag, "type", "error") {
                    self.join_error = Some(snippet(stanza));
                } else if has_status(stanza, "110") {
                    self.joined = Some(has_status(stanza, "201"));
                }
            } else if tag.starts_with(b"<iq") {
                if has_attr(tag, "id", CONFIG_ID) {
                    self.configured = Some(if has_attr(tag, "type", "result") {
                        Ok(())
                    } else {
                        Err(snippet(stanza))
                    });
                } else if let Some(reply) = login::ping_reply(stanza) {
                    self.replies.push(reply);
                } else if has_attr(tag, "type", "get") || has_attr(tag, "type", "set") {
                    shared.error("unexpected request", stanza);
                }
            }
        }

        /// Read once (until `deadline`) and handle what came.
        async fn pump(&mut self, shared: &Shared, deadline: Instant) -> anyhow::Result<()> {
            let mut chunk = [0u8; 4096];
            let n = timeout_at(deadline, self.session.read(&mut chunk))
                .await
                .map_err(|_| anyhow!("timed out"))?
                .unwrap_or(0);
            self.feed(&chunk[..n], shared).await
        }

        /// Handle `data` just read (empty: the connection was closed).
        async fn feed(&mut self, data: &[u8], shared: &Shared) -> anyhow::Result<()> {
            if data.is_empty() {
                self.closed = true;
                bail!("connection closed by the server");
            }
            let now = shared.nanos(Instant::now());
            let mut splitter = std::mem::take(&mut self.splitter);
            let flow = splitter.feed(data, |s| self.handle(s, now, shared));
            self.splitter = splitter;
            if flow == Flow::Closed {
                self.closed = true;
                bail!("stream closed by the server");
            }
            if !self.replies.is_empty() {
                let replies = std::mem::take(&mut self.replies).concat();
                self.write(replies.as_bytes()).await?;
            }
            Ok(())
        }

        async fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
            self.session.write_all(data).await?;
            self.session.flush().await?;
            Ok(())
        }

        /// Join the room (and, for its first occupant, create and configure
        /// it). Returns whether this join created the room.
        async fn join(&mut self, shared: &Shared, deadline: Instant) -> anyhow::Result<bool> {
            let _permit = shared.joins.acquire().await?;
            let join = format!(
                "<presence to='{}/{}'><x xmlns='http://jabber.org/protocol/muc'>\
                 <history maxstanzas='0'/></x></presence>",
                self.room_jid, self.nick
            );
            self.write(join.as_bytes()).await?;
            let created = loop {
                if let Some(created) = self.joined {
                    break created;
                }
                if let Some(e) = self.join_error.take() {
                    bail!("join refused: {e}");
                }
                self.pump(shared, deadline).await.context("join")?;
            };
            if created {
                let max_users = shared.args.max_users.unwrap_or(shared.args.room_size);
                let config = format!(
                    "<iq type='set' to='{}' id='{CONFIG_ID}'>\
                     <query xmlns='http://jabber.org/protocol/muc#owner'>\
                     <x xmlns='jabber:x:data' type='submit'>\
                     <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
                     <field var='muc#roomconfig_maxusers'><value>{max_users}</value></field>\
                     </x></query></iq>",
                    self.room_jid
                );
                self.write(config.as_bytes()).await?;
                loop {
                    match self.configured.take() {
                        Some(Ok(())) => break,
                        Some(Err(e)) => bail!("room configuration refused: {e}"),
                        None => self.pump(shared, deadline).await.context("configuration")?,
                    }
                }
            }
            Ok(created)
        }

        /// Append one message to `out`.
        fn message(&self, out: &mut Vec<u8>, prefix: &[u8], seq: u64, at: u64) {
            out.extend_from_slice(prefix);
            let _ = write!(out, "{seq} {at}</body></message>");
        }

        /// Receive (and send, for a sender) until cancelled.
        async fn run(&mut self, shared: &Shared, go: Go) -> anyhow::Result<()> {
            let sender = self.place < self.next_seq.len();
            // Closed loop (no interval): a sender sends again when its own
            // message comes back. In open loop it never does, not even once
            // its schedule is over.
            let closed_loop = shared.interval.is_none();
            // Pre-serialised: all but the sequence number and the time.
            let prefix = format!(
                "<message to='{}' type='groupchat'><body>jb {} ",
                self.room_jid, self.place
            )
            .into_bytes();
            let mut out = Vec::with_capacity(256);
            let mut seq = 0u64;
            let sent = &shared.sent[self.room];
            // Open loop: when the next message is due. Senders are spread
            // evenly over one interval.
            let mut due = shared.interval.map(|interval| {
                let index = self.room * shared.args.senders + self.place;
                go.start + interval.mul_f64(index as f64 / shared.senders_total as f64)
            });
            if sender && closed_loop {
                for _ in 0..shared.args.window.max(1) {
                    self.message(&mut out, &prefix, seq, shared.nanos(Instant::now()));
                    seq += 1;
                }
                self.write(&out).await?;
                sent.fetch_add(seq, Ordering::Relaxed);
            }
            let mut chunk = [0u8; 4096];
            loop {
                let next = due.filter(|_| sender);
                tokio::select! {
                    read = self.session.read(&mut chunk) => {
                        let n = read.unwrap_or(0);
                        self.feed(&chunk[..n], shared).await?;
                        if sender && self.own_back > 0 && closed_loop {
                            out.clear();
                            let now = Instant::now();
                            let mut count = 0;
                            if now < go.send_end {
                                for _ in 0..self.own_back {
                                    self.message(&mut out, &prefix, seq, shared.nanos(now));
                                    seq += 1;
                                    count += 1;
                                }
                            }
                            self.own_back = 0;
                            if count > 0 {
                                self.write(&out).await?;
                                sent.fetch_add(count, Ordering::Relaxed);
                            }
                        }
                        self.own_back = 0;
                    }
                    _ = sleep_until(next.unwrap_or(go.send_end)), if next.is_some() => {
                        let (Some(interval), Some(mut at)) = (shared.interval, due) else {
                            continue;
                        };
                        out.clear();
                        let now = Instant::now();
                        let mut count = 0;
                        // Every message due by now, each stamped with its
                        // planned time (a late generator shows as latency).
                        while at <= now && at < go.send_end {
                            self.message(&mut out, &prefix, seq, shared.nanos(at));
                            seq += 1;
                            count += 1;
                            at += interval;
                        }
                        if count > 1 {
                            shared.late.fetch_add(count - 1, Ordering::Relaxed);
                        }
                        due = (at < go.send_end).then_some(at);
                        if count > 0 {
                            self.write(&out).await?;
                            sent.fetch_add(count, Ordering::Relaxed);
                        }
                    }
                    _ = shared.cancel.cancelled() => return Ok(()),
                }
            }
        }
    }

    /// One occupant's whole life: join, wait for the start, run.
    async fn occupant(
        mut o: Occupant,
        shared: Arc<Shared>,
        ready: (watch::Sender<Option<bool>>, watch::Receiver<Option<bool>>),
        joined: mpsc::Sender<anyhow::Result<bool>>,
    ) -> Outcome {
        let deadline = Instant::now() + Duration::from_secs(shared.args.join_timeout);
        let result = async {
            if o.place > 0 {
                // Wait for the room to be created and configured.
                let mut rx = ready.1.clone();
                let ok = timeout_at(deadline, async {
                    rx.wait_for(Option::is_some).await.ok().and_then(|r| *r)
                })
                .await
                .map_err(|_| anyhow!("the room was never ready"))?;
                if ok != Some(true) {
                    bail!("its creator could not create the room");
                }
            }
            let created = o.join(&shared, deadline).await;
            if o.place == 0 {
                let _ = ready.0.send(Some(created.is_ok()));
            }
            created
        }
        .await;
        drop(ready);
        let failed = result.is_err();
        let _ = joined
            .send(result.with_context(|| format!("{} in {}", o.nick, o.room_jid)))
            .await;
        drop(joined);
        if !failed {
            // Read (presence of later joiners) until told to start.
            let mut go_rx = shared.go.clone();
            let go = loop {
                let mut chunk = [0u8; 4096];
                tokio::select! {
                    go = async { go_rx.wait_for(Option::is_some).await.ok().and_then(|g| *g) } => {
                        break go;
                    }
                    read = o.session.read(&mut chunk) => {
                        let n = read.unwrap_or(0);
                        if o.feed(&chunk[..n], &shared).await.is_err() {
                            break None;
                        }
                    }
                    _ = shared.cancel.cancelled() => break None,
                }
            };
            if let Some(go) = go
                && let Err(e) = o.run(&shared, go).await
                && shared.errors.fetch_add(1, Ordering::Relaxed) < SHOWN
            {
                eprintln!("{} in {}: {e:#}", o.nick, o.room_jid);
            }
        }
        Outcome {
            room: o.room,
            received: o.received,
            out_of_order: o.out_of_order,
            closed: o.closed,
        }
    }

    pub async fn run(args: MucArgs) -> anyhow::Result<()> {
        let t = args.target.clone();
        if args.room_size == 0 || t.concurrency == 0 || args.join_concurrency == 0 {
            bail!("--room-size, --concurrency and --join-concurrency must be at least 1");
        }
        let rooms = t.users / args.room_size;
        if rooms == 0 {
            bail!(
                "--users ({}) is below --room-size ({})",
                t.users,
                args.room_size
            );
        }
        let users = rooms * args.room_size;
        if users < t.users {
            eprintln!(
                "warning: {} users left out ({} rooms of {})",
                t.users - users,
                rooms,
                args.room_size
            );
        }
        let senders = args.senders.min(args.room_size);
        let senders_total = rooms * senders;
        if senders_total == 0 {
            bail!("--senders must be at least 1");
        }
        let interval = match args.rate {
            None => None,
            Some(rate) if rate > 0.0 && rate.is_finite() => {
                Some(Duration::from_secs_f64(senders_total as f64 / rate))
            }
            Some(rate) => bail!("--rate must be above 0, not {rate}"),
        };
        let service = args
            .service
            .clone()
            .unwrap_or_else(|| format!("conference.{}", t.domain));
        if let Some(limit) = proc::open_files_limit()
            && limit < users as u64 + 64
        {
            eprintln!(
                "warning: open files limit is {limit}, below {users} users; raise it with `ulimit -n`"
            );
        }
        let pid = t.server_pid.map(|p| p.to_string());
        let server_rss = || pid.as_deref().and_then(|p| proc::status_kib(p, "VmRSS"));
        let rss_before = server_rss();
        if let Some(p) = &pid
            && rss_before.is_none()
        {
            bail!("cannot read /proc/{p}/status: is the server running on this machine?");
        }
        let mode = match args.rate {
            Some(rate) => format!("open rate={rate}"),
            None => format!("closed window={}", args.window.max(1)),
        };
        eprintln!(
            "muc: {users} users in {rooms} rooms of {} at {service}, {senders} senders each, \
             {mode}, {}s; against {}",
            args.room_size, args.duration, t.server
        );

        // Log in.
        let client = Arc::new(login::Client::new(&t, Mechanism::Plain, users)?);
        let logins = login::login_all(
            &client,
            t.first_user,
            users,
            t.concurrency,
            Duration::from_secs(args.ramp_timeout),
        )
        .await;
        eprintln!(
            "logins done in {:.1}s: {} established, {} failed",
            logins.elapsed.as_secs_f64(),
            logins.latencies.len(),
            logins.failed
        );
        if logins.failed > 0 {
            bail!("{} logins failed", logins.failed);
        }

        // Join, room by room: the first occupant creates the room.
        let base = Instant::now();
        let (go_tx, go_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            base,
            sent: (0..rooms).map(|_| AtomicU64::new(0)).collect(),
            delivered: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_delivery: AtomicU64::new(0),
            latency: Histogram::default(),
            late: AtomicU64::new(0),
            joins: Semaphore::new(args.join_concurrency),
            go: go_rx,
            cancel: CancellationToken::new(),
            args: args.clone(),
            service: service.clone(),
            interval,
            senders_total,
        });
        let (joined_tx, mut joined_rx) = mpsc::channel(1024);
        let mut tasks = JoinSet::new();
        let join_start = Instant::now();
        let mut sessions = logins.sessions.into_iter();
        for room in 0..rooms {
            // The room's creator says whether the room is ready (Some(true)).
            let ready = watch::channel(None);
            for place in 0..args.room_size {
                let account = t.first_user + room * args.room_size + place;
                let Some(Some(session)) = sessions.next() else {
                    bail!("no session for account {account}");
                };
                let o = Occupant {
                    session,
                    splitter: Splitter::default(),
                    room,
                    place,
                    room_jid: format!("{}{}@{}", args.room_prefix, room + 1, shared.service),
                    nick: format!("u{account}"),
                    received: 0,
                    next_seq: vec![0; senders],
                    out_of_order: 0,
                    own_back: 0,
                    joined: None,
                    configured: None,
                    join_error: None,
                    replies: Vec::new(),
                    closed: false,
                };
                tasks.spawn(occupant(
                    o,
                    shared.clone(),
                    (ready.0.clone(), ready.1.clone()),
                    joined_tx.clone(),
                ));
            }
        }
        drop(joined_tx);
        let mut joined = 0usize;
        let mut created = 0usize;
        let mut join_failed = 0usize;
        while let Some(r) = joined_rx.recv().await {
            match r {
                Ok(c) => {
                    joined += 1;
                    created += usize::from(c);
                }
                Err(e) => {
                    join_failed += 1;
                    if join_failed as u64 <= SHOWN {
                        eprintln!("join failed: {e:#}");
                    }
                }
            }
        }
        let join_time = join_start.elapsed();
        eprintln!(
            "joins done in {:.1}s: {joined} joined ({created} rooms created), {join_failed} failed",
            join_time.as_secs_f64()
        );
        let stop = |tasks: &mut JoinSet<Outcome>| {
            shared.cancel.cancel();
            let mut tasks = std::mem::take(tasks);
            async move {
                let mut outcomes = Vec::new();
                let collect = async {
                    while let Some(o) = tasks.join_next().await {
                        if let Ok(o) = o {
                            outcomes.push(o);
                        }
                    }
                };
                if timeout(Duration::from_secs(10), collect).await.is_err() {
                    eprintln!("some occupants did not stop in time");
                }
                outcomes
            }
        };
        if join_failed > 0 {
            stop(&mut tasks).await;
            bail!("{join_failed} occupants could not join");
        }
        sleep(Duration::from_secs(args.settle)).await;

        // Send.
        let rss_joined = server_rss();
        let cpu_before = CpuMark::now(pid.as_deref());
        let start = Instant::now();
        let send_end = start + Duration::from_secs(args.duration);
        let _ = go_tx.send(Some(Go { start, send_end }));
        let expected = || -> u64 {
            shared
                .sent
                .iter()
                .map(|s| s.load(Ordering::Relaxed) * args.room_size as u64)
                .sum()
        };
        let mut progress = tokio::time::interval(Duration::from_secs(2));
        progress.tick().await;
        loop {
            tokio::select! {
                _ = sleep_until(send_end) => break,
                _ = progress.tick() => eprintln!(
                    "  {:>5.1}s sent {} delivered {} server RSS {} KiB",
                    start.elapsed().as_secs_f64(),
                    shared.sent.iter().map(|s| s.load(Ordering::Relaxed)).sum::<u64>(),
                    shared.delivered.load(Ordering::Relaxed),
                    kib(server_rss()),
                ),
            }
        }
        // Drain: wait for what is still on its way.
        let drain_end = send_end + Duration::from_secs(args.drain);
        while Instant::now() < drain_end && shared.delivered.load(Ordering::Relaxed) < expected() {
            sleep(Duration::from_millis(20)).await;
        }
        let end = Instant::now();
        let cpu = cpu_before.until(&CpuMark::now(pid.as_deref()));
        let rss_after = server_rss();
        let hwm = pid.as_deref().and_then(|p| proc::status_kib(p, "VmHWM"));
        let outcomes = stop(&mut tasks).await;

        let sent: u64 = shared.sent.iter().map(|s| s.load(Ordering::Relaxed)).sum();
        let expected = expected();
        let delivered = shared.delivered.load(Ordering::Relaxed);
        let mut lost = 0u64;
        let mut extra = 0u64;
        let mut out_of_order = 0u64;
        let mut closed = 0usize;
        for o in &outcomes {
            let should = shared.sent[o.room].load(Ordering::Relaxed);
            lost += should.saturating_sub(o.received);
            extra += o.received.saturating_sub(should);
            out_of_order += o.out_of_order;
            closed += usize::from(o.closed);
        }
        // Occupants whose task did not report count as receiving nothing.
        let missing = users.saturating_sub(outcomes.len());
        if missing > 0 {
            lost = lost.max(expected.saturating_sub(delivered));
        }
        let wall = end.saturating_duration_since(start).as_secs_f64();
        let busy_ns = shared
            .last_delivery
            .load(Ordering::Relaxed)
            .saturating_sub(shared.nanos(start));
        let busy = if busy_ns > 0 {
            busy_ns as f64 / 1e9
        } else {
            wall
        };
        let per_cpu_s = cpu.per_server_cpu_s(delivered);
        let mode = match args.rate {
            Some(rate) => format!("open rate={rate}"),
            None => format!("closed window={}", args.window.max(1)),
        };
        println!(
            "muc users={users} rooms={rooms} room_size={} senders={senders} mode={mode} \
             duration_s={} sent={sent} expected={expected} delivered={delivered} lost={lost} \
             extra={extra} out_of_order={out_of_order} errors={} closed={closed} late={} \
             delivered_per_s={:.0} lat_p50_ms={:.2} lat_p99_ms={:.2} lat_max_ms={:.2} \
             server_cpu_pct={} gen_cpu_pct={} delivered_per_server_cpu_s={per_cpu_s} \
             server_rss_before_kib={} server_rss_joined_kib={} server_rss_after_kib={} \
             server_hwm_kib={} join_s={:.1} gen_rss_kib={}",
            args.room_size,
            args.duration,
            shared.errors.load(Ordering::Relaxed),
            shared.late.load(Ordering::Relaxed),
            delivered as f64 / busy,
            shared.latency.percentile_ms(50.0),
            shared.latency.percentile_ms(99.0),
            shared.latency.max_ms(),
            cpu.server_pct(),
            cpu.generator_pct(),
            kib(rss_before),
            kib(rss_joined),
            kib(rss_after),
            kib(hwm),
            join_time.as_secs_f64(),
            kib(proc::status_kib("self", "VmRSS")),
        );
        if sent == 0 {
            bail!("no message was sent");
        }
        if lost > 0 {
            bail!("{lost} deliveries lost ({delivered} of {expected})");
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::{parse_body, parse_sent};

        #[test]
        fn reads_the_benchmark_body() {
            let m = b"<message from='bench1@conference.localhost/u1' type='groupchat'>\
                      <body>jb 1 42 1234567890</body><stanza-id xmlns='urn:xmpp:sid:0'/></message>";
            assert_eq!(parse_body(m), Some((1, 42, 1234567890)));
            assert_eq!(parse_sent(m), None);
            let m5 = b"<message><body>jb 1 42 1234567890 1234567999</body></message>";
            assert_eq!(parse_body(m5), Some((1, 42, 1234567890)));
            assert_eq!(parse_sent(m5), Some(1234567999));
            assert_eq!(parse_body(b"<message><body>hello</body></message>"), None);
            assert_eq!(
                parse_body(b"<message><body>jb 1 x 3</body></message>"),
                None
            );
            assert_eq!(parse_body(b"<message><body>jb 1 2</body></message>"), None);
            assert_eq!(
                parse_body(b"<message><body>jb 1 2 99999999999999999999999</body></message>"),
                None
            );
        }
    }
}

/// The `msg` scenario: one-to-one chat between the accounts of each pair
/// (PREFIX{2k-1} and PREFIX{2k}), both ways.
///
/// One task drives both sessions of a pair, so that a delivery seen on one
/// side directly lets the other side send its next message (closed loop),
/// with no channel between tasks. A message is
/// `<message to='PARTNER@DOMAIN' type='chat'><body>jb PLACE SEQ NANOS</body></message>`
/// (PLACE: 0 or 1 in the pair; NANOS: planned send time since the run's
/// base instant), serialised from a prefix formatted once per session.
mod msg {
    use super::muc::{parse_body, parse_sent};
    use super::proc::{CpuMark, kib};
    use super::scan::{Flow, Splitter, has_attr, snippet, start_tag};
    use super::stats::Histogram;
    use super::*;
    use std::io::Write as _;
    use std::sync::atomic::AtomicU64;
    use tokio_util::sync::CancellationToken;

    /// Problems printed in full; later ones are only counted.
    const SHOWN: u64 = 5;
    /// Open loop: a send is late when it leaves more than this after its
    /// planned time (the timer's own resolution is 1 ms).
    const LATE: Duration = Duration::from_millis(2);

    /// State shared by every pair task.
    struct Shared {
        /// The clock of the message timestamps.
        base: Instant,
        start: Instant,
        send_end: Instant,
        /// Closed loop: None. Open loop: the interval between two messages of one sender.
        interval: Option<Duration>,
        window: usize,
        sent: AtomicU64,
        delivered: AtomicU64,
        /// Error stanzas and unexpected requests received.
        errors: AtomicU64,
        late: AtomicU64,
        /// Latest delivery, in ns since `base`.
        last_delivery: AtomicU64,
        latency: Histogram,
        /// Latency from the moment each message was written (open loop:
        /// without the lateness of the generator's 1 ms timer).
        send_latency: Histogram,
        cancel: CancellationToken,
        /// After the drain, if messages are missing: each session sends a
        /// whitespace keepalive, to tell "held by the server until more
        /// input arrives" from "never sent or never read" (reported as
        /// `recovered_by_poke`).
        /// Open loop: senders that still have messages due. The drain must
        /// not start counting before they are done: a timer that fires late
        /// sends a message due before `send_end` after it.
        senders_left: AtomicU64,
        poke: CancellationToken,
    }

    impl Shared {
        fn nanos(&self, at: Instant) -> u64 {
            u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
        }

        fn error(&self, what: &str, stanza: &[u8]) {
            if self.errors.fetch_add(1, Ordering::Relaxed) < SHOWN {
                eprintln!("{what}: {}", snippet(stanza));
            }
        }
    }

    /// One session of a pair: a few counters besides its TLS stream.
    struct Side {
        session: login::Session,
        splitter: Splitter,
        /// `<message to='PARTNER' type='chat'><body>jb PLACE `.
        prefix: Box<[u8]>,
        /// 0 or 1: the place in the pair, carried in the body.
        place: usize,
        /// Messages sent (the next sequence number).
        sent: u64,
        /// Messages received from the partner.
        received: u64,
        /// Next sequence number expected from the partner.
        next_seq: u64,
        out_of_order: u64,
        /// Open loop: when the next message is due.
        due: Option<Instant>,
        closed: bool,
    }

    impl Side {
        /// Handle `data` just read (empty: the connection closed). Returns
        /// how many of the partner's messages came.
        async fn feed(&mut self, data: &[u8], shared: &Shared) -> anyhow::Result<u64> {
            if data.is_empty() {
                self.closed = true;
                bail!("connection closed by the server");
            }
            let now = shared.nanos(Instant::now());
            let mut splitter = std::mem::take(&mut self.splitter);
            let mut got = 0u64;
            let mut replies = String::new();
            let flow = splitter.feed(data, |stanza| {
                let tag = start_tag(stanza);
                if tag.starts_with(b"<message") {
                    if has_attr(tag, "type", "error") {
                        shared.error("error message", stanza);
                        return;
                    }
                    let Some((sender, seq, sent_at)) = parse_body(stanza) else {
                        return;
                    };
                    if sender == self.place {
                        shared.error("own message came back", stanza);
                        return;
                    }
                    got += 1;
                    shared.latency.record_us(now.saturating_sub(sent_at) / 1000);
                    if let Some(written) = parse_sent(stanza) {
                        shared
                            .send_latency
                            .record_us(now.saturating_sub(written) / 1000);
                    }
                    if seq < self.next_seq {
                        self.out_of_order += 1;
                    }
                    self.next_seq = self.next_seq.max(seq + 1);
                } else if tag.starts_with(b"<iq") {
                    if let Some(reply) = login::ping_reply(stanza) {
                        replies.push_str(&reply);
                    } else if has_attr(tag, "type", "get") || has_attr(tag, "type", "set") {
                        shared.error("unexpected request", stanza);
                    }
                }
            });
            self.splitter = splitter;
            if got > 0 {
                self.received += got;
                shared.delivered.fetch_add(got, Ordering::Relaxed);
                shared.last_delivery.fetch_max(now, Ordering::Relaxed);
            }
            if flow == Flow::Closed {
                self.closed = true;
                bail!("stream closed by the server");
            }
            if !replies.is_empty() {
                self.write(replies.as_bytes()).await?;
            }
            Ok(got)
        }

        async fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
            self.session.write_all(data).await?;
            self.session.flush().await?;
            Ok(())
        }

        /// Append the next message, planned at `at` and written at
        /// `written` (ns), to `out`.
        fn message(&mut self, out: &mut Vec<u8>, at: u64, written: u64) {
            out.extend_from_slice(&self.prefix);
            let _ = write!(out, "{} {at} {written}</body></message>", self.sent);
            self.sent += 1;
        }

        /// Closed loop: send `count` messages now, unless sending is over.
        async fn send_now(
            &mut self,
            count: u64,
            shared: &Shared,
            out: &mut Vec<u8>,
        ) -> anyhow::Result<()> {
            let now = Instant::now();
            if count == 0 || now >= shared.send_end {
                return Ok(());
            }
            out.clear();
            let at = shared.nanos(now);
            for _ in 0..count {
                self.message(out, at, at);
            }
            // Counted before the write: the drain after `send_end` waits for
            // delivered == sent, and must not end while a write is under way.
            shared.sent.fetch_add(count, Ordering::Relaxed);
            self.write(out).await?;
            Ok(())
        }

        /// Open loop: send every message due by `now`, each stamped with
        /// its planned time (a late generator shows as latency).
        async fn send_due(
            &mut self,
            now: Instant,
            shared: &Shared,
            out: &mut Vec<u8>,
        ) -> anyhow::Result<()> {
            let (Some(interval), Some(mut at)) = (shared.interval, self.due) else {
                return Ok(());
            };
            out.clear();
            let (mut count, mut late) = (0u64, 0u64);
            let written = shared.nanos(Instant::now());
            while at <= now && at < shared.send_end {
                self.message(out, shared.nanos(at), written);
                count += 1;
                late += u64::from(now.saturating_duration_since(at) > LATE);
                at += interval;
            }
            self.due = (at < shared.send_end).then_some(at);
            if self.due.is_none() {
                shared.senders_left.fetch_sub(1, Ordering::Relaxed);
            }
            if count > 0 {
                // Counted before the write (see `send_now`).
                shared.sent.fetch_add(count, Ordering::Relaxed);
                self.write(out).await?;
                if late > 0 {
                    shared.late.fetch_add(late, Ordering::Relaxed);
                }
            }
            Ok(())
        }
    }

    /// What a pair saw, returned when its task ends.
    struct Outcome {
        pair: usize,
        /// Per side: messages sent, and received from the partner.
        sent: [u64; 2],
        received: [u64; 2],
        next_seq: [u64; 2],
        out_of_order: u64,
        /// Sessions the server closed.
        closed: usize,
    }

    async fn pair(index: usize, mut a: Side, mut b: Side, shared: Arc<Shared>) -> Outcome {
        if let Err(e) = exchange(&mut a, &mut b, &shared).await
            && shared.errors.fetch_add(1, Ordering::Relaxed) < SHOWN
        {
            eprintln!("pair failed: {e:#}");
        }
        Outcome {
            pair: index,
            sent: [a.sent, b.sent],
            received: [a.received, b.received],
            next_seq: [a.next_seq, b.next_seq],
            out_of_order: a.out_of_order + b.out_of_order,
            closed: usize::from(a.closed) + usize::from(b.closed),
        }
    }

    /// Send and receive on both sessions until cancelled.
    async fn exchange(a: &mut Side, b: &mut Side, shared: &Shared) -> anyhow::Result<()> {
        tokio::select! {
            _ = sleep_until(shared.start) => {}
            _ = shared.cancel.cancelled() => return Ok(()),
        }
        let closed_loop = shared.interval.is_none();
        let mut out = Vec::with_capacity(128 * shared.window.max(1));
        if closed_loop {
            a.send_now(shared.window as u64, shared, &mut out).await?;
            b.send_now(shared.window as u64, shared, &mut out).await?;
        }
        let mut buf_a = [0u8; 2048];
        let mut buf_b = [0u8; 2048];
        let mut poked = false;
        loop {
            let due = match (a.due, b.due) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            };
            tokio::select! {
                read = a.session.read(&mut buf_a) => {
                    let n = read.unwrap_or(0);
                    let back = a.feed(&buf_a[..n], shared).await?;
                    if closed_loop {
                        b.send_now(back, shared, &mut out).await?;
                    }
                }
                read = b.session.read(&mut buf_b) => {
                    let n = read.unwrap_or(0);
                    let back = b.feed(&buf_b[..n], shared).await?;
                    if closed_loop {
                        a.send_now(back, shared, &mut out).await?;
                    }
                }
                _ = sleep_until(due.unwrap_or(shared.send_end)), if due.is_some() => {
                    let now = Instant::now();
                    a.send_due(now, shared, &mut out).await?;
                    b.send_due(now, shared, &mut out).await?;
                }
                _ = shared.poke.cancelled(), if !poked => {
                    poked = true;
                    a.write(b" ").await?;
                    b.write(b" ").await?;
                }
                _ = shared.cancel.cancelled() => return Ok(()),
            }
        }
    }

    pub async fn run(args: MsgArgs) -> anyhow::Result<()> {
        let t = args.target.clone();
        if t.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        let pairs = t.users / 2;
        if pairs == 0 {
            bail!("--users must be at least 2");
        }
        let users = pairs * 2;
        if users < t.users {
            eprintln!("warning: one user left out (odd --users)");
        }
        let interval = match args.rate {
            None => None,
            Some(rate) if rate > 0.0 && rate.is_finite() => {
                Some(Duration::from_secs_f64(users as f64 / rate))
            }
            Some(rate) => bail!("--rate must be above 0, not {rate}"),
        };
        let window = args.window.max(1);
        let mode = match args.rate {
            Some(rate) => format!("open rate={rate}"),
            None => format!("closed window={window}"),
        };
        if let Some(limit) = proc::open_files_limit()
            && limit < users as u64 + 64
        {
            eprintln!(
                "warning: open files limit is {limit}, below {users} users; raise it with `ulimit -n`"
            );
        }
        let pid = t.server_pid.map(|p| p.to_string());
        let server_rss = || pid.as_deref().and_then(|p| proc::status_kib(p, "VmRSS"));
        let rss_before = server_rss();
        if let Some(p) = &pid
            && rss_before.is_none()
        {
            bail!("cannot read /proc/{p}/status: is the server running on this machine?");
        }
        eprintln!(
            "msg: {users} users in {pairs} pairs, {mode}, {}s; against {}",
            args.duration, t.server
        );

        let client = Arc::new(login::Client::new(&t, Mechanism::Plain, users)?);
        let logins = login::login_all(
            &client,
            t.first_user,
            users,
            t.concurrency,
            Duration::from_secs(args.ramp_timeout),
        )
        .await;
        let login_s = logins.elapsed.as_secs_f64();
        eprintln!(
            "logins done in {login_s:.1}s: {} established, {} failed",
            logins.latencies.len(),
            logins.failed
        );
        if logins.failed > 0 {
            bail!("{} logins failed", logins.failed);
        }
        sleep(Duration::from_secs(args.settle)).await;
        let rss_ready = server_rss();

        let base = Instant::now();
        // Leave the tasks time to be spawned before the first send.
        let start = base + Duration::from_millis(50);
        let send_end = start + Duration::from_secs(args.duration);
        let shared = Arc::new(Shared {
            base,
            start,
            send_end,
            interval,
            window,
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            late: AtomicU64::new(0),
            last_delivery: AtomicU64::new(0),
            latency: Histogram::default(),
            send_latency: Histogram::default(),
            cancel: CancellationToken::new(),
            senders_left: AtomicU64::new(if interval.is_some() { users as u64 } else { 0 }),
            poke: CancellationToken::new(),
        });
        let mut tasks = JoinSet::new();
        let mut sessions = logins.sessions.into_iter();
        for p in 0..pairs {
            let mut side = |place: usize| -> anyhow::Result<Side> {
                let index = 2 * p + place;
                let Some(Some(session)) = sessions.next() else {
                    bail!("no session for account {}", t.first_user + index);
                };
                let partner = t.first_user + 2 * p + (1 - place);
                let prefix = format!(
                    "<message to='{}{partner}@{}' type='chat'><body>jb {place} ",
                    t.user_prefix, t.domain
                );
                // Open loop: senders spread evenly over one interval.
                let due =
                    interval.map(|interval| start + interval.mul_f64(index as f64 / users as f64));
                Ok(Side {
                    session,
                    splitter: Splitter::default(),
                    prefix: prefix.into_bytes().into_boxed_slice(),
                    place,
                    sent: 0,
                    received: 0,
                    next_seq: 0,
                    out_of_order: 0,
                    due,
                    closed: false,
                })
            };
            let a = side(0)?;
            let b = side(1)?;
            tasks.spawn(pair(p, a, b, shared.clone()));
        }

        sleep_until(start).await;
        let cpu_before = CpuMark::now(pid.as_deref());
        let mut progress = tokio::time::interval(Duration::from_secs(2));
        progress.tick().await;
        loop {
            tokio::select! {
                _ = sleep_until(send_end) => break,
                _ = progress.tick() => eprintln!(
                    "  {:>5.1}s sent {} delivered {} server RSS {} KiB",
                    start.elapsed().as_secs_f64(),
                    shared.sent.load(Ordering::Relaxed),
                    shared.delivered.load(Ordering::Relaxed),
                    kib(server_rss()),
                ),
            }
        }
        // Drain: wait for what is still on its way.
        let drain_end = send_end + Duration::from_secs(args.drain);
        while Instant::now() < drain_end
            && (shared.senders_left.load(Ordering::Relaxed) > 0
                || shared.delivered.load(Ordering::Relaxed) < shared.sent.load(Ordering::Relaxed))
        {
            sleep(Duration::from_millis(20)).await;
        }
        let cpu = cpu_before.until(&CpuMark::now(pid.as_deref()));
        let rss_after = server_rss();
        let hwm = pid.as_deref().and_then(|p| proc::status_kib(p, "VmHWM"));
        let missing_before_poke = shared
            .sent
            .load(Ordering::Relaxed)
            .saturating_sub(shared.delivered.load(Ordering::Relaxed));
        if missing_before_poke > 0 {
            shared.poke.cancel();
            let poke_end = Instant::now() + Duration::from_secs(2);
            while Instant::now() < poke_end
                && shared.delivered.load(Ordering::Relaxed) < shared.sent.load(Ordering::Relaxed)
            {
                sleep(Duration::from_millis(20)).await;
            }
            let missing_after = shared
                .sent
                .load(Ordering::Relaxed)
                .saturating_sub(shared.delivered.load(Ordering::Relaxed));
            eprintln!(
                "{missing_before_poke} missing after the drain; {} arrived after a whitespace keepalive on every session",
                missing_before_poke - missing_after
            );
        }
        shared.cancel.cancel();
        let mut outcomes = Vec::with_capacity(pairs);
        let collect = async {
            while let Some(o) = tasks.join_next().await {
                if let Ok(o) = o {
                    outcomes.push(o);
                }
            }
        };
        if timeout(Duration::from_secs(10), collect).await.is_err() {
            eprintln!("some pairs did not stop in time");
        }

        let sent = shared.sent.load(Ordering::Relaxed);
        let delivered = shared.delivered.load(Ordering::Relaxed);
        let (mut lost, mut extra, mut out_of_order, mut closed) = (0u64, 0u64, 0u64, 0usize);
        let mut shown = 0;
        for o in &outcomes {
            for side in 0..2 {
                let (sent, received) = (o.sent[side], o.received[1 - side]);
                if sent != received && shown < SHOWN {
                    shown += 1;
                    eprintln!(
                        "pair {}: account {} sent {sent}, its partner received {received} \
                         (next sequence number expected {})",
                        o.pair,
                        t.first_user + 2 * o.pair + side,
                        o.next_seq[1 - side]
                    );
                }
                lost += sent.saturating_sub(received);
                extra += received.saturating_sub(sent);
            }
            out_of_order += o.out_of_order;
            closed += o.closed;
        }
        if outcomes.len() < pairs {
            // Pairs that did not report: count what is missing overall.
            lost = lost.max(sent.saturating_sub(delivered));
        }
        let busy_ns = shared
            .last_delivery
            .load(Ordering::Relaxed)
            .saturating_sub(shared.nanos(start));
        let busy = if busy_ns > 0 {
            busy_ns as f64 / 1e9
        } else {
            cpu.wall_s
        };
        println!(
            "msg users={users} pairs={pairs} mode={mode} duration_s={} sent={sent} \
             delivered={delivered} lost={lost} extra={extra} out_of_order={out_of_order} \
             errors={} closed={closed} late={} delivered_per_s={:.0} lat_p50_ms={:.2} \
             lat_p99_ms={:.2} lat_max_ms={:.2} send_lat_p50_ms={:.2} send_lat_p99_ms={:.2} \
             send_lat_max_ms={:.2} server_cpu_pct={} gen_cpu_pct={} \
             delivered_per_server_cpu_s={} server_rss_before_kib={} server_rss_ready_kib={} \
             server_rss_after_kib={} server_hwm_kib={} login_s={login_s:.1} gen_rss_kib={}",
            args.duration,
            shared.errors.load(Ordering::Relaxed),
            shared.late.load(Ordering::Relaxed),
            delivered as f64 / busy.max(1e-9),
            shared.latency.percentile_ms(50.0),
            shared.latency.percentile_ms(99.0),
            shared.latency.max_ms(),
            shared.send_latency.percentile_ms(50.0),
            shared.send_latency.percentile_ms(99.0),
            shared.send_latency.max_ms(),
            cpu.server_pct(),
            cpu.generator_pct(),
            cpu.per_server_cpu_s(delivered),
            kib(rss_before),
            kib(rss_ready),
            kib(rss_after),
            kib(hwm),
            kib(proc::status_kib("self", "VmRSS")),
        );
        if sent == 0 {
            bail!("no message was sent");
        }
        if lost > 0 {
            bail!("{lost} messages lost ({delivered} of {sent} delivered)");
        }
        Ok(())
    }
}
