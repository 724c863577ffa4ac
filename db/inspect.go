package db

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/p2http/p2http"
)

// Inspect opens the database rawURL names to look at it, as p2http doctor
// does: it connects and checks that the database answers, but creates no
// file, applies no migration and starts no cache notifier; Lookup,
// MigrationVersion, Migrated and PinnedFingerprint work on it. A SQLite
// file that does not exist is ENOTFOUND; a database that does not answer
// is EUNAVAILABLE, as for Open. Close it when done.
func Inspect(ctx context.Context, rawURL string) (*DB, error) {
	t, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if t.path != "" {
		if _, err := os.Stat(t.path); errors.Is(err, fs.ErrNotExist) {
			return nil, p2http.Errorf(p2http.ENOTFOUND, "no SQLite file %s", t.path)
		}
	}
	return connect(ctx, rawURL)
}

// The queries that tell whether golang-migrate's table exists.
const (
	sqlMigratedSQLite   = `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`
	sqlMigratedPostgres = `SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE tablename = 'schema_migrations' AND schemaname = ANY (current_schemas(false))`
)

// Migrated reports whether migrations were ever applied to the database:
// whether golang-migrate's schema_migrations table exists (in the search
// path, on PostgreSQL). Before that, MigrationVersion fails and the
// database holds no registrations and no pinned key.
func (d *DB) Migrated(ctx context.Context) (bool, error) {
	ctx, cancel := d.call(ctx)
	defer cancel()
	query := sqlMigratedSQLite
	if d.driver == DriverPostgres {
		query = sqlMigratedPostgres
	}
	var n int
	if err := d.x.GetContext(ctx, &n, query); err != nil {
		return false, d.fail("find the migrations table", err)
	}
	return n > 0, nil
}
