package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// testMetering: meter readings are stored per series; a resent equal
// value changes nothing (no batch, no version), a different one is a
// correction whose old version stays readable; late data goes in; ranges
// are half-open; duplicates inside a batch count once; a failed
// transaction leaves nothing; concurrent corrections of one reading lose
// no version.
func (s *suite) testMetering(t *testing.T) {
	st, ws := s.seed(t, 1)
	w := ws[0]
	t0 := base.Add(-24 * time.Hour) // readings of the day before
	fifteen := flexhub.MeterSeriesKey{SubjectKind: flexhub.MeterSubjectResource, SubjectID: w.Unit.ID, Quantity: flexhub.QuantityActiveEnergy,
		Flow: flexhub.FlowImport, Resolution: 15 * time.Minute}
	second := fifteen
	second.Quantity, second.Flow, second.Resolution = flexhub.QuantityActivePower, flexhub.FlowExport, time.Second
	mp := flexhub.MeterSeriesKey{SubjectKind: flexhub.MeterSubjectMeteringPoint, SubjectID: w.MeteringPoint.ID, Quantity: flexhub.QuantityActiveEnergy,
		Flow: flexhub.FlowImport, Resolution: 15 * time.Minute}
	val := func(k flexhub.MeterSeriesKey, i int, v int64) flexhub.MeterValue {
		return flexhub.MeterValue{Series: k, Start: t0.Add(time.Duration(i) * k.Resolution), Value: v}
	}
	ms := meterStore{t: t, st: st, sender: w.FSP.ID}
	put, read, versions := ms.put, ms.read, ms.versions
	stats := func(what string, got flexhub.MeterSeriesPut, ins, unch, cor int) {
		t.Helper()
		if got.Inserted != ins || got.Unchanged != unch || got.Corrected != cor {
			t.Errorf("%s: inserted %d, unchanged %d, corrected %d; want %d, %d, %d", what, got.Inserted, got.Unchanged, got.Corrected, ins, unch, cor)
		}
	}

	// A first batch over three series: 8 quarter hours (4 of them with a
	// gap in the middle), 1,000 seconds, 2 quarter hours of the metering
	// point; per-series counts in the order of first appearance.
	var first []flexhub.MeterValue
	for _, i := range []int{0, 1, 2, 3, 6, 7} {
		first = append(first, val(fifteen, i, int64(1000*i+1)))
	}
	for i := range 1000 {
		first = append(first, val(second, i, int64(i)*1_000_000))
	}
	first = append(first, val(mp, 0, 5), val(mp, 1, 6))
	recvA := base.Add(time.Minute)
	got := put(first, recvA, "batch-a")
	if len(got) != 3 || got[0].Key != fifteen || got[1].Key != second || got[2].Key != mp {
		t.Fatalf("series of the first batch: %+v", got)
	}
	stats("first batch, 15 min", got[0], 6, 0, 0)
	stats("first batch, 1 s", got[1], 1000, 0, 0)
	stats("first batch, metering point", got[2], 2, 0, 0)
	if !got[0].First.Equal(t0) || !got[0].Last.Equal(t0.Add(7*15*time.Minute)) {
		t.Errorf("first/last of the 15-min series: %v %v", got[0].First, got[0].Last)
	}

	// Read back, half-open ranges.
	all := read(fifteen, t0, t0.Add(2*time.Hour))
	if len(all) != 6 {
		t.Fatalf("read %d readings, want 6: %+v", len(all), all)
	}
	r := all[1]
	if !r.Start.Equal(t0.Add(15*time.Minute)) || r.Value != 1001 || r.Version != 1 || r.Sender != w.FSP.ID || r.BatchID != "batch-a" || !r.ReceivedAt.Equal(recvA) {
		t.Errorf("reading read back: %+v", r)
	}
	if got := read(fifteen, t0.Add(15*time.Minute), t0.Add(45*time.Minute)); len(got) != 2 || got[0].Value != 1001 || got[1].Value != 2001 {
		t.Errorf("[t0+15m, t0+45m): %+v, want the readings at +15m and +30m", got)
	}
	if got := read(second, t0.Add(10*time.Second), t0.Add(20*time.Second)); len(got) != 10 || got[9].Value != 19_000_000 {
		t.Errorf("1 s series [10 s, 20 s): %d readings", len(got))
	}
	other := fifteen
	other.Flow = flexhub.FlowExport
	if got := read(other, t0, t0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("a series never written has readings: %+v", got)
	}

	// A resend changes nothing: no new version, no batch.
	got = put(first[:6], base.Add(2*time.Minute), "batch-resend")
	stats("resend", got[0], 0, 6, 0)
	if got := read(fifteen, t0, t0.Add(2*time.Hour)); got[1].Version != 1 || got[1].BatchID != "batch-a" {
		t.Errorf("after a resend: %+v", got[1])
	}

	// A mixed batch: one correction, one unchanged, late data for the
	// gap, and a duplicate with the same value, which counts as unchanged.
	recvB := base.Add(3 * time.Minute)
	got = put([]flexhub.MeterValue{val(fifteen, 1, 1500), val(fifteen, 2, 2001), val(fifteen, 4, 4001), val(fifteen, 5, 5001), val(fifteen, 5, 5001)}, recvB, "batch-b")
	stats("mixed batch", got[0], 2, 2, 1)
	all = read(fifteen, t0, t0.Add(2*time.Hour))
	if len(all) != 8 {
		t.Fatalf("after late data: %d readings, want 8", len(all))
	}
	for i, r := range all {
		if !r.Start.Equal(t0.Add(time.Duration(i) * 15 * time.Minute)) {
			t.Errorf("reading %d starts %v: not ordered by start", i, r.Start)
		}
	}
	if all[1].Value != 1500 || all[1].Version != 2 || all[1].BatchID != "batch-b" || !all[1].ReceivedAt.Equal(recvB) {
		t.Errorf("corrected reading: %+v", all[1])
	}
	vs := versions(fifteen, t0.Add(15*time.Minute))
	if len(vs) != 2 || vs[0].Version != 1 || vs[0].Value != 1001 || vs[0].BatchID != "batch-a" || vs[0].SupersededAt == nil || !vs[0].SupersededAt.Equal(recvB) ||
		vs[1].Version != 2 || vs[1].Value != 1500 || vs[1].SupersededAt != nil {
		t.Errorf("versions of the corrected reading: %+v", vs)
	}
	// Correcting back to the first value is a third version, not a resend.
	got = put([]flexhub.MeterValue{val(fifteen, 1, 1001)}, base.Add(4*time.Minute), "batch-c")
	stats("correction back", got[0], 0, 0, 1)
	if vs := versions(fifteen, t0.Add(15*time.Minute)); len(vs) != 3 || vs[2].Value != 1001 || vs[2].Version != 3 || vs[1].SupersededAt == nil {
		t.Errorf("three versions: %+v", vs)
	}
	if vs := versions(fifteen, t0.Add(30*time.Minute)); len(vs) != 1 || vs[0].Version != 1 {
		t.Errorf("versions of an uncorrected reading: %+v", vs)
	}
	if vs := versions(fifteen, t0.Add(-15*time.Minute)); len(vs) != 0 {
		t.Errorf("versions of a reading never sent: %+v", vs)
	}

	// A sparse batch (three readings spread over 1,000 s of a 1-second
	// series) is classified reading by reading: two corrections, one
	// unchanged.
	got = put([]flexhub.MeterValue{val(second, 999, 6), val(second, 0, 5), val(second, 500, 500_000_000)}, base.Add(5*time.Minute), "batch-sparse")
	stats("sparse batch", got[0], 0, 1, 2)
	if got := read(second, t0, t0.Add(1000*time.Second)); len(got) != 1000 || got[0].Value != 5 || got[0].Version != 2 || got[999].Value != 6 || got[500].Version != 1 {
		t.Errorf("after the sparse batch: %d readings, %+v %+v", len(got), got[0], got[999])
	}

	// Two different values for one reading in one batch: refused.
	err := tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		_, err := tx.PutMeterReadings(ctx, []flexhub.MeterValue{val(fifteen, 9, 1), val(fifteen, 9, 2)}, base, w.FSP.ID, "batch-dup")
		return err
	})
	wantKind(t, "two values for one reading", err, flexhub.EInvalid)

	// A failed transaction leaves nothing behind.
	errRollback := fmt.Errorf("roll back")
	err = tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		if _, err := tx.PutMeterReadings(ctx, []flexhub.MeterValue{val(fifteen, 10, 1), val(fifteen, 0, 99), val(other, 0, 1)}, base, w.FSP.ID, "batch-x"); err != nil {
			return err
		}
		return errRollback
	})
	if err != errRollback {
		t.Fatalf("rolled back put: %v", err)
	}
	if got := read(fifteen, t0, t0.Add(3*time.Hour)); len(got) != 8 || got[0].Value != 1 {
		t.Errorf("a rolled back batch left readings: %d, first %+v", len(got), got[0])
	}

	// Series per subject.
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		ss, err := tx.ListMeterSeries(ctx, flexhub.MeterSubjectResource, w.Unit.ID)
		if err != nil {
			return err
		}
		if len(ss) != 2 || ss[0].MeterSeriesKey != fifteen || ss[1].MeterSeriesKey != second || ss[0].ID == 0 {
			t.Errorf("series of the unit: %+v (the rolled back one must not be there)", ss)
		}
		ss, err = tx.ListMeterSeries(ctx, flexhub.MeterSubjectMeteringPoint, w.MeteringPoint.ID)
		if err != nil {
			return err
		}
		if len(ss) != 1 || ss[0].MeterSeriesKey != mp {
			t.Errorf("series of the metering point: %+v", ss)
		}
		ss, err = tx.ListMeterSeries(ctx, flexhub.MeterSubjectMeteringPoint, w.Unit.ID)
		if err != nil || len(ss) != 0 {
			t.Errorf("series of a resource listed as a metering point: %+v %v", ss, err)
		}
		// Many subjects at once: the same series, subjects without any
		// (or of the other kind) absent.
		many, err := tx.ListMeterSeriesOf(ctx, flexhub.MeterSubjectResource, []string{w.Unit.ID, w.MeteringPoint.ID, "no-such-resource"})
		if err != nil {
			return err
		}
		one, _ := tx.ListMeterSeries(ctx, flexhub.MeterSubjectResource, w.Unit.ID)
		if len(many) != 1 || !slices.Equal(many[w.Unit.ID], one) {
			t.Errorf("series of many resources: %+v, want the unit's %+v only", many, one)
		}
		many, err = tx.ListMeterSeriesOf(ctx, flexhub.MeterSubjectMeteringPoint, []string{w.MeteringPoint.ID})
		if err != nil || len(many) != 1 || len(many[w.MeteringPoint.ID]) != 1 || many[w.MeteringPoint.ID][0].MeterSeriesKey != mp {
			t.Errorf("series of many metering points: %+v %v", many, err)
		}
		return nil
	})

	// Concurrent corrections of the same reading: every committed value
	// is a version, none lost (a writer that loses a race may fail with
	// EConflict and retries).
	const writers = 6
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	target := val(mp, 20, 0)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := target
			v.Value = int64(100 + i)
			for attempt := 0; ; attempt++ {
				err := st.Update(t.Context(), func(tx flexhub.Tx) error {
					_, err := tx.PutMeterReadings(t.Context(), []flexhub.MeterValue{v}, base.Add(time.Duration(i)*time.Second), w.DSO.ID, fmt.Sprintf("batch-w%d-%d", i, attempt))
					return err
				})
				if flexhub.ErrorKind(err) == flexhub.EConflict && attempt < 50 {
					continue
				}
				errs <- err
				return
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent correction: %v", err)
		}
	}
	vs = versions(mp, target.Start)
	if len(vs) != writers {
		t.Fatalf("%d versions after %d concurrent writers, want %d: %+v", len(vs), writers, writers, vs)
	}
	seen := map[int64]bool{}
	for i, v := range vs {
		if v.Version != int64(i+1) || seen[v.Value] || (i < writers-1) != (v.SupersededAt != nil) {
			t.Errorf("version %d: %+v", i, v)
		}
		seen[v.Value] = true
	}

	t.Run("Chunks", s.testMeterChunks)
}

