-- Accounts with SCRAM credentials (RFC 5802/7677): never the password itself.
CREATE TABLE accounts (
    domain TEXT NOT NULL,
    username TEXT NOT NULL,
    iterations INTEGER NOT NULL,
    salt TEXT NOT NULL,
    sha1_stored_key TEXT NOT NULL,
    sha1_server_key TEXT NOT NULL,
    sha256_stored_key TEXT NOT NULL,
    sha256_server_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (domain, username)
);
