//! XML namespaces used across the server.

pub const CLIENT: &str = "jabber:client";
pub const STREAMS: &str = "http://etherx.jabber.org/streams";
pub const STREAMS_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
pub const SASL_CB: &str = "urn:xmpp:sasl-cb:0";
pub const PING: &str = "urn:xmpp:ping";
pub const DELAY: &str = "urn:xmpp:delay";
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub const LAST: &str = "jabber:iq:last";
pub const VERSION: &str = "jabber:iq:version";
pub const TIME: &str = "urn:xmpp:time";
pub const REGISTER: &str = "jabber:iq:register";
pub const COMMANDS: &str = "http://jabber.org/protocol/commands";
pub const ROSTER: &str = "jabber:iq:roster";
pub const VCARD: &str = "vcard-temp";
pub const PRIVATE: &str = "jabber:iq:private";
pub const BLOCKING: &str = "urn:xmpp:blocking";
pub const BLOCKING_ERRORS: &str = "urn:xmpp:blocking:errors";
pub const CAPS: &str = "http://jabber.org/protocol/caps";
pub const DATA_FORMS: &str = "jabber:x:data";
pub const IDLE: &str = "urn:xmpp:idle:1";
pub const SERVER: &str = "jabber:server";
pub const REGISTER_FEATURE: &str = "http://jabber.org/features/iq-register";
pub const ADMIN: &str = "http://jabber.org/protocol/admin";
/// XEP-0297: Stanza Forwarding.
pub const FORWARD: &str = "urn:xmpp:forward:0";
/// XEP-0334: Message Processing Hints.
pub const HINTS: &str = "urn:xmpp:hints";
/// XEP-0359: Unique and Stable Stanza IDs.
pub const SID: &str = "urn:xmpp:sid:0";
