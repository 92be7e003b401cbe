//! Message archives (XEP-0313 with XEP-0359 stanza ids, XEP-0441
//! preferences, XEP-0059 paging, XEP-0334 hints) over real connections:
//! what is archived, on each side, and how clients read it back. The
//! storage-heavy checks run on SQLite and on PostgreSQL.

mod common;

use common::Server;
use common::client::{self, Client, WAIT, attr, next};
use common::muc::{find, find_all, parse};
use minidom::Element;
use std::time::Duration;

const NS_MAM: &str = "urn:xmpp:mam:2";
const NS_SID: &str = "urn:xmpp:sid:0";
const NS_RSM: &str = "http://jabber.org/protocol/rsm";
const NS_FORWARD: &str = "urn:xmpp:forward:0";
const NS_DELAY: &str = "urn:xmpp:delay";

fn on_postgres(url: &str) -> Server {
    Server::start_with(&format!("[storage]\nurl = \"{url}\"\n"))
}

fn users(server: &Server, names: &[&str]) {
    for n in names {
        server.add_user(&format!("{n}@localhost"), "pw");
    }
}

async fn online(server: &Server, name: &str, resource: &str) -> Client {
    let mut c = client::login(server, &format!("{name}@localhost"), "pw", resource).await;
    c.send("<presence/>").await;
    let me = format!("{name}@localhost/{resource}");
    client::wait_for(&mut c, "own presence", |s| {
        s.starts_with("<presence") && attr(s, "from").as_deref() == Some(me.as_str())
    })
    .await;
    c
}

/// Send a chat message and wait until `to_client` has it; returns what
/// the recipient got.
async fn chat(from: &mut Client, to: &str, to_client: &mut Client, body: &str) -> String {
    from.send(&format!(
        "<message to='{to}' type='chat' id='{body}'><body>{body}</body></message>"
    ))
    .await;
    client::wait_for(to_client, body, |s| {
        s.starts_with("<message") && s.contains(&format!("<body>{body}</body>"))
    })
    .await
}

/// What one query brought: the forwarded messages' bodies and archive ids,
/// in the order received, and the `<fin/>`.
#[derive(Debug)]
struct Page {
    bodies: Vec<String>,
    ids: Vec<String>,
    results: Vec<Element>,
    fin: Element,
}

impl Page {
    fn complete(&self) -> bool {
        matches!(self.fin.attr("complete"), Some("true") | Some("1"))
    }

    fn rsm(&self, name: &str) -> Option<String> {
        find(&self.fin, name, NS_RSM).map(Element::text)
    }
}

/// A form field, `value` a single value.
fn field(var: &str, value: &str) -> String {
    format!("<field var='{var}'><value>{value}</value></field>")
}

/// Run a query with these form fields (besides FORM_TYPE) and RSM
/// elements; Err is the iq error.
async fn try_query(c: &mut Client, id: &str, fields: &str, rsm: &str) -> Result<Page, String> {
    let form = format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
         <value>{NS_MAM}</value></field>{fields}</x>"
    );
    let set = if rsm.is_empty() {
        String::new()
    } else {
        format!("<set xmlns='{NS_RSM}'>{rsm}</set>")
    };
    c.send(&format!(
        "<iq type='set' id='{id}'><query xmlns='{NS_MAM}' queryid='q-{id}'>{form}{set}</query></iq>"
    ))
    .await;
    let mut results = Vec::new();
    loop {
        let s = next(c, WAIT)
            .await
            .unwrap_or_else(|e| panic!("query {id}: {e}; results so far {results:#?}"));
        if s.starts_with("<iq") && attr(&s, "id").as_deref() == Some(id) {
            let iq = parse(&s);
            if attr(&s, "type").as_deref() != Some("result") {
                return Err(s);
            }
            let fin = find(&iq, "fin", NS_MAM)
                .cloned()
                .unwrap_or_else(|| panic!("no <fin/>: {s}"));
            let mut bodies = Vec::new();
            let mut ids = Vec::new();
            for r in &results {
                let result = find(r, "result", NS_MAM).expect("result");
                assert_eq!(result.attr("queryid"), Some(format!("q-{id}").as_str()));
                ids.push(result.attr("id").expect("result id").to_owned());
                let fwd = find(result, "forwarded", NS_FORWARD).expect("forwarded");
                assert!(find(fwd, "delay", NS_DELAY).is_some(), "no delay stamp");
                let inner = fwd
                    .children()
                    .find(|c| c.name() == "message")
                    .expect("the archived message");
                bodies.push(
                    inner
                        .children()
                        .find(|c| c.name() == "body")
                        .map(Element::text)
                        .unwrap_or_default(),
                );
            }
            return Ok(Page {
                bodies,
                ids,
                results,
                fin,
            });
        }
        if s.starts_with("<message") && s.contains(NS_MAM) {
            results.push(parse(&s));
        }
    }
}

