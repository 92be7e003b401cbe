//! The features, listed here in one place: what each one answers and
//! advertises (`FEATURES`), and the ordered steps messages and presence go
//! through (`outbound`, `inbound`, `delivered`). The router and the sessions
//! call these; disco's feature list is derived from the declarations, so it
//! cannot drift from what is answered.
//!
//! Iq requests (RFC 6120 §8.2.3) must carry exactly one payload; a request
//! nobody handles gets `service-unavailable`.

pub mod announce;
pub mod blocking;
pub mod carbons;
pub mod disco;
pub mod last;
pub mod mam;
pub mod muc_admin;
pub mod offline;
pub mod ping;
pub mod presence;
pub mod private;
pub mod register;
pub mod roster;
pub mod search;
pub mod time;
pub mod vcard;
pub mod version;

use crate::config::Config;
use crate::router::sessions::{SessionFlag, SessionHandle, SessionId};
use crate::state::ServerState;
use crate::xmpp::error::{Condition, StanzaError};
use crate::xmpp::ns;
use crate::xmpp::stanza::Kind;
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use std::future::Future;
use std::pin::Pin;

/// What a handler answers: a result payload (or none), or an error.
pub type IqResult = Result<Option<Element>, StanzaError>;

/// One iq request, as every handler receives it.
pub struct IqRequest<'a> {
    pub state: &'a ServerState,
    /// The whole iq (for its attributes).
    pub iq: &'a Element,
    /// Its single payload element.
    pub payload: &'a Element,
    /// type='set' (else 'get').
    pub set: bool,
    /// The sender, as stamped by its session.
    pub from: Jid,
    /// The account addressed, or None for the server itself.
    pub to: Option<BareJid>,
}

impl IqRequest<'_> {
    /// Whether the sender addresses its own account (roster, vCard set, private storage...).
    pub fn from_owner(&self) -> bool {
        self.to
            .as_ref()
            .is_some_and(|to| self.from.to_bare() == *to)
    }

    /// The error for a request only the account's owner may make.
    pub fn owner_only(&self) -> Result<(), StanzaError> {
        if self.from_owner() {
            Ok(())
        } else {
            Err(StanzaError::new(Condition::Forbidden))
        }
    }
}

// ---------------------------------------------------------------------------
// What each feature declares.

/// Where an iq must be addressed for a handler to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A served domain itself.
    Server,
    /// An account's bare JID (or no `to`: the sender's own account).
    Account,
    /// Either.
    Any,
}

/// The iq types a handler answers (others get `service-unavailable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Methods {
    Get,
    Set,
    Both,
}

/// What a handler produces: its answer, or every stanza to send (a roster
/// set answers and pushes to the account's sessions).
pub enum IqOutcome {
    Reply(IqResult),
    Stanzas(Vec<Element>),
}

impl From<IqResult> for IqOutcome {
    fn from(r: IqResult) -> Self {
        IqOutcome::Reply(r)
    }
}

/// A handler's future.
pub type IqFuture<'a> = Pin<Box<dyn Future<Output = IqOutcome> + Send + 'a>>;
/// A handler.
pub type IqHandler = for<'a> fn(&'a IqRequest<'a>) -> IqFuture<'a>;

/// One payload a feature answers.
pub struct Iq {
    /// The payload's element name and namespace.
    pub name: &'static str,
    pub ns: &'static str,
    pub to: Target,
    pub methods: Methods,
    pub handler: IqHandler,
}

/// A feature: what it answers and advertises, and the per-session flags
/// it keeps (its pipeline steps are in `outbound`, `inbound`, `delivered`).
pub struct Feature {
    pub name: &'static str,
    /// Whether the configuration turns it on.
    pub enabled: fn(&Config) -> bool,
    /// Advertised in the server's disco#info (XEP-0030).
    pub server_disco: &'static [&'static str],
    /// Advertised in an account's disco#info, to its owner.
    pub account_disco: &'static [&'static str],
    pub iqs: &'static [Iq],
    pub flags: &'static [SessionFlag],
}

