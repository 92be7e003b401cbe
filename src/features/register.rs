//! XEP-0077: In-Band Registration (version 2.4): account creation before
//! authentication (off unless `auth.allow_registration`), password change
//! (§3.3, always allowed for internal accounts) and account removal (§3.2,
//! only where registration is allowed).
//!
//! Registration uses the plain `<username/>` and `<password/>` fields: we
//! offer no data form, so by the precedence rules of §6 clients submit the
//! fields. Account creation is bounded per client address through the
//! authentication throttle (see [`admit`]).

use super::{IqRequest, IqResult};
use crate::auth::{AccountStore, credentials_for};
use crate::state::ServerState;
use crate::stream::error::{StreamCondition, StreamError};
use crate::xmpp::error::{Condition, ErrorType, StanzaError};
use crate::xmpp::ns;
use crate::xmpp::stanza::iq_result;
use jid::{BareJid, DomainPart, NodePart};
use minidom::Element;
use std::net::IpAddr;
use std::time::Duration;

/// Account creations (and attempts on taken names) one address may make
/// within the throttle window; the next is refused until the address has been
/// quiet for `auth.throttle_window` seconds.
const REGISTRATIONS_PER_WINDOW: u32 = 3;

/// What the form of §3.1 tells a human.
const INSTRUCTIONS: &str = "Choose a username and password for use with this service.";

/// The `<register/>` stream feature of §8 (namespace `ns::REGISTER_FEATURE`).
const FEATURE: &str = "<register xmlns='http://jabber.org/features/iq-register'/>";

/// The `<register/>` stream feature, offered before authentication when
/// registration is allowed.
pub fn stream_feature(state: &ServerState, domain: &str) -> Option<&'static str> {
    open(state, domain).then_some(FEATURE)
}

/// Whether anyone may create an account on `domain`. Never on a domain with
/// a directory: an internal account would shadow (or pre-empt) the
/// directory's account of the same name.
fn open(state: &ServerState, domain: &str) -> bool {
    state.config.auth.allow_registration
        && !crate::auth::backends::plain_needed(&state.config, domain)
}

/// The reply to an iq a client sent before authenticating (§3.1: an
/// unregistered entity registers, then authenticates on the same stream);
/// None for results and errors, which are never answered (RFC 6120 §8.3.1).
/// Only `jabber:iq:register` is answered; anything else is
/// `service-unavailable`, as is registration when it is disabled (§3.1: "If
/// the host does not support In-Band Registration, it MUST return a
/// <service-unavailable/> error", and Prosody answers the same).
pub async fn handle_unauthenticated(
    state: &ServerState,
    domain: &str,
    ip: IpAddr,
    iq: &Element,
) -> Option<Element> {
    if matches!(iq.attr("type"), Some("result" | "error")) {
        return None;
    }
    Some(match unauthenticated(state, domain, ip, iq).await {
        Ok(payload) => iq_result(iq, payload),
        Err(e) => e.reply_to(iq),
    })
}

