-- Webhooks (docs/WEBHOOKS.md): a party's endpoints and the outbox of
-- deliveries to them.
--
-- An endpoint is a register object (JSON body, history) with its signing
-- secret in a column of its own, so the secret never enters the body, the
-- history or an audit payload. A delivery is an outbox row written in the
-- transaction of the change that caused the event; its columns are the
-- state of its attempts, updated with a versioned UPDATE by the one
-- sender that claimed it, and it keeps no history.

CREATE TABLE webhook_endpoint (
    id       TEXT PRIMARY KEY,
    version  INTEGER NOT NULL,
    party_id TEXT NOT NULL REFERENCES party(id),
    status   TEXT NOT NULL,
    secret   TEXT NOT NULL,
    body     TEXT NOT NULL
);
CREATE INDEX webhook_endpoint_party ON webhook_endpoint(party_id, status);

CREATE TABLE webhook_delivery (
    id               TEXT PRIMARY KEY,
    version          INTEGER NOT NULL,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoint(id),
    party_id         TEXT NOT NULL REFERENCES party(id),
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER,
    retry_until      INTEGER NOT NULL,
    last_attempt_at  INTEGER,
    last_status_code INTEGER,
    last_error       TEXT,
    delivered_at     INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    payload          TEXT NOT NULL
);
-- One delivery per event and endpoint: an event emitted twice goes out once.
CREATE UNIQUE INDEX webhook_delivery_event ON webhook_delivery(endpoint_id, event_id);
-- The dispatcher's query: pending deliveries whose next attempt is due.
CREATE INDEX webhook_delivery_due ON webhook_delivery(status, next_attempt_at);
CREATE INDEX webhook_delivery_endpoint ON webhook_delivery(endpoint_id, status, id);
CREATE INDEX webhook_delivery_party ON webhook_delivery(party_id, status, id);