/// `fn NAME(req) -> IqFuture` running `CALL` (which may use `req`).
macro_rules! handler {
    (fn $name:ident($req:ident) => $call:expr) => {
        fn $name<'a>($req: &'a IqRequest<'a>) -> IqFuture<'a> {
            Box::pin(async move { IqOutcome::from($call) })
        }
    };
}

handler!(fn ping_iq(_req) => ping::handle());
handler!(fn disco_info_iq(req) => disco::info(req).await);
handler!(fn disco_items_iq(req) => disco::items(req).await);
handler!(fn last_iq(req) => last::handle(req).await);
handler!(fn version_iq(req) => version::handle(req).await);
handler!(fn time_iq(req) => time::handle(req).await);
handler!(fn register_iq(req) => register::handle(req).await);
handler!(fn register_account_iq(req) => match req.from_owner() {
    true => register::handle(req).await,
    false => Err(StanzaError::new(Condition::ServiceUnavailable)),
});
handler!(fn commands_iq(req) => announce::command(req).await);
handler!(fn vcard_iq(req) => vcard::handle(req).await);
handler!(fn private_iq(req) => private::handle(req).await);
handler!(fn blocking_iq(req) => blocking::handle(req).await);
handler!(fn carbons_iq(req) => carbons::handle(req).await);
handler!(fn mam_form_iq(req) => mam::form(req).await);
handler!(fn mam_metadata_iq(req) => mam::metadata(req).await);
handler!(fn mam_prefs_iq(req) => mam::prefs(req).await);
fn mam_query_iq<'a>(req: &'a IqRequest<'a>) -> IqFuture<'a> {
    Box::pin(async move {
        match mam::query(req).await {
            Ok(stanzas) => IqOutcome::Stanzas(stanzas),
            Err(e) => IqOutcome::Reply(Err(e)),
        }
    })
}

fn roster_iq<'a>(req: &'a IqRequest<'a>) -> IqFuture<'a> {
    Box::pin(async move {
        match roster::handle(req).await {
            Ok(stanzas) => IqOutcome::Stanzas(stanzas),
            Err(e) => IqOutcome::Reply(Err(e)),
        }
    })
}

const fn iq(
    name: &'static str,
    ns: &'static str,
    to: Target,
    methods: Methods,
    handler: IqHandler,
) -> Iq {
    Iq {
        name,
        ns,
        to,
        methods,
        handler,
    }
}

fn always(_: &Config) -> bool {
    true
}

