package gridops

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"io/fs"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flexhub/flexhub/grid"
	"github.com/flexhub/flexhub/powerflow"
)

// QuarterHours is the number of 15-minute intervals of a day.
const QuarterHours = 96

// Quarter is the interval length of the forecasts built here.
const Quarter = 15 * time.Minute

// SimBenchProfiles are a SimBench grid's own year of 15-minute profiles
// (LoadProfile.csv, RESProfile.csv) and which load and generator follows
// which profile (Load.csv, RES.csv). Profile values are factors on the
// element's base P and Q. SimBench's time stamps have no zone; they are
// taken as UTC.
type SimBenchProfiles struct {
	Times     []time.Time
	loadProf  map[string]string // load ID -> profile name
	genProf   map[string]string
	genType   map[string]string    // generator ID -> RES type (PV, Wind, ...)
	loadCols  map[string][]float64 // "<profile>_pload"/"_qload" -> values
	resCols   map[string][]float64
	dayOffset map[time.Time]int
}

// ReadSimBenchProfiles reads the profiles of one SimBench grid folder.
func ReadSimBenchProfiles(fsys fs.FS) (*SimBenchProfiles, error) {
	sp := &SimBenchProfiles{loadProf: map[string]string{}, genProf: map[string]string{}, genType: map[string]string{}, dayOffset: map[time.Time]int{}}
	for _, t := range []struct {
		file string
		dst  map[string]string
	}{{"Load.csv", sp.loadProf}, {"RES.csv", sp.genProf}} {
		head, rows, err := readSemicolon(fsys, t.file)
		if err != nil {
			return nil, err
		}
		id, pr := col(head, "id"), col(head, "profile")
		if id < 0 || pr < 0 {
			return nil, fmt.Errorf("gridops: %s has no id or profile column", t.file)
		}
		ty := col(head, "type")
		for _, r := range rows {
			t.dst[r[id]] = r[pr]
			if t.file == "RES.csv" && ty >= 0 {
				sp.genType[r[id]] = r[ty]
			}
		}
	}
	var err error
	var times []time.Time
	if sp.loadCols, times, err = readProfile(fsys, "LoadProfile.csv"); err != nil {
		return nil, err
	}
	var rt []time.Time
	if sp.resCols, rt, err = readProfile(fsys, "RESProfile.csv"); err != nil {
		return nil, err
	}
	if len(rt) != len(times) {
		return nil, fmt.Errorf("gridops: LoadProfile.csv has %d rows, RESProfile.csv %d", len(times), len(rt))
	}
	sp.Times = times
	for k, t := range times {
		if t.Hour() == 0 && t.Minute() == 0 && k+QuarterHours <= len(times) {
			sp.dayOffset[t] = k
		}
	}
	return sp, nil
}

func readSemicolon(fsys fs.FS, name string) ([]string, [][]string, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, nil, fmt.Errorf("gridops: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.Comma = ';'
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, nil, fmt.Errorf("gridops: %s: %w", name, err)
	}
	if len(recs) < 2 {
		return nil, nil, fmt.Errorf("gridops: %s has no rows", name)
	}
	return recs[0], recs[1:], nil
}

func col(head []string, name string) int {
	for i, h := range head {
		if strings.TrimSpace(h) == name {
			return i
		}
	}
	return -1
}

func readProfile(fsys fs.FS, name string) (map[string][]float64, []time.Time, error) {
	head, rows, err := readSemicolon(fsys, name)
	if err != nil {
		return nil, nil, err
	}
	if col(head, "time") != 0 {
		return nil, nil, fmt.Errorf("gridops: %s: first column is not time", name)
	}
	cols := map[string][]float64{}
	times := make([]time.Time, len(rows))
	for k, r := range rows {
		if len(r) != len(head) {
			return nil, nil, fmt.Errorf("gridops: %s line %d: %d fields, header has %d", name, k+2, len(r), len(head))
		}
		t, err := time.ParseInLocation("02.01.2006 15:04", r[0], time.UTC)
		if err != nil {
			return nil, nil, fmt.Errorf("gridops: %s line %d: time %q: %w", name, k+2, r[0], err)
		}
		times[k] = t
		for i := 1; i < len(head); i++ {
			v, err := strconv.ParseFloat(r[i], 64)
			if err != nil {
				return nil, nil, fmt.Errorf("gridops: %s line %d column %s: %q is not a number", name, k+2, head[i], r[i])
			}
			cols[head[i]] = append(cols[head[i]], v)
		}
	}
	return cols, times, nil
}

