//! XEP-0055: Jabber Search, answered from the LDAP directory, with XEP-0004
//! data forms, as a service at `search.DOMAIN`.
//!
//! Each served domain whose directory has `search = true` gets a component
//! `search.DOMAIN`, listed in the domain's disco#items, so that Gajim's and
//! Pidgin's "search for contacts" finds colleagues by login, name, email or
//! department. Only the domain's own users may search it: a directory is
//! the university's, not the federation's.
//!
//! Every search costs the directory a query, so each is bounded: terms of
//! `search_min_length` characters at least (a one-letter substring would
//! match half the university), AND of the terms, `search_max_results`
//! results, `search_per_minute` searches per user, and a few searches at a
//! time per domain so that logins (which share the LDAP pool) never wait
//! behind them. User input only ever becomes an escaped filter value
//! (`Directory::search`); attribute names come from this file or the config.

use super::vcard::directory_text;
use crate::auth::ldap::{Directory, DirectoryError, Entry};
use crate::config::LdapConfig;
use crate::state::ServerState;
use crate::xmpp::error::{Condition, ErrorType, StanzaError};
use crate::xmpp::forms::{self, DataForm, DataFormType, FieldType};
use crate::xmpp::ns;
use crate::xmpp::stanza::{self, Kind, set_attr};
use jid::{BareJid, Jid};
use minidom::Element;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// The jabber:iq:search namespace (and FORM_TYPE).
pub const NS: &str = "jabber:iq:search";

/// The name the service has in disco (clients show it in their service lists).
pub const NAME: &str = "Annuaire / Directory";

/// Stanzas waiting for the service loop; beyond this the router answers
/// `resource-constraint` for us.
const QUEUE: usize = 64;

/// Longest accepted search term: a longer one is no one's name.
const MAX_TERM: usize = 128;

/// Users remembered by the rate limiter; past this the service answers
/// "busy" rather than remembering more.
const MAX_TRACKED: usize = 10_000;

/// The rate limiter's window.
const WINDOW: Duration = Duration::from_secs(60);

/// The search service's JID for a served `domain`, when it has one.
pub fn service_jid(state: &ServerState, domain: &str) -> Option<String> {
    let dir = state.directories.get(domain)?;
    (dir.config().search && state.config.serves(domain)).then(|| format!("search.{domain}"))
}

/// Register and run the search service of every domain that has one, owned
/// by `tasks`; each stops when the server shuts down.
pub fn start(state: &Arc<ServerState>, tasks: &TaskTracker) {
    for (domain, dir) in state.directories.iter() {
        let Some(jid) = service_jid(state, domain) else {
            continue;
        };
        if state.config.serves(&jid) {
            tracing::warn!(service = %jid, "a served domain has the search service's name: no directory search there");
            continue;
        }
        let rx = state.components.register(&jid, QUEUE);
        // Half the pool at most: logins share it and must not queue behind searches.
        let permits = (dir.config().pool_size / 2).clamp(1, 4);
        let name = jid.clone();
        let service = Arc::new(Service {
            domain: domain.clone(),
            jid,
            tasks: tasks.clone(),
            dir: dir.clone(),
            permits: Arc::new(Semaphore::new(permits)),
            rate: Mutex::new(RateLimiter::new(dir.config().search_per_minute)),
            failing: AtomicBool::new(false),
        });
        crate::supervise::spawn(tasks, &name, serve(state.clone(), service, rx));
    }
}

/// One domain's search service.
struct Service {
    /// The served domain whose users may search.
    domain: String,
    /// `search.DOMAIN`
    jid: String,
    /// The server's tracker, which also owns each search's task.
    tasks: TaskTracker,
    dir: Arc<Directory>,
    /// Searches running at once.
    permits: Arc<Semaphore>,
    rate: Mutex<RateLimiter>,
    /// Whether the last search failed, so that an outage is logged once.
    failing: AtomicBool,
}