/// Every feature, in the order disco lists their namespaces.
pub const FEATURES: &[Feature] = &[
    Feature {
        name: "disco (XEP-0030, XEP-0115)",
        enabled: always,
        // XEP-0115 §7: an entity that advertises caps (our stream feature) says so here.
        server_disco: &[ns::DISCO_INFO, ns::DISCO_ITEMS, ns::CAPS],
        account_disco: &[],
        iqs: &[
            iq(
                "query",
                ns::DISCO_INFO,
                Target::Any,
                Methods::Get,
                disco_info_iq,
            ),
            iq(
                "query",
                ns::DISCO_ITEMS,
                Target::Any,
                Methods::Get,
                disco_items_iq,
            ),
        ],
        flags: &[],
    },
    Feature {
        name: "time (XEP-0202)",
        enabled: always,
        server_disco: &[ns::TIME],
        account_disco: &[],
        iqs: &[iq("time", ns::TIME, Target::Server, Methods::Get, time_iq)],
        flags: &[],
    },
    Feature {
        name: "ping (XEP-0199)",
        enabled: always,
        server_disco: &[ns::PING],
        account_disco: &[],
        iqs: &[iq("ping", ns::PING, Target::Any, Methods::Get, ping_iq)],
        flags: &[],
    },
    Feature {
        name: "last activity (XEP-0012)",
        enabled: always,
        server_disco: &[ns::LAST],
        account_disco: &[],
        iqs: &[iq("query", ns::LAST, Target::Any, Methods::Get, last_iq)],
        flags: &[],
    },
    Feature {
        name: "registration (XEP-0077)",
        enabled: always,
        server_disco: &[ns::REGISTER],
        account_disco: &[],
        iqs: &[
            iq(
                "query",
                ns::REGISTER,
                Target::Server,
                Methods::Both,
                register_iq,
            ),
            iq(
                "query",
                ns::REGISTER,
                Target::Account,
                Methods::Both,
                register_account_iq,
            ),
        ],
        flags: &[],
    },
    Feature {
        name: "blocking (XEP-0191)",
        enabled: always,
        server_disco: &[ns::BLOCKING],
        account_disco: &[],
        iqs: &[
            iq(
                "blocklist",
                ns::BLOCKING,
                Target::Account,
                Methods::Both,
                blocking_iq,
            ),
            iq(
                "block",
                ns::BLOCKING,
                Target::Account,
                Methods::Both,
                blocking_iq,
            ),
            iq(
                "unblock",
                ns::BLOCKING,
                Target::Account,
                Methods::Both,
                blocking_iq,
            ),
        ],
        flags: &[blocking::REQUESTED],
    },
    Feature {
        name: "vcard-temp (XEP-0054)",
        enabled: always,
        server_disco: &[ns::VCARD],
        account_disco: &[],
        iqs: &[iq(
            "vCard",
            ns::VCARD,
            Target::Account,
            Methods::Both,
            vcard_iq,
        )],
        flags: &[],
    },
    Feature {
        name: "private storage (XEP-0049)",
        enabled: always,
        server_disco: &[ns::PRIVATE],
        account_disco: &[],
        iqs: &[iq(
            "query",
            ns::PRIVATE,
            Target::Account,
            Methods::Both,
            private_iq,
        )],
        flags: &[],
    },
    Feature {
        name: "ad-hoc commands (XEP-0050, XEP-0133)",
        enabled: always,
        server_disco: &[ns::COMMANDS],
        account_disco: &[],
        iqs: &[iq(
            "command",
            ns::COMMANDS,
            Target::Server,
            Methods::Both,
            commands_iq,
        )],
        flags: &[],
    },
    Feature {
        name: "offline messages (XEP-0160)",
        enabled: always,
        // Advertised with this historical name.
        server_disco: &["msgoffline"],
        account_disco: &[],
        iqs: &[],
        flags: &[],
    },
    Feature {
        name: "message carbons (XEP-0280)",
        enabled: always,
        server_disco: &[carbons::NS, carbons::RULES],
        account_disco: &[],
        iqs: &[
            iq("enable", carbons::NS, Target::Any, Methods::Set, carbons_iq),
            iq(
                "disable",
                carbons::NS,
                Target::Any,
                Methods::Set,
                carbons_iq,
            ),
        ],
        flags: &[carbons::ENABLED],
    },
    Feature {
        name: "message archives (XEP-0313, XEP-0359, XEP-0441)",
        enabled: |c| c.archive.enabled,
        server_disco: &[],
        account_disco: &[mam::NS, mam::NS_EXTENDED, mam::NS_SID],
        iqs: &[
            iq("query", mam::NS, Target::Account, Methods::Get, mam_form_iq),
            iq(
                "query",
                mam::NS,
                Target::Account,
                Methods::Set,
                mam_query_iq,
            ),
            iq(
                "metadata",
                mam::NS,
                Target::Account,
                Methods::Get,
                mam_metadata_iq,
            ),
            iq(
                "prefs",
                mam::NS,
                Target::Account,
                Methods::Both,
                mam_prefs_iq,
            ),
        ],
        flags: &[],
    },
    Feature {
        name: "roster (RFC 6121)",
        enabled: always,
        server_disco: &[],
        account_disco: &[],
        iqs: &[iq(
            "query",
            ns::ROSTER,
            Target::Account,
            Methods::Both,
            roster_iq,
        )],
        flags: &[roster::REQUESTED],
    },
    Feature {
        name: "software version (XEP-0092)",
        enabled: |c| c.server.software_version,
        server_disco: &[ns::VERSION],
        account_disco: &[],
        iqs: &[iq(
            "query",
            ns::VERSION,
            Target::Server,
            Methods::Get,
            version_iq,
        )],
        flags: &[],
    },
];

