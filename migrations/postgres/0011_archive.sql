-- XEP-0313 message archives. One row per message and archive: a chat
-- between two local accounts has a row in each. `id` is the archive id
-- clients see (XEP-0359 stanza-id): unique across the server and
-- increasing, the time of archiving in microseconds (bumped by one where
-- two would meet), so that time ranges and paging use one index.
CREATE TABLE archive (
    owner TEXT NOT NULL,
    id BIGINT NOT NULL,
    with_jid TEXT NOT NULL,
    with_resource TEXT NOT NULL,
    outgoing SMALLINT NOT NULL,
    origin_id TEXT,
    body TEXT NOT NULL,
    stanza TEXT NOT NULL,
    PRIMARY KEY (owner, id)
);
CREATE INDEX archive_with ON archive (owner, with_jid, id);

-- XEP-0441 preferences: default 'always', 'never' or 'roster'; the JID
-- lists as newline-separated bare or full JIDs.
CREATE TABLE archive_prefs (
    domain TEXT NOT NULL,
    username TEXT NOT NULL,
    default_mode TEXT NOT NULL,
    always_jids TEXT NOT NULL,
    never_jids TEXT NOT NULL,
    PRIMARY KEY (domain, username)
);
