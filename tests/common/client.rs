//! A deliberately simple XMPP test client: raw bytes over TCP and rustls,
//! string matching on what comes back, and the independent `sasl` crate for
//! SCRAM. It shares no code with the server, so it can catch the server's bugs.

use super::Server;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Default wait for an expected answer.
pub const WAIT: Duration = Duration::from_secs(10);

pub const HEADER: &str = "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xml:lang='en' \
     xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

/// A connection and what was read but not consumed yet.
pub struct Conn<S> {
    pub io: S,
    pub buf: String,
}

/// An authenticated-capable TLS client.
pub type Client = Conn<TlsStream<TcpStream>>;

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(io: S) -> Self {
        Conn {
            io,
            buf: String::new(),
        }
    }

    /// Send raw text.
    pub async fn send(&mut self, text: &str) {
        self.io.write_all(text.as_bytes()).await.expect("send");
        self.io.flush().await.expect("flush");
    }

    /// Send raw bytes, tolerating a peer that already closed.
    pub async fn send_bytes(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.io.write_all(data).await?;
        self.io.flush().await
    }

    /// Read until the buffer contains `needle`; return everything up to the end
    /// of it and keep the rest. Panics after `WAIT`, showing what came.
    pub async fn expect(&mut self, needle: &str) -> String {
        match self.wait_for(needle, WAIT).await {
            Ok(s) => s,
            Err(e) => panic!("expected {needle:?}: {e}"),
        }
    }

    /// Like `expect`, returning an error instead of panicking.
    /// What is buffered, or else the next chunk read from the socket.
    pub async fn read_some(&mut self) -> String {
        if !self.buf.is_empty() {
            return std::mem::take(&mut self.buf);
        }
        let mut chunk = vec![0u8; 64 * 1024];
        let n = self.io.read(&mut chunk).await.expect("read");
        assert!(n > 0, "closed by the server");
        String::from_utf8_lossy(&chunk[..n]).into_owned()
    }

    /// Read and discard whatever arrives within a few milliseconds.
    pub async fn drain_now(&mut self) {
        self.buf.clear();
        let mut chunk = vec![0u8; 64 * 1024];
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(5), self.io.read(&mut chunk)).await
        {
            if n == 0 {
                break;
            }
        }
    }

    pub async fn wait_for(&mut self, needle: &str, wait: Duration) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(pos) = self.buf.find(needle) {
                let end = pos + needle.len();
                let out = self.buf[..end].to_owned();
                self.buf.drain(..end);
                return Ok(out);
            }
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.io.read(&mut chunk)).await {
                Err(_) => return Err(format!("timed out; got so far: {:?}", self.buf)),
                Ok(Ok(0)) => return Err(format!("connection closed; got: {:?}", self.buf)),
                Ok(Ok(n)) => self.buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
                Ok(Err(e)) => return Err(format!("read error {e}; got: {:?}", self.buf)),
            }
        }
    }

    /// Read until the peer closes the connection; return everything read.
    pub async fn read_to_close(&mut self, wait: Duration) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.io.read(&mut chunk)).await {
                Err(_) => return Err(format!("still open; got: {:?}", self.buf)),
                Ok(Ok(0)) | Ok(Err(_)) => return Ok(std::mem::take(&mut self.buf)),
                Ok(Ok(n)) => self.buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
            }
        }
    }
}

