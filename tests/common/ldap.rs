//! A real OpenLDAP `slapd` with a directory shaped like a French
//! university's, for the LDAP authentication, vCard-from-directory, XEP-0055
//! search and shared-roster tests.
//!
//! Each [`Slapd`] gets its own temporary directory (configuration, test CA and
//! server certificate, MDB database loaded with `slapadd`) and listens on
//! `127.0.0.1` on a free port, offering StartTLS with a certificate for
//! `127.0.0.1` and `localhost` signed by the CA at [`Slapd::ca_path`].
//!
//! The directory under [`SUFFIX`]:
//!
//! - `ou=people`: `jean.dupont` (with a `jpegPhoto`, see [`jean_photo`]),
//!   `marie.curie`, `Paul.Martin` (mixed-case uid), `luc.bloque`
//!   (`employeeType: bloque`), `admin.ent`, and the students `etu0001` to
//!   `etu0200` (see [`student_uid`], [`student_password`]);
//! - `ou=alumni`: `ancien.eleve`, active with a valid password but outside
//!   [`PEOPLE_DN`];
//! - `ou=services`: the service account [`SERVICE_DN`];
//! - `ou=groups`: `groupOfNames` `dsi` (jean.dupont, Paul.Martin), `physique`
//!   (marie.curie), `etudiants-l3` (the 200 students).
//!
//! Passwords are stored as `{SSHA}`; `userPassword` can only be used to bind,
//! anonymous can read nothing else, the service account and bound users read
//! everything else.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha1::{Digest, Sha1};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The directory suffix.
pub const SUFFIX: &str = "dc=univ-lille,dc=fr";
/// Where the people who may log in are (the `base_dn` of [`Slapd::auth_config`]).
pub const PEOPLE_DN: &str = "ou=people,dc=univ-lille,dc=fr";
/// Where the groups are.
pub const GROUPS_DN: &str = "ou=groups,dc=univ-lille,dc=fr";
/// Former students: outside [`PEOPLE_DN`].
pub const ALUMNI_DN: &str = "ou=alumni,dc=univ-lille,dc=fr";
/// The filter of [`Slapd::auth_config`]: active accounts only.
pub const ACTIVE_FILTER: &str = "(employeeType=actif)";

/// The directory manager (bypasses the ACLs).
pub const ROOT_DN: &str = "cn=admin,dc=univ-lille,dc=fr";
pub const ROOT_PASSWORD: &str = "Racine-Annuaire-0";
/// The service account jaseur binds as to search.
pub const SERVICE_DN: &str = "cn=jaseur,ou=services,dc=univ-lille,dc=fr";
pub const SERVICE_PASSWORD: &str = "Service-Jaseur-9";

pub const PASSWORD_OF_JEAN: &str = "Motdepasse-1";
/// Non-ASCII on purpose (UTF-8 on the wire, NFC).
pub const PASSWORD_OF_MARIE: &str = "Polonium-Été-2";
/// Of `Paul.Martin` (stored with that mixed-case uid).
pub const PASSWORD_OF_PAUL: &str = "Motdepasse-3";
/// Of `luc.bloque`: valid, but the account is `employeeType: bloque`.
pub const PASSWORD_OF_LUC: &str = "Motdepasse-4";
/// Of `admin.ent`, a normal active user.
pub const PASSWORD_OF_ADMIN_ENT: &str = "Motdepasse-5";
/// Of `ancien.eleve`, under `ou=alumni` (outside the base).
pub const PASSWORD_OF_ANCIEN: &str = "Motdepasse-6";

/// How many students (`etu0001` ..= `etu0200`, all in `etudiants-l3`).
pub const STUDENT_COUNT: usize = 200;

/// The uid of student `i` (1-based): `etu0001`.
pub fn student_uid(i: usize) -> String {
    format!("etu{i:04}")
}

/// The password of student `i` (1-based).
pub fn student_password(i: usize) -> String {
    format!("Etudiant-{i:04}-mdp")
}

/// The DN of a person under `ou=people`, e.g. `person_dn("jean.dupont")`.
pub fn person_dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE_DN}")
}

/// The DN of a group under `ou=groups`, e.g. `group_dn("dsi")`.
pub fn group_dn(cn: &str) -> String {
    format!("cn={cn},{GROUPS_DN}")
}

