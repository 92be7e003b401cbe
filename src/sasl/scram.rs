//! SCRAM (RFC 5802, RFC 7677), with tls-exporter channel binding (RFC 9266): the server
//! side ([`ScramServer`]) and a small client side ([`ScramClient`]) for the load generator
//! and tests, built on the same HMAC and PBKDF2 helpers.

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use hmac::{Hmac, KeyInit, Mac};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

use super::{SaslError, saslprep};

const SALT_LEN: usize = 16;
/// RFC 5802 only asks for a nonce that is hard to predict; 24 random bytes is 192 bits.
const SERVER_NONCE_BYTES: usize = 24;
const TLS_EXPORTER: &str = "tls-exporter";
const TLS_SERVER_END_POINT: &str = "tls-server-end-point";

/// Hash function a SCRAM mechanism is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
}

impl Hash {
    fn output_len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha256 => 32,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => Sha1::digest(data).to_vec(),
            Hash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => mac::<Hmac<Sha1>>(key, data),
            Hash::Sha256 => mac::<Hmac<Sha256>>(key, data),
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0; self.output_len()];
        match self {
            Hash::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out),
            Hash::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out),
        }
        out
    }
}

fn mac<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC hashes over-long keys and pads short ones, so no key length is ever rejected;
    // this cannot fire whatever a peer sends.
    let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// What the server stores for one account and one hash: never the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// PBKDF2 salt.
    pub salt: Vec<u8>,
    /// H(ClientKey).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
}

impl ScramCredentials {
    /// Derive from a password (SASLprep applied inside) with PBKDF2.
    pub fn derive(
        hash: Hash,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, SaslError> {
        // The client's derivation, so that both sides share one PBKDF2 path.
        let keys = ClientKeys::derive(hash, password, salt, iterations)?;
        Ok(Self {
            iterations,
            salt: keys.salt,
            stored_key: hash.digest(&keys.client_key),
            server_key: keys.server_key,
        })
    }

    /// Check a cleartext password (as received with PLAIN) against these stored keys, in constant time.
    pub fn verify_password(&self, hash: Hash, password: &str) -> bool {
        let Ok(candidate) = Self::derive(hash, password, &self.salt, self.iterations) else {
            return false;
        };
        let same = candidate.stored_key.ct_eq(&self.stored_key)
            & candidate.server_key.ct_eq(&self.server_key);
        same.into()
    }

    /// Deterministic fake credentials for a user that does not exist, so the exchange looks the same.
    pub fn fake(hash: Hash, username: &str, server_secret: &[u8], iterations: u32) -> Self {
        // A stable salt per username stops an attacker from spotting unknown users by
        // asking twice and seeing the salt change.
        let mut salt = hash.hmac(server_secret, username.as_bytes());
        salt.truncate(SALT_LEN);
        // The NUL separator cannot occur in a SASLprep'd username, so these never collide with the salt input.
        let key =
            |label: &[u8]| hash.hmac(server_secret, &[label, b"\0", username.as_bytes()].concat());
        Self {
            iterations,
            salt,
            stored_key: key(b"stored-key"),
            server_key: key(b"server-key"),
        }
    }
}

/// Generate a random 16-byte salt.
pub fn random_salt() -> Vec<u8> {
    let mut salt = vec![0; SALT_LEN];
    rand::fill(&mut salt[..]);
    salt
}

/// Channel-binding facts about the connection the exchange runs on.
#[derive(Debug, Clone, Default)]
pub struct ChannelBinding {
    /// tls-exporter data (RFC 9266: 32 bytes exported with label "EXPORTER-Channel-Binding", no context), when the connection can give it.
    pub tls_exporter: Option<Vec<u8>>,
    /// tls-server-end-point data (RFC 5929 §4.1: the hash of our certificate), which XEP-0440 requires servers to offer.
    pub tls_server_end_point: Option<Vec<u8>>,
    /// Whether the server advertised any -PLUS mechanism on this connection (a client sending "y" then signals a downgrade attack).
    pub plus_advertised: bool,
}

/// Parsed client-first-message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// Authentication identity, unescaped (=2C, =3D) and SASLprep'd.
    pub username: String,
    /// Requested authorization identity from the GS2 header, unescaped.
    pub authzid: Option<String>,
}

enum State {
    Initial,
    GotClientFirst {
        first_bare: String,
        /// GS2 header followed by channel-binding data: what c= must decode to.
        cbind_input: Vec<u8>,
        client_nonce: String,
    },
    SentServerFirst {
        /// client-first-message-bare "," server-first-message ",".
        auth_prefix: String,
        cbind_input: Vec<u8>,
        nonce: String,
        creds: ScramCredentials,
        known: bool,
    },
    /// Finished, successfully or not: nothing more is accepted.
    Done,
}

/// One SCRAM exchange, server side.
pub struct ScramServer {
    hash: Hash,
    plus: bool,
    cb: ChannelBinding,
    state: State,
    #[cfg(test)]
    fixed_nonce_suffix: Option<String>,
}

fn malformed<T>(why: &'static str) -> Result<T, SaslError> {
    Err(SaslError::MalformedRequest(why))
}

/// Undo RFC 5802 saslname escaping; any '=' not starting "=2C" or "=3D" is an error.
fn unescape(s: &str) -> Result<String, SaslError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return malformed("bad escape in SCRAM name"),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return malformed("empty SCRAM name");
    }
    Ok(out)
}

/// Unknown optional extensions must be ignored (RFC 5802 §5.1), but they still have to be
/// attr=value and must not smuggle in a second copy of an attribute we act on.
fn check_extension(ext: &str, reserved: &[u8]) -> Result<(), SaslError> {
    match ext.as_bytes() {
        [k, b'=', ..] if k.is_ascii_alphabetic() && !reserved.contains(k) => Ok(()),
        _ => malformed("bad SCRAM attribute"),
    }
}