/// A rustls client config trusting only the test server's own certificate.
pub fn tls_config(server: &Server) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(server.cert_path()).expect("cert file") {
        roots.add(cert.expect("cert")).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

async fn tls_connect(server: &Server, tcp: TcpStream) -> TlsStream<TcpStream> {
    tls_connect_to(server, "localhost", tcp).await
}

async fn tls_connect_to(server: &Server, domain: &str, tcp: TcpStream) -> TlsStream<TcpStream> {
    let connector = tokio_rustls::TlsConnector::from(tls_config(server));
    connector
        .connect(ServerName::try_from(domain.to_owned()).expect("name"), tcp)
        .await
        .expect("TLS handshake with the server's own certificate")
}

/// Plain TCP connection to the STARTTLS port.
pub async fn tcp(server: &Server) -> Conn<TcpStream> {
    Conn::new(TcpStream::connect(server.c2s).await.expect("connect"))
}

/// STARTTLS up to the post-TLS stream features.
pub async fn starttls(server: &Server) -> Client {
    starttls_to(server, "localhost").await.0
}

/// The stream header to `domain`.
pub fn header_to(domain: &str) -> String {
    HEADER.replacen("to='localhost'", &format!("to='{domain}'"), 1)
}

/// STARTTLS to `domain` (a domain the server serves, also used for SNI);
/// returns the client and the post-TLS stream features.
pub async fn starttls_to(server: &Server, domain: &str) -> (Client, String) {
    let header = header_to(domain);
    let mut c = tcp(server).await;
    c.send(&header).await;
    let features = c.expect("</stream:features>").await;
    assert!(
        features
            .contains("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"),
        "{features}"
    );
    c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await;
    c.expect("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await;
    assert!(c.buf.is_empty());
    let tls = tls_connect_to(server, domain, c.io).await;
    let mut c = Conn::new(tls);
    c.send(&header).await;
    let features = c.expect("</stream:features>").await;
    (c, features)
}

/// Direct TLS (XEP-0368) up to the stream features.
pub async fn direct_tls(server: &Server) -> Client {
    let tcp = TcpStream::connect(server.direct_tls)
        .await
        .expect("connect");
    let mut c = Conn::new(tls_connect(server, tcp).await);
    c.send(HEADER).await;
    c.expect("</stream:features>").await;
    c
}

/// Direct TLS with a 4 KiB receive buffer, for a reader that must look
/// slow to the server soon: by default the kernel takes megabytes for a
/// client that does not read (receive windows grow up to `tcp_rmem`).
pub async fn direct_tls_small_window(server: &Server) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = socket.connect(server.direct_tls).await.expect("connect");
    let mut c = Conn::new(tls_connect(server, tcp).await);
    c.send(HEADER).await;
    c.expect("</stream:features>").await;
    c
}

/// Which channel binding a SCRAM client uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cb {
    /// "n": no channel binding.
    None,
    /// "y": the client supports it but thinks the server does not.
    Unsupported,
    /// "p=tls-exporter" with the real exporter value.
    Exporter,
}

/// The text between `<tag xmlns='...'>` and `</tag>` in `xml`.
pub fn inner<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = xml
        .find(&format!("<{tag} "))
        .or_else(|| xml.find(&format!("<{tag}>")))
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"));
    let start = open + xml[open..].find('>').expect("tag end") + 1;
    let end = xml[start..]
        .find(&format!("</{tag}>"))
        .map(|e| start + e)
        .unwrap_or(start);
    &xml[start..end]
}

impl Client {
    /// SASL PLAIN; returns the server's final answer (`<success` or `<failure`).
    pub async fn auth_plain(&mut self, user: &str, password: &str) -> String {
        let msg = B64.encode(format!("\0{user}\0{password}"));
        self.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{msg}</auth>"
        ))
        .await;
        self.sasl_outcome().await
    }

    async fn sasl_outcome(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(p) = self
                .buf
                .find("</success>")
                .or_else(|| self.buf.find("</failure>"))
            {
                let end = p + 10;
                let out = self.buf[..end].to_owned();
                self.buf.drain(..end);
                return out;
            }
            if let Some(p) = self
                .buf
                .find("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
            {
                let end = p + "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>".len();
                let out = self.buf[..end].to_owned();
                self.buf.drain(..end);
                return out;
            }
            let mut chunk = [0u8; 8192];
            let n = tokio::time::timeout_at(deadline, self.io.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("no SASL outcome; got {:?}", self.buf))
                .expect("read");
            assert!(n > 0, "closed during SASL; got {:?}", self.buf);
            self.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    }

    /// The tls-exporter value of this connection (RFC 9266).
    pub fn exporter(&self) -> Vec<u8> {
        self.io
            .get_ref()
            .1
            .export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None)
            .expect("exporter")
    }

    /// SCRAM with the independent `sasl` crate; `sha256` picks the hash.
    /// Returns the final answer; on success the server signature was verified.
    pub async fn auth_scram(&mut self, sha256: bool, cb: Cb, user: &str, password: &str) -> String {
        use sasl::client::Mechanism;
        use sasl::client::mechanisms::Scram;
        use sasl::common::ChannelBinding;
        use sasl::common::scram::{Sha1, Sha256};
        let binding = match cb {
            Cb::None => ChannelBinding::None,
            Cb::Unsupported => ChannelBinding::Unsupported,
            Cb::Exporter => ChannelBinding::TlsExporter(self.exporter()),
        };
        let mut mech: Box<dyn Mechanism> = if sha256 {
            Box::new(Scram::<Sha256>::new(user, password, binding).expect("mech"))
        } else {
            Box::new(Scram::<Sha1>::new(user, password, binding).expect("mech"))
        };
        let name = mech.name().to_owned();
        let first = B64.encode(mech.initial());
        self.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{name}'>{first}</auth>"
        ))
        .await;
        let challenge = self.expect("</challenge>").await;
        if !challenge.contains("<challenge") {
            return challenge;
        }
        let data = B64
            .decode(inner(&challenge, "challenge"))
            .expect("challenge base64");
        let reply = match mech.response(&data) {
            Ok(r) => r,
            Err(e) => panic!("client rejected the challenge: {e:?}"),
        };
        self.send(&format!(
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
            B64.encode(reply)
        ))
        .await;
        let outcome = self.sasl_outcome().await;
        if outcome.contains("<success") {
            let data = B64
                .decode(inner(&outcome, "success"))
                .expect("success base64");
            mech.success(&data).expect("server signature verifies");
        }
        outcome
    }

    /// Restart the stream after SASL success and bind; returns the bound JID.
    pub async fn bind(&mut self, resource: Option<&str>) -> String {
        self.bind_to("localhost", resource).await
    }

    /// As `bind`, on a stream to `domain`.
    pub async fn bind_to(&mut self, domain: &str, resource: Option<&str>) -> String {
        self.send(&header_to(domain)).await;
        let features = self.expect("</stream:features>").await;
        assert!(
            features.contains("urn:ietf:params:xml:ns:xmpp-bind"),
            "{features}"
        );
        let res = resource
            .map(|r| format!("<resource>{r}</resource>"))
            .unwrap_or_default();
        self.send(&format!("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>{res}</bind></iq>")).await;
        let reply = self.expect("</iq>").await;
        assert!(
            reply.contains("type='result'") || reply.contains("type=\"result\""),
            "bind failed: {reply}"
        );
        inner(&reply, "jid").to_owned()
    }
}

