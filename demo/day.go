package demo

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // the households are in Sydney; do not depend on the host's zoneinfo
)

// MarketDay is one real day of the 25 households' consumption, on the
// market's 15-minute grid in UTC.
type MarketDay struct {
	Date     string    // local date in Sydney, YYYY-MM-DD
	Start    time.Time // local midnight, in UTC
	Interval time.Duration
	// Load is each household's average power per interval in W. The
	// source has half-hourly energy; both quarter hours of a half hour get
	// its average power.
	Load map[string][]int64
	// Total is the sum over households per interval, in W.
	Total []int64
}

// Intervals returns the number of market intervals in the day.
func (d *MarketDay) Intervals() int { return len(d.Total) }

// IntervalStart returns the UTC start of interval i.
func (d *MarketDay) IntervalStart(i int) time.Time { return d.Start.Add(time.Duration(i) * d.Interval) }

var sydney = func() *time.Location {
	loc, err := time.LoadLocation("Australia/Sydney")
	if err != nil {
		panic(err) // time/tzdata is embedded
	}
	return loc
}()

// readingsByDay reads the meter file into customer → local date →
// 48 half-hourly kWh values (NaN where missing). Timestamps are the start
// of the half hour, local Sydney time (the data's README).
func readingsByDay(dataDir string) (map[string]map[string][]float64, error) {
	path := filepath.Join(dataDir, meterFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := map[string]map[string][]float64{}
	sc := bufio.NewScanner(gz)
	line := 0
	for sc.Scan() {
		line++
		if line == 1 {
			continue
		}
		parts := strings.Split(sc.Text(), ",")
		if len(parts) != 3 || len(parts[1]) != 19 {
			return nil, fmt.Errorf("%s:%d: unexpected line %q", path, line, sc.Text())
		}
		kwh, err := strconv.ParseFloat(parts[2], 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		date, clock := parts[1][:10], parts[1][11:16]
		h, _ := strconv.Atoi(clock[:2])
		m, _ := strconv.Atoi(clock[3:])
		slot := h*2 + m/30
		days := out[parts[0]]
		if days == nil {
			days = map[string][]float64{}
			out[parts[0]] = days
		}
		v := days[date]
		if v == nil {
			v = make([]float64, 48)
			for i := range v {
				v[i] = math.NaN()
			}
			days[date] = v
		}
		v[slot] = kwh
	}
	return out, sc.Err()
}

func complete(v []float64) bool {
	for _, x := range v {
		if math.IsNaN(x) {
			return false
		}
	}
	return len(v) == 48
}

// PeakEveningDay returns the date on which all households have complete
// readings and their summed evening peak (17:00-21:00 local) is highest:
// the day a DSO would most likely see evening congestion on its feeder.
// Days on which clocks change are skipped (they are not 96 quarter hours).
func PeakEveningDay(dataDir string) (string, error) {
	byCustomer, err := readingsByDay(dataDir)
	if err != nil {
		return "", err
	}
	return peakEveningDay(byCustomer)
}

// ReadPeakEveningDay is PeakEveningDay then ReadMarketDay, reading the
// meter file once.
func ReadPeakEveningDay(dataDir string) (*MarketDay, error) {
	byCustomer, err := readingsByDay(dataDir)
	if err != nil {
		return nil, err
	}
	date, err := peakEveningDay(byCustomer)
	if err != nil {
		return nil, err
	}
	return marketDay(byCustomer, date)
}

func peakEveningDay(byCustomer map[string]map[string][]float64) (string, error) {
	totals := map[string][]float64{}
	counts := map[string]int{}
	for _, days := range byCustomer {
		for date, v := range days {
			if !complete(v) {
				continue
			}
			t := totals[date]
			if t == nil {
				t = make([]float64, 48)
				totals[date] = t
			}
			for i, x := range v {
				t[i] += x
			}
			counts[date]++
		}
	}
	best, bestPeak := "", -1.0
	dates := make([]string, 0, len(totals))
	for d := range totals {
		dates = append(dates, d)
	}
	sort.Strings(dates)
	for _, d := range dates {
		if counts[d] != len(byCustomer) || dayLength(d) != 24*time.Hour {
			continue
		}
		peak := 0.0
		for i := 34; i < 42; i++ { // 17:00-21:00
			peak = math.Max(peak, totals[d][i])
		}
		if peak > bestPeak {
			best, bestPeak = d, peak
		}
	}
	if best == "" {
		return "", fmt.Errorf("no day with complete readings of all %d households", len(byCustomer))
	}
	return best, nil
}

func dayLength(date string) time.Duration {
	start, err := time.ParseInLocation("2006-01-02", date, sydney)
	if err != nil {
		return 0
	}
	return start.AddDate(0, 0, 1).Sub(start)
}

// ReadMarketDay returns the households' load on a local date, on 15-minute
// UTC intervals. Every household must have all 48 readings that day.
func ReadMarketDay(dataDir, date string) (*MarketDay, error) {
	byCustomer, err := readingsByDay(dataDir)
	if err != nil {
		return nil, err
	}
	return marketDay(byCustomer, date)
}

func marketDay(byCustomer map[string]map[string][]float64, date string) (*MarketDay, error) {
	start, err := time.ParseInLocation("2006-01-02", date, sydney)
	if err != nil {
		return nil, fmt.Errorf("date %q: %w", date, err)
	}
	if dayLength(date) != 24*time.Hour {
		return nil, fmt.Errorf("%s is a daylight-saving change day in Sydney; pick another", date)
	}
	d := &MarketDay{Date: date, Start: start.UTC(), Interval: 15 * time.Minute, Load: map[string][]int64{}, Total: make([]int64, 96)}
	for customer, days := range byCustomer {
		v := days[date]
		if !complete(v) {
			return nil, fmt.Errorf("household %s lacks readings on %s", customer, date)
		}
		load := make([]int64, 96)
		for i, kwh := range v {
			w := int64(math.Round(kwh * 2000)) // kWh per half hour → average W
			load[2*i], load[2*i+1] = w, w
			d.Total[2*i] += w
			d.Total[2*i+1] += w
		}
		d.Load[customer] = load
	}
	return d, nil
}
