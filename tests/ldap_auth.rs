//! Logging in with the university's directory account: SASL PLAIN checked by
//! binding to a real slapd (tests/common/ldap.rs), against the real server.

mod common;

use common::client::{self, Client, iq, starttls_to};
use common::ldap::{self, DOMAIN, Slapd};
use std::time::{Duration, Instant};

/// SASL PLAIN on a fresh STARTTLS stream to univ-lille.fr; the outcome element.
async fn plain(server: &common::Server, user: &str, password: &str) -> String {
    let (mut c, _) = starttls_to(server, DOMAIN).await;
    c.auth_plain(user, password).await
}

fn refused(outcome: &str, condition: &str) -> bool {
    outcome.contains("<failure") && outcome.contains(&format!("<{condition}/>"))
}

async fn login(server: &common::Server, user: &str, password: &str) -> Client {
    client::login_to(server, DOMAIN, user, password, "t").await
}

#[tokio::test]
async fn directory_accounts_log_in_and_others_do_not() {
    let slapd = Slapd::start();
    let server = slapd.jaseur("\"ldap\"", "", "");

    // A directory domain offers PLAIN only; the internal one keeps SCRAM.
    let (_, features) = starttls_to(&server, DOMAIN).await;
    assert!(
        features.contains("<mechanism>PLAIN</mechanism>"),
        "{features}"
    );
    assert!(!features.contains("SCRAM"), "{features}");
    assert!(
        !features.contains("jabber.org/features/iq-register"),
        "{features}"
    );
    let (_, features) = starttls_to(&server, "localhost").await;
    assert!(features.contains("SCRAM-SHA-256"), "{features}");

    let mut jean = login(&server, "jean.dupont", ldap::PASSWORD_OF_JEAN).await;
    let r = iq(
        &mut jean,
        "p1",
        "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    assert!(
        r.contains("type='result'") || r.contains("type=\"result\""),
        "{r}"
    );
    // The password is the directory's: the client cannot change it (XEP-0077 §3.3).
    let r = iq(
        &mut jean,
        "pw",
        "<iq type='set' id='pw'><query xmlns='jabber:iq:register'><username>jean.dupont</username>\
         <password>nouveau</password></query></iq>",
    )
    .await;
    assert!(client::is_error(&r, "not-allowed"), "{r}");
    // Non-ASCII password.
    login(&server, "marie.curie", ldap::PASSWORD_OF_MARIE).await;
    // The directory stores "Paul.Martin"; case and spaces are folded the way
    // the directory matches them, and the JID is lower-case.
    for typed in ["Paul.Martin", "paul.martin", " PAUL.MARTIN "] {
        let (mut c, _) = starttls_to(&server, DOMAIN).await;
        let outcome = c.auth_plain(typed, ldap::PASSWORD_OF_PAUL).await;
        assert!(outcome.contains("<success"), "{typed:?}: {outcome}");
        let jid = c.bind_to(DOMAIN, Some("r")).await;
        assert_eq!(jid, "paul.martin@univ-lille.fr/r");
    }

    // Every refusal looks the same: not-authorized.
    let cases = [
        ("jean.dupont", "wrong", "wrong password"),
        ("jean.dupont", "motdepasse-1", "password case matters"),
        ("nobody.here", "x", "unknown account"),
        (
            "luc.bloque",
            ldap::PASSWORD_OF_LUC,
            "locked (excluded by the filter)",
        ),
        ("ancien.eleve", ldap::PASSWORD_OF_ANCIEN, "outside base_dn"),
    ];
    for (user, pw, why) in cases {
        let outcome = plain(&server, user, pw).await;
        assert!(refused(&outcome, "not-authorized"), "{why}: {outcome}");
    }
    // Filter and DN injection (RFC 4515/4514): none of these names anyone.
    for user in [
        "*",
        "a)(uid=*",
        "jean.dupont)(uid=*",
        "*)(|(uid=*",
        "jean*",
        "j*",
        "jean.dupont\\2a",
        "uid=jean.dupont,ou=people,dc=univ-lille,dc=fr",
    ] {
        let outcome = plain(&server, user, ldap::PASSWORD_OF_JEAN).await;
        assert!(refused(&outcome, "not-authorized"), "{user:?}: {outcome}");
    }
    assert!(
        !server.log().contains(ldap::PASSWORD_OF_JEAN),
        "a password reached the log"
    );
}