/// STARTTLS + PLAIN + bind in one go, on `domain`.
pub async fn login_to(
    server: &Server,
    domain: &str,
    user: &str,
    password: &str,
    resource: &str,
) -> Client {
    let (mut c, _) = starttls_to(server, domain).await;
    let outcome = c.auth_plain(user, password).await;
    assert!(
        outcome.contains("<success"),
        "login of {user} failed: {outcome}"
    );
    c.bind_to(domain, Some(resource)).await;
    c
}

/// STARTTLS + PLAIN + bind in one go.
pub async fn login(server: &Server, user: &str, password: &str, resource: &str) -> Client {
    let mut c = starttls(server).await;
    let local = user.split('@').next().expect("user");
    let outcome = c.auth_plain(local, password).await;
    assert!(outcome.contains("<success"), "login failed: {outcome}");
    c.bind(Some(resource)).await;
    c
}

/// Quote style is the server's choice; compare with single quotes.
pub fn norm(s: &str) -> String {
    s.replace('"', "'")
}

/// The end of the first complete top-level element in `buf` (inside the stream).
pub fn element_end(buf: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut pos = 0;
    while let Some(lt) = buf[pos..].find('<').map(|p| pos + p) {
        let gt = lt + buf[lt..].find('>')?;
        let tag = &buf[lt..=gt];
        pos = gt + 1;
        if tag.starts_with("<?") || tag.starts_with("<!") {
            continue;
        }
        if tag.starts_with("</") {
            if depth <= 1 {
                return Some(pos);
            }
            depth -= 1;
        } else if tag.ends_with("/>") {
            if depth == 0 {
                return Some(pos);
            }
        } else {
            depth += 1;
        }
    }
    None
}

/// The value of attribute `name` on the start tag of a normalised stanza.
pub fn attr(stanza: &str, name: &str) -> Option<String> {
    let head = &stanza[..stanza.find('>').unwrap_or(stanza.len())];
    let needle = format!(" {name}='");
    let start = head.find(&needle)? + needle.len();
    let len = head[start..].find('\'')?;
    Some(head[start..start + len].to_owned())
}

/// The next top-level element, normalised.
pub async fn next(c: &mut Client, wait: Duration) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(end) = element_end(&c.buf) {
            let s = norm(c.buf[..end].trim());
            c.buf.drain(..end);
            return Ok(s);
        }
        let mut chunk = [0u8; 16384];
        match tokio::time::timeout_at(deadline, c.io.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => c.buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
            other => return Err(format!("{other:?}; partial {:?}", c.buf)),
        }
    }
}

/// The first stanza satisfying `pred`, skipping others; panics after `WAIT`.
pub async fn wait_for(c: &mut Client, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut skipped = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next(c, left).await {
            Ok(s) if pred(&s) => return s,
            Ok(s) => skipped.push(s),
            Err(e) => panic!("waiting for {what}: {e}\nskipped: {skipped:#?}"),
        }
    }
}

/// The reply with id `id`, skipping other stanzas; panics after `WAIT`.
pub async fn reply(c: &mut Client, id: &str) -> String {
    wait_for(c, id, |s| attr(s, "id").as_deref() == Some(id)).await
}

/// Send `body` with `ID` replaced by `id`, and return the reply.
pub async fn iq(c: &mut Client, id: &str, body: &str) -> String {
    c.send(&body.replace("ID", id)).await;
    reply(c, id).await
}

/// Whether a normalised stanza is an error with this RFC 6120 condition.
pub fn is_error(stanza: &str, condition: &str) -> bool {
    attr(stanza, "type").as_deref() == Some("error")
        && stanza.contains(&format!(
            "<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        ))
}
