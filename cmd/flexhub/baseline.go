package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/baseline"
)

const baselineUsage = `Usage: flexhub baseline evaluate [flags] FILE.csv[.gz]

Runs baseline methods on real meter data over event days (given, or
placebo days chosen automatically: the highest-load working days without a
real event), and reports how far each method's baseline is from what was
actually consumed in the event window (docs/BASELINES.md).

FILE has a header and one row per customer and interval, e.g. the SGSC
trial's customer_id,reading_datetime,general_supply_kwh with local times
(--tz). The outcome per customer, day, method and adjustment goes to --out
(CSV); the summary per method is printed.

Flags:
`

// baselineCmd is `flexhub baseline ...`.
func baselineCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "evaluate" {
		fmt.Fprint(stderr, baselineUsage)
		return usageError{"usage: flexhub baseline evaluate [flags] FILE.csv[.gz]"}
	}
	fs := flag.NewFlagSet("baseline evaluate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, baselineUsage); fs.PrintDefaults() }
	tz := fs.String("tz", "UTC", "time zone of the file's local timestamps and of the event window: an IANA name (Australia/Sydney) or a fixed offset (+10:00)")
	window := fs.String("window", "17:00-20:00", "event window, local wall clock HH:MM-HH:MM (end 24:00 for midnight)")
	methods := fs.String("methods", "10/10,4/5,5/10,before:2", "baseline methods: X/Y (the X highest of the Y most recent eligible days; 10/10 is the plain average), before:N (meter before, the mean of the N intervals before the event)")
	adjust := fs.String("adjust", "none,additive,multiplicative", "same-day adjustments each day-matching method runs with: none, additive, multiplicative")
	capPct := fs.Int("cap", 20, "cap of the same-day adjustment, % (0: additive uncapped; multiplicative needs one)")
	adjWindow := fs.Duration("adjust-window", 3*time.Hour, "length of the same-day adjustment window")
	adjGap := fs.Duration("adjust-gap", time.Hour, "gap between the adjustment window's end and the event's start")
	dayType := fs.String("day-type", baseline.DayTypeWeekday, "which earlier days match: weekday_weekend, day_of_week or any")
	lookback := fs.Int("lookback", 0, "days searched back for eligible days (0: 3·Y+14)")
	days := fs.String("days", "", "event days YYYY-MM-DD,... (default: --placebo days chosen automatically)")
	placebo := fs.Int("placebo", 10, "number of placebo event days to choose when --days is not given")
	events := fs.String("events", "", "real event days YYYY-MM-DD,...: never placebo days, never in a baseline")
	holidays := fs.String("holidays", "", "public holidays YYYY-MM-DD,... (count as non-working days)")
	out := fs.String("out", "baseline-evaluation.csv", "CSV of every customer, day, method and adjustment ('-' for standard output, '' for none)")
	skipBad := fs.Bool("skip-bad", false, "leave bad rows out (each reported) instead of stopping")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err.Error()}
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usageError{"give exactly one meter-data file"}
	}
	loc, err := parseZone(*tz)
	if err != nil {
		return usageError{err.Error()}
	}
	e := &baseline.Evaluation{Location: loc, DayType: *dayType, Lookback: *lookback}
	if e.WindowStart, e.WindowEnd, err = parseClockWindow(*window); err != nil {
		return usageError{err.Error()}
	}
	for _, s := range splitList(*methods) {
		m, err := baseline.ParseMethod(s)
		if err != nil {
			return usageError{err.Error()}
		}
		e.Methods = append(e.Methods, m)
	}
	for _, k := range splitList(*adjust) {
		a := baseline.Adjustment{Kind: k, Length: *adjWindow, Gap: *adjGap, CapPct: *capPct}
		if k == baseline.AdjustNone {
			a = baseline.Adjustment{Kind: k}
		}
		e.Adjustments = append(e.Adjustments, a)
	}
	if e.Events, err = parseDates("events", *events); err != nil {
		return usageError{err.Error()}
	}
	if e.Holidays, err = parseDates("holidays", *holidays); err != nil {
		return usageError{err.Error()}
	}
	if e.Days, err = parseDates("days", *days); err != nil {
		return usageError{err.Error()}
	}
	if len(e.Days) == 0 && *placebo < 1 {
		return usageError{"--placebo must be at least 1 when no --days are given"}
	}
	if err := e.Check(); err != nil {
		return usageError{"--" + strings.ReplaceAll(flexhub.ErrorField(err), "_", "-") + ": " + flexhub.ErrorMessage(err)}
	}

	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(f, 1<<20)
	if br := r.(*bufio.Reader); isGzip(br) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: %w", fs.Arg(0), err)
		}
		r = zr
	}
	start := time.Now()
	opts := baseline.CSVOptions{Location: loc, SkipBad: *skipBad}
	if isTerminal(stderr) {
		opts.Progress = func(n int) { fmt.Fprintf(stderr, "\rreading %s: %d rows", fs.Arg(0), n) }
	}
	m, err := baseline.ReadCSV(r, opts)
	if opts.Progress != nil {
		fmt.Fprintf(stderr, "\r\033[K")
	}
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	fmt.Fprintf(stdout, "%s: %d rows, %d customers, %s intervals, read in %s\n", fs.Arg(0), m.Rows, len(m.Customers), m.Step, time.Since(start).Round(time.Millisecond))
	if len(m.Bad) > 0 {
		fmt.Fprintf(stdout, "left out %d bad rows (--skip-bad):\n", len(m.Bad))
		for _, b := range m.Bad[:min(len(m.Bad), 10)] {
			fmt.Fprintf(stdout, "  line %d: %s\n", b.Line, b.Reason)
		}
		if len(m.Bad) > 10 {
			fmt.Fprintf(stdout, "  ... and %d more\n", len(m.Bad)-10)
		}
	}
	if (e.WindowEnd-e.WindowStart)%m.Step != 0 || e.WindowStart%m.Step != 0 {
		return usageError{fmt.Sprintf("--window %s is not on the data's %s interval grid", *window, m.Step)}
	}
	if len(e.Days) == 0 {
		e.Days = baseline.PlaceboDays(m, e, *placebo)
		if len(e.Days) == 0 {
			return errors.New("no placebo day: the data hold no working day with enough history before it (see --lookback)")
		}
		fmt.Fprintf(stdout, "placebo event days (the %d highest-load working days in %s): %s\n", len(e.Days), *window, joinDates(e.Days))
	}
	outcomes, sums, err := baseline.Evaluate(m, e)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := writeOutcomes(*out, stdout, outcomes); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "\nevent window %s %s; error = baseline − actual, per customer and day\n\n", *window, loc)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "method\tadjustment\tcustomer-days\tno baseline\tmedian error %\tportfolio bias %\trelative RMSE %\t")
	for _, s := range sums {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t\n", s.Method, s.Adjustment, s.CustomerDays, s.NoBaseline, pct(s.MedianError), pct(s.BiasPct), pct(s.RRMSEPct))
	}
	tw.Flush()
	fmt.Fprintln(stdout, "\nmedian error %: the median over customers of each customer's median (baseline − actual) / actual")
	return nil
}

