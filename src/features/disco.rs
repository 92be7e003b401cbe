//! XEP-0030: Service Discovery, with the server's XEP-0115 entity
//! capabilities and its XEP-0157 contact addresses (an XEP-0128 extended form).
//!
//! The server's identity and features are listed once, in [`server_features`]
//! and [`server_info`]; the caps verification string (XEP-0115 §5.1) is
//! computed from that same [`DiscoInfo`], so the two can never disagree.
//! Requests to an account's bare JID are answered on the account's behalf
//! (XEP-0030 §3.1, §8); the router has already answered for accounts that do
//! not exist.

use super::{IqRequest, IqResult};
use crate::config::Config;
use crate::state::ServerState;
use crate::xmpp::error::{Condition, StanzaError, rxml_name};
use crate::xmpp::forms::{self, DataForm, DataFormType, FieldType};
use crate::xmpp::ns;
use crate::xmpp::stanza::set_attr;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use jid::Jid;
use minidom::Element;
use sha1::{Digest, Sha1};

/// The node in the server's XEP-0115 `<c/>`: names the software, not a domain.
pub const CAPS_NODE: &str = "https://jaseur.example/caps";

/// FORM_TYPE of the XEP-0157 contact addresses form.
pub const SERVERINFO: &str = "http://jabber.org/network/serverinfo";

/// The features the server itself supports, as disco#info lists them:
/// derived from the features' declarations (`features::FEATURES`), so a
/// namespace is advertised exactly when its feature is on (the caps hash
/// follows).
pub fn server_features(config: &Config) -> Vec<&'static str> {
    super::enabled(config)
        .flat_map(|f| f.server_disco.iter().copied())
        .collect()
}

/// One identity of a disco#info result (XEP-0030 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub category: String,
    pub kind: String,
    pub lang: Option<String>,
    pub name: Option<String>,
}

impl Identity {
    /// An identity without language or name.
    pub fn new(category: &str, kind: &str) -> Self {
        Identity {
            category: category.into(),
            kind: kind.into(),
            lang: None,
            name: None,
        }
    }

    /// `category/type/lang/name`, the form XEP-0115 §5.1 hashes and sorts by.
    fn caps_part(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.category,
            self.kind,
            self.lang.as_deref().unwrap_or(""),
            self.name.as_deref().unwrap_or("")
        )
    }

    /// The sort key of XEP-0115 §5.1 step 2: category, type, then xml:lang.
    fn sort_key(&self) -> (&str, &str, &str) {
        (
            &self.category,
            &self.kind,
            self.lang.as_deref().unwrap_or(""),
        )
    }
}

/// One field of an extended info form: its var and values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub var: String,
    pub values: Vec<String>,
}

/// An XEP-0128 extended info form, of type 'result', as XEP-0115 hashes it:
/// its XML is read and written through xmpp-parsers' data forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// The value of the hidden FORM_TYPE field.
    pub form_type: String,
    /// The other fields.
    pub fields: Vec<Field>,
}

/// What a disco#info result says: identities, features and extended forms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoInfo {
    pub identities: Vec<Identity>,
    pub features: Vec<String>,
    pub forms: Vec<Form>,
}

/// Why a peer's disco#info cannot be used to verify a caps hash (XEP-0115 §5.4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IllFormed {
    #[error("the same identity twice")]
    DuplicateIdentity,
    #[error("the same feature twice")]
    DuplicateFeature,
    #[error("two forms with the same FORM_TYPE")]
    DuplicateForm,
    #[error("an extended form that is no valid data form, such as a FORM_TYPE with several values")]
    InvalidForm,
    #[error("an identity without category or type")]
    IncompleteIdentity,
}

impl DiscoInfo {
    /// The `<query xmlns='http://jabber.org/protocol/disco#info'/>` payload,
    /// echoing `node` when the request named one (XEP-0030 §3.2).
    pub fn to_element(&self, node: Option<&str>) -> Element {
        let mut query = Element::bare("query", ns::DISCO_INFO);
        if let Some(node) = node {
            set_attr(&mut query, "node", node);
        }
        for identity in &self.identities {
            let mut el = Element::bare("identity", ns::DISCO_INFO);
            set_attr(&mut el, "category", identity.category.as_str());
            set_attr(&mut el, "type", identity.kind.as_str());
            if let Some(name) = &identity.name {
                set_attr(&mut el, "name", name.as_str());
            }
            if let Some(lang) = &identity.lang {
                el.set_attr(
                    minidom::rxml::Namespace::xml().clone(),
                    rxml_name("lang"),
                    lang.as_str(),
                );
            }
            query.append_child(el);
        }
        for feature in &self.features {
            let mut el = Element::bare("feature", ns::DISCO_INFO);
            set_attr(&mut el, "var", feature.as_str());
            query.append_child(el);
        }
        for form in &self.forms {
            query.append_child(form_element(form));
        }
        query
    }

