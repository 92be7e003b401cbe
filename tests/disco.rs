//! Service discovery (XEP-0030) with the server's caps (XEP-0115) and contact
//! addresses (XEP-0157), software version (XEP-0092), entity time
//! (XEP-0202) and last activity (XEP-0012): client conversations with the
//! real binary over TLS, and the last-activity store contract on SQLite and
//! PostgreSQL.

mod common;
use common::client::element_end;

use common::Server;
use common::client::{self, Client, WAIT};
use jaseur::features::disco::{CAPS_NODE, DiscoInfo};
use jaseur::features::last::LastActivityStore;
use jaseur::storage::Storage;
use jid::BareJid;
use minidom::Element;
use std::time::Duration;
use tokio::io::AsyncReadExt;

const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
const CLIENT: &str = "jabber:client";

/// A server whose `[server]` section also gets `keys` (TOML forbids a second `[server]`).
fn start_with_server_keys(keys: &str) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("jaseur.toml");
    let text = common::config_text(&dir.path().join("data"), "").replacen(
        "[server]\n",
        &format!("[server]\n{}\n", keys.trim_end()),
        1,
    );
    std::fs::write(&config, text).expect("config");
    let mut s = Server {
        dir,
        config,
        child: None,
        c2s: "127.0.0.1:1".parse().expect("addr"),
        direct_tls: "127.0.0.1:1".parse().expect("addr"),
        http: None,
    };
    s.launch();
    s
}

/// The next top-level element, parsed (it inherits the stream's jabber:client namespace).
async fn next_element(c: &mut Client) -> Element {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(end) = element_end(&c.buf) {
            let text: String = c.buf.drain(..end).collect();
            let wrapped: Element = format!("<w xmlns='{CLIENT}'>{}</w>", text.trim())
                .parse()
                .unwrap_or_else(|e| panic!("cannot parse {text:?}: {e}"));
            return wrapped.children().next().cloned().expect("one element");
        }
        let mut chunk = [0u8; 16384];
        match tokio::time::timeout_at(deadline, c.io.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => c.buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
            other => panic!("no element ({other:?}); partial: {:?}", c.buf),
        }
    }
}

/// Send an iq get carrying `payload` to `to` and return the reply with the same id.
async fn get(c: &mut Client, id: &str, to: &str, payload: &str) -> Element {
    c.send(&format!(
        "<iq type='get' id='{id}' to='{to}'>{payload}</iq>"
    ))
    .await;
    loop {
        let el = next_element(c).await;
        if el.is("iq", CLIENT) && el.attr("id") == Some(id) {
            return el;
        }
    }
}

/// The payload of a result, panicking on anything else.
fn result<'a>(iq: &'a Element, name: &str, ns: &str) -> &'a Element {
    assert_eq!(iq.attr("type"), Some("result"), "{}", String::from(iq));
    iq.get_child(name, ns)
        .unwrap_or_else(|| panic!("no {name} in {}", String::from(iq)))
}

/// The error condition of an error reply.
fn condition(iq: &Element) -> String {
    assert_eq!(iq.attr("type"), Some("error"), "{}", String::from(iq));
    iq.get_child("error", CLIENT)
        .and_then(|e| {
            e.children()
                .find(|c| c.ns() == STANZAS && c.name() != "text")
        })
        .map(|c| c.name().to_owned())
        .unwrap_or_default()
}

fn features(query: &Element) -> Vec<String> {
    query
        .children()
        .filter(|c| c.is("feature", DISCO_INFO))
        .filter_map(|c| c.attr("var").map(String::from))
        .collect()
}

const INFO: &str = "<query xmlns='http://jabber.org/protocol/disco#info'/>";

