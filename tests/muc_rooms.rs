//! Multi-user chat rooms (XEP-0045 §10): creation (instant and reserved),
//! locking, the owner configuration form, creation restrictions, server
//! admins acting as owners, destruction and persistence across restarts,
//! over real connections with the raw test client.

mod common;

use common::Server;
use common::client::attr;
use common::muc::*;

/// A server whose `[server]` section also gets `keys`, with `extra` appended.
fn start_with_server_keys(keys: &str, extra: &str) -> Server {
    Server::start_edited(|text| {
        text.replacen("[server]\n", &format!("[server]\n{}\n", keys.trim_end()), 1) + extra
    })
}

#[tokio::test]
async fn joining_a_nonexistent_room_creates_it_with_the_joiner_as_owner() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let own = create_locked(&mut alice, "tea", "Alice").await;
    // §10.1.1: self-presence with 110 and 201, owner affiliation, moderator role.
    assert!(from_is(&own, &occ("tea", "Alice")), "{own}");
    assert!(has_status(&own, 110), "{own}");
    assert!(has_status(&own, 201), "{own}");
    assert_eq!(
        item_attr(&own, "affiliation").as_deref(),
        Some("owner"),
        "{own}"
    );
    assert_eq!(
        item_attr(&own, "role").as_deref(),
        Some("moderator"),
        "{own}"
    );
    assert_eq!(attr(&own, "type"), None, "available presence: {own}");
}

#[tokio::test]
async fn a_new_room_is_locked_until_the_owner_accepts_an_instant_room() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_locked(&mut alice, "tea", "Alice").await;
    // §7.2.10: a locked room refuses entry with item-not-found.
    let err = try_join(&mut bob, "tea", "Bob")
        .await
        .expect_err("locked room");
    assert_error(&err, "item-not-found", "cancel");
    // §10.1.2: the instant room is accepted with an empty submitted form.
    let r = iq(
        &mut alice,
        "inst",
        &format!(
            "<iq type='set' id='ID' to='{}'><query xmlns='{NS_OWNER}'>\
             <x xmlns='jabber:x:data' type='submit'/></query></iq>",
            room("tea")
        ),
    )
    .await;
    assert_result(&r);
    let joined = join(&mut bob, "tea", "Bob").await;
    assert!(joined.presence_of("tea", "Alice").is_some(), "{joined:#?}");
    assert!(
        !has_status(&joined.own, 201),
        "not a new room for Bob: {}",
        joined.own
    );
    assert_eq!(
        item_attr(&joined.own, "role").as_deref(),
        Some("participant")
    );
    assert_eq!(
        item_attr(&joined.own, "affiliation").as_deref(),
        Some("none")
    );
}

#[tokio::test]
async fn the_owner_configures_a_reserved_room_with_the_form() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_locked(&mut alice, "tea", "Alice").await;
    // §10.1.3: the owner asks for the form.
    let form = get_config(&mut alice, "tea").await;
    assert_result(&form);
    assert_eq!(
        form_value(&form, "FORM_TYPE").as_deref(),
        Some("http://jabber.org/protocol/muc#roomconfig"),
        "{form}"
    );
    let vars = form_vars(&form);
    for var in [
        "muc#roomconfig_roomname",
        "muc#roomconfig_roomdesc",
        "muc#roomconfig_persistentroom",
        "muc#roomconfig_publicroom",
        "muc#roomconfig_membersonly",
        "muc#roomconfig_passwordprotectedroom",
        "muc#roomconfig_roomsecret",
        "muc#roomconfig_moderatedroom",
        "muc#roomconfig_maxusers",
        "muc#maxhistoryfetch",
        "muc#roomconfig_whois",
        "muc#roomconfig_changesubject",
        "muc#roomconfig_allowinvites",
        "muc#roomconfig_allowpm",
        "muc#roomconfig_roomowners",
        "muc#roomconfig_roomadmins",
    ] {
        assert!(vars.iter().any(|v| v == var), "field {var} missing: {form}");
    }
    // Still locked while the form is being filled in.
    let err = try_join(&mut bob, "tea", "Bob")
        .await
        .expect_err("still locked");
    assert_error(&err, "item-not-found", "cancel");

    configure(
        &mut alice,
        "tea",
        &[
            ("muc#roomconfig_roomname", "Tea Room"),
            ("muc#roomconfig_roomdesc", "Talk about tea"),
        ],
    )
    .await;
    join(&mut bob, "tea", "Bob").await;
    // The new configuration is what the form now shows.
    let form = get_config(&mut alice, "tea").await;
    assert_eq!(
        form_value(&form, "muc#roomconfig_roomname").as_deref(),
        Some("Tea Room"),
        "{form}"
    );
    assert_eq!(
        form_value(&form, "muc#roomconfig_roomdesc").as_deref(),
        Some("Talk about tea"),
        "{form}"
    );
}