#[tokio::test]
async fn empty_and_repeated_wrong_passwords_never_reach_the_directory() {
    let mut slapd = Slapd::start();
    let server = slapd.jaseur("\"ldap\"", "max_failed_binds = 2\ncache_ttl = 0", "");

    // Two distinct wrong passwords go to the directory...
    for pw in ["faux-1", "faux-2"] {
        let outcome = plain(&server, "marie.curie", pw).await;
        assert!(refused(&outcome, "not-authorized"), "{outcome}");
    }
    // ...then the directory goes away: whatever is answered from here on
    // without temporary-auth-failure was answered without asking it.
    slapd.stop();
    // RFC 4616 has no empty PLAIN password: refused as malformed, before
    // any backend sees it (an empty bind is an anonymous bind, RFC 4513 §5.1.2).
    let outcome = plain(&server, "marie.curie", "").await;
    assert!(
        outcome.contains("<failure") && !outcome.contains("temporary-auth-failure"),
        "empty password: {outcome}"
    );
    let outcome = plain(&server, "marie.curie", "faux-1").await;
    assert!(
        refused(&outcome, "not-authorized"),
        "same wrong password: {outcome}"
    );
    let outcome = plain(&server, "marie.curie", "faux-3").await;
    assert!(
        refused(&outcome, "not-authorized"),
        "over max_failed_binds: {outcome}"
    );
    // Another account has no failures: its check does need the directory.
    let outcome = plain(&server, "jean.dupont", "faux").await;
    assert!(refused(&outcome, "temporary-auth-failure"), "{outcome}");
    let log = server.log();
    assert!(
        log.contains("wrong passwords refused without asking the directory"),
        "{log}"
    );
}

#[tokio::test]
async fn directory_outage_gives_temporary_failure_and_service_resumes() {
    let mut slapd = Slapd::start();
    let server = slapd.jaseur(
        "\"ldap\"",
        "cache_ttl = 0\ntimeout = 2\nconnect_timeout = 1",
        "",
    );
    let mut jean = login(&server, "jean.dupont", ldap::PASSWORD_OF_JEAN).await;
    let mut marie = login(&server, "marie.curie", ldap::PASSWORD_OF_MARIE).await;
    marie.send("<presence/>").await;

    slapd.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let outcome = plain(&server, "paul.martin", ldap::PASSWORD_OF_PAUL).await;
        assert!(refused(&outcome, "temporary-auth-failure"), "{outcome}");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{:?}",
            started.elapsed()
        );
    }
    // Users already connected keep chatting.
    jean.send(
        "<message to='marie.curie@univ-lille.fr' type='chat' id='m1'><body>toujours là ?</body></message>",
    )
    .await;
    let got = client::wait_for(&mut marie, "jean's message", |s| s.contains("toujours là")).await;
    assert!(
        got.contains("from='jean.dupont@univ-lille.fr/t'")
            || got.contains("from=\"jean.dupont@univ-lille.fr/t\""),
        "{got}"
    );

    // A hung directory (connections open, no answers) fails within the timeout too.
    slapd.restart();
    wait_for_login(&server, "paul.martin", ldap::PASSWORD_OF_PAUL).await;
    slapd.pause();
    let started = Instant::now();
    let outcome = plain(&server, "paul.martin", ldap::PASSWORD_OF_PAUL).await;
    slapd.resume();
    assert!(refused(&outcome, "temporary-auth-failure"), "{outcome}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    wait_for_login(&server, "paul.martin", ldap::PASSWORD_OF_PAUL).await;

    // One line per outage, not one per attempt.
    let log = server.log();
    let down = log.matches("LDAP directory unavailable").count();
    assert!((1..=2).contains(&down), "{down} outage lines:\n{log}");
    assert!(log.contains("LDAP directory answers again"), "{log}");
}

