package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/flexhub/flexhub"
)

// Bulk readers for a settlement run, which reads the meter data, orders
// and metering points of thousands of resources at once: a few
// statements per block of resources instead of several per resource.

// forIDs runs q for a set of text ids and hands each row to scan. q has
// one %s where the id condition goes ("WHERE resource_id %s"), and the
// ids are its first argument: PostgreSQL gets "= ANY(?::text[])" with
// all of them, SQLite "IN (SELECT value FROM json_each(?))" with the ids
// as one JSON array, and "= ?" once for each id that is not UTF-8 (JSON
// cannot carry it as it is).
func (t *Tx) forIDs(ctx context.Context, q string, ids []string, scan func(*sql.Rows) error, args ...any) error {
	if len(ids) == 0 {
		return nil
	}
	run := func(cond string, first any) error {
		return t.scanRows(ctx, fmt.Sprintf(q, cond), scan, append([]any{first}, args...)...)
	}
	if t.d.Arrays() {
		return run(`= ANY(?::text[])`, ids)
	}
	var plain []string
	for _, id := range ids {
		if !utf8.ValidString(id) {
			if err := run(`= ?`, id); err != nil {
				return err
			}
			continue
		}
		plain = append(plain, id)
	}
	if len(plain) == 0 {
		return nil
	}
	return run(`IN (SELECT value FROM json_each(?))`, string(jsonStrings(plain)))
}

// forInts is forIDs for integer ids (always one statement).
func (t *Tx) forInts(ctx context.Context, q string, ids []int64, scan func(*sql.Rows) error, args ...any) error {
	if len(ids) == 0 {
		return nil
	}
	var first any = ids
	cond := `= ANY(?::bigint[])`
	if !t.d.Arrays() {
		buf := []byte{'['}
		for i, id := range ids {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendInt(buf, id, 10)
		}
		first, cond = string(append(buf, ']')), `IN (SELECT value FROM json_each(?))`
	}
	return t.scanRows(ctx, fmt.Sprintf(q, cond), scan, append([]any{first}, args...)...)
}