/// Jean Dupont's `jpegPhoto`: 320 deterministic bytes that look like a JPEG
/// (start `FF D8 FF E0 .. JFIF`, end `FF D9`).
pub fn jean_photo() -> Vec<u8> {
    let mut v = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00,
    ];
    let mut x: u32 = 0x1234_5678;
    while v.len() < 318 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        // Never 0xFF, so no accidental marker.
        v.push(((x >> 16) as u8) % 0xFF);
    }
    v.extend_from_slice(&[0xFF, 0xD9]);
    v
}

/// `{SSHA}` of `password`, with a salt derived from `salt_seed` (deterministic).
pub fn ssha(password: &str, salt_seed: &str) -> String {
    let salt = &Sha1::digest(salt_seed.as_bytes())[..8];
    let mut h = Sha1::new();
    h.update(password.as_bytes());
    h.update(salt);
    let mut raw = h.finalize().to_vec();
    raw.extend_from_slice(salt);
    format!("{{SSHA}}{}", B64.encode(raw))
}

/// One LDIF line, base64-encoded when the value is not a SAFE-STRING (RFC 2849).
fn line(out: &mut String, attr: &str, value: &[u8]) {
    let safe = value
        .first()
        .is_none_or(|&b| b != b' ' && b != b':' && b != b'<')
        && value.last() != Some(&b' ')
        && value
            .iter()
            .all(|&b| b.is_ascii() && b != 0 && b != b'\n' && b != b'\r');
    if safe {
        let _ = writeln!(out, "{attr}: {}", String::from_utf8_lossy(value));
    } else {
        let _ = writeln!(out, "{attr}:: {}", B64.encode(value));
    }
}

struct Person<'a> {
    uid: &'a str,
    given: &'a str,
    sn: &'a str,
    phone: &'a str,
    ou: &'a str,
    title: &'a str,
    status: &'a str,
    password: &'a str,
    photo: Option<Vec<u8>>,
}

fn person(out: &mut String, parent: &str, p: &Person) {
    let cn = format!("{} {}", p.given, p.sn);
    let _ = writeln!(out, "dn: uid={},{parent}", p.uid);
    for oc in ["top", "person", "organizationalPerson", "inetOrgPerson"] {
        line(out, "objectClass", oc.as_bytes());
    }
    line(out, "uid", p.uid.as_bytes());
    line(out, "cn", cn.as_bytes());
    line(out, "sn", p.sn.as_bytes());
    line(out, "givenName", p.given.as_bytes());
    line(out, "displayName", cn.as_bytes());
    let mail = format!("{}@univ-lille.fr", p.uid.to_lowercase());
    line(out, "mail", mail.as_bytes());
    line(out, "telephoneNumber", p.phone.as_bytes());
    line(out, "ou", p.ou.as_bytes());
    line(out, "title", p.title.as_bytes());
    line(out, "employeeType", p.status.as_bytes());
    line(
        out,
        "userPassword",
        ssha(p.password, &p.uid.to_lowercase()).as_bytes(),
    );
    if let Some(photo) = &p.photo {
        line(out, "jpegPhoto", photo);
    }
    out.push('\n');
}

fn group(out: &mut String, cn: &str, description: &str, members: &[String]) {
    let _ = writeln!(out, "dn: cn={cn},{GROUPS_DN}");
    line(out, "objectClass", b"top");
    line(out, "objectClass", b"groupOfNames");
    line(out, "cn", cn.as_bytes());
    line(out, "description", description.as_bytes());
    for m in members {
        line(out, "member", m.as_bytes());
    }
    out.push('\n');
}

