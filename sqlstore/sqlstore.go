// Package sqlstore implements flexhub.Store on database/sql for both SQL
// stores. The SQL here is the common subset of SQLite and PostgreSQL; what
// differs (placeholders, locking, error codes, schema) comes from a
// Dialect that the sqlite and postgres packages supply with their own
// migrations.
//
// Register objects are stored as JSON documents next to real columns for
// every relation and filter (with foreign keys), plus one generic history
// table that keeps every version of every object. Why: the technical data
// of resources and products grows with each new product, and a new field
// should not need a migration in two dialects, while everything the
// platform queries by is a typed, indexed column.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
)

// Dialect is what differs between SQL databases.
type Dialect interface {
	// Rebind turns ? placeholders into the database's own.
	Rebind(query string) string
	// IsUniqueViolation reports whether err is a unique constraint failure.
	IsUniqueViolation(err error) bool
	// Lock takes a transaction-scoped exclusive lock named by key, held
	// until the transaction ends (PostgreSQL advisory lock; SQLite's single
	// writer needs none).
	Lock(ctx context.Context, tx *sql.Tx, key int64) error

	// Arrays reports whether the database takes Go slices ([]int64,
	// []string) as array parameters that SQL can unnest() (PostgreSQL).
	// sqlstore then writes a batch of meter readings with one set-based
	// statement instead of row by row (sqlstore/metering.go).
	Arrays() bool
}

// Store is a flexhub.Store over database/sql.
type Store struct {
	write   *sql.DB // read-write transactions
	read    *sql.DB // read-only transactions (may be the same pool)
	dialect Dialect
	now     func() time.Time
}

// New wraps open database handles. read may equal write.
func New(write, read *sql.DB, d Dialect) *Store {
	return &Store{write: write, read: read, dialect: d, now: func() time.Time { return time.Now().UTC() }}
}

var _ flexhub.Store = (*Store)(nil)

// DB returns the write handle (for migrations and tests).
func (s *Store) DB() *sql.DB { return s.write }

// Update implements flexhub.Store.
func (s *Store) Update(ctx context.Context, fn func(flexhub.Tx) error) error {
	return s.run(ctx, s.write, nil, fn)
}

// View implements flexhub.Store. The transaction is read-only and
// repeatable-read, so every query in fn sees the same snapshot (PostgreSQL's
// default, read committed, takes a new snapshot per statement; SQLite's
// read transactions are snapshots already and ignore the level).
func (s *Store) View(ctx context.Context, fn func(flexhub.Tx) error) error {
	return s.run(ctx, s.read, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}, fn)
}

func (s *Store) run(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(flexhub.Tx) error) (err error) {
	sqltx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	t := &Tx{tx: sqltx, d: s.dialect}
	defer func() {
		if p := recover(); p != nil {
			_ = sqltx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = sqltx.Rollback()
			return
		}
		if cerr := sqltx.Commit(); cerr != nil {
			err = s.mapErr(fmt.Errorf("commit: %w", cerr))
		}
	}()
	return fn(t)
}

func (s *Store) mapErr(err error) error {
	if s.dialect.IsUniqueViolation(err) {
		return flexhub.Errorf(flexhub.EConflict, "a concurrent request changed the same data; retry")
	}
	return err
}

// Ping implements flexhub.Store.
func (s *Store) Ping(ctx context.Context) error { return s.write.PingContext(ctx) }

// Close implements flexhub.Store.
func (s *Store) Close() error {
	err := s.write.Close()
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

// Tx is one transaction.
type Tx struct {
	tx *sql.Tx
	d  Dialect
}

func (t *Tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.d.Rebind(q), args...)
}

func (t *Tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.d.Rebind(q), args...)
}

func (t *Tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.d.Rebind(q), args...)
}

// micros stores times as integer microseconds since the epoch in both
// dialects: exact, comparable and free of time zone handling.
func micros(t time.Time) int64 { return t.UTC().UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return micros(*t)
}

// RebindDollar rewrites ? placeholders as $1, $2, ... (PostgreSQL).
func RebindDollar(q string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}
