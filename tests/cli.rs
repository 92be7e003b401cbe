//! The sysadmin's commands against the real binary: accounts (`jaseur user`),
//! configuration errors, `jaseur check`, signals, and what guards a running
//! server (one instance per data_dir, a private admin socket).

mod common;

use common::client::{self, Client, WAIT};
use common::{BIN, Server};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Both streams, for assertion messages.
fn shown(o: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        stdout(o),
        stderr(o)
    )
}

/// Run the binary with `args`, killing it (and failing) if it outlives `limit`:
/// a command that should fail at start must not hang the suite by serving.
fn run_bounded(args: &[&std::ffi::OsStr], limit: Duration) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn jaseur");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "jaseur {args:?} still ran after {limit:?}:\n{}",
                shown(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `jaseur -c CONFIG args...`, bounded.
fn jaseur(config: &Path, args: &[&str]) -> Output {
    let mut all: Vec<&std::ffi::OsStr> = vec!["-c".as_ref(), config.as_os_str()];
    all.extend(args.iter().map(|a| std::ffi::OsStr::new(*a)));
    run_bounded(&all, Duration::from_secs(30))
}

/// A configuration file in a fresh directory (no server started).
fn config_file(text_for: impl FnOnce(&Path) -> String) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jaseur.toml");
    std::fs::write(&path, text_for(&dir.path().join("data"))).expect("write config");
    (dir, path)
}

/// The 1-based line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {text}"))
        + 1
}

/// STARTTLS then PLAIN; returns the SASL outcome.
async fn try_auth(server: &Server, user: &str, pw: &str) -> String {
    let mut c = client::starttls(server).await;
    c.auth_plain(user, pw).await
}

async fn assert_login_ok(server: &Server, user: &str, pw: &str) {
    let outcome = try_auth(server, user, pw).await;
    assert!(outcome.contains("<success"), "{user}/{pw}: {outcome}");
}

async fn assert_login_refused(server: &Server, user: &str, pw: &str) {
    let outcome = try_auth(server, user, pw).await;
    assert!(
        outcome.contains("<failure") && outcome.contains("<not-authorized/>"),
        "{user}/{pw} should be refused with not-authorized: {outcome}"
    );
}

/// A ping to the server that must answer with a result.
async fn ping_ok(c: &mut Client, id: &str) {
    c.send(&format!(
        "<iq type='get' id='{id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
    ))
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let norm = c.buf.replace('"', "'");
        if let Some(p) = norm.find(&format!("id='{id}'")) {
            let head_start = norm[..p].rfind('<').unwrap_or(0);
            let head = &norm[head_start..];
            let head = &head[..head.find('>').unwrap_or(head.len())];
            assert!(head.starts_with("<iq"), "{norm}");
            assert!(head.contains("type='result'"), "ping {id}: {norm}");
            c.buf.clear();
            return;
        }
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout_at(deadline, c.io.read(&mut chunk)).await {
            Err(_) => panic!("no answer to ping {id}; got {:?}", c.buf),
            Ok(Ok(0)) | Ok(Err(_)) => panic!("closed before ping {id} answered; got {:?}", c.buf),
            Ok(Ok(n)) => c.buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
        }
    }
}

// ---------------------------------------------------------------- accounts