#[tokio::test]
async fn the_configuration_form_shows_jaseurs_defaults() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    create_instant(&mut alice, "tea", "Alice").await;
    let form = get_config(&mut alice, "tea").await;
    assert_result(&form);
    let v = |var: &str| form_value(&form, var).unwrap_or_else(|| panic!("no {var}: {form}"));
    assert!(
        truthy(&v("muc#roomconfig_publicroom")),
        "public by default: {form}"
    );
    assert!(
        !truthy(&v("muc#roomconfig_persistentroom")),
        "temporary by default: {form}"
    );
    assert!(
        !truthy(&v("muc#roomconfig_membersonly")),
        "open by default: {form}"
    );
    assert!(
        !truthy(&v("muc#roomconfig_passwordprotectedroom")),
        "{form}"
    );
    assert!(!truthy(&v("muc#roomconfig_moderatedroom")), "{form}");
    assert!(!truthy(&v("muc#roomconfig_changesubject")), "{form}");
    assert!(!truthy(&v("muc#roomconfig_allowinvites")), "{form}");
    assert_eq!(
        v("muc#roomconfig_whois"),
        "moderators",
        "semi-anonymous: {form}"
    );
    assert_eq!(v("muc#roomconfig_allowpm"), "anyone", "{form}");
    // The creator is listed as an owner.
    let owners = form_values(&form, "muc#roomconfig_roomowners").unwrap_or_default();
    assert!(owners.iter().any(|o| o == "alice@localhost"), "{form}");
}

#[tokio::test]
async fn only_owners_get_or_submit_the_configuration_form() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_instant(&mut alice, "tea", "Alice").await;
    join(&mut bob, "tea", "Bob").await;
    // §10.2: not an owner → forbidden.
    let r = get_config(&mut bob, "tea").await;
    assert_error(&r, "forbidden", "");
    let r = iq(
        &mut bob,
        "cfg-bob",
        &format!(
            "<iq type='set' id='ID' to='{}'><query xmlns='{NS_OWNER}'>{}</query></iq>",
            room("tea"),
            config_form(&[("muc#roomconfig_roomname", "Hijacked")])
        ),
    )
    .await;
    assert_error(&r, "forbidden", "");
    let form = get_config(&mut alice, "tea").await;
    assert_ne!(
        form_value(&form, "muc#roomconfig_roomname").as_deref(),
        Some("Hijacked")
    );
}

#[tokio::test]
async fn a_password_protected_room_without_a_password_is_not_acceptable() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    create_locked(&mut alice, "tea", "Alice").await;
    // §10.1.3: a blank password for a password-protected room is not-acceptable.
    let r = try_configure(
        &mut alice,
        "tea",
        &[
            ("muc#roomconfig_passwordprotectedroom", "1"),
            ("muc#roomconfig_roomsecret", ""),
        ],
    )
    .await;
    assert_error(&r, "not-acceptable", "modify");
}

#[tokio::test]
async fn with_room_creation_admins_only_server_admins_create_rooms() {
    let server = start_with_server_keys(
        "admins = [\"root@localhost\"]",
        "[muc]\nroom_creation = \"admins\"\n",
    );
    let mut bob = user(&server, "bob").await;
    let mut root = user(&server, "root").await;
    // §10.1.1: restricted creation → not-allowed.
    let err = try_join(&mut bob, "tea", "Bob")
        .await
        .expect_err("bob may not create");
    assert_error(&err, "not-allowed", "cancel");
    let own = create_instant(&mut root, "tea", "Root").await;
    assert_eq!(item_attr(&own, "affiliation").as_deref(), Some("owner"));
    // Joining an existing room stays open to everyone.
    join(&mut bob, "tea", "Bob").await;
}

