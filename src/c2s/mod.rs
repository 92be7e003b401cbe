//! Client-to-server listeners: STARTTLS (RFC 6120 §5) and direct TLS (XEP-0368).

pub mod bind;
pub mod binding;
pub mod negotiation;
pub mod sasl;
pub mod session;
pub mod tcp;
pub mod transport;

use crate::state::ServerState;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

/// Accept connections until shutdown, one task per connection.
pub async fn serve(
    state: Arc<ServerState>,
    listener: TcpListener,
    direct_tls: bool,
    tasks: TaskTracker,
) {
    let mut refused_logged = false;
    loop {
        let accepted = tokio::select! {
            _ = state.stopping.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let Some(slot) = state.try_connect() else {
                    if !refused_logged {
                        tracing::warn!(
                            limit = state.config.c2s.max_connections,
                            "connection limit reached: refusing new connections"
                        );
                        refused_logged = true;
                    }
                    drop(tcp);
                    continue;
                };
                refused_logged = false;
                tasks.spawn(tcp::run(slot, tcp, peer, direct_tls));
            }
            Err(e) => {
                // Out of file descriptors or similar: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
