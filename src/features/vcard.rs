//! XEP-0054: vcard-temp.
//!
//! Each account has at most one vCard, kept as the serialised
//! `<vCard xmlns='vcard-temp'/>` element it last set. vCards are public in
//! vcard-temp: anyone may read one, only its owner may replace it.
//!
//! Without a stored vCard, the owner gets an empty `<vCard/>` and anyone else
//! `item-not-found`: XEP-0054 §3.1 allows either for one's own vCard (the
//! empty element is what clients handle best), §3.3 asks for an error for
//! someone else's, and `item-not-found` is what Prosody and ejabberd send.

use super::{IqRequest, IqResult};
use crate::storage::StorageError;
use crate::xmpp::error::{Condition, StanzaError};
use crate::xmpp::{ns, stanza};
use jid::BareJid;
use minidom::Element;
use std::future::Future;

/// vCards, one per account.
pub trait VCardStore {
    /// The serialised vCard of `owner`, if it set one.
    fn get_vcard(
        &self,
        owner: &BareJid,
    ) -> impl Future<Output = Result<Option<String>, StorageError>> + Send;
    /// Store `xml` as the vCard of `owner`, replacing any previous one.
    fn set_vcard(
        &self,
        owner: &BareJid,
        xml: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Delete the vCard of `owner` (account deletion).
    fn remove_user(&self, owner: &BareJid)
    -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// Answer a vCard get (anyone) or set (the owner only).
pub async fn handle(req: &IqRequest<'_>) -> IqResult {
    // The dispatch only sends account-addressed iqs here.
    let Some(owner) = req.to.as_ref() else {
        return Err(StanzaError::new(Condition::ServiceUnavailable));
    };
    if req.set {
        // XEP-0054 §3.2: setting someone else's vCard is forbidden.
        req.owner_only()?;
        set(req, owner).await
    } else {
        get(req, owner).await
    }
}

async fn get(req: &IqRequest<'_>, owner: &BareJid) -> IqResult {
    let stored = req
        .state
        .storage
        .get_vcard(owner)
        .await
        .map_err(|e| internal(owner, &e))?;
    match stored {
        Some(xml) => parse_stored(&xml).map(Some).ok_or_else(|| {
            tracing::error!(user = %owner, "stored vCard is not valid XML");
            StanzaError::new(Condition::InternalServerError)
        }),
        None if req.from_owner() => Ok(Some(Element::bare("vCard", ns::VCARD))),
        None => Err(StanzaError::new(Condition::ItemNotFound)),
    }
}

async fn set(req: &IqRequest<'_>, owner: &BareJid) -> IqResult {
    let limit = req.state.config.limits.vcard_size;
    let xml = serialise(req.payload, limit)?;
    req.state
        .storage
        .set_vcard(owner, &xml)
        .await
        .map_err(|e| internal(owner, &e))?;
    Ok(None)
}

/// The vCard as it is stored: the element serialised with its namespace, so
/// that it parses back on its own. Refused beyond `limit` bytes.
pub fn serialise(vcard: &Element, limit: usize) -> Result<String, StanzaError> {
    let bytes = stanza::to_bytes(vcard);
    if bytes.is_empty() {
        return Err(StanzaError::new(Condition::BadRequest).with_text("unserialisable vCard"));
    }
    if bytes.len() > limit {
        return Err(StanzaError::new(Condition::NotAcceptable)
            .with_text(format!("a vCard may hold at most {limit} bytes")));
    }
    // Serialising an element parsed from valid XML gives UTF-8.
    String::from_utf8(bytes)
        .map_err(|_| StanzaError::new(Condition::BadRequest).with_text("vCard is not UTF-8"))
}

/// A stored vCard back as an element; None if the database holds garbage.
pub fn parse_stored(xml: &str) -> Option<Element> {
    let el: Element = xml.parse().ok()?;
    (el.name() == "vCard" && el.ns() == ns::VCARD).then_some(el)
}

fn internal(owner: &BareJid, e: &StorageError) -> StanzaError {
    tracing::error!(user = %owner, error = %e, "vCard storage failed");
    StanzaError::new(Condition::InternalServerError)
}

#[cfg(test)]
mod tests {
    use super::*;

    // XEP-0054 Example 2, shortened, with a PHOTO as XEP-0153 uses it.
    const VCARD: &str = "<iq xmlns='jabber:client' type='set' id='v2'>\
        <vCard xmlns='vcard-temp'><FN>Peter Saint-Andre</FN>\
        <N><FAMILY>Saint-Andre</FAMILY><GIVEN>Peter</GIVEN><MIDDLE/></N>\
        <NICKNAME>stpeter</NICKNAME>\
        <PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==</BINVAL></PHOTO>\
        <EMAIL><INTERNET/><PREF/><USERID>stpeter@jabber.org</USERID></EMAIL>\
        </vCard></iq>";

    fn payload() -> Element {
        let iq: Element = VCARD.parse().expect("example parses");
        iq.get_child("vCard", ns::VCARD).expect("vCard").clone()
    }

    #[test]
    fn serialised_vcard_keeps_its_namespace() {
        let vcard = payload();
        let xml = serialise(&vcard, 64 * 1024).expect("fits");
        assert!(xml.contains("vcard-temp"), "{xml}");
        let back = parse_stored(&xml).expect("parses back alone");
        assert_eq!(back, vcard);
        let photo = back.get_child("PHOTO", ns::VCARD).expect("photo");
        assert!(photo.get_child("BINVAL", ns::VCARD).is_some());
    }

    #[test]
    fn oversized_vcard_is_not_acceptable() {
        let err = serialise(&payload(), 100).expect_err("too big");
        assert_eq!(err.condition, Condition::NotAcceptable);
        assert!(err.text.as_deref().unwrap_or("").contains("100 bytes"));
    }

    #[test]
    fn stored_garbage_is_refused() {
        assert!(parse_stored("<vCard xmlns='vcard-temp'>").is_none());
        assert!(parse_stored("<query xmlns='jabber:iq:private'/>").is_none());
    }
}