#[tokio::test]
async fn one_account_owns_at_most_max_rooms_per_user() {
    let server = start_with_server_keys(
        "admins = [\"root@localhost\"]",
        "[muc]\nmax_rooms_per_user = 2\n",
    );
    let mut bob = user(&server, "bob").await;
    let mut root = user(&server, "root").await;
    create_instant(&mut bob, "un", "Bob").await;
    create_instant(&mut bob, "deux", "Bob").await;
    let err = try_join(&mut bob, "trois", "Bob")
        .await
        .expect_err("a third room is one too many");
    assert_error(&err, "not-allowed", "cancel");
    // Joining rooms of others is not limited, nor are server admins.
    join(&mut root, "un", "Root").await;
    for name in ["a", "b", "c"] {
        create_instant(&mut root, name, "Root").await;
    }
}

#[tokio::test]
async fn local_users_create_rooms_by_default() {
    let server = Server::start();
    let mut bob = user(&server, "bob").await;
    let own = create_instant(&mut bob, "bobs", "Bob").await;
    assert!(has_status(&own, 201));
}

#[tokio::test]
async fn a_server_admin_acts_as_owner_of_any_room() {
    let server = start_with_server_keys("admins = [\"root@localhost\"]", "");
    let mut alice = user(&server, "alice").await;
    let mut root = user(&server, "root").await;
    let mut bob = user(&server, "bob").await;
    create_instant(&mut alice, "tea", "Alice").await;
    join(&mut root, "tea", "Root").await;
    join(&mut bob, "tea", "Bob").await;
    // The admin gets and submits the owner form.
    let form = get_config(&mut root, "tea").await;
    assert_result(&form);
    configure(
        &mut root,
        "tea",
        &[("muc#roomconfig_roomname", "Chosen by root")],
    )
    .await;
    let form = get_config(&mut alice, "tea").await;
    assert_eq!(
        form_value(&form, "muc#roomconfig_roomname").as_deref(),
        Some("Chosen by root"),
        "{form}"
    );
    // ... and can change affiliations as an owner would.
    let r = set_affiliation(&mut root, "tea", "bob@localhost", "admin").await;
    assert_result(&r);
    let p = wait_presence(&mut bob, &occ("tea", "Bob"), |s| {
        item_attr(s, "affiliation").as_deref() == Some("admin")
    })
    .await;
    assert!(has_status(&p, 110), "{p}");
}

#[tokio::test]
async fn changing_the_room_to_non_anonymous_notifies_occupants_with_172() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_instant(&mut alice, "tea", "Alice").await;
    join(&mut bob, "tea", "Bob").await;
    configure(&mut alice, "tea", &[("muc#roomconfig_whois", "anyone")]).await;
    // §10.2.1: a message from the room with status 172.
    let m = wait_for(&mut bob, "status 172 message", |s| {
        is_message(s) && from_is(s, &room("tea")) && has_status(s, 172)
    })
    .await;
    assert_eq!(attr(&m, "type").as_deref(), Some("groupchat"), "{m}");
}

#[tokio::test]
async fn destroying_a_room_sends_occupants_the_alternate_venue() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_instant(&mut alice, "tea", "Alice").await;
    join(&mut bob, "tea", "Bob").await;
    let r = iq(
        &mut alice,
        "destroy",
        &format!(
            "<iq type='set' id='ID' to='{}'><query xmlns='{NS_OWNER}'>\
             <destroy jid='coffee@{SERVICE}'><reason>Moving on</reason></destroy></query></iq>",
            room("tea")
        ),
    )
    .await;
    assert_result(&r);
    // §10.9: unavailable presence with <destroy/> in the muc#user x.
    for (c, nick) in [(&mut bob, "Bob"), (&mut alice, "Alice")] {
        let p = wait_unavailable(c, &occ("tea", nick)).await;
        let x = user_x(&p).unwrap_or_else(|| panic!("no muc#user x: {p}"));
        let d = x
            .children()
            .find(|c| c.is("destroy", NS_USER))
            .unwrap_or_else(|| panic!("no destroy: {p}"));
        assert_eq!(
            d.attr("jid"),
            Some(format!("coffee@{SERVICE}").as_str()),
            "{p}"
        );
        let reason = d
            .children()
            .find(|c| c.name() == "reason")
            .map(|r| r.text());
        assert_eq!(reason.as_deref(), Some("Moving on"), "{p}");
        assert_eq!(item_attr(&p, "role").as_deref(), Some("none"), "{p}");
        assert_eq!(item_attr(&p, "affiliation").as_deref(), Some("none"), "{p}");
    }
    // The room is gone.
    let r = disco_info(&mut bob, "gone", &room("tea")).await;
    assert_error(&r, "item-not-found", "");
}

