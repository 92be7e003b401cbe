//! Interoperability of the RFC 6121 instant-messaging features (roster,
//! subscriptions, presence, offline messages) with real clients, each run
//! as a subprocess against the real server:
//!
//! * nbxmpp (Gajim's library) manages its roster and subscribes to a
//!   slixmpp contact (`tests/interop/nbxmpp_roster.py`,
//!   `tests/interop/slixmpp_peer.py`);
//! * mcabber, driven through its command FIFO, chats with a slixmpp user;
//! * go-sendxmpp leaves a message for an offline user, who gets it with an
//!   XEP-0203 delay stamp when slixmpp logs in as them.
//!
//! The clients come from Debian packages (python3-nbxmpp, python3-slixmpp,
//! go-sendxmpp, mcabber; `script` is in the essential bsdutils); a missing
//! one fails the test, it is never skipped.

mod common;
use common::Server;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The system Python that sees the Debian client packages (not a pyenv one).
const PYTHON: &str = "/usr/bin/python3";

/// How long the drivers give themselves (they fail on their own after it).
const DRIVER_TIMEOUT: &str = "30";

/// How long a client process may run before it is killed.
const DEADLINE: Duration = Duration::from_secs(60);

/// How long to wait for a client to be logged in, or for one event.
const WAIT: Duration = Duration::from_secs(30);

const INSTALL_HINT: &str = "install the Debian packages python3-nbxmpp, python3-slixmpp, \
     go-sendxmpp and mcabber (scripts/test.sh does it when run as root)";

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

/// Fail (never skip) when a program is not installed.
fn require_program(program: &str, arg: &str) {
    if let Err(e) = std::process::Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        panic!("cannot run {program} ({e}); {INSTALL_HINT}");
    }
}

/// A client process whose output is collected while it runs.
struct Proc {
    what: String,
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

/// What a client process did.
struct Run {
    what: String,
    /// None: killed at the deadline.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

fn collect<R: AsyncRead + Unpin + Send + 'static>(
    pipe: Option<R>,
    into: Arc<Mutex<String>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(mut pipe) = pipe else { return };
        let mut chunk = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            into.lock()
                .expect("output lock")
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    })
}

