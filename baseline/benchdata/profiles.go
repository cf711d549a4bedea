// Package benchdata generates the meter data of the baseline benchmarks
// (issue 5): N resources × D days of 15-minute net-import energy in
// integer mWh, shaped by the real Smart Grid Smart City households, with
// gaps and per-resource event days, deterministic for a seed. It writes
// the data once as a binary file that both flexhub's engine and the pandas
// script (scripts/baseline_pandas.py) read, runs the engine's X-of-Y
// baselines and verification over all resources (Run), and checks the
// pandas results against the engine's (Compare).
//
// It is a package of its own, not a _test file, so that the store-backed
// settlement benchmark (phase 2) can load the same resources into SQLite
// and PostgreSQL and compare with the same pandas run; it is not internal
// because that benchmark lives outside baseline/.
package benchdata

import (
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
	_ "time/tzdata" // the households are in Sydney, the resources in Berlin

	"github.com/flexhub/flexhub/baseline"
)

// HouseholdsFile is the SGSC trial's 25 households, relative to the shared
// data folder: half-hourly kWh, Sydney local time.
const HouseholdsFile = "meter/sgsc_25_households_halfhourly.csv.gz"

// Profiles are real household days: each a complete local day of 48
// half-hourly energies (mWh), split into working days and weekends.
type Profiles struct {
	// Households in file order; each has its complete working days and
	// weekend days in date order.
	Households []HouseholdDays
}

// HouseholdDays are one household's complete days.
type HouseholdDays struct {
	ID       string
	Working  [][48]int64
	Weekends [][48]int64
}

// LoadProfiles reads the households file from the shared data folder and
// keeps every household with at least 14 complete working days and 7
// complete weekend days (a local day of 48 half hours, none missing; the
// daylight-saving days have 46 or 50 and are left out).
func LoadProfiles(dataDir string) (*Profiles, error) {
	path := filepath.Join(dataDir, HouseholdsFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	syd, err := time.LoadLocation("Australia/Sydney")
	if err != nil {
		return nil, err
	}
	m, err := baseline.ReadCSV(zr, baseline.CSVOptions{Location: syd, SkipBad: true})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.Step != 30*time.Minute {
		return nil, fmt.Errorf("%s: expected half-hourly data, found a %s step", path, m.Step)
	}
	p := &Profiles{}
	for _, id := range m.Customers {
		s := m.Series[id]
		h := HouseholdDays{ID: id}
		for i := 0; i < len(s.Values); {
			t := s.Start.Add(time.Duration(i) * s.Step).In(syd)
			if t.Hour() != 0 || t.Minute() != 0 {
				i++
				continue
			}
			next := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, syd)
			n := int(next.Sub(t) / s.Step)
			if n != 48 || i+48 > len(s.Values) || slices.Contains(s.Missing[i:i+48], true) {
				i += max(n, 1)
				continue
			}
			var day [48]int64
			copy(day[:], s.Values[i:i+48])
			if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
				h.Weekends = append(h.Weekends, day)
			} else {
				h.Working = append(h.Working, day)
			}
			i += 48
		}
		if len(h.Working) >= 14 && len(h.Weekends) >= 7 {
			p.Households = append(p.Households, h)
		}
	}
	if len(p.Households) == 0 {
		return nil, fmt.Errorf("%s: no household has two weeks of complete days", path)
	}
	return p, nil
}

// quarters splits a day of 48 half-hourly energies into 96 quarter hours,
// keeping each half hour's energy exactly: the first quarter gets half of
// it less an eighth of the slope across its neighbours (the second more),
// so that the power ramps between half hours instead of stepping. Never
// negative.
func quarters(hh *[48]int64, out []int64) {
	for i, e := range hh {
		prev, next := e, e
		if i > 0 {
			prev = hh[i-1]
		}
		if i < 47 {
			next = hh[i+1]
		}
		q1 := e/2 - (next-prev)/8
		q1 = min(max(q1, 0), e)
		out[2*i], out[2*i+1] = q1, e-q1
	}
}