#[tokio::test]
async fn only_owners_destroy_rooms() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_instant(&mut alice, "tea", "Alice").await;
    join(&mut bob, "tea", "Bob").await;
    // Even an admin is not an owner.
    assert_result(&set_affiliation(&mut alice, "tea", "bob@localhost", "admin").await);
    let r = iq(
        &mut bob,
        "destroy",
        &format!(
            "<iq type='set' id='ID' to='{}'><query xmlns='{NS_OWNER}'><destroy/></query></iq>",
            room("tea")
        ),
    )
    .await;
    // §10.9: not an owner → forbidden.
    assert_error(&r, "forbidden", "");
    let r = disco_info(&mut bob, "still", &room("tea")).await;
    assert_result(&r);
}

#[tokio::test]
async fn a_temporary_room_disappears_when_the_last_occupant_leaves() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_instant(&mut alice, "tea", "Alice").await;
    join(&mut bob, "tea", "Bob").await;
    leave(&mut alice, "tea", "Alice").await;
    // Someone is still there.
    assert_result(&disco_info(&mut alice, "d1", &room("tea")).await);
    leave(&mut bob, "tea", "Bob").await;
    let r = disco_info(&mut alice, "d2", &room("tea")).await;
    assert_error(&r, "item-not-found", "");
    // Joining again creates a new room.
    let own = create_locked(&mut bob, "tea", "Bob").await;
    assert_eq!(
        item_attr(&own, "affiliation").as_deref(),
        Some("owner"),
        "{own}"
    );
}

#[tokio::test]
async fn a_persistent_room_stays_when_empty() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[("muc#roomconfig_persistentroom", "1")],
    )
    .await;
    leave(&mut alice, "tea", "Alice").await;
    assert_result(&disco_info(&mut alice, "d1", &room("tea")).await);
    let joined = join(&mut alice, "tea", "Alice").await;
    assert!(
        !has_status(&joined.own, 201),
        "existing room: {}",
        joined.own
    );
    // The owner stays an owner after leaving (§10).
    assert_eq!(
        item_attr(&joined.own, "affiliation").as_deref(),
        Some("owner")
    );
}

#[tokio::test]
async fn a_persistent_room_survives_a_restart_with_config_subject_and_affiliations() {
    survives_a_restart(Server::start()).await;
}

#[tokio::test]
async fn a_persistent_room_survives_a_restart_on_postgresql() {
    let url = common::fresh_pg().await;
    survives_a_restart(Server::start_with(&format!("[storage]\nurl = \"{url}\"\n"))).await;
}

