//! A room does not wait for a slow occupant: one that stops reading is
//! disconnected when its queue is full, leaves the room, and everyone else
//! gets every message (XEP-0045 rooms on the foundation's bounded queues).

mod common;

use common::Server;
use common::muc::{self, create_instant, join};
use std::time::Duration;

#[tokio::test]
async fn a_slow_occupant_is_dropped_and_the_others_get_everything() {
    const N: usize = 400;
    const SIZE: usize = 16 * 1024;
    let server = Server::start_edited(|t| {
        t.replacen("[c2s]\n", "[c2s]\nqueue_size = 64\n", 1)
            + "[muc]\nmax_occupants = 20\nmax_history = 10\n"
    });
    for u in ["alice", "bob", "carol"] {
        server.add_user(&format!("{u}@localhost"), "pw");
    }
    let mut alice = muc::online(&server, "alice", "a").await;
    create_instant(&mut alice, "foule", "Alice").await;
    let mut bob = muc::online(&server, "bob", "b").await;
    join(&mut bob, "foule", "Bob").await;
    let mut carol = muc::online(&server, "carol", "c").await;
    join(&mut carol, "foule", "Carol").await;

    // Bob stops reading. Carol reads on a task of her own, counting
    // messages and watching for bob's departure.
    // Alice never runs more than WINDOW messages ahead of carol, so carol is
    // never the slow one, whatever the machine's load; bob reads nothing.
    const WINDOW: usize = 16;
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = progress.clone();
    let reader = tokio::spawn(async move {
        let (mut got, mut bob_left) = (0usize, false);
        let mut buf = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while got < N || !bob_left {
            let Ok(chunk) = tokio::time::timeout_at(deadline, carol.read_some()).await else {
                break;
            };
            buf.push_str(&chunk);
            // Take complete stanzas in order, keeping any partial tail.
            loop {
                let ends = [("</message>", true), ("</presence>", false)];
                let Some((end, tag_len, is_message)) = ends
                    .iter()
                    .filter_map(|(tag, m)| buf.find(tag).map(|e| (e, tag.len(), *m)))
                    .min_by_key(|(e, _, _)| *e)
                else {
                    break;
                };
                let stanza = &buf[..end];
                if is_message && stanza.contains("<body>m") {
                    got += 1;
                    seen.store(got, std::sync::atomic::Ordering::Release);
                } else if !is_message
                    && stanza.contains("foule@conference.localhost/Bob")
                    && stanza.contains("unavailable")
                {
                    bob_left = true;
                }
                buf.drain(..end + tag_len);
            }
        }
        (got, bob_left, carol)
    });
    let filler = "x".repeat(SIZE);
    for i in 0..N {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while progress.load(std::sync::atomic::Ordering::Acquire) + WINDOW < i {
            assert!(
                tokio::time::Instant::now() < deadline,
                "carol stopped receiving"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        alice
            .send(&format!(
                "<message to='foule@conference.localhost' type='groupchat'><body>m{i} {filler}</body></message>"
            ))
            .await;
        // Alice reads her own reflections so that she is not the slow one.
        if i % 16 == 15 {
            alice.drain_now().await;
        }
    }
    let (got, bob_left, _carol) = reader.await.expect("reader");
    assert_eq!(got, N, "carol got every message");
    assert!(
        bob_left,
        "the room saw bob go (his session was closed as too slow)"
    );
    assert!(
        server.log().contains("cannot keep up"),
        "the router closed bob's session"
    );
    drop(bob);
}
