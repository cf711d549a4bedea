// Package pgtest gives tests and benchmarks in any package a fresh
// PostgreSQL schema in the database FLEXHUB_TEST_POSTGRES names, dropped
// when the test ends. Without FLEXHUB_TEST_POSTGRES the caller is
// skipped, or failed when CI=true.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx driver for database/sql

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/postgres"
)

// Schema creates a schema named prefix_<nanoseconds> and returns a DSN
// whose connections use it, a connection to the database (outside the
// schema, closed at the end) and the schema's name.
func Schema(tb testing.TB, prefix string) (dsn string, db *sql.DB, schema string) {
	tb.Helper()
	base := os.Getenv("FLEXHUB_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("CI=true but FLEXHUB_TEST_POSTGRES is not set")
		}
		tb.Skip("set FLEXHUB_TEST_POSTGRES to run against PostgreSQL")
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatal(err)
	}
	schema = fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		db.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Exec("DROP SCHEMA " + schema + " CASCADE"); db.Close() })
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema, db, schema
}

// Open opens a migrated store in a fresh schema (closed before the schema
// is dropped).
func Open(tb testing.TB, prefix string) flexhub.Store {
	tb.Helper()
	dsn, _, _ := Schema(tb, prefix)
	s, err := postgres.Open(context.Background(), dsn, true)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
