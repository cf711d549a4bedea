package sqlstore

import (
	"context"

	"github.com/flexhub/flexhub"
)

// Market results: awards, obligations and need results, stored like every
// other object (JSON body, indexed columns, full history). The unique
// indexes on award(bid_id), obligation(award_id) (for obligations no
// trade created), obligation(trade_id) and need_result(need_id)
// are the store's half of exactly-once clearing: a second clearing of the
// same session could not store its results even if the session's
// versioned update did not stop it first.

var (
	awardTable = &table{kind: flexhub.KindAward, name: "award", noun: "award",
		cols: []string{"session_id", "need_id", "bid_id", "fsp_id", "system_operator_id", "status"},
		filters: map[string]string{"session_id": "session_id = ?", "need_id": "need_id = ?", "bid_id": "bid_id = ?",
			"fsp_id": "fsp_id = ?", "system_operator_id": "system_operator_id = ?", "status": "status = ?"}}
	obligationTable = &table{kind: flexhub.KindObligation, name: "obligation", noun: "obligation",
		cols: []string{"award_id", "session_id", "need_id", "fsp_id", "resource_id", "system_operator_id", "status", "trade_id"},
		filters: map[string]string{"session_id": "session_id = ?", "need_id": "need_id = ?", "fsp_id": "fsp_id = ?",
			"resource_id": "resource_id = ?", "system_operator_id": "system_operator_id = ?", "status": "status = ?"}}
	needResultTable = &table{kind: flexhub.KindNeedResult, name: "need_result", noun: "need result",
		cols:    []string{"session_id", "need_id", "system_operator_id"},
		filters: map[string]string{"session_id": "session_id = ?", "need_id": "need_id = ?", "system_operator_id": "system_operator_id = ?"}}
)

// CreateAward implements flexhub.Tx.
func (t *Tx) CreateAward(ctx context.Context, a *flexhub.Award) error {
	return t.insertObject(ctx, awardTable, a.ID, &a.Version, a.CreatedAt,
		[]any{a.SessionID, a.NeedID, a.BidID, a.FSPID, a.SystemOperatorID, a.Status}, a)
}

// Award implements flexhub.Tx.
func (t *Tx) Award(ctx context.Context, id string) (*flexhub.Award, error) {
	return getObject[flexhub.Award](ctx, t, awardTable, "id", id)
}

// ListAwards implements flexhub.Tx.
func (t *Tx) ListAwards(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.Award, string, error) {
	return listObjects[flexhub.Award](ctx, t, awardTable, f, pg)
}

func obligationIdx(o *flexhub.Obligation) []any {
	return []any{o.AwardID, o.SessionID, o.NeedID, o.FSPID, o.ResourceID, o.SystemOperatorID, o.Status, ns(o.TradeID)}
}

// CreateObligation implements flexhub.Tx.
func (t *Tx) CreateObligation(ctx context.Context, o *flexhub.Obligation) error {
	return t.insertObject(ctx, obligationTable, o.ID, &o.Version, o.CreatedAt, obligationIdx(o), o)
}

// UpdateObligation implements flexhub.Tx.
func (t *Tx) UpdateObligation(ctx context.Context, o *flexhub.Obligation) error {
	return t.updateObject(ctx, obligationTable, o.ID, &o.Version, o.UpdatedAt, obligationIdx(o), o)
}

// Obligation implements flexhub.Tx.
func (t *Tx) Obligation(ctx context.Context, id string) (*flexhub.Obligation, error) {
	return getObject[flexhub.Obligation](ctx, t, obligationTable, "id", id)
}

// ListObligations implements flexhub.Tx.
func (t *Tx) ListObligations(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.Obligation, string, error) {
	return listObjects[flexhub.Obligation](ctx, t, obligationTable, f, pg)
}

// CreateNeedResult implements flexhub.Tx.
func (t *Tx) CreateNeedResult(ctx context.Context, r *flexhub.NeedResult) error {
	return t.insertObject(ctx, needResultTable, r.ID, &r.Version, r.CreatedAt, []any{r.SessionID, r.NeedID, r.SystemOperatorID}, r)
}

// NeedResult implements flexhub.Tx.
func (t *Tx) NeedResult(ctx context.Context, id string) (*flexhub.NeedResult, error) {
	return getObject[flexhub.NeedResult](ctx, t, needResultTable, "id", id)
}

// ListNeedResults implements flexhub.Tx.
func (t *Tx) ListNeedResults(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.NeedResult, string, error) {
	return listObjects[flexhub.NeedResult](ctx, t, needResultTable, f, pg)
}
