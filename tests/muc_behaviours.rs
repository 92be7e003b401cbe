//! XEP-0045 behaviours real clients rely on (issue 13)

mod common;

use common::Server;
use common::client::{Client, WAIT, attr, next};
use common::muc::*;
use std::time::Duration;

/// A server on a fresh PostgreSQL database.
async fn pg_server() -> Server {
    let url = common::fresh_pg().await;
    Server::start_with(&format!("[storage]\nurl = \"{url}\"\n"))
}

/// The registration form submission (§7.10) for `nick` in `room_name`.
fn register_iq(room_name: &str, nick: &str) -> String {
    format!(
        "<iq type='set' id='ID' to='{}'><query xmlns='jabber:iq:register'>\
         <x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>\
         <field var='muc#register_roomnick'><value>{nick}</value></field></x></query></iq>",
        room(room_name)
    )
}

/// The registration cancellation (§7.10 / XEP-0077 §3.2).
fn unregister_iq(room_name: &str) -> String {
    format!(
        "<iq type='set' id='ID' to='{}'><query xmlns='jabber:iq:register'><remove/></query></iq>",
        room(room_name)
    )
}

/// The text of the `<status/>` child of a presence.
fn status_text(s: &str) -> Option<String> {
    parse(s)
        .children()
        .find(|c| c.name() == "status")
        .map(|c| c.text())
}

/// Everything that arrives within `d` (no stanza is expected to end it).
async fn collect_for(c: &mut Client, d: Duration) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + d;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return seen;
        }
        match next(c, left).await {
            Ok(s) => seen.push(s),
            Err(_) => return seen,
        }
    }
}

// ---- 2: leaving keeps the real JID for moderators ---------------------------

#[tokio::test]
async fn leaving_shows_the_real_jid_to_moderators_only() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    create_instant(&mut alice, "tea", "Alice").await;
    let mut bob = user(&server, "bob").await;
    join(&mut bob, "tea", "Bob").await;
    let mut carol = user(&server, "carol").await;
    join(&mut carol, "tea", "Carol").await;

    bob.send(&format!(
        "<presence type='unavailable' to='{}'><status>gone fishing</status></presence>",
        occ("tea", "Bob")
    ))
    .await;

    // The leaver: 110, role none, and its status text.
    let own = wait_unavailable(&mut bob, &occ("tea", "Bob")).await;
    assert!(has_status(&own, 110), "{own}");
    assert_eq!(item_attr(&own, "role").as_deref(), Some("none"), "{own}");
    assert_eq!(status_text(&own).as_deref(), Some("gone fishing"), "{own}");

    // The owner (a moderator) in a semi-anonymous room sees the real JID.
    let p = wait_unavailable(&mut alice, &occ("tea", "Bob")).await;
    assert!(!has_status(&p, 110), "{p}");
    assert_eq!(item_attr(&p, "role").as_deref(), Some("none"), "{p}");
    assert_eq!(
        item_attr(&p, "jid").as_deref(),
        Some("bob@localhost/res"),
        "a moderator sees the leaver's real JID: {p}"
    );
    assert_eq!(status_text(&p).as_deref(), Some("gone fishing"), "{p}");

    // A participant does not.
    let p = wait_unavailable(&mut carol, &occ("tea", "Bob")).await;
    assert!(!has_status(&p, 110), "{p}");
    assert_eq!(item_attr(&p, "role").as_deref(), Some("none"), "{p}");
    assert_eq!(
        item_attr(&p, "jid"),
        None,
        "no real JID for a participant: {p}"
    );
}

// ---- 3: a join from a session already in the room ---------------------------

