package sqlstore

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/flexhub/flexhub"
)

// Grid models and their connection point mappings (migration 016). A
// version's row is written once and never updated. Its summary is also
// kept in object_history under kind grid_model and the grid area's id, one
// history version per model version, so AsOf("grid_model", gridAreaID, t)
// answers which model was in force at t, as for every register object.

// CreateGridModel implements flexhub.Tx.
func (t *Tx) CreateGridModel(ctx context.Context, m *flexhub.GridModel, file, network []byte) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode grid model: %w", err)
	}
	zfile, err := gz(file)
	if err != nil {
		return err
	}
	znet, err := gz(network)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO grid_model (id, grid_area_id, model_version, dso_id, uploaded_at, body, network, file) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.GridAreaID, m.ModelVersion, m.DSOID, micros(m.UploadedAt), string(body), znet, zfile)
	if err != nil {
		if t.d.IsUniqueViolation(err) {
			return flexhub.Errorf(flexhub.EConflict, "grid area %s already has grid model version %d (a concurrent upload); upload again", m.GridAreaID, m.ModelVersion)
		}
		return fmt.Errorf("insert grid model: %w", err)
	}
	if _, err := t.exec(ctx, `UPDATE object_history SET valid_to = ? WHERE kind = ? AND id = ? AND valid_to IS NULL`,
		micros(m.UploadedAt), flexhub.KindGridModel, m.GridAreaID); err != nil {
		return fmt.Errorf("close grid model history: %w", err)
	}
	return t.insertHistory(ctx, flexhub.KindGridModel, m.GridAreaID, m.ModelVersion, m.UploadedAt, body)
}

func gz(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func gunzip(b []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("grid model data: %w", err)
	}
	return io.ReadAll(r)
}

func (t *Tx) scanGridModel(row *sql.Row, what string) (*flexhub.GridModel, error) {
	var body string
	err := row.Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, flexhub.Errorf(flexhub.ENotFound, "%s not found", what)
	}
	if err != nil {
		return nil, fmt.Errorf("read grid model: %w", err)
	}
	m := new(flexhub.GridModel)
	if err := json.Unmarshal([]byte(body), m); err != nil {
		return nil, fmt.Errorf("decode grid model: %w", err)
	}
	return m, nil
}

// GridModel implements flexhub.Tx.
func (t *Tx) GridModel(ctx context.Context, id string) (*flexhub.GridModel, error) {
	return t.scanGridModel(t.queryRow(ctx, `SELECT body FROM grid_model WHERE id = ?`, id), "grid model "+id)
}

// CurrentGridModel implements flexhub.Tx.
func (t *Tx) CurrentGridModel(ctx context.Context, gridAreaID string) (*flexhub.GridModel, error) {
	return t.scanGridModel(t.queryRow(ctx, `SELECT body FROM grid_model WHERE grid_area_id = ? ORDER BY model_version DESC LIMIT 1`, gridAreaID),
		"grid model of grid area "+gridAreaID)
}

// ListGridModels implements flexhub.Tx.
func (t *Tx) ListGridModels(ctx context.Context, gridAreaID string) ([]*flexhub.GridModel, error) {
	var out []*flexhub.GridModel
	err := t.scanRows(ctx, `SELECT body FROM grid_model WHERE grid_area_id = ? ORDER BY model_version`, func(rows *sql.Rows) error {
		var body string
		if err := rows.Scan(&body); err != nil {
			return err
		}
		m := new(flexhub.GridModel)
		if err := json.Unmarshal([]byte(body), m); err != nil {
			return fmt.Errorf("decode grid model: %w", err)
		}
		out = append(out, m)
		return nil
	}, gridAreaID)
	return out, err
}

func (t *Tx) gridModelBlob(ctx context.Context, col, id string) ([]byte, error) {
	var z []byte
	err := t.queryRow(ctx, `SELECT `+col+` FROM grid_model WHERE id = ?`, id).Scan(&z)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, flexhub.Errorf(flexhub.ENotFound, "grid model %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read grid model %s: %w", col, err)
	}
	return gunzip(z)
}

// GridModelFile implements flexhub.Tx.
func (t *Tx) GridModelFile(ctx context.Context, id string) ([]byte, error) {
	return t.gridModelBlob(ctx, "file", id)
}

// GridModelNetwork implements flexhub.Tx.
func (t *Tx) GridModelNetwork(ctx context.Context, id string) ([]byte, error) {
	return t.gridModelBlob(ctx, "network", id)
}

// PutGridModelMappings implements flexhub.Tx: delete and insert per
// connection point (the portable upsert).
func (t *Tx) PutGridModelMappings(ctx context.Context, modelID string, ms []flexhub.GridModelMapping) error {
	for _, m := range ms {
		if _, err := t.exec(ctx, `DELETE FROM grid_model_mapping WHERE model_id = ? AND connection_point_id = ?`, modelID, m.ConnectionPointID); err != nil {
			return fmt.Errorf("delete grid model mapping: %w", err)
		}
		if m.BusID == "" {
			continue
		}
		if _, err := t.exec(ctx, `INSERT INTO grid_model_mapping (model_id, connection_point_id, bus_id, bus_index) VALUES (?, ?, ?, ?)`,
			modelID, m.ConnectionPointID, m.BusID, m.BusIndex); err != nil {
			return fmt.Errorf("insert grid model mapping: %w", err)
		}
	}
	return nil
}

// GridModelMappings implements flexhub.Tx.
func (t *Tx) GridModelMappings(ctx context.Context, modelID string) ([]flexhub.GridModelMapping, error) {
	var out []flexhub.GridModelMapping
	err := t.scanRows(ctx, `SELECT connection_point_id, bus_id, bus_index FROM grid_model_mapping WHERE model_id = ? ORDER BY connection_point_id`,
		func(rows *sql.Rows) error {
			var m flexhub.GridModelMapping
			if err := rows.Scan(&m.ConnectionPointID, &m.BusID, &m.BusIndex); err != nil {
				return err
			}
			out = append(out, m)
			return nil
		}, modelID)
	return out, err
}

// ConnectionPointBus implements flexhub.Tx.
func (t *Tx) ConnectionPointBus(ctx context.Context, connectionPointID string) (*flexhub.GridBusRef, error) {
	r := flexhub.GridBusRef{ConnectionPointID: connectionPointID}
	err := t.queryRow(ctx, `SELECT g.grid_area_id, g.id, g.model_version, m.bus_id, m.bus_index
		FROM connection_point c
		JOIN grid_model g ON g.grid_area_id = c.grid_area_id
		JOIN grid_model_mapping m ON m.model_id = g.id AND m.connection_point_id = c.id
		WHERE c.id = ? AND g.model_version = (SELECT MAX(model_version) FROM grid_model WHERE grid_area_id = c.grid_area_id)`,
		connectionPointID).Scan(&r.GridAreaID, &r.GridModelID, &r.ModelVersion, &r.BusID, &r.BusIndex)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, flexhub.Errorf(flexhub.ENotFound, "connection point %s is not mapped to a bus of its grid area's current grid model", connectionPointID)
	}
	if err != nil {
		return nil, fmt.Errorf("read connection point bus: %w", err)
	}
	return &r, nil
}