    /// Read a disco#info `<query/>` as XEP-0115 §5.4 asks before verifying a
    /// caps hash: duplicates make it ill-formed; a form without a hidden
    /// FORM_TYPE is ignored.
    pub fn parse(query: &Element) -> Result<DiscoInfo, IllFormed> {
        let mut info = DiscoInfo::default();
        for child in query.children() {
            if child.is("identity", ns::DISCO_INFO) {
                let (Some(category), Some(kind)) = (child.attr("category"), child.attr("type"))
                else {
                    return Err(IllFormed::IncompleteIdentity);
                };
                info.identities.push(Identity {
                    category: category.into(),
                    kind: kind.into(),
                    lang: child.attr_ns(ns::XML, "lang").map(Into::into),
                    name: child.attr("name").map(Into::into),
                });
            } else if child.is("feature", ns::DISCO_INFO)
                && let Some(var) = child.attr("var")
            {
                info.features.push(var.into());
            } else if child.is("x", ns::DATA_FORMS)
                && let Some(form) = parse_form(child)?
            {
                info.forms.push(form);
            }
        }
        let mut identities: Vec<String> = info.identities.iter().map(Identity::caps_part).collect();
        identities.sort();
        if identities.windows(2).any(|w| w[0] == w[1]) {
            return Err(IllFormed::DuplicateIdentity);
        }
        let mut features: Vec<&String> = info.features.iter().collect();
        features.sort();
        if features.windows(2).any(|w| w[0] == w[1]) {
            return Err(IllFormed::DuplicateFeature);
        }
        let mut types: Vec<&String> = info.forms.iter().map(|f| &f.form_type).collect();
        types.sort();
        if types.windows(2).any(|w| w[0] == w[1]) {
            return Err(IllFormed::DuplicateForm);
        }
        Ok(info)
    }

    /// The string S of XEP-0115 §5.1, before hashing.
    pub fn caps_string(&self) -> String {
        let mut s = String::new();
        let mut identities: Vec<&Identity> = self.identities.iter().collect();
        identities.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        for identity in identities {
            s.push_str(&identity.caps_part());
            s.push('<');
        }
        let mut features: Vec<&String> = self.features.iter().collect();
        features.sort();
        for feature in features {
            s.push_str(feature);
            s.push('<');
        }
        let mut forms: Vec<&Form> = self.forms.iter().collect();
        forms.sort_by(|a, b| a.form_type.cmp(&b.form_type));
        for form in forms {
            s.push_str(&form.form_type);
            s.push('<');
            let mut fields: Vec<&Field> = form.fields.iter().collect();
            fields.sort_by(|a, b| a.var.cmp(&b.var));
            for field in fields {
                s.push_str(&field.var);
                s.push('<');
                let mut values: Vec<&String> = field.values.iter().collect();
                values.sort();
                for value in values {
                    s.push_str(value);
                    s.push('<');
                }
            }
        }
        s
    }

    /// The XEP-0115 verification string: base64 of the SHA-1 of [`Self::caps_string`].
    pub fn caps_ver(&self) -> String {
        B64.encode(Sha1::digest(self.caps_string().as_bytes()))
    }
}

/// An extended form of type 'result' (XEP-0128), FORM_TYPE first.
fn form_element(form: &Form) -> Element {
    let fields = form
        .fields
        .iter()
        .map(|field| forms::Field {
            values: field.values.clone(),
            // Several addresses per field: a single-value type would be invalid (XEP-0004 §3.3).
            ..forms::Field::new(&field.var, FieldType::ListMulti)
        })
        .collect();
    forms::to_element(DataForm::new(
        DataFormType::Result_,
        &form.form_type,
        fields,
    ))
}

/// An extended form for caps purposes; None when it is to be ignored (XEP-0115 §5.4 step 3.6).
fn parse_form(x: &Element) -> Result<Option<Form>, IllFormed> {
    // xmpp-parsers refuses, among others, a FORM_TYPE with several values
    // (step 3.5 makes the response ill-formed when they differ).
    let form = DataForm::try_from(x.clone()).map_err(|_| IllFormed::InvalidForm)?;
    let Some(form_type) = form.form_type() else {
        return Ok(None);
    };
    let fields = form
        .fields
        .iter()
        .filter_map(|field| match field.var.as_deref() {
            Some("FORM_TYPE") | None => None,
            Some(var) => Some(Field {
                var: var.into(),
                values: field.values.clone(),
            }),
        })
        .collect();
    Ok(Some(Form {
        form_type: form_type.into(),
        fields,
    }))
}