#[tokio::test]
async fn user_add_with_flag_and_with_stdin() {
    let server = Server::start();
    let out = server.cli(&["user", "add", "alice@localhost", "--password", "flagpw"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(stdout(&out).contains("alice@localhost"), "{}", shown(&out));
    let out = server.cli_with_stdin(&["user", "add", "bob@localhost"], "stdin pw\n");
    assert!(out.status.success(), "{}", shown(&out));
    assert_login_ok(&server, "alice", "flagpw").await;
    // The whole line is the password, spaces included (the newline is not part of it).
    assert_login_ok(&server, "bob", "stdin pw").await;
    assert_login_refused(&server, "bob", "stdin").await;
}

#[tokio::test]
async fn user_add_refuses_duplicates_and_foreign_domains() {
    let server = Server::start();
    server.add_user("alice@localhost", "one");
    let out = server.cli(&["user", "add", "alice@localhost", "--password", "two"]);
    assert!(!out.status.success(), "{}", shown(&out));
    assert!(stderr(&out).contains("already exists"), "{}", shown(&out));
    // The existing password is untouched.
    assert_login_ok(&server, "alice", "one").await;
    let out = server.cli(&["user", "add", "carol@elsewhere.example", "--password", "x"]);
    assert!(!out.status.success(), "{}", shown(&out));
    assert!(
        stderr(&out).contains("elsewhere.example"),
        "{}",
        shown(&out)
    );
    let out = server.cli(&["user", "list", "localhost"]);
    assert_eq!(stdout(&out), "alice@localhost\n", "{}", shown(&out));
}

#[tokio::test]
async fn user_list_is_sorted() {
    let server = Server::start();
    for u in ["mallory", "alice", "zoe", "bob"] {
        server.add_user(&format!("{u}@localhost"), "pw");
    }
    let out = server.cli(&["user", "list", "localhost"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert_eq!(
        stdout(&out),
        "alice@localhost\nbob@localhost\nmallory@localhost\nzoe@localhost\n"
    );
    let out = server.cli(&["user", "list", "elsewhere.example"]);
    assert!(!out.status.success(), "{}", shown(&out));
}

/// The server keeps recently used credentials in memory: a password
/// changed with the CLI while it runs must stop working at once all the
/// same (the CLI tells it over the admin socket), and so must a deleted
/// account's.
#[tokio::test]
async fn user_passwd_and_del_take_effect_at_once_on_a_running_server() {
    let server = Server::start();
    server.add_user("alice@localhost", "old-pw");
    server.add_user("bob@localhost", "bob-pw");
    // Logins that put both accounts' credentials in the server's cache.
    assert_login_ok(&server, "alice", "old-pw").await;
    assert_login_ok(&server, "bob", "bob-pw").await;
    let out = server.cli(&["user", "passwd", "alice@localhost", "--password", "new-pw"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert_login_refused(&server, "alice", "old-pw").await;
    assert_login_ok(&server, "alice", "new-pw").await;
    let out = server.cli(&["user", "del", "bob@localhost"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert_login_refused(&server, "bob", "bob-pw").await;
}

#[tokio::test]
async fn user_passwd_changes_the_password() {
    let server = Server::start();
    server.add_user("alice@localhost", "old-pw");
    let out = server.cli(&["user", "passwd", "alice@localhost", "--password", "new-pw"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert_login_refused(&server, "alice", "old-pw").await;
    assert_login_ok(&server, "alice", "new-pw").await;
    // From standard input too.
    let out = server.cli_with_stdin(&["user", "passwd", "alice@localhost"], "third-pw\n");
    assert!(out.status.success(), "{}", shown(&out));
    assert_login_ok(&server, "alice", "third-pw").await;
    let out = server.cli(&["user", "passwd", "nobody@localhost", "--password", "x"]);
    assert!(!out.status.success(), "{}", shown(&out));
}

#[tokio::test]
async fn user_del_removes_the_account() {
    let server = Server::start();
    server.add_user("alice@localhost", "pw");
    server.add_user("bob@localhost", "pw");
    let out = server.cli(&["user", "del", "alice@localhost"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert_login_refused(&server, "alice", "pw").await;
    let out = server.cli(&["user", "list", "localhost"]);
    assert_eq!(stdout(&out), "bob@localhost\n", "{}", shown(&out));
    let out = server.cli(&["user", "del", "alice@localhost"]);
    assert!(!out.status.success(), "deleting twice: {}", shown(&out));
}

#[tokio::test]
async fn user_commands_work_with_the_server_stopped() {
    let mut server = Server::start();
    server.stop();
    server.add_user("alice@localhost", "pw");
    let out = server.cli(&["user", "del", "alice@localhost"]);
    assert!(out.status.success(), "{}", shown(&out));
    server.add_user("bob@localhost", "pw");
    server.launch();
    assert_login_ok(&server, "bob", "pw").await;
    assert_login_refused(&server, "alice", "pw").await;
}

// ---------------------------------------------------------------- on a running server

#[tokio::test]
async fn user_add_while_running_logs_in_at_once() {
    let server = Server::start();
    // Some traffic first, so nothing is cached from before the account existed.
    assert_login_refused(&server, "late", "pw").await;
    server.add_user("late@localhost", "pw");
    let mut c = client::login(&server, "late@localhost", "pw", "r").await;
    ping_ok(&mut c, "p1").await;
}

#[tokio::test]
async fn user_del_closes_live_sessions() {
    let server = Server::start();
    server.add_user("alice@localhost", "pw");
    server.add_user("bob@localhost", "pw");
    let mut a1 = client::login(&server, "alice@localhost", "pw", "one").await;
    let mut a2 = client::login(&server, "alice@localhost", "pw", "two").await;
    let mut bob = client::login(&server, "bob@localhost", "pw", "b").await;
    let out = server.cli(&["user", "del", "alice@localhost"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(
        stdout(&out).contains("closed 2"),
        "should say it closed alice's 2 sessions: {}",
        shown(&out)
    );
    for c in [&mut a1, &mut a2] {
        let text = c
            .read_to_close(WAIT)
            .await
            .expect("the deleted account's session must be closed");
        let text = text.replace('"', "'");
        assert!(text.contains("<stream:error>"), "{text}");
        assert!(
            text.contains("<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
            "{text}"
        );
    }
    // Other accounts are untouched.
    ping_ok(&mut bob, "p1").await;
    assert_login_refused(&server, "alice", "pw").await;
}

// ---------------------------------------------------------------- bulk

#[tokio::test]
async fn user_add_bulk_creates_every_account() {
    let server = Server::start();
    let mut text = String::from("# accounts for the course\n\n");
    for n in 1..=50 {
        text.push_str(&format!("user{n:02}@localhost pass{n}\n"));
    }
    let file = server.dir.path().join("accounts.txt");
    std::fs::write(&file, text).expect("write");
    let out = server.cli(&["user", "add", "--bulk", file.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(stdout(&out).contains("50"), "{}", shown(&out));
    let out = server.cli(&["user", "list", "localhost"]);
    let listed: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    let expected: Vec<String> = (1..=50).map(|n| format!("user{n:02}@localhost")).collect();
    assert_eq!(listed, expected);
    assert_login_ok(&server, "user37", "pass37").await;
    assert_login_refused(&server, "user37", "pass38").await;
}

#[tokio::test]
async fn user_add_bulk_names_the_bad_line() {
    let server = Server::start();
    let file = server.dir.path().join("accounts.txt");
    std::fs::write(
        &file,
        "good1@localhost pw1\n# a comment\nbad@@localhost pw2\ngood2@localhost pw3\n",
    )
    .expect("write");
    let path = file.to_str().expect("utf-8 path");
    let out = server.cli(&["user", "add", "--bulk", path]);
    assert!(!out.status.success(), "{}", shown(&out));
    assert!(
        stderr(&out).contains(&format!("{path}:3")),
        "should name {path}:3: {}",
        shown(&out)
    );
    // All or nothing: the good lines were not half-applied.
    let out = server.cli(&["user", "list", "localhost"]);
    assert_eq!(stdout(&out), "", "{}", shown(&out));
}

// ---------------------------------------------------------------- configuration

#[test]
fn unknown_config_key_names_key_and_line() {
    let (_dir, path) = config_file(|data| {
        common::config_text(data, "").replacen("[c2s]\n", "[c2s]\nlisten_backlog = 12\n", 1)
    });
    let text = std::fs::read_to_string(&path).expect("read");
    let line = line_of(&text, "listen_backlog");
    for cmd in [&["run"][..], &["check"], &["user", "list", "localhost"]] {
        let out = jaseur(&path, cmd);
        assert!(!out.status.success(), "{cmd:?}: {}", shown(&out));
        let err = stderr(&out);
        assert!(err.contains("listen_backlog"), "{cmd:?}: {}", shown(&out));
        assert!(
            err.contains(&format!("line {line}")),
            "{cmd:?}: {}",
            shown(&out)
        );
    }
}

#[test]
fn bad_config_value_names_the_line() {
    let (_dir, path) = config_file(|data| {
        common::config_text(data, "").replacen(
            "listen = [\"127.0.0.1:0\"]",
            "listen = [\"nope\"]",
            1,
        )
    });
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains("\"nope\""), "{text}");
    let line = line_of(&text, "\"nope\"");
    let out = jaseur(&path, &["run"]);
    assert!(!out.status.success(), "{}", shown(&out));
    assert!(
        stderr(&out).contains(&format!("line {line}")),
        "{}",
        shown(&out)
    );
    assert!(stderr(&out).contains("jaseur.toml"), "{}", shown(&out));
}

#[test]
fn check_on_a_healthy_config_mentions_the_self_signed_certificate() {
    let server = Server::start();
    let out = jaseur(&server.config, &["check"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(stdout(&out).contains("self-signed"), "{}", shown(&out));
    assert!(
        !stdout(&out).lines().any(|l| l.starts_with("error")),
        "{}",
        shown(&out)
    );
}

#[test]
fn check_with_a_missing_certificate_fails() {
    let (dir, path) = config_file(|data| {
        common::config_text(
            data,
            "[tls]\ncert = \"/nonexistent/jaseur/cert.pem\"\nkey = \"/nonexistent/jaseur/key.pem\"\n",
        )
    });
    let out = jaseur(&path, &["check"]);
    assert!(!out.status.success(), "{}", shown(&out));
    let report = stdout(&out);
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("error") && l.contains("/nonexistent/jaseur/cert.pem")),
        "an error line should name the missing file: {}",
        shown(&out)
    );
    // And the server itself refuses to start with it.
    let out = jaseur(&path, &["run"]);
    assert!(!out.status.success(), "{}", shown(&out));
    drop(dir);
}

// ---------------------------------------------------------------- running server

#[tokio::test]
async fn sighup_reloads_certificates_and_keeps_sessions() {
    let server = Server::start();
    server.add_user("alice@localhost", "pw");
    let mut c = client::login(&server, "alice@localhost", "pw", "r").await;
    ping_ok(&mut c, "before").await;
    server.signal("HUP");
    let start = Instant::now();
    while !server.log().contains("certificates reloaded") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no reload logged:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ping_ok(&mut c, "after").await;
    // New connections still get a certificate the client trusts.
    let mut c2 = client::login(&server, "alice@localhost", "pw", "r2").await;
    ping_ok(&mut c2, "new").await;
}

#[test]
fn a_second_instance_on_the_same_data_dir_is_refused() {
    let mut server = Server::start();
    let out = jaseur(&server.config, &["run"]);
    assert!(!out.status.success(), "{}", shown(&out));
    assert!(
        stderr(&out).contains("another jaseur"),
        "should say another jaseur runs: {}",
        shown(&out)
    );
    // The first one is unharmed: still running, its admin socket still there.
    assert!(server.is_running(), "{}", server.log());
    assert!(server.data_dir().join("admin.sock").exists());
    server.add_user("alice@localhost", "pw");
    let out = server.cli(&["user", "del", "alice@localhost"]);
    assert!(
        stdout(&out).contains("closed 0"),
        "the CLI still reaches the first server: {}",
        shown(&out)
    );
}

#[test]
fn admin_socket_is_private() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let mut server = Server::start();
    let sock = server.data_dir().join("admin.sock");
    let meta = std::fs::metadata(&sock).expect("admin socket exists while running");
    assert!(meta.file_type().is_socket());
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "mode {:o}",
        meta.permissions().mode()
    );
    server.stop();
    assert!(!sock.exists(), "the socket is removed at shutdown");
}
