//! Multi-user chat occupants (XEP-0045 §7): joining (errors included),
//! presence broadcast, anonymity, nick changes, leaving, multi-session,
//! groupchat and private messages, history, subject, invitations (mediated
//! and XEP-0249 direct), voice requests; with XEP-0359 stanza ids, XEP-0421
//! occupant ids and XEP-0410 self-pings, against the real server.

mod common;

use common::Server;
use common::client::{Client, WAIT, attr};
use common::muc::*;

/// Alice creates an instant room `tea` as "Alice"; bob joins as "Bob".
async fn tea_with_bob(server: &Server) -> (Client, Client) {
    let mut alice = user(server, "alice").await;
    let mut bob = user(server, "bob").await;
    create_instant(&mut alice, "tea", "Alice").await;
    join(&mut bob, "tea", "Bob").await;
    (alice, bob)
}

#[tokio::test]
async fn joining_sends_existing_occupants_first_and_broadcasts_the_newcomer() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_instant(&mut alice, "tea", "Alice").await;
    let joined = join(&mut bob, "tea", "Bob").await;
    // §7.2.3: the existing occupants' presence comes before the self-presence.
    let a = joined
        .presence_of("tea", "Alice")
        .unwrap_or_else(|| panic!("no presence of Alice before Bob's own: {joined:#?}"));
    assert_eq!(item_attr(a, "affiliation").as_deref(), Some("owner"), "{a}");
    assert_eq!(item_attr(a, "role").as_deref(), Some("moderator"), "{a}");
    // Semi-anonymous (the default): a participant does not see real JIDs.
    assert_eq!(item_attr(a, "jid"), None, "{a}");
    assert!(!has_status(&joined.own, 100), "{}", joined.own);
    assert_eq!(
        item_attr(&joined.own, "role").as_deref(),
        Some("participant")
    );
    // The moderator sees Bob's full JID.
    let p = wait_presence(&mut alice, &occ("tea", "Bob"), |_| true).await;
    assert_eq!(
        item_attr(&p, "jid").as_deref(),
        Some("bob@localhost/res"),
        "{p}"
    );
    assert!(!has_status(&p, 110), "not Alice's own presence: {p}");
}

#[tokio::test]
async fn a_non_anonymous_room_shows_jids_to_everyone_with_status_100() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[("muc#roomconfig_whois", "anyone")],
    )
    .await;
    let joined = join(&mut bob, "tea", "Bob").await;
    // §7.2.4: status 100 in the self-presence of a non-anonymous room.
    assert!(has_status(&joined.own, 100), "{}", joined.own);
    let a = joined
        .presence_of("tea", "Alice")
        .expect("Alice's presence");
    assert_eq!(
        item_attr(a, "jid").as_deref(),
        Some("alice@localhost/res"),
        "{a}"
    );
}

#[tokio::test]
async fn a_taken_nick_is_a_conflict_for_another_user() {
    let server = Server::start();
    let (_alice, _bob) = tea_with_bob(&server).await;
    let mut carol = user(&server, "carol").await;
    // §7.2.9
    let err = try_join(&mut carol, "tea", "Bob")
        .await
        .expect_err("nick taken");
    assert_error(&err, "conflict", "cancel");
    join(&mut carol, "tea", "Carol").await;
}

#[tokio::test]
async fn a_password_protected_room_needs_the_right_password() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[
            ("muc#roomconfig_passwordprotectedroom", "1"),
            ("muc#roomconfig_roomsecret", "oolong"),
        ],
    )
    .await;
    // §7.2.5: missing or wrong password → not-authorized (auth).
    let err = try_join(&mut bob, "tea", "Bob")
        .await
        .expect_err("no password");
    assert_error(&err, "not-authorized", "auth");
    let err = join_pw(&mut bob, "tea", "Bob", "sencha")
        .await
        .expect_err("wrong password");
    assert_error(&err, "not-authorized", "auth");
    join_pw(&mut bob, "tea", "Bob", "oolong")
        .await
        .expect("right password");
}

#[tokio::test]
async fn a_members_only_room_refuses_non_members() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[("muc#roomconfig_membersonly", "1")],
    )
    .await;
    // §7.2.6
    let err = try_join(&mut bob, "tea", "Bob")
        .await
        .expect_err("not a member");
    assert_error(&err, "registration-required", "auth");
    assert_result(&set_affiliation(&mut alice, "tea", "bob@localhost", "member").await);
    let joined = join(&mut bob, "tea", "Bob").await;
    assert_eq!(
        item_attr(&joined.own, "affiliation").as_deref(),
        Some("member")
    );
}

#[tokio::test]
async fn a_banned_user_cannot_join() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_instant(&mut alice, "tea", "Alice").await;
    assert_result(&set_affiliation(&mut alice, "tea", "bob@localhost", "outcast").await);
    // §7.2.8
    let err = try_join(&mut bob, "tea", "Bob").await.expect_err("banned");
    assert_error(&err, "forbidden", "auth");
}

#[tokio::test]
async fn a_full_room_refuses_more_occupants_but_not_owners() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    let mut carol = user(&server, "carol").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[("muc#roomconfig_maxusers", "2")],
    )
    .await;
    join(&mut bob, "tea", "Bob").await;
    // §7.2.10: the room is full → service-unavailable (wait).
    let err = try_join(&mut carol, "tea", "Carol")
        .await
        .expect_err("room full");
    assert_error(&err, "service-unavailable", "wait");
    // Owners still get in.
    let mut alice2 = online(&server, "alice", "other").await;
    join(&mut alice2, "tea", "Alice2").await;
}

#[tokio::test]
async fn changing_nick_sends_303_then_the_new_presence() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    let old = occ("tea", "Bob");
    let new = occ("tea", "Robert");
    bob.send(&format!("<presence to='{new}'/>")).await;
    // §7.6: unavailable from the old nick with 303 and the new nick.
    for (c, own) in [(&mut alice, false), (&mut bob, true)] {
        let p = wait_unavailable(c, &old).await;
        assert!(has_status(&p, 303), "{p}");
        assert_eq!(item_attr(&p, "nick").as_deref(), Some("Robert"), "{p}");
        assert_eq!(has_status(&p, 110), own, "{p}");
        let p = wait_presence(c, &new, |s| attr(s, "type").is_none()).await;
        assert_eq!(has_status(&p, 110), own, "{p}");
        assert_eq!(item_attr(&p, "role").as_deref(), Some("participant"), "{p}");
    }
    send_groupchat(&mut bob, "tea", "g1", "now Robert").await;
    wait_groupchat(&mut alice, "tea", "Robert", "now Robert").await;
}

