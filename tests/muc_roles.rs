//! Multi-user chat roles and affiliations (XEP-0045 §§8-10): kick, ban,
//! voice, moderator, the member/admin/owner lists with their permission
//! rules, status codes 321/322, and XEP-0425 moderation of a message, against
//! the real server.

mod common;

use common::Server;
use common::client::{Client, attr};
use common::muc::*;

/// Alice owns the instant room `tea`; the others join with their name capitalised.
async fn room_with(server: &Server, others: &[&str]) -> (Client, Vec<Client>) {
    let mut alice = user(server, "alice").await;
    create_instant(&mut alice, "tea", "Alice").await;
    let mut clients = Vec::new();
    for name in others {
        let mut c = user(server, name).await;
        join(&mut c, "tea", &capitalise(name)).await;
        clients.push(c);
    }
    (alice, clients)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_moderator_kicks_an_occupant() {
    let server = Server::start();
    let (mut alice, mut o) = room_with(&server, &["bob", "carol"]).await;
    let r = admin_set(
        &mut alice,
        "kick",
        "tea",
        "<item nick='Bob' role='none'><reason>Be nice</reason></item>",
    )
    .await;
    assert_result(&r);
    // §8.2: the kicked occupant gets 307 (and 110), the others 307.
    let p = wait_unavailable(&mut o[0], &occ("tea", "Bob")).await;
    assert!(has_status(&p, 307), "{p}");
    assert!(has_status(&p, 110), "{p}");
    assert_eq!(item_attr(&p, "role").as_deref(), Some("none"), "{p}");
    let reason = user_x(&p).and_then(|x| find(&x, "reason", NS_USER).map(|r| r.text()));
    assert_eq!(reason.as_deref(), Some("Be nice"), "{p}");
    for c in [&mut alice, &mut o[1]] {
        let p = wait_unavailable(c, &occ("tea", "Bob")).await;
        assert!(has_status(&p, 307), "{p}");
        assert!(!has_status(&p, 110), "{p}");
    }
    // Bob is out: his messages are refused.
    send_groupchat(&mut o[0], "tea", "g1", "still here?").await;
    let e = wait_for(&mut o[0], "error", |s| {
        attr(s, "id").as_deref() == Some("g1")
    })
    .await;
    assert!(error_of(&e).is_some(), "{e}");
}

#[tokio::test]
async fn a_participant_cannot_kick() {
    let server = Server::start();
    let (mut alice, mut o) = room_with(&server, &["bob", "carol"]).await;
    let r = set_role(&mut o[0], "tea", "Carol", "none").await;
    // §8.2: not a moderator → forbidden.
    assert_error(&r, "forbidden", "");
    let r = set_role(&mut o[0], "tea", "Alice", "none").await;
    assert_error(&r, "forbidden", "");
    let seen = sync(&mut alice).await;
    assert!(
        !seen
            .iter()
            .any(|s| attr(s, "type").as_deref() == Some("unavailable")),
        "{seen:#?}"
    );
}

#[tokio::test]
async fn an_admin_cannot_kick_or_ban_owners_and_admins() {
    let server = Server::start();
    let (mut alice, mut o) = room_with(&server, &["bob", "carol", "dave"]).await;
    assert_result(&set_affiliation(&mut alice, "tea", "bob@localhost", "admin").await);
    assert_result(&set_affiliation(&mut alice, "tea", "carol@localhost", "admin").await);
    wait_presence(&mut o[0], &occ("tea", "Bob"), |s| {
        item_attr(s, "role").as_deref() == Some("moderator")
    })
    .await;
    // §8.2 / §9.1: not-allowed against a higher or equal affiliation.
    let r = set_role(&mut o[0], "tea", "Alice", "none").await;
    assert_error(&r, "not-allowed", "cancel");
    let r = set_role(&mut o[0], "tea", "Carol", "none").await;
    assert_error(&r, "not-allowed", "cancel");
    let r = set_affiliation(&mut o[0], "tea", "alice@localhost", "outcast").await;
    assert_error(&r, "not-allowed", "cancel");
    let r = set_affiliation(&mut o[0], "tea", "carol@localhost", "outcast").await;
    assert_error(&r, "not-allowed", "cancel");
    // But an admin kicks a plain occupant.
    assert_result(&set_role(&mut o[0], "tea", "Dave", "none").await);
    let p = wait_unavailable(&mut o[2], &occ("tea", "Dave")).await;
    assert!(has_status(&p, 307), "{p}");
}

#[tokio::test]
async fn banning_removes_the_user_and_keeps_them_out() {
    let server = Server::start();
    let (mut alice, mut o) = room_with(&server, &["bob", "carol"]).await;
    let r = admin_set(
        &mut alice,
        "ban",
        "tea",
        "<item affiliation='outcast' jid='bob@localhost'><reason>Spam</reason></item>",
    )
    .await;
    assert_result(&r);
    // §9.1: 301 to the banned user (with 110) and to the others.
    let p = wait_unavailable(&mut o[0], &occ("tea", "Bob")).await;
    assert!(has_status(&p, 301), "{p}");
    assert!(has_status(&p, 110), "{p}");
    assert_eq!(
        item_attr(&p, "affiliation").as_deref(),
        Some("outcast"),
        "{p}"
    );
    let p = wait_unavailable(&mut o[1], &occ("tea", "Bob")).await;
    assert!(has_status(&p, 301), "{p}");
    // The outcast list has bob.
    let l = admin_get(&mut alice, "out", "tea", "affiliation='outcast'").await;
    assert_result(&l);
    assert_eq!(list_jids(&l), vec!["bob@localhost".to_owned()], "{l}");
    // Bob cannot come back, from any resource.
    let mut bob2 = online(&server, "bob", "other").await;
    let err = try_join(&mut bob2, "tea", "Bobby")
        .await
        .expect_err("banned");
    assert_error(&err, "forbidden", "auth");
    // Unbanning lets him in again.
    assert_result(&set_affiliation(&mut alice, "tea", "bob@localhost", "none").await);
    join(&mut bob2, "tea", "Bobby").await;
}

#[tokio::test]
async fn a_participant_cannot_ban() {
    let server = Server::start();
    let (_alice, mut o) = room_with(&server, &["bob", "carol"]).await;
    let r = set_affiliation(&mut o[0], "tea", "carol@localhost", "outcast").await;
    assert_error(&r, "forbidden", "");
}

#[tokio::test]
async fn voice_is_granted_and_revoked_in_a_moderated_room() {
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
    assert_eq!(item_attr(&j.own, "role").as_deref(), Some("visitor"));
    // §7.4: a visitor may not speak.
    send_groupchat(&mut bob, "tea", "v1", "can I speak?").await;
    let e = wait_for(&mut bob, "error", |s| {
        attr(s, "id").as_deref() == Some("v1")
    })
    .await;
    assert_error(&e, "forbidden", "");
    let seen = sync(&mut alice).await;
    assert!(
        !seen
            .iter()
            .any(|s| body(s).as_deref() == Some("can I speak?")),
        "{seen:#?}"
    );
    // §8.3: grant voice.
    assert_result(&set_role(&mut alice, "tea", "Bob", "participant").await);
    for c in [&mut alice, &mut bob] {
        wait_presence(c, &occ("tea", "Bob"), |s| {
            item_attr(s, "role").as_deref() == Some("participant")
        })
        .await;
    }
    send_groupchat(&mut bob, "tea", "v2", "thank you").await;
    wait_groupchat(&mut alice, "tea", "Bob", "thank you").await;
    // §8.4: revoke it.
    assert_result(&set_role(&mut alice, "tea", "Bob", "visitor").await);
    wait_presence(&mut bob, &occ("tea", "Bob"), |s| {
        item_attr(s, "role").as_deref() == Some("visitor")
    })
    .await;
    send_groupchat(&mut bob, "tea", "v3", "again?").await;
    let e = wait_for(&mut bob, "error", |s| {
        attr(s, "id").as_deref() == Some("v3")
    })
    .await;
    assert_error(&e, "forbidden", "");
}

#[tokio::test]
async fn voice_cannot_be_revoked_from_an_admin() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    let mut carol = user(&server, "carol").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[("muc#roomconfig_moderatedroom", "1")],
    )
    .await;
    join(&mut bob, "tea", "Bob").await;
    join(&mut carol, "tea", "Carol").await;
    assert_result(&set_affiliation(&mut alice, "tea", "bob@localhost", "admin").await);
    assert_result(&set_affiliation(&mut alice, "tea", "carol@localhost", "admin").await);
    wait_presence(&mut bob, &occ("tea", "Carol"), |s| {
        item_attr(s, "affiliation").as_deref() == Some("admin")
    })
    .await;
    // §8.4: not-allowed.
    let r = set_role(&mut bob, "tea", "Carol", "visitor").await;
    assert_error(&r, "not-allowed", "cancel");
}