/// Create a configured persistent room, restart, and check what it kept.
async fn survives_a_restart(mut server: Server) {
    server.add_user("bob@localhost", "pw");
    server.add_user("carol@localhost", "pw");
    {
        let mut alice = user(&server, "alice").await;
        create_room(
            &mut alice,
            "tea",
            "Alice",
            &[
                ("muc#roomconfig_persistentroom", "1"),
                ("muc#roomconfig_roomname", "Tea Room"),
                ("muc#roomconfig_roomdesc", "Talk about tea"),
                ("muc#roomconfig_membersonly", "1"),
            ],
        )
        .await;
        assert_result(&set_affiliation(&mut alice, "tea", "bob@localhost", "member").await);
        assert_result(&set_affiliation(&mut alice, "tea", "carol@localhost", "admin").await);
        alice
            .send(&format!(
                "<message type='groupchat' to='{}'><subject>Darjeeling</subject></message>",
                room("tea")
            ))
            .await;
        wait_for(&mut alice, "subject reflected", |s| {
            subject(s).as_deref() == Some("Darjeeling")
        })
        .await;
    }
    server.stop();
    server.launch();

    let mut alice = online(&server, "alice", "res").await;
    let info = disco_info(&mut alice, "info", &room("tea")).await;
    assert_result(&info);
    let f = features(&info);
    assert!(f.iter().any(|x| x == "muc_persistent"), "{info}");
    assert!(f.iter().any(|x| x == "muc_membersonly"), "{info}");
    let el = parse(&info);
    let identity = find(&el, "identity", NS_INFO).unwrap_or_else(|| panic!("{info}"));
    assert_eq!(identity.attr("name"), Some("Tea Room"), "{info}");

    // Still listed, with its name.
    let r = iq(
        &mut alice,
        "items",
        &format!("<iq type='get' id='ID' to='{SERVICE}'><query xmlns='{NS_ITEMS}'/></iq>"),
    )
    .await;
    let el = parse(&r);
    let mut listed = Vec::new();
    find_all(&el, "item", NS_ITEMS, &mut listed);
    assert!(
        listed
            .iter()
            .any(|i| i.attr("jid") == Some(room("tea").as_str())
                && i.attr("name") == Some("Tea Room")),
        "{r}"
    );

    let joined = join(&mut alice, "tea", "Alice").await;
    assert!(!has_status(&joined.own, 201), "{}", joined.own);
    assert_eq!(
        item_attr(&joined.own, "affiliation").as_deref(),
        Some("owner")
    );
    let subj = joined.subject.as_deref().map(subject);
    assert_eq!(subj, Some(Some("Darjeeling".to_owned())), "{joined:#?}");

    let members = admin_get(&mut alice, "m", "tea", "affiliation='member'").await;
    assert_eq!(
        list_jids(&members),
        vec!["bob@localhost".to_owned()],
        "{members}"
    );
    let admins = admin_get(&mut alice, "a", "tea", "affiliation='admin'").await;
    assert_eq!(
        list_jids(&admins),
        vec!["carol@localhost".to_owned()],
        "{admins}"
    );
    let form = get_config(&mut alice, "tea").await;
    assert_eq!(
        form_value(&form, "muc#roomconfig_roomdesc").as_deref(),
        Some("Talk about tea"),
        "{form}"
    );
    // Members-only still applies: dave is not a member, bob is.
    server.add_user("dave@localhost", "pw");
    let mut dave = online(&server, "dave", "res").await;
    let err = try_join(&mut dave, "tea", "Dave")
        .await
        .expect_err("members only");
    assert_error(&err, "registration-required", "auth");
    let mut bob = online(&server, "bob", "res").await;
    let j = join(&mut bob, "tea", "Bob").await;
    assert_eq!(item_attr(&j.own, "affiliation").as_deref(), Some("member"));
}

#[tokio::test]
async fn a_temporary_room_does_not_survive_a_restart() {
    let mut server = Server::start();
    {
        let mut alice = user(&server, "alice").await;
        create_instant(&mut alice, "tea", "Alice").await;
    }
    server.stop();
    server.launch();
    let mut alice = online(&server, "alice", "res").await;
    let r = disco_info(&mut alice, "info", &room("tea")).await;
    assert_error(&r, "item-not-found", "");
}

#[tokio::test]
async fn a_destroyed_persistent_room_stays_gone_after_a_restart() {
    let mut server = Server::start();
    {
        let mut alice = user(&server, "alice").await;
        create_room(
            &mut alice,
            "tea",
            "Alice",
            &[("muc#roomconfig_persistentroom", "1")],
        )
        .await;
        let r = iq(
            &mut alice,
            "destroy",
            &format!(
                "<iq type='set' id='ID' to='{}'><query xmlns='{NS_OWNER}'><destroy/></query></iq>",
                room("tea")
            ),
        )
        .await;
        assert_result(&r);
    }
    server.stop();
    server.launch();
    let mut alice = online(&server, "alice", "res").await;
    let r = disco_info(&mut alice, "info", &room("tea")).await;
    assert_error(&r, "item-not-found", "");
}

