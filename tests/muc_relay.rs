//! iq requests to an occupant (`room/nick`) are relayed by the room, so that
//! clients can fetch an occupant's vCard (avatar) without learning who it is.

mod common;

use common::Server;
use common::client::attr;
use common::muc::{assert_error, create_instant, iq, join, online, wait_for};

#[tokio::test]
async fn vcard_requests_to_occupants_are_relayed_both_ways() {
    let server = Server::start();
    for u in ["alice", "bob", "carol"] {
        server.add_user(&format!("{u}@localhost"), "pw");
    }
    let mut alice = online(&server, "alice", "a").await;
    create_instant(&mut alice, "salon", "Alice").await;
    let mut bob = online(&server, "bob", "b").await;
    join(&mut bob, "salon", "Bob").await;

    alice
        .send("<iq type='get' id='v1' to='salon@conference.localhost/Bob'><vCard xmlns='vcard-temp'/></iq>")
        .await;
    // Bob's client sees the question as from Alice's nick, not her address.
    let asked = wait_for(&mut bob, "relayed vCard request", |s| {
        s.starts_with("<iq") && s.contains("vcard-temp")
    })
    .await;
    assert_eq!(
        attr(&asked, "from").as_deref(),
        Some("salon@conference.localhost/Alice"),
        "{asked}"
    );
    assert!(!asked.contains("alice@localhost"), "{asked}");
    let relay_id = attr(&asked, "id").expect("id");
    assert_ne!(relay_id, "v1");
    // A forged answer from someone else is not taken.
    alice
        .send(&format!(
            "<iq type='result' id='{relay_id}' to='salon@conference.localhost/Alice'>\
             <vCard xmlns='vcard-temp'><FN>Faux</FN></vCard></iq>"
        ))
        .await;
    bob.send(&format!(
        "<iq type='result' id='{relay_id}' to='salon@conference.localhost/Alice'>\
         <vCard xmlns='vcard-temp'><FN>Bob Morane</FN></vCard></iq>"
    ))
    .await;
    let answer = wait_for(&mut alice, "the answer", |s| {
        s.starts_with("<iq") && attr(s, "id").as_deref() == Some("v1")
    })
    .await;
    assert_eq!(
        attr(&answer, "from").as_deref(),
        Some("salon@conference.localhost/Bob"),
        "{answer}"
    );
    assert!(
        answer.contains("Bob Morane") && !answer.contains("Faux"),
        "{answer}"
    );

    // Someone outside the room cannot ask occupants anything.
    let mut carol = online(&server, "carol", "c").await;
    let r = iq(
        &mut carol,
        "v2",
        "<iq type='get' id='ID' to='salon@conference.localhost/Bob'><vCard xmlns='vcard-temp'/></iq>",
    )
    .await;
    assert_error(&r, "not-acceptable", "");
}
