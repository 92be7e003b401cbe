//! The MUC store's contract (rooms and affiliations), the same cases on SQLite
//! and on a real PostgreSQL, each in its own fresh database.

mod common;

use jaseur::muc::{Affiliation, MucStore, StoredAffiliation, StoredRoom};
use jaseur::storage::Storage;
use jid::BareJid;

fn jid(s: &str) -> BareJid {
    BareJid::new(s).expect("jid")
}

fn entry(who: &str, affiliation: Affiliation, reason: Option<&str>) -> StoredAffiliation {
    StoredAffiliation {
        jid: jid(who),
        affiliation,
        reason: reason.map(str::to_owned),
    }
}

const SERVICE: &str = "conference.example.org";

async fn contract(storage: &Storage) {
    let salon = jid("salon@conference.example.org");
    let atelier = jid("atelier@conference.example.org");
    assert!(storage.rooms(SERVICE).await.expect("rooms").is_empty());

    let mut room = StoredRoom {
        jid: salon.clone(),
        config: "name = \"Le salon\"\npersistent = true\n".into(),
        subject: None,
    };
    storage.save_room(&room).await.expect("save");
    storage
        .save_room(&StoredRoom {
            jid: atelier.clone(),
            config: "persistent = true\n".into(),
            subject: Some(("Ordre du jour : « café »".into(), "Zoé".into())),
        })
        .await
        .expect("save");
    // Another service's room is not listed.
    storage
        .save_room(&StoredRoom {
            jid: jid("salon@conference.other.org"),
            config: String::new(),
            subject: None,
        })
        .await
        .expect("save elsewhere");
    let rooms = storage.rooms(SERVICE).await.expect("rooms");
    assert_eq!(
        rooms.iter().map(|r| r.jid.clone()).collect::<Vec<_>>(),
        vec![atelier.clone(), salon.clone()],
        "sorted by name"
    );
    assert_eq!(
        rooms[0].subject,
        Some(("Ordre du jour : « café »".into(), "Zoé".into()))
    );
    assert_eq!(rooms[1], room);

    // Saving again replaces configuration and subject, and clears a subject.
    room.config = "name = \"Salon\"\n".into();
    room.subject = Some(("Bienvenue".into(), "Alice".into()));
    storage.save_room(&room).await.expect("replace");
    let got = storage.rooms(SERVICE).await.expect("rooms");
    assert_eq!(got.len(), 2);
    assert_eq!(got[1], room);
    room.subject = None;
    storage.save_room(&room).await.expect("clear subject");
    assert_eq!(
        storage.rooms(SERVICE).await.expect("rooms")[1].subject,
        None
    );

    // Affiliations: set, replace, delete with None, per room.
    assert!(storage.affiliations(&salon).await.expect("affs").is_empty());
    let owner = entry("alice@example.org", Affiliation::Owner, None);
    let member = entry("bob@example.org", Affiliation::Member, None);
    let banned = entry("mallory@example.org", Affiliation::Outcast, Some("spam"));
    for e in [&owner, &member, &banned] {
        storage.set_affiliation(&salon, e).await.expect("set");
    }
    storage
        .set_affiliation(
            &atelier,
            &entry("carol@example.org", Affiliation::Admin, None),
        )
        .await
        .expect("set");
    assert_eq!(
        storage.affiliations(&salon).await.expect("affs"),
        vec![owner.clone(), member.clone(), banned.clone()],
        "sorted by JID, reasons kept"
    );
    let promoted = entry("bob@example.org", Affiliation::Admin, None);
    storage
        .set_affiliation(&salon, &promoted)
        .await
        .expect("replace");
    storage
        .set_affiliation(
            &salon,
            &entry("mallory@example.org", Affiliation::None, None),
        )
        .await
        .expect("none deletes");
    // Setting none for someone without a row is harmless.
    storage
        .set_affiliation(
            &salon,
            &entry("nobody@example.org", Affiliation::None, None),
        )
        .await
        .expect("none again");
    assert_eq!(
        storage.affiliations(&salon).await.expect("affs"),
        vec![owner.clone(), promoted.clone()]
    );
    assert_eq!(
        storage.affiliations(&atelier).await.expect("affs").len(),
        1,
        "rooms do not share affiliations"
    );

    // Deleting a room deletes its affiliations, and only its own.
    assert!(storage.delete_room(&salon).await.expect("delete"));
    assert!(!storage.delete_room(&salon).await.expect("delete again"));
    assert!(storage.affiliations(&salon).await.expect("affs").is_empty());
    assert_eq!(
        storage
            .rooms(SERVICE)
            .await
            .expect("rooms")
            .iter()
            .map(|r| r.jid.clone())
            .collect::<Vec<_>>(),
        vec![atelier.clone()]
    );
    assert_eq!(storage.affiliations(&atelier).await.expect("affs").len(), 1);
    assert_eq!(
        storage
            .rooms("conference.other.org")
            .await
            .expect("rooms")
            .len(),
        1
    );
    // A room re-created under the same name starts without affiliations.
    storage.save_room(&room).await.expect("re-create");
    assert!(storage.affiliations(&salon).await.expect("affs").is_empty());

    // Registered nicks: one per member, unique in the room, gone with the room.
    let (bob, carol) = (jid("bob@example.org"), jid("carol@example.org"));
    storage
        .set_nick(&salon, &bob, Some("Robert"))
        .await
        .expect("nick");
    storage
        .set_nick(&salon, &bob, Some("Bobby"))
        .await
        .expect("renamed");
    assert!(
        storage
            .set_nick(&salon, &carol, Some("Bobby"))
            .await
            .is_err(),
        "a nick is unique in a room"
    );
    storage
        .set_nick(&salon, &carol, Some("Robert"))
        .await
        .expect("freed");
    assert_eq!(
        storage.nicks(&salon).await.expect("nicks"),
        vec![
            (bob.clone(), "Bobby".to_owned()),
            (carol.clone(), "Robert".to_owned())
        ]
    );
    storage
        .set_nick(&salon, &carol, None)
        .await
        .expect("dropped");
    assert_eq!(storage.nicks(&salon).await.expect("nicks").len(), 1);
    assert!(storage.delete_room(&salon).await.expect("delete"));
    assert!(storage.nicks(&salon).await.expect("nicks").is_empty());
    storage.save_room(&room).await.expect("re-create");

    // A JID without a node is not a room: an error, not a row under "".
    assert!(
        storage
            .save_room(&StoredRoom {
                jid: jid("conference.example.org"),
                config: String::new(),
                subject: None,
            })
            .await
            .is_err()
    );
}

#[tokio::test]
async fn muc_contract_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    let storage = Storage::open(&url, 2).await.expect("open sqlite");
    contract(&storage).await;
    storage.close().await;
    // Rooms survive a reopen (what a server restart relies on).
    let again = Storage::open(&url, 2).await.expect("reopen");
    assert_eq!(again.rooms(SERVICE).await.expect("rooms").len(), 2);
}

#[tokio::test]
async fn muc_contract_on_postgres() {
    let url = common::fresh_pg().await;
    let storage = Storage::open(&url, 2).await.expect("open postgres");
    contract(&storage).await;
    storage.close().await;
    let again = Storage::open(&url, 2).await.expect("reopen");
    assert_eq!(again.rooms(SERVICE).await.expect("rooms").len(), 2);
}