/// The whole fixture directory, as LDIF for `slapadd`.
pub fn fixture_ldif() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "dn: {SUFFIX}\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\n\
         dc: univ-lille\no: Universite de Lille\n"
    );
    for ou in ["people", "groups", "services", "alumni"] {
        let _ = writeln!(
            out,
            "dn: ou={ou},{SUFFIX}\nobjectClass: top\nobjectClass: organizationalUnit\nou: {ou}\n"
        );
    }
    let _ = writeln!(out, "dn: {SERVICE_DN}");
    for oc in ["top", "organizationalRole", "simpleSecurityObject"] {
        line(&mut out, "objectClass", oc.as_bytes());
    }
    line(&mut out, "cn", b"jaseur");
    line(
        &mut out,
        "description",
        b"Compte de service du serveur XMPP",
    );
    line(
        &mut out,
        "userPassword",
        ssha(SERVICE_PASSWORD, "jaseur").as_bytes(),
    );
    out.push('\n');

    let staff = [
        Person {
            uid: "jean.dupont",
            given: "Jean",
            sn: "Dupont",
            phone: "+33 3 20 00 00 01",
            ou: "Informatique",
            title: "Ingénieur systèmes",
            status: "actif",
            password: PASSWORD_OF_JEAN,
            photo: Some(jean_photo()),
        },
        Person {
            uid: "marie.curie",
            given: "Marie",
            sn: "Curie",
            phone: "+33 3 20 00 00 02",
            ou: "Physique",
            title: "Professeure",
            status: "actif",
            password: PASSWORD_OF_MARIE,
            photo: None,
        },
        Person {
            uid: "Paul.Martin",
            given: "Paul",
            sn: "Martin",
            phone: "+33 3 20 00 00 03",
            ou: "Informatique",
            title: "Technicien",
            status: "actif",
            password: PASSWORD_OF_PAUL,
            photo: None,
        },
        Person {
            uid: "luc.bloque",
            given: "Luc",
            sn: "Bloque",
            phone: "+33 3 20 00 00 04",
            ou: "Informatique",
            title: "Technicien",
            status: "bloque",
            password: PASSWORD_OF_LUC,
            photo: None,
        },
        Person {
            uid: "admin.ent",
            given: "Admin",
            sn: "ENT",
            phone: "+33 3 20 00 00 05",
            ou: "Direction du numérique",
            title: "Administrateur ENT",
            status: "actif",
            password: PASSWORD_OF_ADMIN_ENT,
            photo: None,
        },
    ];
    for p in &staff {
        person(&mut out, PEOPLE_DN, p);
    }
    for i in 1..=STUDENT_COUNT {
        let uid = student_uid(i);
        let n = format!("{i:04}");
        let phone = format!("+33 3 20 10 {:02} {:02}", i / 100, i % 100);
        let password = student_password(i);
        person(
            &mut out,
            PEOPLE_DN,
            &Person {
                uid: &uid,
                given: "Etudiant",
                sn: &n,
                phone: &phone,
                ou: "Licence Informatique",
                title: "Étudiant",
                status: "actif",
                password: &password,
                photo: None,
            },
        );
    }
    person(
        &mut out,
        ALUMNI_DN,
        &Person {
            uid: "ancien.eleve",
            given: "Ancien",
            sn: "Eleve",
            phone: "+33 3 20 00 00 09",
            ou: "Anciens",
            title: "Alumni",
            status: "actif",
            password: PASSWORD_OF_ANCIEN,
            photo: None,
        },
    );

    group(
        &mut out,
        "dsi",
        "Direction des systèmes d'information",
        &[person_dn("jean.dupont"), person_dn("Paul.Martin")],
    );
    group(
        &mut out,
        "physique",
        "Département de physique",
        &[person_dn("marie.curie")],
    );
    let students: Vec<String> = (1..=STUDENT_COUNT)
        .map(|i| person_dn(&student_uid(i)))
        .collect();
    group(
        &mut out,
        "etudiants-l3",
        "Étudiants de L3 Informatique",
        &students,
    );
    out
}

/// A test CA and a server certificate (127.0.0.1, localhost) signed by it:
/// (CA PEM, server certificate PEM, server key PEM).
fn certificates() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Jaseur test LDAP CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().expect("CA key");
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server params");
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate().expect("server key");
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .expect("server certificate");
    (ca_cert.pem(), leaf_cert.pem(), leaf_key.serialize_pem())
}

