package http_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	fhttp "github.com/flexhub/flexhub/http"
	"github.com/flexhub/flexhub/sqlite"
)

// BenchmarkBidSubmission measures sustained bid submissions per second
// through the HTTP API: authentication, every bid rule (gate, product and
// grid prequalification, contract, capability, alignment, prices) and one
// transaction with the audit append and the bidder's notification. Each
// bid offers 4 quarter hours. SQLite always, PostgreSQL with
// FLEXHUB_TEST_POSTGRES; 1 and 8 concurrent clients:
//
//	FLEXHUB_TEST_POSTGRES=postgres://... go test ./http/ -run '^$' -bench BidSubmission -benchtime 2000x
func BenchmarkBidSubmission(b *testing.B) {
	for _, st := range []struct {
		name string
		open func(b *testing.B) flexhub.Store
	}{
		{"sqlite", func(b *testing.B) flexhub.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), true)
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"postgres", openBenchPostgres},
	} {
		for _, clients := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/clients=%d", st.name, clients), func(b *testing.B) {
				store := st.open(b)
				defer store.Close()
				benchBids(b, store, clients)
			})
		}
	}
}

func benchBids(b *testing.B, store flexhub.Store, clients int) {
	ctx := context.Background()
	svc := app.New(store, nil)
	adminCred, err := svc.Bootstrap(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	admin, err := svc.Authenticate(ctx, adminCred.Token)
	if err != nil {
		b.Fatal(err)
	}
	must := func(err error) {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
	}
	party := func(name string, roles ...flexhub.Role) (*flexhub.Party, context.Context, string) {
		c, err := svc.CreateParty(app.WithActor(ctx, admin), flexhub.PartySpec{EIC: eic("10X" + strings.ToUpper(name)), Name: name, Roles: roles}, "")
		must(err)
		k, err := svc.IssueCredential(app.WithActor(ctx, admin), c.Object.ID, "bench")
		must(err)
		return c.Object, app.WithActor(ctx, c.Object), k.Token
	}
	_, tso, _ := party("btso", flexhub.RoleTSO)
	_, dso, _ := party("bdso", flexhub.RoleDSO)
	fspP, fsp, fspKey := party("bfsp", flexhub.RoleFSP, flexhub.RoleConsumer)
	ca, err := svc.CreateControlArea(tso, flexhub.ControlAreaSpec{EIC: eic("10YBENCHCA"), Name: "ca"}, "")
	must(err)
	ga, err := svc.CreateGridArea(dso, flexhub.GridAreaSpec{EIC: eic("10YBENCHGA"), Name: "ga", ControlAreaID: ca.Object.ID}, "")
	must(err)
	cp, err := svc.CreateConnectionPoint(dso, flexhub.ConnectionPointSpec{Code: "CP", GridAreaID: ga.Object.ID, NodeRef: "bus"}, "")
	must(err)
	mp, err := svc.CreateMeteringPoint(dso, flexhub.MeteringPointSpec{Code: "MP", ConnectionPointID: cp.Object.ID, ConsumerID: fspP.ID}, "")
	must(err)
	res, err := svc.RegisterResource(fsp, flexhub.ResourceSpec{Name: "battery", Kind: flexhub.ResourceUnit, UnitType: "battery", MeteringPointID: mp.Object.ID,
		Technical: flexhub.TechnicalData{MaxUp: flexhub.KW(500), FullActivationTime: "PT1M"}}, "")
	must(err)
	prod, err := svc.CreateProduct(tso, flexhub.ProductSpec{Name: "mFRR", Service: "balancing_mfrr", Direction: "up", PowerType: "active", MinBidSize: flexhub.KW(1),
		TimeResolution: "PT15M", FullActivationTime: "PT12M30S", ActivationMode: "manual", Remuneration: []string{"capacity"}, BaselineMethod: "meter_before"}, "")
	must(err)
	pq, err := svc.SubmitPrequalification(fsp, flexhub.PrequalRequest{ResourceID: res.Object.ID, ProductID: prod.Object.ID}, "")
	must(err)
	_, err = svc.DecidePrequalification(tso, pq.Object.ID, flexhub.DecisionRequest{Outcome: flexhub.PrequalApproved}, 0)
	must(err)
	gpq, err := svc.RequestGridPrequalification(fsp, app.GridPrequalRequest{ResourceID: res.Object.ID}, "")
	must(err)
	_, err = svc.DecideGridPrequalification(dso, gpq.Object.ID, flexhub.GridDecisionRequest{Outcome: flexhub.GridPrequalApproved}, 0)
	must(err)
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(48 * time.Hour)
	var ivs []flexhub.NeedInterval
	for i := 0; i < 96; i++ {
		ivs = append(ivs, flexhub.NeedInterval{Start: day.Add(time.Duration(i) * 15 * time.Minute), Quantity: flexhub.MarketQuantity{Value: 1, Unit: "MW"}})
	}
	need, err := svc.PublishNeed(tso, flexhub.NeedSpec{ProductID: prod.Object.ID, GridAreaID: ga.Object.ID, Direction: "up", Buys: "capacity", Intervals: ivs}, "")
	must(err)
	session, err := svc.CreateSession(tso, flexhub.SessionSpec{Kind: "day_ahead", NeedIDs: []string{need.Object.ID}, GateOpening: time.Now().UTC(), GateClosure: time.Now().UTC().Add(24 * time.Hour)}, "")
	must(err)

	srv := httptest.NewServer(fhttp.NewServer(svc, nil, "bench"))
	defer srv.Close()
	http.DefaultTransport.(*http.Transport).MaxIdleConnsPerHost = 64
	c := &benchClient{b: b, base: srv.URL}
	body := func(i int) map[string]any {
		start := (i * 4) % 92
		var bivs []map[string]any
		for k := 0; k < 4; k++ {
			bivs = append(bivs, map[string]any{"start": day.Add(time.Duration(start+k) * 15 * time.Minute), "quantity": map[string]any{"value": 100, "unit": "kW"},
				"availability_price": map[string]any{"amount": "42.50", "currency": "EUR"}})
		}
		return map[string]any{"session_id": session.Object.ID, "need_id": need.Object.ID, "resource_id": res.Object.ID, "intervals": bivs, "divisible": true, "linked": false, "min_quantity": map[string]any{"value": 10, "unit": "kW"}}
	}
	b.ResetTimer()
	if clients == 1 {
		for i := 0; i < b.N; i++ {
			c.post("/v1/bids", fspKey, body(i), nil)
		}
	} else {
		b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				c.post("/v1/bids", fspKey, body(i), nil)
				i++
			}
		})
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "bids/s")
}
