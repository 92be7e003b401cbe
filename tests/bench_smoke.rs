//! Short runs of the load generator's `login`, `idle` and `msg` scenarios
//! (`jaseur-bench login`, ...) against the real server, with 20 accounts:
//! logins with SCRAM-SHA-256 (warm key cache) and PLAIN, chat between 10
//! pairs closed loop and open loop for 2 seconds, and over XMPP over
//! WebSocket (RFC 7395) idle sessions, closed-loop chat and SCRAM logins.
//! They check that the generator works, that no login fails and that no
//! message is lost; the figures themselves come from runs on quiet, pinned
//! cores.

mod common;
use common::Server;
use std::net::SocketAddr;
use std::process::Command;

const BENCH: &str = env!("CARGO_BIN_EXE_jaseur-bench");

/// The value of `key=` in the generator's result line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
}

fn number(line: &str, key: &str) -> u64 {
    field(line, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {key}= in {line}"))
}

fn server_with_users() -> Server {
    let server = Server::start();
    server.add_numbered_users(20);
    server
}

/// Run a scenario with 20 users against `server`'s client port; returns
/// its result line, which has the CPU figures.
fn run_bench(server: &Server, scenario: &str, extra: &[&str]) -> String {
    run_bench_on(server, server.c2s, scenario, extra)
}

/// `run_bench` with `addr` as `--server` (the HTTP listener for WebSocket).
fn run_bench_on(server: &Server, addr: SocketAddr, scenario: &str, extra: &[&str]) -> String {
    let line = run_scenario(server, addr, scenario, extra);
    assert!(
        field(&line, "server_cpu_pct").is_some_and(|v| v != "na"),
        "{line}"
    );
    assert!(
        field(&line, "gen_cpu_pct").is_some_and(|v| v != "na"),
        "{line}"
    );
    line
}

/// Run a scenario with 20 users, `addr` as `--server`; returns its result line.
fn run_scenario(server: &Server, addr: SocketAddr, scenario: &str, extra: &[&str]) -> String {
    let addr = addr.to_string();
    let pid = server.pid().to_string();
    let cert = server.cert_path();
    let mut args = vec![
        scenario,
        "--server",
        addr.as_str(),
        "--domain",
        "localhost",
        "--users",
        "20",
        "--concurrency",
        "8",
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
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report = || {
        format!(
            "---- stdout:\n{stdout}\n---- stderr:\n{}\n---- server log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.log()
        )
    };
    assert!(
        out.status.success(),
        "jaseur-bench {scenario} {extra:?} failed\n{}",
        report()
    );
    let prefix = format!("{scenario} ");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no result line\n{}", report()))
        .to_owned();
    // Shown with --nocapture: the figures of a smoke run, not a benchmark.
    eprintln!("{line}");
    line
}

fn check_logins(line: &str, mechanism: &str, cache: &str) {
    assert_eq!(field(line, "mechanism"), Some(mechanism), "{line}");
    assert_eq!(field(line, "cache"), Some(cache), "{line}");
    assert_eq!(field(line, "failed"), Some("0"), "{line}");
    assert_eq!(number(line, "logins"), 20, "{line}");
    assert!(number(line, "logins_per_s") > 0, "{line}");
}

#[test]
fn login_scenario_with_scram_and_plain() {
    let server = server_with_users();
    // The default mechanism: SCRAM-SHA-256, keys derived in the warm-up pass.
    let scram = run_bench(&server, "login", &[]);
    check_logins(&scram, "scram-sha-256", "warm");
    assert_eq!(field(&scram, "pbkdf2"), Some("0"), "{scram}");
    let plain = run_bench(&server, "login", &["--mechanism", "plain"]);
    check_logins(&plain, "plain", "na");
    // Without the warm-up, every account's keys are derived in the measured pass.
    let cold = run_bench(&server, "login", &["--cold", "--rounds", "2"]);
    assert_eq!(field(&cold, "failed"), Some("0"), "{cold}");
    assert_eq!(number(&cold, "logins"), 40, "{cold}");
    assert_eq!(number(&cold, "pbkdf2"), 20, "{cold}");
}

fn check_messages(line: &str) -> u64 {
    assert_eq!(field(line, "pairs"), Some("10"), "{line}");
    assert_eq!(field(line, "lost"), Some("0"), "{line}");
    assert_eq!(field(line, "extra"), Some("0"), "{line}");
    assert_eq!(field(line, "out_of_order"), Some("0"), "{line}");
    assert_eq!(field(line, "errors"), Some("0"), "{line}");
    assert_eq!(field(line, "closed"), Some("0"), "{line}");
    let sent = number(line, "sent");
    assert!(sent > 0, "nothing sent: {line}");
    assert_eq!(number(line, "delivered"), sent, "{line}");
    sent
}

#[test]
fn msg_scenario_closed_and_open_loop_lose_nothing() {
    let server = server_with_users();
    let closed = run_bench(
        &server,
        "msg",
        &["--duration", "2", "--drain", "10", "--window", "4"],
    );
    assert_eq!(field(&closed, "mode"), Some("closed"), "{closed}");
    check_messages(&closed);
    // 200 messages/s for 2 s from the 20 senders: 400 at most.
    let open = run_bench(
        &server,
        "msg",
        &["--duration", "2", "--drain", "10", "--rate", "200"],
    );
    assert_eq!(field(&open, "mode"), Some("open"), "{open}");
    let sent = check_messages(&open);
    assert!((200..=400).contains(&sent), "open loop sent {sent}: {open}");
}

/// XMPP over WebSocket on the HTTP listener (no TLS of its own, so PLAIN
/// needs `consider_secure`): idle sessions with their memory, closed-loop
/// chat, and SCRAM-SHA-256 logins.
#[test]
fn idle_msg_and_login_over_websocket() {
    let server = Server::start_with_http("consider_secure = true");
    server.add_numbered_users(20);
    let http = server.http.expect("the test server has an HTTP listener");
    let ws = ["--transport", "websocket"];

    let idle = run_scenario(
        &server,
        http,
        "idle",
        &[&ws[..], &["--hold", "2", "--settle", "1"]].concat(),
    );
    assert_eq!(field(&idle, "transport"), Some("websocket"), "{idle}");
    assert_eq!(field(&idle, "failed"), Some("0"), "{idle}");
    assert_eq!(field(&idle, "lost"), Some("0"), "{idle}");
    assert_eq!(number(&idle, "established"), 20, "{idle}");
    assert!(
        field(&idle, "kib_per_session").is_some_and(|v| v.parse::<f64>().is_ok()),
        "{idle}"
    );

    let closed = run_bench_on(
        &server,
        http,
        "msg",
        &[
            &ws[..],
            &["--duration", "2", "--drain", "10", "--window", "4"],
        ]
        .concat(),
    );
    assert_eq!(field(&closed, "transport"), Some("websocket"), "{closed}");
    assert_eq!(field(&closed, "mode"), Some("closed"), "{closed}");
    check_messages(&closed);

    // SCRAM-SHA-256 over WebSocket: the default for `login`, keys derived
    // in the warm-up pass.
    let scram = run_bench_on(&server, http, "login", &ws);
    assert_eq!(field(&scram, "transport"), Some("websocket"), "{scram}");
    check_logins(&scram, "scram-sha-256", "warm");
    assert_eq!(field(&scram, "pbkdf2"), Some("0"), "{scram}");
}
