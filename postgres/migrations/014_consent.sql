-- Consent (docs/CONSENT.md): consents versioned with history like every
-- register object (the owner sees every grant, past and present); the
-- metering points a consent names, for the filter; and the access log:
-- every read of consumer data by someone other than its owner, numbered
-- in commit order (under the audit lock, as notifications), never
-- changed.

CREATE TABLE consent (
    id           TEXT PRIMARY KEY,
    version      BIGINT NOT NULL,
    owner_id     TEXT NOT NULL REFERENCES party(id),
    data_user_id TEXT NOT NULL REFERENCES party(id),
    status       TEXT NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX consent_owner ON consent(owner_id, status);
CREATE INDEX consent_data_user ON consent(data_user_id, owner_id, status);

CREATE TABLE consent_metering_point (
    consent_id        TEXT NOT NULL REFERENCES consent(id),
    metering_point_id TEXT NOT NULL REFERENCES metering_point(id),
    PRIMARY KEY (consent_id, metering_point_id)
);
CREATE INDEX consent_metering_point_mp ON consent_metering_point(metering_point_id);

CREATE TABLE data_access (
    seq               BIGINT PRIMARY KEY,
    at                BIGINT NOT NULL,
    reader_id         TEXT NOT NULL,
    owner_id          TEXT NOT NULL,
    metering_point_id TEXT NOT NULL,
    outcome           TEXT NOT NULL,
    body              TEXT NOT NULL
);
CREATE INDEX data_access_owner ON data_access(owner_id, seq);
CREATE INDEX data_access_reader ON data_access(reader_id, seq);
CREATE INDEX data_access_metering_point ON data_access(metering_point_id, seq);
