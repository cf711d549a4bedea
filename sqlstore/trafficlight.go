package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flexhub/flexhub"
)

var trafficLightOverrideTable = &table{kind: flexhub.KindTrafficLightOverride, name: "traffic_light_override", noun: "traffic-light override",
	cols:    []string{"resource_id", "dso_id", "fsp_id", "status", "start_at", "end_at"},
	filters: map[string]string{"resource_id": "resource_id = ?", "dso_id": "dso_id = ?", "fsp_id": "fsp_id = ?", "status": "status = ?"}}

func overrideIdx(o *flexhub.TrafficLightOverride) []any {
	return []any{o.ResourceID, o.DSOID, o.FSPID, o.Status, micros(o.Start), micros(o.End)}
}

// CreateTrafficLightOverride implements flexhub.Tx.
func (t *Tx) CreateTrafficLightOverride(ctx context.Context, o *flexhub.TrafficLightOverride) error {
	return t.insertObject(ctx, trafficLightOverrideTable, o.ID, &o.Version, o.CreatedAt, overrideIdx(o), o)
}

// UpdateTrafficLightOverride implements flexhub.Tx.
func (t *Tx) UpdateTrafficLightOverride(ctx context.Context, o *flexhub.TrafficLightOverride) error {
	return t.updateObject(ctx, trafficLightOverrideTable, o.ID, &o.Version, o.UpdatedAt, overrideIdx(o), o)
}

// TrafficLightOverride implements flexhub.Tx.
func (t *Tx) TrafficLightOverride(ctx context.Context, id string) (*flexhub.TrafficLightOverride, error) {
	return getObject[flexhub.TrafficLightOverride](ctx, t, trafficLightOverrideTable, "id", id)
}

// ListTrafficLightOverrides implements flexhub.Tx.
func (t *Tx) ListTrafficLightOverrides(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.TrafficLightOverride, string, error) {
	return listObjects[flexhub.TrafficLightOverride](ctx, t, trafficLightOverrideTable, f, pg)
}

// TrafficLightOverridesCovering implements flexhub.Tx.
func (t *Tx) TrafficLightOverridesCovering(ctx context.Context, resourceIDs []string, from, to time.Time) ([]*flexhub.TrafficLightOverride, error) {
	var out []*flexhub.TrafficLightOverride
	err := t.forIDs(ctx, `SELECT id, body FROM traffic_light_override WHERE resource_id %s AND status = ? AND start_at < ? AND end_at > ? ORDER BY id`, resourceIDs, func(rows *sql.Rows) error {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return err
		}
		o := new(flexhub.TrafficLightOverride)
		if err := json.Unmarshal([]byte(body), o); err != nil {
			return fmt.Errorf("decode traffic-light override %s: %w", id, err)
		}
		out = append(out, o)
		return nil
	}, flexhub.OverrideActive, micros(to), micros(from))
	if err != nil {
		return nil, fmt.Errorf("read traffic-light overrides: %w", err)
	}
	return out, nil
}