#[tokio::test]
async fn a_repeated_join_gets_occupants_self_presence_history_and_subject() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    create_instant(&mut alice, "tea", "Alice").await;
    let mut bob = user(&server, "bob").await;
    join(&mut bob, "tea", "Bob").await;
    for (id, text) in [("h1", "first"), ("h2", "second")] {
        send_groupchat(&mut alice, "tea", id, text).await;
        wait_groupchat(&mut bob, "tea", "Alice", text).await;
    }
    sync(&mut bob).await;

    // The same session joins again under the same nick (a client resyncing).
    send_join(&mut bob, "tea", "Bob", "<history maxstanzas='1'/>").await;
    let (presences, own) = read_join(&mut bob, "tea", "Bob")
        .await
        .unwrap_or_else(|e| panic!("rejoin refused: {e}"));
    assert!(
        presences
            .iter()
            .any(|p| from_is(p, &occ("tea", "Alice")) && attr(p, "type").is_none()),
        "the other occupants come first: {presences:#?}"
    );
    assert!(has_status(&own, 110), "{own}");
    assert_eq!(attr(&own, "type"), None, "{own}");
    let (history, subj) = read_history(&mut bob, "tea", WAIT).await;
    assert_eq!(history.len(), 1, "maxstanzas='1': {history:#?}");
    assert_eq!(body(&history[0]).as_deref(), Some("second"), "{history:#?}");
    assert!(
        child_attr(&history[0], "delay", NS_DELAY, "stamp").is_some(),
        "{history:#?}"
    );
    let subj = subj.expect("the subject message ends the rejoin");
    assert_eq!(subject(&subj).as_deref(), Some(""), "{subj}");

    // A plain presence update (no muc <x/>) gets the self-presence only.
    sync(&mut bob).await;
    bob.send(&format!(
        "<presence to='{}'><show>away</show></presence>",
        occ("tea", "Bob")
    ))
    .await;
    let p = wait_presence(&mut bob, &occ("tea", "Bob"), |s| attr(s, "type").is_none()).await;
    assert!(has_status(&p, 110), "{p}");
    assert!(p.contains("<show>away</show>"), "{p}");
    let seen = collect_for(&mut bob, Duration::from_secs(2)).await;
    assert!(
        !seen.iter().any(|s| subject(s).is_some()),
        "no subject after a plain presence update: {seen:#?}"
    );
    assert!(
        !seen
            .iter()
            .any(|s| is_presence(s) && from_is(s, &occ("tea", "Alice"))),
        "no occupant list after a plain presence update: {seen:#?}"
    );
}

// ---- 4: who may read the affiliation lists ----------------------------------

async fn members_read_the_member_list_from_outside(server: Server) {
    let mut alice = user(&server, "alice").await;
    create_room(
        &mut alice,
        "club",
        "Alice",
        &[
            ("muc#roomconfig_persistentroom", "1"),
            ("muc#roomconfig_membersonly", "1"),
        ],
    )
    .await;
    assert_result(
        &admin_set(
            &mut alice,
            "m1",
            "club",
            "<item affiliation='member' jid='bob@localhost'/>",
        )
        .await,
    );
    assert_result(
        &admin_set(
            &mut alice,
            "m2",
            "club",
            "<item affiliation='member' jid='carol@localhost'/>",
        )
        .await,
    );

    // Bob, a member who is not in the room, reads the member list.
    let mut bob = user(&server, "bob").await;
    let l = admin_get(&mut bob, "l1", "club", "affiliation='member'").await;
    assert_result(&l);
    assert_eq!(
        list_jids(&l),
        vec!["bob@localhost".to_owned(), "carol@localhost".to_owned()],
        "{l}"
    );

    // Dave, no member, may not.
    let mut dave = user(&server, "dave").await;
    let l = admin_get(&mut dave, "l2", "club", "affiliation='member'").await;
    assert_error(&l, "forbidden", "");

    // In the (semi-anonymous) room, a member participant still may not read
    // the owner list nor the ban list.
    let j = join(&mut bob, "club", "Bob").await;
    assert_eq!(item_attr(&j.own, "role").as_deref(), Some("participant"));
    assert_eq!(item_attr(&j.own, "affiliation").as_deref(), Some("member"));
    let l = admin_get(&mut bob, "l3", "club", "affiliation='owner'").await;
    assert_error(&l, "forbidden", "");
    let l = admin_get(&mut bob, "l4", "club", "affiliation='outcast'").await;
    assert_error(&l, "forbidden", "");
    // From inside too, the member list is his to read.
    let l = admin_get(&mut bob, "l5", "club", "affiliation='member'").await;
    assert_result(&l);
    assert!(list_jids(&l).contains(&"bob@localhost".to_owned()), "{l}");
}

