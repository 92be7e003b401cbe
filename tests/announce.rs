//! Service administration (XEP-0133 over XEP-0050): announcements to online
//! users and the message of the day, as client conversations with the real
//! server over TLS, and the MOTD store's contract on SQLite and PostgreSQL.

mod common;
use common::client::{attr, next, wait_for};
use common::client::{iq, is_error};

use common::Server;
use common::client::{self, Client, WAIT};
use jaseur::features::announce::{Motd, MotdStore};
use jaseur::storage::Storage;

const ANNOUNCE: &str = "http://jabber.org/protocol/admin#announce";
const SET_MOTD: &str = "http://jabber.org/protocol/admin#set-motd";
const EDIT_MOTD: &str = "http://jabber.org/protocol/admin#edit-motd";
const DELETE_MOTD: &str = "http://jabber.org/protocol/admin#delete-motd";

/// A server with `admin@localhost` as administrator (`admins` goes under the
/// base config's `[server]`: TOML forbids a second table), started the way
/// `Server::start_with_c2s` does.
fn start_with_admin() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("jaseur.toml");
    let text = common::config_text(&dir.path().join("data"), "").replacen(
        "[server]\n",
        "[server]\nadmins = [\"admin@localhost\"]\n",
        1,
    );
    std::fs::write(&config, text).expect("config");
    let mut s = Server {
        dir,
        config,
        child: None,
        c2s: "127.0.0.1:1".parse().expect("addr"),
        direct_tls: "127.0.0.1:1".parse().expect("addr"),
        http: None,
    };
    s.launch();
    for (user, pw) in [("admin", "adpw"), ("alice", "apw"), ("bob", "bpw")] {
        s.add_user(&format!("{user}@localhost"), pw);
    }
    s
}

/// Available presence, processed once the ping after it is answered; returns
/// everything the server sent before that answer.
async fn available(c: &mut Client, marker: &str) -> Vec<String> {
    c.send("<presence/>").await;
    c.send(&format!(
        "<iq type='get' id='{marker}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
    ))
    .await;
    let mut seen = Vec::new();
    loop {
        let s = next(c, WAIT)
            .await
            .unwrap_or_else(|e| panic!("no {marker}: {e}\nseen: {seen:#?}"));
        if attr(&s, "id").as_deref() == Some(marker) {
            return seen;
        }
        seen.push(s);
    }
}

fn execute(node: &str) -> String {
    format!(
        "<iq type='set' id='ID' to='localhost'><command xmlns='http://jabber.org/protocol/commands' \
         action='execute' node='{node}'/></iq>"
    )
}

/// Submit the command's form with `fields` (var, values).
fn submit(node: &str, session: &str, fields: &[(&str, &[&str])]) -> String {
    let mut x = String::from(
        "<x xmlns='jabber:x:data' type='submit'><field type='hidden' var='FORM_TYPE'>\
         <value>http://jabber.org/protocol/admin</value></field>",
    );
    for (var, values) in fields {
        x.push_str(&format!("<field var='{var}'>"));
        for v in *values {
            x.push_str(&format!("<value>{v}</value>"));
        }
        x.push_str("</field>");
    }
    x.push_str("</x>");
    format!(
        "<iq type='set' id='ID' to='localhost'><command xmlns='http://jabber.org/protocol/commands' \
         node='{node}' sessionid='{session}' action='complete'>{x}</command></iq>"
    )
}

/// Execute `node`, check the form, submit `fields`; returns the completion.
async fn run(c: &mut Client, id: &str, node: &str, fields: &[(&str, &[&str])]) -> (String, String) {
    let form = iq(c, &format!("{id}a"), &execute(node)).await;
    assert_eq!(attr(&form, "type").as_deref(), Some("result"), "{form}");
    assert!(form.contains("status='executing'"), "{form}");
    assert!(
        form.contains("<x xmlns='jabber:x:data' type='form'>"),
        "{form}"
    );
    assert!(
        form.contains("<value>http://jabber.org/protocol/admin</value>"),
        "FORM_TYPE: {form}"
    );
    let session = form
        .split("sessionid='")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap_or_else(|| panic!("no sessionid: {form}"))
        .to_owned();
    let done = iq(c, &format!("{id}b"), &submit(node, &session, fields)).await;
    assert_eq!(attr(&done, "type").as_deref(), Some("result"), "{done}");
    assert!(done.contains("status='completed'"), "{done}");
    assert!(done.contains(&format!("sessionid='{session}'")), "{done}");
    assert!(done.contains("<note type='info'>"), "{done}");
    (form, done)
}

fn is_message_with(s: &str, body: &str) -> bool {
    s.starts_with("<message") && s.contains(&format!("<body>{body}</body>"))
}

#[tokio::test]
async fn only_admins_run_commands() {
    let server = start_with_admin();
    let mut alice = client::login(&server, "alice@localhost", "apw", "r").await;
    for (i, node) in [ANNOUNCE, SET_MOTD, EDIT_MOTD, DELETE_MOTD]
        .iter()
        .enumerate()
    {
        let r = iq(&mut alice, &format!("f{i}"), &execute(node)).await;
        assert!(is_error(&r, "forbidden"), "{node}: {r}");
    }
    let mut admin = client::login(&server, "admin@localhost", "adpw", "r").await;
    let r = iq(
        &mut admin,
        "n1",
        &execute("http://jabber.org/protocol/admin#no-such-command"),
    )
    .await;
    assert!(is_error(&r, "item-not-found"), "{r}");
    let r = iq(
        &mut admin,
        "c1",
        &format!(
            "<iq type='set' id='ID' to='localhost'><command xmlns='http://jabber.org/protocol/commands' \
             node='{ANNOUNCE}' sessionid='s1' action='cancel'/></iq>"
        ),
    )
    .await;
    assert!(r.contains("status='canceled'"), "{r}");
}

