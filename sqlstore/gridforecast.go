package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flexhub/flexhub"
)

// Grid forecasts (migration 018): written once, read by the newest that
// covers an instant.
var gridForecastTable = &table{kind: flexhub.KindGridForecast, name: "grid_forecast", noun: "grid forecast",
	cols:    []string{"grid_model_id", "start_at", "end_at"},
	filters: map[string]string{"grid_model_id": "grid_model_id = ?"}}

// CreateGridForecast implements flexhub.Tx. A forecast is written once
// (a revision is a new forecast), so it has no history rows: a forecast
// of a few thousand buses over a week is tens of MB of JSON.
func (t *Tx) CreateGridForecast(ctx context.Context, f *flexhub.GridForecast) error {
	f.Version = 1
	_, err := t.insertOnce(ctx, gridForecastTable, 1, func(int) (any, []any) {
		return f, []any{f.ID, f.Version, f.GridModelID, micros(f.Start), micros(f.End)}
	}, []string{"text", "bigint", "text", "bigint", "bigint"})
	return err
}

// GridForecast implements flexhub.Tx.
func (t *Tx) GridForecast(ctx context.Context, id string) (*flexhub.GridForecast, error) {
	return getObject[flexhub.GridForecast](ctx, t, gridForecastTable, "id", id)
}

// ListGridForecasts implements flexhub.Tx.
func (t *Tx) ListGridForecasts(ctx context.Context, gridModelID string, pg flexhub.Page) ([]*flexhub.GridForecast, string, error) {
	return listObjects[flexhub.GridForecast](ctx, t, gridForecastTable, flexhub.Filter{"grid_model_id": gridModelID}, pg)
}

// GridForecastAt implements flexhub.Tx.
func (t *Tx) GridForecastAt(ctx context.Context, gridModelID string, at time.Time) (*flexhub.GridForecast, error) {
	var body string
	err := t.queryRow(ctx, `SELECT body FROM grid_forecast WHERE grid_model_id = ? AND start_at <= ? AND end_at > ? ORDER BY id DESC LIMIT 1`,
		gridModelID, micros(at), micros(at)).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, flexhub.Errorf(flexhub.ENotFound, "grid model %s has no forecast covering %s", gridModelID, at.UTC().Format(time.RFC3339))
	}
	if err != nil {
		return nil, fmt.Errorf("read grid forecast: %w", err)
	}
	f := new(flexhub.GridForecast)
	if err := json.Unmarshal([]byte(body), f); err != nil {
		return nil, fmt.Errorf("decode grid forecast: %w", err)
	}
	return f, nil
}
