package sqlstore_test

import (
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/postgres"
	"github.com/flexhub/flexhub/postgres/pgtest"
	"github.com/flexhub/flexhub/sqlite"
	"github.com/flexhub/flexhub/sqlstore"
)

// The harness of the migration tests: a raw database of each dialect at
// some migration, filled by hand, then opened as a store (which applies
// the rest).

// migrateBefore applies the migrations before the one named first.
func migrateBefore(t *testing.T, db *sql.DB, d sqlstore.Dialect, migrations fs.FS, first string) {
	t.Helper()
	before := fstest.MapFS{}
	names, _ := fs.Glob(migrations, "*.sql")
	for _, n := range names {
		if n < first {
			body, _ := fs.ReadFile(migrations, n)
			before[n] = &fstest.MapFile{Data: body}
		}
	}
	if _, err := sqlstore.Migrate(t.Context(), db, d, before); err != nil {
		t.Fatal(err)
	}
}

// bothStores runs test against a raw database of each dialect and a
// function that opens it as a store (applying the remaining migrations).
func bothStores(t *testing.T, test func(t *testing.T, db *sql.DB, d sqlstore.Dialect, migrations fs.FS, open func() flexhub.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "m.db")
		db, err := sql.Open("sqlite", "file:"+path) // foreign keys off: the rows they would check are not the point
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		test(t, db, sqliteDialect{}, sqlite.Migrations(), func() flexhub.Store {
			db.Close()
			s, err := sqlite.Open(t.Context(), path, true)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn, _, _ := pgtest.Schema(t, "fh_migrate_adj")
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		if _, err := db.ExecContext(t.Context(), `SET session_replication_role = replica`); err != nil { // no foreign key checks on this connection
			t.Fatal(err)
		}
		test(t, db, pgDialect{}, postgres.Migrations(), func() flexhub.Store {
			db.Close()
			s, err := postgres.Open(t.Context(), dsn, true)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
}
