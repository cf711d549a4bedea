package greenbutton

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Every sample with interval data imports with every IntervalReading:
// count, order, start, duration and value (scaled by the file's own
// multiplier to mWh) equal to a plain text scan of the file.
func TestImportSamplesKeepEveryReading(t *testing.T) {
	withData := 0
	for _, path := range samples(t) {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			doc, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := scan(t, doc)
			if len(want.values) == 0 {
				t.Skip("no interval data (TestImportSamplesWithoutIntervalData)")
			}
			withData++
			im, err := Import(bytes.NewReader(doc))
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			if len(want.multipliers) != 1 || want.uoms[0] != UOMWattHour {
				t.Fatalf("sample has %d multipliers and units %v; the test expects one Wh reading type", len(want.multipliers), want.uoms)
			}
			scale := int64(1)
			for range want.multipliers[0] + 3 {
				scale *= 10
			}
			var got []IntervalReading
			for _, up := range im.UsagePoints {
				if up.ServiceKind != ServiceKindElectricity {
					t.Errorf("usage point %s: service kind %d, the file says electricity", up.Href, up.ServiceKind)
				}
				for _, mr := range up.MeterReadings {
					if mr.ReadingType.UOM != UOMWattHour || mr.ReadingType.Quantity != QuantityActiveEnergy || int64(mr.ReadingType.PowerOfTenMultiplier) != want.multipliers[0] {
						t.Errorf("meter reading %s: reading type %+v", mr.Href, mr.ReadingType)
					}
					got = append(got, mr.Readings...)
				}
			}
			if len(got) != len(want.values) || im.Readings() != len(want.values) {
				t.Fatalf("imported %d readings (Readings() %d); the file has %d IntervalReading elements", len(got), im.Readings(), len(want.values))
			}
			var sumRaw, sumMilli, wantSum int64
			for i, r := range got {
				if r.Start.Unix() != want.starts[i] || r.Duration != time.Duration(want.durations[i])*time.Second || r.Raw != want.values[i] || r.Value != want.values[i]*scale {
					t.Fatalf("reading %d: got start %d duration %s raw %d value %d mWh; file: start %d duration %d s value %d (×%d mWh)",
						i, r.Start.Unix(), r.Duration, r.Raw, r.Value, want.starts[i], want.durations[i], want.values[i], scale)
				}
				if r.Start.Location() != time.UTC {
					t.Fatalf("reading %d start not in UTC", i)
				}
				sumRaw += r.Raw
				sumMilli += r.Value
				wantSum += want.values[i]
			}
			if sumRaw != wantSum || sumMilli != wantSum*scale {
				t.Fatalf("sums: raw %d, mWh %d; file %d (×%d)", sumRaw, sumMilli, wantSum, scale)
			}
			t.Logf("%d readings, %d Wh", len(got), wantSum)
		})
	}
	if withData == 0 {
		t.Fatal("no sample has interval data")
	}
}