#[tokio::test]
async fn changing_to_a_taken_nick_is_a_conflict() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    bob.send(&format!("<presence to='{}'/>", occ("tea", "Alice")))
        .await;
    let err = wait_presence(&mut bob, &occ("tea", "Alice"), |s| {
        attr(s, "type").as_deref() == Some("error")
    })
    .await;
    // §7.6
    assert_error(&err, "conflict", "cancel");
    // Bob is still Bob.
    send_groupchat(&mut bob, "tea", "g1", "still Bob").await;
    wait_groupchat(&mut alice, "tea", "Bob", "still Bob").await;
}

#[tokio::test]
async fn leaving_sends_110_to_self_and_unavailable_to_others() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    let own = leave(&mut bob, "tea", "Bob").await;
    // §7.14
    assert!(has_status(&own, 110), "{own}");
    assert_eq!(item_attr(&own, "role").as_deref(), Some("none"), "{own}");
    let p = wait_unavailable(&mut alice, &occ("tea", "Bob")).await;
    assert!(!has_status(&p, 110), "{p}");
    assert_eq!(item_attr(&p, "role").as_deref(), Some("none"), "{p}");
    // Bob no longer gets the room's messages.
    send_groupchat(&mut alice, "tea", "g1", "after bob left").await;
    wait_groupchat(&mut alice, "tea", "Alice", "after bob left").await;
    let seen = sync(&mut bob).await;
    assert!(
        !seen
            .iter()
            .any(|s| body(s).as_deref() == Some("after bob left")),
        "{seen:#?}"
    );
}

#[tokio::test]
async fn two_resources_of_one_account_share_a_nick() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    let mut bob2 = online(&server, "bob", "phone").await;
    // §7.2.9: the same bare JID may join with the same nick from another resource.
    let j = join(&mut bob2, "tea", "Bob").await;
    assert_eq!(item_attr(&j.own, "role").as_deref(), Some("participant"));
    // Both resources get the room's messages.
    send_groupchat(&mut alice, "tea", "g1", "to both").await;
    wait_groupchat(&mut bob, "tea", "Alice", "to both").await;
    wait_groupchat(&mut bob2, "tea", "Alice", "to both").await;
    let _ = sync(&mut alice).await;
    // A newcomer sees one occupant "Bob".
    let mut carol = user(&server, "carol").await;
    let j = join(&mut carol, "tea", "Carol").await;
    let bobs = j
        .presences
        .iter()
        .filter(|p| from_is(p, &occ("tea", "Bob")) && attr(p, "type").is_none())
        .count();
    assert_eq!(bobs, 1, "{j:#?}");
    // Either resource speaks as Bob.
    send_groupchat(&mut bob2, "tea", "g2", "from the phone").await;
    wait_groupchat(&mut carol, "tea", "Bob", "from the phone").await;
    // A different account still cannot take the nick.
    let mut dave = user(&server, "dave").await;
    let err = try_join(&mut dave, "tea", "Bob")
        .await
        .expect_err("conflict");
    assert_error(&err, "conflict", "cancel");
}

#[tokio::test]
async fn groupchat_messages_are_reflected_to_everyone_with_ids() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    send_groupchat(&mut bob, "tea", "msg-1", "Hello all").await;
    let at_alice = wait_groupchat(&mut alice, "tea", "Bob", "Hello all").await;
    let at_bob = wait_groupchat(&mut bob, "tea", "Bob", "Hello all").await;
    // §7.4: the reflection keeps the client's id.
    assert_eq!(attr(&at_bob, "id").as_deref(), Some("msg-1"), "{at_bob}");
    // XEP-0359: a stanza id by the room, the same for everyone.
    let sid_a =
        child_attr(&at_alice, "stanza-id", NS_SID, "id").unwrap_or_else(|| panic!("{at_alice}"));
    let sid_b =
        child_attr(&at_bob, "stanza-id", NS_SID, "id").unwrap_or_else(|| panic!("{at_bob}"));
    assert_eq!(sid_a, sid_b);
    assert!(!sid_a.is_empty());
    assert_eq!(
        child_attr(&at_alice, "stanza-id", NS_SID, "by"),
        Some(room("tea")),
        "{at_alice}"
    );
    // XEP-0421: an occupant id, the same for everyone.
    let oid_a = child_attr(&at_alice, "occupant-id", NS_OCCUPANT_ID, "id")
        .unwrap_or_else(|| panic!("{at_alice}"));
    let oid_b = child_attr(&at_bob, "occupant-id", NS_OCCUPANT_ID, "id")
        .unwrap_or_else(|| panic!("{at_bob}"));
    assert_eq!(oid_a, oid_b);
    // A second message gets a different stanza id.
    send_groupchat(&mut bob, "tea", "msg-2", "Again").await;
    let m2 = wait_groupchat(&mut alice, "tea", "Bob", "Again").await;
    assert_ne!(child_attr(&m2, "stanza-id", NS_SID, "id"), Some(sid_a));
}

#[tokio::test]
async fn a_client_supplied_stanza_id_by_the_room_is_stripped() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    bob.send(&format!(
        "<message type='groupchat' id='m1' to='{}'><body>spoof</body>\
         <stanza-id xmlns='{NS_SID}' by='{}' id='forged-id'/></message>",
        room("tea"),
        room("tea")
    ))
    .await;
    let m = wait_groupchat(&mut alice, "tea", "Bob", "spoof").await;
    let el = parse(&m);
    let mut ids = Vec::new();
    find_all(&el, "stanza-id", NS_SID, &mut ids);
    let by_room: Vec<_> = ids
        .iter()
        .filter(|e| e.attr("by") == Some(room("tea").as_str()))
        .collect();
    assert_eq!(by_room.len(), 1, "exactly one stanza id by the room: {m}");
    assert_ne!(by_room[0].attr("id"), Some("forged-id"), "{m}");
}

