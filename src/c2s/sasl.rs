//! SASL negotiation on a client stream (RFC 6120 §6) with channel binding
//! advertised per XEP-0440, against the domain's credential backend.

use super::transport::{self, End, Transport};
use crate::auth::AccountStore;
use crate::auth::backends::{self, Verdict};
use crate::sasl::scram::{ChannelBinding, Hash, ScramCredentials, ScramServer};
use crate::sasl::{Mechanism, SaslError, plain};
use crate::state::ServerState;
use crate::stream::connection::Incoming;
use crate::stream::error::{StreamCondition, StreamError};
use crate::xmpp::ns;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use jid::{BareJid, DomainPart, NodePart};
use minidom::Element;
use std::net::IpAddr;

/// Attempts allowed on one connection before it is closed.
const MAX_ATTEMPTS: usize = 5;

/// The mechanisms to offer on this connection to `domain`, best first.
///
/// SCRAM needs keys only the internal backend keeps; a directory checks
/// passwords by binding with them, so its domains need PLAIN, which is only
/// offered on a confidential channel (`secure`: TLS, or a trusted proxy's).
pub fn offered(
    state: &ServerState,
    domain: &str,
    cb: &ChannelBinding,
    secure: bool,
) -> Vec<Mechanism> {
    let mut out = Vec::new();
    if backends::scram_possible(&state.config, domain) {
        if cb.tls_exporter.is_some() || cb.tls_server_end_point.is_some() {
            out.extend([Mechanism::ScramSha256Plus, Mechanism::ScramSha1Plus]);
        }
        out.extend([Mechanism::ScramSha256, Mechanism::ScramSha1]);
    }
    if secure && (state.config.auth.allow_plain || backends::plain_needed(&state.config, domain)) {
        out.push(Mechanism::Plain);
    }
    out
}

/// The `<mechanisms/>` and XEP-0440 `<sasl-channel-binding/>` features.
pub fn features(mechs: &[Mechanism], cb: &ChannelBinding) -> String {
    let mut out = format!("<mechanisms xmlns='{}'>", ns::SASL);
    for m in mechs {
        out.push_str(&format!("<mechanism>{}</mechanism>", m.name()));
    }
    out.push_str("</mechanisms>");
    if cb.tls_exporter.is_some() || cb.tls_server_end_point.is_some() {
        out.push_str(&format!("<sasl-channel-binding xmlns='{}'>", ns::SASL_CB));
        if cb.tls_exporter.is_some() {
            out.push_str("<channel-binding type='tls-exporter'/>");
        }
        if cb.tls_server_end_point.is_some() {
            out.push_str("<channel-binding type='tls-server-end-point'/>");
        }
        out.push_str("</sasl-channel-binding>");
    }
    out
}

fn failure(condition: &str, text: Option<&str>) -> String {
    let text = text
        .map(|t| format!("<text xml:lang='en'>{}</text>", crate::xmpp::escape(t)))
        .unwrap_or_default();
    format!(
        "<failure xmlns='{}'><{condition}/>{text}</failure>",
        ns::SASL
    )
}

/// Why one attempt failed.
enum Attempt {
    /// Send this SASL failure and let the client try again.
    Failed(String),
    /// As Failed, after a -PLUS attempt with a channel-binding type we do not offer.
    CbTypeUnsupported(String),
    /// The stream is over.
    End(End),
}

impl From<End> for Attempt {
    fn from(e: End) -> Self {
        Attempt::End(e)
    }
}

