//! Harness for the interoperability tests with real XMPP clients (slixmpp,
//! nbxmpp, mcabber, go-sendxmpp), each run as a subprocess against the real
//! server: requiring the clients (a missing one fails the test, it is never
//! skipped), running them while collecting their output, the Python drivers
//! in `tests/interop/`, and mcabber driven through its command FIFO.

use super::Server;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The system Python that sees the Debian client packages (not a pyenv one).
pub const PYTHON: &str = "/usr/bin/python3";

/// How long the drivers give themselves (they fail on their own after it).
pub const DRIVER_TIMEOUT: &str = "30";

/// How long a client process may run before it is killed.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// How long to wait for a client to be logged in, or for one event.
pub const WAIT: Duration = Duration::from_secs(30);

pub const INSTALL_HINT: &str = "install the Debian packages python3-nbxmpp, python3-slixmpp, \
     go-sendxmpp and mcabber (scripts/test.sh does it when run as root)";

/// A driver script in `tests/interop/`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("interop")
        .join(name)
}

/// Fail (never skip) when a Python client library is not installed.
pub fn require_python_module(module: &str) {
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
pub fn require_program(program: &str, arg: &str) {
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
pub struct Proc {
    pub what: String,
    pub child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

/// What a client process did.
pub struct Run {
    pub what: String,
    /// None: killed at the deadline.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
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

/// Whether `line` starts with `prefix` and contains every one of `parts`.
fn line_matches(line: &str, prefix: &str, parts: &[&str]) -> bool {
    line.starts_with(prefix) && parts.iter().all(|p| line.contains(p))
}

/// `prefix`, and `parts` if there are any, for error messages.
fn describe(prefix: &str, parts: &[&str]) -> String {
    if parts.is_empty() {
        format!("{prefix:?}")
    } else {
        format!("{prefix:?} with {parts:?}")
    }
}

impl Proc {
    /// Start `cmd`; `input`, if any, is its whole standard input.
    pub fn spawn(what: String, mut cmd: Command, input: Option<String>) -> Proc {
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

    /// Its standard output so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("output lock").clone()
    }

    /// Wait until a line of its standard output starts with `prefix` and
    /// contains every one of `parts`, and give that line; an error if it
    /// exits or `wait` passes first.
    pub async fn line(
        &mut self,
        prefix: &str,
        parts: &[&str],
        wait: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(line) = self
                .stdout()
                .lines()
                .find(|l| line_matches(l, prefix, parts))
            {
                return Ok(line.to_owned());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "it exited ({status}) before printing {}",
                    describe(prefix, parts)
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no line {} within {wait:?}",
                    describe(prefix, parts)
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait for it to exit (killing it after `wait`) and collect everything.
    pub async fn finish(mut self, wait: Duration) -> Run {
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
    /// Whether it exited successfully (before the deadline).
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Its command, exit status and output, for a failure message.
    pub fn report(&self) -> String {
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

/// Whether a line of its standard output starts with `prefix` and contains
/// every one of `parts`.
pub fn has_line(run: &Run, prefix: &str, parts: &[&str]) -> bool {
    run.stdout.lines().any(|l| line_matches(l, prefix, parts))
}

/// Panic with everything needed to understand a failure.
pub fn fail(server: &Server, runs: &[&Run], extra: &str, why: &str) -> ! {
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

/// A server with these users (`USER@localhost`, password "secret").
pub fn server_with(users: &[&str]) -> Server {
    let server = Server::start();
    for u in users {
        server.add_user(&format!("{u}@localhost"), "secret");
    }
    server
}

/// `python3 SCRIPT HOST PORT starttls JID secret ARGS...` over STARTTLS,
/// trusting the server's own certificate.
pub fn python_driver(server: &Server, script_name: &str, jid: &str, args: &[&str]) -> Proc {
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

/// Poll `f` until it gives a value or `wait` passes.
pub async fn poll<T>(wait: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
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
/// (with the XML), history (rooms included).
pub struct Mcabber {
    pub dir: PathBuf,
}

impl Mcabber {
    pub fn config(&self) -> PathBuf {
        self.dir.join("mcabberrc")
    }
    pub fn fifo(&self) -> PathBuf {
        self.dir.join("mcabber.fifo")
    }
    pub fn trace(&self) -> String {
        std::fs::read_to_string(self.dir.join("trace.log")).unwrap_or_default()
    }
    pub fn history(&self, jid: &str) -> String {
        std::fs::read_to_string(self.dir.join("histo").join(jid)).unwrap_or_default()
    }
    pub fn report(&self) -> String {
        format!("---- mcabber trace log:\n{}\n", self.trace())
    }

    /// Write its configuration for `jid` (password "secret") on `server`;
    /// `extra` holds more `set ...` lines, each ending with a newline.
    pub fn write_config(&self, server: &Server, jid: &str, extra: &str) {
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
             {extra}\
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
    pub fn spawn(&self) -> Proc {
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
    pub async fn command(&self, line: &str) -> Result<(), String> {
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
    pub async fn logged_in(&self, proc: &mut Proc) -> Result<(), String> {
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
