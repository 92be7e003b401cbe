//! A short run of the load generator's `muc` scenario (`jaseur-bench muc`)
//! against the real server: 20 users in two rooms of 10, two senders per
//! room, closed loop for 2 seconds. It checks that the generator works and
//! that no groupchat message is lost; the figures themselves come from
//! `scripts/bench-muc.sh` on quiet cores.

mod common;
use common::Server;
use std::process::Command;

const BENCH: &str = env!("CARGO_BIN_EXE_jaseur-bench");

/// The value of `key=` in the generator's result line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
}

fn run_bench(server: &Server, extra: &[&str]) -> (bool, String, String) {
    let addr = server.c2s.to_string();
    let pid = server.pid().to_string();
    let cert = server.cert_path();
    let mut args = vec![
        "muc",
        "--server",
        addr.as_str(),
        "--domain",
        "localhost",
        "--users",
        "20",
        "--room-size",
        "10",
        "--duration",
        "2",
        "--drain",
        "10",
        "--join-timeout",
        "30",
        "--login-timeout",
        "30",
        "--server-pid",
        pid.as_str(),
        "--ca",
        cert.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    let out = Command::new(BENCH)
        .args(&args)
        .output()
        .expect("run jaseur-bench");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `most_sent`: the open loop's schedule (rate x duration), never exceeded.
fn check(
    server: &Server,
    (ok, stdout, stderr): (bool, String, String),
    mode: &str,
    most_sent: Option<u64>,
) {
    let report = || {
        format!(
            "---- stdout:\n{stdout}\n---- stderr:\n{stderr}\n---- server log:\n{}",
            server.log()
        )
    };
    assert!(ok, "jaseur-bench muc ({mode}) failed\n{}", report());
    let line = stdout
        .lines()
        .find(|l| l.starts_with("muc "))
        .unwrap_or_else(|| panic!("no result line\n{}", report()));
    assert_eq!(field(line, "lost"), Some("0"), "{}", report());
    assert_eq!(field(line, "rooms"), Some("2"), "{}", report());
    assert_eq!(field(line, "out_of_order"), Some("0"), "{}", report());
    assert_eq!(field(line, "errors"), Some("0"), "{}", report());
    let sent: u64 = field(line, "sent")
        .and_then(|v| v.parse().ok())
        .expect("sent=");
    let delivered: u64 = field(line, "delivered")
        .and_then(|v| v.parse().ok())
        .expect("delivered=");
    assert!(sent > 0, "nothing sent\n{}", report());
    if let Some(most) = most_sent {
        assert!(
            sent <= most && sent >= most / 2,
            "open loop sent {sent}, scheduled {most}\n{}",
            report()
        );
    }
    assert_eq!(delivered, sent * 10, "{}", report());
    assert!(field(line, "server_cpu_pct").is_some_and(|v| v != "na"));
}

fn server_with_users() -> Server {
    let server = Server::start();
    server.add_numbered_users(20);
    server
}

#[test]
fn muc_scenario_closed_loop_loses_nothing() {
    let server = server_with_users();
    let result = run_bench(&server, &[]);
    check(&server, result, "closed loop", None);
}

#[test]
fn muc_scenario_open_loop_loses_nothing() {
    let server = server_with_users();
    // 100 messages/s for 2 s: 200 messages from the 6 senders of 2 rooms.
    let result = run_bench(&server, &["--rate", "100", "--senders", "3"]);
    check(&server, result, "open loop", Some(200));
}
