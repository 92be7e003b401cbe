//! TLS for client streams: certificates per domain chosen by SNI, a
//! self-signed fallback generated at first start, and reload on SIGHUP.

use crate::config::Config;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// Errors while loading certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("generating a self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

fn file_error(path: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// The crypto provider used everywhere (one provider only; see notes/crates.md).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What a certificate says about itself.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// DNS names from the subjectAltName extension.
    pub names: Vec<String>,
    pub not_after: SystemTime,
}

/// Read the names and expiry of a DER certificate.
pub fn inspect(der: &CertificateDer<'_>) -> Result<CertInfo, String> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der.as_ref()).map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    let secs = cert.validity().not_after.timestamp().max(0) as u64;
    Ok(CertInfo {
        names,
        not_after: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs),
    })
}

/// Whether a certificate name (possibly `*.x`) covers `host`.
pub fn name_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == host,
    }
}

/// A PEM certificate chain and key, loaded.
pub struct LoadedCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub info: CertInfo,
}

/// Load a certificate chain and key from PEM files.
pub fn load_pem(cert: &Path, key: &Path) -> Result<LoadedCert, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error(cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert, e))?;
    let first = chain
        .first()
        .ok_or_else(|| file_error(cert, "no certificate in file"))?;
    let info = inspect(first).map_err(|e| file_error(cert, e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
    Ok(LoadedCert { chain, key, info })
}

/// The names a served domain's certificate should cover.
fn wanted_names(domain: &str) -> Vec<String> {
    vec![domain.to_owned(), format!("*.{domain}")]
}

/// Where the generated certificate lives.
pub fn self_signed_paths(config: &Config) -> (PathBuf, PathBuf) {
    let dir = config.server.data_dir.join("certs");
    (dir.join("self-signed.pem"), dir.join("self-signed-key.pem"))
}

/// Load the self-signed certificate, generating it when missing or when it
/// does not cover every served domain.
fn self_signed(config: &Config) -> Result<LoadedCert, TlsError> {
    let (cert_path, key_path) = self_signed_paths(config);
    let needed: Vec<String> = config
        .server
        .domains
        .iter()
        .flat_map(|d| wanted_names(d))
        .collect();
    if cert_path.exists() && key_path.exists() {
        let loaded = load_pem(&cert_path, &key_path)?;
        if needed.iter().all(|n| loaded.info.names.contains(n)) {
            return Ok(loaded);
        }
    }
    let generated = rcgen::generate_simple_self_signed(needed.clone())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let dir = cert_path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
    write_private(&key_path, generated.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, generated.cert.pem()).map_err(|e| file_error(&cert_path, e))?;
    tracing::warn!(
        cert = %cert_path.display(),
        names = ?needed,
        "no certificate configured: generated a self-signed one (clients will warn; set [tls] cert and key for production)"
    );
    load_pem(&cert_path, &key_path)
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| file_error(path, e))?;
    f.write_all(data).map_err(|e| file_error(path, e))
}

/// Every certificate the server presents, by name.
struct CertSet {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    wildcards: Vec<(String, Arc<CertifiedKey>)>,
    default: Arc<CertifiedKey>,
    /// Each certificate's tls-server-end-point data, computed once: parsing
    /// the certificate at every login was a dozen allocations.
    end_points: Vec<(Arc<CertifiedKey>, Option<Vec<u8>>)>,
}

impl CertSet {
    fn load(config: &Config) -> Result<CertSet, TlsError> {
        let provider = provider();
        let mut by_name = HashMap::new();
        let mut wildcards = Vec::new();
        let mut default = None;
        let mut fallback: Option<(Arc<CertifiedKey>, CertInfo)> = None;
        for domain in &config.server.domains {
            let paths = config
                .domain
                .get(domain)
                .and_then(|d| d.tls_cert.clone().zip(d.tls_key.clone()))
                .or_else(|| config.tls.cert.clone().zip(config.tls.key.clone()));
            let certified = match paths {
                Some((c, k)) => certified(load_pem(&c, &k)?, &provider)?,
                None => match &fallback {
                    Some(f) => f.clone(),
                    None => {
                        let f = certified(self_signed(config)?, &provider)?;
                        fallback = Some(f.clone());
                        f
                    }
                },
            };
            default.get_or_insert_with(|| certified.0.clone());
            for name in &certified.1.names {
                if name.starts_with("*.") {
                    wildcards.push((name.clone(), certified.0.clone()));
                } else {
                    by_name.insert(name.clone(), certified.0.clone());
                }
            }
            by_name.entry(domain.clone()).or_insert(certified.0.clone());
        }
        let default = default.ok_or_else(|| TlsError::Generate("no domain configured".into()))?;
        let mut end_points: Vec<(Arc<CertifiedKey>, Option<Vec<u8>>)> = Vec::new();
        for key in by_name
            .values()
            .chain(wildcards.iter().map(|(_, k)| k))
            .chain(std::iter::once(&default))
        {
            if !end_points.iter().any(|(k, _)| Arc::ptr_eq(k, key)) {
                let hash = key.cert.first().and_then(end_point_hash);
                end_points.push((key.clone(), hash));
            }
        }
        Ok(CertSet {
            by_name,
            wildcards,
            default,
            end_points,
        })
    }

