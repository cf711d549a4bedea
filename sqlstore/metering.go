package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/flexhub/flexhub"
)

// Meter data (migration 006, docs/METERING.md): narrow integer rows, not
// JSON documents. A series (subject, quantity, flow, resolution) gets a
// small integer id on first use; meter_value holds the current version of
// each reading keyed (series_id, start_s) with its value in milli-units,
// its version and the ingestion (meter_batch) that wrote it;
// meter_value_history holds the versions corrections superseded. A
// resent equal value writes nothing; an ingestion that writes nothing
// leaves no batch row either.
//
// A batch is read (the stored versions of its readings, by index ranges)
// and then written; on PostgreSQL (Dialect.Arrays) each of the two is one
// set-based statement over unnest()ed array parameters, on SQLite row by
// row with prepared statements, which in-process costs microseconds a
// row.

func subjectColumn(kind string) (string, error) {
	switch kind {
	case flexhub.MeterSubjectResource:
		return "resource_id", nil
	case flexhub.MeterSubjectMeteringPoint:
		return "metering_point_id", nil
	}
	return "", flexhub.Errorf(flexhub.EInvalid, "%q is not a meter subject kind", kind)
}

func resolutionSeconds(d time.Duration) int64 { return int64(d / time.Second) }

// PutMeterReadings implements flexhub.Tx.
func (t *Tx) PutMeterReadings(ctx context.Context, values []flexhub.MeterValue, receivedAt time.Time, sender, batchID string) ([]flexhub.MeterSeriesPut, error) {
	if len(values) == 0 {
		return nil, nil
	}
	// The series, in order of first appearance, with their ids.
	order := map[flexhub.MeterSeriesKey]int{}
	var out []flexhub.MeterSeriesPut
	idx := make([]int, len(values)) // series of each value
	for n, v := range values {
		i, ok := 0, false
		if n > 0 && v.Series == values[n-1].Series {
			i, ok = idx[n-1], true
		} else {
			i, ok = order[v.Series]
		}
		if !ok {
			i = len(out)
			order[v.Series] = i
			out = append(out, flexhub.MeterSeriesPut{Key: v.Series, First: v.Start, Last: v.Start})
		}
		idx[n] = i
		p := &out[i]
		if v.Start.Before(p.First) {
			p.First = v.Start
		}
		if v.Start.After(p.Last) {
			p.Last = v.Start
		}
	}
	keys := make([]flexhub.MeterSeriesKey, len(out))
	for i := range out {
		keys[i] = out[i].Key
	}
	ids, err := t.meterSeriesIDs(ctx, keys, receivedAt, true)
	if err != nil {
		return nil, meterRace(t, err)
	}
	// Rows sorted by (series, start): duplicates side by side, and index
	// order for the writes (and one lock order for concurrent batches).
	rows := make([]meterRow, len(values))
	for i, v := range values {
		rows[i] = meterRow{series: ids[idx[i]], seriesIdx: idx[i], start: v.Start.Unix(), value: v.Value, res: resolutionSeconds(v.Series.Resolution)}
	}
	slices.SortFunc(rows, func(a, b meterRow) int {
		if c := cmp.Compare(a.series, b.series); c != 0 {
			return c
		}
		return cmp.Compare(a.start, b.start)
	})
	uniq := rows[:0]
	for _, r := range rows {
		if n := len(uniq); n > 0 && r.series == uniq[n-1].series && r.start == uniq[n-1].start {
			if r.value != uniq[n-1].value {
				return nil, flexhub.Errorf(flexhub.EInvalid, "the batch holds two different values for the reading at %s", time.Unix(r.start, 0).UTC().Format(time.RFC3339))
			}
			out[r.seriesIdx].Unchanged++
			continue
		}
		uniq = append(uniq, r)
	}
	rows = uniq
	if err := t.putMeter(ctx, rows, out, receivedAt, sender, batchID); err != nil {
		return nil, meterRace(t, err)
	}
	return out, nil
}

// meterRace turns the errors of a race with a concurrent ingestion of the
// same series or readings into EConflict, which the service retries.
func meterRace(t *Tx, err error) error {
	if t.d.IsUniqueViolation(err) || lostRace(err) {
		return flexhub.Errorf(flexhub.EConflict, "a concurrent ingestion wrote the same readings; retry")
	}
	return err
}

// lostRace reports a deadlock or serialization failure (SQLSTATE 40P01,
// 40001: PostgreSQL breaking a tie between two transactions writing the
// same readings in another order), which a retry resolves.
func lostRace(err error) bool {
	var st interface{ SQLState() string }
	return errors.As(err, &st) && (st.SQLState() == "40P01" || st.SQLState() == "40001")
}

