//! Room administration: `jaseur muc ...` on the database with the server
//! stopped, on the live service through the admin socket (occupants see the
//! change at once), and the same through the admins' ad-hoc commands.

mod common;

use common::Server;
use common::client::{self, Client, attr, iq};
use common::muc::{
    self as m, NS_USER, create_instant, create_room, find, from_is, is_presence, item_attr, join,
    occ, parse, room, wait_presence,
};
use jaseur::muc::config::RoomConfig;
use jaseur::muc::{Affiliation, MucStore, StoredAffiliation, StoredRoom};
use jaseur::storage::Storage;
use jid::BareJid;
use std::process::Output;

fn jid(s: &str) -> BareJid {
    BareJid::new(s).expect("jid")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn shown(o: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run `jaseur muc args...`; it must succeed. Returns stdout.
fn muc_ok(server: &Server, args: &[&str]) -> String {
    let mut all = vec!["muc"];
    all.extend_from_slice(args);
    let out = server.cli(&all);
    assert!(out.status.success(), "jaseur {all:?}: {}", shown(&out));
    stdout(&out)
}

/// Run `jaseur muc args...`; it must fail with `needle` in its message.
fn muc_refused(server: &Server, args: &[&str], needle: &str) {
    let mut all = vec!["muc"];
    all.extend_from_slice(args);
    let out = server.cli(&all);
    assert!(
        !out.status.success(),
        "jaseur {all:?} should fail: {}",
        shown(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(needle),
        "jaseur {all:?}: {needle:?} expected: {}",
        shown(&out)
    );
}

/// The `muc list` line of `room`.
fn line_of<'a>(list: &'a str, room: &str) -> &'a str {
    list.lines()
        .find(|l| l.split_whitespace().next() == Some(room))
        .unwrap_or_else(|| panic!("{room} not listed:\n{list}"))
}

async fn storage_of(server: &Server) -> Storage {
    let url = format!("sqlite://{}", server.data_dir().join("jaseur.db").display());
    Storage::open(&url, 1)
        .await
        .expect("open the server's database")
}

/// (jid, affiliation) of a stored room, sorted by JID.
async fn stored_affiliations(storage: &Storage, room: &str) -> Vec<(String, Affiliation)> {
    storage
        .affiliations(&jid(room))
        .await
        .expect("affiliations")
        .into_iter()
        .map(|a| (a.jid.to_string(), a.affiliation))
        .collect()
}

fn aff(who: &str, a: Affiliation) -> (String, Affiliation) {
    (who.to_owned(), a)
}

// ------------------------------------------------------------ server stopped

#[tokio::test]
async fn stopped_server_commands_apply_to_the_database() {
    let mut server = Server::start();
    server.stop();
    let storage = storage_of(&server).await;
    let config = RoomConfig {
        name: "Le salon".into(),
        persistent: true,
        public: true,
        ..RoomConfig::default()
    };
    storage
        .save_room(&StoredRoom {
            jid: jid("salon@conference.localhost"),
            config: config.to_text(),
            subject: None,
        })
        .await
        .expect("seed room");
    let hidden = RoomConfig {
        persistent: true,
        public: false,
        ..RoomConfig::default()
    };
    storage
        .save_room(&StoredRoom {
            jid: jid("bureau@conference.localhost"),
            config: hidden.to_text(),
            subject: None,
        })
        .await
        .expect("seed room");
    for (who, a) in [
        ("alice@localhost", Affiliation::Owner),
        ("carol@localhost", Affiliation::Member),
        ("mallory@localhost", Affiliation::Outcast),
    ] {
        storage
            .set_affiliation(
                &jid("salon@conference.localhost"),
                &StoredAffiliation {
                    jid: jid(who),
                    affiliation: a,
                    reason: None,
                },
            )
            .await
            .expect("seed affiliation");
    }
    let salon = "salon@conference.localhost";

    // list: by domain or by service, stored rooms with no occupants.
    let list = muc_ok(&server, &["list", "localhost"]);
    assert_eq!(
        list,
        muc_ok(&server, &["list", "conference.localhost"]),
        "DOMAIN and its service list the same"
    );
    assert!(list.starts_with("ROOM "), "{list}");
    let line = line_of(&list, salon);
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cols[..5],
        [salon, "0", "persistent", "public", "alice@localhost"],
        "{list}"
    );
    assert!(line.ends_with("Le salon"), "{list}");
    let cols: Vec<String> = line_of(&list, "bureau@conference.localhost")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(cols[2..5], ["persistent", "hidden", "-"], "{list}");
    muc_refused(&server, &["list", "elsewhere.example"], "elsewhere.example");

    // set-owner: bob becomes the only owner, alice a member.
    muc_ok(&server, &["set-owner", salon, "bob@localhost"]);
    assert_eq!(
        stored_affiliations(&storage, salon).await,
        [
            aff("alice@localhost", Affiliation::Member),
            aff("bob@localhost", Affiliation::Owner),
            aff("carol@localhost", Affiliation::Member),
            aff("mallory@localhost", Affiliation::Outcast),
        ]
    );
    let list = muc_ok(&server, &["list", "localhost"]);
    assert!(line_of(&list, salon).contains(" bob@localhost "), "{list}");

    // add-owner, case-folded like any JID.
    muc_ok(&server, &["add-owner", salon, "Carol@LocalHost"]);
    assert_eq!(
        stored_affiliations(&storage, salon).await[2],
        aff("carol@localhost", Affiliation::Owner)
    );
    let list = muc_ok(&server, &["list", "localhost"]);
    assert!(
        line_of(&list, salon).contains(" bob@localhost,carol@localhost "),
        "{list}"
    );

    // remove-owner: carol goes back to none; bob, the last owner, stays.
    muc_ok(&server, &["remove-owner", salon, "carol@localhost"]);
    assert_eq!(
        stored_affiliations(&storage, salon).await,
        [
            aff("alice@localhost", Affiliation::Member),
            aff("bob@localhost", Affiliation::Owner),
            aff("mallory@localhost", Affiliation::Outcast),
        ]
    );
    muc_refused(
        &server,
        &["remove-owner", salon, "bob@localhost"],
        "last owner",
    );
    muc_refused(
        &server,
        &["remove-owner", salon, "alice@localhost"],
        "not an owner",
    );
    assert_eq!(stored_affiliations(&storage, salon).await.len(), 3);

    // Validation: rooms of our services only, bare user JIDs only.
    muc_refused(
        &server,
        &["set-owner", "salon@localhost", "bob@localhost"],
        "not a MUC service",
    );
    muc_refused(
        &server,
        &[
            "set-owner",
            "salon@conference.elsewhere.example",
            "bob@localhost",
        ],
        "not a MUC service",
    );
    muc_refused(
        &server,
        &["set-owner", "conference.localhost", "bob@localhost"],
        "no room name",
    );
    muc_refused(
        &server,
        &["set-owner", salon, "bob@localhost/phone"],
        "resource",
    );
    muc_refused(
        &server,
        &["add-owner", "nowhere@conference.localhost", "bob@localhost"],
        "no room nowhere@conference.localhost",
    );

    // destroy: the room and its affiliations go.
    muc_ok(&server, &["destroy", salon, "--reason", "fin de l'année"]);
    let rooms = storage.rooms("conference.localhost").await.expect("rooms");
    assert_eq!(
        rooms.iter().map(|r| r.jid.to_string()).collect::<Vec<_>>(),
        ["bureau@conference.localhost"]
    );
    assert!(stored_affiliations(&storage, salon).await.is_empty());
    muc_refused(&server, &["destroy", salon], "no room");
    muc_ok(&server, &["destroy", "bureau@conference.localhost"]);
    assert_eq!(
        muc_ok(&server, &["list", "localhost"]),
        "no rooms on conference.localhost\n"
    );
}

