//! XEP-0049: Private XML Storage.
//!
//! An account keeps one element per (namespace, element name), readable and
//! writable by its owner only. Legacy bookmarks (`storage:bookmarks`),
//! still written by Gajim and Pidgin, live here.
//!
//! Like Prosody, a request must name exactly one element (else
//! `bad-request`, the modern name of XEP-0049's "Bad Format"), and storing an
//! element with neither children nor attributes deletes it. The namespaces a
//! child of `<query/>` would inherit without its own (`jabber:client`,
//! `jabber:server`, `jabber:iq:private`) are refused with `not-acceptable`
//! (XEP-0049 §2.3, reserved namespaces). What an account stores is bounded
//! by `limits.private_size` bytes in total.

use super::{IqRequest, IqResult};
use crate::storage::StorageError;
use crate::xmpp::error::{Condition, StanzaError};
use crate::xmpp::{ns, stanza};
use jid::BareJid;
use minidom::Element;
use std::future::Future;

/// Namespaces an element may not be stored under.
const RESERVED: [&str; 3] = [ns::CLIENT, ns::SERVER, ns::PRIVATE];

/// Private XML, per account and (namespace, element name).
pub trait PrivateStore {
    /// The serialised element `owner` stored under (`namespace`, `name`), if any.
    fn get_private(
        &self,
        owner: &BareJid,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, StorageError>> + Send;
    /// Store `xml` under (`namespace`, `name`), replacing what was there, unless
    /// `owner`'s elements would then exceed `max_total` bytes; returns whether it was stored.
    fn set_private(
        &self,
        owner: &BareJid,
        namespace: &str,
        name: &str,
        xml: &str,
        max_total: usize,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;
    /// Delete the element under (`namespace`, `name`), if any.
    fn remove_private(
        &self,
        owner: &BareJid,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Delete everything `owner` stored (account deletion).
    fn remove_user(&self, owner: &BareJid)
    -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// Answer a private storage get or set.
pub async fn handle(req: &IqRequest<'_>) -> IqResult {
    // XEP-0049 §2.3: another user's storage is forbidden.
    req.owner_only()?;
    let Some(owner) = req.to.as_ref() else {
        return Err(StanzaError::new(Condition::ServiceUnavailable));
    };
    let item = requested(req.payload)?;
    let namespace = item.ns();
    let name = item.name();
    let storage = &req.state.storage;
    if !req.set {
        let stored = storage
            .get_private(owner, &namespace, name)
            .await
            .map_err(|e| StanzaError::internal("private storage failed", Some(owner), &e))?;
        // Nothing stored: the element asked for comes back as it was asked.
        let found = match stored {
            Some(xml) => parse_stored(&xml, &namespace, name).ok_or_else(|| {
                tracing::error!(user = %owner, namespace, "stored private XML is not valid");
                StanzaError::new(Condition::InternalServerError)
            })?,
            None => item.clone(),
        };
        return Ok(Some(
            Element::builder("query", ns::PRIVATE).append(found).build(),
        ));
    }
    if is_empty(item) {
        storage
            .remove_private(owner, &namespace, name)
            .await
            .map_err(|e| StanzaError::internal("private storage failed", Some(owner), &e))?;
        return Ok(None);
    }
    let limit = req.state.config.limits.private_size;
    let too_big = || {
        StanzaError::new(Condition::NotAcceptable).with_text(format!(
            "private storage holds at most {limit} bytes per account"
        ))
    };
    let xml = stanza::to_string(item)
        .map_err(|e| StanzaError::new(Condition::BadRequest).with_text(e.to_string()))?;
    if xml.is_empty() {
        return Err(StanzaError::new(Condition::BadRequest).with_text("unserialisable element"));
    }
    if xml.len() > limit {
        return Err(too_big());
    }
    let stored = storage
        .set_private(owner, &namespace, name, &xml, limit)
        .await
        .map_err(|e| StanzaError::internal("private storage failed", Some(owner), &e))?;
    if stored { Ok(None) } else { Err(too_big()) }
}

/// The one element a request is about.
pub fn requested(query: &Element) -> Result<&Element, StanzaError> {
    let mut children = query.children();
    let (Some(item), None) = (children.next(), children.next()) else {
        return Err(StanzaError::new(Condition::BadRequest)
            .with_text("the query must hold exactly one element"));
    };
    if RESERVED.contains(&item.ns().as_str()) {
        return Err(StanzaError::new(Condition::NotAcceptable)
            .with_text("the element needs a namespace of its own"));
    }
    Ok(item)
}

/// Whether storing `el` means deleting: it carries nothing at all.
fn is_empty(el: &Element) -> bool {
    el.nodes().next().is_none() && el.attrs().is_empty()
}

/// A stored element back; None if the database holds something else.
fn parse_stored(xml: &str, namespace: &str, name: &str) -> Option<Element> {
    let el: Element = xml.parse().ok()?;
    (el.name() == name && el.ns() == namespace).then_some(el)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(inner: &str) -> Element {
        format!("<iq xmlns='jabber:client' type='set' id='p'><query xmlns='jabber:iq:private'>{inner}</query></iq>")
            .parse::<Element>()
            .expect("xml")
            .get_child("query", ns::PRIVATE)
            .expect("query")
            .clone()
    }

    #[test]
    fn exactly_one_namespaced_child() {
        let q = query("<storage xmlns='storage:bookmarks'/>");
        assert_eq!(requested(&q).expect("ok").ns(), "storage:bookmarks");
        let err = requested(&query("")).expect_err("none");
        assert_eq!(err.condition, Condition::BadRequest);
        let err = requested(&query("<a xmlns='x'/><b xmlns='y'/>")).expect_err("two");
        assert_eq!(err.condition, Condition::BadRequest);
        // Without xmlns the child inherits jabber:iq:private.
        let err = requested(&query("<storage/>")).expect_err("reserved");
        assert_eq!(err.condition, Condition::NotAcceptable);
        let err = requested(&query("<x xmlns='jabber:client'/>")).expect_err("reserved");
        assert_eq!(err.condition, Condition::NotAcceptable);
    }

    #[test]
    fn stored_bookmarks_parse_back() {
        let q = query(
            "<storage xmlns='storage:bookmarks'><conference jid='room@conference.localhost' \
             autojoin='true' name='Room'><nick>alice</nick></conference></storage>",
        );
        let item = requested(&q).expect("ok");
        assert!(!is_empty(item));
        let xml = stanza::to_string(item).expect("serialises");
        let back = parse_stored(&xml, "storage:bookmarks", "storage").expect("parses");
        assert_eq!(&back, item);
        assert!(parse_stored(&xml, "storage:rosternotes", "storage").is_none());
        assert!(is_empty(
            requested(&query("<storage xmlns='storage:bookmarks'/>")).expect("ok")
        ));
    }
}