/// The XEP-0157 contact addresses form, or None when none are configured.
fn contact_form(config: &Config) -> Option<Form> {
    let fields: Vec<Field> = config
        .server
        .contact
        .iter()
        .filter(|(_, uris)| !uris.is_empty())
        .map(|(kind, uris)| Field {
            // The config only accepts the seven registered types (config::validate).
            var: format!("{kind}-addresses"),
            values: uris.clone(),
        })
        .collect();
    (!fields.is_empty()).then(|| Form {
        form_type: SERVERINFO.into(),
        fields,
    })
}

/// The server's disco#info: identity server/im, [`server_features`], contact form.
pub fn server_info(config: &Config) -> DiscoInfo {
    let mut features: Vec<String> = server_features(config)
        .into_iter()
        .map(String::from)
        .collect();
    // A feature listed twice would make every client reject our caps (XEP-0115 §5.4).
    features.sort();
    features.dedup();
    DiscoInfo {
        identities: vec![Identity {
            name: Some("Jaseur".into()),
            ..Identity::new("server", "im")
        }],
        features,
        forms: contact_form(config).into_iter().collect(),
    }
}

/// The server's caps verification string (SHA-1, XEP-0115 §5.1) and the
/// disco#info it was computed from.
pub fn server_caps(config: &Config) -> (String, DiscoInfo) {
    let info = server_info(config);
    (info.caps_ver(), info)
}

/// The XEP-0115 §6.3 stream feature `<c/>` advertising the server's caps.
pub fn caps_element(config: &Config) -> String {
    let (ver, _) = server_caps(config);
    format!(
        "<c xmlns='{}' hash='sha-1' node='{}' ver='{}'/>",
        ns::CAPS,
        crate::xmpp::escape(CAPS_NODE),
        crate::xmpp::escape(&ver)
    )
}

/// The disco#info of an account's bare JID (XEP-0030 §3.1: account/registered);
/// `owner` adds what only the owner uses.
pub fn account_info(config: &Config, owner: bool) -> DiscoInfo {
    let mut features = vec![ns::DISCO_INFO.to_owned()];
    if owner {
        features.push(ns::DISCO_ITEMS.to_owned());
        features.extend(
            super::enabled(config)
                .flat_map(|f| f.account_disco.iter())
                .map(|f| (*f).to_owned()),
        );
    }
    DiscoInfo {
        identities: vec![Identity::new("account", "registered")],
        features,
        forms: Vec::new(),
    }
}

/// disco#info on the server or an account.
pub async fn info(req: &IqRequest<'_>) -> IqResult {
    let node = req.payload.attr("node");
    if req.to.is_some() {
        // Accounts have no nodes (yet: PEP will add some).
        if node.is_some() {
            return Err(StanzaError::new(Condition::ItemNotFound));
        }
        // XEP-0030 §8: only the owner and those subscribed to the account's
        // presence may learn about it.
        let owner = req.from_owner();
        if let Some(user) = &req.to
            && !owner
            && !super::roster::is_subscribed(req.state, user, &req.from.to_bare()).await
        {
            return Err(StanzaError::new(Condition::ServiceUnavailable));
        }
        return Ok(Some(
            account_info(&req.state.config, owner).to_element(None),
        ));
    }
    let (ver, info) = server_caps(&req.state.config);
    match node {
        None => Ok(Some(info.to_element(None))),
        // XEP-0115 §6.2: our caps node#ver is answered with the same info.
        Some(n) if n.strip_prefix(CAPS_NODE).and_then(|r| r.strip_prefix('#')) == Some(&ver) => {
            Ok(Some(info.to_element(Some(n))))
        }
        Some(_) => Err(StanzaError::new(Condition::ItemNotFound)),
    }
}

/// One item of a disco#items result (XEP-0030 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub jid: String,
    pub node: Option<String>,
    pub name: Option<String>,
}

impl Item {
    fn to_element(&self) -> Element {
        let mut el = Element::bare("item", ns::DISCO_ITEMS);
        set_attr(&mut el, "jid", self.jid.as_str());
        if let Some(node) = &self.node {
            set_attr(&mut el, "node", node.as_str());
        }
        if let Some(name) = &self.name {
            set_attr(&mut el, "name", name.as_str());
        }
        el
    }
}

