package baseline

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
)

// Method is one baseline method an evaluation runs.
type Method struct {
	// X of Y day matching, or MeterBefore intervals when X is 0.
	X, Y        int
	MeterBefore int
}

// Name is how tables show the method: "high 4 of 5", "10 of 10",
// "meter before (2 intervals)".
func (m Method) Name() string {
	switch {
	case m.X == 0:
		return fmt.Sprintf("meter before (%d intervals)", m.MeterBefore)
	case m.X == m.Y:
		return fmt.Sprintf("%d of %d", m.X, m.Y)
	default:
		return fmt.Sprintf("high %d of %d", m.X, m.Y)
	}
}

// ParseMethod reads "4/5" (high 4 of 5), "10/10" or "before:2" (meter
// before over 2 intervals).
func ParseMethod(s string) (Method, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutPrefix(s, "before:"); ok {
		var m Method
		if _, err := fmt.Sscanf(n, "%d", &m.MeterBefore); err != nil || m.MeterBefore < 1 || fmt.Sprint(m.MeterBefore) != n {
			return m, fmt.Errorf("method %q: meter before needs a number of intervals, e.g. before:2", s)
		}
		return m, nil
	}
	var m Method
	x, y, ok := strings.Cut(s, "/")
	if !ok {
		return m, fmt.Errorf("method %q: write X/Y for X of Y days (4/5, 10/10) or before:N for meter before", s)
	}
	if _, err := fmt.Sscanf(x+" "+y, "%d %d", &m.X, &m.Y); err != nil || fmt.Sprint(m.X) != x || fmt.Sprint(m.Y) != y {
		return m, fmt.Errorf("method %q: X and Y must be whole numbers", s)
	}
	if m.X < 1 || m.Y < m.X {
		return m, fmt.Errorf("method %q: X of Y needs 1 <= X <= Y", s)
	}
	return m, nil
}

// Evaluation says what to evaluate.
type Evaluation struct {
	Location *time.Location
	// Window is the event window's wall-clock start and end (durations
	// since local midnight; End may be 24 h).
	WindowStart, WindowEnd time.Duration
	DayType                string
	Holidays               []Date
	Lookback               int
	Methods                []Method
	// Adjustments each day-matching method is run with (AdjustNone
	// included when wanted); meter before runs unadjusted.
	Adjustments []Adjustment
	// Days are the event days; real events (never placebo days, never
	// in a baseline) in Events.
	Days   []Date
	Events []Date
}

// Check reports what makes no sense in e.
func (e *Evaluation) Check() error {
	if e.WindowStart < 0 || e.WindowEnd > 24*time.Hour || e.WindowEnd <= e.WindowStart {
		return flexhub.FieldErrorf("window", "the event window %s-%s is empty or not within a day", clock(e.WindowStart), clock(e.WindowEnd))
	}
	if len(e.Methods) == 0 {
		return flexhub.FieldErrorf("methods", "no baseline method to evaluate")
	}
	if len(e.Adjustments) == 0 {
		e.Adjustments = []Adjustment{{Kind: AdjustNone}}
	}
	for _, m := range e.Methods {
		if m.X == 0 {
			continue
		}
		for _, a := range e.Adjustments {
			p := DayMatching{X: m.X, Y: m.Y, DayType: e.DayType, Lookback: e.Lookback, Adjustment: a}
			if err := p.check(); err != nil {
				return err
			}
		}
	}
	return nil
}

func clock(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// window is the event window on day d, and false when its start clock
// time does not exist that day.
func (e *Evaluation) window(d Date, loc *time.Location) (Window, bool) {
	start, ok := d.at(e.WindowStart, loc)
	if !ok {
		return Window{}, false
	}
	end, ok := d.at(e.WindowEnd, loc)
	if e.WindowEnd == 24*time.Hour {
		end, ok = d.AddDays(1).at(0, loc)
	}
	return Window{start, end}, ok
}

// PlaceboDays picks the n working days (Monday to Friday, not holidays,
// not real events) with the highest mean consumption per customer in the
// event window, among days that have Lookback days of data before them
// (3·Y+14 for the largest Y when zero) and on which at least 80 % as many
// customers have complete data in the window and Lookback days of
// history as on the best-covered day (customers'
// data rarely span the same years).
func PlaceboDays(m *Meters, e *Evaluation, n int) []Date {
	loc := locOr(e.Location)
	lookback := e.Lookback
	if lookback == 0 {
		for _, mt := range e.Methods {
			lookback = max(lookback, 3*mt.Y+14)
		}
	}
	var first, last time.Time
	for _, s := range m.Series {
		if first.IsZero() || s.Start.Before(first) {
			first = s.Start
		}
		if s.End().After(last) {
			last = s.End()
		}
	}
	skip := map[Date]bool{}
	for _, d := range append(slices.Clone(e.Holidays), e.Events...) {
		skip[d] = true
	}
	type cand struct {
		d    Date
		k    int     // customers with complete data in the window and history before it
		mean float64 // their mean energy there, for ranking only
	}
	var cands []cand
	most := 0
	for d := DateOf(first, loc).AddDays(lookback); !DateOf(last, loc).Before(d); d = d.AddDays(1) {
		if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday || skip[d] {
			continue
		}
		w, ok := e.window(d, loc)
		if !ok {
			continue
		}
		var total int64
		var k int
		for _, s := range m.Series {
			if s.Start.After(w.Start.AddDate(0, 0, -lookback)) {
				continue // too little history for a baseline that day
			}
			if v, ok := s.window(w.Start, int(w.End.Sub(w.Start)/s.Step)); ok {
				total += sum(v)
				k++
			}
		}
		if k > 0 {
			cands = append(cands, cand{d, k, float64(total) / float64(k)})
			most = max(most, k)
		}
	}
	// Days most customers have data for: at least 80 % of the best coverage.
	cands = slices.DeleteFunc(cands, func(c cand) bool { return c.k*5 < most*4 })
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].mean > cands[j].mean })
	var out []Date
	for _, c := range cands[:min(n, len(cands))] {
		out = append(out, c.d)
	}
	slices.SortFunc(out, func(a, b Date) int {
		if a.Before(b) {
			return -1
		}
		if b.Before(a) {
			return 1
		}
		return 0
	})
	return out
}