// testMeterChunks: the layout stores a series in chunks of intervals;
// readings across chunk boundaries, sparse writes and corrections inside
// a chunk, several batches per chunk, series of other resolutions beside
// each other, zero values and readings before 1970 read back exactly,
// and absent readings stay absent.
func (s *suite) testMeterChunks(t *testing.T) {
	st, ws := s.seed(t, 1)
	w := ws[0]
	key := func(q string, res time.Duration) flexhub.MeterSeriesKey {
		return flexhub.MeterSeriesKey{SubjectKind: flexhub.MeterSubjectResource, SubjectID: w.Unit.ID, Quantity: q, Flow: flexhub.FlowExport, Resolution: res}
	}
	sec, five, fifteen := key(flexhub.QuantityActivePower, time.Second), key(flexhub.QuantityActivePower, 5*time.Second), key(flexhub.QuantityActivePower, 15*time.Minute)
	ms := meterStore{t: t, st: st, sender: w.FSP.ID}
	put, read, versions := ms.put, ms.read, ms.versions
	// want checks that a read returns exactly the readings of exp, in
	// order of start.
	type reading struct {
		start          time.Time
		value, version int64
		batch          string
	}
	want := func(what string, got []flexhub.MeterRecord, exp []reading) {
		t.Helper()
		if len(got) != len(exp) {
			t.Errorf("%s: %d readings, want %d", what, len(got), len(exp))
			return
		}
		for i, e := range exp {
			g := got[i]
			if !g.Start.Equal(e.start) || g.Value != e.value || g.Version != e.version || g.BatchID != e.batch || g.Sender != w.FSP.ID {
				t.Errorf("%s: reading %d is %+v, want %+v", what, i, g, e)
				return
			}
		}
	}
	at := func(k flexhub.MeterSeriesKey, t0 time.Time, i int) time.Time {
		return t0.Add(time.Duration(i) * k.Resolution)
	}
	value := func(i int) int64 { return int64(1_000_000 + i%700*1000 + i) }

	// 1 s data over several chunks (whatever their size, a boundary
	// falls on every quarter hour), from 10 s before a quarter hour to
	// 10 s after the next, with a gap of 5 s on the first and one of 3 s
	// between them.
	t0 := base.Add(-48 * time.Hour) // on a quarter hour
	var vs []flexhub.MeterValue
	var exp []reading
	for i := 890; i < 1810; i++ {
		if (i >= 898 && i < 903) || (i >= 1200 && i < 1203) {
			continue
		}
		vs = append(vs, flexhub.MeterValue{Series: sec, Start: at(sec, t0, i), Value: value(i)})
		exp = append(exp, reading{at(sec, t0, i), value(i), 1, "chunks-a"})
	}
	got := put(vs, base.Add(time.Minute), "chunks-a")
	if got[0].Inserted != len(vs) || got[0].Unchanged != 0 || got[0].Corrected != 0 {
		t.Fatalf("across chunks: %+v", got[0])
	}
	want("all of it", read(sec, t0, t0.Add(time.Hour)), exp)
	want("across the first boundary, with its gap", read(sec, at(sec, t0, 895), at(sec, t0, 906)), append(append([]reading{}, exp[5:8]...), exp[8:11]...))
	want("across the second boundary", read(sec, at(sec, t0, 1795), at(sec, t0, 1805)), exp[len(exp)-15:len(exp)-5])
	want("the gap inside", read(sec, at(sec, t0, 1200), at(sec, t0, 1203)), nil)
	want("a range ending on a boundary", read(sec, at(sec, t0, 899), at(sec, t0, 900)), nil)
	// A resend across the chunks changes nothing.
	if got := put(vs, base.Add(2*time.Minute), "chunks-resend"); got[0].Unchanged != len(vs) || got[0].Inserted+got[0].Corrected != 0 {
		t.Errorf("resend across chunks: %+v", got[0])
	}

	// Late data into the gaps and a correction inside a chunk, in one
	// batch: only those readings change; their neighbours keep version
	// and batch.
	got = put([]flexhub.MeterValue{
		{Series: sec, Start: at(sec, t0, 1201), Value: 0}, // a zero is a reading, not a gap
		{Series: sec, Start: at(sec, t0, 900), Value: 7},
		{Series: sec, Start: at(sec, t0, 1300), Value: 42}, // correction
		{Series: sec, Start: at(sec, t0, 1301), Value: value(1301)},
	}, base.Add(3*time.Minute), "chunks-b")
	if got[0].Inserted != 2 || got[0].Corrected != 1 || got[0].Unchanged != 1 {
		t.Errorf("late data and a correction: %+v", got[0])
	}
	want("the filled gap and its neighbours", read(sec, at(sec, t0, 1199), at(sec, t0, 1204)), []reading{
		{at(sec, t0, 1199), value(1199), 1, "chunks-a"}, {at(sec, t0, 1201), 0, 1, "chunks-b"}, {at(sec, t0, 1203), value(1203), 1, "chunks-a"}})
	want("the corrected reading and its neighbours", read(sec, at(sec, t0, 1299), at(sec, t0, 1302)), []reading{
		{at(sec, t0, 1299), value(1299), 1, "chunks-a"}, {at(sec, t0, 1300), 42, 2, "chunks-b"}, {at(sec, t0, 1301), value(1301), 1, "chunks-a"}})
	want("the boundary after late data", read(sec, at(sec, t0, 897), at(sec, t0, 904)), []reading{
		{at(sec, t0, 897), value(897), 1, "chunks-a"}, {at(sec, t0, 900), 7, 1, "chunks-b"}, {at(sec, t0, 903), value(903), 1, "chunks-a"}})
	if vs := versions(sec, at(sec, t0, 1300)); len(vs) != 2 || vs[0].Value != value(1300) || vs[0].BatchID != "chunks-a" || vs[1].Value != 42 || vs[1].Version != 2 {
		t.Errorf("versions of the reading corrected inside a chunk: %+v", vs)
	}
	if n := len(read(sec, t0, t0.Add(time.Hour))); n != len(exp)+2 {
		t.Errorf("%d readings after late data, want %d", n, len(exp)+2)
	}

	// Sparse writes into one chunk (the first minute of a quarter hour),
	// one batch each, as streamed data arrives: each reading keeps its own
	// batch and time received.
	t1 := t0.Add(6 * time.Hour)
	var sparse []reading
	for n, i := range []int{30, 0, 59, 31, 17, 29} {
		b := fmt.Sprintf("chunks-sparse-%d", n)
		put([]flexhub.MeterValue{{Series: sec, Start: at(sec, t1, i), Value: int64(i)}}, base.Add(time.Duration(10+n)*time.Minute), b)
		sparse = append(sparse, reading{at(sec, t1, i), int64(i), 1, b})
	}
	slices.SortFunc(sparse, func(a, b reading) int { return a.start.Compare(b.start) })
	got2 := read(sec, t1, t1.Add(15*time.Minute))
	want("sparse writes into one chunk", got2, sparse)
	for _, r := range got2 {
		var n int
		fmt.Sscanf(r.BatchID, "chunks-sparse-%d", &n)
		if !r.ReceivedAt.Equal(base.Add(time.Duration(10+n) * time.Minute)) {
			t.Errorf("reading at %v: received %v, the time of another batch", r.Start, r.ReceivedAt)
		}
	}

	// Other resolutions of the same quantity beside the 1 s series: 5 s
	// and 15 min (here across a boundary of its chunks of 300 intervals:
	// 3 1/8 days); each series reads back its own readings only.
	var fiveExp, fifteenExp []reading
	vs = nil
	for i := range 1000 {
		vs = append(vs, flexhub.MeterValue{Series: five, Start: at(five, t0, i), Value: int64(5000 + i)})
		fiveExp = append(fiveExp, reading{at(five, t0, i), int64(5000 + i), 1, "chunks-res"})
	}
	const span15 = 300 * 15 * 60 // s
	b15 := time.Unix((t0.Unix()/span15+1)*span15, 0).UTC()
	for i := -5; i < 5; i++ {
		vs = append(vs, flexhub.MeterValue{Series: fifteen, Start: at(fifteen, b15, i), Value: int64(15_000 + i)})
		fifteenExp = append(fifteenExp, reading{at(fifteen, b15, i), int64(15_000 + i), 1, "chunks-res"})
	}
	if got := put(vs, base.Add(time.Hour), "chunks-res"); len(got) != 2 || got[0].Inserted != 1000 || got[1].Inserted != 10 {
		t.Errorf("mixed resolutions: %+v", got)
	}
	want("5 s series", read(five, t0, t0.Add(2*time.Hour)), fiveExp)
	want("15 min series across its chunk boundary", read(fifteen, b15.Add(-2*time.Hour), b15.Add(2*time.Hour)), fifteenExp)
	want("15 min series, the half after the boundary", read(fifteen, b15, b15.Add(2*time.Hour)), fifteenExp[5:])
	if n := len(read(sec, t0, t0.Add(time.Hour))); n != len(exp)+2 {
		t.Errorf("the 1 s series has %d readings after writes to the other resolutions, want %d", n, len(exp)+2)
	}

	// Readings before 1970 (late data has no lower bound): chunks start
	// before the epoch too. And the largest value a reading may hold.
	epoch := time.Unix(0, 0).UTC()
	var early []reading
	vs = nil
	for i := -3; i < 2; i++ {
		v := int64(i + 3)
		if i == 1 {
			v = 10_000_000_000_000_000
		}
		vs = append(vs, flexhub.MeterValue{Series: sec, Start: at(sec, epoch, i), Value: v})
		early = append(early, reading{at(sec, epoch, i), v, 1, "chunks-epoch"})
	}
	put(vs, base.Add(2*time.Hour), "chunks-epoch")
	want("around the epoch", read(sec, epoch.Add(-time.Hour), epoch.Add(time.Hour)), early)
	want("just before the epoch", read(sec, epoch.Add(-2*time.Second), epoch), early[1:3])
}

