-- The market: needs (calls for flexibility), market sessions with their
-- gate times, bids, and each party's notification feed. Same shape as the
-- register: JSON in body, every relation and filter a real column. The
-- gate times are columns because the scheduler looks for due sessions.

CREATE TABLE market_session (
    id                 TEXT PRIMARY KEY,
    version            BIGINT NOT NULL,
    operator_id        TEXT NOT NULL REFERENCES party(id),
    product_id         TEXT NOT NULL REFERENCES product(id),
    system_operator_id TEXT NOT NULL REFERENCES party(id),
    status             TEXT NOT NULL,
    gate_opening       BIGINT NOT NULL,
    gate_closure       BIGINT NOT NULL,
    body               TEXT NOT NULL
);
CREATE INDEX market_session_operator ON market_session(operator_id);
CREATE INDEX market_session_product ON market_session(product_id);
CREATE INDEX market_session_opening ON market_session(status, gate_opening);
CREATE INDEX market_session_closure ON market_session(status, gate_closure);

CREATE TABLE need (
    id                 TEXT PRIMARY KEY,
    version            BIGINT NOT NULL,
    product_id         TEXT NOT NULL REFERENCES product(id),
    system_operator_id TEXT NOT NULL REFERENCES party(id),
    session_id         TEXT REFERENCES market_session(id),
    status             TEXT NOT NULL,
    body               TEXT NOT NULL
);
CREATE INDEX need_product ON need(product_id);
CREATE INDEX need_system_operator ON need(system_operator_id);
CREATE INDEX need_session ON need(session_id);

CREATE TABLE bid (
    id          TEXT PRIMARY KEY,
    version     BIGINT NOT NULL,
    session_id  TEXT NOT NULL REFERENCES market_session(id),
    need_id     TEXT NOT NULL REFERENCES need(id),
    fsp_id      TEXT NOT NULL REFERENCES party(id),
    resource_id TEXT NOT NULL REFERENCES resource(id),
    status      TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX bid_session ON bid(session_id);
CREATE INDEX bid_need ON bid(need_id);
CREATE INDEX bid_fsp_session ON bid(fsp_id, session_id);
CREATE INDEX bid_resource ON bid(resource_id);

CREATE TABLE notification (
    seq         BIGINT PRIMARY KEY,
    party_id    TEXT NOT NULL REFERENCES party(id),
    at          BIGINT NOT NULL,
    type        TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX notification_party ON notification(party_id, seq);
