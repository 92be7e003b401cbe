//! XMPP over WebSocket (RFC 7395) with real browser-side clients, each run
//! as a subprocess against the real server's `[http]` listener
//! (`ws://ADDR/xmpp-websocket`), while the raw TCP test client is the other
//! party:
//!
//! * xmpp.js (`@xmpp/client`, on Node.js) chats both ways with a TCP user,
//!   then joins a room at `conference.localhost` where both say something
//!   (`tests/web/xmppjs.mjs`);
//! * Converse.js in headless Chromium (Debian's `chromium`, driven by
//!   playwright-core) logs in through its login form, chats with a TCP user
//!   who answers, joins a room and sees its message reflected, and leaves
//!   screenshots in `target/test-output/` (`tests/web/converse.mjs`).
//!
//! The clients come from `tests/web/package-lock.json` (`npm ci --prefix
//! tests/web`) and Debian's `chromium`, `nodejs` and `npm`; scripts/test.sh
//! installs them. A missing one fails the test; it is skipped only when
//! `JASEUR_SKIP_WEB=1` is set as well.

mod common;
use common::Server;
use common::client::{self, Client, attr};
use common::interop::{Proc, fail, has_line};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

const SERVICE: &str = "conference.localhost";
const CHROMIUM: &str = "/usr/bin/chromium";
const INSTALL_HINT: &str = "run scripts/test.sh as root (it installs Debian's chromium, nodejs \
     and npm, and runs `npm ci --prefix tests/web`), or set JASEUR_SKIP_WEB=1 to skip the \
     WebSocket client tests on a machine without them";

/// How long a client script may run before it is killed (each bounds
/// itself below this: xmpp.js 15 s per wait, Converse 60 s in all).
const DEADLINE: Duration = Duration::from_secs(75);

/// How long the TCP user waits for what a browser-side client sends
/// (Chromium's start and Converse's login come first).
const WAIT: Duration = Duration::from_secs(45);

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("web")
}

/// Whether the web clients can run: fails (never skips) when something is
/// missing, unless `JASEUR_SKIP_WEB=1`, where it says so and gives false.
fn web_tools(chromium: bool) -> bool {
    let dir = web_dir();
    let mut missing = Vec::new();
    match std::process::Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => missing.push("node (Debian's nodejs)".to_owned()),
    }
    for package in ["@xmpp/client", "playwright-core", "converse.js/dist"] {
        let path = dir.join("node_modules").join(package);
        if !path.exists() {
            missing.push(path.display().to_string());
        }
    }
    if chromium && !Path::new(CHROMIUM).exists() {
        missing.push(CHROMIUM.to_owned());
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var("JASEUR_SKIP_WEB").as_deref() == Ok("1") {
        eprintln!(
            "SKIPPED (JASEUR_SKIP_WEB=1): the WebSocket client tests need {}",
            missing.join(", ")
        );
        return false;
    }
    panic!("missing: {}; {INSTALL_HINT}", missing.join(", "));
}

/// A server with the `[http]` listener and the users `alice` and `bob`
/// (password "secret"); fails clearly while WebSocket is not there.
fn server() -> (Server, SocketAddr) {
    // The base test configuration may already have the section (TOML
    // refuses a second one).
    let started = std::panic::catch_unwind(|| {
        Server::start_edited(|text| {
            if text.contains("[http]\n") {
                text
            } else {
                text + "[http]\nlisten = [\"127.0.0.1:0\"]\n"
            }
        })
    });
    let server = started.unwrap_or_else(|_| {
        panic!(
            "jaseur did not start with an [http] section (see its log above): \
             is XMPP over WebSocket (RFC 7395) implemented?"
        )
    });
    let Some(http) = server.http else {
        panic!(
            "jaseur started with `[http] listen = [\"127.0.0.1:0\"]` but its ready file names no \
             `http ADDR` line: the HTTP/WebSocket listener is missing\n---- server log:\n{}",
            server.log()
        );
    };
    for user in ["alice", "bob"] {
        server.add_user(&format!("{user}@localhost"), "secret");
    }
    (server, http)
}