// Files without interval data: resource entries and feeds import with
// no readings and say what they skipped; a bare ESPI resource that is
// not an Atom document is refused, naming its root.
func TestImportSamplesWithoutIntervalData(t *testing.T) {
	type outcome struct {
		usagePoints int
		skipped     []string // kinds
		err         string
	}
	want := map[string]outcome{
		"ApplicationInformation-Entry-Anonymized.xml": {skipped: []string{"ApplicationInformation"}},
		"Authorization-Entry-Anonymized.xml":          {skipped: []string{"Authorization"}},
		"Multiple-Authorization-Feed-Anonymized.xml":  {skipped: []string{"Authorization", "Authorization"}},
		"Customer-Subscription-Feed-Anonymized.xml":   {skipped: []string{"customer:Customer"}},
		"Usage-Subscription-Feed-Anonymized.xml":      {usagePoints: 1, skipped: []string{"LocalTimeParameters"}},
		"ServiceCategory.xml":                         {err: "root element is {http://naesb.org/espi}ServiceCategory, not an Atom feed or entry"},
	}
	seen := 0
	for _, path := range samples(t) {
		doc, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(scan(t, doc).values) > 0 {
			continue
		}
		name := filepath.Base(path)
		w, ok := want[name]
		if !ok {
			t.Errorf("%s: a sample without interval data that this test does not know; add its expected outcome", name)
			continue
		}
		seen++
		im, err := Import(bytes.NewReader(doc))
		if w.err != "" {
			var ie *Error
			if err == nil || !errors.As(err, &ie) || !strings.Contains(err.Error(), w.err) {
				t.Errorf("%s: error %v, want one containing %q", name, err, w.err)
			}
			if im != nil {
				t.Errorf("%s: refused but returned %+v", name, im)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var kinds []string
		for _, s := range im.Skipped {
			kinds = append(kinds, s.Kind)
			if s.ID == "" || s.Line == 0 {
				t.Errorf("%s: skipped entry without id or line: %+v", name, s)
			}
		}
		if len(im.UsagePoints) != w.usagePoints || im.Readings() != 0 || fmt.Sprint(kinds) != fmt.Sprint(w.skipped) {
			t.Errorf("%s: %d usage points, %d readings, skipped %v; want %d, 0, %v", name, len(im.UsagePoints), im.Readings(), kinds, w.usagePoints, w.skipped)
		}
	}
	if seen != len(want) {
		t.Errorf("checked %d of the %d known samples without interval data", seen, len(want))
	}
}

// The usage feed whose reading type sits inside its meter reading (not
// schema-valid, but a published sample) still yields the reading type.
func TestImportEmbeddedReadingType(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(conformanceDir(t), "samples", "Usage-Subscription-Feed-Anonymized.xml"))
	if err != nil {
		t.Fatal(err)
	}
	im, err := Import(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	up := im.UsagePoints[0]
	if up.ResourceID != "test-usage-point-id" || up.Title != "Test Usage Point" || len(up.MeterReadings) != 1 {
		t.Fatalf("usage point %+v", up)
	}
	rt := up.MeterReadings[0].ReadingType
	if rt.UOM != UOMWattHour || rt.Flow != FlowImport || rt.IntervalLength != 3600 || rt.AccumulationBehaviour != AccumulationDeltaData || rt.Kind != MeasurementEnergy || rt.Phase != 769 {
		t.Fatalf("reading type %+v", rt)
	}
}

type seriesKey struct{ up, flow string }

// Export then Import gives back every usage point and reading, exactly.
func TestRoundTrip(t *testing.T) {
	f := testFeed()
	var buf bytes.Buffer
	if err := Export(&buf, f); err != nil {
		t.Fatal(err)
	}
	im, err := Import(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if im.FeedTitle != f.Title || im.FeedID == "" || len(im.Skipped) != 0 {
		t.Errorf("feed title %q id %q skipped %v", im.FeedTitle, im.FeedID, im.Skipped)
	}
	if len(im.UsagePoints) != len(f.UsagePoints) {
		t.Fatalf("%d usage points, exported %d", len(im.UsagePoints), len(f.UsagePoints))
	}
	for i, up := range f.UsagePoints {
		got := im.UsagePoints[i]
		if got.ResourceID != up.ID || got.Title != up.Title || got.ServiceKind != ServiceKindElectricity || !strings.HasPrefix(got.Href, f.BaseURL+ResourceBase+"/Subscription/") {
			t.Errorf("usage point %d: resource id %q title %q kind %d href %q; exported %q %q", i, got.ResourceID, got.Title, got.ServiceKind, got.Href, up.ID, up.Title)
		}
		if len(got.MeterReadings) != len(up.Series) {
			t.Fatalf("usage point %q: %d meter readings, exported %d series", up.ID, len(got.MeterReadings), len(up.Series))
		}
		for j, s := range up.Series {
			mr := got.MeterReadings[j]
			rt := mr.ReadingType
			if mr.ResourceID != MeterReadingID(s.Flow, s.Resolution) || rt.Flow != s.Flow || rt.Quantity != QuantityActiveEnergy ||
				rt.IntervalLength != int64(s.Resolution/time.Second) || rt.PowerOfTenMultiplier != -3 || rt.UOM != UOMWattHour {
				t.Errorf("%q series %d: meter reading %q reading type %+v", up.ID, j, mr.ResourceID, rt)
			}
			var want []Reading
			if s.Readings != nil {
				for r := range s.Readings {
					want = append(want, r)
				}
			}
			if len(mr.Readings) != len(want) {
				t.Fatalf("%q %s: %d readings back, exported %d", up.ID, s.Flow, len(mr.Readings), len(want))
			}
			for k, r := range mr.Readings {
				if !r.Start.Equal(want[k].Start) || r.Duration != s.Resolution || r.Value != want[k].Value || r.Raw != want[k].Value {
					t.Fatalf("%q %s reading %d: %s %s %d mWh, exported %s %d mWh", up.ID, s.Flow, k, r.Start, r.Duration, r.Value, want[k].Start, want[k].Value)
				}
			}
		}
	}
}

// The feed's shape: one IntervalBlock per series and UTC day with
// readings, unique deterministic entry ids, UTC times, same bytes for
// the same input.
func TestExportShape(t *testing.T) {
	f := testFeed()
	var a, b bytes.Buffer
	if err := Export(&a, f); err != nil {
		t.Fatal(err)
	}
	if err := Export(&b, testFeed()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two exports of the same feed differ")
	}
	doc := a.String()
	days := map[string]bool{}
	readings := 0
	for _, up := range f.UsagePoints {
		for _, s := range up.Series {
			if s.Readings == nil {
				continue
			}
			for r := range s.Readings {
				days[fmt.Sprint(up.ID, s.Flow, s.Resolution, r.Start.UTC().Format(time.DateOnly))] = true
				readings++
			}
		}
	}
	if n := strings.Count(doc, "<IntervalBlock "); n != len(days) {
		t.Errorf("%d IntervalBlocks, want one per series and UTC day: %d", n, len(days))
	}
	if n := strings.Count(doc, "<IntervalReading>"); n != readings {
		t.Errorf("%d IntervalReadings, exported %d readings", n, readings)
	}
	ids := regexp.MustCompile(`<id>([^<]*)</id>`).FindAllStringSubmatch(doc, -1)
	seen := map[string]bool{}
	for _, m := range ids {
		if !regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(m[1]) || seen[m[1]] {
			t.Errorf("id %q is not a fresh UUIDv5 urn", m[1])
		}
		seen[m[1]] = true
	}
	if want := 1 + 3 + 2*(2+2) + len(days); len(ids) != want { // feed, usage points, 2 entries a series, blocks
		t.Errorf("%d ids, want %d", len(ids), want)
	}
	for _, m := range regexp.MustCompile(`<(?:updated|published)>([^<]*)<`).FindAllStringSubmatch(doc, -1) {
		if m[1] != "2026-11-26T07:00:00Z" {
			t.Fatalf("time %q, want the feed's Updated in UTC", m[1])
		}
	}
	if !strings.Contains(doc, `/UsagePoint/mp%2F%C3%BC%201&amp;x%3Fy%23z/MeterReading/import-60/IntervalBlock/20260331"`) {
		t.Error("usage point id not path-escaped in links")
	}
	if !strings.Contains(doc, "<title>flexhub: my data &lt;&amp; &#34;quotes&#34;&gt;</title>") {
		t.Error("feed title not escaped")
	}
	// Another subscription: the entries keep their ids, the feed's differs.
	other := testFeed()
	other.SubscriptionID = "another"
	var c bytes.Buffer
	if err := Export(&c, other); err != nil {
		t.Fatal(err)
	}
	ids2 := regexp.MustCompile(`<id>([^<]*)</id>`).FindAllStringSubmatch(c.String(), -1)
	if len(ids2) != len(ids) || ids2[0][1] == ids[0][1] {
		t.Fatal("the feed id does not depend on the subscription")
	}
	for i := 1; i < len(ids); i++ {
		if ids2[i][1] != ids[i][1] {
			t.Fatalf("entry %d: id %s in one subscription, %s in another", i, ids[i][1], ids2[i][1])
		}
	}
}

func TestExportRefusesBadInput(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	q := 15 * time.Minute
	one := func(s Series) Feed {
		return Feed{SubscriptionID: "s", UsagePoints: []UsagePoint{{ID: "mp", Series: []Series{s}}}}
	}
	fail := func(yield func(Reading, error) bool) {
		if yield(Reading{Start: t0, Value: 1}, nil) {
			yield(Reading{}, errors.New("store read failed"))
		}
	}
	cases := []struct {
		name string
		f    Feed
		want string
	}{
		{"no subscription", Feed{}, "no subscription id"},
		{"no usage point id", Feed{SubscriptionID: "s", UsagePoints: []UsagePoint{{}}}, "usage point 0 has no id"},
		{"usage point twice", Feed{SubscriptionID: "s", UsagePoints: []UsagePoint{{ID: "a"}, {ID: "a"}}}, `usage point "a" appears twice`},
		{"series twice", Feed{SubscriptionID: "s", UsagePoints: []UsagePoint{{ID: "a", Series: []Series{{Flow: FlowImport, Resolution: q}, {Flow: FlowImport, Resolution: q}}}}}, "two import series"},
		{"reactive", one(Series{Quantity: QuantityReactiveEnergy, Flow: FlowImport, Resolution: q}), `quantity "reactive_energy" cannot be exported`},
		{"flow", one(Series{Flow: "in", Resolution: q}), `flow "in"`},
		{"resolution", one(Series{Flow: FlowImport, Resolution: 7 * time.Minute}), "resolution 7m0s"},
		{"misaligned", one(Series{Flow: FlowImport, Resolution: q, Readings: Readings([]Reading{{Start: t0.Add(time.Minute), Value: 1}})}), "reading 0 starts at 2026-01-01T00:01:00Z, not a multiple of 900 s"},
		{"order", one(Series{Flow: FlowImport, Resolution: q, Readings: Readings([]Reading{{Start: t0.Add(q), Value: 1}, {Start: t0, Value: 1}})}), "reading 1 starts at 2026-01-01T00:00:00Z, not after the previous reading"},
		{"repeat", one(Series{Flow: FlowImport, Resolution: q, Readings: Readings([]Reading{{Start: t0, Value: 1}, {Start: t0, Value: 2}})}), "reading 1 starts at"},
		{"negative", one(Series{Flow: FlowImport, Resolution: q, Readings: Readings([]Reading{{Start: t0, Value: -5}})}), "negative value -5 mWh"},
		{"int48", one(Series{Flow: FlowExport, Resolution: q, Readings: Readings([]Reading{{Start: t0, Value: MaxInt48 + 1}})}), "above the ESPI Int48 maximum"},
		{"source error", one(Series{Flow: FlowImport, Resolution: q, Readings: fail}), "reading 1: store read failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Export(&bytes.Buffer{}, c.f)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// Export writes as it reads: by the time the last reading is taken from
// the source, all but the last day's block (and the write buffer) has
// reached the writer. A document built in memory first would show
// nothing written at that point.
func TestExportStreams(t *testing.T) {
	const points, days = 20, 30
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := &countingWriter{}
	var writtenAtLast int64
	series := func(last bool) iter.Seq2[Reading, error] {
		return func(yield func(Reading, error) bool) {
			n := days * 96
			for i := range n {
				if last && i == n-1 {
					writtenAtLast = w.n
				}
				if !yield(Reading{Start: t0.Add(time.Duration(i) * 15 * time.Minute), Value: int64(i)}, nil) {
					return
				}
			}
		}
	}
	f := Feed{SubscriptionID: "s"}
	for p := range points {
		f.UsagePoints = append(f.UsagePoints, UsagePoint{ID: fmt.Sprint("mp-", p), Series: []Series{{Flow: FlowImport, Resolution: 15 * time.Minute, Readings: series(p == points-1)}}})
	}
	if err := Export(w, f); err != nil {
		t.Fatal(err)
	}
	tail := w.n - writtenAtLast
	t.Logf("%d bytes; %d written after the last reading was read", w.n, tail)
	if w.n < 5<<20 || tail > 128<<10 {
		t.Fatalf("%d of %d bytes were written only after the source was exhausted; want at most one day's block and the buffer (128 KiB)", tail, w.n)
	}
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
