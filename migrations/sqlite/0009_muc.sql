-- Multi-user chat (XEP-0045): the persistent rooms of each service and their
-- affiliations. A room's JID is name@service; temporary rooms live only in
-- memory. Nothing here is read on the message path: the service loads its
-- rooms at start and writes when an owner changes something.
CREATE TABLE muc_rooms (
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    -- The owner's configuration, as muc::config::RoomConfig::to_text writes it.
    config TEXT NOT NULL,
    subject TEXT,
    -- The nick of whoever set the subject.
    subject_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (service, name)
);

-- One row per bare JID with an affiliation other than 'none' (owner, admin,
-- member, outcast); bans carry their reason.
CREATE TABLE muc_affiliations (
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    jid TEXT NOT NULL,
    affiliation TEXT NOT NULL,
    reason TEXT,
    PRIMARY KEY (service, name, jid)
);