#[tokio::test]
async fn admins_grant_and_revoke_moderator() {
    let server = Server::start();
    let (mut alice, mut o) = room_with(&server, &["bob", "carol"]).await;
    // §9.6
    assert_result(&set_role(&mut alice, "tea", "Bob", "moderator").await);
    for c in o.iter_mut() {
        wait_presence(c, &occ("tea", "Bob"), |s| {
            item_attr(s, "role").as_deref() == Some("moderator")
        })
        .await;
    }
    // A moderator sees real JIDs in a semi-anonymous room (Carol's, here on a nick change).
    o[1].send(&format!("<presence to='{}'/>", occ("tea", "Caroline")))
        .await;
    let p = wait_presence(&mut o[0], &occ("tea", "Caroline"), |s| {
        attr(s, "type").is_none()
    })
    .await;
    assert_eq!(
        item_attr(&p, "jid").as_deref(),
        Some("carol@localhost/res"),
        "{p}"
    );
    // A moderator who is not an admin may not make moderators.
    let r = set_role(&mut o[0], "tea", "Caroline", "moderator").await;
    assert!(error_of(&r).is_some(), "{r}");
    // §9.7: revoke.
    assert_result(&set_role(&mut alice, "tea", "Bob", "participant").await);
    wait_presence(&mut o[0], &occ("tea", "Bob"), |s| {
        item_attr(s, "role").as_deref() == Some("participant")
    })
    .await;
}

