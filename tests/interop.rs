//! Interoperability with real XMPP clients: slixmpp, nbxmpp (Gajim's
//! library) and go-sendxmpp, each run as a subprocess against the real
//! server. The Python drivers live in `tests/interop/`.
//!
//! The clients come from Debian packages that `scripts/test.sh` installs; a
//! missing client fails the test (it is never skipped).

mod common;
use common::{Server, client};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// The system Python that sees the Debian client packages (not a pyenv one).
const PYTHON: &str = "/usr/bin/python3";

/// How long a client process may run; the drivers give up after 15 s themselves.
const DEADLINE: Duration = Duration::from_secs(40);

const INSTALL_HINT: &str = "run scripts/test.sh (as root it installs python3-slixmpp, \
     python3-nbxmpp and go-sendxmpp), or install those Debian packages";

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("interop")
        .join(name)
}

/// Fail (never skip) when a Python client library is not installed.
fn require_python_module(module: &str) {
    let out = std::process::Command::new(PYTHON)
        .args(["-c", &format!("import {module}")])
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "the Python module {module} is missing ({}); {INSTALL_HINT}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!("cannot run {PYTHON} ({e}); {INSTALL_HINT}"),
    }
}

/// Fail (never skip) when go-sendxmpp is not installed.
fn require_go_sendxmpp() {
    if let Err(e) = std::process::Command::new("go-sendxmpp")
        .arg("--version")
        .output()
    {
        panic!("cannot run go-sendxmpp ({e}); {INSTALL_HINT}");
    }
}

/// What a client process did.
struct Run {
    what: String,
    /// None: killed at the deadline.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    fn report(&self) -> String {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => format!("killed after {DEADLINE:?}"),
        };
        format!(
            "---- {} ({status})\n---- stdout:\n{}\n---- stderr:\n{}\n",
            self.what, self.stdout, self.stderr
        )
    }
}

fn read_all<R: AsyncRead + Unpin + Send + 'static>(
    pipe: Option<R>,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf).await;
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Run `cmd` to completion (killing it at `DEADLINE`), feeding it `stdin`.
async fn run(what: String, mut cmd: Command, stdin: &str) -> Run {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}; {INSTALL_HINT}"));
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes()).await;
    }
    let out = read_all(child.stdout.take());
    let err = read_all(child.stderr.take());
    let status = match tokio::time::timeout(DEADLINE, child.wait()).await {
        Ok(status) => Some(status.expect("wait for client")),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    Run {
        what,
        status,
        stdout: out.await.expect("stdout reader"),
        stderr: err.await.expect("stderr reader"),
    }
}

/// Panic with everything needed to understand a failed run.
fn fail(server: &Server, runs: &[&Run], why: &str) -> ! {
    let mut text = format!("{why}\n");
    for r in runs {
        text.push_str(&r.report());
    }
    panic!("{text}---- server log:\n{}", server.log());
}

fn assert_ok(server: &Server, r: &Run) {
    if !r.ok() {
        fail(server, &[r], &format!("{} did not succeed", r.what));
    }
}

#[derive(Clone, Copy)]
enum Mode {
    StartTls,
    DirectTls,
}

/// Arguments shared by both Python drivers: HOST PORT MODE JID PASSWORD PEER.
fn driver(
    server: &Server,
    script_name: &str,
    mode: Mode,
    jid: &str,
    password: &str,
    peer: &str,
    extra: &[&str],
) -> (String, Command) {
    let (addr, mode) = match mode {
        Mode::StartTls => (server.c2s, "starttls"),
        Mode::DirectTls => (server.direct_tls, "direct"),
    };
    let port = addr.port().to_string();
    let host = addr.ip().to_string();
    let path = script(script_name);
    let mut args = vec![
        path.to_str().expect("utf-8 path"),
        host.as_str(),
        port.as_str(),
        mode,
        jid,
        password,
        peer,
    ];
    args.extend_from_slice(extra);
    let what = format!("{PYTHON} {}", args.join(" "));
    let mut cmd = Command::new(PYTHON);
    cmd.args(&args)
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .env("JASEUR_CA", server.cert_path())
        .env("INTEROP_TIMEOUT", "15")
        .env("INTEROP_DEBUG", "1");
    (what, cmd)
}