async fn serve(
    state: Arc<ServerState>,
    service: Arc<Service>,
    mut rx: mpsc::Receiver<Box<Element>>,
) {
    loop {
        let stanza = tokio::select! {
            _ = state.stopping.cancelled() => break,
            got = rx.recv() => match got {
                Some(s) => *s,
                None => break,
            },
        };
        // Kept for the log line: the stanza itself goes to the request.
        let (from, to) = (
            stanza.attr("from").unwrap_or_default().to_owned(),
            stanza.attr("to").unwrap_or_default().to_owned(),
        );
        let request = async {
            if let Some(reply) = dispatch(&state, &service, stanza) {
                crate::router::route(&state, reply).await;
            }
        };
        // A panic on one request (a bug some client's input reached) drops
        // that request only: the service holds no state a request changes
        // halfway but the rate limiter, whose lock shrugs off poisoning.
        if crate::supervise::CatchUnwind(std::pin::pin!(request))
            .await
            .is_err()
        {
            tracing::error!(%from, %to, "a request made the search service panic: dropped, the service goes on");
        }
    }
}

/// Answer what needs no directory at once; start a task for a search.
fn dispatch(state: &Arc<ServerState>, service: &Arc<Service>, stanza: Element) -> Option<Element> {
    match Kind::of(&stanza)? {
        Kind::Iq => {}
        // Nothing to say to presence; a message gets the usual error, but
        // an error never gets one (RFC 6120 §8.3.1).
        Kind::Presence => return None,
        Kind::Message if stanza.attr("type") == Some("error") => return None,
        Kind::Message => {
            return Some(StanzaError::new(Condition::ServiceUnavailable).reply_to(&stanza));
        }
    }
    let set = match stanza.attr("type") {
        Some("get") => false,
        Some("set") => true,
        Some("result" | "error") => return None,
        _ => return Some(StanzaError::new(Condition::BadRequest).reply_to(&stanza)),
    };
    let answer = match request(service, &stanza, set) {
        Ok(Step::Done(payload)) => Ok(payload),
        Ok(Step::Search(user, query)) => return start_search(state, service, stanza, user, query),
        Err(e) => Err(e),
    };
    Some(match answer {
        Ok(payload) => stanza::iq_result(&stanza, payload),
        Err(e) => e.reply_to(&stanza),
    })
}

/// What a request needs.
enum Step {
    /// Answered: this payload (or none).
    Done(Option<Element>),
    /// A directory search by this user.
    Search(BareJid, Query),
}

fn request(service: &Service, iq: &Element, set: bool) -> Result<Step, StanzaError> {
    if iq.attr("id").is_none() {
        return Err(StanzaError::new(Condition::BadRequest).with_text("iq without id"));
    }
    let mut children = iq.children();
    let payload = match (children.next(), children.next()) {
        (Some(p), None) => p,
        _ => {
            return Err(StanzaError::new(Condition::BadRequest)
                .with_text("an iq request carries exactly one payload"));
        }
    };
    // Only the service itself answers; there is nobody at user@search.DOMAIN.
    let to = iq.attr("to").and_then(|t| Jid::new(t).ok());
    if to
        .as_ref()
        .is_none_or(|t| t.node().is_some() || t.resource().is_some())
    {
        return Err(StanzaError::new(Condition::ServiceUnavailable));
    }
    match (set, payload.name(), payload.ns().as_str()) {
        (false, "query", ns::DISCO_INFO) => {
            if payload.attr("node").is_some() {
                return Err(StanzaError::new(Condition::ItemNotFound));
            }
            Ok(Step::Done(Some(disco_info())))
        }
        (false, "query", ns::DISCO_ITEMS) => {
            if payload.attr("node").is_some() {
                return Err(StanzaError::new(Condition::ItemNotFound));
            }
            Ok(Step::Done(Some(Element::bare("query", ns::DISCO_ITEMS))))
        }
        (false, "ping", ns::PING) => Ok(Step::Done(None)),
        (_, "query", NS) => {
            let user = service.allowed(iq)?;
            if set {
                let limits = Limits::of(service.dir.config());
                Query::parse(payload, &limits).map(|q| Step::Search(user, q))
            } else {
                Ok(Step::Done(Some(search_form())))
            }
        }
        _ => Err(StanzaError::new(Condition::ServiceUnavailable)),
    }
}