impl ScramServer {
    /// `plus` = the client chose the -PLUS variant of the mechanism.
    pub fn new(hash: Hash, plus: bool, cb: ChannelBinding) -> Self {
        Self {
            hash,
            plus,
            cb,
            state: State::Initial,
            #[cfg(test)]
            fixed_nonce_suffix: None,
        }
    }

    #[cfg(test)]
    fn with_nonce_suffix(mut self, suffix: &str) -> Self {
        self.fixed_nonce_suffix = Some(suffix.to_owned());
        self
    }

    fn nonce_suffix(&mut self) -> String {
        #[cfg(test)]
        if let Some(s) = self.fixed_nonce_suffix.take() {
            return s;
        }
        let mut bytes = [0; SERVER_NONCE_BYTES];
        rand::fill(&mut bytes[..]);
        B64.encode(bytes)
    }

    /// Step 1: parse client-first-message.
    pub fn client_first(&mut self, msg: &[u8]) -> Result<ClientFirst, SaslError> {
        // Whatever happens below, a failed exchange must not be resumable.
        if !matches!(
            std::mem::replace(&mut self.state, State::Done),
            State::Initial
        ) {
            return malformed("unexpected client-first-message");
        }
        let Ok(text) = std::str::from_utf8(msg) else {
            return malformed("SCRAM message is not UTF-8");
        };
        let mut parts = text.splitn(3, ',');
        let (Some(flag), Some(authz), Some(bare)) = (parts.next(), parts.next(), parts.next())
        else {
            return malformed("missing GS2 header");
        };
        let cb_data: &[u8] = match (flag, flag.strip_prefix("p=")) {
            ("n", _) if !self.plus => &[],
            // The client would have used channel binding had it seen a -PLUS offer, so
            // something between us stripped it (RFC 5802 §6).
            ("y", _) if !self.plus && self.cb.plus_advertised => {
                return Err(SaslError::NotAuthorized);
            }
            ("y", _) if !self.plus => &[],
            ("n" | "y", _) => return malformed("-PLUS mechanism used without channel binding"),
            (_, Some(_)) if !self.plus => {
                return malformed("channel binding requested with a non-PLUS mechanism");
            }
            (_, Some(TLS_EXPORTER)) => match &self.cb.tls_exporter {
                Some(data) => data,
                None => return malformed("tls-exporter is not available on this connection"),
            },
            (_, Some(TLS_SERVER_END_POINT)) => match &self.cb.tls_server_end_point {
                Some(data) => data,
                None => {
                    return malformed("tls-server-end-point is not available on this connection");
                }
            },
            (_, Some(name))
                if !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') =>
            {
                return Err(SaslError::UnsupportedChannelBinding);
            }
            (_, Some(_)) => return malformed("bad channel-binding name"),
            _ => return malformed("bad GS2 channel-binding flag"),
        };
        let authzid = match authz {
            "" => None,
            a => match a.strip_prefix("a=") {
                Some(name) => Some(unescape(name)?),
                None => return malformed("bad GS2 authzid"),
            },
        };
        if bare.starts_with("m=") {
            return malformed("mandatory SCRAM extensions are not supported");
        }
        let mut attrs = bare.split(',');
        let Some(user) = attrs.next().and_then(|a| a.strip_prefix("n=")) else {
            return malformed("missing SCRAM username");
        };
        let Some(client_nonce) = attrs.next().and_then(|a| a.strip_prefix("r=")) else {
            return malformed("missing SCRAM nonce");
        };
        for ext in attrs {
            check_extension(ext, b"mnr")?;
        }
        if client_nonce.is_empty() || !client_nonce.bytes().all(|b| b.is_ascii_graphic()) {
            return malformed("bad SCRAM nonce");
        }
        let username = saslprep(&unescape(user)?)?;
        if username.is_empty() {
            return malformed("empty SCRAM username");
        }
        let mut cbind_input = format!("{flag},{authz},").into_bytes();
        cbind_input.extend_from_slice(cb_data);
        self.state = State::GotClientFirst {
            first_bare: bare.to_owned(),
            cbind_input,
            client_nonce: client_nonce.to_owned(),
        };
        Ok(ClientFirst { username, authzid })
    }