#[tokio::test]
async fn announcement_reaches_online_users() {
    let server = start_with_admin();
    let mut alice = client::login(&server, "alice@localhost", "apw", "r").await;
    let mut bob = client::login(&server, "bob@localhost", "bpw", "r").await;
    available(&mut alice, "pa").await;
    available(&mut bob, "pb").await;
    let mut admin = client::login(&server, "admin@localhost", "adpw", "r").await;
    let (form, done) = run(
        &mut admin,
        "a",
        ANNOUNCE,
        &[
            ("subject", &["Maintenance"]),
            ("announcement", &["Going down in 2 minutes.", "Sorry!"]),
        ],
    )
    .await;
    assert!(form.contains("var='announcement'"), "{form}");
    assert!(done.contains("2 online session"), "{done}");
    for c in [&mut alice, &mut bob] {
        let m = wait_for(c, "announcement", |s| {
            is_message_with(s, "Going down in 2 minutes.\nSorry!")
        })
        .await;
        assert_eq!(attr(&m, "from").as_deref(), Some("localhost"), "{m}");
        assert_eq!(attr(&m, "type").as_deref(), Some("headline"), "{m}");
        assert!(m.contains("<subject>Maintenance</subject>"), "{m}");
    }
}

#[tokio::test]
async fn message_of_the_day() {
    let server = start_with_admin();
    let mut admin = client::login(&server, "admin@localhost", "adpw", "r").await;
    run(
        &mut admin,
        "s",
        SET_MOTD,
        &[("subject", &["Welcome"]), ("motd", &["Tea at five."])],
    )
    .await;

    // A user logging in gets it with the first available presence.
    let mut alice = client::login(&server, "alice@localhost", "apw", "r").await;
    let before = available(&mut alice, "p1").await;
    let motd = before
        .iter()
        .find(|s| is_message_with(s, "Tea at five."))
        .unwrap_or_else(|| panic!("no MOTD in {before:#?}"));
    assert_eq!(attr(motd, "from").as_deref(), Some("localhost"), "{motd}");
    assert_eq!(
        attr(motd, "to").as_deref(),
        Some("alice@localhost/r"),
        "{motd}"
    );
    assert_eq!(attr(motd, "type").as_deref(), Some("normal"), "{motd}");
    assert!(motd.contains("<subject>Welcome</subject>"), "{motd}");
    // Only once per session.
    let again = available(&mut alice, "p2").await;
    assert!(
        !again.iter().any(|s| s.starts_with("<message")),
        "{again:#?}"
    );

    // Edit: the form shows the current message.
    let (form, _) = run(&mut admin, "e", EDIT_MOTD, &[("motd", &["Tea at six."])]).await;
    assert!(form.contains("<value>Tea at five.</value>"), "{form}");
    let mut bob = client::login(&server, "bob@localhost", "bpw", "r").await;
    let before = available(&mut bob, "p3").await;
    assert!(
        before.iter().any(|s| is_message_with(s, "Tea at six.")),
        "{before:#?}"
    );

    // Delete: one step, and the next login gets nothing.
    let r = iq(&mut admin, "d", &execute(DELETE_MOTD)).await;
    assert!(r.contains("status='completed'"), "{r}");
    let mut alice2 = client::login(&server, "alice@localhost", "apw", "other").await;
    let before = available(&mut alice2, "p4").await;
    assert!(
        !before.iter().any(|s| s.starts_with("<message")),
        "{before:#?}"
    );
}

// ------------------------------------------------------------- store contract

async fn contract(storage: &Storage) {
    assert_eq!(storage.motd("example.org").await.expect("get"), None);
    assert!(!storage.delete_motd("example.org").await.expect("delete"));
    let first = Motd {
        subject: None,
        body: "Hello".into(),
    };
    storage.set_motd("example.org", &first).await.expect("set");
    assert_eq!(storage.motd("example.org").await.expect("get"), Some(first));
    let second = Motd {
        subject: Some("News".into()),
        body: "Line one\nLine 'two' & <three>".into(),
    };
    storage
        .set_motd("example.org", &second)
        .await
        .expect("replace");
    assert_eq!(
        storage.motd("example.org").await.expect("get"),
        Some(second.clone())
    );
    assert_eq!(storage.motd("other.org").await.expect("get"), None);
    assert!(storage.delete_motd("example.org").await.expect("delete"));
    assert_eq!(storage.motd("example.org").await.expect("get"), None);
}

#[tokio::test]
async fn motd_contract_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("j.db").display());
    let storage = Storage::open(&url, 4).await.expect("open sqlite");
    contract(&storage).await;
    storage.close().await;
}

#[tokio::test]
async fn motd_contract_on_postgres() {
    let url = common::fresh_pg().await;
    let storage = Storage::open(&url, 4).await.expect("open postgres");
    contract(&storage).await;
    storage.close().await;
}
