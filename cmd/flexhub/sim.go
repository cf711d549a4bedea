package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/sim"
)

// keyList is a repeatable flag.
type keyList []string

func (k *keyList) String() string { return fmt.Sprintf("%d keys", len(*k)) }
func (k *keyList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*k = append(*k, s)
		}
	}
	return nil
}

const simUsage = `Usage: flexhub sim [flags]

Simulates the resources of one or more FSPs, each connecting to flexhub
like a real FSP system: one MQTT connection per API key, activation
orders taken and acknowledged, meter data streamed (docs/SIMULATOR.md).

Flags:
`

// simulate is `flexhub sim`.
func simulate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, simUsage); fs.PrintDefaults() }
	var keys keyList
	var o sim.Options
	fs.StringVar(&o.API, "api", env("FLEXHUB_SIM_API", "http://localhost:8080"), "flexhub REST API (env FLEXHUB_SIM_API)")
	fs.Var(&keys, "key", "an FSP's API key (fh_...); repeat for more FSPs (env FLEXHUB_SIM_KEYS, comma-separated)")
	fs.StringVar(&o.MQTT, "mqtt", env("FLEXHUB_SIM_MQTT", "tcp://localhost:1883"), "MQTT broker, tcp://host:port or tls://host:port (env FLEXHUB_SIM_MQTT)")
	resolution := fs.String("resolution", "PT10S", "meter stream resolution, ISO 8601: PT1S ... PT15M, dividing PT15M")
	fs.Int64Var(&o.Seed, "seed", 1, "seed: the same seed, orders and clock give the same run")
	fs.Float64Var(&o.Faults.NoAck, "fail-ack", 0, "probability that an order is never acknowledged (nor executed)")
	fs.Float64Var(&o.Faults.Reject, "fail-reject", 0, "probability that an order is rejected (with a reason)")
	fs.Float64Var(&o.Faults.UnderDeliver, "under-deliver", 0, "probability that an accepted order is under-delivered")
	fs.Float64Var(&o.Faults.DeliverFraction, "deliver-fraction", 0.5, "what an under-delivered order delivers (fraction of each set-point)")
	fs.Float64Var(&o.Faults.Drop, "drop", 0, "probability that the FSP's connection drops during an accepted order's activation")
	fs.DurationVar(&o.Faults.DropFor, "drop-for", 30*time.Second, "how long a dropped connection stays down")
	dataDir := fs.String("data-dir", env("FLEXHUB_SHARED_DATA", ""), "the shared data folder with meter/ (default: ../shared/data beside the working directory or the binary; env FLEXHUB_SHARED_DATA)")
	fs.StringVar(&o.ProfileDate, "profile-date", "", "household day to replay, YYYY-MM-DD (default: the day `flexhub demo` replays)")
	speed := fs.Float64("speed", 1, "simulated clock speed (1 = real time; flexhub refuses readings from its future, so >1 needs a server clock moved alike)")
	start := fs.String("start", "", "simulated clock start, RFC 3339 (default now)")
	fs.BoolVar(&o.MeterGroups, "meter-groups", true, "also stream each group's readings (the sum of its members')")
	fs.StringVar(&o.Metering, "metering", sim.MeterSite, "what a unit's meter measures: site (the household's net power, the device included) or device (a sub-meter at the device alone)")
	fs.StringVar(&o.ReportsOver, "reports", "mqtt", "send order reports over mqtt or rest")
	fs.IntVar(&o.Publishers, "publishers", 32, "concurrent publishes per FSP")
	every := fs.Duration("every", 5*time.Second, "how often the live table is printed")
	runFor := fs.Duration("for", 0, "stop after this long (default: until Ctrl-C)")
	logLevel := fs.String("log-level", env("FLEXHUB_LOG_LEVEL", "warn"), "debug, info, warn or error (env FLEXHUB_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if len(keys) == 0 {
		_ = keys.Set(getenv("FLEXHUB_SIM_KEYS"))
	}
	if len(keys) == 0 {
		return usageError{"flexhub sim needs at least one FSP API key: --key fh_... (repeatable) or FLEXHUB_SIM_KEYS"}
	}
	o.Keys = keys
	res, err := flexhub.Duration(*resolution).Parse("resolution")
	if err != nil {
		return usageError{fmt.Sprintf("--resolution %q: use ISO 8601 such as PT10S or PT1M", *resolution)}
	}
	o.Resolution = res
	if *speed != 1 || *start != "" {
		var at time.Time
		if *start != "" {
			if at, err = time.Parse(time.RFC3339, *start); err != nil {
				return usageError{fmt.Sprintf("--start %q: use RFC 3339, e.g. 2026-11-27T17:00:00Z", *start)}
			}
		}
		o.Clock = sim.NewScaledClock(at, *speed)
	}
	dir, err := sharedDataDir(&config{dataSet: *dataDir})
	if err != nil {
		return usageError{strings.Replace(err.Error(), "--shared-data", "--data-dir", 1)}
	}
	o.DataDir = dir
	log, err := newLogger(*logLevel, stderr)
	if err != nil {
		return err
	}
	o.Log = log

	fmt.Fprintf(stdout, "flexhub sim: reading profiles from %s and %d FSP(s) from %s\n", dir, len(keys), o.API)
	s, err := sim.New(ctx, o)
	if err != nil {
		return err
	}
	units, groups := 0, 0
	for _, f := range s.FSPs {
		units += len(f.Fleet.Units)
		groups += f.Fleet.Groups()
	}
	fmt.Fprintf(stdout, "replaying households of %s and PV of %s; %d FSP(s), %d units, %d groups; MQTT %s, %s readings; Ctrl-C stops\n",
		s.Profiles.Date, s.Profiles.PVDate, len(s.FSPs), units, groups, o.MQTT, flexhub.FormatDuration(res))

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *runFor > 0 {
		runCtx, cancel = context.WithTimeout(ctx, *runFor)
		defer cancel()
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	tty := isTerminal(stdout)
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			printSimTable(stdout, s, false)
			fmt.Fprintln(stdout, "flexhub sim: stopped")
			return err
		case <-tick.C:
			printSimTable(stdout, s, tty)
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// printSimTable prints one line per FSP (at most 20, then the total).
func printSimTable(w io.Writer, s *sim.Sim, clear bool) {
	var b strings.Builder
	if clear {
		b.WriteString("\033[H\033[2J")
	}
	fmt.Fprintf(&b, "%s\n", time.Now().UTC().Format("15:04:05Z"))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "FSP\tCONN\tRESOURCES\tORDERS\tACCEPTED\tREJECTED\tNO-ACK\tRUNNING\tDONE\tUNDER\tREPORTS\tREADINGS\tBUFFERED\tERRORS\t")
	var tot sim.Snapshot
	snaps := s.Snapshot()
	for i, x := range snaps {
		errs := x.PublishErrors + x.Refused + x.ServerErrors
		if i < 20 {
			conn := "down"
			if x.Connected {
				conn = "up"
			}
			name := x.Name
			if len(name) > 28 {
				name = name[:27] + "…"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", name, conn, x.Units+x.Groups, x.Orders, x.Accepted,
				x.Rejected, x.Ignored, x.Executing, x.Completed, x.Under, x.AcksSent, x.Readings, x.Buffered, errs)
		}
		tot.Units += x.Units + x.Groups
		tot.Orders += x.Orders
		tot.Accepted += x.Accepted
		tot.Rejected += x.Rejected
		tot.Ignored += x.Ignored
		tot.Executing += x.Executing
		tot.Completed += x.Completed
		tot.Under += x.Under
		tot.AcksSent += x.AcksSent
		tot.Readings += x.Readings
		tot.Buffered += x.Buffered
		tot.PublishErrors += errs
		if x.Connected {
			tot.Connects++
		}
	}
	if len(snaps) > 1 {
		fmt.Fprintf(tw, "TOTAL (%d)\t%d up\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", len(snaps), tot.Connects, tot.Units, tot.Orders, tot.Accepted,
			tot.Rejected, tot.Ignored, tot.Executing, tot.Completed, tot.Under, tot.AcksSent, tot.Readings, tot.Buffered, tot.PublishErrors)
	}
	tw.Flush()
	for _, x := range snaps {
		if x.LastError != "" {
			fmt.Fprintf(&b, "  %s: last problem: %s\n", x.Name, x.LastError)
		}
	}
	fmt.Fprint(w, b.String())
}