#[tokio::test]
async fn occupant_ids_are_stable_per_user_and_differ_between_users() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    let mut carol = user(&server, "carol").await;
    let j = join(&mut carol, "tea", "Carol").await;
    let oid = |s: &str| child_attr(s, "occupant-id", NS_OCCUPANT_ID, "id");
    // On every presence from an occupant.
    let bob_p = j.presence_of("tea", "Bob").expect("Bob's presence").clone();
    let alice_p = j
        .presence_of("tea", "Alice")
        .expect("Alice's presence")
        .clone();
    let bob_id = oid(&bob_p).unwrap_or_else(|| panic!("no occupant-id: {bob_p}"));
    let alice_id = oid(&alice_p).unwrap_or_else(|| panic!("no occupant-id: {alice_p}"));
    assert_ne!(bob_id, alice_id);
    assert!(oid(&j.own).is_some(), "{}", j.own);
    // ... and on groupchat messages.
    send_groupchat(&mut bob, "tea", "g1", "hi").await;
    let m = wait_groupchat(&mut carol, "tea", "Bob", "hi").await;
    assert_eq!(oid(&m), Some(bob_id.clone()), "{m}");
    // Stable across a nick change.
    bob.send(&format!("<presence to='{}'/>", occ("tea", "Robert")))
        .await;
    let p = wait_presence(&mut carol, &occ("tea", "Robert"), |s| {
        attr(s, "type").is_none()
    })
    .await;
    assert_eq!(oid(&p), Some(bob_id.clone()), "{p}");
    // ... and across leaving and joining again.
    leave(&mut bob, "tea", "Robert").await;
    join(&mut bob, "tea", "Bobby").await;
    let p = wait_presence(&mut carol, &occ("tea", "Bobby"), |s| {
        attr(s, "type").is_none()
    })
    .await;
    assert_eq!(oid(&p), Some(bob_id), "{p}");
    let _ = sync(&mut alice).await;
}

#[tokio::test]
async fn a_non_occupant_cannot_send_groupchat() {
    let server = Server::start();
    let (_alice, _bob) = tea_with_bob(&server).await;
    let mut carol = user(&server, "carol").await;
    send_groupchat(&mut carol, "tea", "c1", "let me in").await;
    let e = wait_for(&mut carol, "error", |s| {
        attr(s, "id").as_deref() == Some("c1")
    })
    .await;
    // §7.4: not an occupant → not-acceptable.
    assert_error(&e, "not-acceptable", "");
}

#[tokio::test]
async fn history_is_sent_on_join_with_delay_and_limits() {
    let server = Server::start();
    let (mut alice, _bob) = tea_with_bob(&server).await;
    for i in 1..=5 {
        send_groupchat(&mut alice, "tea", &format!("h{i}"), &format!("message {i}")).await;
        wait_groupchat(&mut alice, "tea", "Alice", &format!("message {i}")).await;
    }
    let mut carol = user(&server, "carol").await;
    // No <history/>: the room's default (20) covers all five.
    let j = join(&mut carol, "tea", "Carol").await;
    let bodies: Vec<_> = j.history.iter().filter_map(|s| body(s)).collect();
    assert_eq!(
        bodies,
        (1..=5).map(|i| format!("message {i}")).collect::<Vec<_>>(),
        "{j:#?}"
    );
    // §7.2.14: history from the sender's occupant JID, delayed by the room.
    for h in &j.history {
        assert!(from_is(h, &occ("tea", "Alice")), "{h}");
        assert_eq!(attr(h, "type").as_deref(), Some("groupchat"), "{h}");
        assert_eq!(
            child_attr(h, "delay", NS_DELAY, "from"),
            Some(room("tea")),
            "{h}"
        );
        assert!(child_attr(h, "delay", NS_DELAY, "stamp").is_some(), "{h}");
    }
    // The subject comes after the history, empty when none was set.
    let subj = j.subject.as_deref().expect("subject message after history");
    assert_eq!(subject(subj).as_deref(), Some(""), "{subj}");
    leave(&mut carol, "tea", "Carol").await;

    // maxstanzas: the last two.
    let j = join_with(&mut carol, "tea", "Carol", "<history maxstanzas='2'/>").await;
    let bodies: Vec<_> = j.history.iter().filter_map(|s| body(s)).collect();
    assert_eq!(bodies, vec!["message 4", "message 5"], "{j:#?}");
    assert!(j.subject.is_some(), "{j:#?}");
    leave(&mut carol, "tea", "Carol").await;

    // maxchars='0': none.
    let j = join_with(&mut carol, "tea", "Carol", "<history maxchars='0'/>").await;
    assert!(j.history.is_empty(), "{j:#?}");
    assert!(j.subject.is_some(), "subject even without history: {j:#?}");
    leave(&mut carol, "tea", "Carol").await;

    // seconds: all five were sent within the last hour.
    let j = join_with(&mut carol, "tea", "Carol", "<history seconds='3600'/>").await;
    assert_eq!(j.history.len(), 5, "{j:#?}");
    leave(&mut carol, "tea", "Carol").await;

    // since the future: none; since the past: all.
    let j = join_with(
        &mut carol,
        "tea",
        "Carol",
        "<history since='2999-01-01T00:00:00Z'/>",
    )
    .await;
    assert!(j.history.is_empty(), "{j:#?}");
    leave(&mut carol, "tea", "Carol").await;
    let j = join_with(
        &mut carol,
        "tea",
        "Carol",
        "<history since='2000-01-01T00:00:00Z'/>",
    )
    .await;
    assert_eq!(j.history.len(), 5, "{j:#?}");
}

#[tokio::test]
async fn history_length_follows_maxhistoryfetch() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    create_room(&mut alice, "tea", "Alice", &[("muc#maxhistoryfetch", "3")]).await;
    for i in 1..=6 {
        send_groupchat(&mut alice, "tea", &format!("h{i}"), &format!("m{i}")).await;
        wait_groupchat(&mut alice, "tea", "Alice", &format!("m{i}")).await;
    }
    let mut bob = user(&server, "bob").await;
    let j = join(&mut bob, "tea", "Bob").await;
    let bodies: Vec<_> = j.history.iter().filter_map(|s| body(s)).collect();
    assert_eq!(bodies, vec!["m4", "m5", "m6"], "{j:#?}");
}

