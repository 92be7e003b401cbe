//! XEP-0280: Message Carbons, with the eligibility rules of its §6.1
//! (advertised as `urn:xmpp:carbons:rules:0`).
//!
//! A resource that enables carbons gets a copy of the chat messages its
//! account's other resources send (`<sent/>`) and of those they receive
//! (`<received/>`), so that a conversation reads the same on a phone and a
//! laptop. Two pipeline steps do it (features/mod.rs): after a local session
//! sends a message, and after a message was delivered to a local account.
//! Copies are delivered directly to the sessions: they are the server's own
//! and go through no further step (so they can never be copied again).

use super::{IqRequest, IqResult};
use crate::router::sessions::{SessionFlag, SessionHandle, SessionId};
use crate::state::ServerState;
use crate::xmpp::error::{Condition, StanzaError};
use crate::xmpp::ns;
use crate::xmpp::stanza::set_attr;
use jid::{BareJid, FullJid};
use minidom::Element;

/// The carbons namespace.
pub const NS: &str = "urn:xmpp:carbons:2";
/// The §6.1 rules, which this module implements in full.
pub const RULES: &str = "urn:xmpp:carbons:rules:0";
const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
/// XEP-0249: Direct MUC Invitations.
const CONFERENCE: &str = "jabber:x:conference";
/// Payloads "typically used in IM" (§6.1): XEP-0085 chat states, XEP-0184
/// receipts, XEP-0333 chat markers.
const IM_PAYLOADS: [&str; 3] = [
    "http://jabber.org/protocol/chatstates",
    "urn:xmpp:receipts",
    "urn:xmpp:chat-markers:0",
];

/// The session enabled carbons.
pub const ENABLED: SessionFlag = SessionFlag::new(2);

/// Which copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The account's resource sent the message.
    Sent,
    /// The account received the message.
    Received,
}

impl Direction {
    fn element(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }
}

/// `<enable/>` and `<disable/>` (§4, §5): for the sending resource only.
/// Repeating one is not an error (§10.1).
pub async fn handle(req: &IqRequest<'_>) -> IqResult {
    if !req.set {
        return Err(StanzaError::new(Condition::BadRequest));
    }
    let Some(full) = req.from.try_as_full().ok().filter(|_| req.from_owner()) else {
        return Err(StanzaError::new(Condition::NotAllowed));
    };
    let enable = match req.payload.name() {
        "enable" => true,
        "disable" => false,
        _ => return Err(StanzaError::new(Condition::BadRequest)),
    };
    req.state.sessions.set_flag(full, ENABLED, enable);
    Ok(None)
}

/// Whether `message` may be copied in `direction` (§6.1).
pub fn eligible(message: &Element, direction: Direction) -> bool {
    // Excluded by its sender (§8), or copied already: carbons are never
    // copied again.
    if message.has_child("private", NS)
        || message.has_child("no-copy", ns::HINTS)
        || message.has_child("sent", NS)
        || message.has_child("received", NS)
    {
        return false;
    }
    let kind = message.attr("type").unwrap_or("normal");
    if kind == "groupchat" {
        return false;
    }
    // Invitations to rooms, direct (XEP-0249) or mediated (XEP-0045 §7.8.2).
    let muc_user = message.get_child("x", MUC_USER);
    if message.has_child("x", CONFERENCE)
        || muc_user.is_some_and(|x| x.has_child("invite", MUC_USER))
    {
        return true;
    }
    // A room occupant's private message reaches every joined client of the
    // user from the room itself.
    if direction == Direction::Received && muc_user.is_some() {
        return false;
    }
    let body = message.has_child("body", ns::CLIENT);
    let im_payload = message
        .children()
        .any(|c| IM_PAYLOADS.iter().any(|n| c.ns() == *n));
    match kind {
        "chat" => true,
        "normal" => body || im_payload,
        // Errors in answer to eligible messages: bounces carry the
        // original's payload (RFC 6120 §8.3.1 lets them), which is what
        // tells them apart.
        "error" => body || im_payload,
        _ => false,
    }
}

/// Whether `el` is a carbon copy (a `<sent/>` or `<received/>` wrapper).
pub fn is_copy(el: &Element) -> bool {
    el.has_child("sent", NS) || el.has_child("received", NS)
}

/// The copy of `message` for `to`, one of `account`'s resources (§6, §7):
/// from the bare JID, of the message's type, the original forwarded.
///
/// Built as elements rather than with xmpp-parsers' `carbons::Received` and
/// `forwarding::Forwarded`: those hold the original as a typed `Message`,
/// which keeps only the attributes it knows, and a copy must forward the
/// original as it was.
pub fn copy(message: &Element, account: &BareJid, to: &FullJid, direction: Direction) -> Element {
    let mut wrapper = Element::bare("message", ns::CLIENT);
    set_attr(&mut wrapper, "from", account.to_string());
    set_attr(&mut wrapper, "to", to.to_string());
    if let Some(kind) = message.attr("type") {
        set_attr(&mut wrapper, "type", kind);
    }
    let mut carbon = Element::bare(direction.element(), NS);
    carbon.append_child(crate::xmpp::stanza::forwarded(message.clone(), None));
    wrapper.append_child(carbon);
    wrapper
}

