-- Message of the day (XEP-0133 §4.24-4.26): one per served domain, sent to
-- each session when it first becomes available.
CREATE TABLE motd (
    domain TEXT PRIMARY KEY,
    subject TEXT,
    body TEXT NOT NULL
);