#[tokio::test]
async fn subject_changes_by_moderators_only_by_default() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    let to = room("tea");
    // §8.1: a participant may not change the subject by default.
    bob.send(&format!(
        "<message type='groupchat' id='s1' to='{to}'><subject>Bob's</subject></message>"
    ))
    .await;
    let e = wait_for(&mut bob, "subject error", |s| {
        attr(s, "id").as_deref() == Some("s1")
    })
    .await;
    assert_error(&e, "forbidden", "");
    // The moderator does; everyone gets it from her occupant JID.
    alice
        .send(&format!(
            "<message type='groupchat' id='s2' to='{to}'><subject>Green tea</subject></message>"
        ))
        .await;
    for c in [&mut alice, &mut bob] {
        let m = wait_for(c, "subject change", |s| {
            subject(s).as_deref() == Some("Green tea")
        })
        .await;
        assert!(from_is(&m, &occ("tea", "Alice")) || from_is(&m, &to), "{m}");
    }
    // Newcomers get the subject after the history.
    send_groupchat(&mut alice, "tea", "h1", "after the subject").await;
    wait_groupchat(&mut alice, "tea", "Alice", "after the subject").await;
    let mut carol = user(&server, "carol").await;
    let j = join(&mut carol, "tea", "Carol").await;
    assert_eq!(
        j.subject.as_deref().and_then(subject).as_deref(),
        Some("Green tea"),
        "{j:#?}"
    );
    assert!(
        j.history
            .iter()
            .any(|h| body(h).as_deref() == Some("after the subject")),
        "{j:#?}"
    );
}

#[tokio::test]
async fn changesubject_lets_participants_change_the_subject() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[("muc#roomconfig_changesubject", "1")],
    )
    .await;
    join(&mut bob, "tea", "Bob").await;
    bob.send(&format!(
        "<message type='groupchat' id='s1' to='{}'><subject>Chosen by Bob</subject></message>",
        room("tea")
    ))
    .await;
    wait_for(&mut alice, "subject", |s| {
        subject(s).as_deref() == Some("Chosen by Bob")
    })
    .await;
}

#[tokio::test]
async fn private_messages_go_through_the_room() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    alice
        .send(&format!(
            "<message type='chat' id='pm1' to='{}'><body>psst</body></message>",
            occ("tea", "Bob")
        ))
        .await;
    // §7.5: from the sender's occupant JID, with a muc#user x.
    let m = wait_for(&mut bob, "private message", |s| {
        body(s).as_deref() == Some("psst")
    })
    .await;
    assert!(from_is(&m, &occ("tea", "Alice")), "{m}");
    assert_eq!(attr(&m, "type").as_deref(), Some("chat"), "{m}");
    assert!(user_x(&m).is_some(), "{m}");
    assert_eq!(attr(&m, "to").as_deref(), Some("bob@localhost/res"), "{m}");
    // To a nick nobody has → item-not-found.
    alice
        .send(&format!(
            "<message type='chat' id='pm2' to='{}'><body>anyone?</body></message>",
            occ("tea", "Nobody")
        ))
        .await;
    let e = wait_for(&mut alice, "pm error", |s| {
        attr(s, "id").as_deref() == Some("pm2")
    })
    .await;
    assert_error(&e, "item-not-found", "");
    // From a non-occupant → not-acceptable.
    let mut carol = user(&server, "carol").await;
    carol
        .send(&format!(
            "<message type='chat' id='pm3' to='{}'><body>hi</body></message>",
            occ("tea", "Bob")
        ))
        .await;
    let e = wait_for(&mut carol, "pm error", |s| {
        attr(s, "id").as_deref() == Some("pm3")
    })
    .await;
    assert_error(&e, "not-acceptable", "");
    let seen = sync(&mut bob).await;
    assert!(
        !seen.iter().any(|s| body(s).as_deref() == Some("hi")),
        "{seen:#?}"
    );
}

#[tokio::test]
async fn allowpm_none_stops_private_messages() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[("muc#roomconfig_allowpm", "none")],
    )
    .await;
    join(&mut bob, "tea", "Bob").await;
    bob.send(&format!(
        "<message type='chat' id='pm1' to='{}'><body>psst</body></message>",
        occ("tea", "Alice")
    ))
    .await;
    let e = wait_for(&mut bob, "pm refused", |s| {
        attr(s, "id").as_deref() == Some("pm1")
    })
    .await;
    assert!(error_of(&e).is_some(), "an error: {e}");
    let seen = sync(&mut alice).await;
    assert!(
        !seen.iter().any(|s| body(s).as_deref() == Some("psst")),
        "{seen:#?}"
    );
}

#[tokio::test]
async fn a_mediated_invitation_carries_the_inviter_and_password() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[
            ("muc#roomconfig_passwordprotectedroom", "1"),
            ("muc#roomconfig_roomsecret", "oolong"),
        ],
    )
    .await;
    alice
        .send(&format!(
            "<message id='inv1' to='{}'><x xmlns='{NS_USER}'>\
             <invite to='bob@localhost'><reason>Join us</reason></invite></x></message>",
            room("tea")
        ))
        .await;
    // §7.8.2
    let m = wait_for(&mut bob, "invitation", |s| {
        is_message(s) && from_is(s, &room("tea")) && user_x(s).is_some()
    })
    .await;
    let x = user_x(&m).expect("muc#user x");
    let invite = x
        .children()
        .find(|c| c.is("invite", NS_USER))
        .unwrap_or_else(|| panic!("no invite: {m}"));
    assert_eq!(invite.attr("from"), Some("alice@localhost/res"), "{m}");
    let reason = invite
        .children()
        .find(|c| c.name() == "reason")
        .map(|r| r.text());
    assert_eq!(reason.as_deref(), Some("Join us"), "{m}");
    let pw = x
        .children()
        .find(|c| c.is("password", NS_USER))
        .map(|p| p.text());
    assert_eq!(pw.as_deref(), Some("oolong"), "{m}");
}

#[tokio::test]
async fn an_invitation_by_the_owner_makes_the_invitee_a_member() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[("muc#roomconfig_membersonly", "1")],
    )
    .await;
    alice
        .send(&format!(
            "<message id='inv1' to='{}'><x xmlns='{NS_USER}'><invite to='bob@localhost'/></x></message>",
            room("tea")
        ))
        .await;
    wait_for(&mut bob, "invitation", |s| {
        is_message(s) && from_is(s, &room("tea"))
    })
    .await;
    // §7.8.2: in a members-only room the invitation adds the invitee.
    let j = join(&mut bob, "tea", "Bob").await;
    assert_eq!(
        item_attr(&j.own, "affiliation").as_deref(),
        Some("member"),
        "{}",
        j.own
    );
}

