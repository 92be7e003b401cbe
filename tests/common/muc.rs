//! Helpers for the multi-user chat tests (XEP-0045 and companions): joining,
//! creating and configuring rooms, and picking apart what the room sends,
//! with the raw test client. Stanzas are matched by parsing them (attribute
//! order and quoting are the server's choice).

use super::Server;
use super::client::{self, Client, WAIT, attr, next};
use minidom::Element;
use std::time::Duration;

pub const SERVICE: &str = "conference.localhost";
pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub const NS_USER: &str = "http://jabber.org/protocol/muc#user";
pub const NS_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
pub const NS_OWNER: &str = "http://jabber.org/protocol/muc#owner";
pub const NS_DATA: &str = "jabber:x:data";
pub const NS_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const NS_DELAY: &str = "urn:xmpp:delay";
pub const NS_OCCUPANT_ID: &str = "urn:xmpp:occupant-id:0";
pub const NS_SID: &str = "urn:xmpp:sid:0";
pub const CLIENT_NS: &str = "jabber:client";

/// `name@conference.localhost` (a name with an `@` is taken as is).
pub fn room(name: &str) -> String {
    if name.contains('@') {
        name.to_owned()
    } else {
        format!("{name}@{SERVICE}")
    }
}

/// The occupant JID `room/nick`.
pub fn occ(name: &str, nick: &str) -> String {
    format!("{}/{nick}", room(name))
}

/// Create `user@localhost` with password "pw", log in as resource "res" and
/// send initial presence, as real clients do before joining rooms.
pub async fn user(server: &Server, name: &str) -> Client {
    server.add_user(&format!("{name}@localhost"), "pw");
    online(server, name, "res").await
}

/// Log an existing `name@localhost` in as `resource`, with initial presence.
pub async fn online(server: &Server, name: &str, resource: &str) -> Client {
    let mut c = client::login(server, &format!("{name}@localhost"), "pw", resource).await;
    c.send("<presence/>").await;
    c
}

/// The first stanza satisfying `pred`; the stanzas before it stay in the
/// buffer, in order, for later waits. Panics after `WAIT`.
pub async fn wait_for(c: &mut Client, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut skipped = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next(c, left).await {
            Ok(s) if pred(&s) => {
                c.buf.insert_str(0, &skipped.join(""));
                return s;
            }
            Ok(s) => skipped.push(s),
            Err(e) => panic!("waiting for {what}: {e}\nskipped: {skipped:#?}"),
        }
    }
}

/// The reply with id `id`, keeping the other stanzas for later.
pub async fn reply(c: &mut Client, id: &str) -> String {
    wait_for(c, id, |s| {
        attr(s, "id").as_deref() == Some(id)
            && (s.starts_with("<iq") || attr(s, "type").as_deref() == Some("error"))
    })
    .await
}

/// Send `body` with `ID` replaced by `id`, and return the reply (other
/// stanzas stay in the buffer).
pub async fn iq(c: &mut Client, id: &str, body: &str) -> String {
    c.send(&body.replace("ID", id)).await;
    reply(c, id).await
}

/// Parse a normalised stanza (it inherits the stream's jabber:client namespace).
pub fn parse(s: &str) -> Element {
    let wrapped: Element = format!("<w xmlns='{CLIENT_NS}'>{s}</w>")
        .parse()
        .unwrap_or_else(|e| panic!("cannot parse {s:?}: {e}"));
    wrapped.children().next().cloned().expect("one element")
}

/// The first descendant (or self) named `name` in namespace `ns`.
pub fn find<'a>(el: &'a Element, name: &str, ns: &str) -> Option<&'a Element> {
    if el.is(name, ns) {
        return Some(el);
    }
    el.children().find_map(|c| find(c, name, ns))
}

/// All descendants (or self) named `name` in namespace `ns`.
pub fn find_all<'a>(el: &'a Element, name: &str, ns: &str, out: &mut Vec<&'a Element>) {
    if el.is(name, ns) {
        out.push(el);
    }
    for c in el.children() {
        find_all(c, name, ns, out);
    }
}

/// The muc#user `<x/>` of a stanza.
pub fn user_x(s: &str) -> Option<Element> {
    parse(s).children().find(|c| c.is("x", NS_USER)).cloned()
}

