package sqlstore_test

import (
	"context"
	"database/sql"
	"io/fs"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/sqlstore"
)

// Migration 009 moves the readings of a database written with the
// row-per-reading layout (006) into chunks: afterwards every reading reads
// back with its value, version, batch and superseded versions, gaps stay
// gaps, and the migrated chunks take corrections and late data.
func TestMigrateMeterChunks(t *testing.T) {
	bothStores(t, testMigrateMeterChunks)
}

func testMigrateMeterChunks(t *testing.T, db *sql.DB, d sqlstore.Dialect, migrations fs.FS, open func() flexhub.Store) {
	ctx := t.Context()
	migrateBefore(t, db, d, migrations, "009")
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, d.Rebind(q), args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	id := func(q string, args ...any) int64 {
		t.Helper()
		var id int64
		if err := db.QueryRowContext(ctx, d.Rebind(q), args...).Scan(&id); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return id
	}
	exec(`INSERT INTO party (id, version, eic, roles, body) VALUES ('fsp', 1, '10XFSP', 'fsp', '{}')`)
	exec(`INSERT INTO resource (id, version, fsp_id, status, body) VALUES ('res', 1, 'fsp', 'active', '{}')`)
	sec := id(`INSERT INTO meter_series (resource_id, quantity, flow, resolution_s, created_at) VALUES ('res', 'active_power', 'export', 1, 0) RETURNING id`)
	qh := id(`INSERT INTO meter_series (resource_id, quantity, flow, resolution_s, created_at) VALUES ('res', 'active_energy', 'import', 900, 0) RETURNING id`)
	recv1, recv2 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	b1 := id(`INSERT INTO meter_batch (audit_id, sender, received_at) VALUES ('batch-1', 'fsp', ?) RETURNING id`, recv1.UnixMicro())
	b2 := id(`INSERT INTO meter_batch (audit_id, sender, received_at) VALUES ('batch-2', 'fsp', ?) RETURNING id`, recv2.UnixMicro())

	// 1 s readings from 10 s before a chunk boundary to 10 s after, a gap at
	// +3 s, one corrected (version 2, its first version in the history),
	// readings on both sides of the epoch; 15 min readings.
	t0 := time.Date(2026, 10, 31, 12, 0, 0, 0, time.UTC).Unix()
	type row struct {
		series, start, value, version, batch int64
	}
	var rows []row
	for s := t0 - 10; s < t0+10; s++ {
		if s == t0+3 {
			continue
		}
		rows = append(rows, row{sec, s, 1000 * s % 7919, 1, b1})
	}
	rows[12] = row{sec, rows[12].start, 0, 2, b2} // t0+2, corrected to 0
	rows = append(rows, row{sec, -2, 5, 1, b1}, row{sec, -1, 6, 1, b1}, row{sec, 0, 7, 1, b1})
	for i := int64(0); i < 4; i++ {
		rows = append(rows, row{qh, t0 + 900*i, 100 + i, 1, b1})
	}
	for _, r := range rows {
		exec(`INSERT INTO meter_value (series_id, start_s, value, version, batch_id) VALUES (?, ?, ?, ?, ?)`, r.series, r.start, r.value, r.version, r.batch)
	}
	exec(`INSERT INTO meter_value_history (series_id, start_s, version, value, batch_id, superseded_at) VALUES (?, ?, 1, 4242, ?, ?)`, sec, t0+2, b1, recv2.UnixMicro())

	st := open()
	defer st.Close()
	key := func(id int64) flexhub.MeterSeriesKey {
		k := flexhub.MeterSeriesKey{SubjectKind: flexhub.MeterSubjectResource, SubjectID: "res", Quantity: "active_power", Flow: "export", Resolution: time.Second}
		if id == qh {
			k.Quantity, k.Flow, k.Resolution = "active_energy", "import", 15*time.Minute
		}
		return k
	}
	read := func(k flexhub.MeterSeriesKey, from, to int64) (out []flexhub.MeterRecord) {
		t.Helper()
		if err := st.View(ctx, func(tx flexhub.Tx) error {
			var err error
			out, err = tx.MeterReadings(ctx, k, time.Unix(from, 0), time.Unix(to, 0))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	check := func(what string, got []flexhub.MeterRecord, want []row) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d readings, want %d: %+v", what, len(got), len(want), got)
		}
		for i, w := range want {
			g := got[i]
			batch, recv := "batch-1", recv1
			if w.batch == b2 {
				batch, recv = "batch-2", recv2
			}
			if g.Start.Unix() != w.start || g.Value != w.value || g.Version != w.version || g.BatchID != batch || !g.ReceivedAt.Equal(recv) || g.Sender != "fsp" {
				t.Errorf("%s: reading %d is %+v, want %+v", what, i, g, w)
			}
		}
	}
	check("1 s series after the migration", read(key(sec), t0-3600, t0+3600), rows[:19])
	check("readings around the epoch", read(key(sec), -10, 10), rows[19:22])
	check("15 min series", read(key(qh), t0, t0+3600), rows[22:])
	var vs []flexhub.MeterRecord
	if err := st.View(ctx, func(tx flexhub.Tx) error {
		var err error
		vs, err = tx.MeterReadingVersions(ctx, key(sec), time.Unix(t0+2, 0))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Value != 4242 || vs[0].Version != 1 || vs[0].SupersededAt == nil || vs[1].Value != 0 || vs[1].Version != 2 || vs[1].SupersededAt != nil {
		t.Errorf("versions of the corrected reading after the migration: %+v", vs)
	}

	// The migrated chunk takes a resend, a correction and late data.
	var put []flexhub.MeterSeriesPut
	if err := st.Update(ctx, func(tx flexhub.Tx) error {
		var err error
		put, err = tx.PutMeterReadings(ctx, []flexhub.MeterValue{
			{Series: key(sec), Start: time.Unix(t0-10, 0), Value: rows[0].value},
			{Series: key(sec), Start: time.Unix(t0+1, 0), Value: 1},
			{Series: key(sec), Start: time.Unix(t0+3, 0), Value: 3},
		}, recv2, "fsp", "batch-3")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(put) != 1 || put[0].Unchanged != 1 || put[0].Corrected != 1 || put[0].Inserted != 1 {
		t.Errorf("writing into a migrated chunk: %+v", put)
	}
	got := read(key(sec), t0, t0+5)
	if len(got) != 5 || got[1].Value != 1 || got[1].Version != 2 || got[1].BatchID != "batch-3" || got[3].Value != 3 || got[3].BatchID != "batch-3" ||
		got[0].BatchID != "batch-1" || got[2].BatchID != "batch-2" || got[4].Value != rows[13].value {
		t.Errorf("the migrated chunk after writing into it: %+v", got)
	}
}

type sqliteDialect struct{}

func (sqliteDialect) Rebind(q string) string                     { return q }
func (sqliteDialect) IsUniqueViolation(error) bool               { return false }
func (sqliteDialect) Lock(context.Context, *sql.Tx, int64) error { return nil }
func (sqliteDialect) Arrays() bool                               { return false }

type pgDialect struct{}

func (pgDialect) Rebind(q string) string       { return sqlstore.RebindDollar(q) }
func (pgDialect) IsUniqueViolation(error) bool { return false }
func (pgDialect) Lock(ctx context.Context, tx *sql.Tx, key int64) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, key)
	return err
}
func (pgDialect) Arrays() bool { return true }