#[tokio::test]
async fn a_mere_member_may_not_invite_into_a_members_only_room() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    let mut carol = user(&server, "carol").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[("muc#roomconfig_membersonly", "1")],
    )
    .await;
    assert_result(&set_affiliation(&mut alice, "tea", "bob@localhost", "member").await);
    join(&mut bob, "tea", "Bob").await;
    bob.send(&format!(
        "<message id='inv1' to='{}'><x xmlns='{NS_USER}'><invite to='carol@localhost'/></x></message>",
        room("tea")
    ))
    .await;
    // §7.8.2: forbidden (allowinvites is off by default).
    let e = wait_for(&mut bob, "invite refused", |s| {
        attr(s, "id").as_deref() == Some("inv1")
    })
    .await;
    assert_error(&e, "forbidden", "");
    let seen = sync(&mut carol).await;
    assert!(!seen.iter().any(|s| s.contains("invite")), "{seen:#?}");
    let err = try_join(&mut carol, "tea", "Carol")
        .await
        .expect_err("not a member");
    assert_error(&err, "registration-required", "auth");
}

#[tokio::test]
async fn with_allowinvites_a_member_invites_and_adds_members() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    let mut carol = user(&server, "carol").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[
            ("muc#roomconfig_membersonly", "1"),
            ("muc#roomconfig_allowinvites", "1"),
        ],
    )
    .await;
    assert_result(&set_affiliation(&mut alice, "tea", "bob@localhost", "member").await);
    join(&mut bob, "tea", "Bob").await;
    bob.send(&format!(
        "<message id='inv1' to='{}'><x xmlns='{NS_USER}'><invite to='carol@localhost'/></x></message>",
        room("tea")
    ))
    .await;
    let m = wait_for(&mut carol, "invitation", |s| {
        is_message(s) && from_is(s, &room("tea"))
    })
    .await;
    assert_eq!(
        child_attr(&m, "invite", NS_USER, "from").as_deref(),
        Some("bob@localhost/res"),
        "{m}"
    );
    join(&mut carol, "tea", "Carol").await;
}

#[tokio::test]
async fn direct_invitations_pass_through_untouched() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_instant(&mut alice, "tea", "Alice").await;
    // XEP-0249 §2: a message from user to user.
    alice
        .send(&format!(
            "<message id='dinv' to='bob@localhost'><x xmlns='jabber:x:conference' \
             jid='{}' password='oolong' reason='Come over'/></message>",
            room("tea")
        ))
        .await;
    let m = wait_for(&mut bob, "direct invitation", |s| {
        s.contains("jabber:x:conference")
    })
    .await;
    assert_eq!(
        attr(&m, "from").as_deref(),
        Some("alice@localhost/res"),
        "{m}"
    );
    assert_eq!(
        child_attr(&m, "x", "jabber:x:conference", "jid"),
        Some(room("tea")),
        "{m}"
    );
    assert_eq!(
        child_attr(&m, "x", "jabber:x:conference", "reason").as_deref(),
        Some("Come over"),
        "{m}"
    );
}

#[tokio::test]
async fn a_visitor_requests_voice_and_the_moderator_approves() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[("muc#roomconfig_moderatedroom", "1")],
    )
    .await;
    let j = join(&mut bob, "tea", "Bob").await;
    assert_eq!(
        item_attr(&j.own, "role").as_deref(),
        Some("visitor"),
        "{}",
        j.own
    );
    // §7.13
    bob.send(&format!(
        "<message id='vr1' to='{}'><x xmlns='{NS_DATA}' type='submit'>\
         <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field>\
         <field var='muc#role' type='list-single'><value>participant</value></field>\
         </x></message>",
        room("tea")
    ))
    .await;
    // §8.6: moderators get an approval form.
    let m = wait_for(&mut alice, "voice request", |s| {
        is_message(s) && from_is(s, &room("tea")) && s.contains("muc#request")
    })
    .await;
    assert_eq!(
        form_value(&m, "FORM_TYPE").as_deref(),
        Some("http://jabber.org/protocol/muc#request"),
        "{m}"
    );
    assert_eq!(
        form_value(&m, "muc#role").as_deref(),
        Some("participant"),
        "{m}"
    );
    assert_eq!(
        form_value(&m, "muc#roomnick").as_deref(),
        Some("Bob"),
        "{m}"
    );
    // The moderator approves by submitting the form.
    let jid = form_value(&m, "muc#jid").unwrap_or_default();
    alice
        .send(&format!(
            "<message id='va1' to='{}'><x xmlns='{NS_DATA}' type='submit'>\
             <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field>\
             <field var='muc#role'><value>participant</value></field>\
             <field var='muc#jid'><value>{jid}</value></field>\
             <field var='muc#roomnick'><value>Bob</value></field>\
             <field var='muc#request_allow'><value>true</value></field>\
             </x></message>",
            room("tea")
        ))
        .await;
    let p = wait_presence(&mut bob, &occ("tea", "Bob"), |s| {
        item_attr(s, "role").as_deref() == Some("participant")
    })
    .await;
    assert!(has_status(&p, 110), "{p}");
}

#[tokio::test]
async fn self_ping_answers_occupants_and_rejects_others() {
    let server = Server::start();
    let (_alice, mut bob) = tea_with_bob(&server).await;
    // XEP-0410 §3.
    let r = iq(
        &mut bob,
        "sp1",
        &format!(
            "<iq type='get' id='ID' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
            occ("tea", "Bob")
        ),
    )
    .await;
    assert_result(&r);
    let mut carol = user(&server, "carol").await;
    let r = iq(
        &mut carol,
        "sp2",
        &format!(
            "<iq type='get' id='ID' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
            occ("tea", "Bob")
        ),
    )
    .await;
    assert_error(&r, "not-acceptable", "");
    // After leaving, the former occupant is told it is not joined.
    leave(&mut bob, "tea", "Bob").await;
    let r = iq(
        &mut bob,
        "sp3",
        &format!(
            "<iq type='get' id='ID' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
            occ("tea", "Bob")
        ),
    )
    .await;
    assert_error(&r, "not-acceptable", "");
}

