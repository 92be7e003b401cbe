//! Self-test of the OpenLDAP fixture (tests/common/ldap.rs), with the
//! ldap-utils command-line tools: binds over StartTLS, ACLs, the student
//! population, stop/restart on the same port, connection counting.

mod common;
use common::ldap::{self, Slapd};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Run an ldap-utils tool against `s` with the test CA, requiring StartTLS.
fn tool(s: &Slapd, prog: &str, args: &[&str]) -> Output {
    Command::new(prog)
        .env("LDAPTLS_CACERT", &s.ca_path)
        .args(["-x", "-ZZ", "-o", "nettimeout=3", "-H", &s.url()])
        .args(args)
        .output()
        .expect("run ldap-utils (apt-get install ldap-utils)")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn whoami(s: &Slapd, dn: &str, password: &str) -> Output {
    tool(s, "ldapwhoami", &["-D", dn, "-w", password])
}

fn count_dns(out: &Output) -> usize {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("dn:"))
        .count()
}

#[test]
fn fixture_serves_the_directory() {
    let t = Instant::now();
    let mut s = Slapd::start();
    let started = t.elapsed();

    // Binds over StartTLS, checking the certificate for 127.0.0.1.
    let jean = ldap::person_dn("jean.dupont");
    let out = whoami(&s, &jean, ldap::PASSWORD_OF_JEAN);
    assert!(out.status.success(), "jean bind: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("dn:uid=jean.dupont,ou=people"),
        "{}",
        text(&out)
    );
    for (dn, pw) in [
        (ldap::person_dn("marie.curie"), ldap::PASSWORD_OF_MARIE),
        (ldap::person_dn("Paul.Martin"), ldap::PASSWORD_OF_PAUL),
        (ldap::person_dn("luc.bloque"), ldap::PASSWORD_OF_LUC),
        (ldap::person_dn("admin.ent"), ldap::PASSWORD_OF_ADMIN_ENT),
        (
            format!("uid=ancien.eleve,{}", ldap::ALUMNI_DN),
            ldap::PASSWORD_OF_ANCIEN,
        ),
        (ldap::person_dn("etu0137"), &ldap::student_password(137)),
        (ldap::SERVICE_DN.to_string(), ldap::SERVICE_PASSWORD),
    ] {
        let out = whoami(&s, &dn, pw);
        assert!(out.status.success(), "bind {dn}: {}", text(&out));
    }

    // A wrong password: invalidCredentials (49).
    let out = whoami(&s, &jean, "Motdepasse-2");
    assert_eq!(out.status.code(), Some(49), "{}", text(&out));

    // Anonymous reads nothing (the search succeeds with no entries).
    let out = tool(
        &s,
        "ldapsearch",
        &["-LLL", "-b", ldap::PEOPLE_DN, "(uid=jean.dupont)"],
    );
    assert!(
        matches!(out.status.code(), Some(0 | 32)),
        "anonymous search: {}",
        text(&out)
    );
    assert_eq!(count_dns(&out), 0, "anonymous read: {}", text(&out));

    // The service account finds the 200 students, and reads no password.
    let out = tool(
        &s,
        "ldapsearch",
        &[
            "-LLL",
            "-D",
            ldap::SERVICE_DN,
            "-w",
            ldap::SERVICE_PASSWORD,
            "-b",
            ldap::SUFFIX,
            "(ou=Licence Informatique)",
            "uid",
            "userPassword",
        ],
    );
    assert!(out.status.success(), "service search: {}", text(&out));
    assert_eq!(count_dns(&out), ldap::STUDENT_COUNT, "{}", text(&out));
    assert!(!text(&out).contains("userPassword"), "{}", text(&out));

    // A user reads Jean's entry, photo and non-ASCII title included; the
    // filter excludes the locked account; the big group is whole.
    let out = tool(
        &s,
        "ldapsearch",
        &[
            "-LLL",
            "-D",
            &ldap::person_dn("marie.curie"),
            "-w",
            ldap::PASSWORD_OF_MARIE,
            "-b",
            ldap::PEOPLE_DN,
            "(&(employeeType=actif)(|(uid=jean.dupont)(uid=luc.bloque)(uid=paul.martin)))",
            "title",
            "jpegPhoto",
        ],
    );
    assert!(out.status.success(), "user search: {}", text(&out));
    assert_eq!(count_dns(&out), 2, "{}", text(&out));
    let b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode("Ingénieur systèmes")
    };
    assert!(
        text(&out).contains(&format!("title:: {b64}")),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("jpegPhoto:: /9j/4AAQSkZJRg"),
        "{}",
        text(&out)
    );
    let out = tool(
        &s,
        "ldapsearch",
        &[
            "-LLL",
            "-D",
            ldap::SERVICE_DN,
            "-w",
            ldap::SERVICE_PASSWORD,
            "-b",
            &ldap::group_dn("etudiants-l3"),
            "-s",
            "base",
            "member",
        ],
    );
    let members = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("member:"))
        .count();
    assert_eq!(members, ldap::STUDENT_COUNT, "{}", text(&out));

    // Live changes as the directory manager.
    s.modify(&format!(
        "dn: {}\nchangetype: modify\nreplace: employeeType\nemployeeType: bloque\n",
        ldap::person_dn("etu0200")
    ));
    let out = tool(
        &s,
        "ldapsearch",
        &[
            "-LLL",
            "-D",
            ldap::SERVICE_DN,
            "-w",
            ldap::SERVICE_PASSWORD,
            "-b",
            ldap::PEOPLE_DN,
            "(&(employeeType=actif)(ou=Licence Informatique))",
            "1.1",
        ],
    );
    assert_eq!(count_dns(&out), ldap::STUDENT_COUNT - 1, "{}", text(&out));

    // An open connection is seen from the server side.
    let held = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    let t0 = Instant::now();
    while s.established_connections() == 0 {
        assert!(t0.elapsed() < Duration::from_secs(2), "connection not seen");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(held);

    // Stopped: connections are refused; restarted: same port, same data.
    let port = s.port;
    s.stop();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    let out = whoami(&s, &jean, ldap::PASSWORD_OF_JEAN);
    assert!(!out.status.success(), "bind while stopped: {}", text(&out));
    s.restart();
    assert_eq!(s.port, port);
    let out = whoami(&s, &jean, ldap::PASSWORD_OF_JEAN);
    assert!(out.status.success(), "bind after restart: {}", text(&out));
    let out = whoami(
        &s,
        &ldap::person_dn("etu0200"),
        &ldap::student_password(200),
    );
    assert!(out.status.success(), "{}", text(&out));

    // The configuration snippet parses as TOML with the expected keys.
    let cfg: toml::Table = s.auth_config().parse().expect("auth_config is TOML");
    let l = &cfg["auth"]["ldap"];
    assert_eq!(l["url"].as_str(), Some(s.url().as_str()));
    assert_eq!(l["starttls"].as_bool(), Some(true));
    assert_eq!(
        l["tls_ca"].as_str(),
        Some(s.ca_path.to_string_lossy().as_ref())
    );

    eprintln!("slapd start: {started:?}, whole test: {:?}", t.elapsed());
}

