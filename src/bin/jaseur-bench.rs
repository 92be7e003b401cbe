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
//! - `idle`: log N accounts in over STARTTLS + SASL PLAIN, bind, send initial
//!   presence, hold the sessions idle, and report the server's resident memory
//!   per session (from `/proc/PID/status`).
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
    /// Log N accounts in, hold the sessions idle, report the server's memory per session.
    Idle(IdleArgs),
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
            Scenario::Idle(args) => idle::run(args).await,
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

/// Logging one account in: TCP, STARTTLS, TLS, SASL PLAIN, bind, presence.
mod login {
    use super::conn::Conn;
    use super::*;

    const STARTTLS: &[u8] = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
    const BIND: &[u8] =
        b"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>";
    const PRESENCE: &[u8] = b"<presence/>";
    const FEATURES_END: &str = "</stream:features>";

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
    }

    impl Client {
        pub fn new(t: &TargetArgs) -> anyhow::Result<Client> {
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
                sources: sources(t),
                tls: tokio_rustls::TlsConnector::from(tls::client_config(t.ca.as_deref())?),
                server_name,
                header: header.into_bytes(),
                user_prefix: t.user_prefix.clone(),
                password_prefix: t.password_prefix.clone(),
                domain: t.domain.clone(),
                timeout: Duration::from_secs(t.login_timeout),
            })
        }

        /// The local addresses connections are bound to (empty: the kernel's choice).
        pub fn sources(&self) -> &[IpAddr] {
            &self.sources
        }

        /// Log account number `account` in, on the `index`-th connection (which
        /// picks its source address).
        pub async fn login(&self, index: usize, account: usize) -> anyhow::Result<Session> {
            let deadline = Instant::now() + self.timeout;
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
            c.wait(FEATURES_END, deadline)
                .await
                .context("features after TLS")?;
            let auth = format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
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
            c.send(PRESENCE, deadline).await?;
            Ok(c.io)
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

    /// The sources given, or for a loopback server one 127.0.0.x per 20,000
    /// users: an address gives one connection per ephemeral port (~28k).
    fn sources(t: &TargetArgs) -> Vec<IpAddr> {
        if !t.sources.is_empty() {
            return t.sources.clone();
        }
        match t.server.ip() {
            IpAddr::V4(ip) if ip.is_loopback() => {
                let count = t.users.div_ceil(20_000).clamp(1, 250);
                (1..=count)
                    .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i as u8)))
                    .collect()
            }
            _ => Vec::new(),
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
    fn ping_reply(chunk: &[u8]) -> Option<String> {
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

/// Process memory and limits, from /proc.
mod proc {
    /// A `KEY:   N kB` field of /proc/PID/status, in KiB.
    pub fn status_kib(pid: &str, key: &str) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    }

    /// The soft limit on open files of this process.
    pub fn open_files_limit() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = text.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse().ok()
    }
}

/// Login latency percentiles.
mod stats {
    use std::time::Duration;

    /// The nearest-rank percentile `p` (0-100) of sorted samples, in ms.
    pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        let i = rank.clamp(1, sorted.len()) - 1;
        sorted[i].as_secs_f64() * 1000.0
    }
}

/// The `idle` scenario.
mod idle {
    use super::*;

    /// Login errors printed in full; later ones are only counted.
    const ERRORS_SHOWN: usize = 5;

    fn kib(v: Option<u64>) -> String {
        v.map_or_else(|| "na".to_owned(), |v| v.to_string())
    }

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
        let client = Arc::new(login::Client::new(t)?);
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