#[tokio::test]
async fn a_join_without_a_nick_is_jid_malformed() {
    let server = Server::start();
    let (_alice, _bob) = tea_with_bob(&server).await;
    let mut carol = user(&server, "carol").await;
    carol
        .send(&format!(
            "<presence id='nonick' to='{}'><x xmlns='{NS_MUC}'/></presence>",
            room("tea")
        ))
        .await;
    // §7.2.1: no nickname → jid-malformed (modify).
    let e = wait_for(&mut carol, "error", |s| {
        attr(s, "id").as_deref() == Some("nonick")
    })
    .await;
    assert_error(&e, "jid-malformed", "modify");
}

#[tokio::test]
async fn room_addresses_are_case_insensitive() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_instant(&mut alice, "tea", "Alice").await;
    // RFC 7622: the localpart is case-folded, so TEA is tea.
    send_join(&mut bob, &format!("TEA@{SERVICE}"), "Bob", "").await;
    let p = wait_for(&mut bob, "self-presence", |s| {
        is_presence(s) && has_status(s, 110)
    })
    .await;
    assert!(attr(&p, "type").is_none(), "joined: {p}");
    wait_presence(&mut alice, &occ("tea", "Bob"), |s| {
        attr(s, "type").is_none()
    })
    .await;
}

#[tokio::test]
async fn presence_changes_are_broadcast() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    bob.send(&format!(
        "<presence to='{}'><show>away</show><status>tea break</status></presence>",
        occ("tea", "Bob")
    ))
    .await;
    // §7.7
    let p = wait_presence(&mut alice, &occ("tea", "Bob"), |s| {
        s.contains("<show>away</show>")
    })
    .await;
    assert!(p.contains("tea break"), "{p}");
    assert_eq!(item_attr(&p, "role").as_deref(), Some("participant"), "{p}");
    let own = wait_presence(&mut bob, &occ("tea", "Bob"), |s| {
        s.contains("<show>away</show>")
    })
    .await;
    assert!(has_status(&own, 110), "{own}");
}

#[tokio::test]
async fn a_disconnected_occupant_leaves_the_room() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    bob.send("</stream:stream>").await;
    let _ = bob.read_to_close(WAIT).await;
    // RFC 6121 §4.6 / XEP-0045 §7.14: the room learns the session ended.
    let p = wait_unavailable(&mut alice, &occ("tea", "Bob")).await;
    assert_eq!(item_attr(&p, "role").as_deref(), Some("none"), "{p}");
    // When the last occupant goes, the temporary room goes too.
    alice.send("</stream:stream>").await;
    let _ = alice.read_to_close(WAIT).await;
    let mut carol = user(&server, "carol").await;
    let mut gone = false;
    for i in 0..50 {
        let r = disco_info(&mut carol, &format!("d{i}"), &room("tea")).await;
        if error_of(&r).is_some() {
            assert_error(&r, "item-not-found", "");
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone, "the empty temporary room is still there");
}

#[tokio::test]
async fn one_resource_leaving_keeps_the_shared_nick_in_the_room() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    let mut bob2 = online(&server, "bob", "phone").await;
    join(&mut bob2, "tea", "Bob").await;
    let _ = sync(&mut alice).await;
    // Private messages to the shared nick reach both resources (RECOMMENDED, §7.2.9).
    alice
        .send(&format!(
            "<message type='chat' id='pm1' to='{}'><body>both?</body></message>",
            occ("tea", "Bob")
        ))
        .await;
    wait_for(&mut bob, "pm", |s| body(s).as_deref() == Some("both?")).await;
    wait_for(&mut bob2, "pm", |s| body(s).as_deref() == Some("both?")).await;
    // The phone leaves: it gets its own unavailable...
    let own = leave(&mut bob2, "tea", "Bob").await;
    assert!(has_status(&own, 110), "{own}");
    // ... but Bob is still in the room for the others.
    let seen = sync(&mut alice).await;
    assert!(
        !seen
            .iter()
            .any(|s| from_is(s, &occ("tea", "Bob"))
                && attr(s, "type").as_deref() == Some("unavailable")),
        "{seen:#?}"
    );
    send_groupchat(&mut alice, "tea", "g1", "still there?").await;
    wait_groupchat(&mut bob, "tea", "Alice", "still there?").await;
}

#[tokio::test]
async fn history_keeps_the_stanza_and_occupant_ids() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    send_groupchat(&mut bob, "tea", "h1", "remember me").await;
    let live = wait_groupchat(&mut alice, "tea", "Bob", "remember me").await;
    let sid = child_attr(&live, "stanza-id", NS_SID, "id").unwrap_or_else(|| panic!("{live}"));
    let oid =
        child_attr(&live, "occupant-id", NS_OCCUPANT_ID, "id").unwrap_or_else(|| panic!("{live}"));
    let mut carol = user(&server, "carol").await;
    let j = join(&mut carol, "tea", "Carol").await;
    let h = j
        .history
        .iter()
        .find(|h| body(h).as_deref() == Some("remember me"))
        .unwrap_or_else(|| panic!("{j:#?}"));
    // XEP-0421 §4: also on history messages.
    assert_eq!(
        child_attr(h, "occupant-id", NS_OCCUPANT_ID, "id"),
        Some(oid),
        "{h}"
    );
    // XEP-0359: the room's id of a message is stable (XEP-0425 retracts history by it).
    assert_eq!(child_attr(h, "stanza-id", NS_SID, "id"), Some(sid), "{h}");
    assert_eq!(
        child_attr(h, "stanza-id", NS_SID, "by"),
        Some(room("tea")),
        "{h}"
    );
}