    /// Step 2: with the credentials the caller loaded (`known` = false when they are `fake`), return server-first-message.
    pub fn server_first(
        &mut self,
        creds: ScramCredentials,
        known: bool,
    ) -> Result<Vec<u8>, SaslError> {
        let State::GotClientFirst {
            first_bare,
            cbind_input,
            client_nonce,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return malformed("server-first-message out of order");
        };
        let nonce = format!("{client_nonce}{}", self.nonce_suffix());
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&creds.salt),
            creds.iterations
        );
        self.state = State::SentServerFirst {
            auth_prefix: format!("{first_bare},{server_first},"),
            cbind_input,
            nonce,
            creds,
            known,
        };
        Ok(server_first.into_bytes())
    }

    /// Step 3: check client-final-message; on success return server-final-message "v=...".
    pub fn client_final(&mut self, msg: &[u8]) -> Result<Vec<u8>, SaslError> {
        let State::SentServerFirst {
            auth_prefix,
            cbind_input,
            nonce,
            creds,
            known,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return malformed("unexpected client-final-message");
        };
        let Ok(text) = std::str::from_utf8(msg) else {
            return malformed("SCRAM message is not UTF-8");
        };
        let Some((without_proof, proof)) = text.rsplit_once(",p=") else {
            return malformed("missing SCRAM proof");
        };
        if proof.contains(',') {
            return malformed("SCRAM proof must be the last attribute");
        }
        let mut attrs = without_proof.split(',');
        let Some(cbind) = attrs.next().and_then(|a| a.strip_prefix("c=")) else {
            return malformed("missing SCRAM channel binding");
        };
        let Some(r) = attrs.next().and_then(|a| a.strip_prefix("r=")) else {
            return malformed("missing SCRAM nonce");
        };
        for ext in attrs {
            check_extension(ext, b"cpr")?;
        }
        let (Ok(cbind), Ok(proof)) = (B64.decode(cbind), B64.decode(proof)) else {
            return malformed("bad base64 in SCRAM message");
        };

        let auth_message = [auth_prefix.as_bytes(), without_proof.as_bytes()].concat();
        let client_signature = self.hash.hmac(&creds.stored_key, &auth_message);
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        // Every check is folded into one Choice so that neither timing nor the error tells
        // an attacker which part failed, or whether the user exists.
        let ok = Choice::from(u8::from(known))
            & Choice::from(u8::from(proof.len() == client_signature.len()))
            & self.hash.digest(&client_key).ct_eq(&creds.stored_key)
            & cbind.ct_eq(&cbind_input)
            & r.as_bytes().ct_eq(nonce.as_bytes());
        if !bool::from(ok) {
            return Err(SaslError::NotAuthorized);
        }
        let server_signature = self.hash.hmac(&creds.server_key, &auth_message);
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

/// A client's random nonce: 18 bytes, 24 characters of base64.
const CLIENT_NONCE_BYTES: usize = 18;

/// The GS2 channel-binding flag a client sends (RFC 5802 §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientBinding {
    /// `n`: the client does not do channel binding.
    None,
    /// `y`: the client could, but the server offered no -PLUS mechanism.
    NotOffered,
    /// `p=tls-exporter` with the connection's exporter data (RFC 9266), for a -PLUS mechanism.
    TlsExporter(Vec<u8>),
}

/// What a client keeps from PBKDF2 for one password, hash, salt and iteration count: with
/// them it logs in again without running PBKDF2, as real clients do.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientKeys {
    /// The hash they were derived with.
    pub hash: Hash,
    /// The salt the server gave.
    pub salt: Vec<u8>,
    /// The iteration count the server gave.
    pub iterations: u32,
    /// HMAC(SaltedPassword, "Client Key"): enough to log in, so kept out of `Debug`.
    pub client_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKeys")
            .field("hash", &self.hash)
            .field("salt", &B64.encode(&self.salt))
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ClientKeys {
    /// Derive with PBKDF2 (SASLprep applied to the password inside).
    pub fn derive(
        hash: Hash,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, SaslError> {
        if iterations == 0 {
            return malformed("SCRAM iteration count must be positive");
        }
        let password = saslprep(password)?;
        let salted = hash.salted_password(password.as_bytes(), salt, iterations);
        Ok(Self {
            hash,
            salt: salt.to_vec(),
            iterations,
            client_key: hash.hmac(&salted, b"Client Key"),
            server_key: hash.hmac(&salted, b"Server Key"),
        })
    }

    /// Whether these keys answer this server-first-message (same hash, salt and count).
    pub fn fits(&self, first: &ServerFirst) -> bool {
        self.hash == first.hash && self.salt == first.salt && self.iterations == first.iterations
    }

    /// ClientProof for `auth_message`, and the ServerSignature the server must answer.
    fn sign(&self, auth_message: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let hash = self.hash;
        let client_signature = hash.hmac(&hash.digest(&self.client_key), auth_message);
        let proof = self
            .client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        (proof, hash.hmac(&self.server_key, auth_message))
    }
}

/// RFC 5802 saslname escaping (the inverse of `unescape`).
fn escape(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// One SCRAM exchange, client side: [`client_first`](Self::client_first), then
/// [`server_first`](Self::server_first) on the server's challenge, then
/// [`client_final`](Self::client_final) with the keys, then [`ClientFinal::verify`] on the
/// server-final-message. No state changes between steps, so it is shared, not consumed.
#[derive(Debug, Clone)]
pub struct ScramClient {
    hash: Hash,
    /// `n`, `y` or `p=tls-exporter`: the GS2 header's first field.
    flag: &'static str,
    /// The GS2 header's authzid field (`a=NAME` or empty), escaped.
    authz: String,
    /// Channel-binding data appended to the GS2 header in c=.
    cb_data: Vec<u8>,
    /// client-first-message-bare.
    first_bare: String,
    nonce: String,
}

impl ScramClient {
    /// An exchange for `username` (SASLprep'd and escaped inside) with a random nonce.
    pub fn new(hash: Hash, username: &str, binding: ClientBinding) -> Result<Self, SaslError> {
        let mut bytes = [0; CLIENT_NONCE_BYTES];
        rand::fill(&mut bytes[..]);
        Self::with_nonce(hash, username, binding, &B64.encode(bytes))
    }

    /// An exchange with a chosen nonce (printable ASCII without commas), for test vectors.
    pub fn with_nonce(
        hash: Hash,
        username: &str,
        binding: ClientBinding,
        nonce: &str,
    ) -> Result<Self, SaslError> {
        if nonce.is_empty() || !nonce.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return malformed("bad SCRAM nonce");
        }
        let username = saslprep(username)?;
        if username.is_empty() {
            return malformed("empty SCRAM username");
        }
        let (flag, cb_data) = match binding {
            ClientBinding::None => ("n", Vec::new()),
            ClientBinding::NotOffered => ("y", Vec::new()),
            ClientBinding::TlsExporter(data) => ("p=tls-exporter", data),
        };
        Ok(Self {
            hash,
            flag,
            authz: String::new(),
            cb_data,
            first_bare: format!("n={},r={nonce}", escape(&username)),
            nonce: nonce.to_owned(),
        })
    }

    /// Ask to act as `authzid` (escaped inside).
    pub fn with_authzid(mut self, authzid: &str) -> Result<Self, SaslError> {
        if authzid.is_empty() {
            return malformed("empty SCRAM authorization identity");
        }
        self.authz = format!("a={}", escape(authzid));
        Ok(self)
    }

    /// The GS2 header: flag, authzid and the trailing comma.
    fn gs2_header(&self) -> String {
        format!("{},{},", self.flag, self.authz)
    }

    /// The client-first-message.
    pub fn client_first(&self) -> String {
        format!("{}{}", self.gs2_header(), self.first_bare)
    }

    /// Parse the server-first-message: a nonce extending ours, a salt, a positive
    /// iteration count. A mandatory extension (m=) or an error (e=) ends the exchange.
    pub fn server_first(&self, msg: &[u8]) -> Result<ServerFirst, SaslError> {
        let Ok(text) = std::str::from_utf8(msg) else {
            return malformed("SCRAM message is not UTF-8");
        };
        let mut attrs = text.split(',');
        let first = attrs.next().unwrap_or_default();
        // e= is not in server-first-message's grammar, but a refusal is what it means.
        if first.starts_with("e=") {
            return Err(SaslError::NotAuthorized);
        }
        if first.starts_with("m=") {
            return malformed("mandatory SCRAM extensions are not supported");
        }
        let Some(nonce) = first.strip_prefix("r=") else {
            return malformed("missing SCRAM nonce");
        };
        let Some(salt) = attrs.next().and_then(|a| a.strip_prefix("s=")) else {
            return malformed("missing SCRAM salt");
        };
        let Some(iterations) = attrs.next().and_then(|a| a.strip_prefix("i=")) else {
            return malformed("missing SCRAM iteration count");
        };
        for ext in attrs {
            check_extension(ext, b"emrsi")?;
        }
        // The server's part must be there: a nonce it did not extend could be replayed.
        if nonce.len() <= self.nonce.len()
            || !nonce.starts_with(&self.nonce)
            || !nonce.bytes().all(|b| b.is_ascii_graphic())
        {
            return malformed("the server nonce does not extend ours");
        }
        let Ok(salt) = B64.decode(salt) else {
            return malformed("bad base64 in SCRAM salt");
        };
        let iterations = match iterations.parse::<u32>() {
            Ok(0) => return malformed("SCRAM iteration count must be positive"),
            Ok(i) => i,
            Err(_) => return malformed("bad SCRAM iteration count"),
        };
        Ok(ServerFirst {
            hash: self.hash,
            nonce: nonce.to_owned(),
            salt,
            iterations,
            message: text.to_owned(),
        })
    }

    /// The client-final-message, with the proof made from `keys` (which must fit `first`).
    pub fn client_final(
        &self,
        first: &ServerFirst,
        keys: &ClientKeys,
    ) -> Result<ClientFinal, SaslError> {
        if !keys.fits(first) {
            return malformed("SCRAM keys derived for another hash, salt or iteration count");
        }
        let mut cbind_input = self.gs2_header().into_bytes();
        cbind_input.extend_from_slice(&self.cb_data);
        let without_proof = format!("c={},r={}", B64.encode(cbind_input), first.nonce);
        Ok(self.finish(first, keys, without_proof))
    }

    /// client-final-message from its part before the proof (tests tamper with that part).
    fn finish(&self, first: &ServerFirst, keys: &ClientKeys, without_proof: String) -> ClientFinal {
        let auth_message = format!("{},{},{without_proof}", self.first_bare, first.message);
        let (proof, server_signature) = keys.sign(auth_message.as_bytes());
        ClientFinal {
            message: format!("{without_proof},p={}", B64.encode(proof)),
            server_signature,
        }
    }
}

/// What a client takes from the server-first-message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFirst {
    /// The exchange's hash (the client's own).
    pub hash: Hash,
    /// The client's nonce followed by the server's.
    pub nonce: String,
    /// PBKDF2 salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iteration count, above 0.
    pub iterations: u32,
    /// The message itself, part of the AuthMessage.
    message: String,
}

