//! The HTTP listener (`[http] listen`): XMPP over WebSocket (RFC 7395, in
//! `websocket.rs`) and XEP-0156 discovery (`host_meta.rs`). Usually behind
//! a reverse proxy that does TLS (docs/websocket.md); it can do TLS itself
//! with the server's certificates (`http.tls`).
//!
//! Connections are accepted here rather than by `axum::serve` so that each
//! one is counted against the server's connection limit and a per-address
//! limit, bounded in how long its request headers may take, and tracked for
//! shutdown like a client stream.

pub mod host_meta;
pub mod websocket;

use crate::state::ServerState;
use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a client may take to send its request headers (slowloris).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a TLS handshake may take.
const TLS_TIMEOUT: Duration = Duration::from_secs(30);
/// How long open requests get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The endpoint's path, under `http.public_url`.
pub const WEBSOCKET_PATH: &str = "/xmpp-websocket";

/// What a request knows of its connection.
#[derive(Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// Where long-lived work started by a request (a WebSocket session) is tracked.
    pub tasks: TaskTracker,
    /// The connection's place in the per-address limit, taken by the
    /// request that upgrades the connection to keep for the session.
    guard: Arc<Mutex<Option<IpGuard>>>,
}

impl ConnInfo {
    /// Take the connection's place in the per-address limit (once).
    pub fn take_guard(&self) -> Option<IpGuard> {
        self.guard.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Open HTTP connections (and WebSocket sessions) per client address.
#[derive(Debug, Default)]
pub struct PerIp {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

impl PerIp {
    /// A place for `ip`, unless it holds `max` already.
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpGuard> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpGuard {
            limiter: self.clone(),
            ip,
        })
    }
}

/// One place in the per-address limit, given back when dropped.
#[derive(Debug)]
pub struct IpGuard {
    limiter: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// The routes of a listener whose clients are told `endpoints`.
fn router(state: Arc<ServerState>, endpoints: host_meta::Endpoints) -> Router {
    Router::new()
        .route(WEBSOCKET_PATH, get(websocket::upgrade))
        .route("/.well-known/host-meta", get(host_meta::xrd))
        .route("/.well-known/host-meta.json", get(host_meta::jrd))
        .layer(Extension(endpoints))
        .with_state(state)
}

/// Accept HTTP connections on `listener` until shutdown.
pub async fn serve(
    state: Arc<ServerState>,
    listener: TcpListener,
    per_ip: Arc<PerIp>,
    tasks: TaskTracker,
) {
    // The base URL clients are given: the configured public one, or this
    // listener's own address (the configured one may say port 0).
    let base = match &state.config.http.public_url {
        Some(_) => state.config.http.public_base(),
        None => listener.local_addr().ok().map(|a| {
            format!(
                "http{}://{a}/",
                if state.config.http.tls { "s" } else { "" }
            )
        }),
    };
    let endpoints = host_meta::Endpoints {
        websocket: base.as_deref().and_then(host_meta::websocket_url),
    };
    let routes = router(state.clone(), endpoints);
    let mut refused_logged = false;
    loop {
        let accepted = tokio::select! {
            _ = state.stopping.cancelled() => return,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(guard) = per_ip.enter(peer.ip(), state.config.http.max_connections_per_ip) else {
            tracing::debug!(%peer, "HTTP connection refused: too many from this address");
            continue;
        };
        let Some(slot) = state.try_connect() else {
            if !refused_logged {
                tracing::warn!(
                    max = state.config.c2s.max_connections,
                    "connection limit reached: refusing HTTP connections"
                );
                refused_logged = true;
            }
            continue;
        };
        refused_logged = false;
        let _ = tcp.set_nodelay(true);
        let info = ConnInfo {
            peer,
            tasks: tasks.clone(),
            guard: Arc::new(Mutex::new(Some(guard))),
        };
        let service = TowerToHyperService::new(routes.clone().layer(Extension(info)));
        let state = state.clone();
        tasks.spawn(async move {
            // Held while the connection speaks HTTP; an upgraded WebSocket
            // takes places of its own.
            let _slot = slot;
            let shutdown = state.stopping.clone();
            if state.config.http.tls {
                let handshake =
                    tokio::time::timeout(TLS_TIMEOUT, state.tls.acceptor().accept(tcp)).await;
                match handshake {
                    Ok(Ok(tls)) => connection(tls, service, shutdown).await,
                    _ => tracing::debug!(%peer, "HTTPS handshake failed"),
                }
            } else {
                connection(tcp, service, shutdown).await
            }
        });
    }
}

/// Serve one connection's requests (and its upgrade) until it closes.
async fn connection<I, S>(io: I, service: S, shutdown: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "HTTP connection ended");
            }
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_address_limit_holds_and_frees() {
        let limiter = Arc::new(PerIp::default());
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let a = limiter.enter(ip, 2).expect("first");
        let _b = limiter.enter(ip, 2).expect("second");
        assert!(limiter.enter(ip, 2).is_none());
        assert!(limiter.enter("192.0.2.2".parse().expect("ip"), 2).is_some());
        drop(a);
        assert!(limiter.enter(ip, 2).is_some());
    }
}
