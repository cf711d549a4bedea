package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/postgres"
	"github.com/flexhub/flexhub/storetest"
)

// dsnEnv names the environment variable holding the test database's DSN.
const dsnEnv = "FLEXHUB_TEST_POSTGRES"

// TestStore runs the store conformance suite against PostgreSQL, each
// subtest in its own fresh schema. It needs a DSN in FLEXHUB_TEST_POSTGRES;
// without one it skips, except under CI=true, where it fails.
func TestStore(t *testing.T) {
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		const hint = "set it to a PostgreSQL DSN, e.g. postgres://postgres@localhost:5432/flexhub_test?sslmode=disable"
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set but CI=true: the PostgreSQL store must be tested in CI; %s", dsnEnv, hint)
		}
		t.Skipf("%s is not set: skipping the PostgreSQL store conformance suite; %s", dsnEnv, hint)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsnEnv, err)
	}
	t.Cleanup(func() { admin.Close() })
	if err := admin.PingContext(t.Context()); err != nil {
		t.Fatalf("connect to the database in %s: %v", dsnEnv, err)
	}

	storetest.Run(t, func(t *testing.T) flexhub.Store {
		schema := "fh_test_" + randomHex(t, 8)
		if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
			t.Fatalf("create schema %s: %v", schema, err)
		}
		// Registered before the store's Close, so it runs after it.
		t.Cleanup(func() {
			if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
				t.Errorf("drop schema %s: %v", schema, err)
			}
		})
		sdsn, err := withSearchPath(dsn, schema)
		if err != nil {
			t.Fatalf("%s: %v", dsnEnv, err)
		}
		s, err := postgres.Open(t.Context(), sdsn, true)
		if err != nil {
			t.Fatalf("open store in schema %s: %v", schema, err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		})
		return s
	})
}

// withSearchPath returns dsn with search_path set to schema, which pgx
// sends as a run-time parameter. It accepts URL DSNs (with or without a
// query) and keyword/value DSNs.
func withSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	// keyword/value form: a later keyword overrides an earlier one.
	return dsn + " search_path=" + schema, nil
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random schema name: %v", err)
	}
	return hex.EncodeToString(b)
}
