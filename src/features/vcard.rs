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
//!
//! Accounts of a domain with an LDAP directory get their vCard from their
//! directory entry, built on each read through the `[auth.ldap] vcard`
//! attribute map (FN, N, NICKNAME, PHOTO from `jpegPhoto`, TEL, EMAIL,
//! TITLE, ROLE, ORG, URL), so that it is readable by anyone even if the user
//! never set one. Such a user may still set a vCard, and it is stored as
//! sent (Gajim sends the whole vCard back when only the avatar changes), but
//! on read the directory-owned fields always win: the stored vCard only fills
//! the fields the directory did not give (a NICKNAME, a PHOTO when the
//! directory has none). A directory that does not answer in time is not an
//! error: the stored vCard is served as it is.

use super::{IqRequest, IqResult};
use crate::auth::ldap::Entry;
use crate::config::AuthBackendKind;
use crate::state::ServerState;
use crate::storage::StorageError;
use crate::xmpp::error::{Condition, StanzaError};
use crate::xmpp::{ns, stanza};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use jid::BareJid;
use minidom::Element;
use std::collections::BTreeMap;
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
    let directory = from_directory(req.state, owner).await;
    let stored = req
        .state
        .storage
        .get_vcard(owner)
        .await
        .map_err(|e| StanzaError::internal("vCard storage failed", Some(owner), &e))?;
    let stored = match stored {
        Some(xml) => match parse_stored(&xml) {
            Some(el) => Some(el),
            None => {
                tracing::error!(user = %owner, "stored vCard is not valid XML");
                if directory.is_none() {
                    return Err(StanzaError::new(Condition::InternalServerError));
                }
                None
            }
        },
        None => None,
    };
    match (directory, stored) {
        (Some(dir), stored) => Ok(Some(merge(dir, stored.as_ref()))),
        (None, Some(stored)) => Ok(Some(stored)),
        (None, None) if req.from_owner() => Ok(Some(Element::bare("vCard", ns::VCARD))),
        (None, None) => Err(StanzaError::new(Condition::ItemNotFound)),
    }
}

/// The vCard the directory gives `owner`, if the account is the directory's
/// and the directory answers.
async fn from_directory(state: &ServerState, owner: &BareJid) -> Option<Element> {
    let dir = state.directories.get(owner.domain().as_str())?;
    let uid = owner.node()?.as_str();
    if held_before_directory(state, owner).await {
        return None;
    }
    match dir.find(uid).await {
        Ok(Some(entry)) => Some(directory_vcard(entry.as_ref(), &dir.config().vcard)),
        Ok(None) => None,
        Err(e) => {
            tracing::debug!(user = %owner, error = %e, "directory unavailable: serving the stored vCard");
            None
        }
    }
}

/// Whether a backend looked up before the directory holds the account (a
/// local account that shares its name with a person of the directory is
/// not that person).
async fn held_before_directory(state: &ServerState, owner: &BareJid) -> bool {
    use crate::auth::AccountStore;
    let backends = state.config.auth_backends(owner.domain().as_str()).list();
    let internal_first = backends
        .iter()
        .take_while(|b| **b != AuthBackendKind::Ldap)
        .any(|b| *b == AuthBackendKind::Internal);
    internal_first && matches!(state.storage.credentials(owner).await, Ok(Some(_)))
}

/// The attributes of a directory entry a vCard is built from.
pub trait Attributes {
    /// The first value of a text attribute.
    fn text(&self, attr: &str) -> Option<&str>;
    /// The first value of a binary attribute.
    fn binary(&self, attr: &str) -> Option<&[u8]>;
}

impl Attributes for Entry {
    fn text(&self, attr: &str) -> Option<&str> {
        self.first(attr)
    }

    fn binary(&self, attr: &str) -> Option<&[u8]> {
        self.bytes(attr)
    }
}

/// Directory text as element content: trimmed, without the characters XML
/// 1.0 cannot carry (a stray control character in an attribute must not
/// make the whole stanza unparseable).
pub fn directory_text(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|&c| crate::xmpp::chars::is_char(c))
        .collect()
}