impl Service {
    /// Only the domain's own users search its directory.
    fn allowed(&self, iq: &Element) -> Result<BareJid, StanzaError> {
        let from = iq.attr("from").and_then(|f| Jid::new(f).ok());
        match from {
            Some(from) if from.node().is_some() && from.domain().as_str() == self.domain => {
                Ok(from.to_bare())
            }
            _ => Err(StanzaError::new(Condition::Forbidden).with_text(format!(
                "only users of {} may search its directory",
                self.domain
            ))),
        }
    }

    /// Log an outage once, and its end once.
    fn outcome<T>(&self, result: &Result<T, DirectoryError>) {
        match result {
            Ok(_) => {
                if self.failing.swap(false, Ordering::AcqRel) {
                    tracing::info!(service = %self.jid, "directory search works again");
                }
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::AcqRel) {
                    tracing::warn!(service = %self.jid, error = %e, "directory search failed (logged once until it works again)");
                } else {
                    tracing::debug!(service = %self.jid, error = %e, "directory search failed");
                }
            }
        }
    }
}

/// Check the limits and run the search in its own task (a slow directory
/// must not hold up the service loop); None: the task will answer.
fn start_search(
    state: &Arc<ServerState>,
    service: &Arc<Service>,
    iq: Element,
    user: BareJid,
    query: Query,
) -> Option<Element> {
    let Ok(permit) = service.permits.clone().try_acquire_owned() else {
        return Some(
            StanzaError::new(Condition::ResourceConstraint)
                .with_text("too many searches at once, try again in a moment")
                .reply_to(&iq),
        );
    };
    let verdict = {
        let mut rate = service.rate.lock().unwrap_or_else(|p| p.into_inner());
        rate.admit(&user.to_string(), Instant::now())
    };
    if let Err(text) = verdict {
        return Some(
            StanzaError::new(Condition::ResourceConstraint)
                .with_text(text)
                .reply_to(&iq),
        );
    }
    let state = state.clone();
    let service = service.clone();
    let tasks = service.tasks.clone();
    // Owned by the server's tracker and in the service's span (its log
    // lines, a panic's included, name the service); it ends with the
    // server, and its permit bounds how many run.
    let search = async move {
        let _permit = permit;
        let shutdown = state.stopping.clone();
        tokio::select! {
            _ = shutdown.cancelled() => {}
            reply = run_search(&service, &iq, &query) => crate::router::route(&state, reply).await,
        }
    };
    tasks.spawn(search.in_current_span());
    None
}

async fn run_search(service: &Service, iq: &Element, query: &Query) -> Element {
    let config = service.dir.config();
    let terms = query.ldap_terms(config);
    let found = service.dir.search(&terms, config.search_max_results).await;
    service.outcome(&found);
    match found {
        Ok(entries) => {
            let people: Vec<Person> = entries
                .iter()
                .take(config.search_max_results)
                .filter_map(|e| Person::of(e, &service.domain, config))
                .collect();
            let payload = if query.form {
                form_result(&people)
            } else {
                legacy_result(&people)
            };
            stanza::iq_result(iq, Some(payload))
        }
        Err(_) => unavailable().reply_to(iq),
    }
}

/// The error while the directory does not answer: worth retrying later.
fn unavailable() -> StanzaError {
    StanzaError {
        kind: ErrorType::Wait,
        ..StanzaError::new(Condition::InternalServerError).with_text("the directory is unavailable")
    }
}

/// The service's disco#info (XEP-0030, XEP-0055 §2).
fn disco_info() -> Element {
    let info = super::disco::DiscoInfo {
        identities: vec![super::disco::Identity {
            name: Some(NAME.into()),
            ..super::disco::Identity::new("directory", "user")
        }],
        features: [
            ns::DISCO_INFO,
            ns::DISCO_ITEMS,
            NS,
            ns::DATA_FORMS,
            ns::PING,
        ]
        .map(String::from)
        .to_vec(),
        forms: Vec::new(),
    };
    info.to_element(None)
}

/// The search fields, of the form and of the legacy protocol: (var, label).
const FORM_FIELDS: [(&str, &str); 4] = [
    ("user", "Login"),
    ("fn", "Name"),
    ("email", "Email"),
    ("ou", "Department / service"),
];

