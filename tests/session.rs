//! Sessions once bound: resource binding (RFC 6120 §7), iq semantics (§8.2.3),
//! addressing and `from` stamping (§8.1.2, §10), delivery to bare and full
//! JIDs (RFC 6121 §8), offline storage (XEP-0160), slow consumers and
//! shutdown. Every test talks to the real binary over TLS.

mod common;
use common::client::norm;

use common::client::{self, Client, WAIT};
use common::{Server, client::HEADER};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STREAM_NS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
const STANZA_NS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// The end of the first complete top-level element in `buf` (we are inside
/// the stream, at depth 1), or of a closing `</stream:stream>`. Good enough
/// for the server's own output, which escapes `<` and `>` in text.
fn element_end(buf: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut pos = 0;
    while let Some(lt) = buf[pos..].find('<').map(|p| pos + p) {
        let gt = lt + buf[lt..].find('>')?;
        let tag = &buf[lt..=gt];
        pos = gt + 1;
        if tag.starts_with("<?") || tag.starts_with("<!") {
            continue;
        }
        if tag.starts_with("</") {
            if depth <= 1 {
                return Some(pos);
            }
            depth -= 1;
        } else if tag.ends_with("/>") {
            if depth == 0 {
                return Some(pos);
            }
        } else {
            depth += 1;
        }
    }
    None
}

/// Every complete top-level element in `text`, normalised.
fn split_stanzas(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(end) = element_end(rest) {
        out.push(norm(rest[..end].trim()));
        rest = &rest[end..];
    }
    out
}

/// The value of attribute `name` on the start tag of `stanza` (normalised).
fn attr(stanza: &str, name: &str) -> Option<String> {
    let head = &stanza[..stanza.find('>').unwrap_or(stanza.len())];
    let needle = format!(" {name}='");
    let start = head.find(&needle)? + needle.len();
    let len = head[start..].find('\'')?;
    Some(head[start..start + len].to_owned())
}

/// The next top-level element from the server, normalised.
async fn next_stanza(c: &mut Client, wait: Duration) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(end) = element_end(&c.buf) {
            let s = norm(c.buf[..end].trim());
            c.buf.drain(..end);
            return Ok(s);
        }
        let mut chunk = [0u8; 16384];
        match tokio::time::timeout_at(deadline, c.io.read(&mut chunk)).await {
            Err(_) => return Err(format!("timed out; partial: {:?}", c.buf)),
            Ok(Ok(0)) => return Err(format!("connection closed; partial: {:?}", c.buf)),
            Ok(Ok(n)) => c.buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
            Ok(Err(e)) => return Err(format!("read error {e}; partial: {:?}", c.buf)),
        }
    }
}

/// Skip stanzas until one satisfies `pred`; panics after `WAIT`, listing what came.
async fn wait_stanza(c: &mut Client, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut skipped = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_stanza(c, left).await {
            Ok(s) if pred(&s) => return s,
            Ok(s) => skipped.push(s),
            Err(e) => panic!("waiting for {what}: {e}\nskipped: {skipped:#?}"),
        }
    }
}

/// The stanza with this id.
async fn reply_to(c: &mut Client, id: &str) -> String {
    wait_stanza(c, &format!("id={id}"), |s| {
        attr(s, "id").as_deref() == Some(id)
    })
    .await
}

/// Everything received up to the stanza with id `marker` (excluded).
async fn until_marker(c: &mut Client, marker: &str) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_stanza(c, left).await {
            Ok(s) if attr(&s, "id").as_deref() == Some(marker) => return seen,
            Ok(s) => seen.push(s),
            Err(e) => panic!("waiting for marker {marker}: {e}\nseen: {seen:#?}"),
        }
    }
}

/// XEP-0199 ping; returns the answer.
async fn ping(c: &mut Client, to: Option<&str>, id: &str) -> String {
    let to = to.map(|t| format!(" to='{t}'")).unwrap_or_default();
    c.send(&format!(
        "<iq type='get' id='{id}'{to}><ping xmlns='urn:xmpp:ping'/></iq>"
    ))
    .await;
    reply_to(c, id).await
}

/// Ping and insist on a result.
async fn ping_ok(c: &mut Client, id: &str) {
    let r = ping(c, Some("localhost"), id).await;
    assert_eq!(attr(&r, "type").as_deref(), Some("result"), "{r}");
}