/// Log in, retrying until the directory is back (back-off is at most 10 s).
async fn wait_for_login(server: &common::Server, user: &str, password: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let outcome = plain(server, user, password).await;
        if outcome.contains("<success") {
            return;
        }
        assert!(refused(&outcome, "temporary-auth-failure"), "{outcome}");
        assert!(Instant::now() < deadline, "the directory never came back");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn internal_accounts_beside_the_directory() {
    let mut slapd = Slapd::start();
    let server = slapd.jaseur("[\"internal\", \"ldap\"]", "cache_ttl = 0", "");
    server.add_user("admin@univ-lille.fr", "local-secret");

    let (mut c, features) = starttls_to(&server, DOMAIN).await;
    assert!(features.contains("SCRAM-SHA-256"), "{features}");
    assert!(
        features.contains("<mechanism>PLAIN</mechanism>"),
        "{features}"
    );
    // The internal account: SCRAM and PLAIN.
    let outcome = c
        .auth_scram(true, client::Cb::None, "admin", "local-secret")
        .await;
    assert!(outcome.contains("<success"), "{outcome}");
    let outcome = plain(&server, "admin", "local-secret").await;
    assert!(outcome.contains("<success"), "{outcome}");
    // A directory account: PLAIN; SCRAM cannot work (no keys here).
    let outcome = plain(&server, "jean.dupont", ldap::PASSWORD_OF_JEAN).await;
    assert!(outcome.contains("<success"), "{outcome}");
    let (mut c, _) = starttls_to(&server, DOMAIN).await;
    let outcome = c
        .auth_scram(
            true,
            client::Cb::None,
            "jean.dupont",
            ldap::PASSWORD_OF_JEAN,
        )
        .await;
    assert!(refused(&outcome, "not-authorized"), "{outcome}");

    // With the directory down, the local admin still gets in.
    slapd.stop();
    let outcome = plain(&server, "admin", "local-secret").await;
    assert!(outcome.contains("<success"), "{outcome}");
    let outcome = plain(&server, "jean.dupont", ldap::PASSWORD_OF_JEAN).await;
    assert!(refused(&outcome, "temporary-auth-failure"), "{outcome}");
}

#[tokio::test]
async fn messages_to_directory_accounts_that_never_logged_in_are_kept() {
    let slapd = Slapd::start();
    let server = slapd.jaseur("\"ldap\"", "", "");
    let mut jean = login(&server, "jean.dupont", ldap::PASSWORD_OF_JEAN).await;
    jean.send(
        "<message to='marie.curie@univ-lille.fr' type='chat' id='m1'><body>bonjour Marie</body></message>\
         <message to='personne@univ-lille.fr' type='chat' id='m2'><body>?</body></message>\
         <message to='luc.bloque@univ-lille.fr' type='chat' id='m3'><body>?</body></message>",
    )
    .await;
    let bounce = client::wait_for(&mut jean, "bounce of m2", |s| {
        s.contains("id='m2'") || s.contains("id=\"m2\"")
    })
    .await;
    assert!(client::is_error(&bounce, "service-unavailable"), "{bounce}");
    let bounce = client::wait_for(&mut jean, "bounce of m3", |s| {
        s.contains("id='m3'") || s.contains("id=\"m3\"")
    })
    .await;
    assert!(client::is_error(&bounce, "service-unavailable"), "{bounce}");
    // Marie exists in the directory: the message waits for her.
    let mut marie =
        client::login_to(&server, DOMAIN, "marie.curie", ldap::PASSWORD_OF_MARIE, "m").await;
    marie.send("<presence/>").await;
    let got = client::wait_for(&mut marie, "offline message", |s| {
        s.contains("bonjour Marie")
    })
    .await;
    assert!(got.contains("urn:xmpp:delay"), "{got}");
}

#[tokio::test]
async fn a_burst_of_logins_stays_within_the_pool() {
    const POOL: usize = 4;
    let slapd = Slapd::start();
    let server = slapd.jaseur("\"ldap\"", &format!("pool_size = {POOL}"), "");
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sampler = {
        let (sampling, most, port, pid) =
            (sampling.clone(), most.clone(), slapd.port, server.pid());
        std::thread::spawn(move || {
            while sampling.load(std::sync::atomic::Ordering::Acquire) {
                let n = ldap::connections_of(pid, port);
                most.fetch_max(n, std::sync::atomic::Ordering::AcqRel);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let server = std::sync::Arc::new(server);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 1..=ldap::STUDENT_COUNT {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let outcome = plain(&server, &ldap::student_uid(i), &ldap::student_password(i)).await;
            assert!(outcome.contains("<success"), "student {i}: {outcome}");
        }));
    }
    for t in tasks {
        t.await.expect("login task");
    }
    let elapsed = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Release);
    sampler.join().expect("sampler");
    let seen = most.load(std::sync::atomic::Ordering::Acquire);
    let status_now = String::from_utf8_lossy(&server.cli(&["ldap", "status"]).stdout).to_string();
    assert!(
        (1..=POOL).contains(&seen),
        "{seen} connections to slapd seen; {status_now}"
    );
    let out = server.cli(&["ldap", "status"]);
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{status} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let high: usize = status
        .split_whitespace()
        .find_map(|w| w.strip_prefix("high_water="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no high_water in {status:?}"));
    assert!((1..=POOL).contains(&high), "{status}");
    eprintln!(
        "{} directory logins in {elapsed:?} with {POOL} connections",
        ldap::STUDENT_COUNT
    );
}
