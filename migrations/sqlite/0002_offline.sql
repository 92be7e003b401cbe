-- Messages accepted for an account that had no session able to take them.
CREATE TABLE offline_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    domain TEXT NOT NULL,
    username TEXT NOT NULL,
    stanza TEXT NOT NULL,
    stamp BIGINT NOT NULL
);
CREATE INDEX offline_messages_owner ON offline_messages (domain, username, id);
