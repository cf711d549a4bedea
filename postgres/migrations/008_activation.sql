-- Activation orders and their tracking. The order (with its tracking
-- steps and alerts) is a JSON document like the other objects; due_at is
-- when the scheduler must next look at it (re-send, ack deadline, start,
-- completion), NULL once it is final, so one index finds the work.

CREATE TABLE activation_order (
    id                 TEXT PRIMARY KEY,
    version            BIGINT NOT NULL,
    system_operator_id TEXT NOT NULL REFERENCES party(id),
    fsp_id             TEXT NOT NULL REFERENCES party(id),
    resource_id        TEXT NOT NULL REFERENCES resource(id),
    product_id         TEXT NOT NULL REFERENCES product(id),
    obligation_id      TEXT REFERENCES obligation(id),
    batch_id           TEXT,
    status             TEXT NOT NULL,
    due_at             BIGINT,
    body               TEXT NOT NULL
);
CREATE INDEX activation_order_system_operator ON activation_order(system_operator_id, status);
CREATE INDEX activation_order_fsp ON activation_order(fsp_id, status);
CREATE INDEX activation_order_resource ON activation_order(resource_id, status);
CREATE INDEX activation_order_obligation ON activation_order(obligation_id);
CREATE INDEX activation_order_product ON activation_order(product_id);
CREATE INDEX activation_order_batch ON activation_order(batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX activation_order_due ON activation_order(due_at) WHERE due_at IS NOT NULL;
