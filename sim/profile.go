package sim

import (
	"encoding/csv"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // the meter data is Sydney local time; do not depend on the host's zoneinfo

	"github.com/flexhub/flexhub/demo"
)

// Profiles are the real measured shapes the simulated resources start
// from: one day of the 25 Smart Grid Smart City households' load (read
// with the demo's reader, the same day `flexhub demo` replays unless
// another is asked for) and the matching day of rooftop PV generation of
// Ausgrid's solar home customer 12. Both are half-hourly averages in
// Sydney local time; the simulator replays the day every day, mapped by
// the local time of day in Loc, and interpolates linearly between the
// half-hour midpoints to its stream resolution.
type Profiles struct {
	Date   string         // the household day replayed (YYYY-MM-DD, Sydney)
	PVDate string         // the PV day replayed (same month and day, in the PV file's year)
	Loc    *time.Location // where the profiles' time of day is read (Australia/Sydney)
	// Households maps a customer id to 48 half-hourly average loads in W.
	Households map[string][]float64
	// HouseholdIDs are the customer ids, sorted.
	HouseholdIDs []string
	// PV is the generation as a fraction of the year's highest half hour
	// (0..1), 48 half hours.
	PV []float64
}

// PVFile is Ausgrid's solar home customer 12, relative to the shared data
// folder: timestamp, GC (general consumption, kW average), GG (gross
// generation, kW average) per half hour, Sydney local time, start of the
// half hour.
const PVFile = "meter/ausgrid_solar_home_customer12_2011-2012.csv"

// LoadProfiles reads the profiles from the shared data folder. date is the
// household day (YYYY-MM-DD, Sydney); empty means the day with the highest
// evening peak, which is the day `flexhub demo` replays.
func LoadProfiles(dataDir, date string) (*Profiles, error) {
	var (
		day *demo.MarketDay
		err error
	)
	if date == "" {
		day, err = demo.ReadPeakEveningDay(dataDir)
	} else {
		day, err = demo.ReadMarketDay(dataDir, date)
	}
	if err != nil {
		return nil, fmt.Errorf("household profiles: %w", err)
	}
	loc, err := time.LoadLocation("Australia/Sydney")
	if err != nil {
		return nil, err
	}
	p := &Profiles{Date: day.Date, Loc: loc, Households: map[string][]float64{}}
	for id, q := range day.Load {
		// The demo's market day gives both quarter hours of a half hour
		// its average; take one of each pair back.
		if len(q) != 96 {
			return nil, fmt.Errorf("household %s: %d quarter hours on %s", id, len(q), day.Date)
		}
		hh := make([]float64, 48)
		for i := range hh {
			hh[i] = float64(q[2*i])
		}
		p.Households[id] = hh
		p.HouseholdIDs = append(p.HouseholdIDs, id)
	}
	sort.Strings(p.HouseholdIDs)
	p.PVDate, p.PV, err = readPV(filepath.Join(dataDir, PVFile), day.Date)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// readPV returns the PV generation of the day with the same month and day
// as date in the PV file (July-June), normalised to the year's highest
// half hour.
func readPV(path, date string) (string, []float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, fmt.Errorf("PV profile: %w", err)
	}
	defer f.Close()
	md := date[5:10] // MM-DD
	month, _ := strconv.Atoi(date[5:7])
	year := "2012"
	if month >= 7 {
		year = "2011"
	}
	if md == "02-29" {
		md = "02-28" // 2012 has one, but keep the mapping simple and total
	}
	want := year + "-" + md
	r := csv.NewReader(f)
	r.FieldsPerRecord = 3
	if _, err := r.Read(); err != nil {
		return "", nil, fmt.Errorf("%s: %w", path, err)
	}
	day := make([]float64, 48)
	seen := 0
	peak := 0.0
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(rec[0]) != 19 {
			return "", nil, fmt.Errorf("%s:%d: timestamp %q", path, line, rec[0])
		}
		gg, err := strconv.ParseFloat(rec[2], 64)
		if err != nil {
			return "", nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		peak = math.Max(peak, gg)
		if rec[0][:10] != want {
			continue
		}
		h, _ := strconv.Atoi(rec[0][11:13])
		m, _ := strconv.Atoi(rec[0][14:16])
		day[h*2+m/30] = gg
		seen++
	}
	if seen != 48 {
		return "", nil, fmt.Errorf("%s: %d half hours on %s, want 48", path, seen, want)
	}
	if peak <= 0 {
		return "", nil, fmt.Errorf("%s: no generation", path)
	}
	for i := range day {
		day[i] /= peak
	}
	return want, day, nil
}

// dayFraction returns the position of t in the profile day as a fractional
// half-hour slot (0 at local midnight, 48 at the next), read from the
// local wall clock so that a replayed day keeps its shape across
// daylight-saving changes.
func (p *Profiles) slot(t time.Time) float64 {
	lt := t.In(p.Loc)
	secs := float64(lt.Hour()*3600+lt.Minute()*60+lt.Second()) + float64(lt.Nanosecond())/1e9
	return secs / 1800
}

// interp reads a 48-value half-hourly profile at t: the half-hour averages
// sit at the half hours' midpoints and the value between two midpoints is
// linear; the day wraps around (the last half hour leads into the first).
func (p *Profiles) interp(v []float64, t time.Time) float64 {
	x := p.slot(t) - 0.5
	i := int(math.Floor(x))
	frac := x - float64(i)
	a := v[(i%48+48)%48]
	b := v[((i+1)%48+48)%48]
	return a + (b-a)*frac
}

// HouseholdLoad returns the household's load in W at t (≥ 0).
func (p *Profiles) HouseholdLoad(id string, t time.Time) float64 {
	v := p.Households[id]
	if v == nil {
		return 0
	}
	return math.Max(0, p.interp(v, t))
}

// PVShare returns the available PV generation at t as a fraction of the
// system's peak (0..1).
func (p *Profiles) PVShare(t time.Time) float64 {
	return math.Min(1, math.Max(0, p.interp(p.PV, t)))
}

// HouseholdFor picks the household whose load a resource's site carries:
// the customer id named in the resource's name (the demo names its units
// "Battery <customer id>"), else one chosen by a hash of the resource id,
// so the choice is the same on every run.
func (p *Profiles) HouseholdFor(resourceID, name string) string {
	for _, id := range p.HouseholdIDs {
		if strings.Contains(name, id) {
			return id
		}
	}
	if len(p.HouseholdIDs) == 0 {
		return ""
	}
	h := fnv.New64a()
	h.Write([]byte(resourceID))
	return p.HouseholdIDs[h.Sum64()%uint64(len(p.HouseholdIDs))]
}
