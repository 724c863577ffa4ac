package db_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/migrations"
)

// Inspect creates nothing: a missing SQLite file stays missing (ENOTFOUND),
// an empty database is not migrated, and a migrated one reads as such.
func TestInspect(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p2.db")
	if _, err := db.Inspect(ctx, "sqlite:"+path); p2http.ErrorCode(err) != p2http.ENOTFOUND {
		t.Fatalf("Inspect of a missing file: %v, want ENOTFOUND", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("Inspect created %s: %v", path, err)
	}
	for name, url := range map[string]string{"sqlite": "sqlite:" + path, "postgres": dbtest.PostgresSchemaURL(t)} {
		t.Run(name, func(t *testing.T) {
			if name == "sqlite" {
				if err := os.WriteFile(path, nil, 0o600); err != nil { // an empty file is an empty database
					t.Fatal(err)
				}
			}
			d, err := db.Inspect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := d.Migrated(ctx); err != nil || ok {
				t.Errorf("Migrated of an empty database = %v, %v", ok, err)
			}
			d.Close()
			opened, err := db.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			opened.Close()
			d, err = db.Inspect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if ok, err := d.Migrated(ctx); err != nil || !ok {
				t.Errorf("Migrated after Open = %v, %v", ok, err)
			}
			if v, dirty, err := d.MigrationVersion(ctx); err != nil || dirty || v != migrations.Latest() {
				t.Errorf("MigrationVersion = %d, %v, %v", v, dirty, err)
			}
		})
	}
}

// A PostgreSQL server that is not there is EUNAVAILABLE.
func TestInspectUnreachable(t *testing.T) {
	_, err := db.Inspect(context.Background(), "postgres://p2http@127.0.0.1:1/p2http?sslmode=disable")
	if p2http.ErrorCode(err) != p2http.EUNAVAILABLE {
		t.Fatalf("Inspect = %v, want EUNAVAILABLE", err)
	}
}
