package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flexhub/flexhub/grid"
	"github.com/flexhub/flexhub/gridops"
	"github.com/flexhub/flexhub/powerflow"
)

const gridUsage = `Usage: flexhub grid analyse [flags]

The DSO's view of a day on its grid (docs/GRID_OPERATIONS.md): the power
flow of every 15-minute interval of a forecast day, the limit violations
per interval, the flexibility needs that remove them (checked with AC
power flows), and optionally hosting capacities at given buses.

--grid is a SimBench folder (forecast: its own LoadProfile.csv and
RESProfile.csv; study cases from StudyCases.csv for --hosting) or a
pandapower JSON file (forecast: the SGSC households' half-hourly profiles
assigned to its loads, the Ausgrid solar home's PV on a share of them).

Flags:
`

// gridCmd is `flexhub grid ...`.
func gridCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "analyse" && args[0] != "analyze") {
		fmt.Fprint(stderr, gridUsage)
		return usageError{"usage: flexhub grid analyse [flags]"}
	}
	fs := flag.NewFlagSet("grid analyse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, gridUsage); fs.PrintDefaults() }
	data := filepath.Join("..", "shared", "data")
	gridPath := fs.String("grid", filepath.Join(data, "grids", "simbench", "1-LV-rural1--0-no_sw"), "SimBench folder or pandapower JSON file")
	dayFlag := fs.String("day", "", "forecast day YYYY-MM-DD (default: SimBench: the day with the largest noon export; households: the day with the largest evening consumption)")
	loadScale := fs.Float64("load-scale", 1, "factor on every load (a penetration scenario)")
	genScale := fs.Float64("gen-scale", 1, "factor on every generator or PV (e.g. 3 for three times today's PV)")
	households := fs.String("households", filepath.Join(data, "meter", "sgsc_25_households_halfhourly.csv.gz"), "pandapower grids: SGSC half-hourly household file (.csv or .csv.gz)")
	pvFile := fs.String("pv", filepath.Join(data, "meter", "ausgrid_solar_home_customer12_2011-2012.csv"), "pandapower grids: Ausgrid solar home file (PV profile)")
	pvShare := fs.Float64("pv-share", 0.3, "pandapower grids: share of loads with PV")
	pvKWp := fs.Float64("pv-kwp", 5, "pandapower grids: PV size per household, kWp")
	aggregate := fs.Bool("aggregate", false, "pandapower grids whose loads are many households each (MV): every load follows the households' mean profile scaled to its own P at the day's peak, the grid's generators the PV profile")
	vmin := fs.Float64("vmin", 0.9, "voltage band lower limit, p.u., for buses without their own band")
	vmax := fs.Float64("vmax", 1.1, "voltage band upper limit, p.u., for buses without their own band")
	override := fs.Bool("override-bands", false, "apply --vmin/--vmax to every bus, also those with their own band")
	maxLoading := fs.Float64("max-loading", 100, "largest allowed line and transformer loading, %")
	kind := fs.String("kind", "active", "kind of flexibility the needs ask for: active or reactive")
	material := fs.Float64("material", 0.5, "a bus is listed in a need when its effect is at least this share of the best bus's")
	hosting := fs.String("hosting", "", "buses (comma-separated) to report hosting capacities at, over the day's intervals (and SimBench study cases)")
	asJSON := fs.Bool("json", false, "machine-readable output (JSON) instead of tables")
	svg := fs.String("svg", "", "write an SVG picture of the day (voltages, loadings, needs) to this file")
	quiet := fs.Bool("quiet", false, "no progress line")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err.Error()}
	}
	if fs.NArg() != 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if *kind != "active" && *kind != "reactive" {
		return usageError{fmt.Sprintf("--kind %q: use active or reactive", *kind)}
	}
	var day time.Time
	if *dayFlag != "" {
		d, err := time.Parse("2006-01-02", *dayFlag)
		if err != nil {
			return usageError{fmt.Sprintf("--day %q: want YYYY-MM-DD", *dayFlag)}
		}
		day = d
	}
	progress := func(format string, a ...any) {
		if !*quiet {
			fmt.Fprintf(stderr, "\r"+format+"\033[K", a...)
		}
	}
	defer func() {
		if !*quiet {
			fmt.Fprint(stderr, "\r\033[K")
		}
	}()

	lim := gridops.Limits{VMinPU: *vmin, VMaxPU: *vmax, OverrideBusBands: *override, MaxLoadingPercent: *maxLoading}
	progress("reading %s", *gridPath)
	in, err := loadGridInput(*gridPath, day, gridops.Scaling{Load: *loadScale, Gen: *genScale},
		*households, *pvFile, *pvShare, *pvKWp, *aggregate, lim)
	if err != nil {
		return err
	}
	m, err := powerflow.Compile(in.net)
	if err != nil {
		return err
	}
	a, err := gridops.New(m, lim, powerflow.Options{})
	if err != nil {
		return usageError{err.Error()}
	}
	progress("power flow of %d intervals", len(in.forecast.Intervals))
	states, err := a.Day(in.forecast)
	if err != nil {
		return err
	}
	rep := gridReport{Grid: in.net.Name, Buses: len(in.net.Buses), Lines: len(in.net.Lines), Trafos: len(in.net.Trafos),
		Forecast: in.source, Day: in.forecast.Start.Format("2006-01-02"), Limits: a.Limits()}
	for _, s := range states {
		sm := s.Summary()
		rep.Intervals = append(rep.Intervals, sm)
		if len(sm.Violations) > 0 {
			rep.ViolatedIntervals++
		}
	}
	rep.Needs, err = a.Needs(states, gridops.NeedOptions{Kind: gridops.PowerKind(*kind), MaterialFraction: *material},
		func(done, total int) {
			if done%8 == 0 || done == total {
				progress("needs: interval %d of %d", done, total)
			}
		})
	if err != nil {
		return err
	}
	if *hosting != "" {
		for _, bus := range splitList(*hosting) {
			progress("hosting capacity at bus %s", bus)
			caps, err := a.HostingCapacity(states, bus, gridops.HostingOptions{})
			if err != nil {
				return usageError{err.Error()}
			}
			rep.Hosting = append(rep.Hosting, hostingRow{Over: "day", Capacities: caps})
			if in.cases != nil {
				caps, err := a.HostingCapacity(in.cases, bus, gridops.HostingOptions{})
				if err != nil {
					return err
				}
				rep.Hosting = append(rep.Hosting, hostingRow{Over: "study cases", Capacities: caps})
			}
		}
	}
	if !*quiet {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if *svg != "" {
		if err := os.WriteFile(*svg, []byte(daySVG(rep)), 0o644); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printGridReport(stdout, rep)
	return nil
}

type gridReport struct {
	Grid              string                    `json:"grid"`
	Buses             int                       `json:"buses"`
	Lines             int                       `json:"lines"`
	Trafos            int                       `json:"trafos"`
	Forecast          string                    `json:"forecast"`
	Day               string                    `json:"day"`
	Limits            gridops.Limits            `json:"limits"`
	ViolatedIntervals int                       `json:"violated_intervals"`
	Intervals         []gridops.IntervalSummary `json:"intervals"`
	Needs             []gridops.Need            `json:"needs"`
	Hosting           []hostingRow              `json:"hosting,omitempty"`
}

type hostingRow struct {
	Over       string             `json:"over"`
	Capacities []gridops.Capacity `json:"capacities"`
}

type gridInput struct {
	net      *grid.Network
	forecast gridops.Forecast
	source   string
	cases    []*gridops.State // SimBench study cases, if any
}

func loadGridInput(path string, day time.Time, sc gridops.Scaling, households, pvFile string, pvShare, pvKWp float64, aggregate bool, lim gridops.Limits) (*gridInput, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--grid: %v", err)}
	}
	if st.IsDir() {
		fsys := os.DirFS(path)
		net, err := grid.ReadSimBench(fsys)
		if err != nil {
			return nil, err
		}
		if net.Name == "" {
			net.Name = filepath.Base(path)
		}
		sp, err := gridops.ReadSimBenchProfiles(fsys)
		if err != nil {
			return nil, err
		}
		if day.IsZero() {
			_, noon := sp.Extremes(net)
			day = gridops.Argmax(noon)
		}
		f, err := sp.Forecast(net, day, sc)
		if err != nil {
			return nil, usageError{err.Error()}
		}
		in := &gridInput{net: net, forecast: f,
			source: fmt.Sprintf("SimBench profiles (LoadProfile.csv, RESProfile.csv), loads ×%g, generators ×%g", nz(sc.Load), nz(sc.Gen))}
		if cases, err := grid.ReadSimBenchStudyCases(fsys); err == nil {
			in.cases, err = sp.StudyCaseStates(net, cases, lim, powerflow.Options{})
			if err != nil {
				return nil, err
			}
		}
		return in, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	net, err := grid.ReadPandapower(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	if net.Name == "" {
		net.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	hh, err := readHouseholds(households)
	if err != nil {
		return nil, err
	}
	if day.IsZero() {
		if day, err = hh.EveningPeakDay(); err != nil {
			return nil, err
		}
	}
	kw, err := hh.DayKW(day)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	sc2 := gridops.HouseholdScenario{Start: day, HouseholdsKW: kw, PVShare: pvShare, PVKWp: pvKWp, Aggregate: aggregate}
	src := fmt.Sprintf("%d SGSC households (%s), held to 15 min", len(kw), filepath.Base(households))
	if aggregate {
		src = fmt.Sprintf("the mean of %d SGSC households (%s) scaled to each load's P at the day's peak, held to 15 min", len(kw), filepath.Base(households))
	}
	if pvShare > 0 || (aggregate && len(net.Gens) > 0) {
		var pd time.Time
		if sc2.PVPerKWp, pd, err = readPVPerKWp(pvFile, day); err != nil {
			return nil, err
		}
		if aggregate {
			src += fmt.Sprintf("; the grid's %d generators follow PV (Ausgrid solar home, %s, per peak)", len(net.Gens), pd.Format("2006-01-02"))
		} else {
			src += fmt.Sprintf("; PV %g kWp on %.0f %% of loads (Ausgrid solar home, %s)", pvKWp, 100*pvShare, pd.Format("2006-01-02"))
		}
	}
	if sc.Load < 0 || sc.Gen < 0 {
		return nil, usageError{fmt.Sprintf("negative scaling (load %v, generation %v)", sc.Load, sc.Gen)}
	}
	for _, h := range sc2.HouseholdsKW {
		for k := range h {
			h[k] *= nz(sc.Load)
		}
	}
	for k := range sc2.PVPerKWp {
		sc2.PVPerKWp[k] *= nz(sc.Gen)
	}
	if nz(sc.Load) != 1 || nz(sc.Gen) != 1 {
		src += fmt.Sprintf("; loads ×%g, PV ×%g", nz(sc.Load), nz(sc.Gen))
	}
	fc, err := sc2.Forecast(net)
	if err != nil {
		return nil, err
	}
	return &gridInput{net: net, forecast: fc, source: src}, nil
}

func nz(x float64) float64 {
	if x == 0 {
		return 1
	}
	return x
}

// readPVPerKWp reads an Ausgrid solar home file and returns its PV per
// kWp, per quarter hour, on the day of the same season as day (and that
// day).
func readPVPerKWp(path string, day time.Time) ([]float64, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	sh, err := gridops.ReadAusgridSolarHome(f)
	f.Close()
	if err != nil {
		return nil, time.Time{}, err
	}
	pd, err := sh.SameDay(day)
	if err != nil {
		return nil, time.Time{}, err
	}
	pv, err := sh.DayPerKWp(pd)
	return pv, pd, err
}

func readHouseholds(path string) (*gridops.HalfHourly, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer z.Close()
		r = z
	}
	return gridops.ReadSGSC(r)
}

func printGridReport(w io.Writer, rep gridReport) {
	fmt.Fprintf(w, "Grid %s: %d buses, %d lines, %d transformers\n", rep.Grid, rep.Buses, rep.Lines, rep.Trafos)
	fmt.Fprintf(w, "Forecast %s: %s\n", rep.Day, rep.Forecast)
	l := rep.Limits
	band := fmt.Sprintf("%.3g–%.3g p.u. where a bus has no band of its own", l.VMinPU, l.VMaxPU)
	if l.OverrideBusBands {
		band = fmt.Sprintf("%.3g–%.3g p.u. at every bus", l.VMinPU, l.VMaxPU)
	}
	fmt.Fprintf(w, "Limits: voltage %s; loading ≤ %.0f %%\n\n", band, l.MaxLoadingPercent)

	minV, maxV, maxL := 10.0, 0.0, 0.0
	var minAt, maxAt, maxLAt string
	for _, iv := range rep.Intervals {
		if iv.MinVmPU < minV {
			minV, minAt = iv.MinVmPU, fmt.Sprintf("bus %s %s", iv.MinVmBus, iv.Start.Format("15:04"))
		}
		if iv.MaxVmPU > maxV {
			maxV, maxAt = iv.MaxVmPU, fmt.Sprintf("bus %s %s", iv.MaxVmBus, iv.Start.Format("15:04"))
		}
		if iv.MaxLoadingPercent > maxL {
			maxL, maxLAt = iv.MaxLoadingPercent, fmt.Sprintf("%s %s", iv.MaxLoadingElement, iv.Start.Format("15:04"))
		}
	}
	fmt.Fprintf(w, "Day: voltage %.4f (%s) .. %.4f p.u. (%s); highest loading %.1f %% (%s)\n", minV, minAt, maxV, maxAt, maxL, maxLAt)
	fmt.Fprintf(w, "%d of %d intervals violate a limit.\n", rep.ViolatedIntervals, len(rep.Intervals))
	if rep.ViolatedIntervals == 0 {
		fmt.Fprintln(w, "No flexibility need: nothing to publish for this day (a penetration scenario: --load-scale, --gen-scale; a stricter band: --vmin/--vmax --override-bands).")
	}
	if rep.ViolatedIntervals > 0 {
		fmt.Fprintln(w, "\nViolations per interval:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "interval\tnet load MW\tmin V p.u.\tmax loading %\tviolations\tworst")
		for _, iv := range rep.Intervals {
			if len(iv.Violations) == 0 {
				continue
			}
			vs := append([]gridops.Violation(nil), iv.Violations...)
			sort.SliceStable(vs, func(i, j int) bool { return severity(vs[i]) > severity(vs[j]) })
			var worst []string
			for k := 0; k < len(vs) && k < 3; k++ {
				worst = append(worst, vs[k].String())
			}
			if len(vs) > 3 {
				worst = append(worst, fmt.Sprintf("+%d more", len(vs)-3))
			}
			fmt.Fprintf(tw, "%s–%s\t%.3f\t%.4f\t%.1f\t%d\t%s\n", iv.Start.Format("15:04"), iv.Start.Add(gridops.Quarter).Format("15:04"),
				iv.LoadMW, iv.MinVmPU, iv.MaxLoadingPercent, len(iv.Violations), strings.Join(worst, "; "))
		}
		tw.Flush()
	}
	if len(rep.Needs) > 0 {
		fmt.Fprintln(w, "\nFlexibility needs (each removes its violations under AC power flow when delivered spread equally over its buses):")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "period\tkind\tdirection\tquantity\tbuses\tlimiting element\treason")
		for _, n := range rep.Needs {
			var ids []string
			for k, b := range n.Buses {
				if k == 5 {
					ids = append(ids, fmt.Sprintf("+%d", len(n.Buses)-5))
					break
				}
				ids = append(ids, b.Bus)
			}
			fmt.Fprintf(tw, "%s–%s\t%s\t%s\t%.1f %s\t%s\t%s\t%s\n", n.Start.Format("15:04"), n.End.Format("15:04"), n.Kind, n.Direction,
				n.Quantity, n.Unit, strings.Join(ids, ","), n.Limiting, n.Reason)
		}
		tw.Flush()
	}
	if len(rep.Hosting) > 0 {
		fmt.Fprintln(w, "\nHosting capacity (AC-confirmed to the tolerance; the linear estimate for comparison):")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "bus\tover\tkind\tdirection\tlimit\tlinear\tlimiting element\tin")
		for _, h := range rep.Hosting {
			for _, c := range h.Capacities {
				lim := fmt.Sprintf("%.1f %s", c.Limit, c.Unit)
				el, in := c.Limiting.String(), c.LimitingStart.Format("15:04")
				if c.Unlimited {
					lim, el, in = fmt.Sprintf("≥ %.0f %s", c.Limit, c.Unit), "-", "-"
				}
				if c.LimitingCase != "" {
					in = c.LimitingCase
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%s\n", c.Bus, h.Over, c.Kind, c.Direction, lim, c.Linear, el, in)
			}
		}
		tw.Flush()
	}
}

// severity orders violations: voltage excess in % of nominal against
// loading excess in percentage points.
func severity(v gridops.Violation) float64 {
	switch v.Kind {
	case gridops.UnderVoltage, gridops.OverVoltage:
		return 100 * v.Excess()
	}
	return v.Excess()
}

// daySVG draws the day: minimum and maximum voltage against the band,
// the highest loading against its limit, and the needs as bars.
func daySVG(rep gridReport) string {
	const w, left, right, top = 960.0, 60.0, 20.0, 50.0
	const ph = 180.0 // panel height
	n := len(rep.Intervals)
	if n == 0 {
		return ""
	}
	x := func(k float64) float64 { return left + (w-left-right)*k/float64(n) }
	var b strings.Builder
	h := top + 3*ph + 3*40
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%.0f" y="18" font-size="14">%s — %s — %d of %d intervals violated</text>`+"\n", left, esc(rep.Grid), rep.Day, rep.ViolatedIntervals, n)
	panel := func(k int, title string, lo, hi float64, series [][]float64, colors []string, limits []float64) {
		y0 := top + float64(k)*(ph+40)
		y := func(v float64) float64 { return y0 + ph - ph*(v-lo)/(hi-lo) }
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", left, y0, w-left-right, ph)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", left, y0-6, esc(title))
		for i := 0; i <= 4; i++ {
			v := lo + (hi-lo)*float64(i)/4
			fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%.3g</text>`+"\n", left-4, y(v)+4, v)
		}
		for h := 0; h <= 24; h += 3 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%02d:00</text>`+"\n", x(float64(h*n)/24), y0+ph+14, h)
		}
		for _, l := range limits {
			fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#c00" stroke-dasharray="4 3"/>`+"\n", left, w-right, y(l), y(l))
		}
		for s, vals := range series {
			var pts []string
			for k, v := range vals {
				v = math.Max(lo, math.Min(hi, v))
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(float64(k)+0.5), y(v)))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", colors[s], strings.Join(pts, " "))
		}
	}
	var vmin, vmax, load []float64
	lo, hi, lmax := 1.0, 1.0, 100.0
	for _, iv := range rep.Intervals {
		vmin, vmax, load = append(vmin, iv.MinVmPU), append(vmax, iv.MaxVmPU), append(load, iv.MaxLoadingPercent)
		lo, hi, lmax = math.Min(lo, iv.MinVmPU), math.Max(hi, iv.MaxVmPU), math.Max(lmax, iv.MaxLoadingPercent)
	}
	lo, hi = math.Min(lo, rep.Limits.VMinPU)-0.01, math.Max(hi, rep.Limits.VMaxPU)+0.01
	panel(0, "lowest (blue) and highest (orange) bus voltage, p.u.; band dashed", lo, hi, [][]float64{vmin, vmax}, []string{"#1f77b4", "#ff7f0e"}, []float64{rep.Limits.VMinPU, rep.Limits.VMaxPU})
	panel(1, "highest line/transformer loading, %; limit dashed", 0, math.Ceil(lmax*1.1/10)*10, [][]float64{load}, []string{"#2ca02c"}, []float64{rep.Limits.MaxLoadingPercent})
	// Needs: total quantity per interval, up above the axis, down below.
	up, down := make([]float64, n), make([]float64, n)
	qmax := 1.0
	for _, nd := range rep.Needs {
		for _, iv := range nd.Intervals {
			if nd.Direction == gridops.Up {
				up[iv.Index] += iv.Quantity
			} else {
				down[iv.Index] += iv.Quantity
			}
		}
	}
	for k := range up {
		qmax = math.Max(qmax, math.Max(up[k], down[k]))
	}
	y0 := top + 2*(ph+40)
	fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", left, y0, w-left-right, ph)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">flexibility needs per interval, kW/kvar (up above the axis, down below; largest %.1f)</text>`+"\n", left, y0-6, qmax)
	mid := y0 + ph/2
	fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#999"/>`+"\n", left, w-right, mid, mid)
	bw := (w - left - right) / float64(n)
	for k := range up {
		if up[k] > 0 {
			hh := ph / 2 * up[k] / qmax
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#1f77b4"/>`+"\n", x(float64(k)), mid-hh, bw*0.9, hh)
		}
		if down[k] > 0 {
			hh := ph / 2 * down[k] / qmax
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#d62728"/>`+"\n", x(float64(k)), mid, bw*0.9, hh)
		}
	}
	for h := 0; h <= 24; h += 3 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%02d:00</text>`+"\n", x(float64(h*n)/24), y0+ph+14, h)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