/// Run SASL until success (returns the authenticated account) or the stream ends.
pub async fn negotiate<T: Transport>(
    state: &ServerState,
    stream: &mut T,
    domain: &str,
    ip: IpAddr,
    mut cb: ChannelBinding,
    mechs: &[Mechanism],
) -> Result<BareJid, End> {
    for _ in 0..MAX_ATTEMPTS {
        let auth = match stream.read().await? {
            Incoming::Element(el) => el,
            Incoming::End => return Err(End::PeerClosed),
        };
        if auth.is("iq", ns::CLIENT) {
            // XEP-0077 §3.1: an unregistered client may register before it
            // authenticates; each iq counts as one of the connection's attempts.
            if let Some(reply) =
                crate::features::register::handle_unauthenticated(state, domain, ip, &auth).await
            {
                transport::send_element(stream, &reply).await?;
            }
            continue;
        }
        if !auth.is("auth", ns::SASL) {
            return Err(End::Error(StreamError::new(
                StreamCondition::NotAuthorized,
                "authenticate first",
            )));
        }
        match attempt(state, stream, &auth, domain, ip, &cb, mechs).await {
            Ok((user, additional)) => {
                let data = additional.map(|d| B64.encode(d)).unwrap_or_default();
                let success = format!("<success xmlns='{}'>{data}</success>", ns::SASL);
                transport::send(stream, success.as_bytes()).await?;
                return Ok(user);
            }
            Err(Attempt::Failed(xml)) => transport::send(stream, xml.as_bytes()).await?,
            Err(Attempt::CbTypeUnsupported(xml)) => {
                // The client tried -PLUS with a binding type we lack (tls-unique from
                // OpenSSL-based clients). Its next try will say "y", honestly: it saw
                // our -PLUS offer and could not use it. An attacker stripping -PLUS
                // would not produce this sequence, so downgrade detection stays.
                cb.plus_advertised = false;
                transport::send(stream, xml.as_bytes()).await?
            }
            Err(Attempt::End(e)) => return Err(e),
        }
    }
    Err(End::Error(StreamError::new(
        StreamCondition::PolicyViolation,
        "too many authentication attempts",
    )))
}

fn decode(el: &Element) -> Result<Vec<u8>, Attempt> {
    let text = el.text();
    let text = text.trim();
    if text == "=" {
        return Ok(Vec::new());
    }
    B64.decode(text)
        .map_err(|_| Attempt::Failed(failure("incorrect-encoding", None)))
}

/// The account a SASL username names on this domain, if it is a valid localpart.
fn account(username: &str, domain: &str) -> Option<BareJid> {
    let node = NodePart::new(username).ok()?;
    let domain = DomainPart::new(domain).ok()?;
    Some(BareJid::from_parts(Some(&node), &domain))
}

/// Read the next `<response/>` (or `<abort/>`).
async fn response<T: Transport>(stream: &mut T) -> Result<Vec<u8>, Attempt> {
    let el = match stream.read().await? {
        Incoming::Element(el) => el,
        Incoming::End => return Err(Attempt::End(End::PeerClosed)),
    };
    if el.is("abort", ns::SASL) {
        return Err(Attempt::Failed(failure("aborted", None)));
    }
    if !el.is("response", ns::SASL) {
        return Err(Attempt::Failed(failure("malformed-request", None)));
    }
    decode(&el)
}

async fn attempt<T: Transport>(
    state: &ServerState,
    stream: &mut T,
    auth: &Element,
    domain: &str,
    ip: IpAddr,
    cb: &ChannelBinding,
    mechs: &[Mechanism],
) -> Result<(BareJid, Option<Vec<u8>>), Attempt> {
    let mech = auth
        .attr("mechanism")
        .and_then(Mechanism::from_name)
        .filter(|m| mechs.contains(m))
        .ok_or_else(|| Attempt::Failed(failure("invalid-mechanism", None)))?;
    let mut initial = decode(auth)?;
    if initial.is_empty() {
        // No initial response: ask for one with an empty challenge.
        let challenge = format!("<challenge xmlns='{}'>=</challenge>", ns::SASL);
        transport::send(stream, challenge.as_bytes()).await?;
        initial = response(stream).await?;
    }
    match mech {
        Mechanism::Plain => plain_attempt(state, &initial, domain, ip).await,
        _ => {
            let hash = match mech {
                Mechanism::ScramSha1 | Mechanism::ScramSha1Plus => Hash::Sha1,
                _ => Hash::Sha256,
            };
            scram_attempt(
                state,
                stream,
                &initial,
                domain,
                ip,
                cb,
                hash,
                mech.is_plus(),
            )
            .await
        }
    }
}

fn sasl_failed(e: &SaslError) -> Attempt {
    let xml = failure(e.condition(), Some(&e.to_string()));
    match e {
        SaslError::UnsupportedChannelBinding => Attempt::CbTypeUnsupported(xml),
        _ => Attempt::Failed(xml),
    }
}