async fn unauthenticated(
    state: &ServerState,
    domain: &str,
    ip: IpAddr,
    iq: &Element,
) -> Result<Option<Element>, StanzaError> {
    let set = match iq.attr("type") {
        Some("get") => false,
        Some("set") => true,
        _ => return Err(bad_request("an iq request is a get or a set")),
    };
    if iq.attr("id").is_none() {
        return Err(bad_request("iq without id"));
    }
    let mut children = iq.children();
    let query = match (children.next(), children.next()) {
        (Some(q), None) => q,
        _ => return Err(bad_request("an iq request carries exactly one payload")),
    };
    // Before authentication the only party to talk to is the server of this stream.
    let to_us = iq.attr("to").is_none_or(|to| {
        BareJid::new(to).is_ok_and(|j| j.node().is_none() && j.domain().as_str() == domain)
    });
    if !query.is("query", ns::REGISTER) || !to_us || !open(state, domain) {
        return Err(StanzaError::new(Condition::ServiceUnavailable));
    }
    if !set {
        let mut q = Element::bare("query", ns::REGISTER);
        q.append_child(text_element("instructions", INSTRUCTIONS));
        q.append_child(Element::bare("username", ns::REGISTER));
        q.append_child(Element::bare("password", ns::REGISTER));
        return Ok(Some(q));
    }
    if query.has_child("remove", ns::REGISTER) {
        // §3.2: only a registered (here: authenticated) entity can cancel. Our
        // condition list lacks <registration-required/>; not-authorized says the same.
        return Err(
            StanzaError::new(Condition::NotAuthorized).with_text("log in to remove your account")
        );
    }
    let (Some(username), Some(password)) =
        (child_text(query, "username"), child_text(query, "password"))
    else {
        return Err(StanzaError::new(Condition::NotAcceptable)
            .with_text("a username and a password are required"));
    };
    let user = account(&username, domain)?;
    if password.is_empty() {
        return Err(StanzaError::new(Condition::NotAcceptable).with_text("the password is empty"));
    }
    admit(state, ip).await?;
    // A taken name is answered without deriving keys, so probing names costs us little.
    if state
        .storage
        .credentials(&user)
        .await
        .map_err(|e| StanzaError::internal("in-band registration failed", Some(&user), &e))?
        .is_some()
    {
        return Err(taken());
    }
    let creds = credentials_for(password, state.config.auth.scram_iterations)
        .await
        .map_err(|e| StanzaError::internal("in-band registration failed", Some(&user), &e))?;
    if !state
        .storage
        .create(&user, &creds)
        .await
        .map_err(|e| StanzaError::internal("in-band registration failed", Some(&user), &e))?
    {
        return Err(taken());
    }
    tracing::info!(account = %user, %ip, "account registered in-band");
    Ok(None)
}

/// Bound account creation per client address, with no table of our own: each
/// attempt counts as a failure on the address in the authentication throttle
/// (`auth/throttle.rs`, keyed by IPv4 address or IPv6 /64, bounded in size).
/// An address therefore waits out the throttle's growing delay before each
/// attempt, and once it has [`REGISTRATIONS_PER_WINDOW`] failures within the
/// window (registrations, or failed logins: both are what an abuser produces)
/// it is refused until it has been quiet for the window. The cost: the next
/// login from that address waits the same delay (500 ms after one
/// registration with the defaults). With `throttle_base_ms = 0` there is no bound.
async fn admit(state: &ServerState, ip: IpAddr) -> Result<(), StanzaError> {
    let auth = &state.config.auth;
    let limit = Duration::from_millis(auth.throttle_base_ms)
        .saturating_mul(1 << (REGISTRATIONS_PER_WINDOW - 1))
        .min(Duration::from_millis(auth.throttle_max_ms));
    let delay = state.throttle.delay(ip, None);
    if !limit.is_zero() && delay >= limit {
        tracing::info!(%ip, "in-band registration refused: too many from this address");
        let mut e = StanzaError::new(Condition::PolicyViolation)
            .with_text("too many registrations from your address; try again later");
        e.kind = ErrorType::Wait;
        return Err(e);
    }
    // Count the attempt before any await, so parallel connections from one
    // address cannot all pass the check above before any of them is counted.
    state.throttle.failed(ip, None);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    Ok(())
}

/// Answer a `jabber:iq:register` request from a logged-in user, to the server
/// or to the user's own bare JID (§3.2 asks clients to send `<remove/>` with
/// no 'to').
pub async fn handle(req: &IqRequest<'_>) -> IqResult {
    let state = req.state;
    let user = req.from.to_bare();
    let home = user.node().is_some() && state.config.serves(user.domain().as_str());
    let addressed = match &req.to {
        Some(account) => account == &user,
        None => req
            .iq
            .attr("to")
            .and_then(|to| BareJid::new(to).ok())
            .is_some_and(|to| to.domain() == user.domain()),
    };
    if !home || !addressed {
        // An account is managed on its own server only; creating one is done
        // before authentication.
        return Err(StanzaError::new(Condition::NotAllowed)
            .with_text("manage your account on its own server"));
    }
    let username = user.node().map(|n| n.as_str()).unwrap_or_default();
    if !req.set {
        let mut q = Element::bare("query", ns::REGISTER);
        q.append_child(Element::bare("registered", ns::REGISTER));
        q.append_child(text_element("username", username));
        return Ok(Some(q));
    }
    let query = req.payload;
    if query.has_child("remove", ns::REGISTER) {
        if query.children().count() != 1 {
            return Err(bad_request("<remove/> must be the only child"));
        }
        return remove(req, &user).await;
    }
    // §3.3: a password change names the account and the new password.
    let (Some(given), Some(password)) =
        (child_text(query, "username"), child_text(query, "password"))
    else {
        return Err(bad_request(
            "a password change needs <username/> and <password/>",
        ));
    };
    let same = NodePart::new(&given).is_ok_and(|n| n.as_str() == username);
    if !same {
        return Err(bad_request("you can change your own password only"));
    }
    if password.is_empty() {
        // §3.3: an empty password MUST NOT replace the existing one.
        return Err(StanzaError::new(Condition::NotAcceptable).with_text("the password is empty"));
    }
    let creds = credentials_for(password, state.config.auth.scram_iterations)
        .await
        .map_err(|e| StanzaError::internal("in-band registration failed", Some(&user), &e))?;
    if !state
        .storage
        .set_credentials(&user, &creds)
        .await
        .map_err(|e| StanzaError::internal("in-band registration failed", Some(&user), &e))?
    {
        if crate::auth::backends::plain_needed(&state.config, user.domain().as_str()) {
            return Err(StanzaError::new(Condition::NotAllowed)
                .with_text("your password is managed by your organisation's directory"));
        }
        return Err(StanzaError::new(Condition::ItemNotFound));
    }
    tracing::info!(account = %user, "password changed in-band");
    Ok(None)
}

