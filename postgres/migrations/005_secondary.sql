-- The secondary market: offers of obligations and the trades that move
-- them between FSPs. An obligation created by a trade names it
-- (obligation.trade_id) and shares the award of the obligation it
-- replaces, so "one obligation per award" now holds for the obligations
-- the clearing created, and "one obligation per trade" for the rest: a
-- trade completed twice could not store a second obligation.

ALTER TABLE obligation ADD COLUMN trade_id TEXT;
DROP INDEX obligation_award;
CREATE UNIQUE INDEX obligation_award ON obligation(award_id) WHERE trade_id IS NULL;
CREATE UNIQUE INDEX obligation_trade ON obligation(trade_id) WHERE trade_id IS NOT NULL;

CREATE TABLE secondary_offer (
    id                 TEXT PRIMARY KEY,
    version            BIGINT NOT NULL,
    obligation_id      TEXT NOT NULL REFERENCES obligation(id),
    seller_fsp_id      TEXT NOT NULL REFERENCES party(id),
    buyer_fsp_id       TEXT REFERENCES party(id),
    product_id         TEXT NOT NULL REFERENCES product(id),
    system_operator_id TEXT NOT NULL REFERENCES party(id),
    status             TEXT NOT NULL,
    expiry             BIGINT NOT NULL,
    body               TEXT NOT NULL
);
-- One live offer per obligation: two open offers could be sold twice.
CREATE UNIQUE INDEX secondary_offer_live ON secondary_offer(obligation_id) WHERE status IN ('open', 'reserved');
CREATE INDEX secondary_offer_obligation ON secondary_offer(obligation_id);
CREATE INDEX secondary_offer_seller ON secondary_offer(seller_fsp_id, status);
CREATE INDEX secondary_offer_buyer ON secondary_offer(buyer_fsp_id);
CREATE INDEX secondary_offer_product ON secondary_offer(product_id, status);
CREATE INDEX secondary_offer_system_operator ON secondary_offer(system_operator_id);
CREATE INDEX secondary_offer_due ON secondary_offer(status, expiry);

CREATE TABLE trade (
    id                   TEXT PRIMARY KEY,
    version              BIGINT NOT NULL,
    offer_id             TEXT NOT NULL REFERENCES secondary_offer(id),
    obligation_id        TEXT NOT NULL REFERENCES obligation(id),
    seller_fsp_id        TEXT NOT NULL REFERENCES party(id),
    buyer_fsp_id         TEXT NOT NULL REFERENCES party(id),
    resource_id          TEXT NOT NULL REFERENCES resource(id),
    system_operator_id   TEXT NOT NULL REFERENCES party(id),
    status               TEXT NOT NULL,
    objection_window_end BIGINT,
    body                 TEXT NOT NULL
);
CREATE INDEX trade_offer ON trade(offer_id, status);
CREATE INDEX trade_obligation ON trade(obligation_id);
CREATE INDEX trade_seller ON trade(seller_fsp_id);
CREATE INDEX trade_buyer ON trade(buyer_fsp_id);
CREATE INDEX trade_system_operator ON trade(system_operator_id);
CREATE INDEX trade_due ON trade(status, objection_window_end);
