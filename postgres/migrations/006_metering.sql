-- Meter data (docs/METERING.md). Readings are the bulk of what flexhub
-- stores (a 1-second series is 86,400 rows a day), so they are not JSON
-- documents but narrow integer rows:
--
--   meter_series         one row per (subject, quantity, flow, resolution),
--                        with a small integer id the value rows carry
--   meter_batch          one row per ingestion: sender, time, audit id
--   meter_value          the current version of each reading, keyed
--                        (series_id, start_s): start in Unix seconds, value
--                        in milli-units, the version and the batch
--   meter_value_history  the versions a correction superseded
--
-- meter_value and meter_value_history carry no foreign keys: they take
-- thousands of rows per request, their ids come only from sqlstore in the
-- same transaction, and series and batches are never deleted.

CREATE TABLE meter_series (
    id                INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resource_id       TEXT REFERENCES resource(id),
    metering_point_id TEXT REFERENCES metering_point(id),
    quantity          TEXT NOT NULL,
    flow              TEXT NOT NULL,
    resolution_s      INTEGER NOT NULL,
    created_at        BIGINT NOT NULL,
    CHECK ((resource_id IS NULL) <> (metering_point_id IS NULL))
);
CREATE UNIQUE INDEX meter_series_resource ON meter_series(resource_id, quantity, flow, resolution_s) WHERE resource_id IS NOT NULL;
CREATE UNIQUE INDEX meter_series_metering_point ON meter_series(metering_point_id, quantity, flow, resolution_s) WHERE metering_point_id IS NOT NULL;

CREATE TABLE meter_batch (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    audit_id    TEXT NOT NULL UNIQUE,
    sender      TEXT NOT NULL REFERENCES party(id),
    received_at BIGINT NOT NULL
);

-- Columns ordered for alignment: 32 bytes of data per row.
CREATE TABLE meter_value (
    series_id INTEGER NOT NULL,
    version   INTEGER NOT NULL,
    start_s   BIGINT NOT NULL,
    value     BIGINT NOT NULL,
    batch_id  BIGINT NOT NULL,
    PRIMARY KEY (series_id, start_s)
);

CREATE TABLE meter_value_history (
    series_id     INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    start_s       BIGINT NOT NULL,
    value         BIGINT NOT NULL,
    batch_id      BIGINT NOT NULL,
    superseded_at BIGINT NOT NULL,
    PRIMARY KEY (series_id, start_s, version)
);