/// Available presence with a priority, processed by the server once this returns
/// (the session handles its elements in order, so the ping answer comes after).
async fn available(c: &mut Client, priority: Option<i8>, id: &str) {
    let p = priority
        .map(|p| format!("<presence><priority>{p}</priority></presence>"))
        .unwrap_or_else(|| "<presence/>".to_owned());
    c.send(&p).await;
    ping_ok(c, id).await;
}

fn is_message_with_id(s: &str, id: &str) -> bool {
    s.starts_with("<message") && attr(s, "id").as_deref() == Some(id)
}

fn error_condition(s: &str, condition: &str) -> bool {
    attr(s, "type").as_deref() == Some("error")
        && s.contains(&format!("<{condition} xmlns='{STANZA_NS}'/>"))
}

/// STARTTLS and PLAIN, stopping before the stream restart.
async fn authenticated(server: &Server, user: &str, pw: &str) -> Client {
    let mut c = client::starttls(server).await;
    let outcome = c.auth_plain(user, pw).await;
    assert!(outcome.contains("<success"), "{outcome}");
    c
}

/// Restart the stream, read the features, send a bind request; returns (features, answer).
async fn raw_bind(c: &mut Client, resource: Option<&str>) -> (String, String) {
    c.send(HEADER).await;
    let features = norm(&c.expect("</stream:features>").await);
    let res = resource
        .map(|r| format!("<resource>{r}</resource>"))
        .unwrap_or_default();
    c.send(&format!(
        "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>{res}</bind></iq>"
    ))
    .await;
    let answer = reply_to(c, "bind1").await;
    (features, answer)
}

fn two_users() -> Server {
    let server = Server::start();
    server.add_user("alice@localhost", "apw");
    server.add_user("bob@localhost", "bpw");
    server
}

// ---------------------------------------------------------------- binding

#[tokio::test]
async fn bind_with_requested_resource() {
    let server = two_users();
    let mut c = authenticated(&server, "alice", "apw").await;
    let (_, answer) = raw_bind(&mut c, Some("laptop")).await;
    assert_eq!(attr(&answer, "type").as_deref(), Some("result"), "{answer}");
    assert!(
        answer.contains("<jid>alice@localhost/laptop</jid>"),
        "{answer}"
    );
    ping_ok(&mut c, "p1").await;
}

#[tokio::test]
async fn bind_without_resource_generates_distinct_ones() {
    let server = two_users();
    let mut jids = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut c = authenticated(&server, "alice", "apw").await;
        let jid = c.bind(None).await;
        let resource = jid
            .strip_prefix("alice@localhost/")
            .unwrap_or_else(|| panic!("bound JID {jid} is not alice's full JID"));
        assert!(!resource.is_empty(), "{jid}");
        jids.push(jid.clone());
        clients.push(c);
    }
    assert_ne!(jids[0], jids[1], "two sessions got the same resource");
    // Both are live, distinct sessions: each can be addressed.
    let (j1, j0) = (jids[1].clone(), jids[0].clone());
    clients[0]
        .send(&format!(
            "<message to='{j1}' type='chat' id='x1'><body>hi</body></message>"
        ))
        .await;
    let m = wait_stanza(&mut clients[1], "x1", |s| is_message_with_id(s, "x1")).await;
    assert_eq!(attr(&m, "from").as_deref(), Some(j0.as_str()), "{m}");
}

#[tokio::test]
async fn resource_conflict_replace_closes_the_old_session() {
    let server = two_users();
    let mut old = client::login(&server, "alice@localhost", "apw", "phone").await;
    let mut new = client::login(&server, "alice@localhost", "apw", "phone").await;
    let closed = old
        .read_to_close(WAIT)
        .await
        .expect("the replaced session must be closed");
    let closed = norm(&closed);
    assert!(
        closed.contains(&format!("<conflict xmlns='{STREAM_NS}'/>")),
        "{closed}"
    );
    assert!(closed.contains("</stream:stream>"), "{closed}");
    // The newcomer owns the resource now.
    ping_ok(&mut new, "p1").await;
    let mut bob = client::login(&server, "bob@localhost", "bpw", "b").await;
    bob.send("<message to='alice@localhost/phone' type='chat' id='c1'><body>new?</body></message>")
        .await;
    wait_stanza(&mut new, "c1", |s| is_message_with_id(s, "c1")).await;
}