// Days lists the days the profiles cover completely.
func (sp *SimBenchProfiles) Days() []time.Time {
	var out []time.Time
	for d := range sp.dayOffset {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// Scaling multiplies the loads' and the generators' base P and Q (zero
// means 1): a penetration scenario on top of the grid's own data.
type Scaling struct {
	Load, Gen float64
}

// Forecast builds the day's 96 intervals for the grid: every load scaled
// by its profile's pload/qload factors, every generator by its profile,
// both times sc.
func (sp *SimBenchProfiles) Forecast(net *grid.Network, day time.Time, sc Scaling) (Forecast, error) {
	if sc.Load == 0 {
		sc.Load = 1
	}
	if sc.Gen == 0 {
		sc.Gen = 1
	}
	if sc.Load < 0 || sc.Gen < 0 {
		return Forecast{}, fmt.Errorf("gridops: negative scaling (load %v, generation %v)", sc.Load, sc.Gen)
	}
	off, ok := sp.dayOffset[day.UTC()]
	if !ok {
		return Forecast{}, fmt.Errorf("gridops: the profiles do not cover the day %s", day.Format("2006-01-02"))
	}
	idx := net.BusIndex()
	f := Forecast{Start: day.UTC(), Step: Quarter, Intervals: make([]powerflow.Interval, QuarterHours)}
	for k := range f.Intervals {
		f.Intervals[k] = powerflow.Interval{PMW: make([]float64, len(net.Buses)), QMvar: make([]float64, len(net.Buses))}
	}
	for _, l := range net.Loads {
		pr, ok := sp.loadProf[l.ID]
		if !ok {
			return Forecast{}, fmt.Errorf("gridops: load %q has no profile in Load.csv", l.ID)
		}
		pc, qc := sp.loadCols[pr+"_pload"], sp.loadCols[pr+"_qload"]
		if pc == nil || qc == nil {
			return Forecast{}, fmt.Errorf("gridops: load %q: profile %q is not in LoadProfile.csv", l.ID, pr)
		}
		b := idx[l.Bus]
		for k := range f.Intervals {
			f.Intervals[k].PMW[b] -= sc.Load * l.PMW * pc[off+k]
			f.Intervals[k].QMvar[b] -= sc.Load * l.QMvar * qc[off+k]
		}
	}
	for _, g := range net.Gens {
		pr, ok := sp.genProf[g.ID]
		if !ok {
			return Forecast{}, fmt.Errorf("gridops: generator %q has no profile in RES.csv", g.ID)
		}
		pc := sp.resCols[pr]
		if pc == nil {
			return Forecast{}, fmt.Errorf("gridops: generator %q: profile %q is not in RESProfile.csv", g.ID, pr)
		}
		b := idx[g.Bus]
		for k := range f.Intervals {
			f.Intervals[k].PMW[b] += sc.Gen * g.PMW * pc[off+k]
			f.Intervals[k].QMvar[b] += sc.Gen * g.QMvar * pc[off+k]
		}
	}
	return f, nil
}

// Extremes returns, per covered day, the grid's largest net load in the
// evening (17:00–21:00) and the largest net export at noon (11:00–15:00),
// in MW, to pick the days worth studying.
func (sp *SimBenchProfiles) Extremes(net *grid.Network) (eveningPeak, noonExport map[time.Time]float64) {
	eveningPeak, noonExport = map[time.Time]float64{}, map[time.Time]float64{}
	for day, off := range sp.dayOffset {
		for k := 0; k < QuarterHours; k++ {
			net1 := 0.0 // net load MW
			for _, l := range net.Loads {
				net1 += l.PMW * sp.loadCols[sp.loadProf[l.ID]+"_pload"][off+k]
			}
			for _, g := range net.Gens {
				net1 -= g.PMW * sp.resCols[sp.genProf[g.ID]][off+k]
			}
			h := k / 4
			if h >= 17 && h < 21 && net1 > eveningPeak[day] {
				eveningPeak[day] = net1
			}
			if h >= 11 && h < 15 && -net1 > noonExport[day] {
				noonExport[day] = -net1
			}
		}
	}
	return eveningPeak, noonExport
}

// Argmax returns the day with the largest value (earliest on ties).
func Argmax(m map[time.Time]float64) time.Time {
	var best time.Time
	bv := math.Inf(-1)
	for d, v := range m {
		if v > bv || (v == bv && d.Before(best)) {
			best, bv = d, v
		}
	}
	return best
}

// HalfHourly is a set of metered half-hourly series (e.g. the SGSC
// households): per series, energy per half hour in kWh, keyed by the start
// of the half hour. The meter data's local clock times are kept as they
// are and labelled UTC (a profile's time of day is what the forecast
// uses; see docs/GRID_OPERATIONS.md).
type HalfHourly struct {
	IDs    []string
	series map[string]map[time.Time]float64
}

// ReadSGSC reads customer_id,reading_datetime,general_supply_kwh rows.
func ReadSGSC(r io.Reader) (*HalfHourly, error) {
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<16))
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("gridops: household profiles: %w", err)
	}
	ic, it, iv := col(head, "customer_id"), col(head, "reading_datetime"), col(head, "general_supply_kwh")
	if ic < 0 || it < 0 || iv < 0 {
		return nil, fmt.Errorf("gridops: household profiles: header %q lacks customer_id, reading_datetime or general_supply_kwh", strings.Join(head, ","))
	}
	h := &HalfHourly{series: map[string]map[time.Time]float64{}}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("gridops: household profiles line %d: %w", line, err)
		}
		t, err := time.ParseInLocation("2006-01-02 15:04:05", rec[it], time.UTC)
		if err != nil {
			return nil, fmt.Errorf("gridops: household profiles line %d: time %q: %w", line, rec[it], err)
		}
		v, err := strconv.ParseFloat(rec[iv], 64)
		if err != nil || v < 0 || math.IsInf(v, 0) {
			return nil, fmt.Errorf("gridops: household profiles line %d: %q is not an energy in kWh", line, rec[iv])
		}
		s := h.series[rec[ic]]
		if s == nil {
			s = map[time.Time]float64{}
			h.series[rec[ic]] = s
			h.IDs = append(h.IDs, rec[ic])
		}
		s[t] = v
	}
	sort.Strings(h.IDs)
	return h, nil
}

