package greenbutton

import (
	"bytes"
	"encoding/xml"
	"io"
	"runtime"
	"testing"
	"time"
)

// yearOf15min is one metering point's year of 15-minute import readings.
func yearOf15min() []Reading {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rs := make([]Reading, 365*96)
	for i := range rs {
		rs[i] = Reading{Start: t0.Add(time.Duration(i) * 15 * time.Minute), Value: int64(i*7919) % 1_500_000}
	}
	return rs
}

// BenchmarkExport: one metering point-year of 15-minute data (35,040
// readings, 365 IntervalBlocks) through Export, against the same blocks
// marshalled with encoding/xml's Encoder (the baseline).
//
//	go test -run '^$' -bench 'Export' -benchmem -count 3 ./greenbutton/
func BenchmarkExport(b *testing.B) {
	rs := yearOf15min()
	f := Feed{SubscriptionID: "s", Updated: time.Unix(0, 0), UsagePoints: []UsagePoint{{ID: "mp", Series: []Series{{Flow: FlowImport, Resolution: 15 * time.Minute, Readings: Readings(rs)}}}}}
	var size countingWriter
	if err := Export(&size, f); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size.n)
	b.ReportAllocs()
	for b.Loop() {
		if err := Export(io.Discard, f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(rs)), "ns/reading")
}

type bInterval struct {
	Duration int64 `xml:"duration"`
	Start    int64 `xml:"start"`
}

type bReading struct {
	TimePeriod bInterval `xml:"timePeriod"`
	Value      int64     `xml:"value"`
}

type bBlock struct {
	XMLName  xml.Name   `xml:"http://naesb.org/espi IntervalBlock"`
	Interval bInterval  `xml:"interval"`
	Readings []bReading `xml:"IntervalReading"`
}

func BenchmarkExportBaselineEncodingXML(b *testing.B) {
	rs := yearOf15min()
	b.ReportAllocs()
	for b.Loop() {
		enc := xml.NewEncoder(io.Discard)
		for d := 0; d < len(rs); d += 96 {
			blk := bBlock{Interval: bInterval{Duration: 86400, Start: rs[d].Start.Unix()}}
			for _, r := range rs[d : d+96] {
				blk.Readings = append(blk.Readings, bReading{bInterval{900, r.Start.Unix()}, r.Value})
			}
			if err := enc.Encode(blk); err != nil {
				b.Fatal(err)
			}
		}
		if err := enc.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(rs)), "ns/reading")
}

// BenchmarkExportManyPoints streams 100 metering point-years of
// 15-minute data (3.5 million readings, ~480 MB of XML) and reports the
// heap in use at the end against the 1-point case: it stays flat,
// because Export holds one day of one series at a time.
func BenchmarkExportManyPoints(b *testing.B) {
	rs := yearOf15min()
	for _, points := range []int{1, 100} {
		f := Feed{SubscriptionID: "s", Updated: time.Unix(0, 0)}
		for p := range points {
			f.UsagePoints = append(f.UsagePoints, UsagePoint{ID: string(rune('a'+p%26)) + string(rune('a'+p/26)), Series: []Series{{Flow: FlowImport, Resolution: 15 * time.Minute, Readings: Readings(rs)}}})
		}
		b.Run(map[int]string{1: "points=1", 100: "points=100"}[points], func(b *testing.B) {
			var peak uint64
			w := &heapWatcher{every: 16 << 20, peak: &peak}
			for b.Loop() {
				runtime.GC()
				if err := Export(w, f); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(points*len(rs)), "ns/reading")
		})
	}
}

// heapWatcher discards what it is given and samples the live heap every
// so many bytes.
type heapWatcher struct {
	n, every int64
	peak     *uint64
}

func (h *heapWatcher) Write(p []byte) (int, error) {
	h.n += int64(len(p))
	if h.n >= h.every {
		h.n = 0
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.HeapInuse > *h.peak {
			*h.peak = m.HeapInuse
		}
	}
	return len(p), nil
}

// BenchmarkImport: the exported year read back, against a bare
// encoding/xml token scan of the same bytes (the baseline: the least any
// encoding/xml reader does).
func BenchmarkImport(b *testing.B) {
	var doc bytes.Buffer
	rs := yearOf15min()
	if err := Export(&doc, Feed{SubscriptionID: "s", UsagePoints: []UsagePoint{{ID: "mp", Series: []Series{{Flow: FlowImport, Resolution: 15 * time.Minute, Readings: Readings(rs)}}}}}); err != nil {
		b.Fatal(err)
	}
	b.Run("Import", func(b *testing.B) {
		b.SetBytes(int64(doc.Len()))
		b.ReportAllocs()
		for b.Loop() {
			im, err := Import(bytes.NewReader(doc.Bytes()))
			if err != nil || im.Readings() != len(rs) {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(rs)), "ns/reading")
	})
	b.Run("BaselineTokenScan", func(b *testing.B) {
		b.SetBytes(int64(doc.Len()))
		b.ReportAllocs()
		for b.Loop() {
			dec := xml.NewDecoder(bytes.NewReader(doc.Bytes()))
			for {
				if _, err := dec.Token(); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(rs)), "ns/reading")
	})
}