#[tokio::test]
async fn muc_commands_refuse_when_muc_is_disabled() {
    let mut server = Server::start_with("[muc]\nenabled = false\n");
    server.stop();
    muc_refused(&server, &["list", "localhost"], "disabled");
    muc_refused(
        &server,
        &["destroy", "salon@conference.localhost"],
        "disabled",
    );
}

// ------------------------------------------------------------ server running

/// A server with `admin@localhost` as administrator.
fn start_with_admin() -> Server {
    Server::start_edited(|t| {
        t.replacen(
            "[server]\n",
            "[server]\nadmins = [\"admin@localhost\"]\n",
            1,
        )
    })
}

/// The muc#user item's affiliation in an occupant presence.
fn affiliation(s: &str) -> String {
    item_attr(s, "affiliation").unwrap_or_default()
}

/// Wait for `nick`'s presence in `room_name` with the muc#user affiliation `a`.
async fn wait_affiliation(c: &mut Client, room_name: &str, nick: &str, a: &str) -> String {
    wait_presence(c, &occ(room_name, nick), |s| affiliation(s) == a).await
}

#[tokio::test]
async fn live_owner_changes_reach_the_occupants() {
    let server = start_with_admin();
    let mut alice = m::user(&server, "alice").await;
    let mut bob = m::user(&server, "bob").await;
    create_instant(&mut alice, "salon", "Alice").await;
    let salon = room("salon");

    let list = muc_ok(&server, &["list", "localhost"]);
    let cols: Vec<String> = line_of(&list, &salon)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        cols[1..5],
        ["1", "temporary", "public", "alice@localhost"],
        "{list}"
    );

    // Bob is not in the room: nothing is broadcast for him (§9.4), but alice,
    // who is, sees her own demotion at once.
    muc_ok(&server, &["set-owner", &salon, "bob@localhost"]);
    let own = wait_affiliation(&mut alice, "salon", "Alice", "member").await;
    assert!(m::has_status(&own, 110), "{own}");
    let list = muc_ok(&server, &["list", "localhost"]);
    assert!(
        line_of(&list, &salon).contains(" bob@localhost"),
        "bob owns the room now: {list}"
    );
    assert!(
        !line_of(&list, &salon).contains("alice@localhost"),
        "{list}"
    );

    // Bob enters as owner; then alice is made an owner again while both are in.
    let joined = join(&mut bob, "salon", "Bob").await;
    assert_eq!(affiliation(&joined.own), "owner", "{}", joined.own);
    muc_ok(&server, &["add-owner", &salon, "alice@localhost"]);
    wait_affiliation(&mut alice, "salon", "Alice", "owner").await;
    wait_affiliation(&mut bob, "salon", "Alice", "owner").await;

    // remove-owner: bob becomes none, and everyone sees it.
    muc_ok(&server, &["remove-owner", &salon, "bob@localhost"]);
    wait_affiliation(&mut alice, "salon", "Bob", "none").await;
    wait_affiliation(&mut bob, "salon", "Bob", "none").await;
    muc_refused(
        &server,
        &["remove-owner", &salon, "alice@localhost"],
        "last owner",
    );
    muc_refused(
        &server,
        &["remove-owner", &salon, "bob@localhost"],
        "not an owner",
    );
    muc_refused(
        &server,
        &["set-owner", "nowhere@conference.localhost", "bob@localhost"],
        "no room",
    );

    // destroy: both occupants are told, with the reason.
    muc_ok(&server, &["destroy", &salon, "--reason", "On déménage"]);
    for (c, nick) in [(&mut alice, "Alice"), (&mut bob, "Bob")] {
        let gone = m::wait_unavailable(c, &occ("salon", nick)).await;
        let x = find(&parse(&gone), "x", NS_USER).cloned();
        let destroy = x
            .as_ref()
            .and_then(|x| x.children().find(|c| c.name() == "destroy"))
            .unwrap_or_else(|| panic!("no <destroy/>: {gone}"));
        let reason = destroy.children().find(|c| c.name() == "reason");
        assert_eq!(
            reason.map(|r| r.text()).as_deref(),
            Some("On déménage"),
            "{gone}"
        );
    }
    assert_eq!(
        muc_ok(&server, &["list", "conference.localhost"]),
        "no rooms on conference.localhost\n"
    );
}

