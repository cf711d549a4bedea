-- Grid models (docs/GRID_MODELS.md): each upload of a grid area's network
-- is a new, immutable version (model_version 1, 2, ... per grid area).
-- body is the summary (JSON of flexhub.GridModel); network is the parsed
-- model and file the original upload, both gzip-compressed by sqlstore.
-- Connection points are mapped to buses per version; bus_index is the
-- bus's position in that version's bus list.

CREATE TABLE grid_model (
    id            TEXT PRIMARY KEY,
    grid_area_id  TEXT NOT NULL REFERENCES grid_area(id),
    model_version INTEGER NOT NULL,
    dso_id        TEXT NOT NULL REFERENCES party(id),
    uploaded_at   INTEGER NOT NULL,
    body          TEXT NOT NULL,
    network       BLOB NOT NULL,
    file          BLOB NOT NULL,
    UNIQUE (grid_area_id, model_version)
);

CREATE TABLE grid_model_mapping (
    model_id            TEXT NOT NULL REFERENCES grid_model(id),
    connection_point_id TEXT NOT NULL REFERENCES connection_point(id),
    bus_id              TEXT NOT NULL,
    bus_index           INTEGER NOT NULL,
    PRIMARY KEY (model_id, connection_point_id)
);
CREATE INDEX grid_model_mapping_cp ON grid_model_mapping(connection_point_id);
