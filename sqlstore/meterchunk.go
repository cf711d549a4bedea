package sqlstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Meter chunks (migration 009, docs/METERING.md "Storage"): the current
// versions of a series' readings are stored per chunk of meterChunkSlots
// consecutive intervals of the series' resolution — for a 1-second series
// five minutes, for a 15-minute series 3 1/8 days — one row per (series,
// chunk) holding the readings present in the chunk as a blob. A reading
// that is absent from the blob is absent (a gap stays a gap).
//
// The blob's format (meterChunkBinary), all integers varints
// (encoding/binary), the readings in slot order:
//
//	0x01                                  format
//	n                                     readings in the chunk
//	(skip, run)...                        presence: runs of present slots,
//	                                      skip absent slots before each run
//	zigzag(value - previous value)...     n values, milli-units
//	(version, count)...                   versions, run-length coded
//	(zigzag(batch - previous), count)...  meter_batch ids, run-length coded
//
// A chunk written in one ingestion with no correction is a presence run,
// the value deltas (one to three bytes for a smoothly changing reading)
// and two run pairs; streamed data, a batch every few readings, adds a
// batch run of about two bytes per batch (consecutive batches have close
// ids). Migration 009 writes the readings it moves from the
// row-per-reading table in a plain text format (meterChunkText:
// "T" then "slot,value,version,batch;" per reading, in any order), which
// the decoder reads too; a chunk is written in the binary format the next
// time it changes.

// meterChunkSlots is the number of intervals per chunk: 300 cuts the index
// entries of a bulk load 300-fold, while a streamed message that adds a
// reading to a chunk rewrites on average 150 readings (a few hundred
// bytes), not 450 as a quarter hour of 1-second data would. Migration 009
// uses the same number; changing it needs a migration that re-chunks.
const meterChunkSlots = 300

const (
	meterChunkBinary = 0x01
	meterChunkText   = 'T'
)

// meterEntry is one reading in a chunk.
type meterEntry struct {
	slot    int32 // interval within the chunk, 0..meterChunkSlots-1
	version int32
	value   int64 // milli-units
	batch   int64 // meter_batch id
}

// chunkStart is the start (Unix s) of the chunk of a reading at start of
// a series with resolution res (s), and the reading's slot in it.
func chunkStart(start, res int64) (chunk int64, slot int32) {
	span := res * meterChunkSlots
	m := start % span
	if m < 0 {
		m += span
	}
	return start - m, int32(m / res)
}

// encodeChunk encodes entries (sorted by slot, slots distinct).
func encodeChunk(buf []byte, entries []meterEntry) []byte {
	buf = append(buf, meterChunkBinary)
	buf = binary.AppendUvarint(buf, uint64(len(entries)))
	// Presence runs.
	next := int32(0) // the first slot after the previous run
	for i := 0; i < len(entries); {
		j := i + 1
		for j < len(entries) && entries[j].slot == entries[j-1].slot+1 {
			j++
		}
		buf = binary.AppendUvarint(buf, uint64(entries[i].slot-next))
		buf = binary.AppendUvarint(buf, uint64(j-i))
		next = entries[j-1].slot + 1
		i = j
	}
	prev := int64(0)
	for _, e := range entries {
		buf = binary.AppendVarint(buf, e.value-prev)
		prev = e.value
	}
	for i := 0; i < len(entries); {
		j := i + 1
		for j < len(entries) && entries[j].version == entries[i].version {
			j++
		}
		buf = binary.AppendUvarint(buf, uint64(entries[i].version))
		buf = binary.AppendUvarint(buf, uint64(j-i))
		i = j
	}
	prev = 0
	for i := 0; i < len(entries); {
		j := i + 1
		for j < len(entries) && entries[j].batch == entries[i].batch {
			j++
		}
		buf = binary.AppendVarint(buf, entries[i].batch-prev)
		buf = binary.AppendUvarint(buf, uint64(j-i))
		prev = entries[i].batch
		i = j
	}
	return buf
}

var errChunk = errors.New("corrupt meter chunk")

// decodeChunk decodes a chunk into entries sorted by slot, appended to
// out.
func decodeChunk(out []meterEntry, data []byte) ([]meterEntry, error) {
	if len(data) == 0 {
		return out, errChunk
	}
	switch data[0] {
	case meterChunkBinary:
		return decodeBinaryChunk(out, data[1:])
	case meterChunkText:
		return decodeTextChunk(out, data[1:])
	}
	return out, fmt.Errorf("%w: format %#x", errChunk, data[0])
}

func decodeBinaryChunk(out []meterEntry, data []byte) ([]meterEntry, error) {
	p := data
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, false
		}
		p = p[n:]
		return v, true
	}
	n, ok := uv()
	if !ok || n > meterChunkSlots {
		return out, errChunk
	}
	base := len(out)
	out = slices.Grow(out, int(n))
	next := uint64(0)
	for uint64(len(out)-base) < n {
		skip, ok1 := uv()
		run, ok2 := uv()
		if !ok1 || !ok2 || run == 0 || run > n-uint64(len(out)-base) || next+skip+run > meterChunkSlots {
			return out, errChunk
		}
		for s := next + skip; s < next+skip+run; s++ {
			out = append(out, meterEntry{slot: int32(s)})
		}
		next += skip + run
	}
	es := out[base:]
	prev := int64(0)
	for i := range es {
		d, k := binary.Varint(p)
		if k <= 0 {
			return out, errChunk
		}
		p = p[k:]
		prev += d
		es[i].value = prev
	}
	// Versions: (version, count) runs; batches: (zigzag delta to the
	// previous run's batch, count) runs.
	for i := 0; i < len(es); {
		v, ok1 := uv()
		c, ok2 := uv()
		if !ok1 || !ok2 || c == 0 || c > uint64(len(es)-i) {
			return out, errChunk
		}
		for range c {
			es[i].version = int32(v)
			i++
		}
	}
	batch := int64(0)
	for i := 0; i < len(es); {
		d, k := binary.Varint(p)
		if k <= 0 {
			return out, errChunk
		}
		p = p[k:]
		c, ok := uv()
		if !ok || c == 0 || c > uint64(len(es)-i) {
			return out, errChunk
		}
		batch += d
		for range c {
			es[i].batch = batch
			i++
		}
	}
	if len(p) != 0 {
		return out, errChunk
	}
	return out, nil
}

// decodeTextChunk reads the format migration 009 writes:
// "slot,value,version,batch;" per reading, in any order.
func decodeTextChunk(out []meterEntry, data []byte) ([]meterEntry, error) {
	base := len(out)
	for len(data) > 0 {
		end := bytes.IndexByte(data, ';')
		if end < 0 {
			end = len(data)
		}
		f := bytes.Split(data[:end], []byte{','})
		if len(f) != 4 {
			return out, errChunk
		}
		var n [4]int64
		for i := range f {
			v, err := strconv.ParseInt(string(f[i]), 10, 64)
			if err != nil {
				return out, errChunk
			}
			n[i] = v
		}
		if n[0] < 0 || n[0] >= meterChunkSlots {
			return out, errChunk
		}
		out = append(out, meterEntry{slot: int32(n[0]), value: n[1], version: int32(n[2]), batch: n[3]})
		data = data[min(end+1, len(data)):]
	}
	es := out[base:]
	slices.SortFunc(es, func(a, b meterEntry) int { return int(a.slot - b.slot) })
	for i := 1; i < len(es); i++ {
		if es[i].slot == es[i-1].slot {
			return out, errChunk
		}
	}
	return out, nil
}