// meterStore stores and reads meter data in one transaction per call,
// failing the test on an error.
type meterStore struct {
	t      *testing.T
	st     flexhub.Store
	sender string
}

func (m meterStore) put(vs []flexhub.MeterValue, at time.Time, batch string) []flexhub.MeterSeriesPut {
	m.t.Helper()
	var out []flexhub.MeterSeriesPut
	update(m.t, m.st, func(ctx context.Context, tx flexhub.Tx) error {
		var err error
		out, err = tx.PutMeterReadings(ctx, vs, at, m.sender, batch)
		return err
	})
	return out
}

// read reads a window with MeterReadings, and checks on the way that
// the bulk reader MeterPoints gives the same starts and values for it —
// asked together with a wider window of the same series and one of a
// series that does not exist — so every read of the suite checks both.
func (m meterStore) read(k flexhub.MeterSeriesKey, from, to time.Time) []flexhub.MeterRecord {
	m.t.Helper()
	var out []flexhub.MeterRecord
	view(m.t, m.st, func(ctx context.Context, tx flexhub.Tx) error {
		var err error
		if out, err = tx.MeterReadings(ctx, k, from, to); err != nil {
			return err
		}
		wideFrom, wideTo := from.Add(-7*k.Resolution), to.Add(3*k.Resolution)
		wide, err := tx.MeterReadings(ctx, k, wideFrom, wideTo)
		if err != nil {
			return err
		}
		none := k
		none.Resolution = 3 * time.Second
		pts, err := tx.MeterPoints(ctx, []flexhub.MeterWindow{{Key: k, From: from, To: to}, {Key: none, From: from, To: to}, {Key: k, From: wideFrom, To: wideTo}})
		if err != nil {
			return err
		}
		if len(pts) != 3 || len(pts[1]) != 0 {
			m.t.Errorf("MeterPoints: %d windows, %d points of a series that does not exist", len(pts), len(pts[1]))
			return nil
		}
		for i, recs := range [][]flexhub.MeterRecord{out, nil, wide} {
			if len(pts[i]) != len(recs) {
				m.t.Errorf("MeterPoints window %d: %d points, MeterReadings %d", i, len(pts[i]), len(recs))
				continue
			}
			for j, r := range recs {
				if p := pts[i][j]; p.Start != r.Start.Unix() || p.Value != r.Value {
					m.t.Errorf("MeterPoints window %d point %d: %+v, MeterReadings %s %d", i, j, p, r.Start, r.Value)
					break
				}
			}
		}
		return nil
	})
	return out
}

func (m meterStore) versions(k flexhub.MeterSeriesKey, start time.Time) []flexhub.MeterRecord {
	m.t.Helper()
	var out []flexhub.MeterRecord
	view(m.t, m.st, func(ctx context.Context, tx flexhub.Tx) error {
		var err error
		out, err = tx.MeterReadingVersions(ctx, k, start)
		return err
	})
	return out
}
