// Package dbtest gives tests a fresh, migrated *db.DB on SQLite or on
// PostgreSQL, and runs a test against both.
//
// PostgreSQL is found through the environment variable P2_TEST_POSTGRES_URL
// (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable). Each
// database lives in a schema of its own, dropped at cleanup. A PostgreSQL
// that cannot be reached fails the test: it is never skipped.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/p2http/p2http/db"
)

// EnvPostgresURL names the environment variable holding the PostgreSQL URL
// tests use.
const EnvPostgresURL = "P2_TEST_POSTGRES_URL"

// DefaultPostgresURL is used when EnvPostgresURL is unset or empty.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// setupTimeout bounds creating, opening and dropping a test database.
const setupTimeout = 30 * time.Second

// SQLite returns a migrated SQLite database in a file under t.TempDir(),
// closed at cleanup.
func SQLite(t testing.TB) *db.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	d, err := db.Open(ctx, SQLiteURL(t))
	if err != nil {
		t.Fatalf("dbtest: open SQLite: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// SQLiteURL returns the sqlite: URL of a not yet existing file under
// t.TempDir().
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "p2http.db")
}

// PostgresURL returns the URL of the test cluster: $P2_TEST_POSTGRES_URL or
// DefaultPostgresURL.
func PostgresURL() string {
	if u := os.Getenv(EnvPostgresURL); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// Postgres returns a migrated PostgreSQL database in a fresh schema of the
// test cluster (see PostgresURL). The schema is dropped and the database
// closed at cleanup. It fails the test when the cluster cannot be reached.
func Postgres(t testing.TB) *db.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	d, err := db.Open(ctx, PostgresSchemaURL(t))
	if err != nil {
		t.Fatalf("dbtest: open PostgreSQL in a fresh schema: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// PostgresSchemaURL creates a fresh, empty schema in the test cluster and
// returns the cluster's URL with search_path set to it, for a test that
// calls db.Open itself. The schema is dropped at cleanup (after cleanups
// registered later, such as closing the database, have run).
func PostgresSchemaURL(t testing.TB) string {
	t.Helper()
	base := PostgresURL()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatalf("dbtest: PostgreSQL URL in $%s is unusable: %v", EnvPostgresURL, err)
	}
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		t.Fatalf("dbtest: PostgreSQL is unreachable (set $%s to a reachable cluster; default %s): %v",
			EnvPostgresURL, DefaultPostgresURL, err)
	}

	schema := "p2test_" + randomHex(8)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+pq.QuoteIdentifier(schema)); err != nil {
		admin.Close()
		t.Fatalf("dbtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+pq.QuoteIdentifier(schema)+" CASCADE"); err != nil {
			t.Errorf("dbtest: drop schema %s: %v", schema, err)
		}
	})

	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("dbtest: $%s is not a URL", EnvPostgresURL)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Each runs f as the subtests "sqlite" and "postgres", each with a fresh
// database.
func Each(t *testing.T, f func(t *testing.T, d *db.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { f(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, Postgres(t)) })
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