#[tokio::test]
async fn server_info_identity_features_and_caps() {
    let server = Server::start();
    server.add_user("alice@localhost", "apw");
    let mut alice = client::login(&server, "alice@localhost", "apw", "a").await;

    let reply = get(&mut alice, "i1", "localhost", INFO).await;
    assert_eq!(reply.attr("from"), Some("localhost"));
    let query = result(&reply, "query", DISCO_INFO);
    let identities: Vec<_> = query
        .children()
        .filter(|c| c.is("identity", DISCO_INFO))
        .map(|c| (c.attr("category"), c.attr("type"), c.attr("name")))
        .collect();
    assert_eq!(identities, [(Some("server"), Some("im"), Some("Jaseur"))]);
    let features = features(query);
    for f in [
        DISCO_INFO,
        DISCO_ITEMS,
        "jabber:iq:version",
        "urn:xmpp:time",
        "urn:xmpp:ping",
        "jabber:iq:last",
        "jabber:iq:register",
        "urn:xmpp:blocking",
        "vcard-temp",
        "jabber:iq:private",
        "http://jabber.org/protocol/commands",
        "msgoffline",
    ] {
        assert!(features.iter().any(|x| x == f), "{f} missing: {features:?}");
    }
    assert!(!features.iter().any(|x| x == "urn:xmpp:sasl-cb:0"));
    assert!(
        query.get_child("x", "jabber:x:data").is_none(),
        "no contact addresses configured, no form"
    );

    // XEP-0115: the caps node#ver names exactly this info, and answers with it.
    let ver = DiscoInfo::parse(query).expect("well-formed").caps_ver();
    let node = format!("{CAPS_NODE}#{ver}");
    let reply = get(
        &mut alice,
        "i2",
        "localhost",
        &format!("<query xmlns='{DISCO_INFO}' node='{node}'/>"),
    )
    .await;
    let query = result(&reply, "query", DISCO_INFO);
    assert_eq!(query.attr("node"), Some(node.as_str()));
    assert_eq!(
        DiscoInfo::parse(query).expect("well-formed").caps_ver(),
        ver
    );

    // A node the server does not know (XEP-0030 §3.2), including a stale caps version.
    for (id, node) in [
        ("i3", "urn:nonexistent".to_owned()),
        ("i4", format!("{CAPS_NODE}#AAAA")),
    ] {
        let reply = get(
            &mut alice,
            id,
            "localhost",
            &format!("<query xmlns='{DISCO_INFO}' node='{node}'/>"),
        )
        .await;
        assert_eq!(condition(&reply), "item-not-found");
    }

    // disco#items on the server: the conference service (no directory here).
    let reply = get(
        &mut alice,
        "it1",
        "localhost",
        &format!("<query xmlns='{DISCO_ITEMS}'/>"),
    )
    .await;
    let items = result(&reply, "query", DISCO_ITEMS);
    assert_eq!(
        items
            .children()
            .filter_map(|i| i.attr("jid"))
            .collect::<Vec<_>>(),
        vec!["conference.localhost"],
        "{}",
        String::from(&reply)
    );
    let reply = get(
        &mut alice,
        "it2",
        "localhost",
        &format!("<query xmlns='{DISCO_ITEMS}' node='urn:nonexistent'/>"),
    )
    .await;
    assert_eq!(condition(&reply), "item-not-found");
}