impl Proc {
    /// Start `cmd`; `input`, if any, is its whole standard input.
    fn spawn(what: String, mut cmd: Command, input: Option<String>) -> Proc {
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}; {INSTALL_HINT}"));
        if let (Some(input), Some(mut pipe)) = (input, child.stdin.take()) {
            tokio::spawn(async move {
                let _ = pipe.write_all(input.as_bytes()).await;
            });
        }
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take(), stdout.clone()),
            collect(child.stderr.take(), stderr.clone()),
        ];
        Proc {
            what,
            child,
            stdout,
            stderr,
            readers,
        }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().expect("output lock").clone()
    }

    /// Wait until a line of its standard output starts with `prefix`; an
    /// error if it exits or `wait` passes first.
    async fn line(&mut self, prefix: &str, wait: Duration) -> Result<String, String> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(line) = self.stdout().lines().find(|l| l.starts_with(prefix)) {
                return Ok(line.to_owned());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("it exited ({status}) before printing {prefix:?}"));
            }
            if Instant::now() >= deadline {
                return Err(format!("no line {prefix:?} within {wait:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait for it to exit (killing it after `wait`) and collect everything.
    async fn finish(mut self, wait: Duration) -> Run {
        let status = match tokio::time::timeout(wait, self.child.wait()).await {
            Ok(status) => Some(status.expect("wait for client")),
            Err(_) => {
                let _ = self.child.kill().await;
                None
            }
        };
        for r in self.readers {
            let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
        }
        Run {
            what: self.what,
            status,
            stdout: self.stdout.lock().expect("output lock").clone(),
            stderr: self.stderr.lock().expect("output lock").clone(),
        }
    }
}

impl Run {
    fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    fn report(&self) -> String {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => "killed at the deadline".to_owned(),
        };
        format!(
            "---- {} ({status})\n---- stdout:\n{}\n---- stderr:\n{}\n",
            self.what, self.stdout, self.stderr
        )
    }
}

/// Panic with everything needed to understand a failure.
fn fail(server: &Server, runs: &[&Run], extra: &str, why: &str) -> ! {
    let mut text = format!("{why}\n");
    // The drivers' own verdicts first ("...: FAIL: reason").
    for r in runs {
        for line in r.stderr.lines().filter(|l| l.contains(": FAIL: ")) {
            text.push_str(&format!("{line}\n"));
        }
    }
    for r in runs {
        text.push_str(&r.report());
    }
    text.push_str(extra);
    panic!("{text}---- server log:\n{}", server.log());
}

fn server_with(users: &[&str]) -> Server {
    let server = Server::start();
    for u in users {
        server.add_user(&format!("{u}@localhost"), "secret");
    }
    server
}

/// `python3 SCRIPT HOST PORT starttls JID secret ARGS...` over STARTTLS,
/// trusting the server's own certificate.
fn python_driver(server: &Server, script_name: &str, jid: &str, args: &[&str]) -> Proc {
    let port = server.c2s.port().to_string();
    let host = server.c2s.ip().to_string();
    let path = script(script_name);
    let mut all = vec![
        path.to_str().expect("utf-8 path"),
        host.as_str(),
        port.as_str(),
        "starttls",
        jid,
        "secret",
    ];
    all.extend_from_slice(args);
    let what = format!("{PYTHON} {}", all.join(" "));
    let mut cmd = Command::new(PYTHON);
    cmd.args(&all)
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .env("JASEUR_CA", server.cert_path())
        .env("INTEROP_TIMEOUT", DRIVER_TIMEOUT)
        .env("INTEROP_DEBUG", "1");
    Proc::spawn(what, cmd, None)
}

/// The slixmpp contact (`slixmpp_peer.py`), logged in and available.
async fn slixmpp_peer(server: &Server, jid: &str, args: &[&str]) -> Proc {
    require_python_module("slixmpp");
    let mut peer = python_driver(server, "slixmpp_peer.py", jid, args);
    if let Err(e) = peer.line("READY ", WAIT).await {
        let r = peer.finish(Duration::from_secs(1)).await;
        fail(
            server,
            &[&r],
            "",
            &format!("slixmpp as {jid} never got ready: {e}"),
        );
    }
    peer
}

fn has_line(run: &Run, prefix: &str, parts: &[&str]) -> bool {
    run.stdout
        .lines()
        .any(|l| l.starts_with(prefix) && parts.iter().all(|p| l.contains(p)))
}

// ---- nbxmpp: roster and subscription ----------------------------------------

const NICK: &str = "Bob l'Éponge";
const GROUP: &str = "Collègues";

/// nbxmpp adds a slixmpp contact with a nickname and a group, subscribes,
/// and (with `versioning`) requires the server's roster versioning.
async fn nbxmpp_befriends_slixmpp(versioning: bool) {
    require_python_module("nbxmpp");
    let server = server_with(&["gajim", "bob"]);
    let bye = format!("bye from nbxmpp {}", std::process::id());
    let peer = slixmpp_peer(
        &server,
        "bob@localhost",
        &["befriend", "gajim@localhost", &bye],
    )
    .await;

    let mut args = vec!["bob@localhost", NICK, GROUP, bye.as_str()];
    if versioning {
        args.push("versioning");
    }
    let nb = python_driver(&server, "nbxmpp_roster.py", "gajim@localhost", &args)
        .finish(DEADLINE)
        .await;
    // The contact succeeds once nbxmpp's last message came; no need to wait
    // for its own timeout when nbxmpp failed.
    let peer_wait = if nb.ok() {
        DEADLINE
    } else {
        Duration::from_secs(2)
    };
    let peer = peer.finish(peer_wait).await;
    let runs = [&nb, &peer];
    if !nb.ok() {
        fail(
            &server,
            &runs,
            "",
            "the nbxmpp roster client did not succeed",
        );
    }
    // The driver prints the name with Python's repr(): double quotes here,
    // as the name holds an apostrophe, which is what Rust's {:?} gives too.
    let name = format!("name={NICK:?}");
    let groups = format!("groups={GROUP} ");
    let item = ["jid=bob@localhost", name.as_str(), groups.as_str()];
    for (what, sub) in [
        (
            "the roster push for the new contact",
            "subscription=none ask=-",
        ),
        (
            "the push for the pending request",
            "subscription=none ask=subscribe",
        ),
        ("the push for the approved subscription", "subscription=to "),
        ("the push for the mutual subscription", "subscription=both "),
    ] {
        let mut parts = item.to_vec();
        parts.push(sub);
        if !has_line(&nb, "PUSH ", &parts) {
            fail(&server, &runs, "", &format!("nbxmpp did not see {what}"));
        }
    }
    if !has_line(&nb, "PRESENCE ", &["type=available", "from=bob@localhost/"]) {
        fail(&server, &runs, "", "nbxmpp did not receive bob's presence");
    }
    if !has_line(
        &nb,
        "FINAL-ITEM ",
        &[&item[..], &["subscription=both"]].concat(),
    ) {
        fail(
            &server,
            &runs,
            "",
            "the final roster lacks bob with nickname and group",
        );
    }
    if !peer.ok()
        || !has_line(&peer, "SUBSCRIBE ", &["from=gajim@localhost"])
        || !has_line(
            &peer,
            "PRESENCE ",
            &["type=available", "from=gajim@localhost/gajim-like"],
        )
    {
        fail(
            &server,
            &runs,
            "",
            "slixmpp did not get the request, approve it and see nbxmpp's presence",
        );
    }
}

/// Issue "Done when" 1: nbxmpp logs in over STARTTLS, requests the roster,
/// adds a contact with a group and a nickname and sees both in the push,
/// subscribes; slixmpp accepts (and asks back); nbxmpp sees the
/// subscription become "to" then "both" through pushes, and the contact's
/// presence.
#[tokio::test]
async fn nbxmpp_adds_contact_subscribes_and_sees_presence() {
    nbxmpp_befriends_slixmpp(false).await;
}

/// The same with roster versioning required: the server must advertise it
/// (`<ver xmlns='urn:xmpp:features:rosterver'/>`, RFC 6121 §2.6.1), or a
/// Gajim-like client never sends `ver` and always downloads the whole roster.
#[tokio::test]
async fn nbxmpp_uses_roster_versioning() {
    nbxmpp_befriends_slixmpp(true).await;
}

// ---- mcabber ------------------------------------------------------------------

/// Poll `f` until it gives a value or `wait` passes.
async fn poll<T>(wait: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An mcabber account's files in a temp directory: config, FIFO, trace log
/// (with the XML), history.
struct Mcabber {
    dir: PathBuf,
}

impl Mcabber {
    fn config(&self) -> PathBuf {
        self.dir.join("mcabberrc")
    }
    fn fifo(&self) -> PathBuf {
        self.dir.join("mcabber.fifo")
    }
    fn trace(&self) -> String {
        std::fs::read_to_string(self.dir.join("trace.log")).unwrap_or_default()
    }
    fn history(&self, jid: &str) -> String {
        std::fs::read_to_string(self.dir.join("histo").join(jid)).unwrap_or_default()
    }
    fn report(&self) -> String {
        format!("---- mcabber trace log:\n{}\n", self.trace())
    }

    fn write_config(&self, server: &Server, jid: &str) {
        use std::os::unix::fs::PermissionsExt;
        let d = self.dir.display();
        let text = format!(
            "set jid = {jid}\n\
             set password = secret\n\
             set server = {ip}\n\
             set port = {port}\n\
             set resource = mcabber\n\
             set disable_random_resource = 1\n\
             # STARTTLS, trusting exactly the server's self-signed certificate.\n\
             set tls = 1\n\
             set ssl_ca = {ca}\n\
             set logging = 1\n\
             set logging_dir = {d}/histo\n\
             set tracelog_level = 3\n\
             set tracelog_file = {d}/trace.log\n\
             set fifo_name = {d}/mcabber.fifo\n\
             module load fifo\n",
            ip = server.c2s.ip(),
            port = server.c2s.port(),
            ca = server.cert_path().display(),
        );
        std::fs::write(self.config(), text).expect("mcabber config");
        std::fs::set_permissions(self.config(), std::fs::Permissions::from_mode(0o600))
            .expect("config permissions");
    }

    /// mcabber is a curses program: `script` gives it a terminal.
    fn spawn(&self) -> Proc {
        let command = format!("mcabber -f {}", self.config().display());
        let what = format!("script -qfec '{command}' /dev/null");
        let mut cmd = Command::new("script");
        cmd.args(["-qfec", &command, "/dev/null"])
            .env("HOME", &self.dir)
            .env("TERM", "xterm")
            .env("SHELL", "/bin/sh")
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8");
        Proc::spawn(what, cmd, None)
    }

    /// Run an mcabber command through its FIFO.
    async fn command(&self, line: &str) -> Result<(), String> {
        let mut fifo = tokio::net::unix::pipe::OpenOptions::new()
            .open_sender(self.fifo())
            .map_err(|e| format!("cannot open mcabber's FIFO: {e}"))?;
        let text = format!("{line}\n");
        let write = fifo.write_all(text.as_bytes());
        match tokio::time::timeout(Duration::from_secs(10), write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("cannot write to mcabber's FIFO: {e}")),
            Err(_) => Err("mcabber does not read its FIFO".to_owned()),
        }
    }
}

/// Issue "Done when" 2: mcabber (STARTTLS, commands through its FIFO) and
/// slixmpp exchange messages in both directions; mcabber's side is checked
/// in its history file.
#[tokio::test]
async fn mcabber_and_slixmpp_exchange_messages() {
    require_program("mcabber", "-V");
    require_program("script", "--version");
    let server = server_with(&["mcab", "slix"]);
    let to_slix = format!("Grüße von mcabber {}", std::process::id());
    let to_mcabber = format!("réponse de slixmpp {}", std::process::id());
    let slix = slixmpp_peer(
        &server,
        "slix@localhost",
        &["chat", "mcab@localhost", &to_slix, &to_mcabber],
    )
    .await;

    let mc = Mcabber {
        dir: server.dir.path().join("mcabber"),
    };
    std::fs::create_dir_all(&mc.dir).expect("mcabber dir");
    mc.write_config(&server, "mcab@localhost");
    let mut mcabber = mc.spawn();

    // mcabber traces "Your status has been set" once logged in and its
    // initial presence sent.
    let login = poll(WAIT, || {
        let trace = mc.trace();
        if trace.contains("Your status has been set") {
            Some(Ok(()))
        } else if trace.contains("Authentication failed") {
            Some(Err("authentication failed"))
        } else if matches!(mcabber.child.try_wait(), Ok(Some(_))) {
            Some(Err("it exited"))
        } else {
            None
        }
    })
    .await
    .unwrap_or(Err("still not logged in at the deadline"));
    let mut why = None;
    if let Err(e) = login {
        why = Some(format!("mcabber did not log in: {e}"));
    } else if let Err(e) = mc
        .command(&format!("say_to slix@localhost {to_slix}"))
        .await
    {
        why = Some(e);
    }
    // slixmpp exits once it got the message and answered.
    let slix = if why.is_none() {
        slix.finish(DEADLINE).await
    } else {
        slix.finish(Duration::from_secs(1)).await
    };
    if why.is_none() && !slix.ok() {
        why = Some("slixmpp did not receive mcabber's message".to_owned());
    }
    if why.is_none()
        && !has_line(
            &slix,
            "MESSAGE ",
            &["from=mcab@localhost/mcabber", &to_slix],
        )
    {
        why = Some("slixmpp got mcabber's message garbled".to_owned());
    }
    let received = format!(" {to_mcabber}");
    if why.is_none()
        && poll(WAIT, || {
            let h = mc.history("slix@localhost");
            h.lines()
                .any(|l| l.starts_with("MR ") && l.ends_with(&received))
                .then_some(())
        })
        .await
        .is_none()
    {
        why = Some("mcabber's history does not show slixmpp's answer".to_owned());
    }
    if why.is_none()
        && !mc
            .history("slix@localhost")
            .lines()
            .any(|l| l.starts_with("MS ") && l.ends_with(&format!(" {to_slix}")))
    {
        why = Some("mcabber's history does not show its own message".to_owned());
    }
    // Quit cleanly; the terminal is closed (and mcabber with it) otherwise.
    let quit = mc.command("quit").await;
    let mcabber = mcabber.finish(Duration::from_secs(15)).await;
    let history = format!(
        "---- mcabber history with slix@localhost:\n{}\n{}",
        mc.history("slix@localhost"),
        mc.report()
    );
    if let Some(why) = why {
        fail(&server, &[&slix, &mcabber], &history, &why);
    }
    if quit.is_err() || !mcabber.ok() {
        fail(
            &server,
            &[&slix, &mcabber],
            &history,
            &format!("mcabber did not quit cleanly ({quit:?})"),
        );
    }
}

// ---- go-sendxmpp: offline message ----------------------------------------------

/// Issue "Done when" 3: go-sendxmpp sends a message to a user who has never
/// logged in; slixmpp then logs in as that user and gets it only after its
/// initial presence, with an XEP-0203 delay stamp.
#[tokio::test]
async fn go_sendxmpp_message_waits_for_offline_user() {
    require_program("go-sendxmpp", "--version");
    let server = server_with(&["alice", "bob"]);
    let body = format!("déposé pour Bob hors ligne {}", std::process::id());
    let jserver = server.c2s.to_string();
    let args = [
        "-d",
        "-u",
        "alice@localhost",
        "-p",
        "secret",
        "-j",
        jserver.as_str(),
        "bob@localhost",
    ];
    let what = format!("go-sendxmpp {}", args.join(" "));
    let mut cmd = Command::new("go-sendxmpp");
    cmd.args(args)
        // Go reads extra trust anchors from SSL_CERT_FILE: trust exactly the
        // server's certificate, with normal verification for "localhost".
        .env("SSL_CERT_FILE", server.cert_path())
        // No ~/.config/go-sendxmpp/sendxmpprc from the machine.
        .env("HOME", server.dir.path());
    let sent = Proc::spawn(what, cmd, Some(format!("{body}\n")))
        .finish(DEADLINE)
        .await;
    if !sent.ok() {
        fail(&server, &[&sent], "", "go-sendxmpp did not succeed");
    }

    require_python_module("slixmpp");
    let bob = python_driver(
        &server,
        "slixmpp_peer.py",
        "bob@localhost",
        &["offline", "alice@localhost", &body],
    )
    .finish(DEADLINE)
    .await;
    if !bob.ok()
        || !has_line(&bob, "MESSAGE ", &["from=alice@localhost/", &body])
        || !has_line(&bob, "DELAY ", &[])
    {
        fail(
            &server,
            &[&sent, &bob],
            "",
            "bob did not get go-sendxmpp's message, stamped, at his first available presence",
        );
    }
}
