//! The storage contract, run on both databases: the same cases on SQLite and
//! on a real PostgreSQL (each run in its own fresh database, so tests can run
//! in parallel), plus the real server running on PostgreSQL.

mod common;

use jaseur::auth::{AccountStore, StoredCredentials};
use jaseur::features::offline::OfflineStore;
use jaseur::storage::{Backend, Storage};
use jid::BareJid;

fn jid(s: &str) -> BareJid {
    BareJid::new(s).expect("jid")
}

async fn contract(storage: &Storage) {
    let alice = jid("alice@example.org");
    let creds = StoredCredentials::from_password("pencil", 4096).expect("derive");
    assert!(storage.create(&alice, &creds).await.expect("create"));
    assert!(
        !storage.create(&alice, &creds).await.expect("duplicate"),
        "duplicate create must report false"
    );
    let loaded = storage
        .credentials(&alice)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(loaded, creds);
    assert!(loaded.verify_password("pencil"));
    assert_eq!(
        storage
            .credentials(&jid("nobody@example.org"))
            .await
            .expect("get"),
        None
    );

    let other = StoredCredentials::from_password("other", 4096).expect("derive");
    assert!(storage.set_credentials(&alice, &other).await.expect("set"));
    assert!(
        !storage
            .set_credentials(&jid("nobody@example.org"), &other)
            .await
            .expect("set")
    );
    assert!(
        storage
            .credentials(&alice)
            .await
            .expect("get")
            .expect("exists")
            .verify_password("other")
    );

    let many: Vec<_> = ["carol", "bob", "alice"]
        .iter()
        .map(|u| (jid(&format!("{u}@example.org")), creds.clone()))
        .collect();
    assert_eq!(
        storage.create_many(&many).await.expect("bulk"),
        2,
        "alice existed already"
    );
    assert_eq!(
        storage.list("example.org").await.expect("list"),
        vec!["alice", "bob", "carol"]
    );
    assert!(storage.list("other.org").await.expect("list").is_empty());

    for i in 0..5 {
        storage
            .store_offline(&alice, &format!("<message id='{i}'/>"))
            .await
            .expect("store");
    }
    storage
        .store_offline(&jid("bob@example.org"), "<message id='b'/>")
        .await
        .expect("store");
    assert_eq!(storage.count_offline(&alice).await.expect("count"), 5);
    let first = storage.load_offline(&alice, 3).await.expect("load");
    assert_eq!(first.len(), 3);
    assert_eq!(first[0].stanza, "<message id='0'/>", "oldest first");
    assert!(first[0].id < first[2].id);
    assert!(
        first[0].stamp > 1_700_000_000_000_000,
        "stamps are µs since the epoch"
    );
    storage
        .remove_offline(&alice, first[2].id)
        .await
        .expect("remove");
    let rest = storage.load_offline(&alice, 10).await.expect("load");
    assert_eq!(
        rest.iter().map(|m| m.stanza.as_str()).collect::<Vec<_>>(),
        ["<message id='3'/>", "<message id='4'/>"]
    );

    assert!(storage.delete(&alice).await.expect("delete"));
    assert!(!storage.delete(&alice).await.expect("delete again"));
    assert_eq!(
        storage.count_offline(&alice).await.expect("count"),
        0,
        "deleting an account deletes its messages"
    );
    assert_eq!(
        storage
            .count_offline(&jid("bob@example.org"))
            .await
            .expect("count"),
        1
    );
}

#[tokio::test]
async fn contract_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("sub/j.db").display());
    let storage = Storage::open(&url, 4).await.expect("open sqlite");
    assert_eq!(storage.backend(), Backend::Sqlite);
    contract(&storage).await;
    storage.close().await;
    // Migrations are idempotent: reopening the same file works and keeps the data.
    let again = Storage::open(&url, 4).await.expect("reopen");
    assert_eq!(
        again.list("example.org").await.expect("list"),
        vec!["bob", "carol"]
    );
}

#[tokio::test]
async fn contract_on_postgres() {
    let url = common::fresh_pg().await;
    let storage = Storage::open(&url, 4).await.expect("open postgres");
    assert_eq!(storage.backend(), Backend::Postgres);
    contract(&storage).await;
    storage.close().await;
    let again = Storage::open(&url, 4).await.expect("reopen");
    assert_eq!(
        again.list("example.org").await.expect("list"),
        vec!["bob", "carol"]
    );
}

#[tokio::test]
async fn in_memory_sqlite_is_refused() {
    assert!(Storage::open("sqlite::memory:", 1).await.is_err());
}