#[tokio::test]
async fn contact_addresses_and_disabled_version() {
    let server = start_with_server_keys(
        "software_version = false\n\
         contact = { abuse = [\"mailto:abuse@localhost\"], support = [\"https://localhost/help\", \"xmpp:support@localhost\"] }",
    );
    server.add_user("alice@localhost", "apw");
    let mut alice = client::login(&server, "alice@localhost", "apw", "a").await;

    let reply = get(&mut alice, "i1", "localhost", INFO).await;
    let query = result(&reply, "query", DISCO_INFO);
    assert!(
        !features(query).iter().any(|f| f == "jabber:iq:version"),
        "version is off"
    );
    let info = DiscoInfo::parse(query).expect("well-formed");
    assert_eq!(info.forms.len(), 1, "{}", String::from(query));
    let form = &info.forms[0];
    assert_eq!(form.form_type, "http://jabber.org/network/serverinfo");
    let fields: Vec<(&str, Vec<&str>)> = form
        .fields
        .iter()
        .map(|f| {
            (
                f.var.as_str(),
                f.values.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("abuse-addresses", vec!["mailto:abuse@localhost"]),
            (
                "support-addresses",
                vec!["https://localhost/help", "xmpp:support@localhost"]
            ),
        ]
    );
    let x = query.get_child("x", "jabber:x:data").expect("form");
    assert_eq!(x.attr("type"), Some("result"));

    let reply = get(
        &mut alice,
        "v1",
        "localhost",
        "<query xmlns='jabber:iq:version'/>",
    )
    .await;
    assert_eq!(condition(&reply), "service-unavailable");
}

#[tokio::test]
async fn version_time_and_uptime() {
    let server = Server::start();
    server.add_user("alice@localhost", "apw");
    let mut alice = client::login(&server, "alice@localhost", "apw", "a").await;

    let reply = get(
        &mut alice,
        "v1",
        "localhost",
        "<query xmlns='jabber:iq:version'/>",
    )
    .await;
    let query = result(&reply, "query", "jabber:iq:version");
    assert_eq!(
        query
            .get_child("name", "jabber:iq:version")
            .map(Element::text),
        Some("Jaseur".into())
    );
    assert_eq!(
        query
            .get_child("version", "jabber:iq:version")
            .map(Element::text),
        Some(env!("CARGO_PKG_VERSION").into())
    );
    assert!(
        query.get_child("os", "jabber:iq:version").is_none(),
        "no OS: privacy"
    );

    let reply = get(
        &mut alice,
        "t1",
        "localhost",
        "<time xmlns='urn:xmpp:time'/>",
    )
    .await;
    let time = result(&reply, "time", "urn:xmpp:time");
    let tzo = time
        .get_child("tzo", "urn:xmpp:time")
        .map(Element::text)
        .unwrap_or_default();
    assert!(tzo == "+00:00" || tzo == "Z", "{tzo}");
    let utc = time
        .get_child("utc", "urn:xmpp:time")
        .map(Element::text)
        .unwrap_or_default();
    let secs = parse_utc(&utc).unwrap_or_else(|| panic!("not an XEP-0082 UTC DateTime: {utc}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    assert!((now - secs).abs() < 60, "{utc} is not now");

    let reply = get(
        &mut alice,
        "l1",
        "localhost",
        "<query xmlns='jabber:iq:last'/>",
    )
    .await;
    let last = result(&reply, "query", "jabber:iq:last");
    let uptime: u64 = last
        .attr("seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("seconds: {}", String::from(last)));
    assert!(uptime < 3600, "{uptime}");
    assert_eq!(last.text(), "", "no text for a server (XEP-0012 §5)");
}

/// Seconds since the epoch of `CCYY-MM-DDThh:mm:ss[.sss]Z` (XEP-0082 DateTime in UTC).
fn parse_utc(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t: Vec<i64> = hms
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [y, m, day] = <[i64; 3]>::try_from(d).ok()?;
    let [hh, mm, ss] = <[i64; 3]>::try_from(t).ok()?;
    // Days from civil (H. Hinnant), independent of the server's code.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[test]
fn parse_utc_examples() {
    assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_utc("2006-12-19T17:58:35Z"), Some(1_166_551_115));
    assert_eq!(parse_utc("2006-12-19T17:58:35.123Z"), Some(1_166_551_115));
    assert_eq!(parse_utc("2006-12-19T17:58:35-06:00"), None);
}

#[tokio::test]
async fn account_disco_and_last_activity() {
    let server = Server::start();
    server.add_user("alice@localhost", "apw");
    server.add_user("bob@localhost", "bpw");
    let mut alice = client::login(&server, "alice@localhost", "apw", "a").await;
    let mut bob = client::login(&server, "bob@localhost", "bpw", "b").await;

    // The owner: account/registered (XEP-0030 §3.1), answered by the server.
    let reply = get(&mut alice, "i1", "alice@localhost", INFO).await;
    assert_eq!(reply.attr("from"), Some("alice@localhost"));
    let query = result(&reply, "query", DISCO_INFO);
    let identity = query.get_child("identity", DISCO_INFO).expect("identity");
    assert_eq!(identity.attr("category"), Some("account"));
    assert_eq!(identity.attr("type"), Some("registered"));
    assert!(features(query).iter().any(|f| f == DISCO_ITEMS));

    // Someone not subscribed to Alice's presence learns nothing (XEP-0030 §8).
    let reply = get(&mut bob, "i2", "alice@localhost", INFO).await;
    assert_eq!(condition(&reply), "service-unavailable");

    // No such account, or no such node.
    let reply = get(&mut bob, "i3", "nobody@localhost", INFO).await;
    assert_eq!(condition(&reply), "service-unavailable");
    let reply = get(
        &mut alice,
        "i4",
        "alice@localhost",
        &format!("<query xmlns='{DISCO_INFO}' node='urn:nonexistent'/>"),
    )
    .await;
    assert_eq!(condition(&reply), "item-not-found");

    // disco#items on an account: empty, for the owner and (XEP-0030 §8) for others.
    for (c, id) in [(&mut alice, "it1"), (&mut bob, "it2")] {
        let reply = get(
            c,
            id,
            "alice@localhost",
            &format!("<query xmlns='{DISCO_ITEMS}'/>"),
        )
        .await;
        assert_eq!(result(&reply, "query", DISCO_ITEMS).children().count(), 0);
    }

    // XEP-0012 §3: online means 0 and no text; others may not know.
    let reply = get(
        &mut alice,
        "l1",
        "alice@localhost",
        "<query xmlns='jabber:iq:last'/>",
    )
    .await;
    let last = result(&reply, "query", "jabber:iq:last");
    assert_eq!(last.attr("seconds"), Some("0"));
    assert_eq!(last.text(), "");
    let reply = get(
        &mut bob,
        "l2",
        "alice@localhost",
        "<query xmlns='jabber:iq:last'/>",
    )
    .await;
    assert_eq!(condition(&reply), "forbidden");
    let error = reply.get_child("error", CLIENT).expect("error");
    assert_eq!(error.attr("type"), Some("auth"));
}

/// Once a user's last available session leaves, its logout time and status
/// are stored (read back from the server's own SQLite file).
#[tokio::test]
async fn logout_is_recorded() {
    let server = Server::start();
    server.add_user("alice@localhost", "apw");
    let mut alice = client::login(&server, "alice@localhost", "apw", "a").await;
    alice.send("<presence/>").await;
    alice
        .send("<presence type='unavailable'><status>Heading Home</status></presence>")
        .await;
    alice.send("</stream:stream>").await;
    let _ = alice.read_to_close(WAIT).await;

    let url = format!("sqlite://{}", server.data_dir().join("jaseur.db").display());
    let storage = Storage::open(&url, 1)
        .await
        .expect("open the server's database");
    let user = BareJid::new("alice@localhost").expect("jid");
    let deadline = std::time::Instant::now() + WAIT;
    let (stamp, status) = loop {
        if let Some(found) = storage.last_activity(&user).await.expect("read") {
            break found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no last activity recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, "Heading Home");
    assert!(stamp > 1_700_000_000_000_000, "µs since the epoch");
    storage.close().await;
}

async fn last_activity_contract(storage: &Storage) {
    let alice = BareJid::new("alice@example.org").expect("jid");
    let bob = BareJid::new("bob@example.org").expect("jid");
    let other = BareJid::new("alice@other.org").expect("jid");
    assert_eq!(storage.last_activity(&alice).await.expect("get"), None);

    storage
        .record_last_activity(&alice, 1_000, "Heading Home")
        .await
        .expect("record");
    storage
        .record_last_activity(&bob, 2_000, "")
        .await
        .expect("record");
    assert_eq!(
        storage.last_activity(&alice).await.expect("get"),
        Some((1_000, "Heading Home".to_owned()))
    );
    assert_eq!(
        storage.last_activity(&other).await.expect("get"),
        None,
        "accounts are per domain"
    );

    // Only the latest logout is kept.
    storage
        .record_last_activity(&alice, 1_700_000_000_000_000, "Bed")
        .await
        .expect("record again");
    assert_eq!(
        storage.last_activity(&alice).await.expect("get"),
        Some((1_700_000_000_000_000, "Bed".to_owned()))
    );

    storage.remove_last_activity(&alice).await.expect("remove");
    storage
        .remove_last_activity(&alice)
        .await
        .expect("remove again is fine");
    assert_eq!(storage.last_activity(&alice).await.expect("get"), None);
    assert_eq!(
        storage.last_activity(&bob).await.expect("get"),
        Some((2_000, String::new()))
    );
}

#[tokio::test]
async fn last_activity_contract_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("j.db").display());
    let storage = Storage::open(&url, 2).await.expect("open sqlite");
    last_activity_contract(&storage).await;
    storage.close().await;
}

#[tokio::test]
async fn last_activity_contract_on_postgres() {
    let url = common::fresh_pg().await;
    let storage = Storage::open(&url, 2).await.expect("open postgres");
    last_activity_contract(&storage).await;
    storage.close().await;
}