/// The services the server `domain` lists in disco#items: the directory
/// search (XEP-0055) where there is one; MUC and upload add theirs here.
pub fn server_items(state: &ServerState, domain: &str) -> Vec<Item> {
    let mut items = Vec::new();
    if let Some(jid) = state.config.muc_service(domain) {
        items.push(Item {
            jid,
            node: None,
            name: Some(crate::muc::NAME.to_owned()),
        });
    }
    if let Some(jid) = super::search::service_jid(state, domain) {
        items.push(Item {
            jid,
            node: None,
            name: Some(super::search::NAME.to_owned()),
        });
    }
    items
}

/// The ad-hoc commands (XEP-0050 §2.2) the server offers this requester:
/// none until the service administration module lists its own here.
fn command_items(req: &IqRequest<'_>) -> Vec<Item> {
    if !req.state.config.is_admin(req.from.to_bare().as_str()) {
        return Vec::new();
    }
    let domain = addressed_domain(req);
    super::announce::admin_commands()
        .iter()
        .map(|(node, name)| Item {
            jid: domain.clone(),
            node: Some((*node).to_owned()),
            name: Some((*name).to_owned()),
        })
        .collect()
}

/// disco#items on the server or an account.
pub async fn items(req: &IqRequest<'_>) -> IqResult {
    let node = req.payload.attr("node");
    let list = match (&req.to, node) {
        (None, None) => server_items(req.state, &addressed_domain(req)),
        (None, Some(ns::COMMANDS)) => command_items(req),
        // An account has no items yet: the owner's PEP nodes come later, and
        // XEP-0030 §8 forbids listing resources to others.
        (Some(_), None) => Vec::new(),
        (_, Some(_)) => return Err(StanzaError::new(Condition::ItemNotFound)),
    };
    let mut query = Element::bare("query", ns::DISCO_ITEMS);
    if let Some(node) = node {
        set_attr(&mut query, "node", node);
    }
    for item in &list {
        query.append_child(item.to_element());
    }
    Ok(Some(query))
}