async fn query(c: &mut Client, id: &str, fields: &str, rsm: &str) -> Page {
    try_query(c, id, fields, rsm)
        .await
        .unwrap_or_else(|e| panic!("query {id} failed: {e}"))
}

/// Whether a stanza is an error with this condition.
fn is_error(s: &str, condition: &str) -> bool {
    client::is_error(s, condition)
}

// ---- a conversation, archived once per side ---------------------------------

async fn conversation_is_archived_on_each_side(server: Server) {
    users(&server, &["alice", "bob"]);
    let mut alice = online(&server, "alice", "a").await;
    let mut bob = online(&server, "bob", "b").await;
    let mut seen_by_bob = Vec::new();
    for body in ["un", "deux", "trois"] {
        seen_by_bob.push(chat(&mut alice, "bob@localhost", &mut bob, body).await);
    }
    chat(&mut bob, "alice@localhost", &mut alice, "quatre").await;
    chat(&mut bob, "alice@localhost", &mut alice, "cinq").await;
    let a = query(&mut alice, "qa", "", "").await;
    assert_eq!(a.bodies, ["un", "deux", "trois", "quatre", "cinq"]);
    assert!(a.complete(), "{:?}", a.fin);
    let b = query(&mut bob, "qb", "", "").await;
    assert_eq!(b.bodies, ["un", "deux", "trois", "quatre", "cinq"]);
    // XEP-0359: what Bob received carries the id his archive knows it by.
    for (got, id) in seen_by_bob.iter().zip(&b.ids) {
        let el = parse(got);
        let sid = find(&el, "stanza-id", NS_SID).unwrap_or_else(|| panic!("no stanza-id: {got}"));
        assert_eq!(sid.attr("by"), Some("bob@localhost"), "{got}");
        assert_eq!(sid.attr("id"), Some(id.as_str()), "{got}");
    }
    // Each side's ids are its own, increasing in time.
    let mut sorted = a.ids.clone();
    sorted.sort_by_key(|i| i.parse::<i64>().expect("numeric id"));
    assert_eq!(sorted, a.ids);
    // The archived messages are the originals, from and to as sent.
    let first = find(&a.results[0], "forwarded", NS_FORWARD).expect("fwd");
    let inner = first
        .children()
        .find(|c| c.name() == "message")
        .expect("message");
    assert_eq!(inner.attr("to"), Some("bob@localhost"));
    assert_eq!(inner.attr("from"), Some("alice@localhost/a"));
}

#[tokio::test]
async fn conversation_is_archived_on_each_side_sqlite() {
    conversation_is_archived_on_each_side(Server::start()).await;
}

#[tokio::test]
async fn conversation_is_archived_on_each_side_postgres() {
    let url = common::fresh_pg().await;
    conversation_is_archived_on_each_side(on_postgres(&url)).await;
}

// ---- paging -------------------------------------------------------------------

async fn ten_messages(server: &Server) -> (Client, Client) {
    users(server, &["alice", "bob"]);
    let mut alice = online(server, "alice", "a").await;
    let mut bob = online(server, "bob", "b").await;
    for i in 0..10 {
        chat(&mut alice, "bob@localhost", &mut bob, &format!("m{i}")).await;
    }
    (alice, bob)
}

fn bodies(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("m{i}")).collect()
}

