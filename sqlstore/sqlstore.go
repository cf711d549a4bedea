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
	"sync"
	"sync/atomic"
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

// Copier is a Dialect's optional bulk load (PostgreSQL COPY): rows
// streamed into a table over the transaction's own connection, encoded a
// few at a time. sqlstore uses it for the rows that come by the hundred
// thousand and are written once (a settlement run's verifications and
// imbalance adjustments): an INSERT over unnest() of 2,000-row arrays
// allocated the arrays, their text encoding and the Bind message for
// each part, ~700 MiB over a 10,000-resource run (docs/BENCHMARKS.md).
type Copier interface {
	// CopyFrom loads n rows into table's cols on conn, which holds the
	// open transaction; row(i) gives the i-th row's values (string,
	// int64, nil for NULL).
	CopyFrom(ctx context.Context, conn *sql.Conn, table string, cols []string, n int, row func(i int) []any) error
}

// Store is a flexhub.Store over database/sql.
type Store struct {
	write   *sql.DB // read-write transactions
	read    *sql.DB // read-only transactions (may be the same pool)
	dialect Dialect
	now     func() time.Time
	// stmts caches prepared statements per pool and query text: SQLite
	// (modernc) would otherwise parse every statement anew, which was a
	// third of the time of a 10,000-order fan-out. database/sql keeps
	// each statement prepared on every connection it ran on, and a
	// transaction reuses its connection's.
	stmts   sync.Map // stmtKey → *sql.Stmt
	nstmts  atomic.Int64
	pending sync.Map // stmtKey → true: seen, to be prepared
	npend   atomic.Int64
}

type stmtKey struct {
	db *sql.DB
	q  string
}

// maxStmts bounds the cache: the store's queries are a fixed set, but
// those built with a LIMIT or a filter combination in their text vary.
const maxStmts = 1000

// prepared returns the cached statement for q on db, or nil when it is
// not prepared yet: q is then noted, and prepared before the next
// transaction on db begins. (Preparing needs a connection of the pool;
// inside a transaction on SQLite's one-connection write pool that would
// wait for ever.)
func (s *Store) prepared(db *sql.DB, q string) *sql.Stmt {
	k := stmtKey{db, q}
	if st, ok := s.stmts.Load(k); ok {
		return st.(*sql.Stmt)
	}
	if s.nstmts.Load() < maxStmts {
		if _, loaded := s.pending.LoadOrStore(k, true); !loaded {
			s.npend.Add(1)
		}
	}
	return nil
}

// prepare prepares the statements noted for db (outside any transaction).
func (s *Store) prepare(ctx context.Context, db *sql.DB) {
	if s.npend.Load() == 0 {
		return
	}
	s.pending.Range(func(k, _ any) bool {
		key := k.(stmtKey)
		if key.db != db {
			return true
		}
		if _, ok := s.pending.LoadAndDelete(k); !ok {
			return true
		}
		s.npend.Add(-1)
		if _, ok := s.stmts.Load(key); ok || s.nstmts.Load() >= maxStmts {
			return true
		}
		st, err := db.PrepareContext(ctx, key.q)
		if err != nil {
			return true // runs unprepared
		}
		if _, loaded := s.stmts.LoadOrStore(key, st); loaded {
			st.Close()
		} else {
			s.nstmts.Add(1)
		}
		return true
	})
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
	s.prepare(ctx, db)
	// A write transaction of a dialect that bulk-loads (Copier) keeps
	// its connection at hand: COPY runs on the connection, inside the
	// transaction.
	var conn *sql.Conn
	if _, ok := s.dialect.(Copier); ok && opts == nil {
		if conn, err = db.Conn(ctx); err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
		defer conn.Close()
	}
	var sqltx *sql.Tx
	if conn != nil {
		sqltx, err = conn.BeginTx(ctx, opts)
	} else {
		sqltx, err = db.BeginTx(ctx, opts)
	}
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	t := &Tx{tx: sqltx, conn: conn, d: s.dialect, s: s, db: db, write: opts == nil}
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
	s.stmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	err := s.write.Close()
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

// Tx is one transaction.
type Tx struct {
	tx    *sql.Tx
	conn  *sql.Conn // the transaction's connection, for a Copier dialect's write transactions
	d     Dialect
	s     *Store
	db    *sql.DB              // the pool the transaction came from
	stmts map[string]*sql.Stmt // the cached statements bound to this transaction
	// auditLocked: this transaction holds the audit chain's lock (taken
	// by ActivationOrder and UpdateActivationOrder in a write
	// transaction, before any order row is read or written).
	auditLocked bool
	write       bool // a read-write transaction (Update)
	// The heads of the audit chain and the notification feed, read once a
	// transaction under the audit lock and then kept here: a batch of
	// 10,000 orders appends 10,000 entries without 10,000 head queries.
	auditHead *auditHead
	noteHead  *int64
}

type auditHead struct {
	seq  int64
	hash string
}

// stmt returns q, rebound, as a statement of the transaction (prepared
// once per connection), or nil to run it unprepared.
func (t *Tx) stmt(ctx context.Context, q string) (*sql.Stmt, string) {
	q = t.d.Rebind(q)
	if t.s == nil {
		return nil, q
	}
	if st, ok := t.stmts[q]; ok {
		return st, q
	}
	st := t.s.prepared(t.db, q)
	if st == nil {
		return nil, q
	}
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	ts := t.tx.StmtContext(ctx, st)
	t.stmts[q] = ts
	return ts, q
}

func (t *Tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st, q := t.stmt(ctx, q); st == nil {
		return t.tx.ExecContext(ctx, q, args...)
	} else {
		return st.ExecContext(ctx, args...)
	}
}

func (t *Tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st, q := t.stmt(ctx, q); st == nil {
		return t.tx.QueryContext(ctx, q, args...)
	} else {
		return st.QueryContext(ctx, args...)
	}
}

func (t *Tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st, q := t.stmt(ctx, q); st == nil {
		return t.tx.QueryRowContext(ctx, q, args...)
	} else {
		return st.QueryRowContext(ctx, args...)
	}
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
