// Package sqlite is flexhub's embedded default store: one SQLite file in
// the data directory, opened with the pure-Go modernc.org/sqlite driver (no
// cgo), in WAL mode with foreign keys on and synchronous=FULL, so a change
// that was acknowledged survives a crash.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"strings"

	"github.com/flexhub/flexhub/sqlstore"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the embedded SQLite schema migrations.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

type dialect struct{}

func (dialect) Rebind(q string) string { return q }

func (dialect) IsUniqueViolation(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// Lock is a no-op: SQLite has one writer, and write transactions begin
// IMMEDIATE, so they are already serialised.
func (dialect) Lock(context.Context, *sql.Tx, int64) error { return nil }

// Arrays is false: SQLite has no array parameters; row by row in-process
// is fast (sqlstore/metering.go).
func (dialect) Arrays() bool { return false }

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the database file at path, applies
// pending migrations when migrate is true, and returns the store.
func Open(ctx context.Context, path string, migrate bool) (*sqlstore.Store, error) {
	write, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, err
	}
	// One writer connection: SQLite serialises writers anyway, and a
	// single connection avoids SQLITE_BUSY between our own goroutines.
	write.SetMaxOpenConns(1)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if migrate {
		if _, err := Migrate(ctx, write); err != nil {
			write.Close()
			return nil, err
		}
	}
	read, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		write.Close()
		return nil, err
	}
	read.SetMaxOpenConns(max(4, runtime.NumCPU()))
	return sqlstore.New(write, read, dialect{}), nil
}

// Migrate applies pending migrations to an open database.
func Migrate(ctx context.Context, db *sql.DB) ([]string, error) {
	return sqlstore.Migrate(ctx, db, dialect{}, Migrations())
}