async fn paging(server: Server) {
    let (mut alice, _bob) = ten_messages(&server).await;
    // Forwards, three at a time.
    let p1 = query(&mut alice, "p1", "", "<max>3</max>").await;
    assert_eq!(p1.bodies, bodies(0..3));
    assert!(!p1.complete());
    assert_eq!(p1.rsm("first").as_deref(), Some(p1.ids[0].as_str()));
    assert_eq!(p1.rsm("last").as_deref(), Some(p1.ids[2].as_str()));
    let after = p1.rsm("last").expect("last");
    let p2 = query(
        &mut alice,
        "p2",
        "",
        &format!("<max>3</max><after>{after}</after>"),
    )
    .await;
    assert_eq!(p2.bodies, bodies(3..6));
    let last_id = p2.rsm("last").expect("last");
    let p3 = query(
        &mut alice,
        "p3",
        "",
        &format!("<max>10</max><after>{last_id}</after>"),
    )
    .await;
    assert_eq!(p3.bodies, bodies(6..10));
    assert!(p3.complete(), "the last page is complete: {:?}", p3.fin);
    // Backwards: the last page first, each page in chronological order.
    let b1 = query(&mut alice, "b1", "", "<max>4</max><before/>").await;
    assert_eq!(b1.bodies, bodies(6..10));
    assert!(!b1.complete());
    let first = b1.rsm("first").expect("first");
    let b2 = query(
        &mut alice,
        "b2",
        "",
        &format!("<max>4</max><before>{first}</before>"),
    )
    .await;
    assert_eq!(b2.bodies, bodies(2..6));
    let first = b2.rsm("first").expect("first");
    let b3 = query(
        &mut alice,
        "b3",
        "",
        &format!("<max>4</max><before>{first}</before>"),
    )
    .await;
    assert_eq!(b3.bodies, bodies(0..2));
    assert!(b3.complete(), "the first page is complete: {:?}", b3.fin);
    // flip-page: the same page, newest first.
    alice
        .send(&format!(
            "<iq type='set' id='flip'><query xmlns='{NS_MAM}' queryid='q-flip'>\
             <set xmlns='{NS_RSM}'><max>3</max><before/></set><flip-page/></query></iq>"
        ))
        .await;
    let mut flipped = Vec::new();
    loop {
        let s = next(&mut alice, WAIT).await.expect("flip results");
        if s.starts_with("<iq") {
            assert_eq!(attr(&s, "type").as_deref(), Some("result"), "{s}");
            break;
        }
        if let Some(b) = s
            .split("<body>")
            .nth(1)
            .and_then(|r| r.split("</body>").next())
        {
            flipped.push(b.to_owned());
        }
    }
    assert_eq!(flipped, ["m9", "m8", "m7"]);
    // An id that is not in the archive.
    let e = try_query(&mut alice, "bad", "", "<after>12345</after>")
        .await
        .expect_err("unknown id");
    assert!(is_error(&e, "item-not-found"), "{e}");
}

#[tokio::test]
async fn paging_forwards_and_backwards_sqlite() {
    paging(Server::start()).await;
}

#[tokio::test]
async fn paging_forwards_and_backwards_postgres() {
    let url = common::fresh_pg().await;
    paging(on_postgres(&url)).await;
}

// ---- filters -------------------------------------------------------------------

