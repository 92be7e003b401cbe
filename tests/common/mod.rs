//! Test harness: starts the real `jaseur` binary on free ports with its own
//! data directory, and talks to it over real TCP+TLS.
#![allow(dead_code)]

pub mod client;
pub mod interop;
pub mod ldap;
pub mod muc;
pub mod ws;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_jaseur");

/// A running server, killed when dropped.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub child: Option<Child>,
    pub c2s: SocketAddr,
    pub direct_tls: SocketAddr,
    /// The HTTP listener (WebSocket, host-meta), when `[http] listen` names one.
    pub http: Option<SocketAddr>,
}

/// The base configuration every test server gets; `extra` is appended
/// (it may add keys to new sections, or whole sections).
pub fn config_text(data_dir: &Path, extra: &str) -> String {
    format!(
        "[server]\ndomains = [\"localhost\"]\ndata_dir = \"{}\"\nshutdown_grace = 5\n\
         [c2s]\nlisten = [\"127.0.0.1:0\"]\ndirect_tls = [\"127.0.0.1:0\"]\n\
         [http]\nlisten = [\"127.0.0.1:0\"]\n\
         [auth]\nthrottle_base_ms = 20\nthrottle_max_ms = 200\n\
         [log]\nlevel = \"info\"\n{extra}",
        data_dir.display()
    )
}

impl Server {
    /// A server with the default test configuration.
    pub fn start() -> Server {
        Server::start_with("")
    }

    /// A server whose configuration has `extra` appended.
    pub fn start_with(extra: &str) -> Server {
        Server::start_edited(|text| text + extra)
    }

    /// A server whose configuration is the base one passed through `edit`.
    pub fn start_edited(edit: impl FnOnce(String) -> String) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("jaseur.toml");
        let text = edit(config_text(&dir.path().join("data"), ""));
        std::fs::write(&config, text).expect("config");
        let mut s = Server {
            dir,
            config,
            child: None,
            c2s: "127.0.0.1:1".parse().expect("addr"),
            direct_tls: "127.0.0.1:1".parse().expect("addr"),
            http: None,
        };
        s.launch();
        s
    }

    /// A server whose `[c2s]` section also gets `keys` (TOML lines such as
    /// `handshake_timeout = 2`): TOML forbids a second `[c2s]` table.
    pub fn start_with_c2s(keys: &str) -> Server {
        Server::start_edited(|text| {
            text.replacen("[c2s]\n", &format!("[c2s]\n{}\n", keys.trim_end()), 1)
        })
    }

    /// A server whose `[http]` section also gets `keys` (the base
    /// configuration has one: a second table is a TOML error).
    pub fn start_with_http(keys: &str) -> Server {
        Server::start_edited(|text| {
            text.replacen("[http]\n", &format!("[http]\n{}\n", keys.trim_end()), 1)
        })
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Start (or restart) the binary and wait for its ready file.
    pub fn launch(&mut self) {
        let ready = self.data_dir().join("ready");
        let _ = std::fs::remove_file(&ready);
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("log file");
        let child = Command::new(BIN)
            .arg("-c")
            .arg(&self.config)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn jaseur");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                for line in text.lines() {
                    let mut w = line.split_whitespace();
                    match (w.next(), w.next().and_then(|a| a.parse().ok())) {
                        (Some("c2s"), Some(a)) => self.c2s = a,
                        (Some("c2s_direct_tls"), Some(a)) => self.direct_tls = a,
                        (Some("http"), Some(a)) => self.http = Some(a),
                        _ => {}
                    }
                }
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("jaseur exited early ({status}):\n{}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "jaseur did not become ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Run `jaseur -c CONFIG args...`, with `stdin` piped in.
    pub fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(BIN)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn jaseur cli");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("cli output")
    }

    /// Run `jaseur -c CONFIG args...`.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_stdin(args, "")
    }

    /// Create an account through the CLI.
    pub fn add_user(&self, jid: &str, password: &str) {
        let out = self.cli(&["user", "add", jid, "--password", password]);
        assert!(
            out.status.success(),
            "user add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Create accounts user1..userN@localhost with passwords pass1..passN
    /// in one `jaseur user add --bulk` (the load generator's convention).
    pub fn add_numbered_users(&self, n: usize) {
        let list: String = (1..=n)
            .map(|i| format!("user{i}@localhost pass{i}\n"))
            .collect();
        let file = self.dir.path().join("users.txt");
        std::fs::write(&file, list).expect("users file");
        let out = self.cli(&["user", "add", "--bulk", file.to_str().expect("utf-8 path")]);
        assert!(
            out.status.success(),
            "user add --bulk failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The self-signed certificate the server generated (clients trust it explicitly).
    pub fn cert_path(&self) -> PathBuf {
        self.data_dir().join("certs").join("self-signed.pem")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Resident memory of the server, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Send a signal to the server.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// SIGTERM and wait for exit; returns how long it took.
    pub fn stop(&mut self) -> Duration {
        let start = Instant::now();
        self.signal("TERM");
        let mut child = self.child.take().expect("running");
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(
                    status.success(),
                    "jaseur exited with {status}:\n{}",
                    self.log()
                );
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "jaseur did not stop:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Where PostgreSQL is (the test script makes sure one runs).
pub fn pg_base() -> String {
    std::env::var("JASEUR_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A new empty PostgreSQL database for one test.
pub async fn fresh_pg() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    sqlx::any::install_default_drivers();
    let name = format!(
        "jaseur_t_{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let admin = sqlx::AnyPool::connect(&format!("{}/test", pg_base()))
        .await
        .expect("PostgreSQL must run for the tests (scripts/test.sh starts it)");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&admin)
    .await
    .expect("drop");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("create database");
    admin.close().await;
    format!("{}/{name}", pg_base())
}
