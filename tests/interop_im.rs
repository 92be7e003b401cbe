//! Interoperability of the RFC 6121 instant-messaging features (roster,
//! subscriptions, presence, offline messages) with real clients, each run
//! as a subprocess against the real server:
//!
//! * nbxmpp (Gajim's library) manages its roster and subscribes to a
//!   slixmpp contact (`tests/interop/nbxmpp_roster.py`,
//!   `tests/interop/slixmpp_peer.py`);
//! * mcabber, driven through its command FIFO, chats with a slixmpp user;
//! * go-sendxmpp leaves a message for an offline user, who gets it with an
//!   XEP-0203 delay stamp when slixmpp logs in as them.
//!
//! The clients come from Debian packages (python3-nbxmpp, python3-slixmpp,
//! go-sendxmpp, mcabber; `script` is in the essential bsdutils); a missing
//! one fails the test, it is never skipped.

mod common;
use common::Server;
use common::interop::{
    DEADLINE, Mcabber, Proc, WAIT, fail, has_line, poll, python_driver, require_program,
    require_python_module, server_with,
};
use std::time::Duration;
use tokio::process::Command;

/// The slixmpp contact (`slixmpp_peer.py`), logged in and available.
async fn slixmpp_peer(server: &Server, jid: &str, args: &[&str]) -> Proc {
    require_python_module("slixmpp");
    let mut peer = python_driver(server, "slixmpp_peer.py", jid, args);
    if let Err(e) = peer.line("READY ", &[], WAIT).await {
        let r = peer.finish(Duration::from_secs(1)).await;
        fail(
            server,
            &[&r],
            "",
            &format!("slixmpp as {jid} never got ready: {e}"),
        );
    }
    peer
}

// ---- nbxmpp: roster and subscription ----------------------------------------

const NICK: &str = "Bob l'Éponge";
const GROUP: &str = "Collègues";

/// nbxmpp adds a slixmpp contact with a nickname and a group, subscribes,
/// and (with `versioning`) requires the server's roster versioning.
async fn nbxmpp_befriends_slixmpp(versioning: bool) {
    require_python_module("nbxmpp");
    let server = server_with(&["gajim", "bob"]);
    let bye = format!("bye from nbxmpp {}", std::process::id());
    let peer = slixmpp_peer(
        &server,
        "bob@localhost",
        &["befriend", "gajim@localhost", &bye],
    )
    .await;

    let mut args = vec!["bob@localhost", NICK, GROUP, bye.as_str()];
    if versioning {
        args.push("versioning");
    }
    let nb = python_driver(&server, "nbxmpp_roster.py", "gajim@localhost", &args)
        .finish(DEADLINE)
        .await;
    // The contact succeeds once nbxmpp's last message came; no need to wait
    // for its own timeout when nbxmpp failed.
    let peer_wait = if nb.ok() {
        DEADLINE
    } else {
        Duration::from_secs(2)
    };
    let peer = peer.finish(peer_wait).await;
    let runs = [&nb, &peer];
    if !nb.ok() {
        fail(
            &server,
            &runs,
            "",
            "the nbxmpp roster client did not succeed",
        );
    }
    // The driver prints the name with Python's repr(): double quotes here,
    // as the name holds an apostrophe, which is what Rust's {:?} gives too.
    let name = format!("name={NICK:?}");
    let groups = format!("groups={GROUP} ");
    let item = ["jid=bob@localhost", name.as_str(), groups.as_str()];
    for (what, sub) in [
        (
            "the roster push for the new contact",
            "subscription=none ask=-",
        ),
        (
            "the push for the pending request",
            "subscription=none ask=subscribe",
        ),
        ("the push for the approved subscription", "subscription=to "),
        ("the push for the mutual subscription", "subscription=both "),
    ] {
        let mut parts = item.to_vec();
        parts.push(sub);
        if !has_line(&nb, "PUSH ", &parts) {
            fail(&server, &runs, "", &format!("nbxmpp did not see {what}"));
        }
    }
    if !has_line(&nb, "PRESENCE ", &["type=available", "from=bob@localhost/"]) {
        fail(&server, &runs, "", "nbxmpp did not receive bob's presence");
    }
    if !has_line(
        &nb,
        "FINAL-ITEM ",
        &[&item[..], &["subscription=both"]].concat(),
    ) {
        fail(
            &server,
            &runs,
            "",
            "the final roster lacks bob with nickname and group",
        );
    }
    if !peer.ok()
        || !has_line(&peer, "SUBSCRIBE ", &["from=gajim@localhost"])
        || !has_line(
            &peer,
            "PRESENCE ",
            &["type=available", "from=gajim@localhost/gajim-like"],
        )
    {
        fail(
            &server,
            &runs,
            "",
            "slixmpp did not get the request, approve it and see nbxmpp's presence",
        );
    }
}

/// Issue "Done when" 1: nbxmpp logs in over STARTTLS, requests the roster,
/// adds a contact with a group and a nickname and sees both in the push,
/// subscribes; slixmpp accepts (and asks back); nbxmpp sees the
/// subscription become "to" then "both" through pushes, and the contact's
/// presence.
#[tokio::test]
async fn nbxmpp_adds_contact_subscribes_and_sees_presence() {
    nbxmpp_befriends_slixmpp(false).await;
}

