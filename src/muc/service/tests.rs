//! The service task end to end inside the library: started as the server
//! starts it (owned by a task tracker), fed through the router, read from
//! the occupants' session queues.

use super::*;
use crate::config::{Config, ResourceConflict};
use crate::router::packet::Packet;
use crate::router::queue;
use crate::router::sessions::{SessionControl, SessionHandle};
use std::time::Duration;

const ROOM: &str = "salon@conference.localhost";
const WAIT: Duration = Duration::from_secs(5);

async fn state(dir: &std::path::Path) -> Arc<ServerState> {
    let mut config = Config::default();
    config.server.data_dir = dir.to_owned();
    let storage = crate::storage::Storage::open(&config.storage_url(), 2)
        .await
        .expect("storage");
    let tls = crate::stream::tls::Tls::new(&config).expect("tls");
    let state = Arc::new(ServerState::new(config, storage, tls, vec![7; 32]).expect("state"));
    // Messages wait for their archive rows: the writer runs as in a server.
    tokio::spawn(crate::features::mam::writer(state.clone()));
    state
}

/// A bound session, whose queue the test reads.
struct Session {
    jid: FullJid,
    rx: queue::Receiver<Packet>,
}

impl Session {
    /// Bind `jid`, with a control token that is a child of `parent`.
    fn bind(
        state: &ServerState,
        jid: &str,
        parent: &tokio_util::sync::CancellationToken,
    ) -> Session {
        let (tx, rx) = queue::channel(256, usize::MAX);
        let jid = FullJid::new(jid).expect("jid");
        let handle = SessionHandle {
            id: state.sessions.next_id(),
            jid: jid.clone(),
            tx,
            control: Arc::new(SessionControl::new(parent)),
            priority: Some(0),
            presence: None,
            flags: 0,
        };
        state.sessions.bind(handle, ResourceConflict::Replace);
        Session { jid, rx }
    }

    /// Send `xml` (a stanza without `from`) from this session.
    async fn send(&self, state: &Arc<ServerState>, xml: &str) {
        let mut el: Element = xml.parse().expect("test XML is well-formed");
        set_attr(&mut el, "from", self.jid.to_string());
        crate::router::route(state, el).await;
    }

    /// The first stanza satisfying `pred`, skipping the others.
    async fn wait_for(&mut self, what: &str, pred: impl Fn(&Element) -> bool) -> Element {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let packet = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("{}: no {what}", self.jid))
                .expect("queue open");
            let el = packet.into_element(&self.jid).expect("an element");
            if pred(&el) {
                return el;
            }
        }
    }

    /// Join the room as `nick`, up to the self-presence.
    async fn join(&mut self, state: &Arc<ServerState>, nick: &str) {
        self.send(
            state,
            &format!("<presence xmlns='jabber:client' to='{ROOM}/{nick}'><x xmlns='{NS_MUC}'/></presence>"),
        )
        .await;
        let me = format!("{ROOM}/{nick}");
        self.wait_for("self-presence", |p| {
            p.name() == "presence" && p.attr("from") == Some(me.as_str()) && codes(p).contains(&110)
        })
        .await;
    }
}

fn codes(p: &Element) -> Vec<u16> {
    p.get_child("x", NS_USER)
        .map(|x| {
            x.children()
                .filter(|c| c.is("status", NS_USER))
                .filter_map(|c| c.attr("code")?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn item_attr(p: &Element, name: &str) -> Option<String> {
    p.get_child("x", NS_USER)?
        .get_child("item", NS_USER)?
        .attr(name)
        .map(str::to_owned)
}

/// Alice creates and configures the room, Bob and Carol join, from
/// sessions that close with `sessions`.
async fn room_of_three(
    state: &Arc<ServerState>,
    sessions: &tokio_util::sync::CancellationToken,
) -> (Session, Session, Session) {
    let mut alice = Session::bind(state, "alice@localhost/a", sessions);
    let mut bob = Session::bind(state, "bob@localhost/b", sessions);
    let mut carol = Session::bind(state, "carol@localhost/c", sessions);
    alice.join(state, "Alice").await;
    alice
        .send(
            state,
            &format!(
                "<iq xmlns='jabber:client' type='set' id='cfg' to='{ROOM}'><query xmlns='{NS_OWNER}'>\
                 <x xmlns='jabber:x:data' type='submit'/></query></iq>"
            ),
        )
        .await;
    alice
        .wait_for("configuration result", |s| s.attr("id") == Some("cfg"))
        .await;
    bob.join(state, "Bob").await;
    carol.join(state, "Carol").await;
    (alice, bob, carol)
}

#[tokio::test]
async fn a_ban_then_a_role_change_in_one_request_changes_the_right_occupant() {
    // The role item named Carol by her index, which the ban before it
    // shifted: the service panicked (index out of bounds) and answered
    // nothing.
    let dir = tempfile::tempdir().expect("dir");
    let state = state(dir.path()).await;
    let tasks = TaskTracker::new();
    start(&state, &tasks).await.expect("MUC service");
    let (mut alice, _bob, mut carol) = room_of_three(&state, &state.shutdown).await;
    alice
        .send(
            &state,
            &format!(
                "<iq xmlns='jabber:client' type='set' id='both' to='{ROOM}'><query xmlns='{NS_ADMIN}'>\
                 <item affiliation='outcast' jid='bob@localhost'/>\
                 <item nick='Carol' role='visitor'/></query></iq>"
            ),
        )
        .await;
    let answer = alice
        .wait_for("admin result", |s| s.attr("id") == Some("both"))
        .await;
    assert_eq!(answer.attr("type"), Some("result"), "{answer:?}");
    let own = format!("{ROOM}/Carol");
    let p = carol
        .wait_for("Carol's new role", |p| {
            p.name() == "presence"
                && p.attr("from") == Some(own.as_str())
                && p.attr("type").is_none()
        })
        .await;
    assert_eq!(item_attr(&p, "role").as_deref(), Some("visitor"), "{p:?}");
    state.stopping.cancel();
    tasks.close();
    tokio::time::timeout(WAIT, tasks.wait())
        .await
        .expect("the service stops");
}

#[tokio::test]
async fn the_service_stops_with_the_server_and_tells_occupants_why() {
    let dir = tempfile::tempdir().expect("dir");
    let state = state(dir.path()).await;
    let tasks = TaskTracker::new();
    start(&state, &tasks).await.expect("MUC service");
    // The sessions stay open while the service stops, as server::run
    // orders it (`stopping` first, the sessions' `shutdown` after): the
    // router still delivers the service's goodbye.
    let sessions = tokio_util::sync::CancellationToken::new();
    let (mut alice, mut bob, mut carol) = room_of_three(&state, &sessions).await;
    // What server::run does first on SIGTERM: the services end with `stopping`.
    state.stopping.cancel();
    tasks.close();
    tokio::time::timeout(WAIT, tasks.wait())
        .await
        .expect("the tracker owns the service, which stops with the token");
    // XEP-0045 status 332: removed because of a system shutdown.
    for (s, nick) in [
        (&mut alice, "Alice"),
        (&mut bob, "Bob"),
        (&mut carol, "Carol"),
    ] {
        let own = format!("{ROOM}/{nick}");
        let p = s
            .wait_for("the shutdown presence", |p| {
                p.name() == "presence"
                    && p.attr("from") == Some(own.as_str())
                    && p.attr("type") == Some("unavailable")
            })
            .await;
        assert!(codes(&p).contains(&332), "{p:?}");
        assert!(codes(&p).contains(&110), "{p:?}");
    }
}
