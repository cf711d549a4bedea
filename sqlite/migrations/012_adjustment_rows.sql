-- Imbalance adjustments in narrow rows. A settlement run of 10,000
-- orders writes over 100,000 of them (one per metering point and ISP);
-- migration 010 stored each with a JSON body and nine copies of ids its
-- verification already holds, under seven indexes and nine foreign keys.
-- Now a row holds what is its own — the metering point, its BRP and
-- supplier, the ISP, the volume — and names its verification, which
-- holds the run, order, resource, FSP and system operator. The metering
-- point, BRP and supplier are read from the metering point in the run's
-- own transaction, so they need no foreign key. Readers use the view
-- imbalance_adjustment_full: the columns the filters need and the JSON
-- the API returns, built from both tables.

DROP INDEX imbalance_adjustment_run;
DROP INDEX imbalance_adjustment_order;
DROP INDEX imbalance_adjustment_verification;
DROP INDEX imbalance_adjustment_brp;
DROP INDEX imbalance_adjustment_supplier;
DROP INDEX imbalance_adjustment_fsp;
DROP INDEX imbalance_adjustment_system_operator;
ALTER TABLE imbalance_adjustment RENAME TO imbalance_adjustment_010;

CREATE TABLE imbalance_adjustment (
    id                TEXT PRIMARY KEY,
    verification_id   TEXT NOT NULL REFERENCES verification(id),
    metering_point_id TEXT NOT NULL,
    brp_id            TEXT NOT NULL,
    supplier_id       TEXT,
    start_at          TEXT NOT NULL,
    end_at            TEXT NOT NULL,
    volume            INTEGER NOT NULL,
    created_at        TEXT NOT NULL
);
INSERT INTO imbalance_adjustment (id, verification_id, metering_point_id, brp_id, supplier_id, start_at, end_at, volume, created_at)
SELECT id, verification_id, metering_point_id, brp_id, supplier_id, start_at,
       json_extract(body, '$.end'), json_extract(body, '$.volume'), json_extract(body, '$.created_at')
FROM imbalance_adjustment_010;
DROP TABLE imbalance_adjustment_010;

CREATE INDEX imbalance_adjustment_verification ON imbalance_adjustment(verification_id, brp_id);
CREATE INDEX imbalance_adjustment_brp ON imbalance_adjustment(brp_id, start_at);
CREATE INDEX imbalance_adjustment_supplier ON imbalance_adjustment(supplier_id, start_at) WHERE supplier_id IS NOT NULL;
CREATE INDEX imbalance_adjustment_metering_point ON imbalance_adjustment(metering_point_id, start_at);

CREATE VIEW imbalance_adjustment_full AS
SELECT a.id, v.run_id, v.order_id, a.verification_id, v.resource_id, a.metering_point_id, a.brp_id, a.supplier_id,
       v.fsp_id, v.system_operator_id, a.start_at,
       json_object('id', a.id, 'run_id', v.run_id, 'order_id', v.order_id, 'verification_id', a.verification_id,
                   'resource_id', v.resource_id, 'metering_point_id', a.metering_point_id, 'brp_id', a.brp_id,
                   'supplier_id', coalesce(a.supplier_id, ''), 'fsp_id', v.fsp_id, 'system_operator_id', v.system_operator_id,
                   'start', a.start_at, 'end', a.end_at, 'volume', a.volume, 'unit', 'mWh', 'created_at', a.created_at) AS body
FROM imbalance_adjustment a JOIN verification v ON v.id = a.verification_id;
