-- Market results: the clearing's award for each bid, the obligations to
-- deliver that accepted bids become, and each need's result. Written once,
-- with the session's move to cleared. One award per bid, one obligation
-- per award and one result per need, enforced here too, so that a second
-- clearing of a session can never store a second set of results.

CREATE TABLE award (
    id                 TEXT PRIMARY KEY,
    version            INTEGER NOT NULL,
    session_id         TEXT NOT NULL REFERENCES market_session(id),
    need_id            TEXT NOT NULL REFERENCES need(id),
    bid_id             TEXT NOT NULL REFERENCES bid(id),
    fsp_id             TEXT NOT NULL REFERENCES party(id),
    system_operator_id TEXT NOT NULL REFERENCES party(id),
    status             TEXT NOT NULL,
    body               TEXT NOT NULL
);
CREATE UNIQUE INDEX award_bid ON award(bid_id);
CREATE INDEX award_session ON award(session_id);
CREATE INDEX award_need ON award(need_id);
CREATE INDEX award_fsp ON award(fsp_id, session_id);
CREATE INDEX award_system_operator ON award(system_operator_id, session_id);

CREATE TABLE obligation (
    id                 TEXT PRIMARY KEY,
    version            INTEGER NOT NULL,
    award_id           TEXT NOT NULL REFERENCES award(id),
    session_id         TEXT NOT NULL REFERENCES market_session(id),
    need_id            TEXT NOT NULL REFERENCES need(id),
    fsp_id             TEXT NOT NULL REFERENCES party(id),
    resource_id        TEXT NOT NULL REFERENCES resource(id),
    system_operator_id TEXT NOT NULL REFERENCES party(id),
    status             TEXT NOT NULL,
    body               TEXT NOT NULL
);
CREATE UNIQUE INDEX obligation_award ON obligation(award_id);
CREATE INDEX obligation_session ON obligation(session_id);
CREATE INDEX obligation_need ON obligation(need_id);
CREATE INDEX obligation_fsp ON obligation(fsp_id, status);
CREATE INDEX obligation_resource ON obligation(resource_id);
CREATE INDEX obligation_system_operator ON obligation(system_operator_id, status);

CREATE TABLE need_result (
    id                 TEXT PRIMARY KEY,
    version            INTEGER NOT NULL,
    session_id         TEXT NOT NULL REFERENCES market_session(id),
    need_id            TEXT NOT NULL REFERENCES need(id),
    system_operator_id TEXT NOT NULL REFERENCES party(id),
    body               TEXT NOT NULL
);
CREATE UNIQUE INDEX need_result_need ON need_result(need_id);
CREATE INDEX need_result_session ON need_result(session_id);
CREATE INDEX need_result_system_operator ON need_result(system_operator_id);