#[tokio::test]
async fn resource_conflict_refuse_keeps_the_old_session() {
    let server = Server::start_with_c2s("resource_conflict = \"refuse\"");
    server.add_user("alice@localhost", "apw");
    let mut old = client::login(&server, "alice@localhost", "apw", "phone").await;
    let mut second = authenticated(&server, "alice", "apw").await;
    let (_, answer) = raw_bind(&mut second, Some("phone")).await;
    assert_eq!(attr(&answer, "type").as_deref(), Some("error"), "{answer}");
    assert!(
        answer.contains(&format!("<conflict xmlns='{STANZA_NS}'/>")),
        "{answer}"
    );
    // The first session is untouched.
    ping_ok(&mut old, "p1").await;
    // The refused client may still bind another resource.
    second
        .send("<iq type='set' id='bind2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>tablet</resource></bind></iq>")
        .await;
    let answer = reply_to(&mut second, "bind2").await;
    assert!(
        answer.contains("<jid>alice@localhost/tablet</jid>"),
        "{answer}"
    );
}

#[tokio::test]
async fn features_after_sasl_and_legacy_session() {
    let server = two_users();
    let mut c = authenticated(&server, "alice", "apw").await;
    let (features, answer) = raw_bind(&mut c, Some("pidgin")).await;
    assert!(
        features.contains("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"),
        "{features}"
    );
    assert!(
        features
            .contains("<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>"),
        "{features}"
    );
    assert_eq!(attr(&answer, "type").as_deref(), Some("result"), "{answer}");
    // What Pidgin sends right after binding.
    c.send("<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
        .await;
    let r = reply_to(&mut c, "sess1").await;
    assert!(r.starts_with("<iq"), "{r}");
    assert_eq!(attr(&r, "type").as_deref(), Some("result"), "{r}");
    ping_ok(&mut c, "p1").await;
}

// ---------------------------------------------------------------- iq semantics

#[tokio::test]
async fn ping_server_and_own_bare_jid() {
    let server = two_users();
    let mut c = client::login(&server, "alice@localhost", "apw", "r").await;
    let r = ping(&mut c, Some("localhost"), "ps").await;
    assert_eq!(attr(&r, "type").as_deref(), Some("result"), "{r}");
    assert_eq!(attr(&r, "from").as_deref(), Some("localhost"), "{r}");
    assert_eq!(attr(&r, "to").as_deref(), Some("alice@localhost/r"), "{r}");
    let r = ping(&mut c, Some("alice@localhost"), "pb").await;
    assert_eq!(attr(&r, "type").as_deref(), Some("result"), "{r}");
    // No 'to' at all: the account itself (RFC 6120 §10.3.3).
    let r = ping(&mut c, None, "pn").await;
    assert_eq!(attr(&r, "type").as_deref(), Some("result"), "{r}");
}

#[tokio::test]
async fn unknown_iq_to_server_is_service_unavailable() {
    let server = two_users();
    let mut c = client::login(&server, "alice@localhost", "apw", "r").await;
    c.send("<iq type='get' id='u1' to='localhost'><query xmlns='urn:example:nothing-here'/></iq>")
        .await;
    let r = reply_to(&mut c, "u1").await;
    assert!(r.starts_with("<iq"), "{r}");
    assert!(error_condition(&r, "service-unavailable"), "{r}");
}

#[tokio::test]
async fn iq_to_absent_full_jid_is_service_unavailable() {
    let server = two_users();
    let mut c = client::login(&server, "alice@localhost", "apw", "r").await;
    // bob exists but has no session; and a resource of alice's that is not bound.
    for (id, to) in [
        ("a1", "bob@localhost/nowhere"),
        ("a2", "alice@localhost/other"),
    ] {
        c.send(&format!(
            "<iq type='get' id='{id}' to='{to}'><ping xmlns='urn:xmpp:ping'/></iq>"
        ))
        .await;
        let r = reply_to(&mut c, id).await;
        assert!(error_condition(&r, "service-unavailable"), "{r}");
        assert_eq!(attr(&r, "from").as_deref(), Some(to), "{r}");
    }
}

#[tokio::test]
async fn iq_with_two_payloads_is_bad_request() {
    let server = two_users();
    let mut c = client::login(&server, "alice@localhost", "apw", "r").await;
    c.send("<iq type='get' id='t1' to='localhost'><ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let r = reply_to(&mut c, "t1").await;
    assert!(error_condition(&r, "bad-request"), "{r}");
    // And an iq get with no payload at all.
    c.send("<iq type='get' id='t2' to='localhost'/>").await;
    let r = reply_to(&mut c, "t2").await;
    assert!(error_condition(&r, "bad-request"), "{r}");
    ping_ok(&mut c, "p1").await;
}

// ---------------------------------------------------------------- addressing

#[tokio::test]
async fn message_to_full_jid_is_stamped_with_sender() {
    let server = two_users();
    let mut alice = client::login(&server, "alice@localhost", "apw", "desk").await;
    let mut bob = client::login(&server, "bob@localhost", "bpw", "phone").await;
    alice
        .send("<message to='bob@localhost/phone' type='chat' id='s1'><body>hello bob</body></message>")
        .await;
    let m = wait_stanza(&mut bob, "s1", |s| is_message_with_id(s, "s1")).await;
    assert_eq!(
        attr(&m, "from").as_deref(),
        Some("alice@localhost/desk"),
        "{m}"
    );
    assert_eq!(
        attr(&m, "to").as_deref(),
        Some("bob@localhost/phone"),
        "{m}"
    );
    assert!(m.contains("<body>hello bob</body>"), "{m}");
    // Repeating one's own full JID as 'from' is allowed and kept.
    alice
        .send("<message from='alice@localhost/desk' to='bob@localhost/phone' type='chat' id='s2'><body>again</body></message>")
        .await;
    let m = wait_stanza(&mut bob, "s2", |s| is_message_with_id(s, "s2")).await;
    assert_eq!(
        attr(&m, "from").as_deref(),
        Some("alice@localhost/desk"),
        "{m}"
    );
}

#[tokio::test]
async fn spoofed_from_is_an_invalid_from_stream_error() {
    let server = two_users();
    server.add_user("carol@localhost", "cpw");
    let mut alice = client::login(&server, "alice@localhost", "apw", "desk").await;
    let mut bob = client::login(&server, "bob@localhost", "bpw", "phone").await;
    alice
        .send("<message from='carol@localhost/x' to='bob@localhost/phone' type='chat' id='f1'><body>it is carol</body></message>")
        .await;
    let closed = alice
        .read_to_close(WAIT)
        .await
        .expect("the spoofing stream must be closed");
    assert!(
        norm(&closed).contains(&format!("<invalid-from xmlns='{STREAM_NS}'/>")),
        "{closed}"
    );
    // Nothing reached bob under carol's name.
    let mut carol = client::login(&server, "carol@localhost", "cpw", "c").await;
    carol
        .send(
            "<message to='bob@localhost/phone' type='chat' id='mark'><body>marker</body></message>",
        )
        .await;
    let seen = until_marker(&mut bob, "mark").await;
    assert!(
        !seen.iter().any(|s| is_message_with_id(s, "f1")),
        "spoofed message delivered: {seen:#?}"
    );
}

// ---------------------------------------------------------------- bare-JID delivery

/// alice sends one chat message to bob's bare JID, then markers to each of bob's
/// full JIDs; returns, per resource, whether it got the bare-JID message.
async fn bare_delivery(alice: &mut Client, bobs: &mut [(&str, &mut Client)]) -> Vec<bool> {
    alice
        .send("<message to='bob@localhost' type='chat' id='bare1'><body>to the bare JID</body></message>")
        .await;
    for (res, _) in bobs.iter() {
        alice
            .send(&format!(
                "<message to='bob@localhost/{res}' type='chat' id='mark-{res}'><body>marker</body></message>"
            ))
            .await;
    }
    let mut got = Vec::new();
    for (res, c) in bobs.iter_mut() {
        let seen = until_marker(c, &format!("mark-{res}")).await;
        let hits: Vec<_> = seen
            .iter()
            .filter(|s| is_message_with_id(s, "bare1"))
            .collect();
        assert!(hits.len() <= 1, "delivered twice to {res}: {hits:#?}");
        if let Some(m) = hits.first() {
            assert_eq!(attr(m, "from").as_deref(), Some("alice@localhost/a"), "{m}");
        }
        got.push(!hits.is_empty());
    }
    got
}

#[tokio::test]
async fn bare_jid_message_goes_to_highest_priority_resource() {
    let server = two_users();
    let mut alice = client::login(&server, "alice@localhost", "apw", "a").await;
    let mut b1 = client::login(&server, "bob@localhost", "bpw", "high").await;
    let mut b2 = client::login(&server, "bob@localhost", "bpw", "low").await;
    available(&mut b1, Some(5), "pr1").await;
    available(&mut b2, Some(1), "pr2").await;
    let got = bare_delivery(&mut alice, &mut [("high", &mut b1), ("low", &mut b2)]).await;
    assert_eq!(got, vec![true, false], "(priority 5, priority 1)");
}

#[tokio::test]
async fn bare_jid_message_with_equal_priorities_goes_to_all() {
    let server = two_users();
    let mut alice = client::login(&server, "alice@localhost", "apw", "a").await;
    let mut b1 = client::login(&server, "bob@localhost", "bpw", "one").await;
    let mut b2 = client::login(&server, "bob@localhost", "bpw", "two").await;
    available(&mut b1, Some(3), "pr1").await;
    available(&mut b2, Some(3), "pr2").await;
    let got = bare_delivery(&mut alice, &mut [("one", &mut b1), ("two", &mut b2)]).await;
    assert_eq!(got, vec![true, true]);
}

#[tokio::test]
async fn bare_jid_message_skips_resources_without_presence() {
    let server = two_users();
    let mut alice = client::login(&server, "alice@localhost", "apw", "a").await;
    let mut b1 = client::login(&server, "bob@localhost", "bpw", "online").await;
    let mut b2 = client::login(&server, "bob@localhost", "bpw", "silent").await;
    available(&mut b1, None, "pr1").await;
    ping_ok(&mut b2, "pr2").await;
    let got = bare_delivery(&mut alice, &mut [("online", &mut b1), ("silent", &mut b2)]).await;
    assert_eq!(got, vec![true, false], "(available, no presence)");
}

// ---------------------------------------------------------------- offline, unknown, remote

#[tokio::test]
async fn offline_message_is_delivered_with_delay_on_presence() {
    let server = two_users();
    let mut alice = client::login(&server, "alice@localhost", "apw", "a").await;
    alice
        .send("<message to='bob@localhost' type='chat' id='off1'><body>while you were out</body></message>")
        .await;
    // Processed in order: once the ping answers, the message was stored.
    ping_ok(&mut alice, "p1").await;
    let mut bob = client::login(&server, "bob@localhost", "bpw", "b").await;
    // Nothing before available presence.
    bob.send("<iq type='get' id='before' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let seen = until_marker(&mut bob, "before").await;
    assert!(
        !seen.iter().any(|s| is_message_with_id(s, "off1")),
        "delivered before available presence: {seen:#?}"
    );
    bob.send("<presence/>").await;
    let m = wait_stanza(&mut bob, "off1", |s| is_message_with_id(s, "off1")).await;
    assert_eq!(
        attr(&m, "from").as_deref(),
        Some("alice@localhost/a"),
        "{m}"
    );
    assert!(m.contains("<body>while you were out</body>"), "{m}");
    let delay = m
        .find("<delay ")
        .map(|p| &m[p..])
        .unwrap_or_else(|| panic!("no XEP-0203 delay: {m}"));
    assert!(delay.contains("xmlns='urn:xmpp:delay'"), "{m}");
    let stamp = attr(delay, "stamp").unwrap_or_else(|| panic!("no stamp: {m}"));
    // XEP-0082 date-time in UTC, e.g. 2026-01-02T03:04:05.678Z.
    assert!(
        stamp.len() >= 20 && stamp.as_bytes()[10] == b'T' && stamp.ends_with('Z'),
        "{stamp}"
    );
    drop(bob);
    // Delivered once: a later session does not get it again.
    let mut bob = client::login(&server, "bob@localhost", "bpw", "b2").await;
    bob.send(
        "<presence/><iq type='get' id='after' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    let seen = until_marker(&mut bob, "after").await;
    assert!(
        !seen.iter().any(|s| is_message_with_id(s, "off1")),
        "{seen:#?}"
    );
}

#[tokio::test]
async fn message_to_unknown_account_is_service_unavailable() {
    let server = two_users();
    let mut alice = client::login(&server, "alice@localhost", "apw", "a").await;
    alice
        .send("<message to='nobody@localhost' type='chat' id='u1'><body>anyone?</body></message>")
        .await;
    let r = wait_stanza(&mut alice, "u1", |s| is_message_with_id(s, "u1")).await;
    assert!(error_condition(&r, "service-unavailable"), "{r}");
    assert_eq!(attr(&r, "from").as_deref(), Some("nobody@localhost"), "{r}");
    assert_eq!(attr(&r, "to").as_deref(), Some("alice@localhost/a"), "{r}");
}

#[tokio::test]
async fn message_to_remote_domain_is_remote_server_not_found() {
    let server = two_users();
    let mut alice = client::login(&server, "alice@localhost", "apw", "a").await;
    alice
        .send("<message to='someone@elsewhere.example' type='chat' id='r1'><body>hello?</body></message>")
        .await;
    let r = wait_stanza(&mut alice, "r1", |s| is_message_with_id(s, "r1")).await;
    assert!(error_condition(&r, "remote-server-not-found"), "{r}");
    assert_eq!(
        attr(&r, "from").as_deref(),
        Some("someone@elsewhere.example"),
        "{r}"
    );
    ping_ok(&mut alice, "p1").await;
}

// ---------------------------------------------------------------- slow consumer

/// The ids (`mN`) of the complete messages in `stanzas`.
fn message_ids(stanzas: &[String]) -> Vec<usize> {
    stanzas
        .iter()
        .filter(|s| s.starts_with("<message") && attr(s, "type").as_deref() != Some("error"))
        .filter_map(|s| attr(s, "id")?.strip_prefix('m')?.parse().ok())
        .collect()
}

#[tokio::test]
async fn slow_consumer_is_closed_and_nothing_is_lost() {
    // 600 x 32 KiB ≈ 19 MiB: far more than the kernel buffers on both sides of
    // bob's connection, but under the offline quota (1000 messages).
    const N: usize = 600;
    const SIZE: usize = 32 * 1024;
    // Rooms need long queues (joining queues the occupant list): off here.
    let server = Server::start_edited(|t| {
        t.replacen("[c2s]\n", "[c2s]\nqueue_size = 16\n", 1) + "[muc]\nenabled = false\n"
    });
    server.add_user("alice@localhost", "apw");
    server.add_user("bob@localhost", "bpw");
    let alice = client::login(&server, "alice@localhost", "apw", "a").await;
    let mut bob = client::login(&server, "bob@localhost", "bpw", "b").await;

    // Alice reads in her own task, so that she is never the slow one.
    let client::Conn { io, buf } = alice;
    let (mut rd, mut wr) = tokio::io::split(io);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let reader = tokio::spawn(async move {
        let mut buf = buf;
        let mut chunk = vec![0u8; 65536];
        loop {
            while let Some(end) = element_end(&buf) {
                let _ = tx.send(norm(buf[..end].trim()));
                buf.drain(..end);
            }
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
            }
        }
    });
    let filler = "x".repeat(SIZE);
    let started = Instant::now();
    let mut bounced = BTreeSet::new();
    // Rounds of ROUND messages (fewer than the queue holds), each closed by a
    // ping and a pause: bob's session task keeps up until his socket is full,
    // then the queue overflows while it is stuck writing, the case that matters.
    const ROUND: usize = 4;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for round in 0..N / ROUND {
        let mut out = String::new();
        for i in round * ROUND..(round + 1) * ROUND {
            out.push_str(&format!(
                "<message to='bob@localhost/b' type='chat' id='m{i}'><body>{filler}</body></message>"
            ));
        }
        let ping_id = format!("round{round}");
        out.push_str(&format!(
            "<iq type='get' id='{ping_id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
        ));
        tokio::time::timeout_at(deadline, async {
            wr.write_all(out.as_bytes()).await?;
            wr.flush().await
        })
        .await
        .expect("alice could not send: the server stopped reading her")
        .expect("alice's connection broke");
        // Alice's pings keep answering although bob never reads a byte.
        loop {
            let s = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .unwrap_or_else(|_| panic!("alice's ping {ping_id} got no answer in time"))
                .expect("alice's connection closed");
            if alice_saw(&s, &mut bounced).as_deref() == Some(ping_id.as_str()) {
                assert_eq!(attr(&s, "type").as_deref(), Some("result"), "{s}");
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("flood sent and pinged in {:?}", started.elapsed());

    // Bob was judged too slow and closed; what reached his socket is his.
    let text = match bob.read_to_close(Duration::from_secs(60)).await {
        Ok(text) => text,
        Err(e) => panic!(
            "bob's session was not closed by the server: {}",
            e.chars().take(2000).collect::<String>()
        ),
    };
    let bob_stanzas = split_stanzas(&text);
    let read: Vec<usize> = message_ids(&bob_stanzas);
    let closed_with = bob_stanzas
        .iter()
        .find(|s| s.starts_with("<stream:error"))
        .cloned();
    if let Some(e) = &closed_with {
        assert!(
            e.contains(&format!("<policy-violation xmlns='{STREAM_NS}'/>")),
            "{e}"
        );
    }
    eprintln!(
        "bob read {} messages before the close (stream error: {closed_with:?})",
        read.len()
    );
    assert!(
        read.len() < N,
        "bob got everything: the flood never filled his buffers"
    );

    // Alice still works after the close.
    wr.write_all(
        b"<iq type='get' id='after-close' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await
    .expect("alice write");
    wr.flush().await.expect("flush");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("alice's second ping got no answer")
            .expect("alice's connection closed");
        if alice_saw(&s, &mut bounced).as_deref() == Some("after-close") {
            break;
        }
    }

    // Bob comes back: what was queued for him went to offline storage.
    let mut bob = client::login(&server, "bob@localhost", "bpw", "b2").await;
    bob.send("<presence/>").await;
    let mut delivered = Vec::new();
    let mut undelayed = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    let accounted = |delivered: &[usize], bounced: &BTreeSet<usize>| {
        let mut all: BTreeSet<usize> = read.iter().copied().collect();
        all.extend(delivered.iter().copied());
        all.extend(bounced.iter().copied());
        all
    };
    while accounted(&delivered, &bounced).len() < N && Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        match next_stanza(&mut bob, left.min(Duration::from_secs(3))).await {
            Ok(s) => {
                let ids = message_ids(std::slice::from_ref(&s));
                if !ids.is_empty() && !s.contains("urn:xmpp:delay") {
                    undelayed += 1;
                }
                delivered.extend(ids);
            }
            Err(_) => break,
        }
        while let Ok(s) = rx.try_recv() {
            alice_saw(&s, &mut bounced);
        }
    }
    let all = accounted(&delivered, &bounced);
    let missing: Vec<usize> = (0..N).filter(|i| !all.contains(i)).collect();
    let total = read.len() + delivered.len() + bounced.len();
    eprintln!(
        "sent {N}: bob read {} live, {} from offline storage, {} bounced; missing {}",
        read.len(),
        delivered.len(),
        bounced.len(),
        missing.len()
    );
    if !missing.is_empty() {
        eprintln!("SERVERLOG {}", server.log());
    }
    assert!(
        missing.is_empty(),
        "{} of {N} messages were lost (bob read {} before the close, {} came from offline \
         storage, {} bounced to alice); lost ids: {missing:?}",
        missing.len(),
        read.len(),
        delivered.len(),
        bounced.len()
    );
    // At-least-once is acceptable, a flood of duplicates is not.
    assert!(
        total - N <= 64,
        "{} duplicates: {total} deliveries for {N} messages",
        total - N
    );
    assert_eq!(undelayed, 0, "offline messages must carry a delay stamp");
    drop(wr);
    reader.abort();
}

/// Note a stanza alice received: a bounced flood message goes into `bounced`. Returns its id.
fn alice_saw(s: &str, bounced: &mut BTreeSet<usize>) -> Option<String> {
    if s.starts_with("<message")
        && attr(s, "type").as_deref() == Some("error")
        && let Some(i) = attr(s, "id").and_then(|i| i.strip_prefix('m')?.parse().ok())
    {
        bounced.insert(i);
    }
    attr(s, "id")
}

// ---------------------------------------------------------------- shutdown

#[tokio::test]
async fn sigterm_sends_system_shutdown_to_every_client() {
    let mut server = two_users();
    let mut alice = client::login(&server, "alice@localhost", "apw", "a").await;
    let mut bob = client::login(&server, "bob@localhost", "bpw", "b").await;
    available(&mut bob, None, "pr").await;
    let took = server.stop();
    assert!(
        took < Duration::from_secs(10),
        "jaseur took {took:?} to exit"
    );
    for (name, c) in [("alice", &mut alice), ("bob", &mut bob)] {
        let text = c
            .read_to_close(WAIT)
            .await
            .unwrap_or_else(|e| panic!("{name}'s stream was not closed: {e}"));
        assert!(
            norm(&text).contains(&format!("<system-shutdown xmlns='{STREAM_NS}'/>")),
            "{name}: {text}"
        );
    }
}