fn slapd_conf(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "include /etc/ldap/schema/core.schema\n\
         include /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/nis.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\n\
         modulepath /usr/lib/ldap\n\
         moduleload back_mdb\n\
         pidfile {d}/slapd.pid\n\
         argsfile {d}/slapd.args\n\
         loglevel none\n\
         sizelimit 1000\n\
         TLSCACertificateFile {d}/ca.pem\n\
         TLSCertificateFile {d}/server.pem\n\
         TLSCertificateKeyFile {d}/server.key\n\
         \n\
         database mdb\n\
         suffix \"{SUFFIX}\"\n\
         rootdn \"{ROOT_DN}\"\n\
         rootpw {root}\n\
         directory {d}/db\n\
         maxsize 104857600\n\
         index objectClass eq\n\
         index uid,mail,employeeType,ou,member eq\n\
         index cn,sn,givenName,displayName eq,sub\n\
         limits dn.exact=\"{SERVICE_DN}\" size=unlimited time=unlimited\n\
         access to attrs=userPassword\n\
         \tby anonymous auth\n\
         \tby * none\n\
         access to *\n\
         \tby dn.exact=\"{SERVICE_DN}\" read\n\
         \tby users read\n\
         \tby * none\n",
        root = ssha(ROOT_PASSWORD, "admin"),
    )
}

