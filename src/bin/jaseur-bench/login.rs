//! Logging one account in: over TCP with STARTTLS and TLS, or over a
//! WebSocket (RFC 7395); then SASL (PLAIN or SCRAM-SHA-256, the library's
//! client), bind, presence.
use super::conn::Conn;
use super::session::{Session, TlsSession, WS_STANZA_NS, WsTarget};
use super::*;
use jaseur::sasl::scram::{ClientBinding, ClientKeys, Hash, ScramClient, ServerFirst};
use std::collections::HashMap;

const STARTTLS: &[u8] = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
const ROSTER_ID: &str = "roster1";
const FEATURES_END: &str = "</stream:features>";
const SASL_NS: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// RFC 7395 §3.3.1: the namespace of `<open/>` and `<close/>`.
const FRAMING_NS: &str = "urn:ietf:params:xml:ns:xmpp-framing";
/// How long a closing stream may wait for the server's own close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The fixed strings of a login for one transport, serialised once: the
/// stanzas carry `xmlns='jabber:client'` over WebSocket, where every
/// message stands alone, and nothing more over TCP.
struct Strings {
    /// The stream header, or `<open/>`.
    open: Vec<u8>,
    bind: Vec<u8>,
    roster: Vec<u8>,
    presence: Vec<u8>,
    /// `</stream:stream>`, or `<close/>`.
    close: Vec<u8>,
}

impl Strings {
    fn new(transport: Transport, domain: &str) -> Strings {
        let (open, ns, close) = match transport {
            Transport::Tcp => (
                format!(
                    "<?xml version='1.0'?><stream:stream to='{domain}' version='1.0' \
                     xml:lang='en' xmlns='jabber:client' \
                     xmlns:stream='http://etherx.jabber.org/streams'>"
                ),
                "",
                "</stream:stream>".to_owned(),
            ),
            Transport::Websocket => (
                format!("<open xmlns='{FRAMING_NS}' to='{domain}' version='1.0' xml:lang='en'/>"),
                WS_STANZA_NS,
                format!("<close xmlns='{FRAMING_NS}'/>"),
            ),
        };
        Strings {
            open: open.into_bytes(),
            bind: format!(
                "<iq{ns} type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"
            )
            .into_bytes(),
            roster: format!(
                "<iq{ns} type='get' id='{ROSTER_ID}'><query xmlns='jabber:iq:roster'/></iq>"
            )
            .into_bytes(),
            presence: format!("<presence{ns}/>").into_bytes(),
            close: close.into_bytes(),
        }
    }
}

/// How connections reach the server's XMPP.
enum Wire {
    /// The client port: STARTTLS, then TLS.
    Tcp {
        tls: tokio_rustls::TlsConnector,
        server_name: ServerName<'static>,
    },
    /// The HTTP listener: a WebSocket handshake.
    Ws(WsTarget),
}

/// Everything a login needs that is the same for every account.
/// One account's cached keys, locked while they are derived.
type KeySlot = std::sync::Arc<tokio::sync::Mutex<Option<ClientKeys>>>;