#[tokio::test]
async fn a_persistent_room_keeps_its_password_across_a_restart() {
    let mut server = Server::start();
    server.add_user("bob@localhost", "pw");
    {
        let mut alice = user(&server, "alice").await;
        create_room(
            &mut alice,
            "tea",
            "Alice",
            &[
                ("muc#roomconfig_persistentroom", "1"),
                ("muc#roomconfig_passwordprotectedroom", "1"),
                ("muc#roomconfig_roomsecret", "oolong"),
            ],
        )
        .await;
    }
    server.stop();
    server.launch();
    let mut bob = online(&server, "bob", "res").await;
    let err = join_pw(&mut bob, "tea", "Bob", "wrong")
        .await
        .expect_err("wrong password");
    assert_error(&err, "not-authorized", "auth");
    join_pw(&mut bob, "tea", "Bob", "oolong")
        .await
        .expect("right password");
}

#[tokio::test]
async fn a_server_admin_destroys_a_room_without_being_in_it() {
    let server = start_with_server_keys("admins = [\"root@localhost\"]", "");
    let mut alice = user(&server, "alice").await;
    let mut root = user(&server, "root").await;
    create_instant(&mut alice, "tea", "Alice").await;
    let r = iq(
        &mut root,
        "destroy",
        &format!(
            "<iq type='set' id='ID' to='{}'><query xmlns='{NS_OWNER}'><destroy/></query></iq>",
            room("tea")
        ),
    )
    .await;
    assert_result(&r);
    let p = wait_unavailable(&mut alice, &occ("tea", "Alice")).await;
    assert!(
        user_x(&p).is_some_and(|x| x.children().any(|c| c.is("destroy", NS_USER))),
        "{p}"
    );
}

// Issue 5, item 6: the admin CLI, on a live room through the admin socket.