/// The columns of a result form: (var, label, type).
const REPORTED: [(&str, &str, FieldType); 5] = [
    ("jid", "Jabber ID", FieldType::JidSingle),
    ("fn", "Name", FieldType::TextSingle),
    ("email", "Email", FieldType::TextSingle),
    ("ou", "Department / service", FieldType::TextSingle),
    ("title", "Title", FieldType::TextSingle),
];

const INSTRUCTIONS: &str =
    "Fill in one or more fields to search the directory; every field given must match.";

/// The answer to a get: instructions, the legacy fields and a form.
fn search_form() -> Element {
    let mut query = Element::bare("query", NS);
    query.append_child(text_element("instructions", NS, INSTRUCTIONS));
    for name in ["first", "last", "nick", "email"] {
        query.append_child(Element::bare(name, NS));
    }
    let fields = FORM_FIELDS
        .iter()
        .map(|(var, label)| forms::field(var, FieldType::TextSingle, label))
        .collect();
    let mut form = DataForm::new(DataFormType::Form, NS, fields);
    form.title = Some("Directory search".into());
    form.instructions = Some(INSTRUCTIONS.into());
    query.append_child(forms::to_element(form));
    query
}

fn text_element(name: &str, namespace: &str, text: &str) -> Element {
    let mut el = Element::bare(name, namespace);
    el.append_text(directory_text(text));
    el
}

/// What bounds a search request's terms.
struct Limits {
    min: usize,
}

impl Limits {
    fn of(config: &LdapConfig) -> Limits {
        Limits {
            min: config.search_min_length.max(1),
        }
    }
}

/// Which directory attribute a search field looks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// The login (`uid_attribute`).
    Login,
    Name,
    Given,
    Family,
    Email,
    Department,
}

impl Field {
    /// The attribute searched: the one the vCard map shows for this field
    /// (so a directory with, say, `department` instead of `ou` works for
    /// both), except names, searched in `cn`, which every person entry has
    /// (RFC 4519) and which directories index for substrings.
    fn attribute(self, config: &LdapConfig) -> &str {
        match self {
            Field::Login => &config.uid_attribute,
            Field::Name => "cn",
            Field::Given => mapped(config, "given", "givenName"),
            Field::Family => mapped(config, "family", "sn"),
            Field::Email => mapped(config, "email", "mail"),
            Field::Department => mapped(config, "orgunit", "ou"),
        }
    }

    fn of_form(var: &str) -> Option<Field> {
        Some(match var {
            "user" => Field::Login,
            "fn" => Field::Name,
            "email" => Field::Email,
            "ou" => Field::Department,
            // The XEP-0055 registered names, for clients that fill them in.
            "first" => Field::Given,
            "last" => Field::Family,
            "nick" => Field::Login,
            _ => return None,
        })
    }

    fn of_legacy(name: &str) -> Option<Field> {
        Some(match name {
            "first" => Field::Given,
            "last" => Field::Family,
            "nick" => Field::Login,
            "email" => Field::Email,
            _ => return None,
        })
    }
}

/// A validated search request.
#[derive(Debug, PartialEq, Eq)]
struct Query {
    /// Asked with a data form (answer with one), else legacy fields.
    form: bool,
    terms: Vec<(Field, String)>,
}

impl Query {
    /// Read a `<query xmlns='jabber:iq:search'/>` set: the form's fields, or
    /// the legacy ones.
    fn parse(payload: &Element, limits: &Limits) -> Result<Query, StanzaError> {
        let mut terms = Vec::new();
        let form = payload.get_child("x", ns::DATA_FORMS);
        if let Some(x) = form {
            let submitted = DataForm::try_from(x.clone())
                .ok()
                .filter(|f| f.type_ == DataFormType::Submit)
                .ok_or_else(|| {
                    StanzaError::new(Condition::BadRequest).with_text("submit the search form")
                })?;
            for f in &submitted.fields {
                let Some(field) = f.var.as_deref().and_then(Field::of_form) else {
                    continue;
                };
                for v in &f.values {
                    push_term(&mut terms, field, v, limits)?;
                }
            }
        } else {
            for c in payload.children().filter(|c| c.ns() == NS) {
                if let Some(field) = Field::of_legacy(c.name()) {
                    push_term(&mut terms, field, &c.text(), limits)?;
                }
            }
        }
        if terms.is_empty() {
            return Err(
                StanzaError::new(Condition::BadRequest).with_text("fill in at least one field")
            );
        }
        Ok(Query {
            form: form.is_some(),
            terms,
        })
    }

