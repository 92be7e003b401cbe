//! vCards (XEP-0054) and private XML storage (XEP-0049): client
//! conversations with the real server over TLS, and the two stores' contract
//! on SQLite and PostgreSQL.

mod common;
use common::client::attr;
use common::client::{iq, is_error};

use common::Server;
use common::client::{self};
use jaseur::features::private::PrivateStore;
use jaseur::features::vcard::VCardStore;
use jaseur::storage::Storage;
use jid::BareJid;

const BOOKMARKS: &str = "<storage xmlns='storage:bookmarks'><conference jid='room@conference.localhost' \
     autojoin='true' name='Room'><nick>alice</nick></conference></storage>";

/// A 1x1 PNG, as a client would put in PHOTO/BINVAL (XEP-0153).
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

fn vcard_set(fill: &str) -> String {
    format!(
        "<iq type='set' id='ID'><vCard xmlns='vcard-temp'><FN>Alice Liddell</FN>\
         <NICKNAME>alice</NICKNAME><PHOTO><TYPE>image/png</TYPE><BINVAL>{PNG}</BINVAL></PHOTO>\
         <DESC>{fill}</DESC></vCard></iq>"
    )
}

#[tokio::test]
async fn vcard_set_get_and_read_by_others() {
    let server = Server::start();
    for u in ["alice", "bob", "carol"] {
        server.add_user(&format!("{u}@localhost"), "secret");
    }
    let mut alice = client::login(&server, "alice@localhost", "secret", "a").await;
    let mut bob = client::login(&server, "bob@localhost", "secret", "b").await;

    // No vCard yet: the owner gets an empty one (XEP-0054 §3.1).
    let r = iq(
        &mut alice,
        "g0",
        "<iq type='get' id='ID'><vCard xmlns='vcard-temp'/></iq>",
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");
    assert!(r.contains("<vCard xmlns='vcard-temp'/>"), "{r}");

    let r = iq(&mut alice, "s1", &vcard_set("hello")).await;
    assert!(r.contains("type='result'"), "{r}");

    // Read back by the owner, without and with 'to'.
    for (id, to) in [("g1", ""), ("g2", " to='alice@localhost'")] {
        let r = iq(
            &mut alice,
            id,
            &format!("<iq type='get' id='ID'{to}><vCard xmlns='vcard-temp'/></iq>"),
        )
        .await;
        assert!(r.contains("type='result'"), "{r}");
        assert!(r.contains("<vCard xmlns='vcard-temp'>"), "{r}");
        assert!(r.contains("<FN>Alice Liddell</FN>"), "{r}");
        assert!(r.contains(&format!("<BINVAL>{PNG}</BINVAL>")), "{r}");
    }

    // vCards are public: bob reads alice's.
    let r = iq(
        &mut bob,
        "b1",
        "<iq type='get' id='ID' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>",
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");
    assert_eq!(attr(&r, "from").as_deref(), Some("alice@localhost"), "{r}");
    assert!(r.contains("<NICKNAME>alice</NICKNAME>"), "{r}");
    assert!(r.contains(PNG), "{r}");

    // Someone without a vCard: item-not-found for others (XEP-0054 §3.3).
    let r = iq(
        &mut bob,
        "b2",
        "<iq type='get' id='ID' to='carol@localhost'><vCard xmlns='vcard-temp'/></iq>",
    )
    .await;
    assert!(is_error(&r, "item-not-found"), "{r}");

    // Nobody sets someone else's vCard, and alice's is unchanged.
    let r = iq(
        &mut bob,
        "b3",
        "<iq type='set' id='ID' to='alice@localhost'><vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard></iq>",
    )
    .await;
    assert!(is_error(&r, "forbidden"), "{r}");
    let r = iq(
        &mut alice,
        "g3",
        "<iq type='get' id='ID'><vCard xmlns='vcard-temp'/></iq>",
    )
    .await;
    assert!(r.contains("Alice Liddell") && !r.contains("Mallory"), "{r}");

    // A new set replaces the whole vCard.
    let r = iq(
        &mut alice,
        "s2",
        "<iq type='set' id='ID'><vCard xmlns='vcard-temp'><FN>Alice</FN></vCard></iq>",
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");
    let r = iq(
        &mut alice,
        "g4",
        "<iq type='get' id='ID'><vCard xmlns='vcard-temp'/></iq>",
    )
    .await;
    assert!(r.contains("<FN>Alice</FN>") && !r.contains("PHOTO"), "{r}");
}

#[tokio::test]
async fn oversized_vcard_is_not_acceptable() {
    let server = Server::start_with("[limits]\nvcard_size = 2048\n");
    server.add_user("alice@localhost", "secret");
    let mut alice = client::login(&server, "alice@localhost", "secret", "a").await;
    let r = iq(&mut alice, "s1", &vcard_set(&"x".repeat(3000))).await;
    assert!(is_error(&r, "not-acceptable"), "{r}");
    assert!(r.contains("2048 bytes"), "the error says the limit: {r}");
    // Under the limit it is fine, and the refused one was not stored.
    let r = iq(
        &mut alice,
        "g1",
        "<iq type='get' id='ID'><vCard xmlns='vcard-temp'/></iq>",
    )
    .await;
    assert!(r.contains("<vCard xmlns='vcard-temp'/>"), "{r}");
    let r = iq(&mut alice, "s2", &vcard_set("short")).await;
    assert!(r.contains("type='result'"), "{r}");
}

#[tokio::test]
async fn private_storage_keeps_legacy_bookmarks() {
    let server = Server::start();
    server.add_user("alice@localhost", "secret");
    server.add_user("bob@localhost", "secret");
    let mut alice = client::login(&server, "alice@localhost", "secret", "a").await;

    // Nothing stored: the element asked for comes back empty.
    let get = "<iq type='get' id='ID'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>";
    let r = iq(&mut alice, "p0", get).await;
    assert!(r.contains("type='result'"), "{r}");
    assert!(r.contains("<storage xmlns='storage:bookmarks'/>"), "{r}");

    // Gajim and Pidgin store bookmarks like this.
    let r = iq(
        &mut alice,
        "p1",
        &format!(
            "<iq type='set' id='ID'><query xmlns='jabber:iq:private'>{BOOKMARKS}</query></iq>"
        ),
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");

    // Read back, from another session too.
    let mut phone = client::login(&server, "alice@localhost", "secret", "phone").await;
    for c in [&mut alice, &mut phone] {
        let r = iq(c, "p2", get).await;
        assert!(r.contains("<query xmlns='jabber:iq:private'>"), "{r}");
        assert!(r.contains("<storage xmlns='storage:bookmarks'>"), "{r}");
        assert!(r.contains("jid='room@conference.localhost'"), "{r}");
        assert!(
            r.contains("autojoin='true'") && r.contains("name='Room'"),
            "{r}"
        );
        assert!(r.contains("<nick>alice</nick>"), "{r}");
    }

    // Another namespace is kept apart.
    let r = iq(
        &mut alice,
        "p3",
        "<iq type='get' id='ID'><query xmlns='jabber:iq:private'><storage xmlns='storage:rosternotes'/></query></iq>",
    )
    .await;
    assert!(r.contains("<storage xmlns='storage:rosternotes'/>"), "{r}");
    assert!(!r.contains("conference"), "{r}");

    // Storing an empty element deletes.
    let r = iq(
        &mut alice,
        "p4",
        "<iq type='set' id='ID'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>",
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");
    let r = iq(&mut alice, "p5", get).await;
    assert!(r.contains("<storage xmlns='storage:bookmarks'/>"), "{r}");
}

#[tokio::test]
async fn private_storage_rules() {
    let server = Server::start_with("[limits]\nprivate_size = 1024\n");
    server.add_user("alice@localhost", "secret");
    server.add_user("bob@localhost", "secret");
    let mut alice = client::login(&server, "alice@localhost", "secret", "a").await;
    let mut bob = client::login(&server, "bob@localhost", "secret", "b").await;

    // Only the owner (XEP-0049: forbidden).
    for (id, kind) in [("o1", "get"), ("o2", "set")] {
        let r = iq(
            &mut bob,
            id,
            &format!("<iq type='{kind}' id='ID' to='alice@localhost'><query xmlns='jabber:iq:private'>{BOOKMARKS}</query></iq>"),
        )
        .await;
        assert!(is_error(&r, "forbidden"), "{r}");
    }
    // Exactly one child...
    for (id, inner) in [("n0", ""), ("n2", "<a xmlns='x:a'/><b xmlns='x:b'/>")] {
        let r = iq(
            &mut alice,
            id,
            &format!(
                "<iq type='get' id='ID'><query xmlns='jabber:iq:private'>{inner}</query></iq>"
            ),
        )
        .await;
        assert!(is_error(&r, "bad-request"), "{r}");
    }
    // ...in a namespace of its own.
    for (id, child) in [
        ("r1", "<storage><x/></storage>"),
        ("r2", "<x xmlns='jabber:client'>1</x>"),
        ("r3", "<x xmlns='jabber:server'>1</x>"),
    ] {
        let r = iq(
            &mut alice,
            id,
            &format!(
                "<iq type='set' id='ID'><query xmlns='jabber:iq:private'>{child}</query></iq>"
            ),
        )
        .await;
        assert!(is_error(&r, "not-acceptable"), "{r}");
    }

    // The quota counts everything the account stores; replacing an element
    // frees what it held.
    let blob = |ns: &str| {
        format!(
            "<iq type='set' id='ID'><query xmlns='jabber:iq:private'><data xmlns='{ns}'>{}</data></query></iq>",
            "y".repeat(500)
        )
    };
    let r = iq(&mut alice, "q1", &blob("x:one")).await;
    assert!(r.contains("type='result'"), "{r}");
    let r = iq(&mut alice, "q2", &blob("x:two")).await;
    assert!(is_error(&r, "not-acceptable"), "{r}");
    assert!(r.contains("1024 bytes"), "{r}");
    let r = iq(&mut alice, "q3", &blob("x:one")).await;
    assert!(r.contains("type='result'"), "replacing fits: {r}");
    let r = iq(
        &mut alice,
        "q4",
        "<iq type='get' id='ID'><query xmlns='jabber:iq:private'><data xmlns='x:two'/></query></iq>",
    )
    .await;
    assert!(
        r.contains("<data xmlns='x:two'/>"),
        "the refused one was not stored: {r}"
    );
}

// ---------------------------------------------------------------------------
// Store contracts.

fn jid(s: &str) -> BareJid {
    BareJid::new(s).expect("jid")
}

async fn contract(storage: &Storage) {
    let alice = jid("alice@example.org");
    let bob = jid("bob@example.org");

    // vCards.
    assert_eq!(storage.get_vcard(&alice).await.expect("get"), None);
    let v1 = "<vCard xmlns=\"vcard-temp\"><FN>Alice</FN></vCard>";
    let v2 =
        "<vCard xmlns=\"vcard-temp\"><FN>Alice L.</FN><PHOTO><BINVAL>AAAA</BINVAL></PHOTO></vCard>";
    storage.set_vcard(&alice, v1).await.expect("set");
    storage.set_vcard(&alice, v2).await.expect("replace");
    storage.set_vcard(&bob, v1).await.expect("set bob");
    assert_eq!(
        storage.get_vcard(&alice).await.expect("get").as_deref(),
        Some(v2)
    );
    VCardStore::remove_user(storage, &alice)
        .await
        .expect("remove");
    assert_eq!(storage.get_vcard(&alice).await.expect("get"), None);
    assert_eq!(
        storage.get_vcard(&bob).await.expect("get").as_deref(),
        Some(v1)
    );

    // Private XML.
    let bm = "<storage xmlns=\"storage:bookmarks\"><conference jid=\"r@c\"/></storage>";
    let notes = "<storage xmlns=\"storage:rosternotes\"><note jid=\"x@y\">hi</note></storage>";
    assert_eq!(
        storage
            .get_private(&alice, "storage:bookmarks", "storage")
            .await
            .expect("get"),
        None
    );
    assert!(
        storage
            .set_private(&alice, "storage:bookmarks", "storage", bm, 1000)
            .await
            .expect("set")
    );
    assert!(
        storage
            .set_private(&alice, "storage:rosternotes", "storage", notes, 1000)
            .await
            .expect("set")
    );
    assert!(
        storage
            .set_private(&bob, "storage:bookmarks", "storage", bm, 1000)
            .await
            .expect("set")
    );
    assert_eq!(
        storage
            .get_private(&alice, "storage:bookmarks", "storage")
            .await
            .expect("get")
            .as_deref(),
        Some(bm)
    );
    assert_eq!(
        storage
            .get_private(&alice, "storage:rosternotes", "storage")
            .await
            .expect("get")
            .as_deref(),
        Some(notes)
    );
    // Same namespace, another element name: a separate entry.
    assert_eq!(
        storage
            .get_private(&alice, "storage:bookmarks", "other")
            .await
            .expect("get"),
        None
    );
    // The quota is per account, counting what the write replaces only once.
    let total = bm.len() + notes.len();
    assert!(
        !storage
            .set_private(&alice, "x:big", "data", &"z".repeat(50), total + 49)
            .await
            .expect("over quota"),
        "refused beyond the quota"
    );
    assert_eq!(
        storage
            .get_private(&alice, "x:big", "data")
            .await
            .expect("get"),
        None
    );
    assert!(
        storage
            .set_private(&alice, "storage:bookmarks", "storage", bm, total)
            .await
            .expect("replace at quota")
    );
    storage
        .remove_private(&alice, "storage:rosternotes", "storage")
        .await
        .expect("remove");
    assert_eq!(
        storage
            .get_private(&alice, "storage:rosternotes", "storage")
            .await
            .expect("get"),
        None
    );
    PrivateStore::remove_user(storage, &alice)
        .await
        .expect("remove user");
    assert_eq!(
        storage
            .get_private(&alice, "storage:bookmarks", "storage")
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        storage
            .get_private(&bob, "storage:bookmarks", "storage")
            .await
            .expect("get")
            .as_deref(),
        Some(bm),
        "other accounts keep theirs"
    );
}

#[tokio::test]
async fn contract_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("j.db").display());
    let storage = Storage::open(&url, 4).await.expect("open sqlite");
    contract(&storage).await;
    storage.close().await;
}

#[tokio::test]
async fn contract_on_postgres() {
    let url = common::fresh_pg().await;
    let storage = Storage::open(&url, 4).await.expect("open postgres");
    contract(&storage).await;
    storage.close().await;
}