#[tokio::test]
async fn the_cli_lists_rooms_and_changes_the_owner_of_a_live_room() {
    let server = Server::start();
    server.add_user("bob@localhost", "pw");
    let mut alice = user(&server, "alice").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[
            ("muc#roomconfig_roomname", "Tea Room"),
            ("muc#roomconfig_publicroom", "0"),
        ],
    )
    .await;
    let mut bob = online(&server, "bob", "res").await;
    join(&mut bob, "tea", "Bob").await;
    let out = server.cli(&["muc", "list", "localhost"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&room("tea")), "hidden rooms too: {text}");

    let out = server.cli(&["muc", "set-owner", &room("tea"), "bob@localhost"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The occupants see it at once.
    let p = wait_presence(&mut bob, &occ("tea", "Bob"), |s| {
        item_attr(s, "affiliation").as_deref() == Some("owner")
    })
    .await;
    assert!(has_status(&p, 110), "{p}");
    let p = wait_presence(&mut alice, &occ("tea", "Alice"), |s| {
        item_attr(s, "affiliation").as_deref() != Some("owner")
    })
    .await;
    assert!(
        has_status(&p, 110),
        "set-owner makes bob the only owner: {p}"
    );
    let l = admin_get(&mut bob, "ol", "tea", "affiliation='owner'").await;
    assert_eq!(list_jids(&l), vec!["bob@localhost".to_owned()], "{l}");
}

#[tokio::test]
async fn the_cli_adds_and_removes_owners_with_the_server_stopped() {
    let mut server = Server::start();
    server.add_user("bob@localhost", "pw");
    {
        let mut alice = user(&server, "alice").await;
        create_room(
            &mut alice,
            "tea",
            "Alice",
            &[("muc#roomconfig_persistentroom", "1")],
        )
        .await;
    }
    server.stop();
    let out = server.cli(&["muc", "add-owner", &room("tea"), "bob@localhost"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.cli(&["muc", "remove-owner", &room("tea"), "alice@localhost"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Removing the last owner is refused.
    let out = server.cli(&["muc", "remove-owner", &room("tea"), "bob@localhost"]);
    assert!(!out.status.success(), "the last owner stays");
    server.launch();
    let mut bob = online(&server, "bob", "res").await;
    let l = admin_get(&mut bob, "ol", "tea", "affiliation='owner'").await;
    assert_result(&l);
    assert_eq!(list_jids(&l), vec!["bob@localhost".to_owned()], "{l}");
}

#[tokio::test]
async fn the_cli_destroys_a_live_room() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    create_instant(&mut alice, "tea", "Alice").await;
    let out = server.cli(&["muc", "destroy", &room("tea")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = wait_unavailable(&mut alice, &occ("tea", "Alice")).await;
    assert!(
        user_x(&p).is_some_and(|x| x.children().any(|c| c.is("destroy", NS_USER))),
        "{p}"
    );
    let r = disco_info(&mut alice, "gone", &room("tea")).await;
    assert_error(&r, "item-not-found", "");
}

#[tokio::test]
async fn cancelling_the_initial_configuration_destroys_the_room() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    create_locked(&mut alice, "tea", "Alice").await;
    assert_result(&get_config(&mut alice, "tea").await);
    let r = iq(
        &mut alice,
        "cancel",
        &format!(
            "<iq type='set' id='ID' to='{}'><query xmlns='{NS_OWNER}'>\
             <x xmlns='jabber:x:data' type='cancel'/></query></iq>",
            room("tea")
        ),
    )
    .await;
    assert_result(&r);
    // §10.1.3: the room is destroyed and the owner gets unavailable presence.
    wait_unavailable(&mut alice, &occ("tea", "Alice")).await;
    let r = disco_info(&mut alice, "gone", &room("tea")).await;
    assert_error(&r, "item-not-found", "");
}

#[tokio::test]
async fn cancelling_a_later_configuration_changes_nothing() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[("muc#roomconfig_roomname", "Tea Room")],
    )
    .await;
    assert_result(&get_config(&mut alice, "tea").await);
    let r = iq(
        &mut alice,
        "cancel",
        &format!(
            "<iq type='set' id='ID' to='{}'><query xmlns='{NS_OWNER}'>\
             <x xmlns='jabber:x:data' type='cancel'/></query></iq>",
            room("tea")
        ),
    )
    .await;
    assert_result(&r);
    // §10.2: the room stays as it was.
    let form = get_config(&mut alice, "tea").await;
    assert_eq!(
        form_value(&form, "muc#roomconfig_roomname").as_deref(),
        Some("Tea Room"),
        "{form}"
    );
    send_groupchat(&mut alice, "tea", "g1", "still here").await;
    wait_groupchat(&mut alice, "tea", "Alice", "still here").await;
}

#[tokio::test]
async fn a_password_change_applies_to_the_next_joins() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_instant(&mut alice, "tea", "Alice").await;
    configure(
        &mut alice,
        "tea",
        &[
            ("muc#roomconfig_passwordprotectedroom", "1"),
            ("muc#roomconfig_roomsecret", "oolong"),
        ],
    )
    .await;
    let err = try_join(&mut bob, "tea", "Bob")
        .await
        .expect_err("now protected");
    assert_error(&err, "not-authorized", "auth");
    configure(
        &mut alice,
        "tea",
        &[("muc#roomconfig_passwordprotectedroom", "0")],
    )
    .await;
    join(&mut bob, "tea", "Bob").await;
}

/// An owner outside a temporary room makes it members-only: its only
/// occupant, not a member, leaves with 322 and the room ends. The service
/// must go on serving (it used to read the vanished room and stop).
#[tokio::test]
async fn emptying_a_room_by_configuration_leaves_the_service_running() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_instant(&mut alice, "vide", "Alice").await;
    join(&mut bob, "vide", "Bob").await;
    leave(&mut alice, "vide", "Alice").await;
    configure(&mut alice, "vide", &[("muc#roomconfig_membersonly", "1")]).await;
    let gone = wait_for(&mut bob, "removal", |s| {
        is_presence(s) && has_status(s, 322) && has_status(s, 110)
    })
    .await;
    assert_eq!(attr(&gone, "type").as_deref(), Some("unavailable"));
    // The service still answers: a new room can be created.
    create_instant(&mut bob, "ailleurs", "Bob").await;
}