/// The served domain a request to the server addressed: its `to`, or the
/// sender's own domain when a client left `to` out (RFC 6120 §10.3.3).
fn addressed_domain(req: &IqRequest<'_>) -> String {
    req.iq
        .attr("to")
        .and_then(|to| Jid::new(to).ok())
        .map(|to| to.domain().to_string())
        .unwrap_or_else(|| req.from.domain().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Element {
        xml.parse().expect("test XML is well-formed")
    }

    /// XEP-0115 §5.2.
    #[test]
    fn caps_simple_example() {
        let info = DiscoInfo {
            identities: vec![Identity {
                name: Some("Exodus 0.9.1".into()),
                ..Identity::new("client", "pc")
            }],
            features: [
                "http://jabber.org/protocol/disco#info",
                "http://jabber.org/protocol/disco#items",
                "http://jabber.org/protocol/muc",
                "http://jabber.org/protocol/caps",
            ]
            .map(String::from)
            .to_vec(),
            forms: Vec::new(),
        };
        assert_eq!(
            info.caps_string(),
            "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<\
             http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<\
             http://jabber.org/protocol/muc<"
        );
        assert_eq!(info.caps_ver(), "QgayPKawpkPSDYmwT/WM94uAlu0=");
    }

    /// XEP-0115 §5.3, parsed from the example's own XML.
    #[test]
    fn caps_complex_example() {
        let query = parse(
            "<query xmlns='http://jabber.org/protocol/disco#info' \
                    node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>\
               <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>\
               <identity xml:lang='el' category='client' name='\u{3a8} 0.11' type='pc'/>\
               <feature var='http://jabber.org/protocol/caps'/>\
               <feature var='http://jabber.org/protocol/disco#info'/>\
               <feature var='http://jabber.org/protocol/disco#items'/>\
               <feature var='http://jabber.org/protocol/muc'/>\
               <x xmlns='jabber:x:data' type='result'>\
                 <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>\
                 <field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field>\
                 <field var='os'><value>Mac</value></field>\
                 <field var='os_version'><value>10.5.1</value></field>\
                 <field var='software'><value>Psi</value></field>\
                 <field var='software_version'><value>0.11</value></field>\
               </x>\
             </query>",
        );
        let info = DiscoInfo::parse(&query).expect("well-formed");
        assert_eq!(
            info.caps_string(),
            "client/pc/el/\u{3a8} 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<\
             http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<\
             http://jabber.org/protocol/muc<urn:xmpp:dataforms:softwareinfo<\
             ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<software<Psi<software_version<0.11<"
        );
        assert_eq!(info.caps_ver(), "q07IKJEyjvHSyhy//CH0CxmKi8w=");
        // What we serialise hashes the same once read back.
        let again = DiscoInfo::parse(&info.to_element(None)).expect("round trip");
        assert_eq!(again.caps_ver(), "q07IKJEyjvHSyhy//CH0CxmKi8w=");
    }

    /// XEP-0115 §5.4: duplicates are ill-formed; a form without a hidden FORM_TYPE is ignored.
    #[test]
    fn caps_processing_rules() {
        let dup = parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
               <identity category='client' type='pc'/><feature var='a'/><feature var='a'/></query>",
        );
        assert_eq!(DiscoInfo::parse(&dup), Err(IllFormed::DuplicateFeature));
        let dup = parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
               <identity category='client' type='pc' name='x'/>\
               <identity category='client' type='pc' name='x'/></query>",
        );
        assert_eq!(DiscoInfo::parse(&dup), Err(IllFormed::DuplicateIdentity));
        let forms = parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
               <identity category='client' type='pc'/>\
               <x xmlns='jabber:x:data' type='result'>\
                 <field var='FORM_TYPE'><value>urn:x</value></field></x>\
               <x xmlns='jabber:x:data' type='result'><field var='a'/></x></query>",
        );
        assert!(DiscoInfo::parse(&forms).expect("ok").forms.is_empty());
        let twice = parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
               <x xmlns='jabber:x:data' type='result'>\
                 <field var='FORM_TYPE' type='hidden'><value>urn:x</value></field></x>\
               <x xmlns='jabber:x:data' type='result'>\
                 <field var='FORM_TYPE' type='hidden'><value>urn:x</value></field></x></query>",
        );
        assert_eq!(DiscoInfo::parse(&twice), Err(IllFormed::DuplicateForm));
        let ambiguous = parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
               <x xmlns='jabber:x:data' type='result'>\
                 <field var='FORM_TYPE' type='hidden'><value>urn:x</value><value>urn:y</value></field>\
               </x></query>",
        );
        assert_eq!(DiscoInfo::parse(&ambiguous), Err(IllFormed::InvalidForm));
    }

    #[test]
    fn server_info_lists_identity_features_and_contacts() {
        let mut config = Config::default();
        let info = server_info(&config);
        assert_eq!(
            info.identities,
            vec![Identity {
                name: Some("Jaseur".into()),
                ..Identity::new("server", "im")
            }]
        );
        for f in [ns::DISCO_INFO, ns::VERSION, ns::LAST, "msgoffline"] {
            assert!(info.features.iter().any(|x| x == f), "{f}");
        }
        assert!(!info.features.iter().any(|x| x == ns::SASL_CB));
        assert!(info.forms.is_empty(), "no contacts configured, no form");

        config.server.software_version = false;
        config.server.contact.insert(
            "abuse".into(),
            vec![
                "mailto:abuse@example.org".into(),
                "xmpp:abuse@example.org".into(),
            ],
        );
        let info = server_info(&config);
        assert!(!info.features.iter().any(|x| x == ns::VERSION));
        let query = info.to_element(None);
        let x = query.get_child("x", ns::DATA_FORMS).expect("contact form");
        let vars: Vec<_> = x.children().filter_map(|f| f.attr("var")).collect();
        assert_eq!(vars, ["FORM_TYPE", "abuse-addresses"]);
        assert_eq!(
            x.children()
                .next()
                .and_then(|f| f.get_child("value", ns::DATA_FORMS))
                .map(Element::text)
                .as_deref(),
            Some(SERVERINFO)
        );
        // The hash covers the form, so clients see a change of contacts.
        assert_ne!(server_caps(&config).0, server_caps(&Config::default()).0);
        // What we send parses back to what we hashed.
        let back = DiscoInfo::parse(&info.to_element(None)).expect("well-formed");
        assert_eq!(back.caps_ver(), info.caps_ver());
    }

    #[test]
    fn caps_stream_feature() {
        let config = Config::default();
        let el: Element = caps_element(&config).parse().expect("well-formed");
        assert!(el.is("c", ns::CAPS));
        assert_eq!(el.attr("hash"), Some("sha-1"));
        assert_eq!(el.attr("node"), Some(CAPS_NODE));
        assert_eq!(el.attr("ver"), Some(server_caps(&config).0.as_str()));
    }

    #[test]
    fn account_info_for_owner_and_others() {
        let owner = account_info(&Config::default(), true);
        assert_eq!(
            owner.identities,
            vec![Identity::new("account", "registered")]
        );
        assert!(owner.features.iter().any(|f| f == ns::DISCO_ITEMS));
        let other = account_info(&Config::default(), false);
        assert_eq!(other.features, vec![ns::DISCO_INFO.to_owned()]);
    }
}