#[tokio::test]
async fn live_changes_to_a_persistent_room_are_stored() {
    let mut server = start_with_admin();
    let mut alice = m::user(&server, "alice").await;
    create_room(
        &mut alice,
        "archives",
        "Alice",
        &[
            ("muc#roomconfig_persistentroom", "1"),
            ("muc#roomconfig_roomname", "Archives"),
        ],
    )
    .await;
    let archives = room("archives");
    muc_ok(&server, &["set-owner", &archives, "bob@localhost"]);
    wait_affiliation(&mut alice, "archives", "Alice", "member").await;
    drop(alice);
    server.stop();

    // The live service stored the change; the stopped CLI lists it.
    let storage = storage_of(&server).await;
    assert_eq!(
        stored_affiliations(&storage, &archives).await,
        [
            aff("alice@localhost", Affiliation::Member),
            aff("bob@localhost", Affiliation::Owner),
        ]
    );
    let list = muc_ok(&server, &["list", "localhost"]);
    let line = line_of(&list, &archives);
    assert!(
        line.contains(" 0 ") && line.contains(" persistent ") && line.ends_with("Archives"),
        "{list}"
    );
    assert!(line.contains(" bob@localhost "), "{list}");
}

// ------------------------------------------------------------ ad-hoc commands

const SET_OWNER: &str = "jaseur:muc:set-owner";
const DESTROY: &str = "jaseur:muc:destroy";

