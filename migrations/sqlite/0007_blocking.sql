-- Blocklists (XEP-0191): one row per blocked JID (full, bare, domain/resource
-- or domain), stored in its normalised form.
CREATE TABLE blocklist_items (
    domain TEXT NOT NULL,
    username TEXT NOT NULL,
    jid TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (domain, username, jid)
);
