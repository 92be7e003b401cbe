//! Starting, running and stopping the server.

use crate::admin;
use crate::c2s;
use crate::config::Config;
use crate::state::ServerState;
use crate::storage::Storage;
use crate::stream::tls::Tls;
use anyhow::Context;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

/// The bound listening sockets.
pub struct Listeners {
    pub starttls: Vec<TcpListener>,
    pub direct_tls: Vec<TcpListener>,
    /// HTTP: XMPP over WebSocket and host-meta.
    pub http: Vec<TcpListener>,
}

impl Listeners {
    /// Bind every configured address (port 0 picks a free port).
    pub async fn bind(config: &Config) -> anyhow::Result<Listeners> {
        let mut starttls = Vec::new();
        for addr in &config.c2s.listen {
            starttls.push(listen(*addr).await?);
        }
        let mut direct_tls = Vec::new();
        for addr in &config.c2s.direct_tls {
            direct_tls.push(listen(*addr).await?);
        }
        let mut http = Vec::new();
        for addr in &config.http.listen {
            http.push(listen(*addr).await?);
        }
        Ok(Listeners {
            starttls,
            direct_tls,
            http,
        })
    }

    fn addrs(list: &[TcpListener]) -> Vec<SocketAddr> {
        list.iter().filter_map(|l| l.local_addr().ok()).collect()
    }
}

async fn listen(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} (another server there? run `jaseur check`)")
    })
}

/// The secret that keys fake SCRAM salts, created once per data directory.
fn load_secret(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("secret");
    if let Ok(s) = std::fs::read(&path)
        && s.len() >= 32
    {
        return Ok(s);
    }
    let secret: [u8; 32] = rand::random();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(&secret)?;
    Ok(secret.to_vec())
}

/// Open storage and certificates, bind, and serve until SIGTERM or ctrl-c.
pub async fn start(config: Config) -> anyhow::Result<()> {
    let data_dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data_dir {}", data_dir.display()))?;
    let storage = Storage::open(&config.storage_url(), config.storage.max_connections)
        .await
        .context("cannot open storage")?;
    let tls = Tls::new(&config).context("cannot load certificates")?;
    let secret = load_secret(&data_dir)?;
    let listeners = Listeners::bind(&config).await?;
    let state =
        Arc::new(ServerState::new(config, storage, tls, secret).map_err(anyhow::Error::msg)?);
    let admin = admin::Server::bind(&state.config).await?;
    run(listeners, admin, state).await
}

/// Log panics as one error line through `tracing`, inside the span of the
/// task that panicked (a session's names its peer and JID). tokio catches a
/// task's panic and the server goes on; without this the line would go to
/// stderr without the context that says whose session it was.
fn log_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            tracing::error!(%location, "panic: {message}");
        }));
    });
}

/// Serve on already-bound listeners until shutdown is requested.
pub async fn run(
    listeners: Listeners,
    admin: admin::Server,
    state: Arc<ServerState>,
) -> anyhow::Result<()> {
    crate::features::last::mark_start();
    log_panics();
    crate::memory::configure();
    let tasks = TaskTracker::new();
    // Services stop before the sessions (see `ServerState::stopping`).
    let services = TaskTracker::new();
    crate::supervise::spawn(
        &tasks,
        "last activity writer",
        crate::features::last::writer(state.clone()),
    );
    tasks.spawn(crate::memory::trim_task(state.shutdown.clone()));
    crate::features::mam::load(&state).await?;
    // Outside the trackers: sessions wait on it until the last one ends.
    tokio::spawn(crate::features::mam::writer(state.clone()));
    let starttls = Listeners::addrs(&listeners.starttls);
    let direct = Listeners::addrs(&listeners.direct_tls);
    let http = Listeners::addrs(&listeners.http);
    for l in listeners.starttls {
        tokio::spawn(c2s::serve(state.clone(), l, false, tasks.clone()));
    }
    for l in listeners.direct_tls {
        tokio::spawn(c2s::serve(state.clone(), l, true, tasks.clone()));
    }
    let per_ip = Arc::new(crate::http::PerIp::default());
    for l in listeners.http {
        tokio::spawn(crate::http::serve(
            state.clone(),
            l,
            per_ip.clone(),
            tasks.clone(),
        ));
    }
    tokio::spawn(admin.serve(state.clone()));
    crate::features::search::start(&state, &services);
    crate::features::roster::shared::start(&state, &services).await;
    crate::muc::start(&state, &services).await?;
    write_ready_file(&state.config, &starttls, &direct, &http)?;
    tracing::info!(
        domains = ?state.config.server.domains,
        starttls = ?starttls,
        direct_tls = ?direct,
        http = ?http,
        "jaseur is ready"
    );
    wait_for_signals(&state).await;
    tracing::info!(
        sessions = state.sessions.count(),
        "shutting down: closing every stream"
    );
    let grace = Duration::from_secs(state.config.server.shutdown_grace);
    // First no new connections, and the services say goodbye (rooms tell
    // their occupants, XEP-0045 status 332) while sessions still listen.
    state.stopping.cancel();
    services.close();
    if tokio::time::timeout(grace, services.wait()).await.is_err() {
        tracing::warn!("some services did not stop in time");
    }
    // Then the sessions: each writes what is queued for it, closes with
    // <system-shutdown/>, and routes again what it could not write.
    state.shutdown.cancel();
    tasks.close();
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::warn!("some sessions did not close in time");
    }
    // Sessions that closed after the writer stopped left their logout times.
    crate::features::last::flush(&state).await;
    let _ = std::fs::remove_file(state.config.ready_file());
    let _ = std::fs::remove_file(state.config.admin_socket());
    state.storage.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Tell tests and scripts which ports were bound (port 0 picks them).
fn write_ready_file(
    config: &Config,
    starttls: &[SocketAddr],
    direct: &[SocketAddr],
    http: &[SocketAddr],
) -> anyhow::Result<()> {
    let mut text = String::new();
    for a in starttls {
        text.push_str(&format!("c2s {a}\n"));
    }
    for a in direct {
        text.push_str(&format!("c2s_direct_tls {a}\n"));
    }
    for a in http {
        text.push_str(&format!("http {a}\n"));
    }
    let path = config.ready_file();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// SIGHUP reloads certificates; SIGTERM and ctrl-c return.
async fn wait_for_signals(state: &ServerState) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with ctrl-c");
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = hup.recv() => match state.tls.reload(&state.config) {
                Ok(()) => tracing::info!("certificates reloaded"),
                Err(e) => tracing::error!(error = %e, "certificate reload failed; keeping the old ones"),
            },
        }
    }
}
