package migrations_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/postgres"
	_ "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/migrations"
)

// TestSameVersions checks that both databases have the same migrations, each
// with an up and a down file.
func TestSameVersions(t *testing.T) {
	names := map[string][]string{}
	for _, dir := range []string{"postgres", "sqlite"} {
		entries, err := fs.ReadDir(migrations.FS, dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			names[dir] = append(names[dir], e.Name())
		}
		if len(names[dir]) == 0 || len(names[dir])%2 != 0 {
			t.Errorf("%s: %v, want up/down pairs", dir, names[dir])
		}
		for _, n := range names[dir] {
			if !strings.HasSuffix(n, ".up.sql") && !strings.HasSuffix(n, ".down.sql") {
				t.Errorf("%s/%s is not a migration", dir, n)
			}
		}
	}
	if !slices.Equal(names["postgres"], names["sqlite"]) {
		t.Errorf("postgres %v, sqlite %v", names["postgres"], names["sqlite"])
	}
}

// TestUpDownUp runs every migration down and up again on both databases.
func TestUpDownUp(t *testing.T) {
	for dir, url := range map[string]string{
		"sqlite":   "sqlite://" + filepath.Join(t.TempDir(), "m.db"),
		"postgres": dbtest.PostgresSchemaURL(t),
	} {
		t.Run(dir, func(t *testing.T) {
			sub, err := fs.Sub(migrations.FS, dir)
			if err != nil {
				t.Fatal(err)
			}
			src, err := iofs.New(sub, ".")
			if err != nil {
				t.Fatal(err)
			}
			m, err := migrate.NewWithSourceInstance("iofs", src, url)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for i, step := range []func() error{m.Up, m.Down, m.Up} {
				if err := step(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			if v, dirty, err := m.Version(); err != nil || v != migrations.Latest() || dirty {
				t.Fatalf("Version = %d, %v, %v", v, dirty, err)
			}
		})
	}
}

// TestLatest checks that Latest names the newest migration file.
func TestLatest(t *testing.T) {
	if got := migrations.Latest(); got != 3 {
		t.Errorf("Latest() = %d, want 3 (000003_push_history)", got)
	}
}