#[tokio::test]
async fn members_read_the_member_list_from_outside_sqlite() {
    members_read_the_member_list_from_outside(Server::start()).await;
}

#[tokio::test]
async fn members_read_the_member_list_from_outside_postgres() {
    members_read_the_member_list_from_outside(pg_server().await).await;
}

async fn owner_list_is_open_when_jids_are_public(server: Server) {
    let mut alice = user(&server, "alice").await;
    create_room(
        &mut alice,
        "open",
        "Alice",
        &[
            ("muc#roomconfig_persistentroom", "1"),
            ("muc#roomconfig_whois", "anyone"),
        ],
    )
    .await;
    let mut carol = user(&server, "carol").await;
    let j = join(&mut carol, "open", "Carol").await;
    assert_eq!(item_attr(&j.own, "role").as_deref(), Some("participant"));
    assert_eq!(item_attr(&j.own, "affiliation").as_deref(), Some("none"));
    let l = admin_get(&mut carol, "o1", "open", "affiliation='owner'").await;
    assert_result(&l);
    assert_eq!(list_jids(&l), vec!["alice@localhost".to_owned()], "{l}");
    // The ban list stays the admins'.
    let l = admin_get(&mut carol, "o2", "open", "affiliation='outcast'").await;
    assert_error(&l, "forbidden", "");
}

#[tokio::test]
async fn owner_list_is_open_when_jids_are_public_sqlite() {
    owner_list_is_open_when_jids_are_public(Server::start()).await;
}

#[tokio::test]
async fn owner_list_is_open_when_jids_are_public_postgres() {
    owner_list_is_open_when_jids_are_public(pg_server().await).await;
}

// ---- 5: cancelling a registration ---------------------------------------

async fn unregistering_ends_membership_in_a_members_only_room(mut server: Server) {
    let mut alice = user(&server, "alice").await;
    create_room(
        &mut alice,
        "club",
        "Alice",
        &[("muc#roomconfig_persistentroom", "1")],
    )
    .await;
    // Registering makes bob a member; then the room becomes members-only.
    let mut bob = user(&server, "bob").await;
    assert_result(&iq(&mut bob, "r1", &register_iq("club", "Bob")).await);
    configure(
        &mut alice,
        "club",
        &[
            ("muc#roomconfig_persistentroom", "1"),
            ("muc#roomconfig_membersonly", "1"),
        ],
    )
    .await;
    let j = join(&mut bob, "club", "Bob").await;
    assert_eq!(
        item_attr(&j.own, "affiliation").as_deref(),
        Some("member"),
        "{}",
        j.own
    );
    wait_presence(&mut alice, &occ("club", "Bob"), |s| {
        attr(s, "type").is_none()
    })
    .await;
    sync(&mut bob).await;

    // The result first, then bob is out (321, 110).
    bob.send(&unregister_iq("club").replace("ID", "u1")).await;
    let first = next(&mut bob, WAIT).await.expect("an answer");
    assert_eq!(
        attr(&first, "id").as_deref(),
        Some("u1"),
        "result first: {first}"
    );
    assert_result(&first);
    let second = next(&mut bob, WAIT).await.expect("the removal");
    assert!(
        is_presence(&second) && from_is(&second, &occ("club", "Bob")),
        "{second}"
    );
    assert_eq!(
        attr(&second, "type").as_deref(),
        Some("unavailable"),
        "{second}"
    );
    assert!(has_status(&second, 321), "{second}");
    assert!(has_status(&second, 110), "{second}");

    let p = wait_unavailable(&mut alice, &occ("club", "Bob")).await;
    assert!(has_status(&p, 321), "{p}");
    assert!(!has_status(&p, 110), "{p}");
    let l = admin_get(&mut alice, "l1", "club", "affiliation='member'").await;
    assert_result(&l);
    assert!(!list_jids(&l).contains(&"bob@localhost".to_owned()), "{l}");
    let e = try_join(&mut bob, "club", "Bob")
        .await
        .expect_err("no longer a member");
    assert_error(&e, "registration-required", "auth");

    // And so it stays after a restart.
    drop((alice, bob));
    server.stop();
    server.launch();
    let mut alice = online(&server, "alice", "res").await;
    let l = admin_get(&mut alice, "l2", "club", "affiliation='member'").await;
    assert_result(&l);
    assert!(!list_jids(&l).contains(&"bob@localhost".to_owned()), "{l}");
    let mut bob = online(&server, "bob", "res").await;
    let e = try_join(&mut bob, "club", "Bob")
        .await
        .expect_err("still no member after a restart");
    assert_error(&e, "registration-required", "auth");
}

