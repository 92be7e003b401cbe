//! A bound resource's hold on the server (RFC 6120 §7): its entry in the
//! session registry, its outbound queue and its presence. Released exactly
//! once, whatever ends the session: the normal path releases it and says
//! goodbye to the contacts; if the session's task panics or is dropped
//! mid-way, `Drop` releases it instead, so the registry never keeps a dead
//! session (one did once, and every message to that account looped on it
//! until the stack overflowed) and nothing queued is lost.

use crate::features::presence::{self, SessionPresence};
use crate::router::queue::Receiver;
use crate::router::sessions::{Packet, SessionHandle};
use crate::router::{self};
use crate::state::ServerState;
use std::sync::Arc;

/// A bound resource's registry entry, queue and presence.
pub struct Binding {
    state: Arc<ServerState>,
    pub handle: SessionHandle,
    pub queue: Receiver<Packet>,
    /// This session's presence state.
    pub presence: SessionPresence,
    /// Stanzas taken from the queue whose write did not complete.
    pub unsent: Vec<Packet>,
    released: bool,
}

impl Binding {
    /// Take hold of a resource `handle` already registered, with its queue.
    pub fn new(state: Arc<ServerState>, handle: SessionHandle, queue: Receiver<Packet>) -> Self {
        Binding {
            state,
            handle,
            queue,
            presence: SessionPresence::default(),
            unsent: Vec::new(),
            released: false,
        }
    }

    /// Leave the registry: nothing new is routed to this session. What is
    /// already queued stays, for `release` to route again.
    pub fn unbind(&self) {
        self.state.sessions.unbind(&self.handle.jid, self.handle.id);
    }

    /// Leave the registry, tell the contacts this resource is gone (RFC 6121
    /// §4.5.2) and route again what it did not write.
    pub async fn release(&mut self) {
        self.released = true;
        self.unbind();
        let state = self.state.clone();
        let jid = self.handle.jid.clone();
        for packet in std::mem::take(&mut self.unsent) {
            router::reroute_packet(&state, &jid, packet).await;
        }
        presence::go_unavailable(&state, &jid, self.handle.id, None, &mut self.presence).await;
        router::drain(&state, &jid, &mut self.queue).await;
    }
}

impl Drop for Binding {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.unbind();
        self.queue.close();
        let mut left = std::mem::take(&mut self.unsent);
        while let Ok(packet) = self.queue.try_recv() {
            left.push(packet);
        }
        let jid = self.handle.jid.clone();
        if std::thread::panicking() {
            tracing::error!(%jid, queued = left.len(), "session task panicked: releasing its resource");
        } else {
            tracing::debug!(%jid, "session dropped before it released its resource");
        }
        let state = self.state.clone();
        let id = self.handle.id;
        let mut presence = std::mem::take(&mut self.presence);
        let cleanup = async move {
            presence::go_unavailable(&state, &jid, id, None, &mut presence).await;
            for packet in left {
                router::reroute_packet(&state, &jid, packet).await;
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(cleanup);
            }
            Err(_) => tracing::error!("no runtime to release a session's resource"),
        }
    }
}
