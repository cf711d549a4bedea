package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/sqlite"
	"github.com/flexhub/flexhub/storetest"
)

// TestStore runs the store conformance suite on a fresh SQLite file per
// subtest.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) flexhub.Store {
		path := filepath.Join(t.TempDir(), "flexhub.db")
		s, err := sqlite.Open(t.Context(), path, true)
		if err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		})
		return s
	})
}