/// The features the configuration turns on.
pub fn enabled(config: &Config) -> impl Iterator<Item = &'static Feature> + '_ {
    FEATURES.iter().filter(|f| (f.enabled)(config))
}

/// The handler for a payload, if an enabled feature answers it.
fn find(
    config: &Config,
    name: &str,
    namespace: &str,
    account: bool,
    set: bool,
) -> Option<IqHandler> {
    enabled(config)
        .flat_map(|f| f.iqs.iter())
        .find(|i| {
            i.name == name
                && i.ns == namespace
                && match i.to {
                    Target::Any => true,
                    Target::Server => !account,
                    Target::Account => account,
                }
                && match i.methods {
                    Methods::Both => true,
                    Methods::Get => !set,
                    Methods::Set => set,
                }
        })
        .map(|i| i.handler)
}

// ---------------------------------------------------------------------------
// Iq dispatch.

/// What to send for an iq addressed to the server's own domain, in order
/// (nothing for results and errors addressed to us).
pub async fn handle_server_iq(state: &ServerState, iq: &Element) -> Vec<Element> {
    handle(state, iq, None).await
}

/// The reply to an iq addressed to an account's bare JID, answered by the
/// server on the account's behalf (RFC 6120 §10.5.3.1).
pub async fn handle_account_iq(state: &ServerState, to: &BareJid, iq: &Element) -> Vec<Element> {
    handle(state, iq, Some(to.clone())).await
}

async fn handle(state: &ServerState, iq: &Element, to: Option<BareJid>) -> Vec<Element> {
    let (kind, payload) = match request(iq) {
        Ok(Some(p)) => p,
        Ok(None) => return Vec::new(),
        Err(e) => return vec![e.reply_to(iq)],
    };
    let Some(from) = iq.attr("from").and_then(|f| Jid::new(f).ok()) else {
        return vec![StanzaError::new(Condition::BadRequest).reply_to(iq)];
    };
    let req = IqRequest {
        state,
        iq,
        payload,
        set: kind == "set",
        from,
        to,
    };
    let namespace = payload.ns();
    let handler = find(
        &state.config,
        payload.name(),
        &namespace,
        req.to.is_some(),
        req.set,
    );
    let outcome = match handler {
        Some(h) => h(&req).await,
        None => IqOutcome::Reply(Err(StanzaError::new(Condition::ServiceUnavailable))),
    };
    match outcome {
        IqOutcome::Reply(answer) => vec![reply(iq, answer)],
        IqOutcome::Stanzas(stanzas) => stanzas,
    }
}

// ---------------------------------------------------------------------------
// The pipeline for messages and presence. The order of the steps is written
// here and nowhere else.

/// What a step decides about a stanza.
#[derive(Debug)]
pub enum Flow {
    /// Go on (to the next step, then routing or delivery).
    Continue,
    /// Dealt with or dropped: nothing more happens to it.
    Handled,
    /// Refused: the sender gets this error reply instead.
    Refused(Element),
}

/// Copies a step asks to deliver straight to sessions (carbons): the
/// server's own stanzas, which take no further step.
pub type Copies = Vec<(SessionHandle, Element)>;

/// A stanza a local session sends (its `from` stamped, RFC 6120 §8.1.2.1),
/// before it is routed.
pub async fn outbound(
    state: &ServerState,
    from: &FullJid,
    el: &Element,
    copies: &mut Copies,
) -> Flow {
    // XEP-0191: nothing goes to those the sender blocks.
    if el.attr("to").is_some() {
        let verdict = blocking::outbound(state, &from.to_bare(), el).await;
        match blocking_flow(verdict, el) {
            Flow::Continue => {}
            flow => return flow,
        }
    }
    if Kind::of(el) == Some(Kind::Message) {
        // XEP-0280: the sender's other resources see what it sent.
        copies.extend(carbons::sent(state, from, el));
        // XEP-0313: in the sender's archive before it goes on.
        if let Err(e) = mam::sent(state, from, el).await {
            return Flow::Refused(e.reply_to(el));
        }
    }
    Flow::Continue
}

