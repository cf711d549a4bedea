package baseline

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
)

// CSVOptions say how ReadCSV reads a meter-data file.
type CSVOptions struct {
	// Location is the zone the file's local timestamps are in.
	Location *time.Location
	// SkipBad leaves bad rows out (each reported) instead of failing.
	SkipBad bool
	// Progress, when set, is called every 100,000 rows with the count.
	Progress func(rows int)
}

// BadRow is a row ReadCSV could not use.
type BadRow struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// Meters are many customers' interval energies read from a CSV.
type Meters struct {
	Customers []string           // in the order first seen
	Series    map[string]*Series // per customer, on one grid, gaps marked missing
	Step      time.Duration
	Rows      int      // data rows read
	Bad       []BadRow // rows left out (SkipBad), in line order
}

// ErrBadRows is returned, wrapped with the first bad rows, when a file has
// bad rows and SkipBad is off.
var ErrBadRows = errors.New("bad rows in the meter data")

// maxBadShown bounds the bad rows named in an error.
const maxBadShown = 10

// column names accepted for each field (the first is the SGSC trial's).
var (
	colCustomer = []string{"customer_id", "customer", "id", "meter_id"}
	colTime     = []string{"reading_datetime", "datetime", "timestamp", "time", "start"}
	colValue    = []string{"general_supply_kwh", "kwh", "energy_kwh"}
)