/// The carbon-enabled sessions of `account` other than `except`, with the
/// copy each gets. Empty (without a copy or an allocation) in the common
/// case of an account with one session.
fn copies(
    state: &ServerState,
    account: &BareJid,
    message: &Element,
    direction: Direction,
    except: impl Fn(&SessionHandle) -> bool,
) -> Vec<(SessionHandle, Element)> {
    let targets: Vec<SessionHandle> = state.sessions.with_account(account, |list| {
        if list.len() < 2 && direction == Direction::Sent {
            return Vec::new();
        }
        list.iter()
            .filter(|s| s.has(ENABLED) && !except(s))
            .cloned()
            .collect()
    });
    if targets.is_empty() || !eligible(message, direction) {
        return Vec::new();
    }
    targets
        .into_iter()
        .map(|s| {
            let c = copy(message, account, &s.jid, direction);
            (s, c)
        })
        .collect()
}

/// §7: copies of a message the session `from` sent, for the account's
/// other carbon-enabled resources (not the one it was addressed to, if it
/// was one of them: that one gets the original).
pub fn sent(
    state: &ServerState,
    from: &FullJid,
    message: &Element,
) -> Vec<(SessionHandle, Element)> {
    let account = from.to_bare();
    let to = message.attr("to");
    copies(state, &account, message, Direction::Sent, |s| {
        s.jid == *from || to.is_some_and(|t| t == s.jid.as_str())
    })
}

/// §6: copies of a message delivered to `account`'s sessions `delivered`,
/// for its other carbon-enabled resources. A message no session took live
/// (stored offline) is not copied: it is delivered whole at the next login.
pub fn received(
    state: &ServerState,
    account: &BareJid,
    message: &Element,
    delivered: &[SessionId],
) -> Vec<(SessionHandle, Element)> {
    if delivered.is_empty() {
        return Vec::new();
    }
    copies(state, account, message, Direction::Received, |s| {
        delivered.contains(&s.id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(xml: &str) -> Element {
        xml.parse().expect("xml")
    }

    #[test]
    fn the_rules_of_section_6_1() {
        let yes = [
            "<message xmlns='jabber:client' type='chat'/>",
            "<message xmlns='jabber:client'><body>x</body></message>",
            "<message xmlns='jabber:client' type='normal'><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
            "<message xmlns='jabber:client'><received xmlns='urn:xmpp:receipts' id='1'/></message>",
            "<message xmlns='jabber:client'><displayed xmlns='urn:xmpp:chat-markers:0' id='1'/></message>",
            "<message xmlns='jabber:client'><x xmlns='jabber:x:conference' jid='r@conference.h'/></message>",
            "<message xmlns='jabber:client' type='error'><body>x</body><error type='cancel'/></message>",
        ];
        for x in yes {
            assert!(eligible(&m(x), Direction::Received), "{x}");
            assert!(eligible(&m(x), Direction::Sent), "{x}");
        }
        let no = [
            "<message xmlns='jabber:client' type='groupchat'><body>x</body></message>",
            "<message xmlns='jabber:client' type='headline'><body>x</body></message>",
            "<message xmlns='jabber:client'/>",
            "<message xmlns='jabber:client' type='chat'><private xmlns='urn:xmpp:carbons:2'/><no-copy xmlns='urn:xmpp:hints'/></message>",
            "<message xmlns='jabber:client' type='chat'><no-copy xmlns='urn:xmpp:hints'/></message>",
            "<message xmlns='jabber:client' type='chat'><sent xmlns='urn:xmpp:carbons:2'/></message>",
            "<message xmlns='jabber:client' type='error'><error type='cancel'/></message>",
        ];
        for x in no {
            assert!(!eligible(&m(x), Direction::Received), "{x}");
        }
        // MUC private messages: copied when the user sends one, not when
        // one arrives from the room (the room reaches every joined client).
        let pm = m(
            "<message xmlns='jabber:client' type='chat'><body>x</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>",
        );
        assert!(eligible(&pm, Direction::Sent));
        assert!(!eligible(&pm, Direction::Received));
        let invite = m(
            "<message xmlns='jabber:client'><x xmlns='http://jabber.org/protocol/muc#user'><invite from='a@h'/></x></message>",
        );
        assert!(eligible(&invite, Direction::Received));
    }

    #[test]
    fn the_copy_of_the_xep_example() {
        // XEP-0280 Example 6.
        let original = m(
            "<message xmlns='jabber:client' from='juliet@capulet.example/balcony' to='romeo@montague.example/garden' type='chat'><body>What man art thou?</body></message>",
        );
        let account = BareJid::new("romeo@montague.example").expect("jid");
        let to = FullJid::new("romeo@montague.example/home").expect("jid");
        let c = copy(&original, &account, &to, Direction::Received);
        assert_eq!(c.attr("from"), Some("romeo@montague.example"));
        assert_eq!(c.attr("to"), Some("romeo@montague.example/home"));
        assert_eq!(c.attr("type"), Some("chat"));
        let inner = c
            .get_child("received", NS)
            .and_then(|r| r.get_child("forwarded", ns::FORWARD))
            .and_then(|f| f.get_child("message", ns::CLIENT))
            .expect("forwarded original");
        assert_eq!(inner, &original);
        assert!(
            !eligible(&c, Direction::Received),
            "a carbon is never copied again"
        );
    }
}
