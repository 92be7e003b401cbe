-- vCards (XEP-0054): one serialised <vCard xmlns='vcard-temp'/> per account.
CREATE TABLE vcards (
    domain TEXT NOT NULL,
    username TEXT NOT NULL,
    xml TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (domain, username)
);
