-- Private XML storage (XEP-0049): one serialised element per account and
-- (namespace, element name). `size` is its length in bytes, summed to
-- enforce the per-account quota without reading the elements.
CREATE TABLE private_storage (
    domain TEXT NOT NULL,
    username TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    xml TEXT NOT NULL,
    size BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (domain, username, namespace, name)
);
