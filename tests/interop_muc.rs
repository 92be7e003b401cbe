//! Interoperability of the conference service (XEP-0045 at
//! `conference.localhost`) with real clients, each run as a subprocess
//! against the real server:
//!
//! * mcabber, driven through its command FIFO, joins a room created by a
//!   slixmpp occupant (slixmpp's XEP-0045 plugin) and they exchange
//!   groupchat messages both ways (`tests/interop/slixmpp_muc.py`);
//! * nbxmpp (Gajim's library) browses the rooms as Gajim's room browser
//!   does (disco#items on the service, disco#info on each room) and sees
//!   the public room slixmpp configured, with its name, but not the hidden
//!   one (`tests/interop/nbxmpp_muc_rooms.py`).
//!
//! The clients come from Debian packages (python3-slixmpp, python3-nbxmpp,
//! mcabber; `script` is in the essential bsdutils); a missing one fails the
//! test, it is never skipped.

mod common;
use common::interop::{
    DEADLINE, Mcabber, WAIT, fail, has_line, poll, python_driver, require_program,
    require_python_module, server_with,
};
use std::time::Duration;

const SERVICE: &str = "conference.localhost";

// ---- mcabber and slixmpp in one room ---------------------------------------------

/// Issue 5, "Done when" 2: slixmpp creates a room (instant), mcabber joins
/// it through `/room join`, says something in the room with `/say_to`,
/// slixmpp sees it from mcabber's nick and answers in the room; mcabber
/// receives the answer (its room history shows it) and slixmpp gets its own
/// message reflected with a stanza-id by the room.
#[tokio::test]
async fn mcabber_and_slixmpp_chat_in_a_room() {
    require_program("mcabber", "-V");
    require_program("script", "--version");
    require_python_module("slixmpp");
    let server = server_with(&["mcab", "slix"]);
    let room = format!("salle-{}@{SERVICE}", std::process::id());
    let to_room = format!("Bonjour le salon, ici mcabber {}", std::process::id());
    let reply = format!("Salut mcabber, ici slixmpp {}", std::process::id());
    let mut slix = python_driver(
        &server,
        "slixmpp_muc.py",
        "slix@localhost",
        &["chat", &room, "Slix", "Mcab", &to_room, &reply],
    );
    if let Err(e) = slix.line("READY ", &[], WAIT).await {
        let r = slix.finish(Duration::from_secs(1)).await;
        fail(
            &server,
            &[&r],
            "",
            &format!("slixmpp never created and joined {room}: {e}"),
        );
    }

    let mc = Mcabber {
        dir: server.dir.path().join("mcabber"),
    };
    std::fs::create_dir_all(&mc.dir).expect("mcabber dir");
    mc.write_config(
        &server,
        "mcab@localhost",
        "set nickname = Mcab\nset log_muc_conf = 1\n",
    );
    let mut mcabber = mc.spawn();

    let mut why = None;
    if let Err(e) = mc.logged_in(&mut mcabber).await {
        why = Some(format!("mcabber did not log in: {e}"));
    } else if let Err(e) = mc.command(&format!("room join {room} Mcab")).await {
        why = Some(e);
    } else {
        // slixmpp sees mcabber's presence in the room.
        let occupant = format!("from={room}/Mcab");
        if let Err(e) = slix.line("OCCUPANT ", &[&occupant], WAIT).await {
            why = Some(format!("slixmpp never saw mcabber join: {e}"));
        } else if let Err(e) = mc.command(&format!("say_to {room} {to_room}")).await {
            why = Some(e);
        }
    }
    // slixmpp exits once it got the message, answered and saw its answer reflected.
    let slix = if why.is_none() {
        slix.finish(DEADLINE).await
    } else {
        slix.finish(Duration::from_secs(1)).await
    };
    if why.is_none() && !slix.ok() {
        why = Some("slixmpp did not get mcabber's groupchat message and its own echo".to_owned());
    }
    let from_mcab = format!("from={room}/Mcab");
    if why.is_none() && !has_line(&slix, "MESSAGE ", &[&from_mcab, &to_room]) {
        why = Some("slixmpp got mcabber's message garbled".to_owned());
    }
    if why.is_none()
        && !has_line(
            &slix,
            "MESSAGE ",
            &[&from_mcab, &format!("stanza-id-by={room}")],
        )
    {
        why = Some("mcabber's message reached slixmpp without a stanza-id by the room".to_owned());
    }
    // mcabber's side: the room history holds slixmpp's answer (received,
    // "MR") and mcabber's own message as the room reflected it.
    let bare_room = room.to_lowercase();
    if why.is_none()
        && poll(WAIT, || {
            let h = mc.history(&bare_room);
            h.lines()
                .any(|l| l.starts_with("MR ") && l.contains(&reply))
                .then_some(())
        })
        .await
        .is_none()
    {
        why = Some("mcabber's room history does not show slixmpp's answer".to_owned());
    }
    if why.is_none()
        && !mc
            .history(&bare_room)
            .lines()
            .any(|l| l.starts_with('M') && l.contains(&to_room))
    {
        why = Some("mcabber's room history does not show its own message".to_owned());
    }
    let quit = mc.command("quit").await;
    let mcabber = mcabber.finish(Duration::from_secs(15)).await;
    let extra = format!(
        "---- mcabber history of {room}:\n{}\n---- mcabber trace log:\n{}\n",
        mc.history(&bare_room),
        mc.trace()
    );
    if let Some(why) = why {
        fail(&server, &[&slix, &mcabber], &extra, &why);
    }
    if quit.is_err() || !mcabber.ok() {
        fail(
            &server,
            &[&slix, &mcabber],
            &extra,
            &format!("mcabber did not quit cleanly ({quit:?})"),
        );
    }
}