#[tokio::test]
async fn unregistering_ends_membership_in_a_members_only_room_sqlite() {
    unregistering_ends_membership_in_a_members_only_room(Server::start()).await;
}

#[tokio::test]
async fn unregistering_ends_membership_in_a_members_only_room_postgres() {
    unregistering_ends_membership_in_a_members_only_room(pg_server().await).await;
}

async fn unregistering_in_an_open_room_keeps_the_occupant(mut server: Server) {
    let mut alice = user(&server, "alice").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[("muc#roomconfig_persistentroom", "1")],
    )
    .await;
    let mut bob = user(&server, "bob").await;
    assert_result(&iq(&mut bob, "r1", &register_iq("tea", "Bob")).await);
    let l = admin_get(&mut alice, "l0", "tea", "affiliation='member'").await;
    assert!(list_jids(&l).contains(&"bob@localhost".to_owned()), "{l}");
    join(&mut bob, "tea", "Bob").await;
    wait_presence(&mut alice, &occ("tea", "Bob"), |s| {
        attr(s, "type").is_none()
    })
    .await;

    assert_result(&iq(&mut bob, "u1", &unregister_iq("tea")).await);
    // Bob is told his affiliation is none, and stays.
    let p = wait_presence(&mut bob, &occ("tea", "Bob"), |s| {
        item_attr(s, "affiliation").as_deref() == Some("none")
    })
    .await;
    assert_eq!(attr(&p, "type"), None, "still in the room: {p}");
    assert!(has_status(&p, 110), "{p}");
    let l = admin_get(&mut alice, "l1", "tea", "affiliation='member'").await;
    assert_result(&l);
    assert!(!list_jids(&l).contains(&"bob@localhost".to_owned()), "{l}");
    send_groupchat(&mut bob, "tea", "g1", "still here").await;
    wait_groupchat(&mut alice, "tea", "Bob", "still here").await;
    let seen = sync(&mut alice).await;
    assert!(
        !seen
            .iter()
            .any(|s| from_is(s, &occ("tea", "Bob"))
                && attr(s, "type").as_deref() == Some("unavailable")),
        "{seen:#?}"
    );

    // The membership stays gone after a restart.
    drop((alice, bob));
    server.stop();
    server.launch();
    let mut alice = online(&server, "alice", "res").await;
    let l = admin_get(&mut alice, "l2", "tea", "affiliation='member'").await;
    assert_result(&l);
    assert!(!list_jids(&l).contains(&"bob@localhost".to_owned()), "{l}");
}

#[tokio::test]
async fn unregistering_in_an_open_room_keeps_the_occupant_sqlite() {
    unregistering_in_an_open_room_keeps_the_occupant(Server::start()).await;
}