/// §3.2, home server case: cancel the account's subscriptions, delete it,
/// then end all its sessions with a `<not-authorized/>` stream error.
async fn remove(req: &IqRequest<'_>, user: &BareJid) -> IqResult {
    let state = req.state;
    if !open(state, user.domain().as_str()) {
        // Accounts come from the administrator; so does their removal.
        return Err(StanzaError::new(Condition::NotAllowed));
    }
    super::presence::cancel_subscriptions(state, user).await;
    if !state
        .storage
        .delete(user)
        .await
        .map_err(|e| StanzaError::internal("in-band registration failed", Some(user), &e))?
    {
        return Err(StanzaError::new(Condition::ItemNotFound));
    }
    tracing::info!(account = %user, "account removed in-band");
    // The result must be queued before the sessions close: once closing, a
    // session is no longer addressable, and the reply the dispatcher makes
    // from our Ok(None) is dropped as addressed to a gone resource. Whether
    // this queued one reaches the client depends on the session flushing its
    // queue before the stream error (see the integration notes).
    crate::router::route(state, iq_result(req.iq, None)).await;
    state.sessions.close_account(
        user,
        &StreamError::new(StreamCondition::NotAuthorized, "account removed"),
    );
    Ok(None)
}

/// The account `username` names on `domain`, nodeprepped (RFC 7622 via the jid crate).
fn account(username: &str, domain: &str) -> Result<BareJid, StanzaError> {
    // §3.1 lists not-acceptable for unacceptable data; Prosody answers the same.
    let node = NodePart::new(username).map_err(|_| {
        StanzaError::new(Condition::NotAcceptable).with_text("this username is not valid")
    })?;
    let domain =
        DomainPart::new(domain).map_err(|_| StanzaError::new(Condition::InternalServerError))?;
    Ok(BareJid::from_parts(Some(&node), &domain))
}

/// The text of a child in the register namespace, if present.
fn child_text(query: &Element, name: &str) -> Option<String> {
    query.get_child(name, ns::REGISTER).map(Element::text)
}

fn text_element(name: &str, text: &str) -> Element {
    let mut el = Element::bare(name, ns::REGISTER);
    el.append_text(text.to_owned());
    el
}

fn bad_request(text: &str) -> StanzaError {
    StanzaError::new(Condition::BadRequest).with_text(text)
}

fn taken() -> StanzaError {
    StanzaError::new(Condition::Conflict).with_text("this username is taken")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_is_the_xep_element() {
        let el: Element = FEATURE.parse().expect("xml");
        assert!(el.is("register", ns::REGISTER_FEATURE));
    }

    #[test]
    fn usernames_are_nodeprepped() {
        let j = account("Juliet", "capulet.lit").expect("valid");
        assert_eq!(j.as_str(), "juliet@capulet.lit");
        let e = account("jul@iet", "capulet.lit").expect_err("'@' is not allowed");
        assert_eq!(e.condition, Condition::NotAcceptable);
        assert!(account("", "capulet.lit").is_err());
    }
}
