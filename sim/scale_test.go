package sim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/sim"
)

var unitTypes = []string{"battery", "ev_charger", "heat_pump", "pv_inverter", "industrial_process", "other"}

// fakeFSP serves GET /v1/me and the paged GET /v1/resources of one FSP
// with n units of every type (no store: this test is about the client).
func fakeFSP(t *testing.T, party string, n int) *httptest.Server {
	t.Helper()
	rs := make([]*flexhub.Resource, n)
	for i := range rs {
		typ := unitTypes[i%len(unitTypes)]
		rs[i] = &flexhub.Resource{ID: fmt.Sprintf("r%05d", i), Status: flexhub.ResourceActive, FSPID: party,
			ResourceSpec: flexhub.ResourceSpec{Name: typ, Kind: flexhub.ResourceUnit, UnitType: typ,
				Technical: flexhub.TechnicalData{MaxUp: flexhub.KW(2), MaxDown: flexhub.KW(2)}}}
	}
	pages := 0
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer fh_test_key" {
			http.Error(w, `{"title":"Unauthorized"}`, 401)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/me":
			json.NewEncoder(w).Encode(flexhub.Party{ID: party, PartySpec: flexhub.PartySpec{Name: "Big FSP"}})
		case "/v1/resources":
			if r.URL.Query().Get("fsp_id") != "self" {
				http.Error(w, "fsp_id", 400)
				return
			}
			mu.Lock()
			pages++
			mu.Unlock()
			from := 0
			if a := r.URL.Query().Get("after"); a != "" {
				from, _ = strconv.Atoi(a)
			}
			limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
			to := min(from+limit, n)
			body := map[string]any{"items": rs[from:to]}
			if to < n {
				body["next_cursor"] = strconv.Itoa(to)
			}
			json.NewEncoder(w).Encode(body)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestThousandsOfResourcesOneConnection: one FSP with 3,000 units
// (FLEXHUB_SIM_SCALE_N to change) is one
// MQTT connection with a bounded number of goroutines; 3,000 orders sent
// at once are all accepted, and every unit streams every second.
func TestThousandsOfResourcesOneConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 10 s in real time")
	}
	n := 3000
	if v, err := strconv.Atoi(os.Getenv("FLEXHUB_SIM_SCALE_N")); err == nil && v > 0 {
		n = v // e.g. 10000 for the fan-out figure in docs/SIMULATOR.md
	}
	party := "0190ffff-0000-7000-8000-000000000001"
	api := fakeFSP(t, party, n)
	b := newBroker(t)
	var mu sync.Mutex
	accepted := map[string]time.Time{}
	if err := b.srv.Subscribe("flexhub/v1/parties/+/activations/acks", 9, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		var r sim.Report
		if json.Unmarshal(pk.Payload, &r) == nil && r.Status == "accepted" {
			mu.Lock()
			accepted[r.OrderID] = time.Now()
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before := runtime.NumGoroutine()
	s, err := sim.New(ctx, sim.Options{API: api.URL, MQTT: "tcp://" + b.addr, Keys: []string{"fh_test_key"}, Resolution: time.Second, DataDir: sharedData})
	if err != nil {
		t.Fatal(err)
	}
	f := s.FSPs[0]
	if len(f.Fleet.Units) != n {
		t.Fatalf("%d units from the paged list, want %d", len(f.Fleet.Units), n)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	waitFor(t, "the connection", 10*time.Second, func() bool { return f.Stats.Connected.Load() })
	time.Sleep(300 * time.Millisecond)
	if c := atomic.LoadInt64(&b.srv.Info.ClientsConnected); c != 1 {
		t.Fatalf("%d MQTT clients connected, want 1", c)
	}

	start := time.Now().UTC().Truncate(time.Second).Add(3 * time.Second)
	sent := time.Now()
	for _, u := range f.Fleet.Units {
		b.publish(sim.TopicActivations(party), &flexhub.ActivationOrder{ID: "o-" + u.ID, Type: flexhub.OrderActivate, ResourceID: u.ID,
			Direction: "down", Unit: "W", Setpoints: []flexhub.Setpoint{{Start: start, End: start.Add(5 * time.Second), Quantity: 300}}})
	}
	published := time.Since(sent)
	waitFor(t, "every order accepted", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) == n
	})
	lat := make([]time.Duration, 0, n)
	for _, at := range accepted {
		lat = append(lat, at.Sub(sent))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("%d orders published in %s; accepted: p50 %s, p99 %s, last %s after the first was sent", n, published.Round(time.Millisecond),
		lat[n/2].Round(time.Millisecond), lat[n*99/100].Round(time.Millisecond), lat[n-1].Round(time.Millisecond))

	// Every unit streams each second: soon each has sent several messages.
	waitFor(t, "three meter messages from every unit", 20*time.Second, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, u := range f.Fleet.Units {
			if len(b.msgs[u.ID]) < 3 {
				return false
			}
		}
		return true
	})
	g := runtime.NumGoroutine() - before
	// Workers are bounded: not a goroutine per resource.
	if g > 200 {
		t.Fatalf("%d goroutines more than before for %d resources", g, n)
	}
	t.Logf("%d readings in %d messages, %d goroutines for %d resources", f.Stats.Readings.Load(), f.Stats.Messages.Load(), g, n)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// BenchmarkFleetAdvance steps 10,000 units (every type) through one
// 10-second interval per iteration (10 one-second sub-steps each).
func BenchmarkFleetAdvance(b *testing.B) {
	prof, err := sim.LoadProfiles(sharedData, "")
	if err != nil {
		b.Fatal(err)
	}
	rs := make([]*flexhub.Resource, 10000)
	for i := range rs {
		typ := unitTypes[i%len(unitTypes)]
		rs[i] = &flexhub.Resource{ID: fmt.Sprintf("r%05d", i), Status: flexhub.ResourceActive,
			ResourceSpec: flexhub.ResourceSpec{Name: typ, Kind: flexhub.ResourceUnit, UnitType: typ, Technical: flexhub.TechnicalData{MaxUp: flexhub.KW(2), MaxDown: flexhub.KW(2)}}}
	}
	f, err := sim.NewFleet(rs, prof, sim.Config{Resolution: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	f.Advance(at)
	for _, u := range f.Units[:5000] {
		f.Receive(&flexhub.ActivationOrder{ID: "o-" + u.ID, Type: flexhub.OrderActivate, ResourceID: u.ID, Direction: "down", Unit: "W",
			Setpoints: []flexhub.Setpoint{{Start: at, End: at.Add(24 * time.Hour), Quantity: 500}}}, at)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at = at.Add(10 * time.Second)
		if tk := f.Advance(at); len(tk.Batches) != len(rs) {
			b.Fatalf("%d batches", len(tk.Batches))
		}
	}
}
