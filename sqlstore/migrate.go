package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"
)

// migrationLockKey names the advisory lock that keeps two flexhub instances
// starting side by side from migrating at once.
const migrationLockKey = 0x6d696772617465 // "migrate"

// Migrate applies, in name order, every *.sql file of migrations that the
// database has not seen yet, each in its own transaction. It returns the
// names it applied.
func Migrate(ctx context.Context, db *sql.DB, d Dialect, migrations fs.FS) ([]string, error) {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migration (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("create schema_migration: %w", err)
	}
	names, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var applied []string
	for _, name := range names {
		body, err := fs.ReadFile(migrations, name)
		if err != nil {
			return applied, err
		}
		did, err := applyOne(ctx, db, d, name, string(body))
		if err != nil {
			return applied, fmt.Errorf("migration %s: %w", name, err)
		}
		if did {
			applied = append(applied, name)
		}
	}
	return applied, nil
}

func applyOne(ctx context.Context, db *sql.DB, d Dialect, name, body string) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if err := d.Lock(ctx, tx, migrationLockKey); err != nil {
		return false, err
	}
	var n int
	if err := tx.QueryRowContext(ctx, d.Rebind(`SELECT COUNT(*) FROM schema_migration WHERE name = ?`), name).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	for _, stmt := range splitStatements(body) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return false, fmt.Errorf("%w\nin: %s", err, stmt)
		}
	}
	if _, err := tx.ExecContext(ctx, d.Rebind(`INSERT INTO schema_migration (name, applied_at) VALUES (?, ?)`), name, time.Now().UnixMicro()); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

// splitStatements splits a migration on semicolons at line ends; our
// migrations hold no procedural code.
func splitStatements(body string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(body, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") || trimmed == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
