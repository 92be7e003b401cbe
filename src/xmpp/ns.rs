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