type meterRow struct {
	series    int64
	seriesIdx int // index into the result
	start     int64
	value     int64
	res       int64 // the series' resolution, s
}

// meterSeriesIDs returns the ids of the series of keys, in order; with
// create, missing series are created, otherwise their id is 0.
func (t *Tx) meterSeriesIDs(ctx context.Context, keys []flexhub.MeterSeriesKey, now time.Time, create bool) ([]int64, error) {
	ids := make([]int64, len(keys))
	if t.d.Arrays() && len(keys) > 1 {
		if err := t.seriesIDsArrays(ctx, keys, ids); err != nil {
			return nil, err
		}
		var missing []int
		for i := range keys {
			if ids[i] == 0 {
				missing = append(missing, i)
			}
		}
		if !create || len(missing) == 0 {
			return ids, nil
		}
		for _, i := range missing {
			if err := t.createSeries(ctx, keys[i], now, &ids[i]); err != nil {
				return nil, err
			}
		}
		return ids, nil
	}
	for i, k := range keys {
		col, err := subjectColumn(k.SubjectKind)
		if err != nil {
			return nil, err
		}
		err = t.queryRow(ctx, `SELECT id FROM meter_series WHERE `+col+` = ? AND quantity = ? AND flow = ? AND resolution_s = ?`,
			k.SubjectID, k.Quantity, k.Flow, resolutionSeconds(k.Resolution)).Scan(&ids[i])
		if err == sql.ErrNoRows {
			if !create {
				continue
			}
			err = t.createSeries(ctx, k, now, &ids[i])
		}
		if err != nil {
			return nil, fmt.Errorf("meter series: %w", err)
		}
	}
	return ids, nil
}

