//! The MUC service is a supervised background service: owned by the
//! server's task tracker, it stops with the server, and on the way out
//! tells every occupant it was removed because of a system shutdown
//! (XEP-0045 status 332) before their connections close.

mod common;

use common::Server;
use common::client::{self, attr};
use common::muc::*;
use std::time::Duration;

/// Whether `raw` (what a connection received up to its end) holds the
/// occupant's own unavailable presence from `from` with status 332, and
/// then the end of the stream.
fn unavailable_332_then_close(raw: &str, from: &str) -> Result<(), String> {
    let mut rest = raw;
    let mut saw_332 = false;
    while let Some(end) = client::element_end(rest) {
        let s = client::norm(rest[..end].trim());
        rest = &rest[end..];
        if s.starts_with("</stream:stream") {
            return if saw_332 {
                Ok(())
            } else {
                Err(format!(
                    "the stream closed before a presence with 332: {raw}"
                ))
            };
        }
        if is_presence(&s)
            && from_is(&s, from)
            && attr(&s, "type").as_deref() == Some("unavailable")
            && has_status(&s, 332)
        {
            assert!(has_status(&s, 110), "its own presence, so 110 too: {s}");
            saw_332 = true;
        }
    }
    Err(format!(
        "the stream did not end with </stream:stream>: {raw}"
    ))
}

#[tokio::test]
async fn the_server_stops_at_once_with_rooms_open() {
    // The tracker waits for the MUC service: one that did not stop with
    // the shutdown token would hold the server for the whole grace period
    // (5 s in tests) and have it warn.
    let mut server = Server::start();
    let mut alice = user(&server, "alice").await;
    create_instant(&mut alice, "salon", "Alice").await;
    sync(&mut alice).await;
    let took = server.stop();
    assert!(took < Duration::from_secs(4), "stopping took {took:?}");
    let log = server.log();
    assert!(!log.contains("did not close in time"), "{log}");
}

#[tokio::test]
async fn occupants_hear_of_the_shutdown_before_their_connections_close() {
    let mut server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_instant(&mut alice, "salon", "Alice").await;
    join(&mut bob, "salon", "Bob").await;
    wait_presence(&mut alice, &occ("salon", "Bob"), |_| true).await;
    // Nothing else is on its way: what arrives from here on is the shutdown.
    sync(&mut alice).await;
    sync(&mut bob).await;

    // SIGTERM, and wait for the process to end: what the server sent on
    // the way out waits in the sockets.
    server.stop();
    for (c, nick) in [(&mut alice, "Alice"), (&mut bob, "Bob")] {
        let raw = c
            .read_to_close(Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("{nick}'s connection: {e}"));
        if let Err(e) = unavailable_332_then_close(&raw, &occ("salon", nick)) {
            panic!("{nick}: {e}\nserver log:\n{}", server.log());
        }
    }
}