// scanRows runs a query and hands each row to scan.
func (t *Tx) scanRows(ctx context.Context, q string, scan func(*sql.Rows) error, args ...any) error {
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ListMeterSeriesOf implements flexhub.Tx.
func (t *Tx) ListMeterSeriesOf(ctx context.Context, subjectKind string, ids []string) (map[string][]flexhub.MeterSeries, error) {
	col, err := subjectColumn(subjectKind)
	if err != nil {
		return nil, err
	}
	out := map[string][]flexhub.MeterSeries{}
	err = t.forIDs(ctx, `SELECT id, `+col+`, quantity, flow, resolution_s, created_at FROM meter_series WHERE `+col+` %s ORDER BY `+col+`, quantity, flow, resolution_s`,
		ids, func(rows *sql.Rows) error {
			s := flexhub.MeterSeries{MeterSeriesKey: flexhub.MeterSeriesKey{SubjectKind: subjectKind}}
			var res, created int64
			if err := rows.Scan(&s.ID, &s.SubjectID, &s.Quantity, &s.Flow, &res, &created); err != nil {
				return err
			}
			s.Resolution, s.CreatedAt = time.Duration(res)*time.Second, fromMicros(created)
			out[s.SubjectID] = append(out[s.SubjectID], s)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("list meter series: %w", err)
	}
	return out, nil
}

// MeterPoints implements flexhub.Tx: the series looked up in one
// statement, then the chunks of all of them over the union of the
// windows in one more, each chunk decoded once and its readings handed to
// the windows of its series that hold them.
func (t *Tx) MeterPoints(ctx context.Context, windows []flexhub.MeterWindow) ([][]flexhub.MeterPoint, error) {
	out := make([][]flexhub.MeterPoint, len(windows))
	if len(windows) == 0 {
		return out, nil
	}
	keys := make([]flexhub.MeterSeriesKey, len(windows))
	for i, w := range windows {
		keys[i] = w.Key
	}
	ids, err := t.meterSeriesIDs(ctx, keys, time.Time{}, false)
	if err != nil {
		return nil, err
	}
	type want struct {
		i      int
		lo, hi int64
	}
	bySeries := map[int64][]want{}
	res := map[int64]int64{}
	var series []int64
	lo, hi := int64(0), int64(0)
	for i, w := range windows {
		a, b := ceilSecond(w.From), ceilSecond(w.To)
		if ids[i] == 0 || b <= a {
			continue
		}
		r := resolutionSeconds(w.Key.Resolution)
		first, _ := chunkStart(a, r)
		if len(series) == 0 || first < lo {
			lo = first
		}
		if len(series) == 0 || b > hi {
			hi = b
		}
		if _, ok := bySeries[ids[i]]; !ok {
			series = append(series, ids[i])
			res[ids[i]] = r
		}
		bySeries[ids[i]] = append(bySeries[ids[i]], want{i, a, b})
	}
	var entries []meterEntry
	err = t.forInts(ctx, `SELECT series_id, chunk_s, data FROM meter_chunk WHERE series_id %s AND chunk_s >= ? AND chunk_s < ? ORDER BY series_id, chunk_s`,
		series, func(rows *sql.Rows) error {
			var id, cs int64
			var data []byte
			if err := rows.Scan(&id, &cs, &data); err != nil {
				return err
			}
			if entries, err = decodeChunk(entries[:0], data); err != nil {
				return fmt.Errorf("meter chunk of series %d at %d: %w", id, cs, err)
			}
			r := res[id]
			for _, w := range bySeries[id] {
				if cs >= w.hi || cs+r*meterChunkSlots <= w.lo {
					continue
				}
				if out[w.i] == nil { // room for a complete window
					out[w.i] = make([]flexhub.MeterPoint, 0, min((w.hi-w.lo+r-1)/r, 1<<20))
				}
				for _, e := range entries {
					if s := cs + int64(e.slot)*r; s >= w.lo && s < w.hi {
						out[w.i] = append(out[w.i], flexhub.MeterPoint{Start: s, Value: e.value})
					}
				}
			}
			return nil
		}, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("read meter points: %w", err)
	}
	return out, nil
}

// ResourceActivationOrders implements flexhub.Tx.
func (t *Tx) ResourceActivationOrders(ctx context.Context, resourceIDs []string, from, to time.Time) ([]*flexhub.ActivationOrder, error) {
	var out []*flexhub.ActivationOrder
	err := t.forIDs(ctx, `SELECT id, body FROM activation_order WHERE resource_id %s AND last_end > ? AND first_start < ? ORDER BY id`, resourceIDs, func(rows *sql.Rows) error {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return err
		}
		o := new(flexhub.ActivationOrder)
		if err := json.Unmarshal([]byte(body), o); err != nil {
			return fmt.Errorf("decode activation order %s: %w", id, err)
		}
		out = append(out, o)
		return nil
	}, micros(from), micros(to))
	if err != nil {
		return nil, fmt.Errorf("read activation orders: %w", err)
	}
	return out, nil
}

// MeteringPoints implements flexhub.Tx.
func (t *Tx) MeteringPoints(ctx context.Context, ids []string) (map[string]*flexhub.MeteringPoint, error) {
	out := make(map[string]*flexhub.MeteringPoint, len(ids))
	err := t.forIDs(ctx, `SELECT id, body FROM metering_point WHERE id %s`, ids, func(rows *sql.Rows) error {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return err
		}
		m := new(flexhub.MeteringPoint)
		if err := json.Unmarshal([]byte(body), m); err != nil {
			return fmt.Errorf("decode metering point %s: %w", id, err)
		}
		out[id] = m
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read metering points: %w", err)
	}
	return out, nil
}
