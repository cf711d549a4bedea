// Package postgres is flexhub's production store on PostgreSQL, through
// pgx's database/sql driver so that it shares sqlstore's queries with the
// SQLite store.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/flexhub/flexhub/sqlstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, and its connections for COPY
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the embedded PostgreSQL schema migrations.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

type dialect struct{}

func (dialect) Rebind(q string) string { return sqlstore.RebindDollar(q) }

func (dialect) IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// Lock takes a transaction-scoped advisory lock.
func (dialect) Lock(ctx context.Context, tx *sql.Tx, key int64) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, key)
	return err
}

// Arrays is true: pgx passes Go slices as PostgreSQL arrays, so a batch
// of meter readings is one unnest() statement (sqlstore/metering.go).
func (dialect) Arrays() bool { return true }

// Open connects to the database at dsn (postgres://...), applies pending
// migrations when migrate is true, and returns the store.
func Open(ctx context.Context, dsn string, migrate bool) (*sqlstore.Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if migrate {
		if _, err := Migrate(ctx, db); err != nil {
			db.Close()
			return nil, err
		}
	}
	return sqlstore.New(db, db, dialect{}), nil
}

// Migrate applies pending migrations to an open database.
func Migrate(ctx context.Context, db *sql.DB) ([]string, error) {
	return sqlstore.Migrate(ctx, db, dialect{}, Migrations())
}

// CopyFrom implements sqlstore.Copier with pgx's COPY FROM STDIN (binary
// format): the rows are encoded and sent a buffer at a time, never all
// at once.
func (dialect) CopyFrom(ctx context.Context, conn *sql.Conn, table string, cols []string, n int, row func(i int) []any) error {
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("copy into %s: connection is %T, not pgx", table, dc)
		}
		i := 0
		copied, err := c.Conn().CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			i++
			return row(i - 1), nil
		}))
		if err == nil && copied != int64(n) {
			err = fmt.Errorf("copy into %s: %d of %d rows copied", table, copied, n)
		}
		return err
	})
}