#[tokio::test]
async fn filters_by_with_time_and_ids() {
    let server = Server::start();
    users(&server, &["alice", "bob", "carol"]);
    let mut alice = online(&server, "alice", "a").await;
    let mut bob = online(&server, "bob", "b").await;
    let mut carol = online(&server, "carol", "c").await;
    chat(&mut alice, "bob@localhost", &mut bob, "to-bob-1").await;
    chat(&mut alice, "carol@localhost", &mut carol, "to-carol").await;
    chat(&mut bob, "alice@localhost", &mut alice, "from-bob").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let all = query(&mut alice, "all", "", "").await;
    assert_eq!(all.bodies, ["to-bob-1", "to-carol", "from-bob"]);
    // with: a bare JID matches every resource...
    let with_bob = query(&mut alice, "wb", &field("with", "bob@localhost"), "").await;
    assert_eq!(with_bob.bodies, ["to-bob-1", "from-bob"]);
    // ...a full JID only that resource (Bob wrote from /b; Alice wrote to his bare JID).
    let with_full = query(&mut alice, "wf", &field("with", "bob@localhost/b"), "").await;
    assert_eq!(with_full.bodies, ["from-bob"]);
    // Time: everything until now, nothing from the future.
    let later = query(
        &mut alice,
        "fut",
        &field("start", "2999-01-01T00:00:00Z"),
        "",
    )
    .await;
    assert!(later.bodies.is_empty() && later.complete());
    let until = query(&mut alice, "end", &field("end", "2999-01-01T00:00:00Z"), "").await;
    assert_eq!(until.bodies.len(), 3);
    let past = query(
        &mut alice,
        "past",
        &field("end", "2000-01-01T00:00:00Z"),
        "",
    )
    .await;
    assert!(past.bodies.is_empty());
    // A message sent after a marker time is found by start.
    let marker = chrono_now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    chat(&mut carol, "alice@localhost", &mut alice, "after-marker").await;
    let since = query(&mut alice, "since", &field("start", &marker), "").await;
    assert_eq!(since.bodies, ["after-marker"]);
    // ids, after-id and before-id.
    let ids = format!(
        "<field var='ids'><value>{}</value><value>{}</value></field>",
        all.ids[0], all.ids[2]
    );
    let picked = query(&mut alice, "ids", &ids, "").await;
    assert_eq!(picked.bodies, ["to-bob-1", "from-bob"]);
    let after = query(&mut alice, "aid", &field("after-id", &all.ids[0]), "").await;
    assert_eq!(after.bodies, ["to-carol", "from-bob", "after-marker"]);
    let before = query(&mut alice, "bid", &field("before-id", &all.ids[2]), "").await;
    assert_eq!(before.bodies, ["to-bob-1", "to-carol"]);
    // Unknown ids and fields are errors.
    let e = try_query(&mut alice, "nf", &field("after-id", "1"), "")
        .await
        .expect_err("unknown id");
    assert!(is_error(&e, "item-not-found"), "{e}");
    let e = try_query(&mut alice, "fni", &field("{urn:example}magic", "x"), "")
        .await
        .expect_err("unknown field");
    assert!(is_error(&e, "feature-not-implemented"), "{e}");
    // More ids than a page holds (archive.max_page, 250 by default).
    let many: String = (1..=251).map(|i| format!("<value>{i}</value>")).collect();
    let e = try_query(
        &mut alice,
        "many",
        &format!("<field var='ids'>{many}</field>"),
        "",
    )
    .await
    .expect_err("too many ids");
    assert!(is_error(&e, "policy-violation"), "{e}");
}

/// The current time, XEP-0082, from the system clock.
fn chrono_now() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.%3NZ"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

// ---- what is not archived --------------------------------------------------------

