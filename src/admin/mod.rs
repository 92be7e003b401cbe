//! The local admin socket: how the CLI reaches a running server (like
//! prosodyctl's shell). One request line, one answer line; the socket lives
//! under the data directory and only its owner may use it.
//!
//! Requests: `ping`, `close-sessions JID` (after the account was deleted),
//! `ldap-stats` (each directory's connections: open, most at once, limit),
//! and the live MUC services' administration (see `muc`):
//! `muc-list SERVICE`, `muc-affiliation ROOM JID AFFILIATION [sole]`,
//! `muc-destroy ROOM [REASON...]`.
//! Answers: `ok [detail]` or `error message`.

pub mod muc;

use crate::config::Config;
use crate::state::ServerState;
use crate::stream::error::{StreamCondition, StreamError};
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// Longest request line accepted.
const MAX_LINE: usize = 4096;

/// The listening admin socket.
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
}

impl Server {
    /// Bind the socket, refusing to start if another server answers on it.
    pub async fn bind(config: &Config) -> anyhow::Result<Server> {
        use std::os::unix::fs::PermissionsExt;
        let path = config.admin_socket();
        if path.exists() {
            if UnixStream::connect(&path).await.is_ok() {
                anyhow::bail!(
                    "another jaseur is running with data_dir {} (its admin socket answers)",
                    config.server.data_dir.display()
                );
            }
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove stale {}", path.display()))?;
        }
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("cannot create admin socket {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(Server { listener, path })
    }

    /// Answer requests until shutdown.
    pub async fn serve(self, state: Arc<ServerState>) {
        loop {
            let accepted = tokio::select! {
                _ = state.shutdown.cancelled() => break,
                a = self.listener.accept() => a,
            };
            match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(handle(stream, state.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "admin socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn handle(stream: UnixStream, state: Arc<ServerState>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read.take(MAX_LINE as u64)).lines();
    let answer = match lines.next_line().await {
        Ok(Some(line)) => execute(&state, line.trim()).await,
        _ => "error unreadable request".to_owned(),
    };
    let _ = write.write_all(format!("{answer}\n").as_bytes()).await;
}

use tokio::io::AsyncReadExt;

async fn execute(state: &ServerState, line: &str) -> String {
    if line.starts_with("muc-") {
        return muc::execute(state, line).await;
    }
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("ping"), None, None) => "ok".into(),
        (Some("ldap-stats"), None, None) => {
            let mut out = String::from("ok");
            let mut dirs: Vec<_> = state.directories.iter().collect();
            dirs.sort_by(|a, b| a.0.cmp(b.0));
            for (domain, dir) in dirs {
                let s = dir.stats();
                out.push_str(&format!(
                    " {domain}:open={},high_water={},size={}",
                    s.open, s.high_water, s.size
                ));
            }
            out
        }
        (Some("close-sessions"), Some(jid), None) => match jid::BareJid::new(jid) {
            Ok(bare) => {
                state.blocklists.forget(&bare);
                let n = state.sessions.close_account(
                    &bare,
                    &StreamError::new(StreamCondition::NotAuthorized, "this account was deleted"),
                );
                tracing::info!(jid = %bare, sessions = n, "account deleted: sessions closed");
                format!("ok {n}")
            }
            Err(e) => format!("error bad JID: {e}"),
        },
        _ => format!("error unknown request {line:?}"),
    }
}

/// Send one request to a running server; None when no server is running.
pub async fn request(config: &Config, line: &str) -> anyhow::Result<Option<String>> {
    let path = config.admin_socket();
    let Ok(mut stream) = UnixStream::connect(&path).await else {
        return Ok(None);
    };
    stream.write_all(format!("{line}\n").as_bytes()).await?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut reader = BufReader::new(stream);
        reader.read_line(&mut answer).await
    })
    .await
    .context("the running server did not answer on its admin socket")??;
    let answer = answer.trim();
    match answer.strip_prefix("ok") {
        Some(rest) => Ok(Some(rest.trim().to_owned())),
        None => anyhow::bail!("server answered: {answer}"),
    }
}
