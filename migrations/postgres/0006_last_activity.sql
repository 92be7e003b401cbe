-- XEP-0012: when each account's last session ended (µs since the epoch) and
-- the status text of its last unavailable presence ('' for none).
CREATE TABLE last_activity (
    domain TEXT NOT NULL,
    username TEXT NOT NULL,
    stamp BIGINT NOT NULL,
    status TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (domain, username)
);
