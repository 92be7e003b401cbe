//! Registered nicknames (XEP-0045 §7.10, §7.11, §7.2.9): a member reserves a
//! nick in a room, nobody else may take it, and the reservation survives a
//! restart and ends with the membership.

mod common;

use common::Server;
use common::muc::{
    self, assert_error, assert_result, create_room, iq, join, online, room, set_affiliation,
    try_join,
};

fn register(nick: &str) -> String {
    format!(
        "<iq type='set' id='ID' to='{}'><query xmlns='jabber:iq:register'>\
         <x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>\
         <field var='muc#register_roomnick'><value>{nick}</value></field></x></query></iq>",
        room("club")
    )
}

#[tokio::test]
async fn a_registered_nick_is_reserved_for_its_member() {
    let mut server = Server::start();
    for u in ["alice", "bob", "carol"] {
        server.add_user(&format!("{u}@localhost"), "pw");
    }
    let mut alice = online(&server, "alice", "a").await;
    create_room(
        &mut alice,
        "club",
        "Alice",
        &[("muc#roomconfig_persistentroom", "1")],
    )
    .await;

    // The form, then the registration (which makes bob a member).
    let mut bob = online(&server, "bob", "b").await;
    let form = iq(
        &mut bob,
        "f1",
        &format!(
            "<iq type='get' id='ID' to='{}'><query xmlns='jabber:iq:register'/></iq>",
            room("club")
        ),
    )
    .await;
    assert!(form.contains("muc#register_roomnick"), "{form}");
    assert_result(&iq(&mut bob, "r1", &register("Robert")).await);
    let members = muc::admin_get(&mut alice, "m1", "club", "affiliation='member'").await;
    assert!(members.contains("bob@localhost"), "{members}");
    // Asking again says it is registered.
    let again = iq(
        &mut bob,
        "f2",
        &format!(
            "<iq type='get' id='ID' to='{}'><query xmlns='jabber:iq:register'/></iq>",
            room("club")
        ),
    )
    .await;
    assert!(
        again.contains("registered") && again.contains("Robert"),
        "{again}"
    );
    // §7.11: the reserved nick through disco.
    let info = iq(
        &mut bob,
        "d1",
        &format!(
            "<iq type='get' id='ID' to='{}'><query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/></iq>",
            room("club")
        ),
    )
    .await;
    assert!(
        info.contains("name='Robert'") || info.contains("name=\"Robert\""),
        "{info}"
    );

    // Carol can neither take nor register it; bob enters with it.
    let mut carol = online(&server, "carol", "c").await;
    let e = try_join(&mut carol, "club", "Robert")
        .await
        .expect_err("reserved");
    assert_error(&e, "conflict", "cancel");
    assert_error(
        &iq(&mut carol, "r2", &register("Robert")).await,
        "conflict",
        "cancel",
    );
    join(&mut bob, "club", "Robert").await;

    // The reservation survives a restart.
    drop((alice, bob, carol));
    server.stop();
    server.launch();
    let mut carol = online(&server, "carol", "c").await;
    let e = try_join(&mut carol, "club", "Robert")
        .await
        .expect_err("still reserved");
    assert_error(&e, "conflict", "cancel");

    // Losing the membership ends the reservation.
    let mut alice = online(&server, "alice", "a").await;
    join(&mut alice, "club", "Alice").await;
    assert_result(&set_affiliation(&mut alice, "club", "bob@localhost", "none").await);
    join(&mut carol, "club", "Robert").await;
}
