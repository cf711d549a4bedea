-- flexhub register schema, PostgreSQL dialect. Times are integer microseconds
-- since the Unix epoch (UTC). Objects are JSON in body; every relation and
-- filter is a real column.

CREATE TABLE party (
    id      TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    eic     TEXT NOT NULL UNIQUE,
    roles   TEXT NOT NULL,
    body JSONB NOT NULL
);

CREATE TABLE credential (
    id           TEXT PRIMARY KEY,
    party_id     TEXT NOT NULL REFERENCES party(id),
    secret_hash  BYTEA NOT NULL,
    label        TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
CREATE INDEX credential_party ON credential(party_id);

CREATE TABLE control_area (
    id      TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    eic     TEXT NOT NULL UNIQUE,
    tso_id  TEXT NOT NULL REFERENCES party(id),
    body JSONB NOT NULL
);

CREATE TABLE grid_area (
    id              TEXT PRIMARY KEY,
    version         BIGINT NOT NULL,
    eic             TEXT NOT NULL UNIQUE,
    dso_id          TEXT NOT NULL REFERENCES party(id),
    control_area_id TEXT NOT NULL REFERENCES control_area(id),
    body JSONB NOT NULL
);
CREATE INDEX grid_area_dso ON grid_area(dso_id);

CREATE TABLE connection_point (
    id           TEXT PRIMARY KEY,
    version      BIGINT NOT NULL,
    code         TEXT NOT NULL,
    grid_area_id TEXT NOT NULL REFERENCES grid_area(id),
    dso_id       TEXT NOT NULL REFERENCES party(id),
    body JSONB NOT NULL,
    UNIQUE (grid_area_id, code)
);
CREATE INDEX connection_point_dso ON connection_point(dso_id);

CREATE TABLE metering_point (
    id                  TEXT PRIMARY KEY,
    version             BIGINT NOT NULL,
    code                TEXT NOT NULL UNIQUE,
    connection_point_id TEXT NOT NULL REFERENCES connection_point(id),
    dso_id              TEXT NOT NULL REFERENCES party(id),
    consumer_id         TEXT NOT NULL REFERENCES party(id),
    body JSONB NOT NULL
);
CREATE INDEX metering_point_consumer ON metering_point(consumer_id);
CREATE INDEX metering_point_dso ON metering_point(dso_id);

CREATE TABLE resource (
    id                  TEXT PRIMARY KEY,
    version             BIGINT NOT NULL,
    fsp_id              TEXT NOT NULL REFERENCES party(id),
    owner_id            TEXT REFERENCES party(id),
    dso_id              TEXT REFERENCES party(id),
    metering_point_id   TEXT REFERENCES metering_point(id),
    connection_point_id TEXT REFERENCES connection_point(id),
    status              TEXT NOT NULL,
    body JSONB NOT NULL
);
CREATE INDEX resource_fsp ON resource(fsp_id);
CREATE INDEX resource_owner ON resource(owner_id);
CREATE INDEX resource_dso ON resource(dso_id);
CREATE INDEX resource_metering_point ON resource(metering_point_id);

CREATE TABLE product (
    id                 TEXT PRIMARY KEY,
    version            BIGINT NOT NULL,
    system_operator_id TEXT NOT NULL REFERENCES party(id),
    status             TEXT NOT NULL,
    body JSONB NOT NULL
);

CREATE TABLE prequalification (
    id                 TEXT PRIMARY KEY,
    version            BIGINT NOT NULL,
    resource_id        TEXT NOT NULL REFERENCES resource(id),
    product_id         TEXT NOT NULL REFERENCES product(id),
    fsp_id             TEXT NOT NULL REFERENCES party(id),
    system_operator_id TEXT NOT NULL REFERENCES party(id),
    status             TEXT NOT NULL,
    body JSONB NOT NULL
);
CREATE INDEX prequalification_resource ON prequalification(resource_id);
CREATE INDEX prequalification_fsp ON prequalification(fsp_id);
CREATE INDEX prequalification_so ON prequalification(system_operator_id);

CREATE TABLE grid_prequalification (
    id          TEXT PRIMARY KEY,
    version     BIGINT NOT NULL,
    resource_id TEXT NOT NULL REFERENCES resource(id),
    dso_id      TEXT NOT NULL REFERENCES party(id),
    fsp_id      TEXT NOT NULL REFERENCES party(id),
    status      TEXT NOT NULL,
    body JSONB NOT NULL
);
CREATE INDEX grid_prequalification_resource ON grid_prequalification(resource_id);
CREATE INDEX grid_prequalification_dso ON grid_prequalification(dso_id);

CREATE TABLE contract (
    id                 TEXT PRIMARY KEY,
    version            BIGINT NOT NULL,
    fsp_id             TEXT NOT NULL REFERENCES party(id),
    system_operator_id TEXT NOT NULL REFERENCES party(id),
    product_id         TEXT NOT NULL REFERENCES product(id),
    status             TEXT NOT NULL,
    body JSONB NOT NULL
);
CREATE INDEX contract_fsp ON contract(fsp_id);
CREATE INDEX contract_so ON contract(system_operator_id);

CREATE TABLE object_history (
    kind       TEXT NOT NULL,
    id         TEXT NOT NULL,
    version    BIGINT NOT NULL,
    valid_from BIGINT NOT NULL,
    valid_to   BIGINT,
    body JSONB NOT NULL,
    PRIMARY KEY (kind, id, version)
);

CREATE TABLE audit_entry (
    seq          BIGINT PRIMARY KEY,
    at           BIGINT NOT NULL,
    actor_id     TEXT NOT NULL,
    action       TEXT NOT NULL,
    object_kind  TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    version      BIGINT NOT NULL,
    parties      TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX audit_entry_object ON audit_entry(object_id);

CREATE TABLE audit_party (
    seq      BIGINT NOT NULL REFERENCES audit_entry(seq),
    party_id TEXT NOT NULL,
    PRIMARY KEY (party_id, seq)
);

CREATE TABLE idempotency (
    party_id    TEXT NOT NULL,
    idem_key    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (party_id, idem_key)
);
