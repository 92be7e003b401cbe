//! Interoperability of the conference service (XEP-0045 at
//! `conference.localhost`) with real clients, each run as a subprocess
//! against the real server:
//!
//! * mcabber, driven through its command FIFO, joins a room created by a
//!   slixmpp occupant (slixmpp's XEP-0045 plugin) and they exchange
//!   groupchat messages both ways (`tests/interop/slixmpp_muc.py`);
//! * nbxmpp (Gajim's library) browses the rooms as Gajim's room browser
//!   does (disco#items on the service, disco#info on each room) and sees
//!   the public room slixmpp configured, with its name, but not the hidden
//!   one (`tests/interop/nbxmpp_muc_rooms.py`).
//!
//! The clients come from Debian packages (python3-slixmpp, python3-nbxmpp,
//! mcabber; `script` is in the essential bsdutils); a missing one fails the
//! test, it is never skipped.

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

const SERVICE: &str = "conference.localhost";

const INSTALL_HINT: &str = "install the Debian packages python3-nbxmpp, python3-slixmpp \
     and mcabber (scripts/test.sh does it when run as root)";

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
    fn spawn(what: String, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}; {INSTALL_HINT}"));
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

    /// Wait until a line of its standard output starts with `prefix` and
    /// contains every one of `parts`; an error if it exits or `wait` passes
    /// first.
    async fn line(&mut self, prefix: &str, parts: &[&str], wait: Duration) -> Result<(), String> {
        let deadline = Instant::now() + wait;
        loop {
            if self
                .stdout()
                .lines()
                .any(|l| l.starts_with(prefix) && parts.iter().all(|p| l.contains(p)))
            {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "it exited ({status}) before printing {prefix:?} with {parts:?}"
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!("no line {prefix:?} with {parts:?} within {wait:?}"));
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

fn has_line(run: &Run, prefix: &str, parts: &[&str]) -> bool {
    run.stdout
        .lines()
        .any(|l| l.starts_with(prefix) && parts.iter().all(|p| l.contains(p)))
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
    Proc::spawn(what, cmd)
}

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

// ---- mcabber and slixmpp in one room ---------------------------------------------

/// An mcabber account's files in a temp directory: config, FIFO, trace log
/// (with the XML), history (rooms included).
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

    fn write_config(&self, server: &Server, jid: &str, nick: &str) {
        use std::os::unix::fs::PermissionsExt;
        let d = self.dir.display();
        let text = format!(
            "set jid = {jid}\n\
             set password = secret\n\
             set server = {ip}\n\
             set port = {port}\n\
             set resource = mcabber\n\
             set disable_random_resource = 1\n\
             set nickname = {nick}\n\
             # STARTTLS, trusting exactly the server's self-signed certificate.\n\
             set tls = 1\n\
             set ssl_ca = {ca}\n\
             set logging = 1\n\
             set log_muc_conf = 1\n\
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
        Proc::spawn(what, cmd)
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

    /// Wait until mcabber is logged in and its initial presence sent.
    async fn logged_in(&self, proc: &mut Proc) -> Result<(), String> {
        poll(WAIT, || {
            let trace = self.trace();
            if trace.contains("Your status has been set") {
                Some(Ok(()))
            } else if trace.contains("Authentication failed") {
                Some(Err("authentication failed".to_owned()))
            } else if matches!(proc.child.try_wait(), Ok(Some(_))) {
                Some(Err("it exited".to_owned()))
            } else {
                None
            }
        })
        .await
        .unwrap_or_else(|| Err("still not logged in at the deadline".to_owned()))
    }
}

/// Issue 5, "Done when" 2: slixmpp creates a room (instant), mcabber joins
/// it through `/room join`, says something in the room with `/say_to`,
/// slixmpp sees it from mcabber's nick and answers in the room; mcabber
/// receives the answer (its room history shows it) and slixmpp gets its own
/// message reflected with a stanza-id by the room.
#[tokio::test]
async fn mcabber_and_slixmpp_chat_in_a_room() {
    require_program("mcabber", "-V");
    require_program("script", "--version");
    require_python_module("slixmpp");
    let server = server_with(&["mcab", "slix"]);
    let room = format!("salle-{}@{SERVICE}", std::process::id());
    let to_room = format!("Bonjour le salon, ici mcabber {}", std::process::id());
    let reply = format!("Salut mcabber, ici slixmpp {}", std::process::id());
    let mut slix = python_driver(
        &server,
        "slixmpp_muc.py",
        "slix@localhost",
        &["chat", &room, "Slix", "Mcab", &to_room, &reply],
    );
    if let Err(e) = slix.line("READY ", &[], WAIT).await {
        let r = slix.finish(Duration::from_secs(1)).await;
        fail(
            &server,
            &[&r],
            "",
            &format!("slixmpp never created and joined {room}: {e}"),
        );
    }

    let mc = Mcabber {
        dir: server.dir.path().join("mcabber"),
    };
    std::fs::create_dir_all(&mc.dir).expect("mcabber dir");
    mc.write_config(&server, "mcab@localhost", "Mcab");
    let mut mcabber = mc.spawn();

    let mut why = None;
    if let Err(e) = mc.logged_in(&mut mcabber).await {
        why = Some(format!("mcabber did not log in: {e}"));
    } else if let Err(e) = mc.command(&format!("room join {room} Mcab")).await {
        why = Some(e);
    } else {
        // slixmpp sees mcabber's presence in the room.
        let occupant = format!("from={room}/Mcab");
        if let Err(e) = slix.line("OCCUPANT ", &[&occupant], WAIT).await {
            why = Some(format!("slixmpp never saw mcabber join: {e}"));
        } else if let Err(e) = mc.command(&format!("say_to {room} {to_room}")).await {
            why = Some(e);
        }
    }
    // slixmpp exits once it got the message, answered and saw its answer reflected.
    let slix = if why.is_none() {
        slix.finish(DEADLINE).await
    } else {
        slix.finish(Duration::from_secs(1)).await
    };
    if why.is_none() && !slix.ok() {
        why = Some("slixmpp did not get mcabber's groupchat message and its own echo".to_owned());
    }
    let from_mcab = format!("from={room}/Mcab");
    if why.is_none() && !has_line(&slix, "MESSAGE ", &[&from_mcab, &to_room]) {
        why = Some("slixmpp got mcabber's message garbled".to_owned());
    }
    if why.is_none()
        && !has_line(
            &slix,
            "MESSAGE ",
            &[&from_mcab, &format!("stanza-id-by={room}")],
        )
    {
        why = Some("mcabber's message reached slixmpp without a stanza-id by the room".to_owned());
    }
    // mcabber's side: the room history holds slixmpp's answer (received,
    // "MR") and mcabber's own message as the room reflected it.
    let bare_room = room.to_lowercase();
    if why.is_none()
        && poll(WAIT, || {
            let h = mc.history(&bare_room);
            h.lines()
                .any(|l| l.starts_with("MR ") && l.contains(&reply))
                .then_some(())
        })
        .await
        .is_none()
    {
        why = Some("mcabber's room history does not show slixmpp's answer".to_owned());
    }
    if why.is_none()
        && !mc
            .history(&bare_room)
            .lines()
            .any(|l| l.starts_with('M') && l.contains(&to_room))
    {
        why = Some("mcabber's room history does not show its own message".to_owned());
    }
    let quit = mc.command("quit").await;
    let mcabber = mcabber.finish(Duration::from_secs(15)).await;
    let extra = format!(
        "---- mcabber history of {room}:\n{}\n---- mcabber trace log:\n{}\n",
        mc.history(&bare_room),
        mc.trace()
    );
    if let Some(why) = why {
        fail(&server, &[&slix, &mcabber], &extra, &why);
    }
    if quit.is_err() || !mcabber.ok() {
        fail(
            &server,
            &[&slix, &mcabber],
            &extra,
            &format!("mcabber did not quit cleanly ({quit:?})"),
        );
    }
}

// ---- nbxmpp lists the public rooms ---------------------------------------------------

/// Issue 5, "Done when" 2 and item 4: slixmpp creates a public persistent
/// room with a name and a hidden one through the configuration form, and
/// leaves both; nbxmpp, as Gajim's room browser, lists the service's rooms
/// (disco#items): the public one is there with its name, the hidden one is
/// not; disco#info shows each as it was configured.
#[tokio::test]
async fn nbxmpp_lists_public_rooms_but_not_hidden_ones() {
    require_python_module("slixmpp");
    require_python_module("nbxmpp");
    let server = server_with(&["slix", "gajim"]);
    let public = format!("accueil-{}@{SERVICE}", std::process::id());
    let hidden = format!("bureau-{}@{SERVICE}", std::process::id());
    let name = "Salon d'accueil de l'association";
    let creator = python_driver(
        &server,
        "slixmpp_muc.py",
        "slix@localhost",
        &["rooms", &public, name, &hidden],
    )
    .finish(DEADLINE)
    .await;
    if !creator.ok()
        || !has_line(&creator, "CONFIGURED ", &[&public])
        || !has_line(&creator, "CONFIGURED ", &[&hidden])
    {
        fail(
            &server,
            &[&creator],
            "",
            "slixmpp could not create and configure the rooms",
        );
    }
    let browser = python_driver(
        &server,
        "nbxmpp_muc_rooms.py",
        "gajim@localhost",
        &[SERVICE, &public, name, &hidden],
    )
    .finish(DEADLINE)
    .await;
    if !browser.ok() {
        fail(
            &server,
            &[&creator, &browser],
            "",
            "nbxmpp's room browsing did not show what was configured",
        );
    }
    if !has_line(&browser, "ITEM ", &[&format!("jid={public}")])
        || has_line(&browser, "ITEM ", &[&format!("jid={hidden}")])
    {
        fail(
            &server,
            &[&creator, &browser],
            "",
            "the room list is not the public rooms only",
        );
    }
}
