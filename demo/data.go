package demo

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// GridPoint is a connection point of the SimBench LV rural grid: a load or
// a PV generator at a bus.
type GridPoint struct {
	ID       string  // SimBench element id, e.g. "LV1.101 Load 3"
	Node     string  // bus, e.g. "LV1.101 Bus 14"
	Kind     string  // "load" or "pv"
	RatedKVA float64 // apparent power rating sR (MVA in the file) in kVA
}

// simbenchDir is the LV rural grid inside the shared data folder.
const simbenchDir = "grids/simbench/1-LV-rural1--0-no_sw"

// ReadGrid reads the loads and PV generators of the SimBench LV rural grid.
func ReadGrid(dataDir string) ([]GridPoint, error) {
	var out []GridPoint
	for _, f := range []struct{ file, kind string }{{"Load.csv", "load"}, {"RES.csv", "pv"}} {
		rows, err := readSemicolonCSV(filepath.Join(dataDir, simbenchDir, f.file))
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			mva, err := strconv.ParseFloat(r["sR"], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: sR %q: %w", f.file, r["id"], r["sR"], err)
			}
			out = append(out, GridPoint{ID: r["id"], Node: r["node"], Kind: f.kind, RatedKVA: mva * 1000})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no loads or generators in %s", filepath.Join(dataDir, simbenchDir))
	}
	return out, nil
}

func readSemicolonCSV(path string) ([]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = ';'
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []map[string]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		m := map[string]string{}
		for i, h := range header {
			if i < len(rec) {
				m[h] = rec[i]
			}
		}
		out = append(out, m)
	}
}

// Household is one real household of the Smart Grid Smart City trial,
// summarised from its half-hourly consumption.
type Household struct {
	CustomerID string
	Readings   int
	TotalKWh   float64
	PeakKW     float64 // highest half-hour average power
	MeanKW     float64
}

// meterFile holds the 25 households' half-hourly readings.
const meterFile = "meter/sgsc_25_households_halfhourly.csv.gz"

// ReadHouseholds summarises every household in the meter file.
func ReadHouseholds(dataDir string) ([]Household, error) {
	byCustomer, err := readingsByDay(dataDir)
	if err != nil {
		return nil, err
	}
	out := make([]Household, 0, len(byCustomer))
	for id, days := range byCustomer {
		h := Household{CustomerID: id}
		for _, v := range days {
			for _, kwh := range v {
				if math.IsNaN(kwh) {
					continue
				}
				h.Readings++
				h.TotalKWh += kwh
				h.PeakKW = math.Max(h.PeakKW, kwh*2) // kWh per half hour → average kW
			}
		}
		h.MeanKW = h.TotalKWh / (float64(h.Readings) / 2)
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CustomerID < out[j].CustomerID })
	return out, nil
}
