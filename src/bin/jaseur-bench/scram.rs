//! The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel
//! binding. Account names and passwords are the generator's own ASCII ones:
//! no SASLprep.
use super::*;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// What a client keeps from PBKDF2: ClientKey and ServerKey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    pub client_key: [u8; 32],
    pub server_key: [u8; 32],
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// SaltedPassword by PBKDF2, and the two keys derived from it.
pub fn derive(password: &[u8], salt: &[u8], iterations: u32) -> Keys {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut salted);
    Keys {
        client_key: hmac(&salted, b"Client Key"),
        server_key: hmac(&salted, b"Server Key"),
    }
}

/// The server-first-message.
#[derive(Debug)]
pub struct ServerFirst {
    pub nonce: String,
    pub salt: Vec<u8>,
    pub iterations: u32,
}

pub fn parse_server_first(msg: &str, client_nonce: &str) -> anyhow::Result<ServerFirst> {
    let (mut nonce, mut salt, mut iterations) = (None, None, None);
    for attr in msg.split(',') {
        match attr.split_at_checked(2) {
            Some(("r=", v)) => nonce = Some(v),
            Some(("s=", v)) => salt = Some(B64.decode(v).context("bad salt")?),
            Some(("i=", v)) => iterations = Some(v.parse::<u32>().context("bad i=")?),
            Some(("e=", v)) => bail!("server error: {v}"),
            Some(("m=", _)) => bail!("mandatory extension not supported"),
            _ => {}
        }
    }
    let nonce = nonce.ok_or_else(|| anyhow!("no nonce in {msg}"))?;
    if !nonce.starts_with(client_nonce) || nonce.len() == client_nonce.len() {
        bail!("the server nonce does not extend ours: {msg}");
    }
    let iterations = iterations.ok_or_else(|| anyhow!("no iteration count in {msg}"))?;
    if iterations == 0 {
        bail!("iteration count 0");
    }
    Ok(ServerFirst {
        nonce: nonce.to_owned(),
        salt: salt.ok_or_else(|| anyhow!("no salt in {msg}"))?,
        iterations,
    })
}

/// One exchange, from the client-first-message on.
pub struct Exchange {
    client_first_bare: String,
}

impl Exchange {
    pub fn new(user: &str, nonce: &str) -> Exchange {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        Exchange {
            client_first_bare: format!("n={user},r={nonce}"),
        }
    }

    /// `n,,` (no channel binding) and the bare message.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// The client-final-message and the ServerSignature to expect.
    pub fn client_final(
        &self,
        server_first: &str,
        first: &ServerFirst,
        keys: &Keys,
    ) -> (String, [u8; 32]) {
        // c=biws: base64 of the GS2 header `n,,`.
        let without_proof = format!("c=biws,r={}", first.nonce);
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let stored_key: [u8; 32] = Sha256::digest(keys.client_key).into();
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let mut proof = keys.client_key;
        for (p, s) in proof.iter_mut().zip(signature) {
            *p ^= s;
        }
        let server_signature = hmac(&keys.server_key, auth_message.as_bytes());
        (
            format!("{without_proof},p={}", B64.encode(proof)),
            server_signature,
        )
    }
}

/// Check the server-final-message's `v=` against the expected signature.
pub fn check_server_final(msg: &str, expected: &[u8; 32]) -> anyhow::Result<()> {
    let mut verifier = None;
    for attr in msg.split(',') {
        match attr.split_at_checked(2) {
            Some(("e=", v)) => bail!("server error: {v}"),
            Some(("v=", v)) => verifier = Some(v),
            _ => {}
        }
    }
    let verifier = verifier.ok_or_else(|| anyhow!("no server signature in {msg:?}"))?;
    let got = B64.decode(verifier).context("bad base64 in v=")?;
    if got != expected {
        bail!("wrong server signature: the server does not know the password");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3.
    #[test]
    fn rfc7677_test_vector() {
        let nonce = "rOprNGfwEbeRWgbNEkqO";
        let exchange = Exchange::new("user", nonce);
        assert_eq!(exchange.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let first = parse_server_first(server_first, nonce).expect("server-first");
        assert_eq!(first.iterations, 4096);
        let keys = derive(b"pencil", &first.salt, first.iterations);
        let (client_final, signature) = exchange.client_final(server_first, &first, &keys);
        assert_eq!(
            client_final,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        check_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", &signature)
            .expect("server signature");
        assert!(
            check_server_final("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", &signature)
                .is_err()
        );
        assert!(check_server_final("e=invalid-proof", &signature).is_err());
    }

    #[test]
    fn refuses_bad_server_first_messages() {
        let ok = "r=abcXYZ,s=QSXCR+Q6sek8bf92,i=4096";
        assert!(parse_server_first(ok, "abc").is_ok());
        // Not our nonce, or not extended.
        assert!(parse_server_first(ok, "abd").is_err());
        assert!(parse_server_first("r=abc,s=QSXCR+Q6sek8bf92,i=4096", "abc").is_err());
        assert!(parse_server_first("r=abcX,s=QSXCR+Q6sek8bf92", "abc").is_err());
        assert!(parse_server_first("r=abcX,s=QSXCR+Q6sek8bf92,i=0", "abc").is_err());
        assert!(parse_server_first("m=x,r=abcX,s=QSXCR+Q6sek8bf92,i=1", "abc").is_err());
        assert_eq!(
            Exchange::new("a=b,c", "n").client_first(),
            "n,,n=a=3Db=2Cc,r=n"
        );
    }
}