/// A stanza for a local account (its bare JID or one of its resources),
/// before delivery.
pub async fn inbound(state: &ServerState, to: &BareJid, el: &mut Element) -> Flow {
    // XEP-0191: the recipient may block the sender.
    let verdict = blocking::inbound(state, to, el).await;
    match blocking_flow(verdict, el) {
        Flow::Continue => {}
        flow => return flow,
    }
    // XEP-0313: in the recipient's archive, stamped with its id, before delivery.
    if let Err(e) = mam::received(state, to, el).await {
        return Flow::Refused(e.reply_to(el));
    }
    Flow::Continue
}

/// `inbound` for a stanza shared by many recipients (a room's groupchat
/// messages and presence, `router::route_shared`), which no step changes:
/// only blocking applies to them.
pub async fn inbound_shared(state: &ServerState, to: &BareJid, el: &Element) -> Flow {
    let verdict = blocking::inbound(state, to, el).await;
    blocking_flow(verdict, el)
}

/// A message for local account `to` after delivery: `delivered` are the
/// sessions that took it (none: it was stored offline, or dropped).
pub fn delivered(
    state: &ServerState,
    to: &BareJid,
    el: &Element,
    delivered: &[SessionId],
) -> Copies {
    // XEP-0280: the account's other resources see what it received.
    carbons::received(state, to, el, delivered)
    // XEP-0357 push notifications for accounts without a live session come here.
}

/// A blocking verdict as a step's decision.
fn blocking_flow(verdict: blocking::Verdict, el: &Element) -> Flow {
    use blocking::Verdict;
    let answerable = !matches!(el.attr("type"), Some("error") | Some("result"));
    match verdict {
        Verdict::Allow => Flow::Continue,
        Verdict::Drop => Flow::Handled,
        Verdict::Reject(e) if answerable => Flow::Refused(e.reply_to(el)),
        Verdict::Blocked if answerable => Flow::Refused(blocking::blocked_error(el)),
        Verdict::Reject(_) | Verdict::Blocked => Flow::Handled,
    }
}

/// Split a request into its type and single payload; Ok(None) for results and errors.
fn request(iq: &Element) -> Result<Option<(&'static str, &Element)>, StanzaError> {
    let kind = match iq.attr("type") {
        Some("get") => "get",
        Some("set") => "set",
        Some("result") | Some("error") => return Ok(None),
        _ => return Err(StanzaError::new(Condition::BadRequest).with_text("bad iq type")),
    };
    if iq.attr("id").is_none() {
        return Err(StanzaError::new(Condition::BadRequest).with_text("iq without id"));
    }
    let mut children = iq.children();
    match (children.next(), children.next()) {
        (Some(payload), None) => Ok(Some((kind, payload))),
        _ => Err(StanzaError::new(Condition::BadRequest)
            .with_text("an iq request carries exactly one payload")),
    }
}

fn reply(iq: &Element, answer: IqResult) -> Element {
    match answer {
        Ok(payload) => crate::xmpp::stanza::iq_result(iq, payload),
        Err(e) => e.reply_to(iq),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_flags_are_distinct() {
        let mut seen = 0u8;
        for f in FEATURES {
            for flag in f.flags {
                assert_eq!(seen & flag.bits(), 0, "{} reuses a flag", f.name);
                seen |= flag.bits();
            }
        }
    }

    #[test]
    fn each_payload_has_one_handler_per_target_and_method() {
        let config = Config::default();
        for f in FEATURES {
            for i in f.iqs {
                for (account, set) in [(false, false), (false, true), (true, false), (true, true)] {
                    let matching = enabled(&config)
                        .flat_map(|g| g.iqs.iter())
                        .filter(|j| {
                            j.name == i.name
                                && j.ns == i.ns
                                && (j.to == Target::Any || (j.to == Target::Account) == account)
                                && (j.methods == Methods::Both
                                    || (j.methods == Methods::Set) == set)
                        })
                        .count();
                    assert!(matching <= 1, "{} {} answered twice", i.name, i.ns);
                }
            }
        }
    }
}
