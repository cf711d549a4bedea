-- Nominated baselines (docs/BASELINES.md): one per resource and market
-- session, versioned with history like every register object. The first
-- and last instants of the schedule are columns so settlement finds the
-- nominations covering an activation.

CREATE TABLE nomination (
    id                 TEXT PRIMARY KEY,
    version            INTEGER NOT NULL,
    resource_id        TEXT NOT NULL REFERENCES resource(id),
    session_id         TEXT NOT NULL REFERENCES market_session(id),
    product_id         TEXT NOT NULL REFERENCES product(id),
    fsp_id             TEXT NOT NULL REFERENCES party(id),
    system_operator_id TEXT NOT NULL REFERENCES party(id),
    first_start        INTEGER NOT NULL,
    last_end           INTEGER NOT NULL,
    body               TEXT NOT NULL,
    UNIQUE (resource_id, session_id)
);
CREATE INDEX nomination_resource ON nomination(resource_id, first_start);
CREATE INDEX nomination_fsp ON nomination(fsp_id);
CREATE INDEX nomination_session ON nomination(session_id);
CREATE INDEX nomination_system_operator ON nomination(system_operator_id);