/// The vCard of a directory entry, through `map` (vCard field -> attribute).
pub fn directory_vcard(entry: &impl Attributes, map: &BTreeMap<String, String>) -> Element {
    let get = |field: &str| {
        map.get(field)
            .and_then(|attr| entry.text(attr))
            .map(directory_text)
            .filter(|v| !v.is_empty())
    };
    let mut vcard = Element::bare("vCard", ns::VCARD);
    // FN is the one field XEP-0054 requires; every person entry has a cn.
    let full_name = get("fn").or_else(|| {
        entry
            .text("cn")
            .map(directory_text)
            .filter(|v| !v.is_empty())
    });
    if let Some(v) = full_name {
        vcard.append_child(leaf("FN", &v));
    }
    let name: Vec<Element> = [("FAMILY", "family"), ("GIVEN", "given")]
        .into_iter()
        .filter_map(|(el, field)| get(field).map(|v| leaf(el, &v)))
        .collect();
    if !name.is_empty() {
        vcard.append_child(branch("N", name));
    }
    if let Some(v) = get("nickname") {
        vcard.append_child(leaf("NICKNAME", &v));
    }
    let photo = map
        .get("photo")
        .and_then(|attr| entry.binary(attr))
        .filter(|b| !b.is_empty());
    if let Some(bytes) = photo {
        vcard.append_child(branch(
            "PHOTO",
            vec![
                leaf("TYPE", image_type(bytes)),
                leaf("BINVAL", &B64.encode(bytes)),
            ],
        ));
    }
    if let Some(v) = get("tel") {
        vcard.append_child(branch(
            "TEL",
            vec![
                Element::bare("WORK", ns::VCARD),
                Element::bare("VOICE", ns::VCARD),
                leaf("NUMBER", &v),
            ],
        ));
    }
    if let Some(v) = get("email") {
        vcard.append_child(branch(
            "EMAIL",
            vec![
                Element::bare("INTERNET", ns::VCARD),
                Element::bare("PREF", ns::VCARD),
                leaf("USERID", &v),
            ],
        ));
    }
    for (el, field) in [("TITLE", "title"), ("ROLE", "role")] {
        if let Some(v) = get(field) {
            vcard.append_child(leaf(el, &v));
        }
    }
    let org: Vec<Element> = [("ORGNAME", "orgname"), ("ORGUNIT", "orgunit")]
        .into_iter()
        .filter_map(|(el, field)| get(field).map(|v| leaf(el, &v)))
        .collect();
    if !org.is_empty() {
        vcard.append_child(branch("ORG", org));
    }
    if let Some(v) = get("url") {
        vcard.append_child(leaf("URL", &v));
    }
    vcard
}

/// The directory's vCard, completed by the user's own for every field the
/// directory did not give (N and ORG field by field).
pub fn merge(mut directory: Element, stored: Option<&Element>) -> Element {
    let Some(stored) = stored else {
        return directory;
    };
    let owned: Vec<String> = directory.children().map(|c| c.name().to_owned()).collect();
    for child in stored.children() {
        let name = child.name();
        if child.ns() != ns::VCARD || !owned.iter().any(|o| o == name) {
            directory.append_child(child.clone());
        } else if matches!(name, "N" | "ORG")
            && let Some(ours) = directory.get_child_mut(name, ns::VCARD)
        {
            let have: Vec<String> = ours.children().map(|c| c.name().to_owned()).collect();
            for part in child.children() {
                if !have.iter().any(|h| h == part.name()) {
                    ours.append_child(part.clone());
                }
            }
        }
    }
    directory
}

