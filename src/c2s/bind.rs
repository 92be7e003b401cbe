//! Resource binding (RFC 6120 §7) and the legacy session request (RFC 3921 §3).

use super::transport::{self, End, Transport};
use crate::config::ResourceConflict;
use crate::router::sessions::{BindOutcome, SessionControl, SessionHandle};
use crate::state::ServerState;
use crate::stream::connection::Incoming;
use crate::stream::error::{StreamCondition, StreamError};
use crate::xmpp::error::{Condition, StanzaError};
use crate::xmpp::ns;
use crate::xmpp::stanza;
use jid::{BareJid, FullJid, ResourcePart};
use minidom::Element;
use std::sync::Arc;

/// Requests tolerated before the client binds.
const MAX_PRE_BIND: usize = 16;

/// The features offered after authentication, with roster versioning
/// (RFC 6121 §2.6.1: clients only send `ver` when it is advertised).
pub fn features() -> String {
    format!(
        "<bind xmlns='{}'/><session xmlns='{}'><optional/></session><ver xmlns='urn:xmpp:features:rosterver'/>",
        ns::BIND,
        ns::SESSION
    )
}

/// Whether `iq` is the legacy `<session/>` request.
pub fn is_session_request(iq: &Element) -> bool {
    iq.attr("type") == Some("set") && iq.has_child("session", ns::SESSION)
}

/// A server-generated resource.
fn generated_resource() -> String {
    let bytes: [u8; 8] = rand::random();
    let hex: String = crate::xmpp::hex(&bytes);
    format!("jaseur-{hex}")
}

/// Wait for the bind request and register the session with the router.
pub async fn bind<T: Transport>(
    state: &Arc<ServerState>,
    stream: &mut T,
    user: BareJid,
) -> Result<BoundParts, End> {
    for _ in 0..MAX_PRE_BIND {
        let iq = match stream.read().await? {
            Incoming::Element(el) => el,
            Incoming::End => return Err(End::PeerClosed),
        };
        if !iq.is("iq", ns::CLIENT) {
            return Err(End::Error(StreamError::new(
                StreamCondition::NotAuthorized,
                "bind a resource first",
            )));
        }
        if is_session_request(&iq) {
            transport::send_element(stream, &stanza::iq_result(&iq, None)).await?;
            continue;
        }
        let Some(request) = iq
            .get_child("bind", ns::BIND)
            .filter(|_| iq.attr("type") == Some("set"))
        else {
            let e = StanzaError::new(Condition::NotAuthorized).with_text("bind a resource first");
            transport::send_element(stream, &e.reply_to(&iq)).await?;
            continue;
        };
        let wanted = request
            .get_child("resource", ns::BIND)
            .map(|r| r.text().trim().to_owned())
            .filter(|r| !r.is_empty());
        match try_bind(state, &user, wanted) {
            Ok((parts, jid)) => {
                let payload = Element::builder("bind", ns::BIND)
                    .append(
                        Element::builder("jid", ns::BIND)
                            .append(jid.to_string())
                            .build(),
                    )
                    .build();
                transport::send_element(stream, &stanza::iq_result(&iq, Some(payload))).await?;
                return Ok(parts);
            }
            Err(e) => transport::send_element(stream, &e.reply_to(&iq)).await?,
        }
    }
    Err(End::Error(StreamError::new(
        StreamCondition::PolicyViolation,
        "too many requests before binding",
    )))
}

/// What a successful bind hands the session.
pub struct BoundParts {
    pub jid: FullJid,
    /// Held from the moment the resource is registered, so that a stream
    /// that fails before the session starts still leaves the registry.
    pub binding: super::binding::Binding,
}

fn try_bind(
    state: &Arc<ServerState>,
    user: &BareJid,
    wanted: Option<String>,
) -> Result<(BoundParts, FullJid), StanzaError> {
    let policy = state.config.c2s.resource_conflict;
    let mut resource = wanted.unwrap_or_else(generated_resource);
    for attempt in 0..2 {
        let part = ResourcePart::new(&resource)
            .map_err(|_| StanzaError::new(Condition::BadRequest).with_text("invalid resource"))?;
        let jid = user.with_resource(&part);
        let (tx, queue) = crate::router::queue::channel(
            state.config.c2s.queue_size,
            state.config.c2s.queue_bytes,
        );
        let handle = SessionHandle {
            id: state.sessions.next_id(),
            jid: jid.clone(),
            tx,
            control: Arc::new(SessionControl::new(&state.shutdown)),
            priority: None,
            presence: None,
            flags: 0,
        };
        match state.sessions.bind(handle.clone(), policy) {
            BindOutcome::Bound(jid) => {
                let binding = super::binding::Binding::new(state.clone(), handle, queue);
                return Ok((
                    BoundParts {
                        jid: jid.clone(),
                        binding,
                    },
                    jid,
                ));
            }
            BindOutcome::Conflict if policy == ResourceConflict::Rename && attempt == 0 => {
                resource = format!("{resource}.{}", &generated_resource()[7..]);
            }
            BindOutcome::Conflict => break,
        }
    }
    Err(StanzaError::new(Condition::Conflict))
}