#[tokio::test]
async fn a_client_supplied_occupant_id_is_replaced() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    bob.send(&format!(
        "<message type='groupchat' id='f1' to='{}'><body>forged</body>\
         <occupant-id xmlns='{NS_OCCUPANT_ID}' id='not-bob'/></message>",
        room("tea")
    ))
    .await;
    let m = wait_groupchat(&mut alice, "tea", "Bob", "forged").await;
    let el = parse(&m);
    let mut ids = Vec::new();
    find_all(&el, "occupant-id", NS_OCCUPANT_ID, &mut ids);
    // XEP-0421 §4: exactly one, the room's.
    assert_eq!(ids.len(), 1, "{m}");
    assert_ne!(ids[0].attr("id"), Some("not-bob"), "{m}");
    // Same for presence.
    bob.send(&format!(
        "<presence to='{}'><show>dnd</show><occupant-id xmlns='{NS_OCCUPANT_ID}' id='not-bob'/></presence>",
        occ("tea", "Bob")
    ))
    .await;
    let p = wait_presence(&mut alice, &occ("tea", "Bob"), |s| {
        s.contains("<show>dnd</show>")
    })
    .await;
    let el = parse(&p);
    let mut ids = Vec::new();
    find_all(&el, "occupant-id", NS_OCCUPANT_ID, &mut ids);
    assert_eq!(ids.len(), 1, "{p}");
    assert_ne!(ids[0].attr("id"), Some("not-bob"), "{p}");
}

#[tokio::test]
async fn private_messages_carry_the_occupant_id() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    send_groupchat(&mut alice, "tea", "g1", "hi").await;
    let m = wait_groupchat(&mut bob, "tea", "Alice", "hi").await;
    let oid = child_attr(&m, "occupant-id", NS_OCCUPANT_ID, "id").unwrap_or_else(|| panic!("{m}"));
    alice
        .send(&format!(
            "<message type='chat' id='pm1' to='{}'><body>psst</body></message>",
            occ("tea", "Bob")
        ))
        .await;
    let pm = wait_for(&mut bob, "pm", |s| body(s).as_deref() == Some("psst")).await;
    // XEP-0421 §4: every message sent by the MUC.
    assert_eq!(
        child_attr(&pm, "occupant-id", NS_OCCUPANT_ID, "id"),
        Some(oid),
        "{pm}"
    );
}

#[tokio::test]
async fn allowpm_moderators_lets_only_moderators_send_private_messages() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[("muc#roomconfig_allowpm", "moderators")],
    )
    .await;
    join(&mut bob, "tea", "Bob").await;
    bob.send(&format!(
        "<message type='chat' id='pm1' to='{}'><body>from bob</body></message>",
        occ("tea", "Alice")
    ))
    .await;
    let e = wait_for(&mut bob, "pm refused", |s| {
        attr(s, "id").as_deref() == Some("pm1")
    })
    .await;
    assert!(error_of(&e).is_some(), "{e}");
    alice
        .send(&format!(
            "<message type='chat' id='pm2' to='{}'><body>from alice</body></message>",
            occ("tea", "Bob")
        ))
        .await;
    wait_for(&mut bob, "pm", |s| body(s).as_deref() == Some("from alice")).await;
    let seen = sync(&mut alice).await;
    assert!(
        !seen.iter().any(|s| body(s).as_deref() == Some("from bob")),
        "{seen:#?}"
    );
}

#[tokio::test]
async fn an_invitation_to_an_open_room_adds_no_member() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_instant(&mut alice, "tea", "Alice").await;
    alice
        .send(&format!(
            "<message id='inv1' to='{}'><x xmlns='{NS_USER}'><invite to='bob@localhost'/></x></message>",
            room("tea")
        ))
        .await;
    wait_for(&mut bob, "invitation", |s| {
        is_message(s) && from_is(s, &room("tea"))
    })
    .await;
    // §7.8.2: "Invitations sent through an open room MUST NOT trigger the addition..."
    let l = admin_get(&mut alice, "ml", "tea", "affiliation='member'").await;
    assert_result(&l);
    assert!(list_jids(&l).is_empty(), "{l}");
}

#[tokio::test]
async fn a_declined_invitation_reaches_the_inviter() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_instant(&mut alice, "tea", "Alice").await;
    alice
        .send(&format!(
            "<message id='inv1' to='{}'><x xmlns='{NS_USER}'><invite to='bob@localhost'/></x></message>",
            room("tea")
        ))
        .await;
    wait_for(&mut bob, "invitation", |s| {
        is_message(s) && from_is(s, &room("tea"))
    })
    .await;
    bob.send(&format!(
        "<message id='dec1' to='{}'><x xmlns='{NS_USER}'>\
         <decline to='alice@localhost/res'><reason>Busy</reason></decline></x></message>",
        room("tea")
    ))
    .await;
    // §7.8.2: the room passes the decline on, from the room, naming the decliner.
    let m = wait_for(&mut alice, "decline", |s| {
        is_message(s) && from_is(s, &room("tea")) && s.contains("decline")
    })
    .await;
    let from = child_attr(&m, "decline", NS_USER, "from").unwrap_or_else(|| panic!("{m}"));
    assert!(from.starts_with("bob@localhost"), "{m}");
}

#[tokio::test]
async fn a_groupchat_message_to_an_occupant_is_a_bad_request() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    alice
        .send(&format!(
            "<message type='groupchat' id='gc1' to='{}'><body>wrong type</body></message>",
            occ("tea", "Bob")
        ))
        .await;
    // §7.5: a private message of type groupchat → bad-request (modify).
    let e = wait_for(&mut alice, "error", |s| {
        attr(s, "id").as_deref() == Some("gc1")
    })
    .await;
    assert_error(&e, "bad-request", "modify");
    let seen = sync(&mut bob).await;
    assert!(
        !seen
            .iter()
            .any(|s| body(s).as_deref() == Some("wrong type")),
        "{seen:#?}"
    );
}

#[tokio::test]
async fn history_seconds_keeps_only_recent_messages() {
    let server = Server::start();
    let (mut alice, _bob) = tea_with_bob(&server).await;
    send_groupchat(&mut alice, "tea", "h1", "old news").await;
    wait_groupchat(&mut alice, "tea", "Alice", "old news").await;
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    send_groupchat(&mut alice, "tea", "h2", "fresh news").await;
    wait_groupchat(&mut alice, "tea", "Alice", "fresh news").await;
    let mut carol = user(&server, "carol").await;
    // §7.2.15: only what was sent in the last two seconds.
    let j = join_with(&mut carol, "tea", "Carol", "<history seconds='2'/>").await;
    let bodies: Vec<_> = j.history.iter().filter_map(|s| body(s)).collect();
    assert_eq!(bodies, vec!["fresh news"], "{j:#?}");
}

