// Package sim simulates flexible resources behind FSP control systems
// that connect to flexhub like real ones (docs/SIMULATOR.md): per FSP API
// key one MQTT connection, on which the FSP takes its activation orders,
// acknowledges and reports them, and streams its resources' meter data;
// the resources (home batteries, EV chargers, heat pumps, PV inverters,
// industrial loads, groups of them) start from the real household and PV
// profiles in the shared data folder and follow the orders with their
// ramps and limits, and with the failures they are told to show.
//
// The models (Fleet, Unit) are pure and stepped by a Clock, so they are
// tested without a network; the transport (FSP) is paho's autopaho.
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"
)

// Options configure a simulation.
type Options struct {
	API  string   // flexhub REST API, e.g. http://localhost:8080
	MQTT string   // broker, e.g. tcp://localhost:1883
	Keys []string // FSP API keys, one simulated FSP (and connection) each
	// Resolution of the meter stream (default 10 s): whole seconds from 1 s
	// to 15 min that divide 15 min.
	Resolution  time.Duration
	Seed        int64
	Faults      Faults
	DataDir     string // the shared data folder (../shared/data)
	ProfileDate string // the household day to replay (YYYY-MM-DD); empty: the demo's day
	Clock       Clock  // default: the real clock
	// Publishers bound the goroutines publishing per FSP (default 32).
	Publishers int
	// Workers bound the goroutines stepping one FSP's units (default GOMAXPROCS).
	Workers int
	// MeterGroups also streams each group's readings (the sum of its members').
	MeterGroups bool
	// Metering is what a unit's meter measures: MeterSite (default) or
	// MeterDevice (Config.Metering).
	Metering string
	// ReportsOver is "mqtt" (default) or "rest": how order reports go.
	ReportsOver string
	Log         *slog.Logger
	HTTP        *http.Client
	// Profiles, when set, are used instead of reading DataDir.
	Profiles *Profiles
}

// Sim is a running simulation of one or more FSPs.
type Sim struct {
	FSPs     []*FSP
	Profiles *Profiles
	opts     Options
}

// New reads the profiles, asks flexhub who each key belongs to and which
// resources it operates, and builds the fleets. Two keys of one party are
// one FSP (one connection).
func New(ctx context.Context, o Options) (*Sim, error) {
	if len(o.Keys) == 0 {
		return nil, errors.New("no FSP API key: give --key (repeatable) or FLEXHUB_SIM_KEYS")
	}
	if o.Resolution == 0 {
		o.Resolution = 10 * time.Second
	}
	if o.Resolution < time.Second || o.Resolution > 15*time.Minute || o.Resolution%time.Second != 0 || (15*time.Minute)%o.Resolution != 0 {
		return nil, fmt.Errorf("resolution %s: use whole seconds from PT1S to PT15M that divide PT15M (PT1S, PT5S, PT10S, PT1M, PT5M, PT15M, ...)", o.Resolution)
	}
	if err := o.Faults.Validate(); err != nil {
		return nil, err
	}
	if o.Publishers <= 0 {
		o.Publishers = 32
	}
	switch o.ReportsOver {
	case "":
		o.ReportsOver = "mqtt"
	case "mqtt", "rest":
	default:
		return nil, fmt.Errorf("reports over %q: use mqtt or rest", o.ReportsOver)
	}
	if _, err := url.Parse(o.MQTT); err != nil {
		return nil, fmt.Errorf("MQTT URL %q: %w", o.MQTT, err)
	}
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	prof := o.Profiles
	if prof == nil {
		var err error
		if prof, err = LoadProfiles(o.DataDir, o.ProfileDate); err != nil {
			return nil, err
		}
	}
	s := &Sim{Profiles: prof, opts: o}
	type found struct {
		fsp *FSP
		err error
	}
	results := make([]found, len(o.Keys))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, key := range o.Keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			f, err := s.discover(ctx, key, prof)
			results[i] = found{f, err}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, r := range results {
		if r.err != nil {
			return nil, fmt.Errorf("key %d (%s): %w", i+1, keyHint(o.Keys[i]), r.err)
		}
		if seen[r.fsp.Party] {
			o.Log.Warn("two keys of one party: simulated once", "party", r.fsp.Party)
			continue
		}
		seen[r.fsp.Party] = true
		s.FSPs = append(s.FSPs, r.fsp)
	}
	return s, nil
}

// keyHint shows the public part of a key (fh_<id>_...), never the secret.
func keyHint(k string) string {
	if len(k) > 12 {
		return k[:12] + "…"
	}
	return "…"
}

func (s *Sim) discover(ctx context.Context, key string, prof *Profiles) (*FSP, error) {
	api := &API{Base: s.opts.API, Key: key, HTTP: s.opts.HTTP}
	me, err := api.Me(ctx)
	if err != nil {
		return nil, err
	}
	rs, err := api.Resources(ctx)
	if err != nil {
		return nil, err
	}
	fl, err := NewFleet(rs, prof, Config{Resolution: s.opts.Resolution, Seed: s.opts.Seed, Faults: s.opts.Faults,
		Workers: s.opts.Workers, MeterGroups: s.opts.MeterGroups, Metering: s.opts.Metering})
	if err != nil {
		return nil, err
	}
	return &FSP{Party: me.ID, Name: me.Name, Fleet: fl, key: key, opts: &s.opts, api: api, clock: s.opts.Clock, log: s.opts.Log}, nil
}

// Run runs every FSP until ctx ends and they have disconnected.
func (s *Sim) Run(ctx context.Context) error {
	errs := make([]error, len(s.FSPs))
	var wg sync.WaitGroup
	for i, f := range s.FSPs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.Run(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Snapshot is one FSP's state for the live table.
type Snapshot struct {
	Party, Name                                  string
	Units, Groups                                int
	Connected                                    bool
	Orders, Duplicates, Ignored, Accepted        int64
	Rejected, Executing, Completed, Under        int64
	AcksSent, Readings, Messages, Buffered, Lost int64
	PublishErrors, Refused, ServerErrors         int64
	Drops, Connects                              int64
	LastError                                    string
}

// Snapshot returns each FSP's counters, by party id.
func (s *Sim) Snapshot() []Snapshot {
	out := make([]Snapshot, 0, len(s.FSPs))
	for _, f := range s.FSPs {
		c, st := &f.Fleet.C, &f.Stats
		out = append(out, Snapshot{Party: f.Party, Name: f.Name, Units: len(f.Fleet.Units), Groups: f.Fleet.Groups(),
			Connected: st.Connected.Load(), Orders: c.Orders.Load(), Duplicates: c.Duplicates.Load(), Ignored: c.Ignored.Load(),
			Accepted: c.Accepted.Load(), Rejected: c.Rejected.Load(), Executing: c.Executing.Load(), Completed: c.Completed.Load(),
			Under: c.Under.Load(), AcksSent: st.AcksSent.Load(), Readings: st.Readings.Load(), Messages: st.Messages.Load(),
			Buffered: st.Buffered.Load(), Lost: st.Lost.Load(), PublishErrors: st.PublishErr.Load(), Refused: st.Refused.Load(),
			ServerErrors: st.ServerErrors.Load(), Drops: st.Drops.Load(), Connects: st.Connects.Load(), LastError: f.LastError()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Party < out[j].Party })
	return out
}