// CompleteDays lists the days on which every series has all 48 readings.
func (h *HalfHourly) CompleteDays() []time.Time {
	count := map[time.Time]int{}
	for _, s := range h.series {
		for t := range s {
			count[t.Truncate(24*time.Hour)]++
		}
	}
	var out []time.Time
	for d, n := range count {
		if n == 48*len(h.series) {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// EveningPeakDay is the complete day with the largest total consumption
// of all series between 17:00 and 21:00.
func (h *HalfHourly) EveningPeakDay() (time.Time, error) {
	days := h.CompleteDays()
	if len(days) == 0 {
		return time.Time{}, fmt.Errorf("gridops: no day on which all %d households have all readings", len(h.IDs))
	}
	m := map[time.Time]float64{}
	for _, d := range days {
		for _, s := range h.series {
			for k := 34; k < 42; k++ {
				m[d] += s[d.Add(time.Duration(k)*30*time.Minute)]
			}
		}
	}
	return Argmax(m), nil
}

// DayKW returns each series' day as 96 quarter-hour average powers in kW:
// each half hour's energy is held over both of its quarter hours (kWh per
// half hour × 2 = average kW), which keeps the energy exactly.
func (h *HalfHourly) DayKW(day time.Time) ([][]float64, error) {
	out := make([][]float64, len(h.IDs))
	for i, id := range h.IDs {
		s := h.series[id]
		out[i] = make([]float64, QuarterHours)
		for k := 0; k < 48; k++ {
			v, ok := s[day.Add(time.Duration(k)*30*time.Minute)]
			if !ok {
				return nil, fmt.Errorf("gridops: household %s has no reading at %s", id, day.Add(time.Duration(k)*30*time.Minute).Format("2006-01-02 15:04"))
			}
			out[i][2*k], out[i][2*k+1] = 2*v, 2*v
		}
	}
	return out, nil
}

// SolarHome is one Ausgrid solar home's half-hourly average powers: GC
// (general consumption) and GG (gross PV generation), kW.
type SolarHome struct {
	gg     map[time.Time]float64
	peakKW float64 // largest GG of the whole series
}

// ReadAusgridSolarHome reads the ",GC,GG" half-hourly file (average kW).
func ReadAusgridSolarHome(r io.Reader) (*SolarHome, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("gridops: solar home: %w", err)
	}
	ig := col(head, "GG")
	if ig < 0 {
		return nil, fmt.Errorf("gridops: solar home: no GG column in header %q", strings.Join(head, ","))
	}
	s := &SolarHome{gg: map[time.Time]float64{}}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("gridops: solar home line %d: %w", line, err)
		}
		t, err := time.ParseInLocation("2006-01-02 15:04:05", rec[0], time.UTC)
		if err != nil {
			return nil, fmt.Errorf("gridops: solar home line %d: time %q: %w", line, rec[0], err)
		}
		v, err := strconv.ParseFloat(rec[ig], 64)
		if err != nil || v < 0 || math.IsInf(v, 0) {
			return nil, fmt.Errorf("gridops: solar home line %d: GG %q is not a power in kW", line, rec[ig])
		}
		s.gg[t] = v
		s.peakKW = math.Max(s.peakKW, v)
	}
	if s.peakKW <= 0 {
		return nil, fmt.Errorf("gridops: solar home: no generation in the file")
	}
	return s, nil
}