/// Wait out the throttle delay for this address and account.
async fn throttle(state: &ServerState, ip: IpAddr, account: &str) {
    let delay = state.throttle.delay(ip, Some(account));
    if !delay.is_zero() {
        tracing::debug!(?delay, "throttling authentication after earlier failures");
        tokio::time::sleep(delay).await;
    }
}

fn rejected(state: &ServerState, ip: IpAddr, account: &str) -> Attempt {
    state.throttle.failed(ip, Some(account));
    tracing::info!(account, "authentication failed");
    Attempt::Failed(failure("not-authorized", None))
}

async fn plain_attempt(
    state: &ServerState,
    initial: &[u8],
    domain: &str,
    ip: IpAddr,
) -> Result<(BareJid, Option<Vec<u8>>), Attempt> {
    let msg = plain::parse(initial).map_err(|e| sasl_failed(&e))?;
    // Directories match logins ignoring case and surrounding spaces, and
    // users type them that way: nodeprep folds the case, we trim.
    let username = msg.username.trim();
    let label = format!("{username}@{domain}");
    throttle(state, ip, &label).await;
    let Some(user) = account(username, domain) else {
        return Err(rejected(state, ip, &label));
    };
    check_authzid(msg.authzid.as_deref(), &user)?;
    match backends::verify_plain(state, &user, &msg.password).await {
        Verdict::Accepted => {
            state.throttle.succeeded(user.as_str());
            Ok((user, None))
        }
        Verdict::Rejected => Err(rejected(state, ip, user.as_str())),
        Verdict::Unavailable => {
            tracing::info!(account = %user, "authentication failed: the account's backend is unavailable");
            Err(Attempt::Failed(failure("temporary-auth-failure", None)))
        }
    }
}

fn temporary(e: &dyn std::fmt::Display) -> Attempt {
    tracing::error!(error = %e, "credential store unavailable");
    Attempt::Failed(failure("temporary-auth-failure", None))
}

fn check_authzid(authzid: Option<&str>, user: &BareJid) -> Result<(), Attempt> {
    match authzid {
        None => Ok(()),
        Some(a) if BareJid::new(a).is_ok_and(|j| &j == user) => Ok(()),
        Some(_) => Err(Attempt::Failed(failure("invalid-authzid", None))),
    }
}

#[allow(clippy::too_many_arguments)]
async fn scram_attempt<T: Transport>(
    state: &ServerState,
    stream: &mut T,
    initial: &[u8],
    domain: &str,
    ip: IpAddr,
    cb: &ChannelBinding,
    hash: Hash,
    plus: bool,
) -> Result<(BareJid, Option<Vec<u8>>), Attempt> {
    let mut server = ScramServer::new(hash, plus, cb.clone());
    let first = server.client_first(initial).map_err(|e| sasl_failed(&e))?;
    let label = format!("{}@{domain}", first.username);
    throttle(state, ip, &label).await;
    let user = account(&first.username, domain);
    if let Some(u) = &user {
        check_authzid(first.authzid.as_deref(), u)?;
    }
    let iterations = state.config.auth.scram_iterations;
    let stored = match &user {
        Some(u) => state
            .storage
            .credentials(u)
            .await
            .map_err(|e| temporary(&e))?,
        None => None,
    };
    let (creds, known) = match stored {
        Some(c) => (c.scram(hash), true),
        None => (
            ScramCredentials::fake(hash, &label, &state.secret, iterations),
            false,
        ),
    };
    let challenge = server
        .server_first(creds, known)
        .map_err(|e| sasl_failed(&e))?;
    let xml = format!(
        "<challenge xmlns='{}'>{}</challenge>",
        ns::SASL,
        B64.encode(challenge)
    );
    transport::send(stream, xml.as_bytes()).await?;
    let last = response(stream).await?;
    match (server.client_final(&last), user) {
        (Ok(verifier), Some(user)) => {
            state.throttle.succeeded(user.as_str());
            Ok((user, Some(verifier)))
        }
        (Ok(_), None) | (Err(SaslError::NotAuthorized), _) => Err(rejected(state, ip, &label)),
        (Err(e), _) => Err(sasl_failed(&e)),
    }
}