    fn pick(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        let Some(host) = sni.map(str::to_ascii_lowercase) else {
            return self.default.clone();
        };
        if let Some(c) = self.by_name.get(&host) {
            return c.clone();
        }
        for (pattern, c) in &self.wildcards {
            if name_matches(pattern, &host) {
                return c.clone();
            }
        }
        self.default.clone()
    }
}

fn certified(
    loaded: LoadedCert,
    provider: &CryptoProvider,
) -> Result<(Arc<CertifiedKey>, CertInfo), TlsError> {
    let key = provider.key_provider.load_private_key(loaded.key)?;
    Ok((Arc::new(CertifiedKey::new(loaded.chain, key)), loaded.info))
}

/// Chooses the certificate by SNI; swapped whole on reload.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertSetHandle>>,
}

/// Debug-printable wrapper (CertifiedKey is, CertSet's map is noisy).
struct CertSetHandle(CertSet);

impl std::fmt::Debug for CertSetHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CertSet({} names)", self.0.by_name.len())
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let set = match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        Some(set.0.pick(hello.server_name()))
    }
}

/// The TLS side of the server: a rustls config whose certificates can be reloaded.
#[derive(Clone)]
pub struct Tls {
    resolver: Arc<Resolver>,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl Tls {
    /// Load (or generate) the certificates and build the acceptor.
    pub fn new(config: &Config) -> Result<Tls, TlsError> {
        let set = CertSet::load(config)?;
        let resolver = Arc::new(Resolver {
            current: RwLock::new(Arc::new(CertSetHandle(set))),
        });
        let server_config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        Ok(Tls {
            resolver,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server_config)),
        })
    }

    /// Re-read the certificate files; existing sessions keep theirs.
    pub fn reload(&self, config: &Config) -> Result<(), TlsError> {
        let set = CertSet::load(config)?;
        let mut guard = match self.resolver.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(CertSetHandle(set));
        Ok(())
    }

    /// The tls-server-end-point data of the certificate presented for `sni`.
    pub fn end_point_binding(&self, sni: Option<&str>) -> Option<Vec<u8>> {
        let set = match self.resolver.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let key = set.0.pick(sni);
        set.0
            .end_points
            .iter()
            .find(|(k, _)| Arc::ptr_eq(k, &key))
            .and_then(|(_, hash)| hash.clone())
    }

    /// The acceptor for new TLS connections.
    pub fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }
}

/// tls-server-end-point channel-binding data (RFC 5929 §4.1): the hash of
/// our certificate, with the certificate's signature hash (SHA-256 for MD5,
/// SHA-1 and hash-less algorithms).
pub fn end_point_hash(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    use sha2::Digest;
    use x509_parser::prelude::*;
    let (_, parsed) = X509Certificate::from_der(cert.as_ref()).ok()?;
    let oid = parsed.signature_algorithm.algorithm.to_id_string();
    let data = cert.as_ref();
    Some(match oid.as_str() {
        "1.2.840.10045.4.3.3" | "1.2.840.113549.1.1.12" => sha2::Sha384::digest(data).to_vec(),
        "1.2.840.10045.4.3.4" | "1.2.840.113549.1.1.13" => sha2::Sha512::digest(data).to_vec(),
        _ => sha2::Sha256::digest(data).to_vec(),
    })
}

/// tls-exporter channel-binding data (RFC 9266), when the session allows it.
///
/// Only offered on TLS 1.3: on TLS 1.2 the exporter is unsafe without the
/// extended master secret, which we cannot see from here.
pub fn exporter(conn: &rustls::ServerConnection) -> Option<Vec<u8>> {
    if conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
        return None;
    }
    conn.export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matching() {
        assert!(name_matches("*.example.org", "conference.example.org"));
        assert!(!name_matches("*.example.org", "example.org"));
        assert!(!name_matches("*.example.org", "a.b.example.org"));
        assert!(name_matches("example.org", "example.org"));
    }

    #[test]
    fn generates_and_reuses_self_signed() {
        let dir = std::env::temp_dir().join(format!("jaseur-tls-{}", std::process::id()));
        let mut config = Config::default();
        config.server.data_dir = dir.clone();
        config.server.domains = vec!["a.example".into(), "b.example".into()];
        let tls = Tls::new(&config).expect("generated");
        let (cert, _) = self_signed_paths(&config);
        let first = std::fs::read(&cert).expect("written");
        tls.reload(&config).expect("reload");
        assert_eq!(
            std::fs::read(&cert).expect("still there"),
            first,
            "reused, not regenerated"
        );
        let info = load_pem(&cert, &self_signed_paths(&config).1)
            .expect("load")
            .info;
        assert!(info.names.contains(&"*.b.example".to_string()));
        config.server.domains.push("c.example".into());
        tls.reload(&config).expect("reload with a new domain");
        assert_ne!(std::fs::read(&cert).expect("rewritten"), first);
        let _ = std::fs::remove_dir_all(dir);
    }
}