    /// The `(attribute, substring)` pairs for `Directory::search`.
    fn ldap_terms(&self, config: &LdapConfig) -> Vec<(String, String)> {
        self.terms
            .iter()
            .map(|(f, v)| (f.attribute(config).to_owned(), v.clone()))
            .collect()
    }
}

/// The attribute the vCard map gives `field`, else `default`. Attribute
/// names go into filters unescaped (RFC 4515 has no escape for them), so a
/// mapped name that is not one (RFC 4512 §1.4: a descriptor or an OID, with
/// options) is not used.
fn mapped<'a>(config: &'a LdapConfig, field: &str, default: &'a str) -> &'a str {
    match config.vcard.get(field) {
        Some(a)
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ';')) =>
        {
            a
        }
        _ => default,
    }
}

fn push_term(
    terms: &mut Vec<(Field, String)>,
    field: Field,
    value: &str,
    limits: &Limits,
) -> Result<(), StanzaError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(());
    }
    let len = value.chars().count();
    if len < limits.min {
        return Err(
            StanzaError::new(Condition::NotAcceptable).with_text(format!(
                "each search term needs at least {} characters",
                limits.min
            )),
        );
    }
    if len > MAX_TERM {
        return Err(StanzaError::new(Condition::NotAcceptable)
            .with_text(format!("a search term has at most {MAX_TERM} characters")));
    }
    // Four fields, each once: more terms than that is not a real search.
    if terms.len() >= 8 {
        return Err(StanzaError::new(Condition::NotAcceptable).with_text("too many search terms"));
    }
    terms.push((field, value.to_owned()));
    Ok(())
}

/// One search result, as both answers show it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Person {
    jid: String,
    login: String,
    name: Option<String>,
    given: Option<String>,
    family: Option<String>,
    email: Option<String>,
    department: Option<String>,
    title: Option<String>,
}

impl Person {
    /// None for an entry whose login is no valid localpart.
    /// The attributes shown are those of the vCard map, as the person's
    /// vCard shows them.
    fn of(e: &Entry, domain: &str, config: &LdapConfig) -> Option<Person> {
        let login = e.uid.trim().to_lowercase();
        let jid = BareJid::new(&format!("{login}@{domain}")).ok()?;
        let text = |a: &str| e.first(a).map(directory_text).filter(|v| !v.is_empty());
        let field = |f: &str, default: &str| text(mapped(config, f, default));
        Some(Person {
            jid: jid.to_string(),
            login,
            name: field("fn", "displayName").or_else(|| text("cn")),
            given: field("given", "givenName"),
            family: field("family", "sn"),
            email: field("email", "mail"),
            department: field("orgunit", "ou"),
            title: field("title", "title"),
        })
    }
}

fn form_result(people: &[Person]) -> Element {
    let columns = REPORTED
        .into_iter()
        .map(|(var, label, kind)| forms::field(var, kind, label))
        .collect();
    let rows = people
        .iter()
        .map(|p| {
            // XEP-0004 §3.4: every item has every reported field.
            [
                ("jid", Some(&p.jid)),
                ("fn", p.name.as_ref()),
                ("email", p.email.as_ref()),
                ("ou", p.department.as_ref()),
                ("title", p.title.as_ref()),
            ]
            .into_iter()
            .map(|(var, value)| forms::Field::text_single(var, value.map_or("", String::as_str)))
            .collect()
        })
        .collect();
    let form = DataForm::new(DataFormType::Result_, NS, Vec::new());
    let mut query = Element::bare("query", NS);
    query.append_child(forms::with_table(form, columns, rows));
    query
}

fn legacy_result(people: &[Person]) -> Element {
    let mut query = Element::bare("query", NS);
    for p in people {
        let mut item = Element::bare("item", NS);
        set_attr(&mut item, "jid", p.jid.as_str());
        for (name, value) in [
            ("first", p.given.as_ref()),
            ("last", p.family.as_ref()),
            ("nick", Some(&p.login)),
            ("email", p.email.as_ref()),
        ] {
            item.append_child(text_element(name, NS, value.map_or("", String::as_str)));
        }
        query.append_child(item);
    }
    query
}