#[tokio::test]
async fn moderator_status_cannot_be_revoked_from_an_owner_by_an_admin() {
    let server = Server::start();
    let (mut alice, mut o) = room_with(&server, &["bob"]).await;
    assert_result(&set_affiliation(&mut alice, "tea", "bob@localhost", "admin").await);
    wait_presence(&mut o[0], &occ("tea", "Bob"), |s| {
        item_attr(s, "role").as_deref() == Some("moderator")
    })
    .await;
    // §9.7
    let r = set_role(&mut o[0], "tea", "Alice", "participant").await;
    assert_error(&r, "not-allowed", "cancel");
}

#[tokio::test]
async fn the_member_list_is_read_and_changed_by_admins() {
    let server = Server::start();
    let (mut alice, mut o) = room_with(&server, &["bob"]).await;
    let r = admin_set(
        &mut alice,
        "m1",
        "tea",
        "<item affiliation='member' jid='carol@localhost'/>\
         <item affiliation='member' jid='dave@localhost'/>",
    )
    .await;
    assert_result(&r);
    // §9.5
    let l = admin_get(&mut alice, "ml", "tea", "affiliation='member'").await;
    assert_result(&l);
    assert_eq!(
        list_jids(&l),
        vec!["carol@localhost".to_owned(), "dave@localhost".to_owned()],
        "{l}"
    );
    // Bob, in the room with no affiliation, becomes a member: his presence says so.
    assert_result(&set_affiliation(&mut alice, "tea", "bob@localhost", "member").await);
    let p = wait_presence(&mut o[0], &occ("tea", "Bob"), |s| {
        item_attr(s, "affiliation").as_deref() == Some("member")
    })
    .await;
    assert!(has_status(&p, 110), "{p}");
    let l = admin_get(&mut alice, "ml2", "tea", "affiliation='member'").await;
    assert_eq!(list_jids(&l).len(), 3, "{l}");
    // Removing a member.
    assert_result(&set_affiliation(&mut alice, "tea", "dave@localhost", "none").await);
    let l = admin_get(&mut alice, "ml3", "tea", "affiliation='member'").await;
    assert_eq!(
        list_jids(&l),
        vec!["bob@localhost".to_owned(), "carol@localhost".to_owned()],
        "{l}"
    );
    // A participant may not change the list.
    let r = set_affiliation(&mut o[0], "tea", "erin@localhost", "member").await;
    assert_error(&r, "forbidden", "");
}

