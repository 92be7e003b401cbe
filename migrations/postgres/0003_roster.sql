-- Rosters (RFC 6121 §2). A removed item stays as a tombstone (subscription
-- 'remove') so that roster versioning (XEP-0237) can tell clients about it.
CREATE TABLE roster_items (
    domain TEXT NOT NULL,
    username TEXT NOT NULL,
    contact TEXT NOT NULL,
    name TEXT,
    subscription TEXT NOT NULL,
    ask INTEGER NOT NULL DEFAULT 0,
    approved INTEGER NOT NULL DEFAULT 0,
    version BIGINT NOT NULL,
    PRIMARY KEY (domain, username, contact)
);
CREATE INDEX roster_items_version ON roster_items (domain, username, version);

CREATE TABLE roster_groups (
    domain TEXT NOT NULL,
    username TEXT NOT NULL,
    contact TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (domain, username, contact, name)
);

-- The current roster version of each account.
CREATE TABLE roster_versions (
    domain TEXT NOT NULL,
    username TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (domain, username)
);

-- Inbound subscription requests awaiting the user's answer (RFC 6121 §3.1.3),
-- delivered again at each login until answered.
CREATE TABLE subscription_requests (
    domain TEXT NOT NULL,
    username TEXT NOT NULL,
    contact TEXT NOT NULL,
    stanza TEXT NOT NULL,
    PRIMARY KEY (domain, username, contact)
);