async fn slixmpp(
    server: &Server,
    mode: Mode,
    jid: &str,
    password: &str,
    peer: &str,
    extra: &[&str],
) -> Run {
    require_python_module("slixmpp");
    let (what, cmd) = driver(
        server,
        "slixmpp_client.py",
        mode,
        jid,
        password,
        peer,
        extra,
    );
    run(what, cmd, "").await
}

async fn nbxmpp(server: &Server, mode: Mode, jid: &str, password: &str, peer: &str) -> Run {
    require_python_module("nbxmpp");
    let (what, cmd) = driver(server, "nbxmpp_client.py", mode, jid, password, peer, &[]);
    run(what, cmd, "").await
}

fn server_with(users: &[&str]) -> Server {
    let server = Server::start();
    for u in users {
        server.add_user(&format!("{u}@localhost"), "secret");
    }
    server
}

// ---- slixmpp ----------------------------------------------------------------

/// SCRAM-SHA-256 forced, over STARTTLS, message to the own full JID.
/// "no-cb" makes slixmpp send the "n" flag: see `slixmpp_forced_scram_with_y_flag_is_refused`.
#[tokio::test]
async fn slixmpp_scram_sha256_starttls() {
    let server = server_with(&["alice"]);
    let r = slixmpp(
        &server,
        Mode::StartTls,
        "alice@localhost",
        "secret",
        "self",
        &["SCRAM-SHA-256", "no-cb"],
    )
    .await;
    assert_ok(&server, &r);
    if !r.stdout.contains("AUTH SCRAM-SHA-256\n") {
        fail(&server, &[&r], "slixmpp did not log in with SCRAM-SHA-256");
    }
}

/// SCRAM-SHA-1 forced, over STARTTLS.
#[tokio::test]
async fn slixmpp_scram_sha1_starttls() {
    let server = server_with(&["alice"]);
    let r = slixmpp(
        &server,
        Mode::StartTls,
        "alice@localhost",
        "secret",
        "self",
        &["SCRAM-SHA-1", "no-cb"],
    )
    .await;
    assert_ok(&server, &r);
    if !r.stdout.contains("AUTH SCRAM-SHA-1\n") {
        fail(&server, &[&r], "slixmpp did not log in with SCRAM-SHA-1");
    }
}

/// XEP-0368 direct TLS, slixmpp's own mechanism choice.
#[tokio::test]
async fn slixmpp_direct_tls() {
    let server = server_with(&["alice"]);
    let r = slixmpp(
        &server,
        Mode::DirectTls,
        "alice@localhost",
        "secret",
        "self",
        &[],
    )
    .await;
    assert_ok(&server, &r);
}

/// SASL PLAIN forced (over TLS).
#[tokio::test]
async fn slixmpp_plain() {
    let server = server_with(&["alice"]);
    let r = slixmpp(
        &server,
        Mode::StartTls,
        "alice@localhost",
        "secret",
        "self",
        &["PLAIN"],
    )
    .await;
    assert_ok(&server, &r);
    if !r.stdout.contains("AUTH PLAIN\n") {
        fail(&server, &[&r], "slixmpp did not log in with PLAIN");
    }
}

/// slixmpp's default choice: SCRAM-SHA-256-PLUS with tls-unique (which
/// rustls lacks) fails with malformed-request, then SCRAM-SHA-256 with "y"
/// is accepted on that stream (docs/decisions/0003-channel-binding.md).
#[tokio::test]
async fn slixmpp_default_mechanism_falls_back_from_tls_unique() {
    let server = server_with(&["alice"]);
    let r = slixmpp(
        &server,
        Mode::StartTls,
        "alice@localhost",
        "secret",
        "self",
        &[],
    )
    .await;
    assert_ok(&server, &r);
    if !r.stderr.contains("mechanism=\"SCRAM-SHA-256-PLUS\"")
        || !r.stderr.contains("<malformed-request")
        || !r.stdout.contains("AUTH SCRAM-SHA-256\n")
    {
        fail(
            &server,
            &[&r],
            "expected SCRAM-SHA-256-PLUS (tls-unique) to fail, then SCRAM-SHA-256 to succeed",
        );
    }
}