// SameDay returns the solar home's day with the calendar month and day of
// d (the file covers one year, July to June).
func (s *SolarHome) SameDay(d time.Time) (time.Time, error) {
	for y := d.Year() - 3; y <= d.Year()+3; y++ {
		c := time.Date(y, d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
		if _, ok := s.gg[c.Add(12*time.Hour)]; ok {
			return c, nil
		}
	}
	return time.Time{}, fmt.Errorf("gridops: solar home has no %s", d.Format("January 2"))
}

// DayPerKWp returns the day's generation per kW of the panel's largest
// observed output (the year's highest half-hour), 96 quarter hours held.
func (s *SolarHome) DayPerKWp(day time.Time) ([]float64, error) {
	out := make([]float64, QuarterHours)
	for k := 0; k < 48; k++ {
		v, ok := s.gg[day.Add(time.Duration(k)*30*time.Minute)]
		if !ok {
			return nil, fmt.Errorf("gridops: solar home has no reading at %s", day.Add(time.Duration(k)*30*time.Minute).Format("2006-01-02 15:04"))
		}
		out[2*k], out[2*k+1] = v/s.peakKW, v/s.peakKW
	}
	return out, nil
}

// HouseholdScenario assigns real household profiles to a grid's loads.
type HouseholdScenario struct {
	Start time.Time
	// HouseholdsKW are consumption profiles (96 quarter-hour kW each);
	// load i of the grid follows profile i mod len.
	HouseholdsKW [][]float64
	// PVPerKWp (96 values) on a share PVShare of the loads, PVKWp each.
	PVPerKWp []float64
	PVShare  float64
	PVKWp    float64
	// ExtraKW (96 values, e.g. a heat pump or an EV charger) on a share
	// ExtraShare of the loads, on top of the household.
	ExtraKW    []float64
	ExtraShare float64
	// Aggregate is for grids whose loads are many households each (MV):
	// every load follows the mean of the household profiles scaled so
	// that the day's peak is the load's own P, and the grid's own
	// generators follow PVPerKWp times their P; PVShare, ExtraShare are
	// not used.
	Aggregate bool
}

// pick spreads a share evenly over the loads: load i is picked when
// floor((i+1)·share) > floor(i·share).
func pick(i int, share float64) bool {
	return math.Floor(float64(i+1)*share) > math.Floor(float64(i)*share)
}

// Forecast builds the day: each load's household profile replaces its base
// P (its Q keeps the load's own Q/P ratio); PV and the extra load are
// added where picked. The network's own generators are left out.
func (sc HouseholdScenario) Forecast(net *grid.Network) (Forecast, error) {
	if len(sc.HouseholdsKW) == 0 {
		return Forecast{}, fmt.Errorf("gridops: no household profiles")
	}
	for i, h := range sc.HouseholdsKW {
		if len(h) != QuarterHours {
			return Forecast{}, fmt.Errorf("gridops: household profile %d has %d values, want %d", i, len(h), QuarterHours)
		}
	}
	if sc.PVShare > 0 && len(sc.PVPerKWp) != QuarterHours {
		return Forecast{}, fmt.Errorf("gridops: PV profile has %d values, want %d", len(sc.PVPerKWp), QuarterHours)
	}
	if sc.ExtraShare > 0 && len(sc.ExtraKW) != QuarterHours {
		return Forecast{}, fmt.Errorf("gridops: extra load profile has %d values, want %d", len(sc.ExtraKW), QuarterHours)
	}
	if sc.PVShare < 0 || sc.PVShare > 1 || sc.ExtraShare < 0 || sc.ExtraShare > 1 {
		return Forecast{}, fmt.Errorf("gridops: shares must be within 0..1 (PV %v, extra %v)", sc.PVShare, sc.ExtraShare)
	}
	idx := net.BusIndex()
	f := Forecast{Start: sc.Start.UTC(), Step: Quarter, Intervals: make([]powerflow.Interval, QuarterHours)}
	for k := range f.Intervals {
		f.Intervals[k] = powerflow.Interval{PMW: make([]float64, len(net.Buses)), QMvar: make([]float64, len(net.Buses))}
	}
	if sc.Aggregate {
		return sc.aggregate(net, idx, f)
	}
	for i, l := range net.Loads {
		b := idx[l.Bus]
		qp := 0.0
		if l.PMW > 0 {
			qp = l.QMvar / l.PMW
		}
		h := sc.HouseholdsKW[i%len(sc.HouseholdsKW)]
		pv, extra := sc.PVShare > 0 && pick(i, sc.PVShare), sc.ExtraShare > 0 && pick(i, sc.ExtraShare)
		for k := range f.Intervals {
			p := h[k]
			if extra {
				p += sc.ExtraKW[k]
			}
			f.Intervals[k].PMW[b] -= p / 1000
			f.Intervals[k].QMvar[b] -= p * qp / 1000
			if pv {
				f.Intervals[k].PMW[b] += sc.PVKWp * sc.PVPerKWp[k] / 1000
			}
		}
	}
	return f, nil
}

// StudyCaseStates builds one operating state per SimBench study case
// (StudyCases.csv): loads times pload/qload, PV generators times PV_p,
// wind times Wind_p, other RES times RES_p, the slacks at Slack_vm. Each
// case is its own compiled model (the slack voltage differs), so the
// states come with their own analysers; HostingCapacity accepts them
// together.
func (sp *SimBenchProfiles) StudyCaseStates(net *grid.Network, cases []grid.StudyCase, lim Limits, opt powerflow.Options) ([]*State, error) {
	var out []*State
	for k, c := range cases {
		n := *net
		n.Loads = append([]grid.Load(nil), net.Loads...)
		n.Gens = append([]grid.StaticGen(nil), net.Gens...)
		n.Slacks = append([]grid.Slack(nil), net.Slacks...)
		for i := range n.Loads {
			n.Loads[i].PMW *= c.PLoad
			n.Loads[i].QMvar *= c.QLoad
		}
		for i := range n.Gens {
			f := c.RESP
			switch strings.ToLower(sp.genType[n.Gens[i].ID]) {
			case "pv":
				f = c.PVP
			case "wind":
				f = c.WindP
			}
			n.Gens[i].PMW *= f
			n.Gens[i].QMvar *= f
		}
		for i := range n.Slacks {
			n.Slacks[i].VmPU = c.SlackVmPU
		}
		m, err := powerflow.Compile(&n)
		if err != nil {
			return nil, fmt.Errorf("gridops: study case %s: %w", c.Name, err)
		}
		a, err := New(m, lim, opt)
		if err != nil {
			return nil, err
		}
		p, q := m.BaseInjections()
		s, err := a.NewState(time.Time{}, time.Time{}, p, q)
		if err != nil {
			return nil, fmt.Errorf("gridops: study case %s: %w", c.Name, err)
		}
		s.Index, s.Case = k, c.Name
		out = append(out, s)
	}
	return out, nil
}

func (sc HouseholdScenario) aggregate(net *grid.Network, idx map[string]int, f Forecast) (Forecast, error) {
	shape := make([]float64, QuarterHours)
	peak := 0.0
	for k := range shape {
		for _, h := range sc.HouseholdsKW {
			shape[k] += h[k] / float64(len(sc.HouseholdsKW))
		}
		peak = math.Max(peak, shape[k])
	}
	if peak <= 0 {
		return Forecast{}, fmt.Errorf("gridops: the household profiles have no consumption on %s", sc.Start.Format("2006-01-02"))
	}
	if len(net.Gens) > 0 && len(sc.PVPerKWp) != QuarterHours {
		return Forecast{}, fmt.Errorf("gridops: PV profile has %d values, want %d", len(sc.PVPerKWp), QuarterHours)
	}
	for _, l := range net.Loads {
		b := idx[l.Bus]
		for k := range f.Intervals {
			f.Intervals[k].PMW[b] -= l.PMW * shape[k] / peak
			f.Intervals[k].QMvar[b] -= l.QMvar * shape[k] / peak
		}
	}
	for _, g := range net.Gens {
		b := idx[g.Bus]
		for k := range f.Intervals {
			f.Intervals[k].PMW[b] += g.PMW * sc.PVPerKWp[k]
			f.Intervals[k].QMvar[b] += g.QMvar * sc.PVPerKWp[k]
		}
	}
	return f, nil
}
