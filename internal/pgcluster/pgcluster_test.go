package pgcluster

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq"
)

// A cluster starts, keeps committed rows across a clean stop and a crash,
// refuses connections while down, and leaves nothing behind.
func TestStopStartKill(t *testing.T) {
	var dir string
	t.Run("cluster", func(t *testing.T) {
		c := Start(t)
		dir = c.Dir()
		want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/p2?sslmode=disable&connect_timeout=2", c.Port())
		if got := c.URL("p2"); got != want {
			t.Fatalf("URL %s, want %s", got, want)
		}
		url := c.CreateDB(t, "p2")
		db, err := sql.Open("postgres", url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		exec := func(q string) {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v\n%s", q, err, c.Log())
			}
		}
		count := func() (int, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var n int
			err := db.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n)
			return n, err
		}
		var fsync string
		if err := db.QueryRow("SHOW fsync").Scan(&fsync); err != nil || fsync != "on" {
			t.Fatalf("fsync %q, %v", fsync, err)
		}
		exec("CREATE TABLE t (n int)")
		exec("INSERT INTO t VALUES (1)")

		c.Stop(t)
		start := time.Now()
		if _, err := count(); err == nil {
			t.Fatal("a query succeeded while the cluster was stopped")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("a query against the stopped cluster took %v", d)
		}
		c.Start(t)
		exec("INSERT INTO t VALUES (2)")

		c.Kill(t)
		c.Start(t)
		// The pool's connections died with the server; database/sql retries
		// on fresh ones, perhaps after one error.
		var n int
		for i := 0; i < 3; i++ {
			if n, err = count(); err == nil {
				break
			}
		}
		if err != nil || n != 2 {
			t.Fatalf("after a crash: %d rows, %v\n%s", n, err, c.Log())
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("cluster directory %s left behind: %v", dir, err)
	}
}

// A paused cluster completes no new connection; resumed, it answers again.
func TestPauseResume(t *testing.T) {
	c := Start(t)
	ping := func() error {
		db, err := sql.Open("postgres", c.URL("postgres")) // fresh connections: connect_timeout=2 bounds them
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		return db.Ping()
	}
	c.Pause(t)
	start := time.Now()
	if err := ping(); err == nil {
		t.Fatal("a paused cluster answered")
	}
	if d := time.Since(start); d < time.Second || d > 10*time.Second {
		t.Fatalf("connecting to the paused cluster failed after %v, want about connect_timeout (2 s)", d)
	}
	c.Resume(t)
	if err := ping(); err != nil {
		t.Fatalf("after Resume: %v\n%s", err, c.Log())
	}
	c.Pause(t)
	c.Stop(t) // resumes first
	c.Start(t)
	if err := ping(); err != nil {
		t.Fatalf("after Pause, Stop, Start: %v\n%s", err, c.Log())
	}
	c.Pause(t) // cleanup must cope
}

func TestFindBinDir(t *testing.T) {
	d, err := findBinDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvBinDir, t.TempDir())
	if _, err := findBinDir(); err == nil || !strings.Contains(err.Error(), EnvBinDir) {
		t.Fatalf("an empty $%s: %v", EnvBinDir, err)
	}
}
