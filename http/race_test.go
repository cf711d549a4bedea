package http_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/sqlite"
)

// TestGroupAndDeregistrationRace registers a group holding a unit while
// the unit is being deregistered, many times over, on both stores: at most
// one of the two may succeed, or a group would hold a deregistered unit.
func TestGroupAndDeregistrationRace(t *testing.T) {
	stores := map[string]func(t *testing.T) flexhub.Store{
		"sqlite": func(t *testing.T) flexhub.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "race.db"), true)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"postgres": func(t *testing.T) flexhub.Store { return openPostgres(t) },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			e := newEnvOn(t, open(t))
			_, tsoKey := e.party("race-tso", "tso")
			_, dsoKey := e.party("race-dso", "dso")
			fsp, fspKey := e.party("race-fsp", "fsp", "consumer")
			var ca, ga, cp struct{ ID string }
			e.do("POST", "/v1/control-areas", tsoKey, map[string]any{"eic": eic("10YRACE-CA"), "name": "ca"}, 201, &ca)
			e.do("POST", "/v1/grid-areas", dsoKey, map[string]any{"eic": eic("10YRACE-GA"), "name": "ga", "control_area_id": ca.ID}, 201, &ga)
			e.do("POST", "/v1/connection-points", dsoKey, map[string]any{"code": "CP", "grid_area_id": ga.ID, "node_ref": "bus"}, 201, &cp)
			both := 0
			for i := range 15 {
				// A unit at the FSP's own metering point is active at once.
				var mp, unit struct {
					ID      string
					Version int64
				}
				e.do("POST", "/v1/metering-points", dsoKey, map[string]any{"code": fmt.Sprintf("MP-%d", i), "connection_point_id": cp.ID, "consumer_id": fsp}, 201, &mp)
				e.do("POST", "/v1/resources", fspKey, map[string]any{"name": "u", "kind": "unit", "unit_type": "battery", "metering_point_id": mp.ID,
					"technical": map[string]any{"max_up": map[string]any{"value": 5, "unit": "kW"}}}, 201, &unit)
				var wg sync.WaitGroup
				var groupStatus, deregStatus int
				wg.Add(2)
				go func() {
					defer wg.Done()
					groupStatus, _, _ = e.send("POST", "/v1/resources", fspKey, map[string]any{"name": "g", "kind": "group", "members": []string{unit.ID},
						"technical": map[string]any{"max_up": map[string]any{"value": 5, "unit": "kW"}}})
				}()
				go func() {
					defer wg.Done()
					deregStatus, _, _ = e.send("DELETE", "/v1/resources/"+unit.ID, fspKey, nil, "If-Match", fmt.Sprintf(`"%d"`, unit.Version))
				}()
				wg.Wait()
				if groupStatus == 201 && deregStatus == 200 {
					both++
				}
				if groupStatus != 201 && deregStatus != 200 {
					t.Errorf("round %d: neither succeeded (group %d, deregistration %d)", i, groupStatus, deregStatus)
				}
			}
			if both > 0 {
				t.Fatalf("in %d of 15 rounds a group took a unit that was deregistered at the same time", both)
			}
		})
	}
}