#[tokio::test]
async fn owners_manage_the_admin_and_owner_lists() {
    let server = Server::start();
    let (mut alice, mut o) = room_with(&server, &["bob"]).await;
    assert_result(&set_affiliation(&mut alice, "tea", "bob@localhost", "admin").await);
    assert_result(&set_affiliation(&mut alice, "tea", "carol@localhost", "owner").await);
    // §10.5, §10.8
    let l = admin_get(&mut alice, "ol", "tea", "affiliation='owner'").await;
    assert_result(&l);
    assert_eq!(
        list_jids(&l),
        vec!["alice@localhost".to_owned(), "carol@localhost".to_owned()],
        "{l}"
    );
    let l = admin_get(&mut alice, "al", "tea", "affiliation='admin'").await;
    assert_eq!(list_jids(&l), vec!["bob@localhost".to_owned()], "{l}");
    // An admin may not make admins or owners, nor demote an owner.
    let r = set_affiliation(&mut o[0], "tea", "dave@localhost", "admin").await;
    assert!(error_of(&r).is_some(), "{r}");
    let r = set_affiliation(&mut o[0], "tea", "dave@localhost", "owner").await;
    assert!(error_of(&r).is_some(), "{r}");
    let r = set_affiliation(&mut o[0], "tea", "carol@localhost", "member").await;
    assert!(error_of(&r).is_some(), "{r}");
    let l = admin_get(&mut alice, "ol2", "tea", "affiliation='owner'").await;
    assert_eq!(list_jids(&l).len(), 2, "{l}");
    // But an admin manages members.
    assert_result(&set_affiliation(&mut o[0], "tea", "dave@localhost", "member").await);
}

#[tokio::test]
async fn the_last_owner_cannot_step_down() {
    let server = Server::start();
    let (mut alice, _o) = room_with(&server, &[]).await;
    // §10.6
    let r = set_affiliation(&mut alice, "tea", "alice@localhost", "admin").await;
    assert_error(&r, "conflict", "");
    // With a second owner, she can.
    assert_result(&set_affiliation(&mut alice, "tea", "carol@localhost", "owner").await);
    assert_result(&set_affiliation(&mut alice, "tea", "alice@localhost", "admin").await);
    let p = wait_presence(&mut alice, &occ("tea", "Alice"), |s| {
        item_attr(s, "affiliation").as_deref() == Some("admin")
    })
    .await;
    assert!(has_status(&p, 110), "{p}");
}

#[tokio::test]
async fn losing_membership_in_a_members_only_room_removes_with_321() {
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
    assert_result(&set_affiliation(&mut alice, "tea", "bob@localhost", "member").await);
    join(&mut bob, "tea", "Bob").await;
    assert_result(&set_affiliation(&mut alice, "tea", "bob@localhost", "none").await);
    // §9.4
    let p = wait_unavailable(&mut bob, &occ("tea", "Bob")).await;
    assert!(has_status(&p, 321), "{p}");
    assert!(has_status(&p, 110), "{p}");
    let p = wait_unavailable(&mut alice, &occ("tea", "Bob")).await;
    assert!(has_status(&p, 321), "{p}");
}

#[tokio::test]
async fn becoming_members_only_removes_non_members_with_322() {
    let server = Server::start();
    let (mut alice, mut o) = room_with(&server, &["bob", "carol"]).await;
    assert_result(&set_affiliation(&mut alice, "tea", "carol@localhost", "member").await);
    configure(&mut alice, "tea", &[("muc#roomconfig_membersonly", "1")]).await;
    // §10.2: non-members leave with 322; members stay.
    let p = wait_unavailable(&mut o[0], &occ("tea", "Bob")).await;
    assert!(has_status(&p, 322), "{p}");
    let p = wait_unavailable(&mut alice, &occ("tea", "Bob")).await;
    assert!(has_status(&p, 322), "{p}");
    let seen = sync(&mut o[1]).await;
    assert!(
        !seen.iter().any(|s| from_is(s, &occ("tea", "Carol"))
            && attr(s, "type").as_deref() == Some("unavailable")),
        "{seen:#?}"
    );
    send_groupchat(&mut o[1], "tea", "c1", "still in").await;
    wait_groupchat(&mut alice, "tea", "Carol", "still in").await;
}

/// Send a groupchat message and return its stanza id (from the reflection).
async fn stanza_id_of(c: &mut Client, nick: &str, text: &str) -> String {
    send_groupchat(c, "tea", "m", text).await;
    let m = wait_groupchat(c, "tea", nick, text).await;
    child_attr(&m, "stanza-id", NS_SID, "id").unwrap_or_else(|| panic!("no stanza-id: {m}"))
}