/// slixmpp 1.8.3 forced to SCRAM-SHA-256 sends the "y" flag although the
/// server offered -PLUS: RFC 5802 §6 says that is a downgrade, and with no
/// failed -PLUS attempt before it the server must refuse it.
#[tokio::test]
async fn slixmpp_forced_scram_with_y_flag_is_refused() {
    let server = server_with(&["alice"]);
    let r = slixmpp(
        &server,
        Mode::StartTls,
        "alice@localhost",
        "secret",
        "self",
        &["SCRAM-SHA-256"],
    )
    .await;
    if r.ok() || r.stdout.contains("READY") || !r.stderr.contains("<not-authorized") {
        fail(
            &server,
            &[&r],
            "a 'y' SCRAM attempt after a -PLUS offer (and no -PLUS attempt) must fail",
        );
    }
}

/// Two slixmpp sessions of two accounts (one STARTTLS, one direct TLS)
/// message each other and both receive the other's message.
#[tokio::test]
async fn slixmpp_two_accounts_exchange_messages() {
    let server = server_with(&["alice", "bob"]);
    let (a, b) = tokio::join!(
        slixmpp(
            &server,
            Mode::StartTls,
            "alice@localhost",
            "secret",
            "bob@localhost",
            &["SCRAM-SHA-256", "no-cb"],
        ),
        slixmpp(
            &server,
            Mode::DirectTls,
            "bob@localhost",
            "secret",
            "alice@localhost",
            &["PLAIN"],
        ),
    );
    if !a.ok() || !b.ok() {
        fail(
            &server,
            &[&a, &b],
            "the two slixmpp clients did not both succeed",
        );
    }
}

// ---- nbxmpp -----------------------------------------------------------------

#[tokio::test]
async fn nbxmpp_starttls() {
    let server = server_with(&["alice"]);
    let r = nbxmpp(&server, Mode::StartTls, "alice@localhost", "secret", "self").await;
    assert_ok(&server, &r);
}

#[tokio::test]
async fn nbxmpp_direct_tls() {
    let server = server_with(&["alice"]);
    let r = nbxmpp(
        &server,
        Mode::DirectTls,
        "alice@localhost",
        "secret",
        "self",
    )
    .await;
    assert_ok(&server, &r);
}

// ---- go-sendxmpp ------------------------------------------------------------

/// bob logs in with the raw test client and becomes available; go-sendxmpp
/// then sends him a message as alice; bob must receive it.
async fn go_sendxmpp_delivers(mode: Mode) {
    require_go_sendxmpp();
    let server = server_with(&["alice", "bob"]);
    let mut bob = client::login(&server, "bob@localhost", "secret", "recv").await;
    bob.send("<presence/>").await;
    // The ping answer shows the server has processed the presence before it.
    bob.send("<iq type='get' id='ready1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    bob.expect("ready1").await;

    let body = format!("go-sendxmpp interop {}", std::process::id());
    let (addr, tls_flag): (_, &[&str]) = match mode {
        Mode::StartTls => (server.c2s, &[]),
        Mode::DirectTls => (server.direct_tls, &["-t"]),
    };
    let jserver = addr.to_string();
    let mut args = vec![
        "-d",
        "-u",
        "alice@localhost",
        "-p",
        "secret",
        "-j",
        jserver.as_str(),
    ];
    args.extend_from_slice(tls_flag);
    args.push("bob@localhost");
    let what = format!("go-sendxmpp {}", args.join(" "));
    let mut cmd = Command::new("go-sendxmpp");
    cmd.args(&args)
        // Go reads extra trust anchors from SSL_CERT_FILE: trust exactly the
        // server's certificate, with normal verification for "localhost".
        .env("SSL_CERT_FILE", server.cert_path())
        // No ~/.config/go-sendxmpp/sendxmpprc from the machine.
        .env("HOME", server.dir.path());
    let r = run(what, cmd, &format!("{body}\n")).await;
    assert_ok(&server, &r);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match bob.wait_for("</message>", left).await {
            Ok(m) if m.contains(&body) => {
                assert!(m.contains("from='alice@localhost/"), "{m}");
                return;
            }
            Ok(_) => continue,
            Err(e) => fail(
                &server,
                &[&r],
                &format!("bob did not receive go-sendxmpp's message: {e}"),
            ),
        }
    }
}

#[tokio::test]
async fn go_sendxmpp_starttls_delivers_to_logged_in_receiver() {
    go_sendxmpp_delivers(Mode::StartTls).await;
}

#[tokio::test]
async fn go_sendxmpp_direct_tls_delivers_to_logged_in_receiver() {
    go_sendxmpp_delivers(Mode::DirectTls).await;
}
