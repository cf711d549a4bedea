-- Connect My Data (docs/OAUTH.md): OAuth clients registered by data
-- users; authorization codes and tokens, stored only as SHA-256 hashes of
-- their values, each bound to its client and to the consent the consumer
-- gave. used_at / revoked_at are the columns that change; body holds the
-- rest as JSON.

CREATE TABLE oauth_client (
    id         TEXT PRIMARY KEY,
    owner_id   TEXT NOT NULL REFERENCES party(id),
    created_at INTEGER NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX oauth_client_owner ON oauth_client(owner_id);

CREATE TABLE oauth_code (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    client_id  TEXT NOT NULL REFERENCES oauth_client(id),
    consent_id TEXT NOT NULL REFERENCES consent(id),
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    body       TEXT NOT NULL
);

CREATE TABLE oauth_token (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    grant_id   TEXT NOT NULL REFERENCES oauth_code(id),
    parent_id  TEXT,
    client_id  TEXT NOT NULL REFERENCES oauth_client(id),
    consent_id TEXT NOT NULL REFERENCES consent(id),
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    body       TEXT NOT NULL
);
CREATE INDEX oauth_token_grant ON oauth_token(grant_id);
CREATE INDEX oauth_token_parent ON oauth_token(parent_id);
CREATE INDEX oauth_token_consent ON oauth_token(consent_id);