/// The same with roster versioning required: the server must advertise it
/// (`<ver xmlns='urn:xmpp:features:rosterver'/>`, RFC 6121 §2.6.1), or a
/// Gajim-like client never sends `ver` and always downloads the whole roster.
#[tokio::test]
async fn nbxmpp_uses_roster_versioning() {
    nbxmpp_befriends_slixmpp(true).await;
}

// ---- mcabber ------------------------------------------------------------------

/// Issue "Done when" 2: mcabber (STARTTLS, commands through its FIFO) and
/// slixmpp exchange messages in both directions; mcabber's side is checked
/// in its history file.
#[tokio::test]
async fn mcabber_and_slixmpp_exchange_messages() {
    require_program("mcabber", "-V");
    require_program("script", "--version");
    let server = server_with(&["mcab", "slix"]);
    let to_slix = format!("Grüße von mcabber {}", std::process::id());
    let to_mcabber = format!("réponse de slixmpp {}", std::process::id());
    let slix = slixmpp_peer(
        &server,
        "slix@localhost",
        &["chat", "mcab@localhost", &to_slix, &to_mcabber],
    )
    .await;

    let mc = Mcabber {
        dir: server.dir.path().join("mcabber"),
    };
    std::fs::create_dir_all(&mc.dir).expect("mcabber dir");
    mc.write_config(&server, "mcab@localhost", "");
    let mut mcabber = mc.spawn();

    let mut why = None;
    if let Err(e) = mc.logged_in(&mut mcabber).await {
        why = Some(format!("mcabber did not log in: {e}"));
    } else if let Err(e) = mc
        .command(&format!("say_to slix@localhost {to_slix}"))
        .await
    {
        why = Some(e);
    }
    // slixmpp exits once it got the message and answered.
    let slix = if why.is_none() {
        slix.finish(DEADLINE).await
    } else {
        slix.finish(Duration::from_secs(1)).await
    };
    if why.is_none() && !slix.ok() {
        why = Some("slixmpp did not receive mcabber's message".to_owned());
    }
    if why.is_none()
        && !has_line(
            &slix,
            "MESSAGE ",
            &["from=mcab@localhost/mcabber", &to_slix],
        )
    {
        why = Some("slixmpp got mcabber's message garbled".to_owned());
    }
    let received = format!(" {to_mcabber}");
    if why.is_none()
        && poll(WAIT, || {
            let h = mc.history("slix@localhost");
            h.lines()
                .any(|l| l.starts_with("MR ") && l.ends_with(&received))
                .then_some(())
        })
        .await
        .is_none()
    {
        why = Some("mcabber's history does not show slixmpp's answer".to_owned());
    }
    if why.is_none()
        && !mc
            .history("slix@localhost")
            .lines()
            .any(|l| l.starts_with("MS ") && l.ends_with(&format!(" {to_slix}")))
    {
        why = Some("mcabber's history does not show its own message".to_owned());
    }
    // Quit cleanly; the terminal is closed (and mcabber with it) otherwise.
    let quit = mc.command("quit").await;
    let mcabber = mcabber.finish(Duration::from_secs(15)).await;
    let history = format!(
        "---- mcabber history with slix@localhost:\n{}\n{}",
        mc.history("slix@localhost"),
        mc.report()
    );
    if let Some(why) = why {
        fail(&server, &[&slix, &mcabber], &history, &why);
    }
    if quit.is_err() || !mcabber.ok() {
        fail(
            &server,
            &[&slix, &mcabber],
            &history,
            &format!("mcabber did not quit cleanly ({quit:?})"),
        );
    }
}

// ---- go-sendxmpp: offline message ----------------------------------------------

/// Issue "Done when" 3: go-sendxmpp sends a message to a user who has never
/// logged in; slixmpp then logs in as that user and gets it only after its
/// initial presence, with an XEP-0203 delay stamp.
#[tokio::test]
async fn go_sendxmpp_message_waits_for_offline_user() {
    require_program("go-sendxmpp", "--version");
    let server = server_with(&["alice", "bob"]);
    let body = format!("déposé pour Bob hors ligne {}", std::process::id());
    let jserver = server.c2s.to_string();
    let args = [
        "-d",
        "-u",
        "alice@localhost",
        "-p",
        "secret",
        "-j",
        jserver.as_str(),
        "bob@localhost",
    ];
    let what = format!("go-sendxmpp {}", args.join(" "));
    let mut cmd = Command::new("go-sendxmpp");
    cmd.args(args)
        // Go reads extra trust anchors from SSL_CERT_FILE: trust exactly the
        // server's certificate, with normal verification for "localhost".
        .env("SSL_CERT_FILE", server.cert_path())
        // No ~/.config/go-sendxmpp/sendxmpprc from the machine.
        .env("HOME", server.dir.path());
    let sent = Proc::spawn(what, cmd, Some(format!("{body}\n")))
        .finish(DEADLINE)
        .await;
    if !sent.ok() {
        fail(&server, &[&sent], "", "go-sendxmpp did not succeed");
    }

    require_python_module("slixmpp");
    let bob = python_driver(
        &server,
        "slixmpp_peer.py",
        "bob@localhost",
        &["offline", "alice@localhost", &body],
    )
    .finish(DEADLINE)
    .await;
    if !bob.ok()
        || !has_line(&bob, "MESSAGE ", &["from=alice@localhost/", &body])
        || !has_line(&bob, "DELAY ", &[])
    {
        fail(
            &server,
            &[&sent, &bob],
            "",
            "bob did not get go-sendxmpp's message, stamped, at his first available presence",
        );
    }
}