fn moderate(id: &str) -> String {
    format!(
        "<iq type='set' id='ID' to='{}'><moderate id='{id}' xmlns='urn:xmpp:message-moderate:1'>\
         <retract xmlns='urn:xmpp:message-retract:1'/><reason>Off topic</reason></moderate></iq>",
        room("tea")
    )
}

#[tokio::test]
async fn a_moderator_retracts_a_message() {
    let server = Server::start();
    let (mut alice, mut o) = room_with(&server, &["bob"]).await;
    let sid = stanza_id_of(&mut o[0], "Bob", "buy cheap tea").await;
    wait_groupchat(&mut alice, "tea", "Bob", "buy cheap tea").await;
    let r = iq(&mut alice, "mod1", &moderate(&sid)).await;
    assert_result(&r);
    // XEP-0425 §4: everyone gets the retraction from the room.
    for c in [&mut alice, &mut o[0]] {
        let m = wait_for(c, "retraction", |s| {
            s.contains("urn:xmpp:message-retract:1")
        })
        .await;
        assert!(from_is(&m, &room("tea")), "{m}");
        assert_eq!(attr(&m, "type").as_deref(), Some("groupchat"), "{m}");
        assert_eq!(
            child_attr(&m, "retract", "urn:xmpp:message-retract:1", "id"),
            Some(sid.clone()),
            "{m}"
        );
        assert_eq!(
            child_attr(&m, "moderated", "urn:xmpp:message-moderate:1", "by"),
            Some(occ("tea", "Alice")),
            "{m}"
        );
        let el = parse(&m);
        let reason = find(&el, "retract", "urn:xmpp:message-retract:1")
            .and_then(|r| r.children().find(|c| c.name() == "reason"))
            .map(|r| r.text());
        assert_eq!(reason.as_deref(), Some("Off topic"), "{m}");
    }
    // The retracted message is no longer in the history.
    let mut carol = user(&server, "carol").await;
    let j = join(&mut carol, "tea", "Carol").await;
    assert!(
        !j.history
            .iter()
            .any(|h| body(h).as_deref() == Some("buy cheap tea")),
        "{j:#?}"
    );
}

#[tokio::test]
async fn a_participant_cannot_retract_messages() {
    let server = Server::start();
    let (mut alice, mut o) = room_with(&server, &["bob"]).await;
    let sid = stanza_id_of(&mut alice, "Alice", "important").await;
    let r = iq(&mut o[0], "mod1", &moderate(&sid)).await;
    // XEP-0425 §4.2
    assert_error(&r, "forbidden", "");
    let mut carol = user(&server, "carol").await;
    let j = join(&mut carol, "tea", "Carol").await;
    assert!(
        j.history
            .iter()
            .any(|h| body(h).as_deref() == Some("important")),
        "{j:#?}"
    );
}

#[tokio::test]
async fn changing_role_and_affiliation_in_one_item_is_a_bad_request() {
    let server = Server::start();
    let (mut alice, _o) = room_with(&server, &["bob"]).await;
    let r = admin_set(
        &mut alice,
        "both",
        "tea",
        "<item nick='Bob' jid='bob@localhost' role='moderator' affiliation='admin'/>",
    )
    .await;
    // §17.4 (business rules, IQ, item 4): both attributes → bad-request.
    assert_error(&r, "bad-request", "");
}

#[tokio::test]
async fn a_kicked_occupant_may_come_back() {
    let server = Server::start();
    let (mut alice, mut o) = room_with(&server, &["bob"]).await;
    assert_result(&set_role(&mut alice, "tea", "Bob", "none").await);
    wait_unavailable(&mut o[0], &occ("tea", "Bob")).await;
    // Kicking is not banning (§8.2).
    let j = join(&mut o[0], "tea", "Bob").await;
    assert_eq!(item_attr(&j.own, "role").as_deref(), Some("participant"));
}

#[tokio::test]
async fn the_moderator_list_is_available_to_moderators() {
    let server = Server::start();
    let (mut alice, _o) = room_with(&server, &["bob"]).await;
    assert_result(&set_role(&mut alice, "tea", "Bob", "moderator").await);
    // §9.8
    let r = admin_get(&mut alice, "mods", "tea", "role='moderator'").await;
    assert_result(&r);
    let el = parse(&r);
    let mut items = Vec::new();
    find_all(&el, "item", NS_ADMIN, &mut items);
    let mut nicks: Vec<_> = items.iter().filter_map(|i| i.attr("nick")).collect();
    nicks.sort();
    assert_eq!(nicks, vec!["Alice", "Bob"], "{r}");
}

