-- MUC registered nicknames (XEP-0045 §7.10): one per member and room, unique in the room.
CREATE TABLE muc_nicks (
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    jid TEXT NOT NULL,
    nick TEXT NOT NULL,
    PRIMARY KEY (service, name, jid),
    UNIQUE (service, name, nick)
);
