-- Settlement: runs, the verification of each activation order, FSP
-- statements (versioned: a new version names the one it supersedes) and
-- imbalance adjustments per metering point and ISP. Written once, never
-- updated: JSON body plus indexed columns for every filter, as the other
-- objects. Times the filters compare are RFC 3339 UTC text to the second
-- (flexhub.TimeKey), which sorts in time order in both dialects.

CREATE TABLE settlement_run (
    id                 TEXT PRIMARY KEY,
    version            BIGINT NOT NULL,
    system_operator_id TEXT NOT NULL REFERENCES party(id),
    period_start       TEXT NOT NULL,
    period_end         TEXT NOT NULL,
    body               TEXT NOT NULL
);
CREATE INDEX settlement_run_system_operator ON settlement_run(system_operator_id, period_start);

CREATE TABLE verification (
    id                 TEXT PRIMARY KEY,
    version            BIGINT NOT NULL,
    run_id             TEXT NOT NULL REFERENCES settlement_run(id),
    order_id           TEXT NOT NULL REFERENCES activation_order(id),
    resource_id        TEXT NOT NULL REFERENCES resource(id),
    fsp_id             TEXT NOT NULL REFERENCES party(id),
    system_operator_id TEXT NOT NULL REFERENCES party(id),
    brp_visible        BIGINT NOT NULL,
    body               TEXT NOT NULL
);
CREATE INDEX verification_run ON verification(run_id);
CREATE INDEX verification_order ON verification(order_id);
CREATE INDEX verification_resource ON verification(resource_id);
CREATE INDEX verification_fsp ON verification(fsp_id);
CREATE INDEX verification_system_operator ON verification(system_operator_id);

CREATE TABLE settlement_statement (
    id                 TEXT PRIMARY KEY,
    version            BIGINT NOT NULL,
    run_id             TEXT NOT NULL REFERENCES settlement_run(id),
    fsp_id             TEXT NOT NULL REFERENCES party(id),
    system_operator_id TEXT NOT NULL REFERENCES party(id),
    period_start       TEXT NOT NULL,
    period_end         TEXT NOT NULL,
    currency           TEXT NOT NULL,
    statement_version  BIGINT NOT NULL,
    supersedes         TEXT REFERENCES settlement_statement(id),
    body               TEXT NOT NULL
);
CREATE UNIQUE INDEX settlement_statement_identity ON settlement_statement(fsp_id, system_operator_id, period_start, period_end, currency, statement_version);
CREATE UNIQUE INDEX settlement_statement_supersedes ON settlement_statement(supersedes) WHERE supersedes IS NOT NULL;
CREATE INDEX settlement_statement_run ON settlement_statement(run_id);
CREATE INDEX settlement_statement_system_operator ON settlement_statement(system_operator_id, period_start);

CREATE TABLE imbalance_adjustment (
    id                 TEXT PRIMARY KEY,
    version            BIGINT NOT NULL,
    run_id             TEXT NOT NULL REFERENCES settlement_run(id),
    order_id           TEXT NOT NULL REFERENCES activation_order(id),
    verification_id    TEXT NOT NULL REFERENCES verification(id),
    resource_id        TEXT NOT NULL REFERENCES resource(id),
    metering_point_id  TEXT NOT NULL REFERENCES metering_point(id),
    brp_id             TEXT NOT NULL REFERENCES party(id),
    supplier_id        TEXT REFERENCES party(id),
    fsp_id             TEXT NOT NULL REFERENCES party(id),
    system_operator_id TEXT NOT NULL REFERENCES party(id),
    start_at           TEXT NOT NULL,
    body               TEXT NOT NULL
);
CREATE INDEX imbalance_adjustment_run ON imbalance_adjustment(run_id);
CREATE INDEX imbalance_adjustment_order ON imbalance_adjustment(order_id);
CREATE INDEX imbalance_adjustment_verification ON imbalance_adjustment(verification_id, brp_id);
CREATE INDEX imbalance_adjustment_brp ON imbalance_adjustment(brp_id, start_at);
CREATE INDEX imbalance_adjustment_supplier ON imbalance_adjustment(supplier_id, start_at) WHERE supplier_id IS NOT NULL;
CREATE INDEX imbalance_adjustment_fsp ON imbalance_adjustment(fsp_id, start_at);
CREATE INDEX imbalance_adjustment_system_operator ON imbalance_adjustment(system_operator_id, start_at);
