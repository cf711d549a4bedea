package demo

import (
	"path/filepath"
	"testing"
)

var sharedData = filepath.Join("..", "..", "shared", "data")

func TestReadGrid(t *testing.T) {
	pts, err := ReadGrid(sharedData)
	if err != nil {
		t.Fatal(err)
	}
	loads, pv := 0, 0
	for _, p := range pts {
		switch p.Kind {
		case "load":
			loads++
		case "pv":
			pv++
		}
		if p.Node == "" || p.RatedKVA <= 0 {
			t.Errorf("%s: node %q rating %v", p.ID, p.Node, p.RatedKVA)
		}
	}
	if loads != 13 || pv != 4 {
		t.Fatalf("SimBench LV rural1 has 13 loads and 4 PV, read %d and %d", loads, pv)
	}
}

func TestReadHouseholds(t *testing.T) {
	hs, err := ReadHouseholds(sharedData)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 25 {
		t.Fatalf("want 25 households, got %d", len(hs))
	}
	rows := 0
	for _, h := range hs {
		rows += h.Readings
		if h.PeakKW <= h.MeanKW || h.MeanKW <= 0 {
			t.Errorf("%s: peak %.2f kW, mean %.2f kW", h.CustomerID, h.PeakKW, h.MeanKW)
		}
	}
	if rows != 725584 {
		t.Fatalf("the file has 725,584 readings, read %d", rows)
	}
}