#[tokio::test]
async fn the_default_history_is_twenty_messages() {
    let server = Server::start();
    let (mut alice, _bob) = tea_with_bob(&server).await;
    for i in 1..=25 {
        send_groupchat(&mut alice, "tea", &format!("h{i}"), &format!("n{i}")).await;
    }
    wait_groupchat(&mut alice, "tea", "Alice", "n25").await;
    let mut carol = user(&server, "carol").await;
    let j = join(&mut carol, "tea", "Carol").await;
    let bodies: Vec<_> = j.history.iter().filter_map(|s| body(s)).collect();
    let want: Vec<_> = (6..=25).map(|i| format!("n{i}")).collect();
    assert_eq!(bodies, want, "[muc] default_history = 20");
}

#[tokio::test]
async fn clients_cannot_forge_muc_user_data() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    bob.send(&format!(
        "<presence to='{}'><show>chat</show><x xmlns='{NS_USER}'>\
         <item affiliation='owner' role='moderator'/><status code='201'/></x></presence>",
        occ("tea", "Bob")
    ))
    .await;
    // §17.3: only the service generates muc#user roles, affiliations and status codes.
    let p = wait_presence(&mut alice, &occ("tea", "Bob"), |s| {
        s.contains("<show>chat</show>")
    })
    .await;
    let el = parse(&p);
    let mut xs = Vec::new();
    find_all(&el, "x", NS_USER, &mut xs);
    assert_eq!(xs.len(), 1, "one muc#user x, the room's: {p}");
    assert_eq!(item_attr(&p, "role").as_deref(), Some("participant"), "{p}");
    assert_eq!(item_attr(&p, "affiliation").as_deref(), Some("none"), "{p}");
    assert!(!has_status(&p, 201), "{p}");
}

#[tokio::test]
async fn self_ping_from_another_resource_is_not_acceptable() {
    let server = Server::start();
    let (_alice, _bob) = tea_with_bob(&server).await;
    let mut bob2 = online(&server, "bob", "phone").await;
    // XEP-0410 §3: only the joined full JID is an occupant.
    let r = iq(
        &mut bob2,
        "sp1",
        &format!(
            "<iq type='get' id='ID' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
            occ("tea", "Bob")
        ),
    )
    .await;
    assert_error(&r, "not-acceptable", "");
}

#[tokio::test]
async fn the_leave_presence_carries_the_occupant_id() {
    let server = Server::start();
    let (mut alice, mut bob) = tea_with_bob(&server).await;
    let p = wait_presence(&mut alice, &occ("tea", "Bob"), |s| {
        attr(s, "type").is_none()
    })
    .await;
    let oid = child_attr(&p, "occupant-id", NS_OCCUPANT_ID, "id").unwrap_or_else(|| panic!("{p}"));
    leave(&mut bob, "tea", "Bob").await;
    // XEP-0421 §4: every presence.
    let p = wait_unavailable(&mut alice, &occ("tea", "Bob")).await;
    assert_eq!(
        child_attr(&p, "occupant-id", NS_OCCUPANT_ID, "id"),
        Some(oid),
        "{p}"
    );
}

/// Groupchat messages and presence broadcasts are serialised once per room
/// and given each session's own `to`: every session must get exactly its
/// own JID, escaped, even with an apostrophe, an ampersand or angle
/// brackets in the resource, and the real-JID variants must not leak.
#[tokio::test]
async fn each_session_gets_its_own_to_even_with_xml_special_characters() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    server.add_user("bob@localhost", "pw");
    // Escaped here as the bind request's XML; the resource is `it's & <ok>"`.
    let mut bob1 = online(&server, "bob", "it&apos;s &amp; &lt;ok&gt;&quot;").await;
    let mut bob2 = online(&server, "bob", "plain").await;
    let mut carol = user(&server, "carol").await;
    create_instant(&mut alice, "tea", "Alice").await;
    join(&mut bob1, "tea", "Bob").await;
    join(&mut bob2, "tea", "Bob").await;
    join(&mut carol, "tea", "Carol").await;
    // Carol's arrival, as each session sees it: its own `to`; only the
    // moderator (alice) sees carol's real JID.
    for (c, to, sees_jid) in [
        (&mut alice, "alice@localhost/res", true),
        (&mut bob1, "bob@localhost/it's & <ok>\"", false),
        (&mut bob2, "bob@localhost/plain", false),
    ] {
        let p = wait_presence(c, &occ("tea", "Carol"), |s| attr(s, "type").is_none()).await;
        assert_eq!(parse(&p).attr("to"), Some(to), "{p}");
        assert_eq!(item_attr(&p, "jid").is_some(), sees_jid, "{p}");
        assert!(!has_status(&p, 110), "{p}");
    }
    alice
        .send(&format!(
            "<message to='{}' type='groupchat' id='fan'><body>one for all</body></message>",
            room("tea")
        ))
        .await;
    for (c, to) in [
        (&mut alice, "alice@localhost/res"),
        (&mut bob1, "bob@localhost/it's & <ok>\""),
        (&mut bob2, "bob@localhost/plain"),
        (&mut carol, "carol@localhost/res"),
    ] {
        let m = wait_for(c, "the groupchat message", |s| {
            body(s).as_deref() == Some("one for all")
        })
        .await;
        let el = parse(&m);
        assert_eq!(el.attr("to"), Some(to), "{m}");
        assert_eq!(el.attr("from"), Some(occ("tea", "Alice").as_str()), "{m}");
        assert_eq!(el.attr("id"), Some("fan"), "{m}");
        assert_eq!(el.attr("type"), Some("groupchat"), "{m}");
    }
    // Bob's first session leaves: it alone gets the 110 unavailable, with its own `to`.
    leave(&mut bob1, "tea", "Bob").await;
    // Carol's leave reaches each remaining session with its own `to`, and
    // her own session gets status 110.
    carol
        .send(&format!(
            "<presence to='{}' type='unavailable'/>",
            occ("tea", "Carol")
        ))
        .await;
    for (c, to, own) in [
        (&mut alice, "alice@localhost/res", false),
        (&mut bob2, "bob@localhost/plain", false),
        (&mut carol, "carol@localhost/res", true),
    ] {
        let p = wait_unavailable(c, &occ("tea", "Carol")).await;
        assert_eq!(parse(&p).attr("to"), Some(to), "{p}");
        assert_eq!(has_status(&p, 110), own, "{p}");
    }
}
