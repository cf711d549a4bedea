package benchdata

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/flexhub/flexhub/baseline"
)

// Config says what to generate.
type Config struct {
	Resources int
	Days      int
	Seed      uint64
	// First is the first local day (default 2026-11-01, a month without a
	// daylight-saving change, ending on a Monday).
	First baseline.Date
	// TZ is the resources' time zone (default Europe/Berlin).
	TZ string
	// WindowStart and WindowEnd are the event window's local clock times
	// (default 17:00 and 20:00).
	WindowStart, WindowEnd time.Duration
}

func (c *Config) defaults() {
	if c.First == (baseline.Date{}) {
		c.First = baseline.Date{Year: 2026, Month: time.November, Day: 1}
	}
	if c.TZ == "" {
		c.TZ = "Europe/Berlin"
	}
	if c.WindowStart == 0 && c.WindowEnd == 0 {
		c.WindowStart, c.WindowEnd = 17*time.Hour, 20*time.Hour
	}
}

// Version changes whenever Generate makes different data for the same
// config: a data set cached on disk under an older version is stale.
const Version = 2

// Step is the data's interval length.
const Step = 15 * time.Minute

// Meta describes a data set; it is written beside the data as JSON.
type Meta struct {
	Version   int    `json:"generator_version"`
	Resources int    `json:"resources"`
	Days      int    `json:"days"`
	Intervals int    `json:"intervals"` // per resource
	Seed      uint64 `json:"seed"`
	// Start is the first interval's start, UTC; StepSeconds the interval.
	Start       time.Time `json:"start"`
	StepSeconds int       `json:"step_seconds"`
	TZ          string    `json:"tz"`
	// EventDay is the local day every resource's event is on (the last
	// working day of the period); the window is local wall-clock time.
	EventDay    string `json:"event_day"`
	WindowStart string `json:"window_start"` // HH:MM
	WindowEnd   string `json:"window_end"`
	// Excluded are each resource's earlier event days (YYYY-MM-DD):
	// never eligible for its baselines.
	Excluded [][]string `json:"excluded"`
}

// Data is a generated data set: Values[r*Intervals+i] is resource r's
// energy (mWh) in interval i, Missing the same for a missing reading.
type Data struct {
	Meta    Meta
	Values  []int64
	Missing []bool
	// Excluded is Meta.Excluded parsed: resource r's earlier event days.
	Excluded [][]baseline.Date
}

// Series is resource r's meter series (sharing Data's arrays).
func (d *Data) Series(r int) *baseline.Series {
	t := d.Meta.Intervals
	return &baseline.Series{
		Start:   d.Meta.Start,
		Step:    time.Duration(d.Meta.StepSeconds) * time.Second,
		Values:  d.Values[r*t : (r+1)*t : (r+1)*t],
		Missing: d.Missing[r*t : (r+1)*t : (r+1)*t],
	}
}

// Location is the data's time zone.
func (d *Data) Location() (*time.Location, error) { return time.LoadLocation(d.Meta.TZ) }

// Window is the event window on the event day, UTC.
func (d *Data) Window() (baseline.Window, error) {
	loc, err := d.Location()
	if err != nil {
		return baseline.Window{}, err
	}
	day, err := baseline.ParseDate(d.Meta.EventDay)
	if err != nil {
		return baseline.Window{}, err
	}
	at := func(hhmm string) (time.Time, error) {
		c, err := time.Parse("15:04", hhmm)
		if err != nil {
			return time.Time{}, fmt.Errorf("window %q: %w", hhmm, err)
		}
		return time.Date(day.Year, day.Month, day.Day, c.Hour(), c.Minute(), 0, 0, loc).UTC(), nil
	}
	s, err := at(d.Meta.WindowStart)
	if err != nil {
		return baseline.Window{}, err
	}
	e, err := at(d.Meta.WindowEnd)
	if err != nil {
		return baseline.Window{}, err
	}
	return baseline.Window{Start: s, End: e}, nil
}