#[test]
fn instances_coexist() {
    let a = Slapd::start();
    let b = Slapd::start();
    assert_ne!(a.port, b.port);
    for s in [&a, &b] {
        let out = whoami(s, &ldap::person_dn("jean.dupont"), ldap::PASSWORD_OF_JEAN);
        assert!(out.status.success(), "{}", text(&out));
    }
}

/// The client library jaseur uses (ldap3 over rustls) accepts the StartTLS
/// certificate and the test CA, both for 127.0.0.1 and localhost.
#[tokio::test]
async fn ldap3_starttls_with_rustls() {
    use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use std::sync::Arc;

    let s = tokio::task::spawn_blocking(Slapd::start)
        .await
        .expect("start slapd");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&s.ca_path).expect("CA file") {
        roots.add(cert.expect("cert")).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    for url in [s.url(), format!("ldap://localhost:{}", s.port)] {
        let settings = LdapConnSettings::new()
            .set_config(config.clone())
            .set_starttls(true);
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &url)
            .await
            .expect("StartTLS with rustls");
        ldap3::drive!(conn);
        ldap.simple_bind(ldap::SERVICE_DN, ldap::SERVICE_PASSWORD)
            .await
            .expect("bind")
            .success()
            .expect("service bind");
        let (entries, _) = ldap
            .search(
                ldap::PEOPLE_DN,
                Scope::OneLevel,
                "(&(employeeType=actif)(uid=jean.dupont))",
                vec!["displayName", "title", "jpegPhoto"],
            )
            .await
            .expect("search")
            .success()
            .expect("search result");
        assert_eq!(entries.len(), 1);
        let e = SearchEntry::construct(entries.into_iter().next().expect("entry"));
        assert_eq!(e.attrs["title"], vec!["Ingénieur systèmes".to_string()]);
        assert_eq!(e.attrs["displayName"], vec!["Jean Dupont".to_string()]);
        assert_eq!(e.bin_attrs["jpegPhoto"], vec![ldap::jean_photo()]);
        let res = ldap
            .simple_bind(&ldap::person_dn("jean.dupont"), ldap::PASSWORD_OF_JEAN)
            .await
            .expect("bind");
        assert_eq!(res.rc, 0, "{res:?}");
        let res = ldap
            .simple_bind(&ldap::person_dn("jean.dupont"), "faux")
            .await
            .expect("bind");
        assert_eq!(res.rc, 49, "{res:?}");
        ldap.unbind().await.expect("unbind");
    }
}