// ReadCSV reads interval energies in kWh, one row per customer and
// interval start, with a header naming its columns
// (customer_id,reading_datetime,general_supply_kwh as in the SGSC trial
// data), timestamps "2006-01-02 15:04:05" (or RFC 3339 with an offset) in
// the options' zone. The interval length is the most common step between
// a customer's consecutive readings. Values are read exactly (kWh with
// any number of decimals, to the mWh).
//
// Daylight saving: a local time that does not exist (skipped when the
// clocks go forward) is a bad row; a local time that exists twice (when
// they go back) is the first instant, and a second row with the same
// local time is the second instant.
func ReadCSV(r io.Reader, o CSVOptions) (*Meters, error) {
	loc := o.Location
	if loc == nil {
		loc = time.UTC
	}
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<20))
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("line 1: reading the header: %w", err)
	}
	idx := func(names []string) int {
		for i, h := range header {
			if slices.Contains(names, strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))) {
				return i
			}
		}
		return -1
	}
	ci, ti, vi := idx(colCustomer), idx(colTime), idx(colValue)
	if ci < 0 || ti < 0 || vi < 0 {
		return nil, fmt.Errorf("line 1: the header %q needs a customer column (%s), a time column (%s) and a kWh column (%s)",
			strings.Join(header, ","), strings.Join(colCustomer, "|"), strings.Join(colTime, "|"), strings.Join(colValue, "|"))
	}
	need := max(ci, ti, vi) + 1

	type point struct {
		at  time.Time
		mwh int64
	}
	m := &Meters{Series: map[string]*Series{}}
	points := map[string][]point{}
	seen := map[string]map[time.Time]bool{}
	bad := func(line int, format string, args ...any) {
		m.Bad = append(m.Bad, BadRow{Line: line, Reason: fmt.Sprintf(format, args...)})
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad(pe.Line, "%v", pe.Err)
				continue
			}
			return nil, err
		}
		m.Rows++
		if o.Progress != nil && m.Rows%100_000 == 0 {
			o.Progress(m.Rows)
		}
		if len(rec) < need {
			bad(line, "%d fields, the header has %d", len(rec), len(header))
			continue
		}
		cust := strings.TrimSpace(rec[ci])
		if cust == "" {
			bad(line, "no customer id")
			continue
		}
		ts := strings.TrimSpace(rec[ti])
		at, err := parseLocal(ts, loc)
		if err != nil {
			bad(line, "%v", err)
			continue
		}
		mwh, err := flexhub.ParseMeterValue("kwh", strings.TrimSpace(rec[vi]), 6)
		if err != nil {
			bad(line, "%q is not an energy in kWh", rec[vi])
			continue
		}
		s := seen[cust]
		if s == nil {
			s = map[time.Time]bool{}
			seen[cust] = s
			m.Customers = append(m.Customers, cust)
		}
		if s[at] {
			// the second of a local time that exists twice, or a duplicate
			if later, ok := secondOccurrence(at, loc); ok && !s[later] {
				at = later
			} else {
				bad(line, "a second reading of customer %s at %s", cust, ts)
				continue
			}
		}
		s[at] = true
		points[cust] = append(points[cust], point{at, mwh})
	}
	if len(m.Bad) > 0 && !o.SkipBad {
		var b strings.Builder
		for _, r := range m.Bad[:min(len(m.Bad), maxBadShown)] {
			fmt.Fprintf(&b, "\n  line %d: %s", r.Line, r.Reason)
		}
		if len(m.Bad) > maxBadShown {
			fmt.Fprintf(&b, "\n  ... and %d more", len(m.Bad)-maxBadShown)
		}
		return m, fmt.Errorf("%w: %d of %d rows%s\n(--skip-bad leaves them out and goes on)", ErrBadRows, len(m.Bad), m.Rows, b.String())
	}
	if len(points) == 0 {
		return m, fmt.Errorf("no readings in the file")
	}

	// The grid: the most common step between consecutive readings.
	steps := map[time.Duration]int{}
	for _, ps := range points {
		slices.SortFunc(ps, func(a, b point) int { return a.at.Compare(b.at) })
		for i := 1; i < len(ps) && i < 2000; i++ {
			steps[ps[i].at.Sub(ps[i-1].at)]++
		}
	}
	best := 0
	for d, n := range steps {
		if n > best || n == best && d < m.Step {
			m.Step, best = d, n
		}
	}
	if m.Step <= 0 {
		return m, fmt.Errorf("cannot tell the interval length: every customer has a single reading")
	}
	for cust, ps := range points {
		first, last := ps[0].at, ps[len(ps)-1].at
		n := int(last.Sub(first)/m.Step) + 1
		s := &Series{Start: first, Step: m.Step, Values: make([]int64, n), Missing: make([]bool, n)}
		for i := range s.Missing {
			s.Missing[i] = true
		}
		for _, p := range ps {
			i, ok := s.index(p.at)
			if !ok {
				return m, fmt.Errorf("customer %s: a reading at %s is off the %s grid of its other readings", cust, p.at.In(loc).Format(time.DateTime), m.Step)
			}
			s.Values[i], s.Missing[i] = p.mwh, false
		}
		m.Series[cust] = s
	}
	return m, nil
}

// parseLocal reads a local timestamp, refusing one the zone skips.
func parseLocal(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	layout := time.DateTime
	if len(s) == len("2006-01-02 15:04") {
		layout = "2006-01-02 15:04"
	}
	t, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time (YYYY-MM-DD HH:MM[:SS])", s)
	}
	if t.Format(layout) != s {
		return time.Time{}, fmt.Errorf("%s does not exist in %s (the clocks skip it)", s, loc)
	}
	// a wall clock that exists twice: the first instant
	for _, d := range []time.Duration{2 * time.Hour, time.Hour, 30 * time.Minute} {
		if u := t.Add(-d); u.In(loc).Format(layout) == s {
			return u.UTC(), nil
		}
	}
	return t.UTC(), nil
}

// secondOccurrence is the later instant with the same local wall clock as
// t, when the clocks went back over it.
func secondOccurrence(t time.Time, loc *time.Location) (time.Time, bool) {
	l := t.In(loc)
	for _, d := range []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour} {
		u := t.Add(d).In(loc)
		if u.Format(time.DateTime) == l.Format(time.DateTime) {
			return t.Add(d), true
		}
	}
	return time.Time{}, false
}
