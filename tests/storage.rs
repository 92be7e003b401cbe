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
