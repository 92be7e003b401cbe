//! The internal backend: accounts whose SCRAM keys live in our database.

use crate::sasl::SaslError;
use crate::sasl::scram::{Hash, ScramCredentials, random_salt};

/// StoredKey and ServerKey for one hash function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramKeys {
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// What the database holds for an account: salt, iterations and the SCRAM
/// keys for SHA-1 and SHA-256. Never the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredentials {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub sha1: ScramKeys,
    pub sha256: ScramKeys,
}

impl StoredCredentials {
    /// Derive fresh credentials (new random salt) from a password.
    pub fn from_password(password: &str, iterations: u32) -> Result<Self, SaslError> {
        let salt = random_salt();
        let sha1 = ScramCredentials::derive(Hash::Sha1, password, &salt, iterations)?;
        let sha256 = ScramCredentials::derive(Hash::Sha256, password, &salt, iterations)?;
        Ok(StoredCredentials {
            iterations,
            salt,
            sha1: ScramKeys {
                stored_key: sha1.stored_key,
                server_key: sha1.server_key,
            },
            sha256: ScramKeys {
                stored_key: sha256.stored_key,
                server_key: sha256.server_key,
            },
        })
    }

    /// The SCRAM credentials for one hash.
    pub fn scram(&self, hash: Hash) -> ScramCredentials {
        let keys = match hash {
            Hash::Sha1 => &self.sha1,
            Hash::Sha256 => &self.sha256,
        };
        ScramCredentials {
            iterations: self.iterations,
            salt: self.salt.clone(),
            stored_key: keys.stored_key.clone(),
            server_key: keys.server_key.clone(),
        }
    }

    /// Check a cleartext password (PLAIN). Costs one PBKDF2: call off the async threads.
    pub fn verify_password(&self, password: &str) -> bool {
        self.scram(Hash::Sha256)
            .verify_password(Hash::Sha256, password)
    }
}

/// Credentials for `password`, derived on a blocking thread (PBKDF2 takes milliseconds).
pub async fn credentials_for(
    password: String,
    iterations: u32,
) -> Result<StoredCredentials, SaslError> {
    tokio::task::spawn_blocking(move || StoredCredentials::from_password(&password, iterations))
        .await
        .unwrap_or(Err(SaslError::NotAuthorized))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_roundtrip() {
        let c = StoredCredentials::from_password("pencil", 4096).expect("derive");
        assert!(c.verify_password("pencil"));
        assert!(!c.verify_password("pencils"));
        assert_eq!(c.sha1.stored_key.len(), 20);
        assert_eq!(c.sha256.stored_key.len(), 32);
    }
}