/// Status codes in the muc#user `<x/>`.
pub fn statuses(s: &str) -> Vec<u32> {
    user_x(s)
        .map(|x| {
            x.children()
                .filter(|c| c.is("status", NS_USER))
                .filter_map(|c| c.attr("code").and_then(|v| v.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn has_status(s: &str, code: u32) -> bool {
    statuses(s).contains(&code)
}

/// An attribute of the (first) `<item/>` of the muc#user `<x/>`.
pub fn item_attr(s: &str, name: &str) -> Option<String> {
    let x = user_x(s)?;
    let item = x.children().find(|c| c.is("item", NS_USER))?;
    item.attr(name).map(str::to_owned)
}

/// The error's type and defined condition, for a stanza of type error.
pub fn error_of(s: &str) -> Option<(String, String)> {
    let el = parse(s);
    if el.attr("type") != Some("error") {
        return None;
    }
    let e = el.children().find(|c| c.name() == "error")?;
    let cond = e
        .children()
        .find(|c| c.ns() == NS_STANZAS && c.name() != "text")?
        .name()
        .to_owned();
    Some((e.attr("type").unwrap_or_default().to_owned(), cond))
}

/// Assert that `s` is an error with `condition` (and `etype` unless empty).
#[track_caller]
pub fn assert_error(s: &str, condition: &str, etype: &str) {
    match error_of(s) {
        Some((t, c)) => {
            assert_eq!(c, condition, "wrong error condition: {s}");
            if !etype.is_empty() {
                assert_eq!(t, etype, "wrong error type: {s}");
            }
        }
        None => panic!("expected a {condition} error, got {s}"),
    }
}

#[track_caller]
pub fn assert_result(s: &str) {
    assert_eq!(
        attr(s, "type").as_deref(),
        Some("result"),
        "expected a result: {s}"
    );
}

pub fn is_presence(s: &str) -> bool {
    s.starts_with("<presence")
}

pub fn is_message(s: &str) -> bool {
    s.starts_with("<message")
}

pub fn from_is(s: &str, from: &str) -> bool {
    attr(s, "from").as_deref() == Some(from)
}

/// The `<body/>` text of a message.
pub fn body(s: &str) -> Option<String> {
    if !is_message(s) {
        return None;
    }
    parse(s)
        .children()
        .find(|c| c.name() == "body")
        .map(Element::text)
}

/// The subject of a subject message (a `<subject/>` and no `<body/>`).
pub fn subject(s: &str) -> Option<String> {
    if !is_message(s) {
        return None;
    }
    let el = parse(s);
    if el.children().any(|c| c.name() == "body") {
        return None;
    }
    el.children()
        .find(|c| c.name() == "subject")
        .map(Element::text)
}

/// An attribute of the first descendant `name` in `ns` of the stanza.
pub fn child_attr(s: &str, name: &str, ns: &str, a: &str) -> Option<String> {
    let el = parse(s);
    find(&el, name, ns).and_then(|c| c.attr(a).map(str::to_owned))
}

/// The values of the data form field `var` in the first `jabber:x:data` form of `s`.
pub fn form_values(s: &str, var: &str) -> Option<Vec<String>> {
    let el = parse(s);
    let form = find(&el, "x", NS_DATA)?;
    let field = form
        .children()
        .find(|f| f.name() == "field" && f.attr("var") == Some(var))?;
    Some(
        field
            .children()
            .filter(|v| v.name() == "value")
            .map(Element::text)
            .collect(),
    )
}

/// The single value of form field `var`.
pub fn form_value(s: &str, var: &str) -> Option<String> {
    form_values(s, var).map(|v| v.into_iter().next().unwrap_or_default())
}

/// The vars of all fields of the first form in `s`.
pub fn form_vars(s: &str) -> Vec<String> {
    let el = parse(s);
    find(&el, "x", NS_DATA)
        .map(|form| {
            form.children()
                .filter(|f| f.name() == "field")
                .filter_map(|f| f.attr("var").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a data-form boolean value is true.
pub fn truthy(v: &str) -> bool {
    v == "1" || v == "true"
}

/// What a successful join brought.
#[derive(Debug, Clone)]
pub struct Joined {
    /// Presences of the other occupants, received before the self-presence.
    pub presences: Vec<String>,
    /// The self-presence (status 110).
    pub own: String,
    /// Messages between the self-presence and the subject (the history).
    pub history: Vec<String>,
    /// The subject message (None when none came within a few seconds).
    pub subject: Option<String>,
}

impl Joined {
    /// The other occupants' presence from `nick`, if any.
    pub fn presence_of(&self, room_name: &str, nick: &str) -> Option<&String> {
        let from = occ(room_name, nick);
        self.presences.iter().find(|p| from_is(p, &from))
    }
}

/// Send a join presence to `room/nick` with `inner` inside the muc `<x/>`.
pub async fn send_join(c: &mut Client, room_name: &str, nick: &str, inner: &str) {
    let to = occ(room_name, nick);
    let x = if inner.is_empty() {
        format!("<x xmlns='{NS_MUC}'/>")
    } else {
        format!("<x xmlns='{NS_MUC}'>{inner}</x>")
    };
    c.send(&format!(
        "<presence id='join-{nick}' to='{to}'>{x}</presence>"
    ))
    .await;
}

/// Read what the room sends after a join request up to the self-presence
/// (or an error presence from the room, returned as Err).
pub async fn read_join(
    c: &mut Client,
    room_name: &str,
    nick: &str,
) -> Result<(Vec<String>, String), String> {
    let own_from = occ(room_name, nick);
    let bare = room(room_name);
    let mut presences = Vec::new();
    let mut skipped = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let s = next(c, left).await.unwrap_or_else(|e| {
            panic!("joining {own_from}: no self-presence: {e}\npresences: {presences:#?}\nskipped: {skipped:#?}")
        });
        if !is_presence(&s) {
            skipped.push(s);
            continue;
        }
        let from = attr(&s, "from").unwrap_or_default();
        if attr(&s, "type").as_deref() == Some("error") && (from == own_from || from == bare) {
            return Err(s);
        }
        if from == own_from && has_status(&s, 110) {
            c.buf.insert_str(0, &skipped.join(""));
            return Ok((presences, s));
        }
        if from.starts_with(&format!("{bare}/")) {
            presences.push(s);
        } else {
            skipped.push(s);
        }
    }
}

/// Read messages up to the subject message (history first), waiting `wait` for it.
pub async fn read_history(
    c: &mut Client,
    room_name: &str,
    wait: Duration,
) -> (Vec<String>, Option<String>) {
    let bare = room(room_name);
    let mut history = Vec::new();
    let mut skipped = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(s) = next(c, left).await else {
            eprintln!("no subject message from {bare} within {wait:?} (XEP-0045 §7.2.15)");
            c.buf.insert_str(0, &skipped.join(""));
            return (history, None);
        };
        let from = attr(&s, "from").unwrap_or_default();
        let in_room = from == bare || from.starts_with(&format!("{bare}/"));
        if is_message(&s) && in_room && attr(&s, "type").as_deref() == Some("groupchat") {
            if subject(&s).is_some() {
                c.buf.insert_str(0, &skipped.join(""));
                return (history, Some(s));
            }
            history.push(s);
        } else {
            skipped.push(s);
        }
    }
}

/// Join with `inner` in the muc `<x/>`; Err is the error presence.
pub async fn try_join_with(
    c: &mut Client,
    room_name: &str,
    nick: &str,
    inner: &str,
) -> Result<Joined, String> {
    send_join(c, room_name, nick, inner).await;
    let (presences, own) = read_join(c, room_name, nick).await?;
    let (history, subject) = read_history(c, room_name, Duration::from_secs(5)).await;
    Ok(Joined {
        presences,
        own,
        history,
        subject,
    })
}

/// Join an existing room; Err is the error presence.
pub async fn try_join(c: &mut Client, room_name: &str, nick: &str) -> Result<Joined, String> {
    try_join_with(c, room_name, nick, "").await
}

/// Join an existing room (panics on an error).
pub async fn join(c: &mut Client, room_name: &str, nick: &str) -> Joined {
    try_join(c, room_name, nick)
        .await
        .unwrap_or_else(|e| panic!("joining {}: {e}", occ(room_name, nick)))
}

/// Join with `inner` in the muc `<x/>` (panics on an error).
pub async fn join_with(c: &mut Client, room_name: &str, nick: &str, inner: &str) -> Joined {
    try_join_with(c, room_name, nick, inner)
        .await
        .unwrap_or_else(|e| panic!("joining {}: {e}", occ(room_name, nick)))
}

/// Join with a password.
pub async fn join_pw(
    c: &mut Client,
    room_name: &str,
    nick: &str,
    pw: &str,
) -> Result<Joined, String> {
    try_join_with(c, room_name, nick, &format!("<password>{pw}</password>")).await
}

/// Ask for a new room (§10.1.1): the self-presence, which must carry 110 and 201.
/// The room stays locked.
pub async fn create_locked(c: &mut Client, room_name: &str, nick: &str) -> String {
    send_join(c, room_name, nick, "").await;
    let (_, own) = read_join(c, room_name, nick)
        .await
        .unwrap_or_else(|e| panic!("creating {}: {e}", room(room_name)));
    assert!(
        has_status(&own, 201),
        "new room: status 201 expected: {own}"
    );
    own
}

/// Create an instant room (§10.1.2); returns the creator's self-presence.
pub async fn create_instant(c: &mut Client, room_name: &str, nick: &str) -> String {
    let own = create_locked(c, room_name, nick).await;
    let r = iq(
        c,
        &format!("inst-{nick}"),
        &format!(
            "<iq type='set' id='ID' to='{}'><query xmlns='{NS_OWNER}'>\
             <x xmlns='{NS_DATA}' type='submit'/></query></iq>",
            room(room_name)
        ),
    )
    .await;
    assert_result(&r);
    own
}

/// The owner's configuration form (muc#owner get): the iq reply.
pub async fn get_config(c: &mut Client, room_name: &str) -> String {
    iq(
        c,
        "cfg-get",
        &format!(
            "<iq type='get' id='ID' to='{}'><query xmlns='{NS_OWNER}'/></iq>",
            room(room_name)
        ),
    )
    .await
}

/// A submitted muc#roomconfig form with `fields` (repeated vars become
/// several values of one field).
pub fn config_form(fields: &[(&str, &str)]) -> String {
    let mut out = format!(
        "<x xmlns='{NS_DATA}' type='submit'><field var='FORM_TYPE'>\
         <value>http://jabber.org/protocol/muc#roomconfig</value></field>"
    );
    let mut i = 0;
    while i < fields.len() {
        let var = fields[i].0;
        out.push_str(&format!("<field var='{var}'>"));
        while i < fields.len() && fields[i].0 == var {
            out.push_str(&format!("<value>{}</value>", fields[i].1));
            i += 1;
        }
        out.push_str("</field>");
    }
    out.push_str("</x>");
    out
}

/// Submit a configuration (after fetching the form, as clients do); the reply.
pub async fn try_configure(c: &mut Client, room_name: &str, fields: &[(&str, &str)]) -> String {
    let form = get_config(c, room_name).await;
    assert_result(&form);
    iq(
        c,
        "cfg-set",
        &format!(
            "<iq type='set' id='ID' to='{}'><query xmlns='{NS_OWNER}'>{}</query></iq>",
            room(room_name),
            config_form(fields)
        ),
    )
    .await
}

/// Submit a configuration that must be accepted.
pub async fn configure(c: &mut Client, room_name: &str, fields: &[(&str, &str)]) {
    let r = try_configure(c, room_name, fields).await;
    assert_result(&r);
}

/// Create a reserved room (§10.1.3) configured with `fields`; returns the
/// creator's self-presence.
pub async fn create_room(
    c: &mut Client,
    room_name: &str,
    nick: &str,
    fields: &[(&str, &str)],
) -> String {
    let own = create_locked(c, room_name, nick).await;
    configure(c, room_name, fields).await;
    own
}

/// Send a groupchat message with id `id`.
pub async fn send_groupchat(c: &mut Client, room_name: &str, id: &str, text: &str) {
    c.send(&format!(
        "<message type='groupchat' id='{id}' to='{}'><body>{text}</body></message>",
        room(room_name)
    ))
    .await;
}

/// Wait for the groupchat message from `room/nick` with body `text`.
pub async fn wait_groupchat(c: &mut Client, room_name: &str, nick: &str, text: &str) -> String {
    let from = occ(room_name, nick);
    wait_for(c, &format!("groupchat {text:?} from {from}"), |s| {
        is_message(s)
            && from_is(s, &from)
            && attr(s, "type").as_deref() == Some("groupchat")
            && body(s).as_deref() == Some(text)
    })
    .await
}

/// Wait for a presence from `from` satisfying `pred`.
pub async fn wait_presence(c: &mut Client, from: &str, pred: impl Fn(&str) -> bool) -> String {
    wait_for(c, &format!("presence from {from}"), |s| {
        is_presence(s) && from_is(s, from) && pred(s)
    })
    .await
}

/// Wait for an unavailable presence from `from`.
pub async fn wait_unavailable(c: &mut Client, from: &str) -> String {
    wait_presence(c, from, |s| {
        attr(s, "type").as_deref() == Some("unavailable")
    })
    .await
}

/// Leave a room; returns the self unavailable presence.
pub async fn leave(c: &mut Client, room_name: &str, nick: &str) -> String {
    let from = occ(room_name, nick);
    c.send(&format!("<presence type='unavailable' to='{from}'/>"))
        .await;
    wait_presence(c, &from, |s| {
        attr(s, "type").as_deref() == Some("unavailable")
    })
    .await
}

/// A muc#admin set with `items`; the reply.
pub async fn admin_set(c: &mut Client, id: &str, room_name: &str, items: &str) -> String {
    iq(
        c,
        id,
        &format!(
            "<iq type='set' id='ID' to='{}'><query xmlns='{NS_ADMIN}'>{items}</query></iq>",
            room(room_name)
        ),
    )
    .await
}

/// A muc#admin get for `filter` (such as `affiliation='member'`); the reply.
pub async fn admin_get(c: &mut Client, id: &str, room_name: &str, filter: &str) -> String {
    iq(
        c,
        id,
        &format!(
            "<iq type='get' id='ID' to='{}'><query xmlns='{NS_ADMIN}'><item {filter}/></query></iq>",
            room(room_name)
        ),
    )
    .await
}

/// The bare JIDs of the items of a muc#admin list.
pub fn list_jids(s: &str) -> Vec<String> {
    let el = parse(s);
    let mut items = Vec::new();
    find_all(&el, "item", NS_ADMIN, &mut items);
    let mut out: Vec<String> = items
        .iter()
        .filter_map(|i| i.attr("jid").map(str::to_owned))
        .collect();
    out.sort();
    out
}

/// Set `jid`'s affiliation; the reply.
pub async fn set_affiliation(
    c: &mut Client,
    room_name: &str,
    jid: &str,
    affiliation: &str,
) -> String {
    admin_set(
        c,
        &format!("aff-{affiliation}"),
        room_name,
        &format!("<item affiliation='{affiliation}' jid='{jid}'/>"),
    )
    .await
}

/// Set the role of occupant `nick`; the reply.
pub async fn set_role(c: &mut Client, room_name: &str, nick: &str, role: &str) -> String {
    admin_set(
        c,
        &format!("role-{role}"),
        room_name,
        &format!("<item nick='{nick}' role='{role}'/>"),
    )
    .await
}

/// disco#info on `to`; the reply.
pub async fn disco_info(c: &mut Client, id: &str, to: &str) -> String {
    iq(
        c,
        id,
        &format!("<iq type='get' id='ID' to='{to}'><query xmlns='{NS_INFO}'/></iq>"),
    )
    .await
}

/// The features of a disco#info reply.
pub fn features(s: &str) -> Vec<String> {
    let el = parse(s);
    let mut f = Vec::new();
    find_all(&el, "feature", NS_INFO, &mut f);
    f.iter()
        .filter_map(|e| e.attr("var").map(str::to_owned))
        .collect()
}

/// Everything received before the answer to a disco#info sent to the
/// service: the service handles stanzas in order, so what it sent this
/// client before answering has arrived.
pub async fn sync(c: &mut Client) -> Vec<String> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let id = format!(
        "sync{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    c.send(&format!(
        "<iq type='get' id='{id}' to='{SERVICE}'><query xmlns='{NS_INFO}'/></iq>"
    ))
    .await;
    let mut seen = Vec::new();
    loop {
        let s = next(c, WAIT)
            .await
            .unwrap_or_else(|e| panic!("no answer to {id}: {e}\nseen: {seen:#?}"));
        if attr(&s, "id").as_deref() == Some(id.as_str()) {
            return seen;
        }
        seen.push(s);
    }
}