#[tokio::test]
async fn unregistering_in_an_open_room_keeps_the_occupant_postgres() {
    unregistering_in_an_open_room_keeps_the_occupant(pg_server().await).await;
}

// ---- 6: an empty room secret means no password ------------------------------

async fn password_room(server: &Server) -> (Client, Client) {
    let mut alice = user(server, "alice").await;
    let mut bob = user(server, "bob").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[
            ("muc#roomconfig_passwordprotectedroom", "1"),
            ("muc#roomconfig_roomsecret", "sesame"),
        ],
    )
    .await;
    let e = try_join(&mut bob, "tea", "Bob")
        .await
        .expect_err("password needed");
    assert_error(&e, "not-authorized", "auth");
    (alice, bob)
}

/// After the password was removed: bob enters without one, and the room
/// says it is unsecured.
async fn assert_unsecured(alice: &mut Client, bob: &mut Client) {
    join(bob, "tea", "Bob").await;
    let info = disco_info(bob, "d1", &room("tea")).await;
    assert_result(&info);
    let f = features(&info);
    assert!(f.contains(&"muc_unsecured".to_owned()), "{info}");
    assert!(!f.contains(&"muc_passwordprotected".to_owned()), "{info}");
    let form = get_config(alice, "tea").await;
    assert_result(&form);
    let v = form_value(&form, "muc#roomconfig_passwordprotectedroom")
        .unwrap_or_else(|| panic!("no passwordprotectedroom field: {form}"));
    assert!(!truthy(&v), "{form}");
}

#[tokio::test]
async fn an_empty_room_secret_removes_the_password() {
    let server = Server::start();
    let (mut alice, mut bob) = password_room(&server).await;
    // The whole form as a client shows it: the box still ticked, the secret emptied.
    configure(
        &mut alice,
        "tea",
        &[
            ("muc#roomconfig_passwordprotectedroom", "1"),
            ("muc#roomconfig_roomsecret", ""),
        ],
    )
    .await;
    assert_unsecured(&mut alice, &mut bob).await;
}

#[tokio::test]
async fn an_empty_room_secret_field_alone_removes_the_password() {
    let server = Server::start();
    let (mut alice, mut bob) = password_room(&server).await;
    let form = get_config(&mut alice, "tea").await;
    assert_result(&form);
    let r = iq(
        &mut alice,
        "cfg-empty",
        &format!(
            "<iq type='set' id='ID' to='{}'><query xmlns='{NS_OWNER}'>\
             <x xmlns='{NS_DATA}' type='submit'><field var='FORM_TYPE'>\
             <value>http://jabber.org/protocol/muc#roomconfig</value></field>\
             <field var='muc#roomconfig_roomsecret'><value/></field></x></query></iq>",
            room("tea")
        ),
    )
    .await;
    assert_result(&r);
    assert_unsecured(&mut alice, &mut bob).await;
}

// ---- 8: the iq result comes before its effects ------------------------------

/// Alice owns `tea`, bob is in it; both have read everything so far.
async fn tea_with_bob(server: &Server) -> (Client, Client) {
    let mut alice = user(server, "alice").await;
    create_instant(&mut alice, "tea", "Alice").await;
    let mut bob = user(server, "bob").await;
    join(&mut bob, "tea", "Bob").await;
    wait_presence(&mut alice, &occ("tea", "Bob"), |s| {
        attr(s, "type").is_none()
    })
    .await;
    sync(&mut alice).await;
    sync(&mut bob).await;
    (alice, bob)
}