// parseExcluded fills Excluded from Meta.
func (d *Data) parseExcluded() error {
	d.Excluded = make([][]baseline.Date, len(d.Meta.Excluded))
	for r, days := range d.Meta.Excluded {
		for _, s := range days {
			day, err := baseline.ParseDate(s)
			if err != nil {
				return fmt.Errorf("resource %d's event days: %w", r, err)
			}
			d.Excluded[r] = append(d.Excluded[r], day)
		}
	}
	return nil
}

// Generate makes the data set of c from the household profiles. The same
// config and profiles give the same data; resource r is the same whatever
// the number of resources (each has a random stream of its own).
//
// Each resource replays one household's real days in order (working days
// for working days, weekends for weekends, from a random starting day),
// scaled by a factor of its own (log-normal, median 1, clipped to
// 0.3..4), with interval noise of 8 % standard deviation. Gaps: about 0.45 % of the intervals
// are missing in runs of 1 to 8, 1 % of the resources have an outage of 8
// to 15 days, and 1 % have readings only from 5 to 15 days before the
// event day (a meter installed late: too little history for some
// baselines). Event days: the last working day for everyone, and 0 to
// 3 earlier working days per resource; on an event day the resource
// consumes 60 to 90 % of its usual energy in the event window.
func Generate(p *Profiles, c Config) (*Data, error) {
	c.defaults()
	if c.Resources < 1 || c.Days < 2 {
		return nil, fmt.Errorf("benchdata: need at least 1 resource and 2 days, not %d and %d", c.Resources, c.Days)
	}
	if c.WindowEnd <= c.WindowStart || c.WindowStart%Step != 0 || c.WindowEnd%Step != 0 || c.WindowEnd > 24*time.Hour {
		return nil, fmt.Errorf("benchdata: the window %s-%s is not whole quarter hours within a day", c.WindowStart, c.WindowEnd)
	}
	loc, err := time.LoadLocation(c.TZ)
	if err != nil {
		return nil, err
	}
	first := time.Date(c.First.Year, c.First.Month, c.First.Day, 0, 0, 0, 0, loc)
	end := time.Date(c.First.Year, c.First.Month, c.First.Day+c.Days, 0, 0, 0, 0, loc)
	t := int(end.Sub(first) / Step)

	// The grid's calendar, shared by every resource: each interval's local
	// day and quarter hour of the local day (by wall clock, so a repeated
	// hour repeats its quarters and a skipped one skips them).
	dayOf := make([]int32, t)
	slotOf := make([]int32, t)
	for i := range t {
		l := first.Add(time.Duration(i) * Step).In(loc)
		dayOf[i] = int32(daysBetween(c.First, baseline.DateOf(l, loc)))
		slotOf[i] = int32((l.Hour()*60 + l.Minute()) / 15)
	}
	working := make([]bool, c.Days)
	event := -1
	for j := range c.Days {
		wd := c.First.AddDays(j).Weekday()
		working[j] = wd != time.Saturday && wd != time.Sunday
		if working[j] {
			event = j
		}
	}
	if event < 1 {
		return nil, fmt.Errorf("benchdata: no working day after the first day in %d days from %s", c.Days, c.First)
	}
	w0, w1 := int32(c.WindowStart/Step), int32(c.WindowEnd/Step)

	// the households' days as quarter hours
	type hq struct{ working, weekends [][96]int64 }
	hqs := make([]hq, len(p.Households))
	for h, hd := range p.Households {
		for _, d := range hd.Working {
			var q [96]int64
			quarters(&d, q[:])
			hqs[h].working = append(hqs[h].working, q)
		}
		for _, d := range hd.Weekends {
			var q [96]int64
			quarters(&d, q[:])
			hqs[h].weekends = append(hqs[h].weekends, q)
		}
	}

	d := &Data{
		Meta: Meta{
			Version: Version, Resources: c.Resources, Days: c.Days, Intervals: t, Seed: c.Seed,
			Start: first.UTC(), StepSeconds: int(Step / time.Second), TZ: c.TZ,
			EventDay:    c.First.AddDays(event).String(),
			WindowStart: fmt.Sprintf("%02d:%02d", int(c.WindowStart.Hours()), int(c.WindowStart.Minutes())%60),
			WindowEnd:   fmt.Sprintf("%02d:%02d", int(c.WindowEnd.Hours()), int(c.WindowEnd.Minutes())%60),
			Excluded:    make([][]string, c.Resources),
		},
		Values:   make([]int64, c.Resources*t),
		Missing:  make([]bool, c.Resources*t),
		Excluded: make([][]baseline.Date, c.Resources),
	}
	for r := range c.Resources {
		rng := rand.New(rand.NewPCG(c.Seed, uint64(r)))
		h := hqs[rng.IntN(len(hqs))]
		wOff, eOff := rng.IntN(len(h.working)), rng.IntN(len(h.weekends))
		scale := int64(math.Round(1000 * math.Exp(0.4*rng.NormFloat64())))
		scale = min(max(scale, 300), 4000)

		// which household day each local day replays
		days := make([]*[96]int64, c.Days)
		nw, ne := 0, 0
		for j := range c.Days {
			if working[j] {
				days[j] = &h.working[(wOff+nw)%len(h.working)]
				nw++
			} else {
				days[j] = &h.weekends[(eOff+ne)%len(h.weekends)]
				ne++
			}
		}
		// event days: the last working day and 0 to 3 earlier ones
		isEvent := make([]bool, c.Days)
		isEvent[event] = true
		for range rng.IntN(4) {
			j := rng.IntN(event)
			if working[j] && !isEvent[j] {
				isEvent[j] = true
			}
		}
		d.Meta.Excluded[r] = []string{}
		for j := range event {
			if isEvent[j] {
				d.Meta.Excluded[r] = append(d.Meta.Excluded[r], c.First.AddDays(j).String())
				d.Excluded[r] = append(d.Excluded[r], c.First.AddDays(j))
			}
		}
		response := make([]int64, c.Days) // per mille consumed in the window
		for j := range c.Days {
			response[j] = 1000
			if isEvent[j] {
				response[j] = 600 + int64(rng.IntN(301))
			}
		}

		vals := d.Values[r*t : (r+1)*t]
		miss := d.Missing[r*t : (r+1)*t]
		for i := range t {
			j, s := dayOf[i], slotOf[i]
			v := days[j][s] * scale / 1000
			noise := 1000 + int64(math.Round(80*rng.NormFloat64()))
			v = v * max(noise, 0) / 1000
			if s >= w0 && s < w1 {
				v = v * response[j] / 1000
			}
			vals[i] = v
		}
		// gaps: runs of 1 to 8 missing intervals, about 0.45 % in all
		for i := 0; i < t; i++ {
			if rng.IntN(1000) == 0 {
				n := 1 + rng.IntN(8)
				for k := i; k < min(i+n, t); k++ {
					miss[k], vals[k] = true, 0
				}
				i += n
			}
		}
		// an outage of 8 to 15 days for 1 % of the resources, and a meter
		// installed only 5 to 15 days before the event day for another 1 %
		switch rng.IntN(100) {
		case 0:
			n := (8 + rng.IntN(8)) * 96
			from := rng.IntN(max(t-n, 1))
			for k := from; k < min(from+n, t); k++ {
				miss[k], vals[k] = true, 0
			}
		case 1:
			installed := max(event-5-rng.IntN(11), 0)
			for k := 0; k < t && int(dayOf[k]) < installed; k++ {
				miss[k], vals[k] = true, 0
			}
		}
	}
	return d, nil
}

// daysBetween is how many days b is after a.
func daysBetween(a, b baseline.Date) int {
	ta := time.Date(a.Year, a.Month, a.Day, 12, 0, 0, 0, time.UTC)
	tb := time.Date(b.Year, b.Month, b.Day, 12, 0, 0, 0, time.UTC)
	return int(tb.Sub(ta) / (24 * time.Hour))
}
