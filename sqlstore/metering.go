package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flexhub/flexhub"
)

// Meter data (migrations 006 and 009, docs/METERING.md): narrow integer
// data, not JSON documents. A series (subject, quantity, flow,
// resolution) gets a small integer id on first use; meter_chunk holds the
// current versions of its readings, one row per chunk of meterChunkSlots
// intervals keyed (series_id, chunk_s), each reading in the chunk's blob
// with its value in milli-units, its version and the ingestion
// (meter_batch) that wrote it (meterchunk.go); meter_value_history holds
// the versions corrections superseded, one row each. A resent equal value
// writes nothing; an ingestion that writes nothing leaves no batch row
// either.
//
// A batch reads the chunks it touches (by key), merges itself into them
// in memory and writes back the chunks that change; on PostgreSQL
// (Dialect.Arrays) the read and the write are one set-based statement
// each over unnest()ed array parameters, on SQLite row by row with
// prepared statements, which in-process costs microseconds a row.

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
	if len(keys) > 1 {
		if err := t.seriesIDsJSON(ctx, keys, ids); err != nil {
			return nil, err
		}
	}
	for i, k := range keys {
		if ids[i] != 0 {
			continue
		}
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

// seriesIDsJSON looks up many series in one statement per subject kind
// (SQLite): the keys as one JSON array (json_each), each series by its
// unique index. Keys whose subject is not UTF-8 are left to the caller.
func (t *Tx) seriesIDsJSON(ctx context.Context, keys []flexhub.MeterSeriesKey, ids []int64) error {
	for _, kind := range []string{flexhub.MeterSubjectResource, flexhub.MeterSubjectMeteringPoint} {
		col, _ := subjectColumn(kind)
		buf := []byte{'['}
		n := 0
		for i, k := range keys {
			if k.SubjectKind != kind || !utf8.ValidString(k.SubjectID) || !utf8.ValidString(k.Quantity) || !utf8.ValidString(k.Flow) {
				continue
			}
			if n > 0 {
				buf = append(buf, ',')
			}
			n++
			buf = append(buf, '[')
			buf = appendJSONString(buf, k.SubjectID)
			buf = append(buf, ',')
			buf = appendJSONString(buf, k.Quantity)
			buf = append(buf, ',')
			buf = appendJSONString(buf, k.Flow)
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, resolutionSeconds(k.Resolution), 10)
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, int64(i), 10)
			buf = append(buf, ']')
		}
		if n == 0 {
			continue
		}
		buf = append(buf, ']')
		rows, err := t.query(ctx, `SELECT json_extract(j.value, '$[4]'), s.id FROM json_each(?) AS j CROSS JOIN meter_series AS s
			WHERE s.`+col+` = json_extract(j.value, '$[0]') AND s.quantity = json_extract(j.value, '$[1]')
			AND s.flow = json_extract(j.value, '$[2]') AND s.resolution_s = json_extract(j.value, '$[3]')`, string(buf))
		if err != nil {
			return fmt.Errorf("meter series: %w", err)
		}
		for rows.Next() {
			var i, id int64
			if err := rows.Scan(&i, &id); err != nil {
				rows.Close()
				return err
			}
			if i < 0 || i >= int64(len(ids)) {
				rows.Close()
				return fmt.Errorf("meter series: unexpected index %d", i)
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

// chunkKey names a chunk: its series and its start (Unix s).
type chunkKey struct{ series, start int64 }

// meterChunk is one chunk a batch touches: the batch's rows in it (sorted
// by start), what is stored, and what is to be written.
type meterChunk struct {
	key    chunkKey
	res    int64
	rows   []meterRow
	stored bool         // the chunk exists
	rev    int64        // its revision, when stored
	old    []meterEntry // its readings, when stored
	merged []meterEntry // its readings after the batch, if it changes
}

// meterHist is a superseded version, bound for meter_value_history.
type meterHist struct {
	series, start int64
	version       int32
	value, batch  int64
}

// pendingBatch marks, in merged chunks, the readings the batch being
// written stores; its id is known only once the batch row is written.
const pendingBatch = -1

// putMeter classifies the rows against what is stored — new, unchanged,
// or a correction — and writes the chunks that change. The chunks are
// read first, merged with the batch in memory and written back: a new
// chunk by INSERT, a changed one by an UPDATE that checks the revision
// read. A concurrent writer that stored a chunk in between makes the
// INSERT fail on the primary key, or the UPDATE miss its row: EConflict,
// and the caller retries the whole transaction.
func (t *Tx) putMeter(ctx context.Context, rows []meterRow, out []flexhub.MeterSeriesPut, receivedAt time.Time, sender, batchID string) error {
	var chunks []*meterChunk
	for i := 0; i < len(rows); {
		r := rows[i]
		cs, _ := chunkStart(r.start, r.res)
		j := i + 1
		for j < len(rows) && rows[j].series == r.series && rows[j].start < cs+r.res*meterChunkSlots {
			j++
		}
		chunks = append(chunks, &meterChunk{key: chunkKey{r.series, cs}, res: r.res, rows: rows[i:j]})
		i = j
	}
	if err := t.loadChunks(ctx, chunks); err != nil {
		return err
	}
	var hist []meterHist
	changed := 0
	for _, c := range chunks {
		if c.merge(out, &hist) {
			changed++
		}
	}
	if changed == 0 {
		return nil
	}
	var batch int64
	if err := t.queryRow(ctx, `INSERT INTO meter_batch (audit_id, sender, received_at) VALUES (?, ?, ?) RETURNING id`, batchID, sender, micros(receivedAt)).Scan(&batch); err != nil {
		return fmt.Errorf("store meter batch: %w", err)
	}
	if t.d.Arrays() {
		return t.writeChunksArrays(ctx, chunks, hist, batch, receivedAt)
	}
	return t.writeChunksRows(ctx, chunks, hist, batch, receivedAt)
}

// merge merges the chunk's rows into its stored readings, counting each
// row as inserted, unchanged or corrected in out and collecting the
// superseded versions; it reports whether the chunk changes.
func (c *meterChunk) merge(out []flexhub.MeterSeriesPut, hist *[]meterHist) bool {
	merged := make([]meterEntry, 0, len(c.old)+len(c.rows))
	changed := false
	i := 0
	for _, r := range c.rows {
		slot := int32((r.start - c.key.start) / c.res)
		for i < len(c.old) && c.old[i].slot < slot {
			merged = append(merged, c.old[i])
			i++
		}
		switch {
		case i < len(c.old) && c.old[i].slot == slot && c.old[i].value == r.value:
			merged = append(merged, c.old[i])
			i++
			out[r.seriesIdx].Unchanged++
		case i < len(c.old) && c.old[i].slot == slot:
			o := c.old[i]
			*hist = append(*hist, meterHist{series: c.key.series, start: r.start, version: o.version, value: o.value, batch: o.batch})
			merged = append(merged, meterEntry{slot: slot, version: o.version + 1, value: r.value, batch: pendingBatch})
			i++
			out[r.seriesIdx].Corrected++
			changed = true
		default:
			merged = append(merged, meterEntry{slot: slot, version: 1, value: r.value, batch: pendingBatch})
			out[r.seriesIdx].Inserted++
			changed = true
		}
	}
	merged = append(merged, c.old[i:]...)
	if changed {
		c.merged = merged
	}
	return changed
}

// data encodes the merged chunk, the batch's readings with its id.
func (c *meterChunk) data(batch int64) []byte {
	for i := range c.merged {
		if c.merged[i].batch == pendingBatch {
			c.merged[i].batch = batch
		}
	}
	return encodeChunk(make([]byte, 0, 16+4*len(c.merged)), c.merged)
}

// loadChunks reads the stored chunks of chunks (sorted by series and
// start), each by its key.
func (t *Tx) loadChunks(ctx context.Context, chunks []*meterChunk) error {
	byKey := make(map[chunkKey]*meterChunk, len(chunks))
	for _, c := range chunks {
		byKey[c.key] = c
	}
	load := func(k chunkKey, rev int64, data []byte) error {
		c := byKey[k]
		if c == nil {
			return fmt.Errorf("read meter chunks: unexpected chunk %v", k)
		}
		old, err := decodeChunk(nil, data)
		if err != nil {
			return fmt.Errorf("meter chunk of series %d at %d: %w", k.series, k.start, err)
		}
		c.stored, c.rev, c.old = true, rev, old
		return nil
	}
	if t.d.Arrays() {
		ks, kst := make([]int64, len(chunks)), make([]int64, len(chunks))
		for i, c := range chunks {
			ks[i], kst[i] = c.key.series, c.key.start
		}
		rows, err := t.query(ctx, `SELECT c.series_id, c.chunk_s, c.rev, c.data FROM unnest(?::int[], ?::bigint[]) AS k(series_id, chunk_s)
			JOIN meter_chunk c ON c.series_id = k.series_id AND c.chunk_s = k.chunk_s`, ks, kst)
		if err != nil {
			return fmt.Errorf("read meter chunks: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var k chunkKey
			var rev int64
			var data []byte
			if err := rows.Scan(&k.series, &k.start, &rev, &data); err != nil {
				return err
			}
			if err := load(k, rev, data); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	// SQLite: the keys as one JSON array, each chunk by its unique index.
	buf := make([]byte, 0, 2+len(chunks)*24)
	buf = append(buf, '[')
	for i, c := range chunks {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		buf = strconv.AppendInt(buf, c.key.series, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, c.key.start, 10)
		buf = append(buf, ']')
	}
	buf = append(buf, ']')
	rows, err := t.query(ctx, `SELECT c.series_id, c.chunk_s, c.rev, c.data FROM json_each(?) AS j CROSS JOIN meter_chunk AS c
		WHERE c.series_id = json_extract(j.value, '$[0]') AND c.chunk_s = json_extract(j.value, '$[1]')`, string(buf))
	if err != nil {
		return fmt.Errorf("read meter chunks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k chunkKey
		var rev int64
		var data []byte
		if err := rows.Scan(&k.series, &k.start, &rev, &data); err != nil {
			return err
		}
		if c := byKey[k]; c != nil && c.stored {
			return fmt.Errorf("read meter chunks: chunk %v twice", k)
		}
		if err := load(k, rev, data); err != nil {
			return err
		}
	}
	return rows.Err()
}

// writeChunksArrays writes the changed chunks and the superseded
// versions in one statement (PostgreSQL): a plain INSERT of the new
// chunks, an UPDATE of the changed ones that checks their revision (the
// count must match), the history rows.
func (t *Tx) writeChunksArrays(ctx context.Context, chunks []*meterChunk, hist []meterHist, batch int64, receivedAt time.Time) error {
	var is, ist, us, ust, urev []int64
	var idata, udata [][]byte
	for _, c := range chunks {
		if c.merged == nil {
			continue
		}
		if c.stored {
			us, ust, urev, udata = append(us, c.key.series), append(ust, c.key.start), append(urev, c.rev), append(udata, c.data(batch))
		} else {
			is, ist, idata = append(is, c.key.series), append(ist, c.key.start), append(idata, c.data(batch))
		}
	}
	hs, hst, hver, hval, hb := make([]int64, len(hist)), make([]int64, len(hist)), make([]int64, len(hist)), make([]int64, len(hist)), make([]int64, len(hist))
	for i, h := range hist {
		hs[i], hst[i], hver[i], hval[i], hb[i] = h.series, h.start, int64(h.version), h.value, h.batch
	}
	const q = `WITH ins AS (
    INSERT INTO meter_chunk (series_id, rev, chunk_s, data)
    SELECT i.series_id, 1, i.chunk_s, i.data FROM unnest(?::int[], ?::bigint[], ?::bytea[]) AS i(series_id, chunk_s, data)
), upd AS (
    UPDATE meter_chunk c SET rev = u.rev + 1, data = u.data
    FROM unnest(?::int[], ?::bigint[], ?::int[], ?::bytea[]) AS u(series_id, chunk_s, rev, data)
    WHERE c.series_id = u.series_id AND c.chunk_s = u.chunk_s AND c.rev = u.rev
    RETURNING 1
), hist AS (
    INSERT INTO meter_value_history (series_id, start_s, version, value, batch_id, superseded_at)
    SELECT h.series_id, h.start_s, h.version, h.value, h.batch_id, ?::bigint
    FROM unnest(?::int[], ?::bigint[], ?::int[], ?::bigint[], ?::bigint[]) AS h(series_id, start_s, version, value, batch_id)
)
SELECT count(*) FROM upd`
	var n int
	err := t.queryRow(ctx, q, is, ist, idata, us, ust, urev, udata, micros(receivedAt), hs, hst, hver, hval, hb).Scan(&n)
	if err != nil {
		return fmt.Errorf("store meter readings: %w", err)
	}
	if n != len(us) {
		return flexhub.Errorf(flexhub.EConflict, "a concurrent ingestion wrote the same readings; retry")
	}
	return nil
}

// writeChunksRows writes the changed chunks and the superseded versions
// row by row (SQLite: one writer, so nothing changed since loadChunks
// read; the revision is checked all the same). In-process, a prepared
// statement per chunk costs less than one statement over all of them
// with the blobs in JSON (hex), measured on the MQTT benchmark.
func (t *Tx) writeChunksRows(ctx context.Context, chunks []*meterChunk, hist []meterHist, batch int64, receivedAt time.Time) error {
	for _, c := range chunks {
		if c.merged == nil {
			continue
		}
		if !c.stored {
			if _, err := t.exec(ctx, `INSERT INTO meter_chunk (series_id, rev, chunk_s, data) VALUES (?, 1, ?, ?)`, c.key.series, c.key.start, c.data(batch)); err != nil {
				return fmt.Errorf("store meter chunk: %w", err)
			}
			continue
		}
		res, err := t.exec(ctx, `UPDATE meter_chunk SET rev = ?, data = ? WHERE series_id = ? AND chunk_s = ? AND rev = ?`,
			c.rev+1, c.data(batch), c.key.series, c.key.start, c.rev)
		if err != nil {
			return fmt.Errorf("store meter chunk: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return flexhub.Errorf(flexhub.EConflict, "a concurrent ingestion wrote the same readings; retry")
		}
	}
	for _, h := range hist {
		if _, err := t.exec(ctx, `INSERT INTO meter_value_history (series_id, start_s, version, value, batch_id, superseded_at) VALUES (?, ?, ?, ?, ?, ?)`,
			h.series, h.start, h.version, h.value, h.batch, micros(receivedAt)); err != nil {
			return fmt.Errorf("keep superseded meter reading: %w", err)
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
	res := resolutionSeconds(key.Resolution)
	lo, hi := ceilSecond(from), ceilSecond(to)
	if hi <= lo {
		return nil, nil
	}
	first, _ := chunkStart(lo, res)
	rows, err := t.query(ctx, `SELECT chunk_s, data FROM meter_chunk WHERE series_id = ? AND chunk_s >= ? AND chunk_s < ? ORDER BY chunk_s`, id, first, hi)
	if err != nil {
		return nil, fmt.Errorf("read meter readings: %w", err)
	}
	defer rows.Close()
	var out []flexhub.MeterRecord
	var entries []meterEntry
	var batches []int64
	for rows.Next() {
		var cs int64
		var data []byte
		if err := rows.Scan(&cs, &data); err != nil {
			return nil, err
		}
		if entries, err = decodeChunk(entries[:0], data); err != nil {
			return nil, fmt.Errorf("meter chunk of series %d at %d: %w", id, cs, err)
		}
		for _, e := range entries {
			start := cs + int64(e.slot)*res
			if start < lo || start >= hi {
				continue
			}
			out = append(out, flexhub.MeterRecord{Start: time.Unix(start, 0).UTC(), Value: e.value, Version: int64(e.version)})
			batches = append(batches, e.batch)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	info, err := t.meterBatches(ctx, batches)
	if err != nil {
		return nil, err
	}
	for i := range out {
		b, ok := info[batches[i]]
		if !ok {
			return nil, fmt.Errorf("meter reading at %s: batch %d not found", out[i].Start.Format(time.RFC3339), batches[i])
		}
		out[i].ReceivedAt, out[i].Sender, out[i].BatchID = b.receivedAt, b.sender, b.auditID
	}
	return out, nil
}

type meterBatchInfo struct {
	receivedAt      time.Time
	sender, auditID string
}

// meterBatches reads the batches of ids (repeated ids are read once).
func (t *Tx) meterBatches(ctx context.Context, ids []int64) (map[int64]meterBatchInfo, error) {
	seen := map[int64]bool{}
	var uniq []int64
	for i, id := range ids {
		if (i == 0 || id != ids[i-1]) && !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	out := make(map[int64]meterBatchInfo, len(uniq))
	scan := func(q string, args ...any) error {
		rows, err := t.query(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("read meter batches: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, recv int64
			var b meterBatchInfo
			if err := rows.Scan(&id, &recv, &b.sender, &b.auditID); err != nil {
				return err
			}
			b.receivedAt = fromMicros(recv)
			out[id] = b
		}
		return rows.Err()
	}
	const cols = `SELECT id, received_at, sender, audit_id FROM meter_batch WHERE id `
	if t.d.Arrays() {
		if len(uniq) > 0 {
			if err := scan(cols+`= ANY(?::bigint[])`, uniq); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	for len(uniq) > 0 {
		part := uniq[:min(len(uniq), 500)]
		uniq = uniq[len(part):]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		if err := scan(cols+`IN (?`+strings.Repeat(`, ?`, len(part)-1)+`)`, args...); err != nil {
			return nil, err
		}
	}
	return out, nil
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
	at := start.Unix()
	rows, err := t.query(ctx, `SELECT h.version, h.value, b.received_at, b.sender, b.audit_id, h.superseded_at
		FROM meter_value_history h JOIN meter_batch b ON b.id = h.batch_id
		WHERE h.series_id = ? AND h.start_s = ?
		ORDER BY h.version`, id, at)
	if err != nil {
		return nil, fmt.Errorf("read meter reading versions: %w", err)
	}
	defer rows.Close()
	var out []flexhub.MeterRecord
	for rows.Next() {
		r := flexhub.MeterRecord{Start: time.Unix(at, 0).UTC()}
		var recv, sup int64
		if err := rows.Scan(&r.Version, &r.Value, &recv, &r.Sender, &r.BatchID, &sup); err != nil {
			return nil, err
		}
		superseded := fromMicros(sup)
		r.ReceivedAt, r.SupersededAt = fromMicros(recv), &superseded
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	// The current version, from its chunk.
	cur, err := t.MeterReadings(ctx, key, time.Unix(at, 0), time.Unix(at+1, 0))
	if err != nil {
		return nil, err
	}
	return append(out, cur...), nil
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

// MeterSenders implements flexhub.Tx: one statement for all ids (an
// ingestion or an MQTT group checks hundreds of resources at once).
func (t *Tx) MeterSenders(ctx context.Context, subjectKind string, ids []string) (map[string]flexhub.MeterSender, error) {
	var q string
	switch subjectKind {
	case flexhub.MeterSubjectResource:
		q = `SELECT id, fsp_id, status FROM resource WHERE id `
	case flexhub.MeterSubjectMeteringPoint:
		q = `SELECT id, dso_id, '' FROM metering_point WHERE id `
	default:
		return nil, flexhub.Errorf(flexhub.EInvalid, "%q is not a meter subject kind", subjectKind)
	}
	out := make(map[string]flexhub.MeterSender, len(ids))
	err := t.forIDs(ctx, q+`%s`, ids, func(rows *sql.Rows) error {
		var id string
		var s flexhub.MeterSender
		if err := rows.Scan(&id, &s.Party, &s.Status); err != nil {
			return err
		}
		out[id] = s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read meter senders: %w", err)
	}
	return out, nil
}

// jsonStrings encodes ss, valid UTF-8, as a JSON array for SQLite's
// json_each.
func jsonStrings(ss []string) []byte {
	n := 2
	for _, s := range ss {
		n += len(s) + 3
	}
	buf := make([]byte, 0, n)
	buf = append(buf, '[')
	for i, s := range ss {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, s)
	}
	return append(buf, ']')
}

// appendJSONString appends s, valid UTF-8, as a JSON string.
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			buf = append(buf, '\\', c)
		case c < 0x20:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			buf = append(buf, c)
		}
	}
	return append(buf, '"')
}