#[tokio::test]
async fn owners_can_be_set_through_the_configuration_form() {
    let server = Server::start();
    server.add_user("carol@localhost", "pw");
    let (mut alice, _o) = room_with(&server, &[]).await;
    configure(
        &mut alice,
        "tea",
        &[
            ("muc#roomconfig_roomowners", "alice@localhost"),
            ("muc#roomconfig_roomowners", "carol@localhost"),
        ],
    )
    .await;
    let l = admin_get(&mut alice, "ol", "tea", "affiliation='owner'").await;
    assert_eq!(
        list_jids(&l),
        vec!["alice@localhost".to_owned(), "carol@localhost".to_owned()],
        "{l}"
    );
    // Carol acts as an owner.
    let mut carol = online(&server, "carol", "res").await;
    join(&mut carol, "tea", "Carol").await;
    assert_result(&get_config(&mut carol, "tea").await);
}

#[tokio::test]
async fn banning_removes_every_session_of_the_user() {
    let server = Server::start();
    let (mut alice, mut o) = room_with(&server, &["bob"]).await;
    let mut bob2 = online(&server, "bob", "phone").await;
    join(&mut bob2, "tea", "Bob").await;
    assert_result(&set_affiliation(&mut alice, "tea", "bob@localhost", "outcast").await);
    // §9.1: each of Bob's sessions is told it is banned.
    for c in [&mut o[0], &mut bob2] {
        let p = wait_unavailable(c, &occ("tea", "Bob")).await;
        assert!(has_status(&p, 301), "{p}");
        assert!(has_status(&p, 110), "{p}");
    }
    // Neither gets the room's messages any more.
    send_groupchat(&mut alice, "tea", "g1", "bob is gone").await;
    wait_groupchat(&mut alice, "tea", "Alice", "bob is gone").await;
    for c in [&mut o[0], &mut bob2] {
        let seen = sync(c).await;
        assert!(
            !seen
                .iter()
                .any(|s| body(s).as_deref() == Some("bob is gone")),
            "{seen:#?}"
        );
    }
}

#[tokio::test]
async fn kicking_a_shared_nick_removes_every_session() {
    let server = Server::start();
    let (mut alice, mut o) = room_with(&server, &["bob"]).await;
    let mut bob2 = online(&server, "bob", "phone").await;
    join(&mut bob2, "tea", "Bob").await;
    assert_result(&set_role(&mut alice, "tea", "Bob", "none").await);
    for c in [&mut o[0], &mut bob2] {
        let p = wait_unavailable(c, &occ("tea", "Bob")).await;
        assert!(has_status(&p, 307), "{p}");
    }
    let r = admin_get(&mut alice, "parts", "tea", "role='participant'").await;
    assert_result(&r);
    let el = parse(&r);
    let mut items = Vec::new();
    find_all(&el, "item", NS_ADMIN, &mut items);
    assert!(items.is_empty(), "nobody left with voice: {r}");
}

#[tokio::test]
async fn an_outcast_list_entry_needs_no_occupant() {
    let server = Server::start();
    let (mut alice, _o) = room_with(&server, &[]).await;
    // §9.1: banning works on a bare JID that is not in the room, with a reason.
    let r = admin_set(
        &mut alice,
        "ban",
        "tea",
        "<item affiliation='outcast' jid='mallory@localhost'><reason>Known troll</reason></item>",
    )
    .await;
    assert_result(&r);
    let l = admin_get(&mut alice, "out", "tea", "affiliation='outcast'").await;
    assert_eq!(list_jids(&l), vec!["mallory@localhost".to_owned()], "{l}");
    let el = parse(&l);
    let reason = find(&el, "reason", NS_ADMIN).map(|r| r.text());
    assert_eq!(reason.as_deref(), Some("Known troll"), "{l}");
    let mut mallory = user(&server, "mallory").await;
    let err = try_join(&mut mallory, "tea", "Mal")
        .await
        .expect_err("banned");
    assert_error(&err, "forbidden", "auth");
}
