package greenbutton

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// conformanceDir is ../shared/conformance/greenbutton beside the
// repository (or FLEXHUB_GREENBUTTON_CONFORMANCE). Without it the test
// is skipped, except in CI (CI set), where it fails.
func conformanceDir(tb testing.TB) string {
	d := os.Getenv("FLEXHUB_GREENBUTTON_CONFORMANCE")
	if d == "" {
		var err error
		if d, err = filepath.Abs("../../shared/conformance/greenbutton"); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(d, "catalog.xml")); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("no Green Button conformance files (%v); CI needs ../shared/conformance/greenbutton or FLEXHUB_GREENBUTTON_CONFORMANCE", err)
		}
		tb.Skipf("no Green Button conformance files (%v); set FLEXHUB_GREENBUTTON_CONFORMANCE", err)
	}
	return d
}

func samples(tb testing.TB) []string {
	files, err := filepath.Glob(filepath.Join(conformanceDir(tb), "samples", "*.xml"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no samples: %v", err)
	}
	return files
}

// samplesIfPresent lists the samples, or nothing without the
// conformance folder (fuzz seeds).
func samplesIfPresent() []string {
	d := os.Getenv("FLEXHUB_GREENBUTTON_CONFORMANCE")
	if d == "" {
		d = "../../shared/conformance/greenbutton"
	}
	files, _ := filepath.Glob(filepath.Join(d, "samples", "*.xml"))
	return files
}

// scanned is what a plain text scan finds in a Green Button file,
// independently of Import's XML decoding and linking.
type scanned struct {
	starts, durations, values []int64
	multipliers, uoms         []int64 // of each ReadingType
}

var (
	reReading     = regexp.MustCompile(`(?s)<(?:\w+:)?IntervalReading>(.*?)</(?:\w+:)?IntervalReading>`)
	reValue       = regexp.MustCompile(`<(?:\w+:)?value>\s*(-?\d+)\s*</`)
	reStart       = regexp.MustCompile(`<(?:\w+:)?start>\s*(-?\d+)\s*</`)
	reDuration    = regexp.MustCompile(`<(?:\w+:)?duration>\s*(\d+)\s*</`)
	reReadingType = regexp.MustCompile(`(?s)<(?:\w+:)?ReadingType\b[^>]*>(.*?)</(?:\w+:)?ReadingType>`)
	reMultiplier  = regexp.MustCompile(`<(?:\w+:)?powerOfTenMultiplier>\s*(-?\d+)\s*</`)
	reUOM         = regexp.MustCompile(`<(?:\w+:)?uom>\s*(\d+)\s*</`)
	reComment     = regexp.MustCompile(`(?s)<!--.*?-->`)
)

func scan(t *testing.T, doc []byte) scanned {
	t.Helper()
	doc = reComment.ReplaceAll(doc, nil)
	num := func(re *regexp.Regexp, s []byte) int64 {
		m := re.FindSubmatch(s)
		if m == nil {
			t.Fatalf("scan: no %s in %s", re, s)
		}
		v, err := strconv.ParseInt(string(m[1]), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	var s scanned
	for _, m := range reReading.FindAllSubmatch(doc, -1) {
		s.values = append(s.values, num(reValue, m[1]))
		s.starts = append(s.starts, num(reStart, m[1]))
		s.durations = append(s.durations, num(reDuration, m[1]))
	}
	for _, rt := range reReadingType.FindAllSubmatch(doc, -1) {
		s.multipliers = append(s.multipliers, num(reMultiplier, rt[1]))
		s.uoms = append(s.uoms, num(reUOM, rt[1]))
	}
	return s
}

// testFeed is a feed of several usage points with import and export
// series, readings across UTC day boundaries, a gap, a usage point id
// that needs escaping and one without series.
func testFeed() Feed {
	day0 := time.Date(2026, 3, 28, 22, 0, 0, 0, time.UTC) // across the 29th (a DST day in Europe: irrelevant in UTC seconds)
	q := 15 * time.Minute
	var imp, exp, minute []Reading
	for i := range 2*96 + 10 {
		imp = append(imp, Reading{Start: day0.Add(time.Duration(i) * q), Value: int64(i*i*37) % 2_000_017})
		if i%3 != 0 { // a gappy series
			exp = append(exp, Reading{Start: day0.Add(time.Duration(i) * q), Value: int64(i) * 1001})
		}
	}
	exp = append(exp, Reading{Start: day0.Add(400 * q), Value: MaxInt48})
	for i := range 150 {
		minute = append(minute, Reading{Start: time.Date(2026, 3, 31, 21, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute), Value: int64(i % 7)})
	}
	return Feed{
		SubscriptionID: "0199b7d8-1c2e-7a00-8000-000000000001",
		Title:          "flexhub: my data <& \"quotes\">",
		Updated:        time.Date(2026, 11, 26, 8, 0, 0, 0, time.FixedZone("CET", 3600)),
		BaseURL:        "https://flexhub.example.org",
		UsagePoints: []UsagePoint{
			{ID: "0199b7d8-1c2e-7a00-8000-00000000000a", Title: "Main meter, Storgata 1", Series: []Series{
				{Quantity: QuantityActiveEnergy, Flow: FlowImport, Resolution: q, Readings: Readings(imp)},
				{Flow: FlowExport, Resolution: q, Readings: Readings(exp)},
			}},
			{ID: "mp/ü 1&x?y#z", Title: "Heat pump", Series: []Series{
				{Flow: FlowImport, Resolution: time.Minute, Title: "Heat pump, per minute", Readings: Readings(minute)},
				{Flow: FlowExport, Resolution: time.Minute}, // no readings
			}},
			{ID: "empty", Title: ""},
		},
	}
}