/// The client-final-message, and the server signature it calls for.
#[derive(Debug, Clone)]
pub struct ClientFinal {
    /// What to send.
    pub message: String,
    server_signature: Vec<u8>,
}

impl ClientFinal {
    /// Check the server-final-message: the server proves it knows the keys (v=), or
    /// refuses (e=, [`SaslError::NotAuthorized`], as is a wrong signature).
    pub fn verify(&self, server_final: &[u8]) -> Result<(), SaslError> {
        let Ok(text) = std::str::from_utf8(server_final) else {
            return malformed("SCRAM message is not UTF-8");
        };
        let mut attrs = text.split(',');
        let first = attrs.next().unwrap_or_default();
        if first.starts_with("e=") {
            return Err(SaslError::NotAuthorized);
        }
        let Some(verifier) = first.strip_prefix("v=") else {
            return malformed("missing SCRAM server signature");
        };
        for ext in attrs {
            check_extension(ext, b"ev")?;
        }
        let Ok(signature) = B64.decode(verifier) else {
            return malformed("bad base64 in SCRAM server signature");
        };
        if bool::from(signature.ct_eq(&self.server_signature)) {
            Ok(())
        } else {
            Err(SaslError::NotAuthorized)
        }
    }
}

#[cfg(test)]
// A failing unwrap is how a test reports an unexpected error.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use sasl::client::Mechanism as _;
    use sasl::client::mechanisms::Scram;
    use sasl::common::ChannelBinding as ClientCb;
    use sasl::common::scram::{ScramProvider, Sha1 as CSha1, Sha256 as CSha256};

    const EXPORTER: [u8; 32] = [7; 32];

    fn plus_cb() -> ChannelBinding {
        ChannelBinding {
            tls_exporter: Some(EXPORTER.to_vec()),
            tls_server_end_point: None,
            plus_advertised: true,
        }
    }

    fn rfc_example(
        hash: Hash,
        client_first: &str,
        suffix: &str,
        salt: &str,
        server_first: &str,
        client_final: &str,
        server_final: &str,
    ) {
        let mut s =
            ScramServer::new(hash, false, ChannelBinding::default()).with_nonce_suffix(suffix);
        let first = s.client_first(client_first.as_bytes()).unwrap();
        assert_eq!(
            first,
            ClientFirst {
                username: "user".into(),
                authzid: None
            }
        );
        let salt = B64.decode(salt).unwrap();
        let creds = ScramCredentials::derive(hash, "pencil", &salt, 4096).unwrap();
        assert_eq!(
            s.server_first(creds, true).unwrap(),
            server_first.as_bytes()
        );
        assert_eq!(
            s.client_final(client_final.as_bytes()).unwrap(),
            server_final.as_bytes()
        );

        // The client side gives the same messages and accepts the server's signature.
        let nonce = client_first.strip_prefix("n,,n=user,r=").unwrap();
        let client = ScramClient::with_nonce(hash, "user", ClientBinding::None, nonce).unwrap();
        assert_eq!(client.client_first(), client_first);
        let first = client.server_first(server_first.as_bytes()).unwrap();
        assert_eq!((first.salt.as_slice(), first.iterations), (&salt[..], 4096));
        let keys = ClientKeys::derive(hash, "pencil", &first.salt, first.iterations).unwrap();
        let fin = client.client_final(&first, &keys).unwrap();
        assert_eq!(fin.message, client_final);
        fin.verify(server_final.as_bytes()).unwrap();
        // A signature that is not the expected one, or an error, is a refusal.
        let mut forged = B64.decode(&server_final[2..]).unwrap();
        forged[0] ^= 1;
        let forged = format!("v={}", B64.encode(forged));
        assert_eq!(fin.verify(forged.as_bytes()), Err(SaslError::NotAuthorized));
        assert_eq!(
            fin.verify(b"e=invalid-proof"),
            Err(SaslError::NotAuthorized)
        );
    }

    #[test]
    fn rfc5802_sha1_example() {
        rfc_example(
            Hash::Sha1,
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "3rfcNHYJY1ZVvWVs7j",
            "QSXCR+Q6sek8bf92",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        );
    }

    #[test]
    fn rfc7677_sha256_example() {
        rfc_example(
            Hash::Sha256,
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "W22ZaJ0SNY7soEsUEjb6gQ==",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        );
    }

    /// Full exchange against the independent `sasl` crate client; the client also checks our v=.
    fn interop<P: ScramProvider>(
        hash: Hash,
        client_cb: ClientCb,
        client_password: &str,
        plus: bool,
        server_cb: ChannelBinding,
        known: bool,
    ) -> Result<(), SaslError> {
        let mut client = Scram::<P>::new("user", client_password, client_cb).unwrap();
        assert_eq!(client.name().ends_with("-PLUS"), plus);
        let mut server = ScramServer::new(hash, plus, server_cb);
        assert_eq!(server.client_first(&client.initial())?.username, "user");
        let creds = ScramCredentials::derive(hash, "pencil", &random_salt(), 1000)?;
        let server_first = server.server_first(creds, known)?;
        let client_final = client.response(&server_first).unwrap();
        let server_final = server.client_final(&client_final)?;
        client.success(&server_final).unwrap();
        Ok(())
    }

    #[test]
    fn interop_with_sasl_crate() {
        let none = ChannelBinding::default;
        let cb = || ClientCb::TlsExporter(EXPORTER.to_vec());
        interop::<CSha1>(Hash::Sha1, ClientCb::None, "pencil", false, none(), true).unwrap();
        interop::<CSha256>(Hash::Sha256, ClientCb::None, "pencil", false, none(), true).unwrap();
        interop::<CSha1>(Hash::Sha1, cb(), "pencil", true, plus_cb(), true).unwrap();
        interop::<CSha256>(Hash::Sha256, cb(), "pencil", true, plus_cb(), true).unwrap();
        // "y" is fine when we never offered -PLUS, and when we offered it but the client
        // still picked the plain variant with "n".
        interop::<CSha256>(
            Hash::Sha256,
            ClientCb::Unsupported,
            "pencil",
            false,
            none(),
            true,
        )
        .unwrap();
        interop::<CSha256>(
            Hash::Sha256,
            ClientCb::None,
            "pencil",
            false,
            plus_cb(),
            true,
        )
        .unwrap();
    }

    #[test]
    fn interop_failures() {
        let cb = |d: [u8; 32]| ClientCb::TlsExporter(d.to_vec());
        let no = Err(SaslError::NotAuthorized);
        let none = ChannelBinding::default;
        assert_eq!(
            interop::<CSha1>(Hash::Sha1, ClientCb::None, "pencil!", false, none(), true),
            no
        );
        assert_eq!(
            interop::<CSha256>(Hash::Sha256, cb(EXPORTER), "wrong", true, plus_cb(), true),
            no
        );
        // Right password but the caller said the user is unknown.
        assert_eq!(
            interop::<CSha256>(Hash::Sha256, ClientCb::None, "pencil", false, none(), false),
            no
        );
        // Different TLS session on each side: a MITM.
        assert_eq!(
            interop::<CSha256>(Hash::Sha256, cb([8; 32]), "pencil", true, plus_cb(), true),
            no
        );
        assert_eq!(
            interop::<CSha1>(
                Hash::Sha1,
                ClientCb::Unsupported,
                "pencil",
                false,
                plus_cb(),
                true
            ),
            no
        );
    }

    #[test]
    fn unknown_user_fails_only_at_the_end() {
        let creds = ScramCredentials::fake(Hash::Sha256, "nobody", b"secret", 4096);
        assert_eq!(
            creds,
            ScramCredentials::fake(Hash::Sha256, "nobody", b"secret", 4096)
        );
        assert_ne!(
            creds.salt,
            ScramCredentials::fake(Hash::Sha256, "other", b"secret", 4096).salt
        );
        assert_ne!(
            creds.salt,
            ScramCredentials::fake(Hash::Sha256, "nobody", b"other", 4096).salt
        );
        assert_eq!(
            (
                creds.salt.len(),
                creds.stored_key.len(),
                creds.server_key.len()
            ),
            (16, 32, 32)
        );
        let sha1 = ScramCredentials::fake(Hash::Sha1, "nobody", b"secret", 4096);
        assert_eq!((sha1.salt.len(), sha1.stored_key.len()), (16, 20));

        let client = ScramClient::new(Hash::Sha256, "nobody", ClientBinding::None).unwrap();
        let mut server = ScramServer::new(Hash::Sha256, false, ChannelBinding::default());
        server
            .client_first(client.client_first().as_bytes())
            .unwrap();
        let first = client
            .server_first(&server.server_first(creds, false).unwrap())
            .unwrap();
        let keys =
            ClientKeys::derive(Hash::Sha256, "pencil", &first.salt, first.iterations).unwrap();
        let client_final = client.client_final(&first, &keys).unwrap();
        assert_eq!(
            server.client_final(client_final.message.as_bytes()),
            Err(SaslError::NotAuthorized)
        );
    }

    /// A client for "user" with the nonce "abc".
    fn client(hash: Hash, binding: ClientBinding, authzid: Option<&str>) -> ScramClient {
        let c = ScramClient::with_nonce(hash, "user", binding, "abc").unwrap();
        match authzid {
            Some(a) => c.with_authzid(a).unwrap(),
            None => c,
        }
    }

    /// An exchange whose client-final-message has its c= and r= passed through `tamper`
    /// but still a valid proof, so that the test shows those fields are checked on their own.
    fn hand_final(
        mut server: ScramServer,
        client: ScramClient,
        tamper: impl Fn(&str, &str) -> (String, String),
    ) -> Result<Vec<u8>, SaslError> {
        let hash = server.hash;
        server.client_first(client.client_first().as_bytes())?;
        let salt = random_salt();
        let creds = ScramCredentials::derive(hash, "pencil", &salt, 100)?;
        let first = client.server_first(&server.server_first(creds, true)?)?;
        let keys = ClientKeys::derive(hash, "pencil", &first.salt, first.iterations)?;
        let mut cbind = client.gs2_header().into_bytes();
        cbind.extend_from_slice(&client.cb_data);
        let (c, r) = tamper(&B64.encode(cbind), &first.nonce);
        let fin = client.finish(&first, &keys, format!("c={c},r={r}"));
        let server_final = server.client_final(fin.message.as_bytes())?;
        fin.verify(&server_final)?;
        Ok(server_final)
    }

    #[test]
    fn hand_built_exchanges() {
        let plain = || ScramServer::new(Hash::Sha1, false, ChannelBinding::default());
        let plus = || ScramServer::new(Hash::Sha256, true, plus_cb());
        let n = |authzid| client(Hash::Sha1, ClientBinding::None, authzid);
        let p = |authzid| {
            client(
                Hash::Sha256,
                ClientBinding::TlsExporter(EXPORTER.to_vec()),
                authzid,
            )
        };
        assert_eq!(n(None).client_first(), "n,,n=user,r=abc");
        assert_eq!(
            p(Some("juliet")).client_first(),
            "p=tls-exporter,a=juliet,n=user,r=abc"
        );
        assert_eq!(
            ScramClient::with_nonce(Hash::Sha1, "a=b,c", ClientBinding::None, "n")
                .unwrap()
                .client_first(),
            "n,,n=a=3Db=2Cc,r=n"
        );
        let keep = |c: &str, r: &str| (c.to_owned(), r.to_owned());
        assert!(hand_final(plain(), n(None), keep).is_ok());
        assert!(hand_final(plus(), p(None), keep).is_ok());
        assert!(hand_final(plus(), p(Some("juliet")), keep).is_ok());

        let no = Err(SaslError::NotAuthorized);
        let biws = |_: &str, r: &str| ("biws".to_owned(), r.to_owned());
        let y = |_: &str, r: &str| ("eSws".to_owned(), r.to_owned());
        let short_nonce = |c: &str, r: &str| (c.to_owned(), r[..r.len() - 1].to_owned());
        let other_nonce = |c: &str, r: &str| (c.to_owned(), format!("{r}x"));
        assert_eq!(hand_final(plain(), n(None), y), no);
        assert_eq!(hand_final(plain(), n(Some("x")), biws), no);
        assert_eq!(hand_final(plus(), p(None), biws), no);
        assert_eq!(hand_final(plain(), n(None), short_nonce), no);
        assert_eq!(hand_final(plus(), p(None), other_nonce), no);
    }

    /// Our client against our server: both hashes, with and without channel binding.
    #[test]
    fn client_and_server_agree() {
        let none = ChannelBinding::default;
        let cases = [
            (Hash::Sha1, ClientBinding::None, false, none()),
            (Hash::Sha256, ClientBinding::None, false, plus_cb()),
            (Hash::Sha256, ClientBinding::NotOffered, false, none()),
            (
                Hash::Sha1,
                ClientBinding::TlsExporter(EXPORTER.to_vec()),
                true,
                plus_cb(),
            ),
        ];
        for (hash, binding, plus, cb) in cases {
            let client = ScramClient::new(hash, "us,er=", binding.clone())
                .unwrap()
                .with_authzid("a,b")
                .unwrap();
            let mut server = ScramServer::new(hash, plus, cb);
            let first = server
                .client_first(client.client_first().as_bytes())
                .unwrap();
            assert_eq!(first.username, "us,er=");
            assert_eq!(first.authzid.as_deref(), Some("a,b"));
            let creds = ScramCredentials::derive(hash, "pencil", &random_salt(), 64).unwrap();
            let server_first = client
                .server_first(&server.server_first(creds, true).unwrap())
                .unwrap();
            let keys =
                ClientKeys::derive(hash, "pencil", &server_first.salt, server_first.iterations)
                    .unwrap();
            assert!(keys.fits(&server_first));
            let fin = client.client_final(&server_first, &keys).unwrap();
            let server_final = server.client_final(fin.message.as_bytes()).unwrap();
            assert_eq!(fin.verify(&server_final), Ok(()), "{binding:?}");
            // Keys of another salt, count or hash are refused before anything is sent.
            let other = ClientKeys::derive(hash, "pencil", b"other", 64).unwrap();
            assert!(!other.fits(&server_first));
            assert!(client.client_final(&server_first, &other).is_err());
            // And the key stays out of debug output.
            assert!(!format!("{keys:?}").contains("client_key"));
        }
    }

    #[test]
    fn client_refuses_bad_server_first_messages() {
        let c = client(Hash::Sha256, ClientBinding::None, None);
        let ok = c
            .server_first(b"r=abcXYZ,s=QSXCR+Q6sek8bf92,i=4096,x=ext")
            .unwrap();
        assert_eq!((ok.nonce.as_str(), ok.iterations), ("abcXYZ", 4096));
        for bad in [
            &b""[..],
            b"\xFF",
            // Not our nonce, or not extended.
            b"r=abdXYZ,s=QSXCR+Q6sek8bf92,i=4096",
            b"r=abc,s=QSXCR+Q6sek8bf92,i=4096",
            b"r=ab,s=QSXCR+Q6sek8bf92,i=4096",
            b"r=abcX Y,s=QSXCR+Q6sek8bf92,i=4096",
            b"r=abcX,s=QSXCR+Q6sek8bf92",
            b"r=abcX,s=QSXCR+Q6sek8bf92,i=0",
            b"r=abcX,s=QSXCR+Q6sek8bf92,i=-1",
            b"r=abcX,s=QSXCR+Q6sek8bf92,i=99999999999",
            b"r=abcX,s=not base64!,i=1",
            b"r=abcX,i=1,s=QSXCR+Q6sek8bf92",
            b"m=x,r=abcX,s=QSXCR+Q6sek8bf92,i=1",
            b"r=abcX,s=QSXCR+Q6sek8bf92,i=1,r=other",
            b"r=abcX,s=QSXCR+Q6sek8bf92,i=1,garbage",
        ] {
            assert!(
                matches!(c.server_first(bad), Err(SaslError::MalformedRequest(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            c.server_first(b"e=unknown-user"),
            Err(SaslError::NotAuthorized)
        );
        let first = c.server_first(b"r=abcX,s=QSXCR+Q6sek8bf92,i=1").unwrap();
        let keys = ClientKeys::derive(Hash::Sha256, "pencil", &first.salt, 1).unwrap();
        let fin = c.client_final(&first, &keys).unwrap();
        for bad in [&b""[..], b"v=", b"v=not base64!", b"x=1", b"v=AAAA,garbage"] {
            assert!(fin.verify(bad).is_err(), "{bad:?}");
        }
        // Bad client parameters.
        let none = || ClientBinding::None;
        assert!(ScramClient::with_nonce(Hash::Sha1, "user", none(), "").is_err());
        assert!(ScramClient::with_nonce(Hash::Sha1, "user", none(), "a,b").is_err());
        assert!(ScramClient::with_nonce(Hash::Sha1, "user", none(), "a b").is_err());
        assert!(ScramClient::with_nonce(Hash::Sha1, "", none(), "abc").is_err());
        assert!(ScramClient::with_nonce(Hash::Sha1, "\u{0007}", none(), "abc").is_err());
        assert!(ClientKeys::derive(Hash::Sha1, "x", b"salt", 0).is_err());
        assert!(
            ScramClient::new(Hash::Sha1, "user", none())
                .unwrap()
                .with_authzid("")
                .is_err()
        );
    }

    #[test]
    fn client_first_accepts() {
        let mut s = ScramServer::new(Hash::Sha1, false, ChannelBinding::default());
        let first = s
            .client_first(b"n,a=ju=2Cl=3Diet,n=a=2Cb=3Dc\xC2\xAD,r=abc,x=ext")
            .unwrap();
        assert_eq!(first.username, "a,b=c");
        assert_eq!(first.authzid.as_deref(), Some("ju,l=iet"));
    }

    #[test]
    fn client_first_rejects() {
        let plain = || ScramServer::new(Hash::Sha1, false, ChannelBinding::default());
        let plus = || ScramServer::new(Hash::Sha256, true, plus_cb());
        let plus_no_data = || ScramServer::new(Hash::Sha256, true, ChannelBinding::default());
        type Case = (fn() -> ScramServer, &'static [u8]);
        let cases: &[Case] = &[
            (plain, b""),
            (plain, b"\xFF\xFE\x00garbage"),
            (plain, b"n,,"),
            (plain, b"n,"),
            (plain, b"n=user,r=abc"),
            (plain, b"x,,n=user,r=abc"),
            (plain, b"p=tls-exporter,,n=user,r=abc"),
            (plain, b"n,,m=ext,n=user,r=abc"),
            (plain, b"n,,n=user,r="),
            (plain, b"n,,n=user"),
            (plain, b"n,,r=abc,n=user"),
            (plain, b"n,,n=,r=abc"),
            (plain, b"n,,n=\xC2\xAD,r=abc"),
            (plain, b"n,,n=us=2Xer,r=abc"),
            (plain, b"n,,n=user=,r=abc"),
            (plain, b"n,,n=user=2,r=abc"),
            (plain, b"n,,n=user=\xC3\xA9,r=abc"),
            (plain, b"n,,n=us\x07er,r=abc"),
            (plain, b"n,,n=user,r=ab c"),
            (plain, b"n,,n=user,r=ab\x01c"),
            (plain, b"n,,n=user,r=ab\xC3\xA9"),
            (plain, b"n,,n=user,r=abc,n=other"),
            (plain, b"n,,n=user,r=abc,garbage"),
            (plain, b"n,juliet,n=user,r=abc"),
            (plain, b"n,a=,n=user,r=abc"),
            (plus, b"n,,n=user,r=abc"),
            (plus, b"y,,n=user,r=abc"),
            (plus, b"p=,,n=user,r=abc"),
            (plus_no_data, b"p=tls-exporter,,n=user,r=abc"),
        ];
        for (server, msg) in cases {
            let err = server().client_first(msg).unwrap_err();
            assert!(
                matches!(err, SaslError::MalformedRequest(_)),
                "{msg:?}: {err:?}"
            );
        }
        assert_eq!(
            ScramServer::new(Hash::Sha1, true, plus_cb())
                .client_first(b"p=tls-unique,,n=user,r=abc"),
            Err(SaslError::UnsupportedChannelBinding)
        );
        let mut downgraded = ScramServer::new(Hash::Sha1, false, plus_cb());
        assert_eq!(
            downgraded.client_first(b"y,,n=user,r=abc"),
            Err(SaslError::NotAuthorized)
        );
    }

    fn at_final() -> ScramServer {
        let mut s = ScramServer::new(Hash::Sha1, false, ChannelBinding::default());
        s.client_first(b"n,,n=user,r=abc").unwrap();
        let creds = ScramCredentials::fake(Hash::Sha1, "user", b"k", 1);
        s.server_first(creds, true).unwrap();
        s
    }

    #[test]
    fn client_final_rejects_garbage() {
        for msg in [
            b"".as_slice(),
            b"\xFF",
            b"c=biws,r=abc",
            b"c=biws,r=abc,p=",
            b"r=abc,c=biws,p=AAAA",
            b"c=biws,p=AAAA",
            b"c=biws,r=abc,p=AAAA,x=1",
            b"c=biws,r=abc,p=AAAA,",
            b"c=biws,r=abc,p=not base64!",
            b"c=!!,r=abc,p=AAAA",
            b"c=biws,r=abc,c=biws,p=AAAA",
            b"c=biws,r=abc,p=AAAA,p=AAAA",
        ] {
            let r = at_final().client_final(msg);
            assert!(r.is_err(), "{msg:?}");
        }
        // Well-formed but wrong.
        let proof = B64.encode([0u8; 20]);
        let msg = format!("c=biws,r=abc,p={proof}");
        assert_eq!(
            at_final().client_final(msg.as_bytes()),
            Err(SaslError::NotAuthorized)
        );
    }

    #[test]
    fn steps_out_of_order() {
        let creds = || ScramCredentials::fake(Hash::Sha1, "u", b"k", 1);
        let mut s = ScramServer::new(Hash::Sha1, false, ChannelBinding::default());
        assert!(s.server_first(creds(), true).is_err());
        let mut s = ScramServer::new(Hash::Sha1, false, ChannelBinding::default());
        assert!(s.client_final(b"c=biws,r=abc,p=AAAA").is_err());
        let mut s = ScramServer::new(Hash::Sha1, false, ChannelBinding::default());
        s.client_first(b"n,,n=user,r=abc").unwrap();
        assert!(s.client_first(b"n,,n=user,r=abc").is_err());
        let mut s = at_final();
        assert!(s.server_first(creds(), true).is_err());
        // A failed exchange stays failed.
        let mut s = ScramServer::new(Hash::Sha1, false, ChannelBinding::default());
        assert!(s.client_first(b"bogus").is_err());
        assert!(s.client_first(b"n,,n=user,r=abc").is_err());
        let mut s = at_final();
        assert!(s.client_final(b"junk").is_err());
        assert!(s.client_final(b"c=biws,r=abc,p=AAAA").is_err());
    }

    #[test]
    fn random_input_never_panics() {
        let seeds: [&[u8]; 3] = [
            b"p=tls-exporter,a=x=2C,n=us=3Der,r=abc,x=1",
            b"c=cD10bHMtZXhwb3J0ZXIsLA==,r=abcdef,p=AAAA",
            b"n,,n=user,r=abc",
        ];
        let mut buf = [0u8; 64];
        for i in 0..3000 {
            rand::fill(&mut buf[..]);
            let len = 1 + usize::from(buf[0]) % (buf.len() - 1);
            let mut msg = seeds[i % 3].to_vec();
            // Mostly mutate plausible messages, sometimes send pure noise.
            if i % 5 == 0 {
                msg = buf[1..len].to_vec();
            } else if !msg.is_empty() {
                let at = usize::from(buf[1]) % msg.len();
                msg[at] = buf[2];
                msg.truncate(msg.len() - usize::from(buf[3]) % 4);
            }
            let _ = ScramServer::new(Hash::Sha256, i % 2 == 0, plus_cb()).client_first(&msg);
            let _ = at_final().client_final(&msg);
        }
    }

    #[test]
    fn verify_password() {
        let creds = ScramCredentials::derive(Hash::Sha256, "I\u{00AD}X", b"salt", 64).unwrap();
        assert!(creds.verify_password(Hash::Sha256, "IX"));
        assert!(creds.verify_password(Hash::Sha256, "\u{2168}"));
        assert!(!creds.verify_password(Hash::Sha256, "ix"));
        assert!(!creds.verify_password(Hash::Sha1, "IX"));
        assert!(!creds.verify_password(Hash::Sha256, "\u{0007}"));
        assert!(ScramCredentials::derive(Hash::Sha1, "x", b"salt", 0).is_err());
        let zero = ScramCredentials {
            iterations: 0,
            ..creds
        };
        assert!(!zero.verify_password(Hash::Sha256, "IX"));
        let salt = random_salt();
        assert_eq!(salt.len(), 16);
        assert_ne!(salt, random_salt());
    }
}