/// Searches per user in a fixed one-minute window, in bounded memory.
struct RateLimiter {
    per_minute: u32,
    seen: HashMap<String, (Instant, u32)>,
}

impl RateLimiter {
    fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute,
            seen: HashMap::new(),
        }
    }

    /// Count a search by `user` at `now`; Err: the text to refuse it with.
    fn admit(&mut self, user: &str, now: Instant) -> Result<(), String> {
        if !self.seen.contains_key(user) && self.seen.len() >= MAX_TRACKED {
            self.seen
                .retain(|_, (since, _)| now.duration_since(*since) < WINDOW);
            if self.seen.len() >= MAX_TRACKED {
                return Err("the directory is busy, try again in a minute".into());
            }
        }
        let (since, count) = self.seen.entry(user.to_owned()).or_insert((now, 0));
        if now.duration_since(*since) >= WINDOW {
            *since = now;
            *count = 0;
        }
        if *count >= self.per_minute {
            return Err(format!(
                "at most {} searches a minute, try again in a moment",
                self.per_minute
            ));
        }
        *count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Element {
        xml.parse().expect("test XML is well-formed")
    }

    fn limits() -> Limits {
        Limits { min: 2 }
    }

    /// XEP-0055 Example 3, the legacy request.
    #[test]
    fn legacy_request() {
        let q = parse("<query xmlns='jabber:iq:search'><last>Capulet</last></query>");
        let query = Query::parse(&q, &limits()).expect("valid");
        assert!(!query.form);
        assert_eq!(query.terms, vec![(Field::Family, "Capulet".to_owned())]);
        assert_eq!(
            query.ldap_terms(&LdapConfig::default()),
            vec![("sn".to_owned(), "Capulet".to_owned())]
        );
    }

    /// XEP-0055 Example 8's shape, with this service's fields; unknown and
    /// empty fields are ignored, values trimmed.
    #[test]
    fn form_request() {
        let q = parse(
            "<query xmlns='jabber:iq:search'><x xmlns='jabber:x:data' type='submit'>\
               <field type='hidden' var='FORM_TYPE'><value>jabber:iq:search</value></field>\
               <field var='x-gender'><value>male</value></field>\
               <field var='user'><value>  jean </value></field>\
               <field var='fn'><value/></field>\
               <field var='ou'><value>Informatique</value></field>\
             </x></query>",
        );
        let query = Query::parse(&q, &limits()).expect("valid");
        assert!(query.form);
        let mut config = LdapConfig {
            uid_attribute: "login".into(),
            ..LdapConfig::default()
        };
        assert_eq!(
            query.ldap_terms(&config),
            vec![
                ("login".to_owned(), "jean".to_owned()),
                ("ou".to_owned(), "Informatique".to_owned())
            ]
        );
        // The department is where the vCard map says, if that is an attribute name.
        config.vcard.insert("orgunit".into(), "department".into());
        assert_eq!(query.ldap_terms(&config)[1].0, "department");
        config.vcard.insert("orgunit".into(), "ou)(uid=*".into());
        assert_eq!(query.ldap_terms(&config)[1].0, "ou");
    }

    #[test]
    fn short_missing_and_unsubmitted_terms_are_refused() {
        let short = parse("<query xmlns='jabber:iq:search'><nick>j</nick></query>");
        let e = Query::parse(&short, &limits()).expect_err("too short");
        assert_eq!(e.condition, Condition::NotAcceptable);
        assert!(e.text.as_deref().unwrap_or("").contains("2 characters"));
        // Counted in characters, not bytes.
        let accented = parse("<query xmlns='jabber:iq:search'><last>Éé</last></query>");
        assert!(Query::parse(&accented, &limits()).is_ok());
        let none = parse("<query xmlns='jabber:iq:search'><first>  </first></query>");
        let e = Query::parse(&none, &limits()).expect_err("nothing to search");
        assert_eq!(e.condition, Condition::BadRequest);
        let form =
            parse("<query xmlns='jabber:iq:search'><x xmlns='jabber:x:data' type='form'/></query>");
        assert_eq!(
            Query::parse(&form, &limits())
                .expect_err("not submitted")
                .condition,
            Condition::BadRequest
        );
        let long = format!(
            "<query xmlns='jabber:iq:search'><last>{}</last></query>",
            "a".repeat(200)
        );
        assert_eq!(
            Query::parse(&parse(&long), &limits())
                .expect_err("too long")
                .condition,
            Condition::NotAcceptable
        );
    }

    #[test]
    fn form_offers_legacy_fields_and_a_data_form() {
        let q = search_form();
        for name in ["instructions", "first", "last", "nick", "email"] {
            assert!(q.get_child(name, NS).is_some(), "{name}");
        }
        let x = q.get_child("x", ns::DATA_FORMS).expect("form");
        assert_eq!(x.attr("type"), Some("form"));
        let vars: Vec<_> = x.children().filter_map(|f| f.attr("var")).collect();
        assert_eq!(vars, ["FORM_TYPE", "user", "fn", "email", "ou"]);
    }

    fn person(jid: &str) -> Person {
        Person {
            jid: jid.into(),
            login: jid.split('@').next().unwrap_or_default().into(),
            name: Some("Jean Dupont".into()),
            given: Some("Jean".into()),
            family: Some("Dupont".into()),
            email: None,
            department: Some("Informatique".into()),
            title: Some("Ingénieur systèmes".into()),
        }
    }

    /// XEP-0055 Example 9's shape: FORM_TYPE, reported, then complete items.
    #[test]
    fn form_result_has_every_reported_field_per_item() {
        let q = form_result(&[person("jean.dupont@univ-lille.fr")]);
        let x = q.get_child("x", ns::DATA_FORMS).expect("form");
        assert_eq!(x.attr("type"), Some("result"));
        let reported = x.get_child("reported", ns::DATA_FORMS).expect("reported");
        let columns: Vec<_> = reported.children().filter_map(|f| f.attr("var")).collect();
        let item = x.get_child("item", ns::DATA_FORMS).expect("item");
        let cells: Vec<_> = item.children().filter_map(|f| f.attr("var")).collect();
        assert_eq!(columns, cells);
        let xml = stanza::to_string(&q).expect("serialises");
        assert!(
            xml.contains("<value>jean.dupont@univ-lille.fr</value>"),
            "{xml}"
        );
        assert!(xml.contains("Ingénieur systèmes"), "{xml}");
    }

    /// XEP-0055 Example 4's shape.
    #[test]
    fn legacy_result_items() {
        let q = legacy_result(&[person("jean.dupont@univ-lille.fr")]);
        let item = q.get_child("item", NS).expect("item");
        assert_eq!(item.attr("jid"), Some("jean.dupont@univ-lille.fr"));
        assert_eq!(
            item.get_child("first", NS).map(Element::text).as_deref(),
            Some("Jean")
        );
        assert_eq!(
            item.get_child("nick", NS).map(Element::text).as_deref(),
            Some("jean.dupont")
        );
        assert_eq!(
            item.get_child("email", NS).map(Element::text).as_deref(),
            Some("")
        );
        assert!(
            legacy_result(&[]).children().next().is_none(),
            "no match: empty query"
        );
    }

    #[test]
    fn rate_limit_per_user_and_window() {
        let mut r = RateLimiter::new(2);
        let t0 = Instant::now();
        assert!(r.admit("a@x", t0).is_ok());
        assert!(r.admit("a@x", t0).is_ok());
        assert!(r.admit("a@x", t0).is_err(), "third in the minute");
        assert!(r.admit("b@x", t0).is_ok(), "per user");
        assert!(r.admit("a@x", t0 + WINDOW).is_ok(), "a new window");
    }

    #[test]
    fn rate_limiter_memory_is_bounded() {
        let mut r = RateLimiter::new(5);
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED {
            assert!(r.admit(&format!("u{i}@x"), t0).is_ok());
        }
        assert!(r.admit("late@x", t0).is_err(), "full within the window");
        assert!(r.admit("u1@x", t0).is_ok(), "known users still counted");
        assert!(r.admit("late@x", t0 + WINDOW).is_ok(), "expired ones swept");
        assert!(r.seen.len() <= MAX_TRACKED);
    }
}
