package sqlstore

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// A chunk decodes to exactly the readings encoded: absent slots stay
// absent, values (up to the 10^16 limit, zero included), versions and
// batches per reading.
func TestMeterChunkRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := map[string][]meterEntry{
		"empty":                   nil,
		"one, last slot":          {{slot: meterChunkSlots - 1, version: 1, value: 0, batch: 1}},
		"first slot, large value": {{slot: 0, version: 3, value: 10_000_000_000_000_000, batch: 1 << 40}},
	}
	full := make([]meterEntry, meterChunkSlots)
	for i := range full {
		full[i] = meterEntry{slot: int32(i), version: 1, value: int64(1_000_000 + i%700), batch: 7}
	}
	cases["full"] = full
	for n := range 20 {
		var es []meterEntry
		for s := range int32(meterChunkSlots) {
			if rng.IntN(4) > n%4 {
				es = append(es, meterEntry{slot: s, version: int32(1 + rng.IntN(3)), value: rng.Int64N(10_000_000_000_000_001), batch: 1 + rng.Int64N(5)})
			}
		}
		cases[fmt.Sprintf("random %d", n)] = es
	}
	for name, es := range cases {
		data := encodeChunk(nil, es)
		got, err := decodeChunk(nil, data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(got, es) {
			t.Errorf("%s: decoded %d readings, want %d: %v", name, len(got), len(es), diffEntries(got, es))
		}
	}
	// The bulk case is small: a full chunk of smoothly changing values
	// from one batch takes a few bytes a reading.
	if n := len(encodeChunk(nil, full)); n > 3*meterChunkSlots {
		t.Errorf("a full chunk of one batch takes %d bytes", n)
	}
}

func diffEntries(got, want []meterEntry) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	return "lengths differ"
}

// The text form migration 009 writes decodes to the same readings,
// whatever the order of its entries.
func TestMeterChunkText(t *testing.T) {
	got, err := decodeChunk(nil, []byte("T299,5,1,3;0,1200,2,4;17,0,1,3;"))
	if err != nil {
		t.Fatal(err)
	}
	want := []meterEntry{{slot: 0, version: 2, value: 1200, batch: 4}, {slot: 17, version: 1, value: 0, batch: 3}, {slot: 299, version: 1, value: 5, batch: 3}}
	if !slices.Equal(got, want) {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
}

// A damaged chunk is an error, never readings made up.
func TestMeterChunkCorrupt(t *testing.T) {
	good := encodeChunk(nil, []meterEntry{{slot: 3, version: 1, value: 10, batch: 1}, {slot: 4, version: 1, value: 11, batch: 1}})
	for name, data := range map[string][]byte{
		"empty":          {},
		"unknown format": {0x7f, 1},
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(slices.Clone(good), 0),
		"slot beyond":    encodeChunk(nil, []meterEntry{{slot: meterChunkSlots, version: 1, value: 1, batch: 1}}),
		"text slot":      []byte("T300,1,1,1;"),
		"text twice":     []byte("T1,1,1,1;1,2,1,1;"),
		"text field":     []byte("T1,x,1,1;"),
	} {
		if _, err := decodeChunk(nil, data); !errors.Is(err, errChunk) {
			t.Errorf("%s: %v, want a corrupt chunk error", name, err)
		}
	}
}

// Chunks are aligned on multiples of 300 intervals since the epoch, also
// before it.
func TestChunkStart(t *testing.T) {
	for _, tc := range []struct {
		start, res, chunk int64
		slot              int32
	}{
		{0, 1, 0, 0},
		{299, 1, 0, 299},
		{300, 1, 300, 0},
		{1_764_115_205, 5, 1_764_114_000, 241},
		{-1, 1, -300, 299},
		{-300, 1, -300, 0},
		{-301, 1, -600, 299},
		{300 * 900, 900, 300 * 900, 0},
		{300*900 - 900, 900, 0, 299},
	} {
		c, s := chunkStart(tc.start, tc.res)
		if c != tc.chunk || s != tc.slot {
			t.Errorf("chunkStart(%d, %d) = %d, %d; want %d, %d", tc.start, tc.res, c, s, tc.chunk, tc.slot)
		}
	}
}
