package benchdata

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The data set's files in its folder: MetaFile (JSON, Meta) and DataFile:
// all values as little-endian int64, resource by resource, interval by
// interval (Resources × Intervals of them), then one byte per value, 1
// where the reading is missing (its value is then 0).
const (
	MetaFile = "meta.json"
	DataFile = "data.bin"
)

// Write stores d in dir (created if need be).
func (d *Data) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	meta, err := json.Marshal(d.Meta)
	if err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, DataFile))
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var b [8]byte
	for _, v := range d.Values {
		binary.LittleEndian.PutUint64(b[:], uint64(v))
		w.Write(b[:])
	}
	for _, m := range d.Missing {
		var x byte
		if m {
			x = 1
		}
		w.WriteByte(x)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// the meta file last: a folder with one is complete
	return os.WriteFile(filepath.Join(dir, MetaFile), meta, 0o644)
}

// Read loads a data set Write stored.
func Read(dir string) (*Data, error) {
	meta, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return nil, err
	}
	d := &Data{}
	if err := json.Unmarshal(meta, &d.Meta); err != nil {
		return nil, fmt.Errorf("%s: %w", MetaFile, err)
	}
	n := d.Meta.Resources * d.Meta.Intervals
	if n <= 0 || len(d.Meta.Excluded) != d.Meta.Resources {
		return nil, fmt.Errorf("%s: %d resources × %d intervals, %d excluded lists", MetaFile, d.Meta.Resources, d.Meta.Intervals, len(d.Meta.Excluded))
	}
	if err := d.parseExcluded(); err != nil {
		return nil, fmt.Errorf("%s: %w", MetaFile, err)
	}
	f, err := os.Open(filepath.Join(dir, DataFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if st.Size() != int64(n)*9 {
		return nil, fmt.Errorf("%s: %d bytes, expected %d", DataFile, st.Size(), int64(n)*9)
	}
	d.Values = make([]int64, n)
	d.Missing = make([]bool, n)
	buf := make([]byte, 1<<20)
	for i := 0; i < n; {
		k := min(len(buf)/8, n-i)
		if _, err := io.ReadFull(f, buf[:k*8]); err != nil {
			return nil, fmt.Errorf("%s: %w", DataFile, err)
		}
		for j := range k {
			d.Values[i+j] = int64(binary.LittleEndian.Uint64(buf[j*8:]))
		}
		i += k
	}
	for i := 0; i < n; {
		k := min(len(buf), n-i)
		if _, err := io.ReadFull(f, buf[:k]); err != nil {
			return nil, fmt.Errorf("%s: %w", DataFile, err)
		}
		for j, b := range buf[:k] {
			d.Missing[i+j] = b != 0
		}
		i += k
	}
	return d, nil
}