// ---- nbxmpp lists the public rooms ---------------------------------------------------

/// Issue 5, "Done when" 2 and item 4: slixmpp creates a public persistent
/// room with a name and a hidden one through the configuration form, and
/// leaves both; nbxmpp, as Gajim's room browser, lists the service's rooms
/// (disco#items): the public one is there with its name, the hidden one is
/// not; disco#info shows each as it was configured.
#[tokio::test]
async fn nbxmpp_lists_public_rooms_but_not_hidden_ones() {
    require_python_module("slixmpp");
    require_python_module("nbxmpp");
    let server = server_with(&["slix", "gajim"]);
    let public = format!("accueil-{}@{SERVICE}", std::process::id());
    let hidden = format!("bureau-{}@{SERVICE}", std::process::id());
    let name = "Salon d'accueil de l'association";
    let creator = python_driver(
        &server,
        "slixmpp_muc.py",
        "slix@localhost",
        &["rooms", &public, name, &hidden],
    )
    .finish(DEADLINE)
    .await;
    if !creator.ok()
        || !has_line(&creator, "CONFIGURED ", &[&public])
        || !has_line(&creator, "CONFIGURED ", &[&hidden])
    {
        fail(
            &server,
            &[&creator],
            "",
            "slixmpp could not create and configure the rooms",
        );
    }
    let browser = python_driver(
        &server,
        "nbxmpp_muc_rooms.py",
        "gajim@localhost",
        &[SERVICE, &public, name, &hidden],
    )
    .finish(DEADLINE)
    .await;
    if !browser.ok() {
        fail(
            &server,
            &[&creator, &browser],
            "",
            "nbxmpp's room browsing did not show what was configured",
        );
    }
    if !has_line(&browser, "ITEM ", &[&format!("jid={public}")])
        || has_line(&browser, "ITEM ", &[&format!("jid={hidden}")])
    {
        fail(
            &server,
            &[&creator, &browser],
            "",
            "the room list is not the public rooms only",
        );
    }
}