func locOr(l *time.Location) *time.Location {
	if l == nil {
		return time.UTC
	}
	return l
}

// Outcome is one customer, day, method and adjustment.
type Outcome struct {
	Customer   string
	Day        Date
	Method     string
	Adjustment string
	// Actual and Baseline energy in the event window, mWh; OK false when
	// no baseline could be made (Note says why).
	Actual, Baseline int64
	OK               bool
	Note             string
}

// Summary is one method and adjustment over every customer and day.
type Summary struct {
	Method, Adjustment string
	// CustomerDays with a baseline; NoBaseline without.
	CustomerDays, NoBaseline int
	// MedianError is the median over customers of each customer's median
	// relative error (baseline - actual) / actual, in %.
	MedianError float64
	// BiasPct: Σ(baseline - actual) / Σ actual, in %: the portfolio's bias.
	BiasPct float64
	// RRMSEPct: √mean((baseline - actual)²) / mean(actual), in %.
	RRMSEPct float64
	// PerCustomer median relative error, in %.
	PerCustomer map[string]float64
}

func adjName(a Adjustment) string {
	switch a.Kind {
	case "", AdjustNone:
		return "none"
	default:
		s := a.Kind
		if a.CapPct > 0 {
			s += fmt.Sprintf(" ±%d%%", a.CapPct)
		}
		return s
	}
}

// Evaluate runs every method and adjustment for every customer on every
// event day. Statistics are floats; energies stay integer mWh.
func Evaluate(m *Meters, e *Evaluation) ([]Outcome, []Summary, error) {
	if err := e.Check(); err != nil {
		return nil, nil, err
	}
	loc := locOr(e.Location)
	excluded := append(slices.Clone(e.Events), e.Days...)
	customers := slices.Clone(m.Customers)
	slices.Sort(customers)
	var out []Outcome
	type key struct{ method, adj string }
	var order []key
	seen := map[key]bool{}
	for _, cust := range customers {
		s := m.Series[cust]
		for _, d := range e.Days {
			w, ok := e.window(d, loc)
			for _, mt := range e.Methods {
				adjs := e.Adjustments
				if mt.X == 0 {
					adjs = []Adjustment{{Kind: AdjustNone}}
				}
				for _, a := range adjs {
					o := Outcome{Customer: cust, Day: d, Method: mt.Name(), Adjustment: adjName(a)}
					if k := (key{o.Method, o.Adjustment}); !seen[k] {
						seen[k] = true
						order = append(order, k)
					}
					if !ok {
						o.Note = "the window's clock time does not exist that day"
						out = append(out, o)
						continue
					}
					actual, has := s.window(w.Start, int(w.End.Sub(w.Start)/s.Step))
					if !has {
						o.Note = "incomplete data in the event window"
						out = append(out, o)
						continue
					}
					o.Actual = sum(actual)
					var r *Result
					var err error
					if mt.X == 0 {
						r, err = MeterBefore(s, w, mt.MeterBefore)
					} else {
						r, err = DayMatch(s, w, DayMatching{X: mt.X, Y: mt.Y, DayType: e.DayType, Location: loc,
							Holidays: e.Holidays, Excluded: excluded, Lookback: e.Lookback, Adjustment: a})
					}
					if err != nil {
						o.Note = flexhub.ErrorMessage(err)
						out = append(out, o)
						continue
					}
					o.Baseline, o.OK = sum(r.Values), true
					out = append(out, o)
				}
			}
		}
	}
	var sums []Summary
	for _, k := range order {
		sm := Summary{Method: k.method, Adjustment: k.adj, PerCustomer: map[string]float64{}}
		rel := map[string][]float64{}
		var sumErr, sumAct, sumSq float64
		for _, o := range out {
			if o.Method != k.method || o.Adjustment != k.adj {
				continue
			}
			if !o.OK {
				sm.NoBaseline++
				continue
			}
			sm.CustomerDays++
			diff := float64(o.Baseline - o.Actual)
			sumErr += diff
			sumAct += float64(o.Actual)
			sumSq += diff * diff
			if o.Actual > 0 {
				rel[o.Customer] = append(rel[o.Customer], 100*diff/float64(o.Actual))
			}
		}
		var meds []float64
		for c, v := range rel {
			sm.PerCustomer[c] = median(v)
			meds = append(meds, sm.PerCustomer[c])
		}
		sm.MedianError = median(meds)
		if sumAct > 0 {
			sm.BiasPct = 100 * sumErr / sumAct
			sm.RRMSEPct = 100 * math.Sqrt(sumSq/float64(sm.CustomerDays)) / (sumAct / float64(sm.CustomerDays))
		} else {
			sm.BiasPct, sm.RRMSEPct = math.NaN(), math.NaN()
		}
		sums = append(sums, sm)
	}
	return out, sums, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