#[tokio::test]
async fn hints_and_message_types_decide_what_is_archived() {
    let server = Server::start();
    users(&server, &["alice", "bob"]);
    let mut alice = online(&server, "alice", "a").await;
    let mut bob = online(&server, "bob", "b").await;
    alice
        .send("<message to='bob@localhost' type='chat'><body>secret</body><no-store xmlns='urn:xmpp:hints'/></message>")
        .await;
    alice
        .send("<message to='bob@localhost' type='headline'><body>news</body></message>")
        .await;
    alice
        .send("<message to='bob@localhost' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
        .await;
    chat(&mut alice, "bob@localhost", &mut bob, "kept").await;
    let a = query(&mut alice, "a", "", "").await;
    assert_eq!(a.bodies, ["kept"]);
    let b = query(&mut bob, "b", "", "").await;
    assert_eq!(b.bodies, ["kept"]);
    // A stanza-id claiming to come from Bob's archive is not passed on.
    alice
        .send("<message to='bob@localhost' type='chat' id='forged'><body>forged</body><stanza-id xmlns='urn:xmpp:sid:0' by='bob@localhost' id='1'/></message>")
        .await;
    let got = client::wait_for(&mut bob, "forged", |s| s.contains("<body>forged</body>")).await;
    let el = parse(&got);
    let mut sids = Vec::new();
    find_all(&el, "stanza-id", NS_SID, &mut sids);
    assert_eq!(sids.len(), 1, "{got}");
    assert_ne!(sids[0].attr("id"), Some("1"), "{got}");
}

// ---- preferences (XEP-0441) --------------------------------------------------

async fn set_prefs(c: &mut Client, id: &str, prefs: &str) -> String {
    client::iq(c, id, &format!("<iq type='set' id='ID'>{prefs}</iq>")).await
}

#[tokio::test]
async fn preferences_choose_what_is_archived() {
    let server = Server::start();
    users(&server, &["alice", "bob", "carol"]);
    let mut alice = online(&server, "alice", "a").await;
    let mut bob = online(&server, "bob", "b").await;
    let mut carol = online(&server, "carol", "c").await;
    // The default, before anything is set.
    let got = client::iq(
        &mut alice,
        "g0",
        &format!("<iq type='get' id='ID'><prefs xmlns='{NS_MAM}'/></iq>"),
    )
    .await;
    assert!(got.contains("default='always'"), "{got}");
    // The lists are bounded (they are read for every message).
    let long: String = (0..300)
        .map(|i| format!("<jid>u{i}@example.org</jid>"))
        .collect();
    let r = set_prefs(
        &mut alice,
        "long",
        &format!("<prefs xmlns='{NS_MAM}' default='always'><always>{long}</always></prefs>"),
    )
    .await;
    assert!(is_error(&r, "not-acceptable"), "{r}");
    // "roster": only contacts in the roster (Bob is, Carol is not).
    client::iq(
        &mut alice,
        "r1",
        "<iq type='set' id='ID'><query xmlns='jabber:iq:roster'><item jid='bob@localhost'/></query></iq>",
    )
    .await;
    let r = set_prefs(
        &mut alice,
        "s1",
        &format!("<prefs xmlns='{NS_MAM}' default='roster'/>"),
    )
    .await;
    assert_eq!(attr(&r, "type").as_deref(), Some("result"), "{r}");
    chat(&mut bob, "alice@localhost", &mut alice, "from-contact").await;
    chat(&mut carol, "alice@localhost", &mut alice, "from-stranger").await;
    let p = query(&mut alice, "q1", "", "").await;
    assert_eq!(p.bodies, ["from-contact"]);
    // "never", with Carol in the always list.
    set_prefs(
        &mut alice,
        "s2",
        &format!(
            "<prefs xmlns='{NS_MAM}' default='never'><always><jid>carol@localhost</jid></always><never/></prefs>"
        ),
    )
    .await;
    chat(&mut bob, "alice@localhost", &mut alice, "bob-again").await;
    chat(&mut carol, "alice@localhost", &mut alice, "carol-always").await;
    let p = query(&mut alice, "q2", "", "").await;
    assert_eq!(p.bodies, ["from-contact", "carol-always"]);
    // "always", with Bob never.
    set_prefs(
        &mut alice,
        "s3",
        &format!(
            "<prefs xmlns='{NS_MAM}' default='always'><always/><never><jid>bob@localhost</jid></never></prefs>"
        ),
    )
    .await;
    chat(&mut alice, "bob@localhost", &mut bob, "to-bob-never").await;
    chat(&mut alice, "carol@localhost", &mut carol, "to-carol").await;
    let p = query(&mut alice, "q3", "", "").await;
    assert_eq!(p.bodies, ["from-contact", "carol-always", "to-carol"]);
    let got = client::iq(
        &mut alice,
        "g1",
        &format!("<iq type='get' id='ID'><prefs xmlns='{NS_MAM}'/></iq>"),
    )
    .await;
    assert!(
        got.contains("default='always'") && got.contains("<jid>bob@localhost</jid>"),
        "{got}"
    );
    // Bob's archive follows his own (default) preferences.
    let b = query(&mut bob, "qb", "", "").await;
    assert!(
        b.bodies.contains(&"to-bob-never".to_owned()),
        "{:?}",
        b.bodies
    );
    // Preferences survive a restart.
    drop((alice, bob, carol));
    let mut server = server;
    server.stop();
    server.launch();
    let mut alice = online(&server, "alice", "a2").await;
    let got = client::iq(
        &mut alice,
        "g2",
        &format!("<iq type='get' id='ID'><prefs xmlns='{NS_MAM}'/></iq>"),
    )
    .await;
    assert!(got.contains("<jid>bob@localhost</jid>"), "{got}");
}

// ---- discovery, form, metadata -----------------------------------------------

#[tokio::test]
async fn the_account_advertises_mam_and_describes_its_archive() {
    let server = Server::start();
    users(&server, &["alice", "bob"]);
    let mut alice = online(&server, "alice", "a").await;
    let mut bob = online(&server, "bob", "b").await;
    let info = client::iq(
        &mut alice,
        "d1",
        "<iq type='get' id='ID' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    .await;
    for f in [NS_MAM, "urn:xmpp:mam:2#extended", NS_SID] {
        assert!(info.contains(&format!("var='{f}'")), "{f} missing: {info}");
    }
    let form = client::iq(
        &mut alice,
        "f1",
        &format!("<iq type='get' id='ID'><query xmlns='{NS_MAM}'/></iq>"),
    )
    .await;
    for var in [
        "FORM_TYPE",
        "with",
        "start",
        "end",
        "before-id",
        "after-id",
        "ids",
    ] {
        assert!(form.contains(&format!("var='{var}'")), "{var}: {form}");
    }
    // An empty archive: an empty metadata element.
    let meta = client::iq(
        &mut alice,
        "m1",
        &format!("<iq type='get' id='ID'><metadata xmlns='{NS_MAM}'/></iq>"),
    )
    .await;
    assert!(!meta.contains("<start"), "{meta}");
    chat(&mut alice, "bob@localhost", &mut bob, "premier").await;
    chat(&mut bob, "alice@localhost", &mut alice, "dernier").await;
    let page = query(&mut alice, "all", "", "").await;
    let meta = parse(
        &client::iq(
            &mut alice,
            "m2",
            &format!("<iq type='get' id='ID'><metadata xmlns='{NS_MAM}'/></iq>"),
        )
        .await,
    );
    let start = find(&meta, "start", NS_MAM).expect("start");
    let end = find(&meta, "end", NS_MAM).expect("end");
    assert_eq!(start.attr("id"), Some(page.ids[0].as_str()));
    assert_eq!(end.attr("id"), Some(page.ids[1].as_str()));
    // XEP-0082: UTC, written Z or +00:00.
    assert!(
        start
            .attr("timestamp")
            .is_some_and(|t| t.contains('T') && (t.ends_with('Z') || t.ends_with("+00:00"))),
        "{:?}",
        start.attr("timestamp")
    );
    // Someone else's archive is not theirs to read.
    bob.send(&format!(
        "<iq type='set' id='steal' to='alice@localhost'><query xmlns='{NS_MAM}'/></iq>"
    ))
    .await;
    let e = client::reply(&mut bob, "steal").await;
    assert_eq!(attr(&e, "type").as_deref(), Some("error"), "{e}");
}

// ---- offline messages and account deletion ---------------------------------

async fn offline_and_deletion(server: Server) {
    users(&server, &["alice", "bob"]);
    let mut alice = online(&server, "alice", "a").await;
    // Bob is offline: the message is archived for him now, stored, and
    // handed over later with the same stanza-id.
    alice
        .send("<message to='bob@localhost' type='chat' id='off'><body>pendant ton absence</body></message>")
        .await;
    client::iq(
        &mut alice,
        "sync",
        "<iq type='get' id='ID' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    let mut bob = online(&server, "bob", "b").await;
    let got = client::wait_for(&mut bob, "the offline message", |s| {
        s.contains("pendant ton absence")
    })
    .await;
    let page = query(&mut bob, "qb", "", "").await;
    assert_eq!(page.bodies, ["pendant ton absence"]);
    let el = parse(&got);
    let sid = find(&el, "stanza-id", NS_SID).expect("stanza-id");
    assert_eq!(sid.attr("id"), Some(page.ids[0].as_str()));
    // Deleting Alice's account deletes her archive, not Bob's.
    drop(alice);
    let out = server.cli(&["user", "del", "alice@localhost"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.add_user("alice@localhost", "pw");
    let mut alice = online(&server, "alice", "new").await;
    let mine = query(&mut alice, "qa", "", "").await;
    assert!(mine.bodies.is_empty(), "{:?}", mine.bodies);
    let his = query(&mut bob, "qb2", "", "").await;
    assert_eq!(his.bodies, ["pendant ton absence"]);
}

#[tokio::test]
async fn offline_messages_and_account_deletion_sqlite() {
    offline_and_deletion(Server::start()).await;
}

#[tokio::test]
async fn offline_messages_and_account_deletion_postgres() {
    let url = common::fresh_pg().await;
    offline_and_deletion(on_postgres(&url)).await;
}

#[tokio::test]
async fn archiving_off_archives_nothing_and_advertises_nothing() {
    let server = Server::start_with("[archive]\nenabled = false\n");
    users(&server, &["alice", "bob"]);
    let mut alice = online(&server, "alice", "a").await;
    let mut bob = online(&server, "bob", "b").await;
    let got = chat(&mut alice, "bob@localhost", &mut bob, "ephemeral").await;
    assert!(!got.contains(NS_SID), "{got}");
    alice
        .send(&format!(
            "<iq type='set' id='q'><query xmlns='{NS_MAM}'/></iq>"
        ))
        .await;
    let e = client::reply(&mut alice, "q").await;
    assert!(is_error(&e, "service-unavailable"), "{e}");
}