func (t *Tx) createSeries(ctx context.Context, k flexhub.MeterSeriesKey, now time.Time, id *int64) error {
	var res, mp any
	if k.SubjectKind == flexhub.MeterSubjectResource {
		res = k.SubjectID
	} else {
		mp = k.SubjectID
	}
	err := t.queryRow(ctx, `INSERT INTO meter_series (resource_id, metering_point_id, quantity, flow, resolution_s, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		res, mp, k.Quantity, k.Flow, resolutionSeconds(k.Resolution), micros(now)).Scan(id)
	if err != nil {
		return fmt.Errorf("create meter series: %w", err)
	}
	return nil
}

// seriesIDsArrays looks up many series in two statements (PostgreSQL):
// one per subject kind.
func (t *Tx) seriesIDsArrays(ctx context.Context, keys []flexhub.MeterSeriesKey, ids []int64) error {
	for _, kind := range []string{flexhub.MeterSubjectResource, flexhub.MeterSubjectMeteringPoint} {
		col, _ := subjectColumn(kind)
		var subj, qty, flow []string
		var res []int64
		var idx []int64
		for i, k := range keys {
			if k.SubjectKind != kind {
				continue
			}
			subj, qty, flow = append(subj, k.SubjectID), append(qty, k.Quantity), append(flow, k.Flow)
			res, idx = append(res, resolutionSeconds(k.Resolution)), append(idx, int64(i))
		}
		if len(subj) == 0 {
			continue
		}
		rows, err := t.query(ctx, `SELECT k.i, s.id FROM unnest(?::text[], ?::text[], ?::text[], ?::bigint[], ?::bigint[]) AS k(subject, quantity, flow, resolution_s, i)
			JOIN meter_series s ON s.`+col+` = k.subject AND s.quantity = k.quantity AND s.flow = k.flow AND s.resolution_s = k.resolution_s`,
			subj, qty, flow, res, idx)
		if err != nil {
			return fmt.Errorf("meter series: %w", err)
		}
		for rows.Next() {
			var i, id int64
			if err := rows.Scan(&i, &id); err != nil {
				rows.Close()
				return err
			}
			ids[i] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// storedValue is the current version of a reading as read before a
// write.
type storedValue struct {
	value, version, batch int64
}

type readingKey struct{ series, start int64 }

// putMeter classifies the rows against what is stored — new, unchanged,
// or a correction — and writes the new and corrected ones. Reading first
// keeps the write a plain INSERT (no per-row conflict handling), and
// makes a batch that changes nothing write nothing. A concurrent writer
// that stored one of the readings in between makes the INSERT fail on
// the primary key, or the versioned UPDATE miss its row: EConflict, and
// the caller retries the whole transaction.
func (t *Tx) putMeter(ctx context.Context, rows []meterRow, out []flexhub.MeterSeriesPut, receivedAt time.Time, sender, batchID string) error {
	stored, err := t.storedValues(ctx, rows)
	if err != nil {
		return err
	}
	var fresh, corrected []meterRow
	var old []storedValue
	for _, r := range rows {
		st, ok := stored[readingKey{r.series, r.start}]
		switch {
		case !ok:
			fresh = append(fresh, r)
			out[r.seriesIdx].Inserted++
		case st.value == r.value:
			out[r.seriesIdx].Unchanged++
		default:
			corrected = append(corrected, r)
			old = append(old, st)
			out[r.seriesIdx].Corrected++
		}
	}
	if len(fresh) == 0 && len(corrected) == 0 {
		return nil
	}
	if t.d.Arrays() {
		return t.writeMeterArrays(ctx, fresh, corrected, old, receivedAt, sender, batchID)
	}
	return t.writeMeterRows(ctx, fresh, corrected, old, receivedAt, sender, batchID)
}

// storedValues reads the stored versions of the readings of rows (sorted
// by series and start). A series whose batch is dense is read as one
// index range [first, last]; a sparse one (a few corrections spread over
// a long time) reading by reading.
func (t *Tx) storedValues(ctx context.Context, rows []meterRow) (map[readingKey]storedValue, error) {
	type span struct {
		series, lo, hi, res int64
		n                   int
	}
	var spans []span
	for _, r := range rows {
		if len(spans) == 0 || spans[len(spans)-1].series != r.series {
			spans = append(spans, span{series: r.series, lo: r.start, hi: r.start, res: r.res})
		}
		sp := &spans[len(spans)-1]
		sp.hi, sp.n = r.start, sp.n+1
	}
	var rs, rlo, rhi []int64   // ranges
	var ks, kst []int64        // single readings
	sparse := map[int64]bool{} // series read reading by reading
	for _, sp := range spans {
		// Dense: the batch holds at least a quarter of the intervals of
		// its range, or the range is small.
		if (sp.hi-sp.lo)/sp.res < 4*int64(sp.n)+64 {
			rs, rlo, rhi = append(rs, sp.series), append(rlo, sp.lo), append(rhi, sp.hi)
		} else {
			sparse[sp.series] = true
		}
	}
	for _, r := range rows {
		if sparse[r.series] {
			ks, kst = append(ks, r.series), append(kst, r.start)
		}
	}
	out := make(map[readingKey]storedValue)
	scan := func(q string, args ...any) error {
		res, err := t.query(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("read stored meter readings: %w", err)
		}
		defer res.Close()
		for res.Next() {
			var k readingKey
			var v storedValue
			if err := res.Scan(&k.series, &k.start, &v.value, &v.version, &v.batch); err != nil {
				return err
			}
			out[k] = v
		}
		return res.Err()
	}
	const cols = `v.series_id, v.start_s, v.value, v.version, v.batch_id`
	if t.d.Arrays() {
		if len(rs) > 0 {
			if err := scan(`SELECT `+cols+` FROM unnest(?::int[], ?::bigint[], ?::bigint[]) AS r(series_id, lo, hi)
				CROSS JOIN LATERAL (SELECT * FROM meter_value m WHERE m.series_id = r.series_id AND m.start_s BETWEEN r.lo AND r.hi) v`, rs, rlo, rhi); err != nil {
				return nil, err
			}
		}
		if len(ks) > 0 {
			if err := scan(`SELECT `+cols+` FROM unnest(?::int[], ?::bigint[]) AS k(series_id, start_s)
				CROSS JOIN LATERAL (SELECT * FROM meter_value m WHERE m.series_id = k.series_id AND m.start_s = k.start_s) v`, ks, kst); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	for i := range rs {
		if err := scan(`SELECT `+cols+` FROM meter_value v WHERE v.series_id = ? AND v.start_s BETWEEN ? AND ?`, rs[i], rlo[i], rhi[i]); err != nil {
			return nil, err
		}
	}
	if len(ks) > 0 {
		st, err := t.tx.PrepareContext(ctx, t.d.Rebind(`SELECT `+cols+` FROM meter_value v WHERE v.series_id = ? AND v.start_s = ?`))
		if err != nil {
			return nil, err
		}
		defer st.Close()
		for i := range ks {
			var v storedValue
			err := st.QueryRowContext(ctx, ks[i], kst[i]).Scan(new(int64), new(int64), &v.value, &v.version, &v.batch)
			if err == sql.ErrNoRows {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read stored meter reading: %w", err)
			}
			out[readingKey{ks[i], kst[i]}] = v
		}
	}
	return out, nil
}

// writeMeterArrays writes a batch in one statement (PostgreSQL): the
// batch row, a plain INSERT of the new readings, the superseded versions
// into the history and the versioned UPDATE of the corrected ones, whose
// count must match.
func (t *Tx) writeMeterArrays(ctx context.Context, fresh, corrected []meterRow, old []storedValue, receivedAt time.Time, sender, batchID string) error {
	col := func(rows []meterRow, f func(meterRow) int64) []int64 {
		out := make([]int64, len(rows))
		for i, r := range rows {
			out[i] = f(r)
		}
		return out
	}
	series, start, value := func(r meterRow) int64 { return r.series }, func(r meterRow) int64 { return r.start }, func(r meterRow) int64 { return r.value }
	oldVal, oldVer, oldBatch := make([]int64, len(old)), make([]int64, len(old)), make([]int64, len(old))
	for i, o := range old {
		oldVal[i], oldVer[i], oldBatch[i] = o.value, o.version, o.batch
	}
	const q = `WITH b AS (
    INSERT INTO meter_batch (audit_id, sender, received_at) VALUES (?::text, ?::text, ?::bigint) RETURNING id
), ins AS (
    INSERT INTO meter_value (series_id, start_s, value, version, batch_id)
    SELECT i.series_id, i.start_s, i.value, 1, b.id FROM unnest(?::int[], ?::bigint[], ?::bigint[]) AS i(series_id, start_s, value) CROSS JOIN b
), c AS (
    SELECT * FROM unnest(?::int[], ?::bigint[], ?::bigint[], ?::bigint[], ?::int[], ?::bigint[]) AS c(series_id, start_s, value, old_value, old_version, old_batch)
), hist AS (
    INSERT INTO meter_value_history (series_id, start_s, version, value, batch_id, superseded_at)
    SELECT series_id, start_s, old_version, old_value, old_batch, ?::bigint FROM c
), upd AS (
    UPDATE meter_value m SET value = c.value, version = c.old_version + 1, batch_id = b.id
    FROM c CROSS JOIN b
    WHERE m.series_id = c.series_id AND m.start_s = c.start_s AND m.version = c.old_version
    RETURNING 1
)
SELECT count(*) FROM upd`
	var n int
	err := t.queryRow(ctx, q, batchID, sender, micros(receivedAt),
		col(fresh, series), col(fresh, start), col(fresh, value),
		col(corrected, series), col(corrected, start), col(corrected, value), oldVal, oldVer, oldBatch,
		micros(receivedAt)).Scan(&n)
	if err != nil {
		return fmt.Errorf("store meter readings: %w", err)
	}
	if n != len(corrected) {
		return flexhub.Errorf(flexhub.EConflict, "a concurrent ingestion corrected the same readings; retry")
	}
	return nil
}

// writeMeterRows writes a batch row by row (SQLite: one writer, so
// nothing changed since storedValues read).
func (t *Tx) writeMeterRows(ctx context.Context, fresh, corrected []meterRow, old []storedValue, receivedAt time.Time, sender, batchID string) error {
	var batch int64
	if err := t.queryRow(ctx, `INSERT INTO meter_batch (audit_id, sender, received_at) VALUES (?, ?, ?) RETURNING id`, batchID, sender, micros(receivedAt)).Scan(&batch); err != nil {
		return fmt.Errorf("store meter batch: %w", err)
	}
	if len(fresh) > 0 {
		ins, err := t.tx.PrepareContext(ctx, t.d.Rebind(`INSERT INTO meter_value (series_id, start_s, value, version, batch_id) VALUES (?, ?, ?, 1, ?)`))
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, r := range fresh {
			if _, err := ins.ExecContext(ctx, r.series, r.start, r.value, batch); err != nil {
				return fmt.Errorf("store meter reading: %w", err)
			}
		}
	}
	for i, r := range corrected {
		o := old[i]
		if _, err := t.exec(ctx, `INSERT INTO meter_value_history (series_id, start_s, version, value, batch_id, superseded_at) VALUES (?, ?, ?, ?, ?, ?)`,
			r.series, r.start, o.version, o.value, o.batch, micros(receivedAt)); err != nil {
			return fmt.Errorf("keep superseded meter reading: %w", err)
		}
		res, err := t.exec(ctx, `UPDATE meter_value SET value = ?, version = ?, batch_id = ? WHERE series_id = ? AND start_s = ? AND version = ?`,
			r.value, o.version+1, batch, r.series, r.start, o.version)
		if err != nil {
			return fmt.Errorf("correct meter reading: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return flexhub.Errorf(flexhub.EConflict, "a concurrent ingestion corrected the same readings; retry")
		}
	}
	return nil
}

// seriesID returns the id of a series, 0 if it does not exist.
func (t *Tx) seriesID(ctx context.Context, key flexhub.MeterSeriesKey) (int64, error) {
	ids, err := t.meterSeriesIDs(ctx, []flexhub.MeterSeriesKey{key}, time.Time{}, false)
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// MeterReadings implements flexhub.Tx.
func (t *Tx) MeterReadings(ctx context.Context, key flexhub.MeterSeriesKey, from, to time.Time) ([]flexhub.MeterRecord, error) {
	id, err := t.seriesID(ctx, key)
	if err != nil || id == 0 {
		return nil, err
	}
	rows, err := t.query(ctx, `SELECT v.start_s, v.value, v.version, b.received_at, b.sender, b.audit_id
		FROM meter_value v JOIN meter_batch b ON b.id = v.batch_id
		WHERE v.series_id = ? AND v.start_s >= ? AND v.start_s < ? ORDER BY v.start_s`, id, ceilSecond(from), ceilSecond(to))
	if err != nil {
		return nil, fmt.Errorf("read meter readings: %w", err)
	}
	defer rows.Close()
	var out []flexhub.MeterRecord
	for rows.Next() {
		var r flexhub.MeterRecord
		var start, recv int64
		if err := rows.Scan(&start, &r.Value, &r.Version, &recv, &r.Sender, &r.BatchID); err != nil {
			return nil, err
		}
		r.Start, r.ReceivedAt = time.Unix(start, 0).UTC(), fromMicros(recv)
		out = append(out, r)
	}
	return out, rows.Err()
}

// ceilSecond is the first whole second at or after t.
func ceilSecond(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// MeterReadingVersions implements flexhub.Tx.
func (t *Tx) MeterReadingVersions(ctx context.Context, key flexhub.MeterSeriesKey, start time.Time) ([]flexhub.MeterRecord, error) {
	id, err := t.seriesID(ctx, key)
	if err != nil || id == 0 {
		return nil, err
	}
	rows, err := t.query(ctx, `SELECT h.version, h.value, b.received_at, b.sender, b.audit_id, h.superseded_at
		FROM meter_value_history h JOIN meter_batch b ON b.id = h.batch_id
		WHERE h.series_id = ? AND h.start_s = ?
		UNION ALL
		SELECT v.version, v.value, b.received_at, b.sender, b.audit_id, NULL
		FROM meter_value v JOIN meter_batch b ON b.id = v.batch_id
		WHERE v.series_id = ? AND v.start_s = ?
		ORDER BY 1`, id, start.Unix(), id, start.Unix())
	if err != nil {
		return nil, fmt.Errorf("read meter reading versions: %w", err)
	}
	defer rows.Close()
	var out []flexhub.MeterRecord
	for rows.Next() {
		r := flexhub.MeterRecord{Start: time.Unix(start.Unix(), 0).UTC()}
		var recv int64
		var sup sql.NullInt64
		if err := rows.Scan(&r.Version, &r.Value, &recv, &r.Sender, &r.BatchID, &sup); err != nil {
			return nil, err
		}
		r.ReceivedAt = fromMicros(recv)
		if sup.Valid {
			at := fromMicros(sup.Int64)
			r.SupersededAt = &at
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ListMeterSeries implements flexhub.Tx.
func (t *Tx) ListMeterSeries(ctx context.Context, subjectKind, subjectID string) ([]flexhub.MeterSeries, error) {
	col, err := subjectColumn(subjectKind)
	if err != nil {
		return nil, err
	}
	rows, err := t.query(ctx, `SELECT id, quantity, flow, resolution_s, created_at FROM meter_series WHERE `+col+` = ? ORDER BY quantity, flow, resolution_s`, subjectID)
	if err != nil {
		return nil, fmt.Errorf("list meter series: %w", err)
	}
	defer rows.Close()
	var out []flexhub.MeterSeries
	for rows.Next() {
		s := flexhub.MeterSeries{MeterSeriesKey: flexhub.MeterSeriesKey{SubjectKind: subjectKind, SubjectID: subjectID}}
		var res, created int64
		if err := rows.Scan(&s.ID, &s.Quantity, &s.Flow, &res, &created); err != nil {
			return nil, err
		}
		s.Resolution, s.CreatedAt = time.Duration(res)*time.Second, fromMicros(created)
		out = append(out, s)
	}
	return out, rows.Err()
}
