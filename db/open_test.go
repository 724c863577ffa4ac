package db_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/migrations"
)

func open(t *testing.T, url string) *db.DB {
	t.Helper()
	d, err := db.Open(ctxT(t), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestOpenSQLiteTwice(t *testing.T) {
	ctx := ctxT(t)
	url := dbtest.SQLiteURL(t)
	d1 := open(t, url)
	r := reg("alice")
	if _, _, err := d1.Register(ctx, r); err != nil {
		t.Fatal(err)
	}
	// A second pool on the same file while the first is open: the
	// migrations are found applied.
	d2 := open(t, url)
	if _, err := d2.Lookup(ctx, r.Node); err != nil {
		t.Fatalf("second pool: %v", err)
	}
	d1.Close()
	d2.Close()
	// And again after both are closed.
	d3 := open(t, url)
	if v, dirty, err := d3.MigrationVersion(ctx); err != nil || v != migrations.Latest() || dirty {
		t.Fatalf("MigrationVersion = %d, %v, %v", v, dirty, err)
	}
	if _, err := d3.Lookup(ctx, r.Node); err != nil {
		t.Fatalf("after reopening: %v", err)
	}
}

func TestOpenPostgresTwice(t *testing.T) {
	url := dbtest.PostgresSchemaURL(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := db.Open(ctxT(t), url)
			if err == nil {
				d.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Open %d: %v", i, err)
		}
	}
	d := open(t, url)
	if v, dirty, err := d.MigrationVersion(ctxT(t)); err != nil || v != migrations.Latest() || dirty {
		t.Fatalf("MigrationVersion = %d, %v, %v", v, dirty, err)
	}
}

func TestOpenBadURL(t *testing.T) {
	for _, url := range []string{
		"",
		"p2.db",
		"sqlite:",
		"sqlite://",
		"mysql://root:hunter2@localhost/p2",
		"file:p2.db",
		"postgres:/x",
		// Malformed PostgreSQL URLs: the URL parser's own error quotes
		// the URL, or the piece at fault, which can be the password.
		"postgres://u:hunter2@127.0.0.1:badport/test",
		"postgres://u:hunter2%zz@127.0.0.1/test",
	} {
		d, err := db.Open(ctxT(t), url)
		if err == nil {
			d.Close()
			t.Errorf("Open(%q) succeeded", url)
			continue
		}
		if p2http.ErrorCode(err) != p2http.EINVALID {
			t.Errorf("Open(%q): %v, want EINVALID", url, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "sqlite:PATH") || !strings.Contains(msg, "postgres://") {
			t.Errorf("Open(%q): %q does not name the accepted forms", url, msg)
		}
		if strings.Contains(msg, "hunter2") {
			t.Errorf("Open(%q): %q repeats the password", url, msg)
		}
	}
}

func TestOpenUnreachablePostgres(t *testing.T) {
	start := time.Now()
	d, err := db.Open(ctxT(t), "postgres://postgres:hunter2@127.0.0.1:1/x?sslmode=disable&connect_timeout=1")
	if err == nil {
		d.Close()
		t.Fatal("Open of an unreachable PostgreSQL succeeded")
	}
	wantCode(t, err, p2http.EUNAVAILABLE)
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error repeats the password: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
}

func TestOpenSQLiteUnreachable(t *testing.T) {
	_, err := db.Open(ctxT(t), "sqlite:"+filepath.Join(t.TempDir(), "missing", "dir", "p2.db"))
	wantCode(t, err, p2http.EUNAVAILABLE)
}

func TestSQLiteMemory(t *testing.T) {
	ctx := ctxT(t)
	d := open(t, "sqlite::memory:")
	if _, ok := db.SQLitePath("sqlite::memory:"); ok {
		t.Error("SQLitePath(sqlite::memory:) ok")
	}
	// One connection, shared: concurrent calls queue instead of each
	// seeing an empty database of its own.
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := d.Register(ctx, reg(string(rune('a'+i)))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	counts, err := d.CountRegistrations(ctx)
	if err != nil || counts[p2http.FCM] != 10 {
		t.Fatalf("counts %v, %v", counts, err)
	}
	if v, _, err := d.MigrationVersion(ctx); err != nil || v != migrations.Latest() {
		t.Fatalf("MigrationVersion = %d, %v", v, err)
	}
}

func TestSQLitePath(t *testing.T) {
	for url, want := range map[string]string{
		"sqlite:p2.db":                 "p2.db",
		"sqlite:/var/lib/p2http/p2.db": "/var/lib/p2http/p2.db",
		"sqlite:///var/lib/p2.db":      "/var/lib/p2.db",
		"sqlite://rel/p2.db":           "rel/p2.db",
		"sqlite::memory:":              "",
		"sqlite:":                      "",
		"postgres://u@h/db":            "",
		"p2.db":                        "",
	} {
		got, ok := db.SQLitePath(url)
		if got != want || ok != (want != "") {
			t.Errorf("SQLitePath(%q) = %q, %v; want %q", url, got, ok, want)
		}
	}
}

func TestSQLiteOddFileName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a b#c?d%20e.db")
	d := open(t, "sqlite:"+path)
	if _, _, err := d.Register(ctxT(t), reg("alice")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at %q: %v", path, err)
	}
}

// TestSQLiteStorage checks how SQLite holds the data: timestamps as integer
// unix microseconds, the kept secret as a blob, WAL mode on.
func TestSQLiteStorage(t *testing.T) {
	ctx := ctxT(t)
	url := dbtest.SQLiteURL(t)
	d := open(t, url)
	r := reg("alice")
	r.UpdatedAt = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	r.SecretKind, r.SecretEnc = p2http.SecretKept, []byte{1, 2, 3}
	if _, _, err := d.Register(ctx, r); err != nil {
		t.Fatal(err)
	}
	delivered(t, d, r.UpdatedAt.Add(time.Second), r.Node)
	path, _ := db.SQLitePath(url)
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var (
		typeCreated, typeUpdated, typePushed, typeSecret string
		updated                                          int64
	)
	err = raw.QueryRowContext(ctx, `SELECT typeof(created_at), typeof(updated_at), typeof(last_push_at), typeof(secret_enc), updated_at FROM registrations`).
		Scan(&typeCreated, &typeUpdated, &typePushed, &typeSecret, &updated)
	if err != nil {
		t.Fatal(err)
	}
	if typeCreated != "integer" || typeUpdated != "integer" || typePushed != "integer" || typeSecret != "blob" {
		t.Errorf("stored types %s %s %s %s", typeCreated, typeUpdated, typePushed, typeSecret)
	}
	if want := r.UpdatedAt.UnixMicro(); updated != want {
		t.Errorf("updated_at = %d, want %d", updated, want)
	}
	var mode string
	if err := raw.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q, %v", mode, err)
	}
}

func TestSQLiteDirty(t *testing.T) {
	url := dbtest.SQLiteURL(t)
	open(t, url).Close()
	path, _ := db.SQLitePath(url)
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE schema_migrations SET dirty = 1`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	d, err := db.Open(ctxT(t), url)
	if err == nil {
		d.Close()
		t.Fatal("Open of a dirty database succeeded")
	}
	if !strings.Contains(err.Error(), "dirty") {
		t.Errorf("error %q does not say dirty", err)
	}
}

// TestPostgresSchema checks that search_path in the URL places everything,
// golang-migrate's table included, in the test's schema.
func TestPostgresSchema(t *testing.T) {
	ctx := ctxT(t)
	url := dbtest.PostgresSchemaURL(t)
	open(t, url)
	raw, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var schema string
	if err := raw.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(schema, "p2test_") {
		t.Fatalf("current_schema() = %q", schema)
	}
	rows, err := raw.QueryContext(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if got := strings.Join(tables, ","); got != "meta,registrations,schema_migrations" {
		t.Errorf("tables in %s: %s", schema, got)
	}
}

// TestPostgresTimeZone reads timestamps back in UTC whatever the session's
// time zone.
func TestPostgresTimeZone(t *testing.T) {
	ctx := ctxT(t)
	d := open(t, dbtest.PostgresSchemaURL(t)+"&timezone=Asia/Kolkata")
	r := reg("alice")
	r.UpdatedAt = time.Date(2024, 12, 31, 23, 59, 59, 999999000, time.UTC)
	if _, _, err := d.Register(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := d.Lookup(ctx, r.Node)
	if err != nil {
		t.Fatal(err)
	}
	sameTime(t, "UpdatedAt", got.UpdatedAt, r.UpdatedAt)
	removed, err := d.RemoveDead(ctx, r.Node, r.UpdatedAt)
	if err != nil || removed {
		t.Fatalf("RemoveDead at updated_at: %v, %v", removed, err)
	}
}

func TestContextDeadlineDuringOpen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := db.Open(ctx, dbtest.SQLiteURL(t))
	wantCode(t, err, p2http.EUNAVAILABLE)
}

func TestOpenPostgresqlScheme(t *testing.T) {
	url := dbtest.PostgresSchemaURL(t)
	url = "postgresql://" + strings.TrimPrefix(url, "postgres://")
	d := open(t, url)
	if d.Driver() != "postgres" {
		t.Errorf("Driver() = %q", d.Driver())
	}
	if _, _, err := d.Register(ctxT(t), reg("alice")); err != nil {
		t.Fatal(err)
	}
}

// TestOnMigrate: Open calls the hook's begin before the migrations and its
// done after them, also when they fail, and neither twice.
func TestOnMigrate(t *testing.T) {
	url := dbtest.SQLiteURL(t)
	path, _ := db.SQLitePath(url)
	version := func() (uint, error) {
		raw, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			return 0, err
		}
		defer raw.Close()
		var v uint
		err = raw.QueryRow(`SELECT version FROM schema_migrations`).Scan(&v)
		return v, err
	}
	var calls []string
	hook := db.OnMigrate(func() func() {
		v, err := version()
		calls = append(calls, fmt.Sprintf("begin %d %v", v, err != nil))
		return func() {
			v, err := version()
			calls = append(calls, fmt.Sprintf("done %d %v", v, err != nil))
		}
	})
	d, err := db.Open(ctxT(t), url, hook)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	want := []string{"begin 0 true", fmt.Sprintf("done %d false", migrations.Latest())}
	if strings.Join(calls, "|") != strings.Join(want, "|") {
		t.Errorf("hook calls %q, want %q (begin before the schema exists, done once it is migrated)", calls, want)
	}

	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE schema_migrations SET dirty = 1`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	calls = nil
	if d, err := db.Open(ctxT(t), url, hook); err == nil {
		d.Close()
		t.Fatal("Open of a dirty database succeeded")
	}
	if len(calls) != 2 || !strings.HasPrefix(calls[1], "done") {
		t.Errorf("hook calls %q after failed migrations, want begin and done", calls)
	}
}