/// The MIME type of a photo, by its magic number (`jpegPhoto` holds
/// whatever was uploaded; JPEG is what the attribute promises).
fn image_type(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(&[0x89, b'P', b'N', b'G']) {
        "image/png"
    } else if bytes.starts_with(b"GIF8") {
        "image/gif"
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else {
        "image/jpeg"
    }
}

fn leaf(name: &str, text: &str) -> Element {
    let mut el = Element::bare(name, ns::VCARD);
    el.append_text(text);
    el
}

fn branch(name: &str, children: Vec<Element>) -> Element {
    let mut el = Element::bare(name, ns::VCARD);
    for c in children {
        el.append_child(c);
    }
    el
}

async fn set(req: &IqRequest<'_>, owner: &BareJid) -> IqResult {
    let limit = req.state.config.limits.vcard_size;
    let xml = serialise(req.payload, limit)?;
    req.state
        .storage
        .set_vcard(owner, &xml)
        .await
        .map_err(|e| StanzaError::internal("vCard storage failed", Some(owner), &e))?;
    Ok(None)
}

/// The vCard as it is stored: the element serialised with its namespace, so
/// that it parses back on its own. Refused beyond `limit` bytes.
pub fn serialise(vcard: &Element, limit: usize) -> Result<String, StanzaError> {
    let xml = stanza::to_string(vcard)
        .map_err(|e| StanzaError::new(Condition::BadRequest).with_text(e.to_string()))?;
    if xml.is_empty() {
        return Err(StanzaError::new(Condition::BadRequest).with_text("unserialisable vCard"));
    }
    if xml.len() > limit {
        return Err(StanzaError::new(Condition::NotAcceptable)
            .with_text(format!("a vCard may hold at most {limit} bytes")));
    }
    Ok(xml)
}

/// A stored vCard back as an element; None if the database holds garbage.
pub fn parse_stored(xml: &str) -> Option<Element> {
    let el: Element = xml.parse().ok()?;
    (el.name() == "vCard" && el.ns() == ns::VCARD).then_some(el)
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

    /// A directory entry, for the tests.
    struct Fake(BTreeMap<&'static str, &'static str>, Option<Vec<u8>>);

    impl Attributes for Fake {
        fn text(&self, attr: &str) -> Option<&str> {
            self.0.get(attr).copied()
        }
        fn binary(&self, attr: &str) -> Option<&[u8]> {
            (attr == "jpegPhoto").then_some(self.1.as_deref()).flatten()
        }
    }

    fn jean(photo: Option<Vec<u8>>) -> Fake {
        Fake(
            [
                ("cn", "Jean Dupont"),
                ("displayName", "Jean Dupont"),
                ("sn", "Dupont"),
                ("givenName", "Jean"),
                ("mail", "jean.dupont@univ-lille.fr"),
                ("telephoneNumber", "+33 3 20 00 00 01"),
                ("ou", "Informatique"),
                ("title", "Ingénieur\u{1b} systèmes "),
            ]
            .into_iter()
            .collect(),
            photo,
        )
    }

    fn map() -> BTreeMap<String, String> {
        crate::config::LdapConfig::default().vcard
    }

    fn child_text(el: &Element, path: &[&str]) -> Option<String> {
        let mut el = el;
        for name in path {
            el = el.get_child(name, ns::VCARD)?;
        }
        Some(el.text())
    }

    #[test]
    fn vcard_from_directory_entry() {
        let v = directory_vcard(&jean(Some(vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2])), &map());
        assert_eq!(child_text(&v, &["FN"]).as_deref(), Some("Jean Dupont"));
        assert_eq!(child_text(&v, &["N", "FAMILY"]).as_deref(), Some("Dupont"));
        assert_eq!(child_text(&v, &["N", "GIVEN"]).as_deref(), Some("Jean"));
        assert_eq!(
            child_text(&v, &["EMAIL", "USERID"]).as_deref(),
            Some("jean.dupont@univ-lille.fr")
        );
        assert!(
            v.get_child("EMAIL", ns::VCARD)
                .is_some_and(|e| e.has_child("INTERNET", ns::VCARD))
        );
        assert_eq!(
            child_text(&v, &["TEL", "NUMBER"]).as_deref(),
            Some("+33 3 20 00 00 01")
        );
        assert_eq!(
            child_text(&v, &["ORG", "ORGUNIT"]).as_deref(),
            Some("Informatique")
        );
        assert_eq!(child_text(&v, &["ORG", "ORGNAME"]), None, "no o attribute");
        // Trimmed, control character dropped.
        assert_eq!(
            child_text(&v, &["TITLE"]).as_deref(),
            Some("Ingénieur systèmes")
        );
        assert_eq!(
            child_text(&v, &["PHOTO", "TYPE"]).as_deref(),
            Some("image/jpeg")
        );
        assert_eq!(
            child_text(&v, &["PHOTO", "BINVAL"]).as_deref(),
            Some("/9j/4AEC")
        );
        assert!(v.get_child("NICKNAME", ns::VCARD).is_none());
        // What we build serialises and parses back.
        let xml = serialise(&v, 64 * 1024).expect("fits");
        assert_eq!(parse_stored(&xml), Some(v));
    }

    #[test]
    fn photo_types_are_sniffed() {
        assert_eq!(image_type(&[0x89, b'P', b'N', b'G', 0x0D]), "image/png");
        assert_eq!(image_type(&[0xFF, 0xD8, 0xFF]), "image/jpeg");
        assert_eq!(image_type(b"GIF89a"), "image/gif");
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
    }

    #[test]
    fn directory_fields_win_and_the_rest_is_the_users() {
        let dir = directory_vcard(&jean(None), &map());
        let own = parse_stored(
            "<vCard xmlns='vcard-temp'><FN>Hacker</FN><NICKNAME>jd</NICKNAME>\
             <N><FAMILY>X</FAMILY><MIDDLE>Pierre</MIDDLE></N>\
             <PHOTO><TYPE>image/png</TYPE><BINVAL>iVBO</BINVAL></PHOTO>\
             <EMAIL><INTERNET/><USERID>evil@example.org</USERID></EMAIL></vCard>",
        )
        .expect("valid");
        let v = merge(dir, Some(&own));
        assert_eq!(child_text(&v, &["FN"]).as_deref(), Some("Jean Dupont"));
        assert_eq!(child_text(&v, &["NICKNAME"]).as_deref(), Some("jd"));
        assert_eq!(child_text(&v, &["N", "FAMILY"]).as_deref(), Some("Dupont"));
        assert_eq!(child_text(&v, &["N", "MIDDLE"]).as_deref(), Some("Pierre"));
        assert_eq!(
            child_text(&v, &["PHOTO", "TYPE"]).as_deref(),
            Some("image/png")
        );
        let emails: Vec<_> = v.children().filter(|c| c.name() == "EMAIL").collect();
        assert_eq!(emails.len(), 1, "the directory's address only");
        assert_eq!(v.children().filter(|c| c.name() == "FN").count(), 1);
    }

    #[test]
    fn stored_garbage_is_refused() {
        assert!(parse_stored("<vCard xmlns='vcard-temp'>").is_none());
        assert!(parse_stored("<query xmlns='jabber:iq:private'/>").is_none());
    }
}
