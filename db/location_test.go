package db_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2http/p2http/db"
)

// Locate names the file or the host and database, never the user, the
// password or a parameter.
func TestLocate(t *testing.T) {
	for _, v := range []string{"PGHOST", "PGPORT", "PGDATABASE", "PGUSER"} {
		t.Setenv(v, "") // restored at the end
		os.Unsetenv(v)
	}
	for _, c := range []struct {
		url  string
		want db.Location
	}{
		{"sqlite:/var/lib/p2http/p2.db", db.Location{Driver: "sqlite", File: "/var/lib/p2http/p2.db"}},
		{"sqlite:p2.db", db.Location{Driver: "sqlite", File: "p2.db"}},
		{"sqlite::memory:", db.Location{Driver: "sqlite", File: ":memory:"}},
		{"postgres://p2:hunter2@db.example:5433/p2http?sslmode=verify-full&application_name=secretish",
			db.Location{Driver: "postgres", Host: "db.example:5433", Name: "p2http"}},
		{"postgresql://p2:hunter2@[::1]/p2http", db.Location{Driver: "postgres", Host: "[::1]:5432", Name: "p2http"}},
		{"postgres://p2:hunter2@/p2http?host=/run/postgresql", db.Location{Driver: "postgres", Host: "/run/postgresql", Name: "p2http"}},
		{"postgres://p2:hunter2@h1,h2/x?port=5432,5433", db.Location{Driver: "postgres", Host: "h1:5432,h2:5433", Name: "x"}},
		{"postgres://p2:hunter2@db.example", db.Location{Driver: "postgres", Host: "db.example:5432", Name: "p2"}},
		{"mysql://x", db.Location{}},
	} {
		got := db.Locate(c.url)
		if got != c.want {
			t.Errorf("%s: %+v, want %+v", c.url, got, c.want)
		}
		if s := got.File + got.Host + got.Name; strings.Contains(s, "hunter2") || strings.Contains(s, "secretish") {
			t.Errorf("%s: %+v holds the password or a parameter", c.url, got)
		}
	}
	t.Setenv("PGHOST", "pg.internal")
	if got := db.Locate("postgres:///p2http").Host; got != "pg.internal:5432" {
		t.Errorf("with PGHOST: host %q", got)
	}
}

// A log line names a SQLite file by its absolute path, and PostgreSQL by
// its host and database only.
func TestLocationAttr(t *testing.T) {
	abs, err := filepath.Abs("p2.db")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ url, want string }{
		{"sqlite:p2.db", "database_file=" + abs + "\n"},
		{"sqlite::memory:", "database_file=:memory:\n"},
		{"postgres://p2:hunter2@db.example:5433/p2http?sslmode=disable", "database_host=db.example:5433 database_name=p2http\n"},
	} {
		var line bytes.Buffer
		log := slog.New(slog.NewTextHandler(&line, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey {
				return slog.Attr{}
			}
			return a
		}}))
		log.Info("", db.Locate(c.url).Attr())
		if line.String() != c.want {
			t.Errorf("%s: %q, want %q", c.url, line.String(), c.want)
		}
	}
}
