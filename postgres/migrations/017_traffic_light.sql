-- Traffic-light overrides (docs/TRAFFIC_LIGHT.md): a DSO's standing
-- verdict for a resource in its grid over a time span, versioned with
-- history like every register object. The span's bounds are columns so
-- the checks of a bid or order find the overrides that cover it.

CREATE TABLE traffic_light_override (
    id          TEXT PRIMARY KEY,
    version     BIGINT NOT NULL,
    resource_id TEXT NOT NULL REFERENCES resource(id),
    dso_id      TEXT NOT NULL REFERENCES party(id),
    fsp_id      TEXT NOT NULL REFERENCES party(id),
    status      TEXT NOT NULL,
    start_at    BIGINT NOT NULL,
    end_at      BIGINT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX traffic_light_override_resource ON traffic_light_override(resource_id, start_at);
CREATE INDEX traffic_light_override_dso ON traffic_light_override(dso_id);
CREATE INDEX traffic_light_override_fsp ON traffic_light_override(fsp_id);