/// A free port on 127.0.0.1 (bound, read, released).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A running `slapd` with the fixture directory, killed when dropped.
pub struct Slapd {
    pub port: u16,
    /// The test CA that signed the server certificate (PEM).
    pub ca_path: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Slapd {
    /// Start a fresh slapd on 127.0.0.1 on a free port with the fixture
    /// loaded; returns once it answers an anonymous bind.
    pub fn start() -> Slapd {
        let dir = tempfile::Builder::new()
            .prefix("jaseur-slapd-")
            .tempdir()
            .expect("temp dir");
        let p = dir.path();
        let (ca, cert, key) = certificates();
        std::fs::write(p.join("ca.pem"), ca).expect("write CA");
        std::fs::write(p.join("server.pem"), cert).expect("write certificate");
        std::fs::write(p.join("server.key"), key).expect("write key");
        std::fs::write(p.join("slapd.conf"), slapd_conf(p)).expect("write slapd.conf");
        std::fs::write(p.join("fixture.ldif"), fixture_ldif()).expect("write LDIF");
        std::fs::create_dir(p.join("db")).expect("db dir");
        let out = Command::new("/usr/sbin/slapadd")
            .arg("-q")
            .arg("-f")
            .arg(p.join("slapd.conf"))
            .arg("-l")
            .arg(p.join("fixture.ldif"))
            .output()
            .expect("run slapadd (apt-get install slapd)");
        assert!(
            out.status.success(),
            "slapadd failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut s = Slapd {
            port: 0,
            ca_path: p.join("ca.pem"),
            dir,
            child: None,
        };
        let mut failures = String::new();
        for _ in 0..5 {
            s.port = free_port();
            match s.launch() {
                Ok(()) => return s,
                // Someone else took the port in between: try another.
                Err((true, e)) => failures.push_str(&e),
                Err((false, e)) => panic!("slapd did not start:\n{failures}{e}"),
            }
        }
        panic!("slapd did not start:\n{failures}");
    }

    /// Spawn slapd on `self.port` and wait until it answers; on failure the
    /// process is gone and the error holds its output, and whether it is
    /// worth retrying (the port was busy).
    fn launch(&mut self) -> Result<(), (bool, String)> {
        let log_path = self.dir.path().join("slapd.log");
        let log = std::fs::File::create(&log_path).expect("slapd log");
        let err = log.try_clone().expect("slapd log");
        let child = Command::new("/usr/sbin/slapd")
            // `-d 0` keeps slapd in the foreground but silences even its
            // errors; `none` prints only the messages logged unconditionally.
            .arg("-d")
            .arg("none")
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{}/", self.port))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("spawn slapd (apt-get install slapd)");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                let log = self.log();
                return Err((
                    log.contains("Address already in use"),
                    format!(
                        "slapd on port {} exited early ({status}):\n{log}\n",
                        self.port
                    ),
                ));
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() && self.answers() {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(10) {
                self.kill();
                return Err((
                    false,
                    format!(
                        "slapd on port {} did not answer within 10 s:\n{}\n",
                        self.port,
                        self.log()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether an anonymous bind succeeds.
    fn answers(&self) -> bool {
        Command::new("ldapwhoami")
            .args(["-x", "-o", "nettimeout=2", "-H", &self.url()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// What slapd printed so far (this run).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// The temporary directory (configuration, certificates, database).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `ldap://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freeze slapd (SIGSTOP): connections stay open but nothing answers,
    /// like a directory that hangs.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaw it (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        if let Some(child) = &self.child {
            let ok = Command::new("kill")
                .arg(sig)
                .arg(child.id().to_string())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill {sig} slapd");
        }
    }

    /// SIGTERM and wait for exit (SIGKILL after 5 s); keeps the data.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let start = Instant::now();
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            if start.elapsed() > Duration::from_secs(5) {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Start again on the same port with the same data; waits until it
    /// answers (retrying while the port is still busy, up to ~10 s).
    pub fn restart(&mut self) {
        self.stop();
        let start = Instant::now();
        loop {
            match self.launch() {
                Ok(()) => return,
                Err((true, _)) if start.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err((_, e)) => panic!("slapd did not restart:\n{e}"),
            }
        }
    }

    /// TCP connections in state ESTABLISHED whose local port is `self.port`
    /// (the server side of client connections), from /proc/net/tcp{,6}.
    pub fn established_connections(&self) -> usize {
        established_on(self.port)
    }

    /// Run `ldapmodify` as the directory manager with `ldif` on stdin;
    /// panics with its output on failure.
    pub fn modify(&self, ldif: &str) {
        let mut child = Command::new("ldapmodify")
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ldapmodify (apt-get install ldap-utils)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("write LDIF");
        let out: Output = child.wait_with_output().expect("ldapmodify output");
        assert!(
            out.status.success(),
            "ldapmodify failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// An `[auth.ldap]` table pointing at this server, binding as the
    /// service account, with StartTLS and the test CA.
    pub fn auth_config(&self) -> String {
        format!(
            "[auth.ldap]\nurl = {}\nbase_dn = {}\nbind_dn = {}\nbind_password = {}\n\
             filter = {}\ntls_ca = {}\nstarttls = true\n",
            toml_str(&self.url()),
            toml_str(PEOPLE_DN),
            toml_str(SERVICE_DN),
            toml_str(SERVICE_PASSWORD),
            toml_str(ACTIVE_FILTER),
            toml_str(&self.ca_path.to_string_lossy()),
        )
    }
}

/// One row of /proc/net/tcp{,6}: local port, remote port, state, inode.
fn tcp_rows() -> Vec<(u16, u16, String, String)> {
    let port = |a: Option<&&str>| {
        a.and_then(|a| a.rsplit_once(':'))
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
    };
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|l| {
                    let w: Vec<&str> = l.split_whitespace().collect();
                    Some((
                        port(w.get(1))?,
                        port(w.get(2))?,
                        (*w.get(3)?).to_owned(),
                        (*w.get(9)?).to_owned(),
                    ))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// "01" in /proc/net/tcp.
const ESTABLISHED: &str = "01";

/// TCP connections in state ESTABLISHED whose local port is `port` (the
/// server side of clients' connections).
pub fn established_on(port: u16) -> usize {
    tcp_rows()
        .iter()
        .filter(|(local, _, state, _)| *local == port && state == ESTABLISHED)
        .count()
}

/// ESTABLISHED TCP connections of process `pid` to `port` (its sockets'
/// inodes matched against /proc/net/tcp{,6}): what one client holds open,
/// whatever other processes do.
pub fn connections_of(pid: u32, port: u16) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    let inodes: std::collections::HashSet<String> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    tcp_rows()
        .iter()
        .filter(|(_, remote, state, inode)| {
            *remote == port && state == ESTABLISHED && inodes.contains(inode)
        })
        .count()
}

/// The directory's XMPP domain in tests.
pub const DOMAIN: &str = "univ-lille.fr";

impl Slapd {
    /// A jaseur serving `localhost` (internal accounts) and `univ-lille.fr`
    /// with auth backend `backend` (a TOML value: `"\"ldap\""` or
    /// `"[\"internal\", \"ldap\"]"`) from this directory. `ldap_keys` are more
    /// lines for `[auth.ldap]`; `extra` must start with a table header.
    pub fn jaseur(&self, backend: &str, ldap_keys: &str, extra: &str) -> super::Server {
        let ldap = format!(
            "{}{}\n[domain.\"{DOMAIN}\"]\nauth_backend = {backend}\n{extra}",
            self.auth_config(),
            ldap_keys.trim_end()
        );
        super::Server::start_edited(|text| {
            text.replacen(
                "domains = [\"localhost\"]",
                &format!("domains = [\"localhost\", \"{DOMAIN}\"]"),
                1,
            ) + &ldap
        })
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.kill();
    }
}
