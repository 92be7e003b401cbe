//! Hostile input from authenticated users: characters XML forbids, stanzas
//! to sessions that just died, big stanzas to slow readers. The server must
//! end the offending stream with the right error, keep serving everyone
//! else, and lose nothing it accepted. Every test talks to the real binary.

mod common;

use common::Server;
use common::client::{self, WAIT};
use std::time::Duration;

const STREAM_NS: &str = "urn:ietf:params:xml:ns:xmpp-streams";

/// Sends `raw` on an authenticated stream and returns what the server
/// answered until it closed the connection.
async fn send_and_read_to_close(c: &mut client::Client, raw: &[u8]) -> String {
    let _ = c.send_bytes(raw).await;
    c.read_to_close(WAIT)
        .await
        .unwrap_or_else(|e| panic!("the server did not close the stream: {e}"))
}

/// The two-message crash: a NUL in a message to an offline user, then a
/// message to that user. The server stays up, the sender gets a stream error,
/// and alice gets nothing corrupt.
#[tokio::test]
async fn a_forbidden_character_ends_the_stream_and_the_server_stays_up() {
    let server = Server::start();
    server.add_user("alice@localhost", "pw");
    server.add_user("mallory@localhost", "pw");
    let mut mallory = client::login(&server, "mallory@localhost", "pw", "m").await;
    let answer = send_and_read_to_close(
        &mut mallory,
        b"<message to='alice@localhost' type='chat'><body>a\0b</body></message>\
          <message to='alice@localhost' type='chat'><body>second</body></message>",
    )
    .await;
    assert!(
        answer.contains(&format!("<not-well-formed xmlns='{STREAM_NS}'/>"))
            || answer.contains(&format!("<not-well-formed xmlns=\"{STREAM_NS}\"/>")),
        "a stream error names the problem: {answer}"
    );
    // The same again from a fresh session (the dead one must be gone), and
    // with the other forbidden classes: C0 controls in attributes, character
    // references to forbidden code points, U+FFFE/U+FFFF.
    for bad in [
        &b"<message to='alice@localhost\x1b' type='chat'><body>x</body></message>"[..],
        b"<message to='alice@localhost' type='chat'><body>&#0;</body></message>",
        b"<message to='alice@localhost' type='chat' id='&#x1;'><body>x</body></message>",
        "<message to='alice@localhost' type='chat'><body>\u{FFFE}</body></message>".as_bytes(),
        b"<message to='alice@localhost' type='chat'><body>&#xFFFF;</body></message>",
    ] {
        let mut m = client::login(&server, "mallory@localhost", "pw", "m").await;
        let answer = send_and_read_to_close(&mut m, bad).await;
        assert!(
            client::norm(&answer).contains(&format!("<not-well-formed xmlns='{STREAM_NS}'/>")),
            "{}: {answer}",
            String::from_utf8_lossy(bad)
        );
    }
    // Mallory keeps the server busy with the bare JID, then alice logs in.
    let mut m = client::login(&server, "mallory@localhost", "pw", "m2").await;
    m.send("<message to='alice@localhost' type='chat' id='ok'><body>fine</body></message>")
        .await;
    let mut alice = client::login(&server, "alice@localhost", "pw", "a").await;
    alice.send("<presence/>").await;
    let got = client::wait_for(&mut alice, "the valid message", |s| {
        s.starts_with("<message") && s.contains("fine")
    })
    .await;
    assert!(!got.contains('\0'));
    // Nothing corrupt was stored or delivered before it.
    alice
        .send("<iq type='get' id='late'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let rest = client::reply(&mut alice, "late").await;
    assert!(!rest.contains("a\u{0}b"));
    let mut server = server;
    assert!(server.is_running(), "the server is up:\n{}", server.log());
}

/// A session whose connection is cut: a message to its bare JID goes to the
/// account's other resource at once, never into a dead queue.
#[tokio::test]
async fn a_message_to_a_session_that_just_died_reaches_another_resource() {
    let server = Server::start();
    server.add_user("alice@localhost", "pw");
    server.add_user("bob@localhost", "pw");
    let mut a1 = client::login(&server, "alice@localhost", "pw", "one").await;
    a1.send("<presence><priority>5</priority></presence>").await;
    let mut a2 = client::login(&server, "alice@localhost", "pw", "two").await;
    a2.send("<presence><priority>1</priority></presence>").await;
    let mut bob = client::login(&server, "bob@localhost", "pw", "b").await;
    // Round trips make sure both presences were processed.
    client::iq(
        &mut a1,
        "p1",
        "<iq type='get' id='ID'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    client::iq(
        &mut a2,
        "p2",
        "<iq type='get' id='ID'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    // The connection of the preferred resource goes away without a word:
    // reset, so that the server's next write to it fails (a plain close
    // would let the kernel accept writes that no one reads, which only
    // stream management can recover).
    a1.io.get_ref().0.set_zero_linger().expect("SO_LINGER");
    drop(a1);
    for i in 0..20 {
        bob.send(&format!(
            "<message to='alice@localhost' type='chat' id='m{i}'><body>n{i}</body></message>"
        ))
        .await;
    }
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 20 {
        let s = client::wait_for(&mut a2, "the messages", |s| s.starts_with("<message")).await;
        if let Some(id) = client::attr(&s, "id") {
            seen.insert(id);
        }
    }
    assert_eq!(seen.len(), 20);
    let mut server = server;
    assert!(server.is_running());
}

/// Logs in over a connection with a small receive window (see
/// `direct_tls_small_window`).
async fn login_slow_reader(server: &Server, user: &str) -> client::Client {
    let mut c = client::direct_tls_small_window(server).await;
    let outcome = c.auth_plain(user, "pw").await;
    assert!(outcome.contains("<success"), "{outcome}");
    c.bind(Some("slow")).await;
    c
}

/// Big stanzas to slow readers: each session's queue is bounded in bytes, so
/// fifty readers that do not read cost at most about fifty times that bound,
/// and the memory comes back once they are gone.
#[tokio::test]
async fn big_stanzas_to_slow_readers_stay_within_the_byte_bound() {
    const READERS: usize = 50;
    // Past the kernel's buffers (the server's send buffer grows to 4 MiB on
    // Debian's defaults) and the 1 MiB queue: 7 MB per reader.
    const ROUNDS: usize = 70;
    let mut server = Server::start_with_c2s("queue_bytes = 1048576");
    server.add_user("sender@localhost", "pw");
    for i in 0..READERS {
        server.add_user(&format!("r{i}@localhost"), "pw");
    }
    let mut readers = Vec::new();
    for i in 0..READERS {
        readers.push(login_slow_reader(&server, &format!("r{i}")).await);
    }
    let baseline = server.rss_kib();
    let mut sender = client::login(&server, "sender@localhost", "pw", "s").await;
    // About 100 KB in 250 bodies of different languages (XEP-0201 allows
    // several): each element costs far more parsed than serialised.
    let line = "y".repeat(400);
    let text: String = (0..250)
        .map(|i| format!("{line}</body><body xml:lang='l{i}'>"))
        .collect();
    let mut peak = baseline;
    for round in 0..ROUNDS {
        for i in 0..READERS {
            sender
                .send(&format!(
                    "<message to='r{i}@localhost/slow' type='chat' id='{round}'><body>{text}</body></message>"
                ))
                .await;
        }
        sender.drain_now().await;
        peak = peak.max(server.rss_kib());
    }
    client::iq(
        &mut sender,
        "done",
        "<iq type='get' id='ID'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    peak = peak.max(server.rss_kib());
    // 50 queues of 1 MiB, one write batch of at most 64 KiB and TLS's
    // buffer per session, and the parse of one stanza at a time: well under
    // 128 MiB above the baseline. Without the byte bound, queues of 2,048
    // stanzas of 100 KB took gigabytes.
    let grown = peak.saturating_sub(baseline);
    eprintln!("RSS: baseline {baseline} KiB, peak {peak} KiB");
    assert!(
        grown < 128 * 1024,
        "RSS grew by {grown} KiB (baseline {baseline} KiB, peak {peak} KiB)"
    );
    drop(readers);
    // Everything queued for them goes to offline storage; then the memory
    // must come back close to where it started (the database's caches and
    // the offline store's growth account for a few MiB).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut now = server.rss_kib();
    while now > baseline + 16 * 1024 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        now = server.rss_kib();
    }
    eprintln!("RSS: after {now} KiB");
    assert!(
        now <= baseline + 16 * 1024,
        "RSS stayed at {now} KiB after the readers left (baseline {baseline} KiB, peak {peak} KiB)"
    );
    assert!(server.is_running());
}

/// The hostile-input storm (`jaseur-bench storm`, fixed seed) for a few
/// seconds: 20 authenticated streams send mutated stanzas while two probe
/// accounts keep logging in and exchanging a message. The server stays up,
/// every probe gets through within 5 s, and RSS stays within 64 MiB of where
/// it started. scripts/bench-compare.sh runs it longer, beside Prosody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_mutated_stanzas_leaves_the_server_serving() {
    const BENCH: &str = env!("CARGO_BIN_EXE_jaseur-bench");
    const USERS: usize = 20;
    let mut server = Server::start();
    server.add_numbered_users(USERS + 2);
    let out = tokio::process::Command::new(BENCH)
        .args([
            "storm",
            "--server",
            &server.c2s.to_string(),
            "--domain",
            "localhost",
            "--users",
            &USERS.to_string(),
            "--ca",
            server.cert_path().to_str().expect("utf-8 path"),
            "--server-pid",
            &server.pid().to_string(),
            "--duration",
            "4",
            "--rate",
            "1000",
            "--seed",
            "11",
            "--settle",
            "1",
        ])
        .output()
        .await
        .expect("run jaseur-bench storm");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report = format!(
        "---- stdout:\n{stdout}\n---- stderr:\n{}\n---- server log (end):\n{}",
        String::from_utf8_lossy(&out.stderr),
        server
            .log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(out.status.success(), "the storm run failed\n{report}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("storm "))
        .unwrap_or_else(|| panic!("no result line\n{report}"));
    let field = |key: &str| -> u64 {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key}= in {line}"))
    };
    assert!(field("probes") >= 2, "{line}");
    assert_eq!(field("probe_failures"), 0, "{line}");
    assert!(field("mutated") > 100, "the storm stormed: {line}");
    assert!(
        field("server_closed") > 0,
        "hostile streams were closed: {line}"
    );
    assert!(
        field("rss_growth_kib") < 64 * 1024,
        "RSS within 64 MiB of the start: {line}"
    );
    assert!(server.is_running(), "{report}");
    // And a new client still logs in and chats.
    server.add_user("late@localhost", "pw");
    let mut late = client::login(&server, "late@localhost", "pw", "l").await;
    late.send("<presence/>").await;
    let mut u = client::login(&server, "user1@localhost", "pass1", "after").await;
    u.send(
        "<message to='late@localhost' type='chat' id='x'><body>after the storm</body></message>",
    )
    .await;
    client::wait_for(&mut late, "the message", |s| s.contains("after the storm")).await;
    eprintln!("{line}");
}