/// Check that `ws://ADDR/xmpp-websocket` upgrades with subprotocol `xmpp`
/// before running a client, so a missing endpoint reads as such.
async fn probe_websocket(server: &Server, http: SocketAddr) -> String {
    let url = format!("ws://{http}/xmpp-websocket");
    let answer = async {
        let mut tcp = tokio::net::TcpStream::connect(http)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let request = format!(
            "GET /xmpp-websocket HTTP/1.1\r\nHost: {http}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\
             Origin: http://127.0.0.1\r\n\r\n"
        );
        tcp.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("cannot send the upgrade request: {e}"))?;
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
        Ok(String::from_utf8_lossy(&head).into_owned())
    };
    let head = match tokio::time::timeout(Duration::from_secs(10), answer).await {
        Ok(Ok(head)) => head,
        Ok(Err(e)) => panic!(
            "the WebSocket endpoint {url} does not answer ({e})\n---- server log:\n{}",
            server.log()
        ),
        Err(_) => panic!(
            "the WebSocket endpoint {url} did not answer an upgrade within 10 s\n---- server log:\n{}",
            server.log()
        ),
    };
    let status = head.lines().next().unwrap_or_default();
    let protocol = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("sec-websocket-protocol:") && l.contains("xmpp")
    });
    assert!(
        status.starts_with("HTTP/1.1 101") && protocol,
        "the WebSocket endpoint {url} answered an RFC 7395 upgrade with {status:?} \
         (subprotocol xmpp: {protocol}), not 101 Switching Protocols with `xmpp`:\n{head}\n\
         ---- server log:\n{}",
        server.log()
    );
    url
}

/// `node tests/web/SCRIPT ARGS...`, its output collected.
fn node(script: &str, args: &[&str]) -> Proc {
    let path = web_dir().join(script);
    let what = format!("node {} {}", path.display(), args.join(" "));
    let mut cmd = Command::new("node");
    cmd.arg(&path).args(args).current_dir(web_dir());
    Proc::spawn(what, cmd, None)
}

/// A TCP user online with initial presence.
async fn tcp_user(server: &Server, user: &str) -> Client {
    let mut c = client::login(server, &format!("{user}@localhost"), "secret", "tcp").await;
    c.send("<presence/>").await;
    c
}

/// The first stanza satisfying `pred` within `wait`, skipping others.
async fn wait_stanza(
    c: &mut Client,
    wait: Duration,
    pred: impl Fn(&str) -> bool,
) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut skipped = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client::next(c, left).await {
            Ok(s) if pred(&s) => return Ok(s),
            Ok(s) => skipped.push(s),
            Err(e) => return Err(format!("{e}\nskipped: {skipped:#?}")),
        }
    }
}

fn is_message_with(s: &str, kind: &str, from_prefix: &str, text: &str) -> bool {
    s.starts_with("<message")
        && attr(s, "type").as_deref() == Some(kind)
        && attr(s, "from").is_some_and(|f| f.starts_with(from_prefix))
        && s.contains(text)
}

/// Where the screenshots are kept: `target/test-output/`.
fn output_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("test-output");
    std::fs::create_dir_all(&dir).expect("test output directory");
    dir
}

