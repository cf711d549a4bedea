package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flexhub/flexhub"
)

// The secondary market: offers and trades, stored like every other object.
// The partial unique index on secondary_offer(obligation_id) over live
// offers keeps an obligation from being on sale twice; the scheduler's
// queries (DueSecondaryOffers, DueTrades) use the (status, time) indexes.

var (
	secondaryOfferTable = &table{kind: flexhub.KindSecondaryOffer, name: "secondary_offer", noun: "secondary offer",
		cols: []string{"obligation_id", "seller_fsp_id", "buyer_fsp_id", "product_id", "system_operator_id", "status", "expiry"},
		filters: map[string]string{"obligation_id": "obligation_id = ?", "seller_fsp_id": "seller_fsp_id = ?", "buyer_fsp_id": "buyer_fsp_id = ?",
			"product_id": "product_id = ?", "system_operator_id": "system_operator_id = ?", "status": "status = ?"}}
	tradeTable = &table{kind: flexhub.KindTrade, name: "trade", noun: "trade",
		cols: []string{"offer_id", "obligation_id", "seller_fsp_id", "buyer_fsp_id", "resource_id", "system_operator_id", "status", "objection_window_end"},
		filters: map[string]string{"offer_id": "offer_id = ?", "obligation_id": "obligation_id = ?", "seller_fsp_id": "seller_fsp_id = ?",
			"buyer_fsp_id": "buyer_fsp_id = ?", "system_operator_id": "system_operator_id = ?", "status": "status = ?"}}
)

func secondaryOfferIdx(o *flexhub.SecondaryOffer) []any {
	return []any{o.ObligationID, o.SellerFSPID, ns(o.BuyerFSPID), o.ProductID, o.SystemOperatorID, o.Status, micros(o.Expiry)}
}

// CreateSecondaryOffer implements flexhub.Tx.
func (t *Tx) CreateSecondaryOffer(ctx context.Context, o *flexhub.SecondaryOffer) error {
	return t.insertObject(ctx, secondaryOfferTable, o.ID, &o.Version, o.CreatedAt, secondaryOfferIdx(o), o)
}

// UpdateSecondaryOffer implements flexhub.Tx.
func (t *Tx) UpdateSecondaryOffer(ctx context.Context, o *flexhub.SecondaryOffer) error {
	return t.updateObject(ctx, secondaryOfferTable, o.ID, &o.Version, o.UpdatedAt, secondaryOfferIdx(o), o)
}

// SecondaryOffer implements flexhub.Tx.
func (t *Tx) SecondaryOffer(ctx context.Context, id string) (*flexhub.SecondaryOffer, error) {
	return getObject[flexhub.SecondaryOffer](ctx, t, secondaryOfferTable, "id", id)
}

// ListSecondaryOffers implements flexhub.Tx.
func (t *Tx) ListSecondaryOffers(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.SecondaryOffer, string, error) {
	return listObjects[flexhub.SecondaryOffer](ctx, t, secondaryOfferTable, f, pg)
}

// DueSecondaryOffers implements flexhub.Tx.
func (t *Tx) DueSecondaryOffers(ctx context.Context, now time.Time, limit int) ([]*flexhub.SecondaryOffer, error) {
	return dueObjects[flexhub.SecondaryOffer](ctx, t, secondaryOfferTable, "expiry", flexhub.OfferOpen, now, limit)
}

func tradeIdx(tr *flexhub.Trade) []any {
	var end any
	if tr.ObjectionWindowEnd != nil {
		end = micros(*tr.ObjectionWindowEnd)
	}
	return []any{tr.OfferID, tr.ObligationID, tr.SellerFSPID, tr.BuyerFSPID, tr.ResourceID, tr.SystemOperatorID, tr.Status, end}
}

// CreateTrade implements flexhub.Tx.
func (t *Tx) CreateTrade(ctx context.Context, tr *flexhub.Trade) error {
	return t.insertObject(ctx, tradeTable, tr.ID, &tr.Version, tr.CreatedAt, tradeIdx(tr), tr)
}

// UpdateTrade implements flexhub.Tx.
func (t *Tx) UpdateTrade(ctx context.Context, tr *flexhub.Trade) error {
	return t.updateObject(ctx, tradeTable, tr.ID, &tr.Version, tr.UpdatedAt, tradeIdx(tr), tr)
}

// Trade implements flexhub.Tx.
func (t *Tx) Trade(ctx context.Context, id string) (*flexhub.Trade, error) {
	return getObject[flexhub.Trade](ctx, t, tradeTable, "id", id)
}

// ListTrades implements flexhub.Tx.
func (t *Tx) ListTrades(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.Trade, string, error) {
	return listObjects[flexhub.Trade](ctx, t, tradeTable, f, pg)
}

// DueTrades implements flexhub.Tx.
func (t *Tx) DueTrades(ctx context.Context, now time.Time, limit int) ([]*flexhub.Trade, error) {
	return dueObjects[flexhub.Trade](ctx, t, tradeTable, "objection_window_end", flexhub.TradeConfirmed, now, limit)
}

// dueObjects lists, earliest first, the objects of tb in status whose
// time column col has passed at now.
func dueObjects[T any](ctx context.Context, t *Tx, tb *table, col, status string, now time.Time, limit int) ([]*T, error) {
	if limit <= 0 {
		limit = flexhub.DefaultPageLimit
	}
	q := fmt.Sprintf(`SELECT id, body FROM %s WHERE status = ? AND %s <= ? ORDER BY %s, id LIMIT %d`, tb.name, col, col, limit)
	rows, err := t.query(ctx, q, status, micros(now))
	if err != nil {
		return nil, fmt.Errorf("list due %s: %w", tb.kind, err)
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, err
		}
		v := new(T)
		if err := json.Unmarshal([]byte(body), v); err != nil {
			return nil, fmt.Errorf("decode %s %s: %w", tb.kind, id, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