#[tokio::test]
async fn an_affiliation_change_is_answered_before_its_presence() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    alice
        .send(&format!(
            "<iq type='set' id='a1' to='{}'><query xmlns='{NS_ADMIN}'>\
             <item affiliation='admin' jid='bob@localhost'/></query></iq>",
            room("tea")
        ))
        .await;
    let first = next(&mut alice, WAIT).await.expect("an answer");
    assert_eq!(
        attr(&first, "id").as_deref(),
        Some("a1"),
        "result first: {first}"
    );
    assert_result(&first);
    let second = next(&mut alice, WAIT).await.expect("bob's new presence");
    assert!(
        is_presence(&second) && from_is(&second, &occ("tea", "Bob")),
        "{second}"
    );
    assert_eq!(
        item_attr(&second, "affiliation").as_deref(),
        Some("admin"),
        "{second}"
    );
    let p = wait_presence(&mut bob, &occ("tea", "Bob"), |s| {
        item_attr(s, "affiliation").as_deref() == Some("admin")
    })
    .await;
    assert!(has_status(&p, 110), "{p}");
}

#[tokio::test]
async fn a_ban_is_answered_before_the_banned_leave() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    alice
        .send(&format!(
            "<iq type='set' id='b1' to='{}'><query xmlns='{NS_ADMIN}'>\
             <item affiliation='outcast' jid='bob@localhost'/></query></iq>",
            room("tea")
        ))
        .await;
    let first = next(&mut alice, WAIT).await.expect("an answer");
    assert_eq!(
        attr(&first, "id").as_deref(),
        Some("b1"),
        "result first: {first}"
    );
    assert_result(&first);
    let second = next(&mut alice, WAIT).await.expect("bob's removal");
    assert!(
        is_presence(&second) && from_is(&second, &occ("tea", "Bob")),
        "{second}"
    );
    assert_eq!(
        attr(&second, "type").as_deref(),
        Some("unavailable"),
        "{second}"
    );
    assert!(has_status(&second, 301), "{second}");
    let p = wait_unavailable(&mut bob, &occ("tea", "Bob")).await;
    assert!(has_status(&p, 301), "{p}");
}

#[tokio::test]
async fn a_registration_is_answered_before_the_member_presence() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    bob.send(&register_iq("tea", "Bob").replace("ID", "r1"))
        .await;
    let first = next(&mut bob, WAIT).await.expect("an answer");
    assert_eq!(
        attr(&first, "id").as_deref(),
        Some("r1"),
        "result first: {first}"
    );
    assert_result(&first);
    let second = next(&mut bob, WAIT).await.expect("bob's new presence");
    assert!(
        is_presence(&second) && from_is(&second, &occ("tea", "Bob")),
        "{second}"
    );
    assert_eq!(
        item_attr(&second, "affiliation").as_deref(),
        Some("member"),
        "{second}"
    );
    assert!(has_status(&second, 110), "{second}");
    wait_presence(&mut alice, &occ("tea", "Bob"), |s| {
        item_attr(s, "affiliation").as_deref() == Some("member")
    })
    .await;
}

// ---- 9: [muc] lock_new_rooms ------------------------------------------------

#[tokio::test]
async fn without_locking_a_new_room_is_open_at_once() {
    // By default a new room stays locked until its owner configures it.
    let locked = Server::start();
    let mut alice = user(&locked, "alice").await;
    create_locked(&mut alice, "tea", "Alice").await;
    let mut bob = user(&locked, "bob").await;
    let e = try_join(&mut bob, "tea", "Bob")
        .await
        .expect_err("a locked room");
    assert_error(&e, "item-not-found", "");
    drop((alice, bob, locked));

    // With lock_new_rooms = false, it opens at once.
    let server = Server::start_with("[muc]\nlock_new_rooms = false\n");
    let mut alice = user(&server, "alice").await;
    let own = create_locked(&mut alice, "tea", "Alice").await;
    assert!(has_status(&own, 201), "{own}");
    let mut bob = user(&server, "bob").await;
    let j = try_join(&mut bob, "tea", "Bob")
        .await
        .unwrap_or_else(|e| panic!("the new room should be open: {e}"));
    assert!(j.presence_of("tea", "Alice").is_some(), "{j:#?}");
    wait_presence(&mut alice, &occ("tea", "Bob"), |s| {
        attr(s, "type").is_none()
    })
    .await;
}