/// xmpp.js over WebSocket and a TCP user: a chat message each way (the TCP
/// user answers the bare JID, which must reach the WebSocket session), then
/// both in a room that xmpp.js creates, each seeing the other's groupchat
/// message live and xmpp.js its own reflected.
#[tokio::test]
async fn xmppjs_over_websocket_chats_and_joins_a_room() {
    if !web_tools(false) {
        return;
    }
    let (server, http) = server();
    let url = probe_websocket(&server, http).await;
    let mut bob = tcp_user(&server, "bob").await;
    let pid = std::process::id();
    let room = format!("websocket-xmppjs-{pid}@{SERVICE}");
    let to_bob = format!("Hello bob, from xmpp.js {pid}");
    let to_alice = format!("Hello alice, from TCP {pid}");
    let bob_in_room = format!("Hello room, from TCP {pid}");
    let alice_in_room = format!("Hello room, from xmpp.js {pid}");
    #[rustfmt::skip]
    let mut js = node("xmppjs.mjs", &[
        "--service", &url, "--domain", "localhost",
        "--username", "alice", "--password", "secret", "--resource", "xmppjs",
        "--timeout", "15",
        "send", "bob@localhost", &to_bob,
        "expect", "bob@localhost", &to_alice,
        "join", &room, "Alice",
        "expect-groupchat", &room, "Bob", &bob_in_room,
        "say", &room, &alice_in_room,
    ]);

    let mut why = None;
    match wait_stanza(&mut bob, WAIT, |s| {
        is_message_with(s, "chat", "alice@localhost/xmppjs", &to_bob)
    })
    .await
    {
        Err(e) => why = Some(format!("bob (TCP) never got xmpp.js's message: {e}")),
        Ok(_) => {
            bob.send(&format!(
                "<message to='alice@localhost' type='chat' id='tcp1'><body>{to_alice}</body></message>"
            ))
            .await;
        }
    }
    if why.is_none()
        && let Err(e) = js.line(r#"{"event":"joined""#, &[&room], WAIT).await
    {
        why = Some(format!("xmpp.js did not join {room}: {e}"));
    }
    if why.is_none() {
        bob.send(&format!(
            "<presence to='{room}/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ))
        .await;
        let own = format!("{room}/Bob");
        match wait_stanza(&mut bob, WAIT, |s| {
            s.starts_with("<presence") && attr(s, "from").as_deref() == Some(own.as_str())
        })
        .await
        {
            Err(e) => why = Some(format!("bob (TCP) could not join {room}: {e}")),
            Ok(p) if attr(&p, "type").as_deref() == Some("error") => {
                why = Some(format!("bob (TCP) could not join {room}: {p}"));
            }
            Ok(_) => {
                bob.send(&format!(
                    "<message to='{room}' type='groupchat' id='tcp2'><body>{bob_in_room}</body></message>"
                ))
                .await;
                if let Err(e) = wait_stanza(&mut bob, WAIT, |s| {
                    is_message_with(s, "groupchat", &format!("{room}/Alice"), &alice_in_room)
                })
                .await
                {
                    why = Some(format!(
                        "bob (TCP) never saw xmpp.js's message in the room: {e}"
                    ));
                }
            }
        }
    }
    let run = js.finish(DEADLINE).await;
    if let Some(why) = why {
        fail(&server, &[&run], "", &why);
    }
    if !run.ok() {
        fail(&server, &[&run], "", "xmpp.js did not finish its script");
    }
    for (event, part) in [
        (r#"{"event":"online""#, "alice@localhost/xmppjs"),
        (r#"{"event":"expected""#, to_alice.as_str()),
        (r#"{"event":"expected""#, bob_in_room.as_str()),
        (r#"{"event":"reflected""#, alice_in_room.as_str()),
        (r#"{"event":"done""#, ""),
    ] {
        if !has_line(&run, event, &[part]) {
            fail(
                &server,
                &[&run],
                "",
                &format!("no {event} line with {part:?}"),
            );
        }
    }
    // Shown with --nocapture.
    eprintln!("{}", run.report());
}

/// Converse.js in headless Chromium over WebSocket: it logs in through its
/// form, sends a chat message that a TCP user answers (to its full JID),
/// shows the answer, joins a room and sees its message reflected; the
/// screenshots are kept in `target/test-output/`.
#[tokio::test]
async fn converse_in_chromium_over_websocket_chats_and_joins_a_room() {
    if !web_tools(true) {
        return;
    }
    let (server, http) = server();
    let url = probe_websocket(&server, http).await;
    let mut bob = tcp_user(&server, "bob").await;
    let pid = std::process::id();
    let room = format!("websocket-converse-{pid}@{SERVICE}");
    let to_bob = format!("Hello bob, from Converse.js {pid}");
    let to_alice = format!("Hello Converse, bob answers over TCP {pid}");
    let in_room = format!("Hello room, from Converse.js {pid}");
    let shot = output_dir().join("converse-websocket.png");
    let room_shot = output_dir().join("converse-websocket-room.png");
    for f in [&shot, &room_shot] {
        let _ = std::fs::remove_file(f);
    }
    let shot_arg = shot.to_str().expect("utf-8 path").to_owned();
    #[rustfmt::skip]
    let converse = node("converse.mjs", &[
        "--service", &url, "--jid", "alice@localhost", "--password", "secret",
        "--peer", "bob@localhost", "--text", &to_bob, "--expect", &to_alice,
        "--room", &room, "--nick", "Alice", "--room-text", &in_room,
        "--screenshot", &shot_arg, "--timeout", "60",
    ]);

    let mut why = None;
    match wait_stanza(&mut bob, WAIT, |s| {
        is_message_with(s, "chat", "alice@localhost/", &to_bob)
    })
    .await
    {
        Err(e) => why = Some(format!("bob (TCP) never got Converse's message: {e}")),
        Ok(m) => {
            let from = attr(&m, "from").unwrap_or_default();
            bob.send(&format!(
                "<message to='{from}' type='chat' id='tcp1'><body>{to_alice}</body></message>"
            ))
            .await;
        }
    }
    let run = converse.finish(DEADLINE).await;
    if let Some(why) = why {
        fail(&server, &[&run], "", &why);
    }
    if !run.ok() {
        fail(&server, &[&run], "", "Converse.js did not finish");
    }
    for (event, part) in [
        (r#"{"event":"online""#, "alice@localhost/"),
        (r#"{"event":"received""#, to_alice.as_str()),
        (r#"{"event":"room-reflected""#, in_room.as_str()),
        (r#"{"event":"done""#, ""),
    ] {
        if !has_line(&run, event, &[part]) {
            fail(
                &server,
                &[&run],
                "",
                &format!("no {event} line with {part:?}"),
            );
        }
    }
    for f in [&shot, &room_shot] {
        let bytes = std::fs::read(f).unwrap_or_else(|e| {
            fail(
                &server,
                &[&run],
                "",
                &format!("no screenshot at {}: {e}", f.display()),
            )
        });
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 1000,
            "{} is not a PNG image ({} bytes)",
            f.display(),
            bytes.len()
        );
    }
    // Shown with --nocapture: what the browser saw (console errors included).
    eprintln!("{}", run.report());
    eprintln!(
        "Converse.js screenshots: {} and {}",
        shot.display(),
        room_shot.display()
    );
}