func pct(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%+.1f", v)
}

func writeOutcomes(path string, stdout io.Writer, outcomes []baseline.Outcome) (err error) {
	w := stdout
	if path != "-" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				fmt.Fprintf(stdout, "wrote %d outcomes to %s\n", len(outcomes), path)
			}
		}()
		w = f
	}
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"customer_id", "event_day", "method", "adjustment", "actual_kwh", "baseline_kwh", "error_kwh", "error_pct", "note"})
	for _, o := range outcomes {
		rec := []string{o.Customer, o.Day.String(), o.Method, o.Adjustment, "", "", "", "", o.Note}
		if o.OK {
			rec[4] = string(flexhub.FormatMeterValue(o.Actual, "kWh"))
			rec[5] = string(flexhub.FormatMeterValue(o.Baseline, "kWh"))
			rec[6] = signedKWh(o.Baseline - o.Actual)
			if o.Actual > 0 {
				rec[7] = fmt.Sprintf("%.1f", 100*float64(o.Baseline-o.Actual)/float64(o.Actual))
			}
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}

func signedKWh(v int64) string {
	if v < 0 {
		return "-" + string(flexhub.FormatMeterValue(-v, "kWh"))
	}
	return string(flexhub.FormatMeterValue(v, "kWh"))
}

func isGzip(r *bufio.Reader) bool {
	b, err := r.Peek(2)
	return err == nil && b[0] == 0x1f && b[1] == 0x8b
}

// parseZone reads an IANA zone name or a fixed offset (+10:00, -05:30).
func parseZone(s string) (*time.Location, error) {
	if len(s) == 6 && (s[0] == '+' || s[0] == '-') && s[3] == ':' {
		t, err := time.Parse("-07:00", s)
		if err == nil {
			_, off := t.Zone()
			return time.FixedZone("UTC"+s, off), nil
		}
	}
	loc, err := time.LoadLocation(s)
	if err != nil {
		return nil, fmt.Errorf("--tz %q: not a time zone (an IANA name like Europe/Berlin, or an offset like +10:00)", s)
	}
	return loc, nil
}

func parseClockWindow(s string) (from, to time.Duration, err error) {
	a, b, ok := strings.Cut(s, "-")
	if ok {
		from, err = parseClock(a)
		if err == nil {
			to, err = parseClock(b)
		}
	}
	if !ok || err != nil || to <= from {
		return 0, 0, fmt.Errorf("--window %q: write the local start and end as HH:MM-HH:MM, end after start (e.g. 17:00-20:00)", s)
	}
	return from, to, nil
}

func parseClock(s string) (time.Duration, error) {
	var h, m int
	if _, err := fmt.Sscanf(strings.TrimSpace(s), "%d:%d", &h, &m); err != nil || h < 0 || m < 0 || m > 59 || h > 24 || h == 24 && m != 0 {
		return 0, fmt.Errorf("%q is not a clock time", s)
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, nil
}

func parseDates(flagName, s string) ([]baseline.Date, error) {
	var out []baseline.Date
	for _, p := range splitList(s) {
		d, err := baseline.ParseDate(p)
		if err != nil {
			return nil, fmt.Errorf("--%s: %v", flagName, err)
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b baseline.Date) int { return strings.Compare(a.String(), b.String()) })
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func joinDates(ds []baseline.Date) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.String())
	}
	return strings.Join(s, ", ")
}
