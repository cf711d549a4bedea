package app

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flexhub/flexhub/powerflow"
)

// TestGridModelCacheKeepsTheLastVersions: the cache holds the last
// maxCompiledModels versions and drops the oldest first.
func TestGridModelCacheKeepsTheLastVersions(t *testing.T) {
	var c gridModelCache
	models := make([]*powerflow.Model, maxCompiledModels+2)
	for i := range models {
		models[i] = &powerflow.Model{}
		c.put(fmt.Sprint(i), models[i])
		c.put(fmt.Sprint(i), &powerflow.Model{}) // a second put of an id keeps the first
	}
	for i, m := range models {
		got := c.get(fmt.Sprint(i))
		if i < 2 && got != nil {
			t.Errorf("version %d should have been dropped", i)
		}
		if i >= 2 && got != m {
			t.Errorf("version %d: got %p, want %p", i, got, m)
		}
	}
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, b := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReadSimBenchZip: the grid's CSV files are found at the top of the
// archive or inside one folder (at any depth); zero or two grids, and
// archives with too many members, are refused with a clear reason.
func TestReadSimBenchZip(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "data", "grids", "simbench", "1-LV-rural1--0-no_sw")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	grid := map[string][]byte{}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), "Profile.csv") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		grid[e.Name()] = b
	}
	under := func(prefix string) map[string][]byte {
		m := map[string][]byte{}
		for k, v := range grid {
			m[prefix+k] = v
		}
		return m
	}
	for _, prefix := range []string{"", "1-LV-rural1--0-no_sw/", "export/2026/grid/"} {
		n, err := readSimBenchZip(zipOf(t, under(prefix)))
		if err != nil {
			t.Errorf("files under %q: %v", prefix, err)
			continue
		}
		if len(n.Buses) != 15 {
			t.Errorf("files under %q: %d buses, want 15", prefix, len(n.Buses))
		}
	}
	two := under("a/")
	for k, v := range under("b/") {
		two[k] = v
	}
	many := map[string][]byte{}
	for i := range maxZipFiles + 1 {
		many[fmt.Sprintf("f%d.csv", i)] = nil
	}
	// A member whose header declares more than the limit inflated (a zip
	// bomb's shape) is refused before anything is inflated.
	var bomb bytes.Buffer
	zw := zip.NewWriter(&bomb)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "Node.csv", Method: zip.Store, CompressedSize64: 2, UncompressedSize64: maxZipInflated + 1})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("id"))
	zw.Close()
	for name, c := range map[string]struct {
		zip  []byte
		want string
	}{
		"no grid":      {zipOf(t, map[string][]byte{"readme.txt": []byte("hi")}), "no Node.csv"},
		"two grids":    {zipOf(t, two), "holds 2 grids (Node.csv in a, b)"},
		"many members": {zipOf(t, many), "holds 1001 files"},
		"not a zip":    {[]byte("Node.csv"), "not a zip archive"},
		"zip bomb":     {bomb.Bytes(), fmt.Sprintf("inflates to %d bytes, more than the %d taken", maxZipInflated+1, maxZipInflated)},
	} {
		if _, err := readSimBenchZip(c.zip); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// FuzzParseGridModel: whatever an upload holds, parsing answers a model
// or an error, never a panic; an accepted model compiled.
//
//	go test ./app/ -run '^$' -fuzz FuzzParseGridModel -fuzztime 60s
func FuzzParseGridModel(f *testing.F) {
	pp, err := os.ReadFile(filepath.Join("..", "..", "shared", "data", "grids", "pandapower", "case33bw.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(false, pp)
	f.Add(false, []byte(`{"_object": {"bus": {"_object": "{\"columns\":[\"vn_kv\"],\"index\":[0],\"data\":[[0.4]]}"}}}`))
	node := []byte("id;type;vmSetp;vaSetp;vmR;vmMin;vmMax\nb1;busbar;1.0;0;0.4;0.9;1.1\n")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("g/Node.csv")
	w.Write(node)
	zw.Close()
	f.Add(true, buf.Bytes())
	f.Fuzz(func(t *testing.T, simbench bool, data []byte) {
		format := "pandapower"
		if simbench {
			format = "simbench"
		}
		net, m, err := parseGridModel(format, data)
		if err == nil && (net == nil || m == nil) {
			t.Fatal("accepted without a model")
		}
	})
}