fn execute(node: &str) -> String {
    format!(
        "<iq type='set' id='ID' to='localhost'><command xmlns='http://jabber.org/protocol/commands' \
         action='execute' node='{node}'/></iq>"
    )
}

/// Submit `node`'s form with `fields`; the completed command.
async fn submit(c: &mut Client, id: &str, node: &str, fields: &[(&str, &str)]) -> String {
    let form = iq(c, &format!("{id}a"), &execute(node)).await;
    assert_eq!(attr(&form, "type").as_deref(), Some("result"), "{form}");
    assert!(form.contains("status='executing'"), "{form}");
    let session = form
        .split("sessionid='")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap_or_else(|| panic!("no sessionid: {form}"))
        .to_owned();
    let mut x = String::from("<x xmlns='jabber:x:data' type='submit'>");
    for (var, value) in fields {
        x.push_str(&format!(
            "<field var='{var}'><value>{value}</value></field>"
        ));
    }
    x.push_str("</x>");
    let done = iq(
        c,
        &format!("{id}b"),
        &format!(
            "<iq type='set' id='ID' to='localhost'><command xmlns='http://jabber.org/protocol/commands' \
             node='{node}' sessionid='{session}' action='complete'>{x}</command></iq>"
        ),
    )
    .await;
    assert_eq!(attr(&done, "type").as_deref(), Some("result"), "{done}");
    assert!(done.contains("status='completed'"), "{done}");
    done
}

#[tokio::test]
async fn admins_set_owners_and_destroy_rooms_with_ad_hoc_commands() {
    let server = start_with_admin();
    let mut alice = m::user(&server, "alice").await;
    let mut admin = m::user(&server, "admin").await;
    create_instant(&mut alice, "salon", "Alice").await;
    let salon = room("salon");

    // Listed among the admin's commands, with their forms.
    let items = iq(
        &mut admin,
        "d1",
        "<iq type='get' id='ID' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items' \
         node='http://jabber.org/protocol/commands'/></iq>",
    )
    .await;
    for node in [SET_OWNER, DESTROY] {
        assert!(items.contains(&format!("node='{node}'")), "{items}");
    }
    let form = iq(&mut admin, "f1", &execute(SET_OWNER)).await;
    assert_eq!(
        m::form_vars(&form),
        ["room", "owner"],
        "set-owner form: {form}"
    );
    let form = iq(&mut admin, "f2", &execute(DESTROY)).await;
    assert_eq!(
        m::form_vars(&form),
        ["room", "reason"],
        "destroy form: {form}"
    );

    // Not for ordinary users, not even the room's owner.
    let refused = iq(&mut alice, "x1", &execute(SET_OWNER)).await;
    assert!(client::is_error(&refused, "forbidden"), "{refused}");

    let done = submit(
        &mut admin,
        "s1",
        SET_OWNER,
        &[("room", &salon), ("owner", "bob@localhost")],
    )
    .await;
    assert!(done.contains("<note type='info'>"), "{done}");
    wait_affiliation(&mut alice, "salon", "Alice", "member").await;
    let list = muc_ok(&server, &["list", "localhost"]);
    assert!(line_of(&list, &salon).contains(" bob@localhost"), "{list}");

    // Failures are completed commands with an error note.
    for (id, fields, needle) in [
        (
            "s2",
            vec![
                ("room", "nowhere@conference.localhost"),
                ("owner", "bob@localhost"),
            ],
            "no room",
        ),
        (
            "s3",
            vec![("room", salon.as_str()), ("owner", "bob@localhost/phone")],
            "bare JID",
        ),
        (
            "s4",
            vec![
                ("room", "salon@conference.elsewhere.example"),
                ("owner", "bob@localhost"),
            ],
            "not a MUC service",
        ),
    ] {
        let done = submit(&mut admin, id, SET_OWNER, &fields).await;
        assert!(done.contains("<note type='error'>"), "{done}");
        assert!(done.contains(needle), "{needle:?}: {done}");
    }

    let done = submit(
        &mut admin,
        "s5",
        DESTROY,
        &[("room", &salon), ("reason", "Salon fermé")],
    )
    .await;
    assert!(done.contains("<note type='info'>"), "{done}");
    let gone = m::wait_unavailable(&mut alice, &occ("salon", "Alice")).await;
    assert!(gone.contains("Salon fermé"), "{gone}");
    assert!(
        is_presence(&gone) && from_is(&gone, &occ("salon", "Alice")),
        "{gone}"
    );
    assert_eq!(
        muc_ok(&server, &["list", "localhost"]),
        "no rooms on conference.localhost\n"
    );
}