#[tokio::test]
async fn server_runs_on_postgres() {
    let url = common::fresh_pg().await;
    let server = common::Server::start_with(&format!("[storage]\nurl = \"{url}\"\n"));
    server.add_user("alice@localhost", "secret");
    server.add_user("bob@localhost", "secret");
    let mut alice = common::client::login(&server, "alice@localhost", "secret", "a").await;
    // Bob is offline: the message is stored in PostgreSQL...
    alice
        .send("<message to='bob@localhost' type='chat' id='m1'><body>stored in pg</body></message>")
        .await;
    alice
        .send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    alice.expect("id='p1'").await;
    // ...and handed over with a delay stamp at bob's first available presence.
    let mut bob = common::client::login(&server, "bob@localhost", "secret", "b").await;
    bob.send("<presence/>").await;
    let m = bob.expect("</message>").await;
    assert!(m.contains("stored in pg"), "{m}");
    assert!(m.contains("urn:xmpp:delay"), "{m}");
}

async fn roster_contract(storage: &Storage) {
    use jaseur::features::roster::store::{RosterItem, RosterStore, Subscription};
    let alice = jid("alice@example.org");
    let bob = jid("bob@example.org");
    let carol = jid("carol@example.org");
    assert_eq!(
        storage.roster(&alice).await.expect("roster"),
        (Vec::new(), 0)
    );
    let mut item = RosterItem::new(bob.clone());
    item.name = Some("Bob l'Éponge".into());
    item.groups = vec!["Amis".into(), "Collègues".into()];
    item.ask = true;
    let v1 = storage.put_roster_item(&alice, &item).await.expect("put");
    let v2 = storage
        .put_roster_item(&alice, &RosterItem::new(carol.clone()))
        .await
        .expect("put");
    assert!(v2 > v1);
    let (items, version) = storage.roster(&alice).await.expect("roster");
    assert_eq!(version, v2);
    assert_eq!(items.len(), 2);
    let got = storage
        .roster_item(&alice, &bob)
        .await
        .expect("item")
        .expect("bob");
    assert_eq!(got.name.as_deref(), Some("Bob l'Éponge"));
    assert_eq!(
        got.groups,
        vec!["Amis".to_string(), "Collègues".to_string()]
    );
    assert!(got.ask && got.subscription == Subscription::None && got.version == v1);
    assert_eq!(storage.roster_size(&alice).await.expect("size"), 2);
    // Changing an item replaces its groups; removing leaves a tombstone for versioning.
    item.subscription = Subscription::Both;
    item.groups = vec!["Famille".into()];
    let v3 = storage.put_roster_item(&alice, &item).await.expect("put");
    let tomb = RosterItem {
        subscription: Subscription::Remove,
        ..RosterItem::new(carol.clone())
    };
    let v4 = storage
        .put_roster_item(&alice, &tomb)
        .await
        .expect("remove");
    let (changes, current) = storage.roster_changes(&alice, v2).await.expect("changes");
    assert_eq!(current, v4);
    assert_eq!(
        changes
            .iter()
            .map(|i| (i.contact.as_str().to_owned(), i.version))
            .collect::<Vec<_>>(),
        vec![
            ("bob@example.org".to_string(), v3),
            ("carol@example.org".to_string(), v4)
        ]
    );
    assert_eq!(changes[0].groups, vec!["Famille".to_string()]);
    assert_eq!(changes[1].subscription, Subscription::Remove);
    assert_eq!(
        storage.roster_item(&alice, &carol).await.expect("item"),
        None,
        "tombstones are not live items"
    );
    assert_eq!(storage.roster_size(&alice).await.expect("size"), 1);
    // Pending inbound requests.
    storage
        .store_request(&alice, &carol, "<presence type='subscribe'/>")
        .await
        .expect("store");
    storage
        .store_request(&alice, &carol, "<presence type='subscribe' id='again'/>")
        .await
        .expect("replace");
    let requests = storage.requests(&alice).await.expect("requests");
    assert_eq!(
        requests,
        vec![(
            carol.clone(),
            "<presence type='subscribe' id='again'/>".to_string()
        )]
    );
    assert!(storage.take_request(&alice, &carol).await.expect("take"));
    assert!(
        !storage
            .take_request(&alice, &carol)
            .await
            .expect("take again")
    );
    // Deleting the account deletes the roster.
    use jaseur::auth::{AccountStore, StoredCredentials};
    let creds = StoredCredentials::from_password("pw", 4096).expect("creds");
    storage.create(&alice, &creds).await.expect("account");
    assert!(storage.delete(&alice).await.expect("delete"));
    assert_eq!(
        storage.roster(&alice).await.expect("roster"),
        (Vec::new(), 0)
    );
}

#[tokio::test]
async fn roster_contract_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    roster_contract(&Storage::open(&url, 2).await.expect("open")).await;
}

#[tokio::test]
async fn roster_contract_on_postgres() {
    let url = common::fresh_pg().await;
    roster_contract(&Storage::open(&url, 2).await.expect("open")).await;
}