pub struct Client {
    server: SocketAddr,
    sources: Vec<IpAddr>,
    wire: Wire,
    strings: Strings,
    user_prefix: String,
    password_prefix: String,
    domain: String,
    timeout: Duration,
    mechanism: Mechanism,
    /// SCRAM keys per account name, as a real client keeps them (each
    /// knows its salt and iteration count).
    keys: std::sync::Mutex<HashMap<String, KeySlot>>,
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
    pub fn new(t: &TargetArgs, mechanism: Mechanism, connections: usize) -> anyhow::Result<Client> {
        let wire = match t.transport {
            Transport::Tcp => {
                if t.ws_url.is_some() {
                    bail!("--ws-url goes with --transport websocket");
                }
                if t.ca.is_none() && !t.insecure {
                    bail!("give --ca CERT.pem to trust the server, or --insecure");
                }
                let server_name = ServerName::try_from(t.domain.clone())
                    .with_context(|| format!("{} is not a valid TLS server name", t.domain))?;
                Wire::Tcp {
                    tls: tokio_rustls::TlsConnector::from(tls::client_config(t.ca.as_deref())?),
                    server_name,
                }
            }
            Transport::Websocket => Wire::Ws(WsTarget::new(&t.ws_url())?),
        };
        Ok(Client {
            server: t.server,
            sources: sources(t, connections),
            wire,
            strings: Strings::new(t.transport, &t.domain),
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
        c.send(&self.strings.presence, deadline).await?;
        Ok(c.io)
    }

    /// `login` for the scenarios that hold a TLS stream (TCP only).
    pub async fn login_tls(&self, index: usize, account: usize) -> anyhow::Result<TlsSession> {
        self.login(index, account).await?.into_tls()
    }

    /// The `login` scenario's whole session: log in, fetch the roster,
    /// send initial presence, close the stream and wait for the server
    /// to close its own.
    pub async fn login_and_out(&self, index: usize, account: usize) -> anyhow::Result<Closed> {
        let start = Instant::now();
        let deadline = start + self.timeout;
        let mut c = self.bound(index, account, deadline).await?;
        c.send(&self.strings.roster, deadline).await?;
        let reply = c.wait("</iq>", deadline).await.context("roster")?;
        let reply = String::from_utf8_lossy(&reply);
        if !reply.contains(ROSTER_ID)
            || reply.contains("type='error'")
            || reply.contains("type=\"error\"")
        {
            bail!("roster get failed: {reply}");
        }
        c.send(&self.strings.presence, deadline).await?;
        let elapsed = start.elapsed();
        let close_deadline = Instant::now() + CLOSE_TIMEOUT;
        c.send(&self.strings.close, close_deadline).await?;
        let clean = c.wait_closed(close_deadline).await;
        let _ = timeout_at(close_deadline, c.io.shutdown()).await;
        Ok(Closed { elapsed, clean })
    }

    /// Connect, open the stream (with STARTTLS over TCP), authenticate and
    /// bind a resource.
    async fn bound(&self, index: usize, account: usize, deadline: Instant) -> anyhow::Result<Conn> {
        let user = format!("{}{account}", self.user_prefix);
        let password = format!("{}{account}", self.password_prefix);
        let tcp = timeout_at(deadline, self.connect(index))
            .await
            .map_err(|_| anyhow!("timed out connecting"))?
            .context("connect")?;
        let (mut c, features) = match &self.wire {
            Wire::Tcp { tls, server_name } => {
                let mut c = Conn::new(Session::Plain(tcp));
                c.send(&self.strings.open, deadline).await?;
                c.wait(FEATURES_END, deadline).await.context("features")?;
                c.send(STARTTLS, deadline).await?;
                if c.wait_any(&["<proceed", "<failure"], deadline).await?.0 != 0 {
                    bail!("STARTTLS refused");
                }
                let Session::Plain(tcp) = c.io else {
                    bail!("STARTTLS on a connection that is not plain TCP");
                };
                let tls = timeout_at(deadline, tls.connect(server_name.clone(), tcp))
                    .await
                    .map_err(|_| anyhow!("timed out in the TLS handshake"))?
                    .context("TLS handshake")?;
                let mut c = Conn::new(Session::Tls(Box::new(tls)));
                c.send(&self.strings.open, deadline).await?;
                let features = c
                    .wait(FEATURES_END, deadline)
                    .await
                    .context("features after TLS")?;
                (c, features)
            }
            Wire::Ws(target) => {
                let ws = timeout_at(deadline, target.handshake(tcp))
                    .await
                    .map_err(|_| anyhow!("timed out in the WebSocket handshake"))??;
                let mut c = Conn::new(ws);
                c.send(&self.strings.open, deadline).await?;
                let features = c.wait(FEATURES_END, deadline).await.context("features")?;
                (c, features)
            }
        };
        let offered = String::from_utf8_lossy(&features);
        match self.mechanism {
            Mechanism::Plain => {
                if !offered.contains(">PLAIN<") {
                    bail!(
                        "the server does not offer PLAIN (over WebSocket, only with \
                         [http] consider_secure = true or TLS): {offered}"
                    );
                }
                self.plain(&mut c, &user, &password, deadline).await?
            }
            Mechanism::ScramSha256 => {
                if !offered.contains(">SCRAM-SHA-256<") {
                    bail!("the server does not offer SCRAM-SHA-256: {offered}");
                }
                self.scram(&mut c, &user, &password, deadline)
                    .await
                    .with_context(|| format!("SCRAM-SHA-256 for {user}@{}", self.domain))?
            }
        }
        c.send(&self.strings.open, deadline).await?;
        c.wait(FEATURES_END, deadline)
            .await
            .context("features after SASL")?;
        c.send(&self.strings.bind, deadline).await?;
        let reply = c.wait("</iq>", deadline).await.context("bind")?;
        let reply = String::from_utf8_lossy(&reply);
        if reply.contains("type='error'") || reply.contains("type=\"error\"") {
            bail!("bind failed: {reply}");
        }
        Ok(c)
    }

    async fn plain(
        &self,
        c: &mut Conn,
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

    /// SCRAM-SHA-256 without channel binding (`n,,`: none over WebSocket,
    /// and the generator does not measure -PLUS), checking the server's
    /// signature. PBKDF2 runs only when the cache has no keys for this
    /// account, salt and iteration count.
    async fn scram(
        &self,
        c: &mut Conn,
        user: &str,
        password: &str,
        deadline: Instant,
    ) -> anyhow::Result<()> {
        let exchange = ScramClient::new(Hash::Sha256, user, ClientBinding::None)?;
        let auth = format!(
            "<auth xmlns='{SASL_NS}' mechanism='SCRAM-SHA-256'>{}</auth>",
            B64.encode(exchange.client_first())
        );
        c.send(auth.as_bytes(), deadline).await?;
        let (i, text) = c.wait_any(&["</challenge>", "<failure"], deadline).await?;
        if i != 0 {
            bail!("refused: {}", String::from_utf8_lossy(&text));
        }
        let first = exchange
            .server_first(sasl_data(&text, "challenge")?.as_bytes())
            .context("server-first-message")?;
        let keys = self.keys(user, password, &first).await?;
        let client_final = exchange.client_final(&first, &keys)?;
        let response = format!(
            "<response xmlns='{SASL_NS}'>{}</response>",
            B64.encode(&client_final.message)
        );
        c.send(response.as_bytes(), deadline).await?;
        // The server's signature comes with <success/> or, from some
        // servers, in a last challenge answered with an empty response.
        let (i, text) = c
            .wait_any(&["</success>", "</challenge>", "<failure"], deadline)
            .await?;
        match i {
            0 => client_final
                .verify(sasl_data(&text, "success")?.as_bytes())
                .context("server-final-message"),
            1 => {
                client_final
                    .verify(sasl_data(&text, "challenge")?.as_bytes())
                    .context("server-final-message")?;
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
    /// Two logins of one account at once (a second round starting while
    /// the first still derives) wait for one derivation, as a real
    /// client's single key store would.
    async fn keys(
        &self,
        user: &str,
        password: &str,
        first: &ServerFirst,
    ) -> anyhow::Result<ClientKeys> {
        let slot = self
            .keys
            .lock()
            .map_err(|_| anyhow!("key cache poisoned"))?
            .entry(user.to_owned())
            .or_default()
            .clone();
        let mut cached = slot.lock().await;
        if let Some(k) = cached.as_ref()
            && k.fits(first)
        {
            return Ok(k.clone());
        }
        let (hash, pw, salt, iterations) = (
            first.hash,
            password.to_owned(),
            first.salt.clone(),
            first.iterations,
        );
        // PBKDF2 takes milliseconds: off the reactor's threads.
        let keys =
            tokio::task::spawn_blocking(move || ClientKeys::derive(hash, &pw, &salt, iterations))
                .await??;
        self.derivations.fetch_add(1, Ordering::Relaxed);
        *cached = Some(keys.clone());
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
    let ns = session.stanza_ns();
    loop {
        match session.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(reply) = ping_reply(&buf[..n], ns) {
                    if session.send(reply.as_bytes()).await.is_err() {
                        break;
                    }
                    stats.pings.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    stats.closed.fetch_add(1, Ordering::Relaxed);
}

/// The result for a ping request read whole in `chunk`, its start tag
/// completed by `ns` (`Session::stanza_ns`). A ping split across two
/// reads is missed: idle servers send them alone and small (and over
/// WebSocket a message is a whole element).
pub fn ping_reply(chunk: &[u8], ns: &str) -> Option<String> {
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
            "<iq{ns} type='result' id='{id}' to='{}'/>",
            from.replace('\'', "&apos;")
        ),
        None => format!("<iq{ns} type='result' id='{id}'/>"),
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
    use crate::session::WS_STANZA_NS;

    #[test]
    fn answers_pings_in_either_quote_style() {
        let jaseur = b"<iq type='get' id='jaseur-ping' from='localhost' to='u@localhost/r'><ping xmlns='urn:xmpp:ping'/></iq>";
        assert_eq!(
            ping_reply(jaseur, "").as_deref(),
            Some("<iq type='result' id='jaseur-ping' to='localhost'/>")
        );
        let other = b"<iq id=\"p1\" type=\"get\"><ping xmlns=\"urn:xmpp:ping\"/></iq>";
        assert_eq!(
            ping_reply(other, "").as_deref(),
            Some("<iq type='result' id='p1'/>")
        );
        assert_eq!(ping_reply(b"<presence/>", ""), None);
        assert_eq!(
            ping_reply(
                b"<iq type='result' id='x'><ping xmlns='urn:xmpp:ping'/></iq>",
                ""
            ),
            None
        );
        // Over WebSocket the reply declares its namespace, as the ping does.
        let ws = b"<iq xmlns='jabber:client' type='get' id='p2' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>";
        assert_eq!(
            ping_reply(ws, WS_STANZA_NS).as_deref(),
            Some("<iq xmlns='jabber:client' type='result' id='p2' to='localhost'/>")
        );
    }
}
