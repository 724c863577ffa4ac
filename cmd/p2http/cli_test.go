package main

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/internal/testutil"
)

// Asking for help is no error, and the help goes to standard output, for
// every command, as `help` does; a flag mistake writes the usage to
// standard error.
func TestHelpOnStdout(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-h"}, "Flags of serve"},
		{[]string{"--help"}, "-database-url"},
		{[]string{"help"}, "import-p2"},
		{[]string{"serve", "-h"}, "-log-format"},
		{[]string{"migrate", "-h"}, "--database-url"},
		{[]string{"stats", "-h"}, "-top"},
		{[]string{"purge", "-h"}, "-not-seen-for"},
		{[]string{"copy", "-h"}, "-to"},
		{[]string{"import-p2", "--help"}, "-from-tsv"},
		{[]string{"doctor", "-h"}, "-token"},
	} {
		out, errOut, err := admRun(t, nil, c.args...)
		if err != nil || !strings.Contains(out, c.want) || errOut != "" {
			t.Errorf("%q: %v\nstdout:\n%s\nstderr:\n%s", c.args, err, out, errOut)
		}
	}
	for _, args := range [][]string{{"-bogus"}, {"stats", "-bogus"}} {
		out, errOut, err := admRun(t, nil, args...)
		if err == nil || out != "" || !strings.Contains(errOut, "-bogus") || !strings.Contains(errOut, "Usage") {
			t.Errorf("%q: %v\nstdout:\n%s\nstderr:\n%s", args, err, out, errOut)
		}
	}
}

// A database URL given with --database-url (or serve's -database-url) that
// fails is named by that flag, not by P2_DATABASE_URL, and the error says
// each thing once; so do the other flags of the commands.
func TestFailingFlagsNamed(t *testing.T) {
	dir := t.TempDir()
	missing := "sqlite:" + filepath.Join(dir, "no", "such", "dir", "p2.db")
	down := "postgres://postgres:hunter2@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"
	tsv := filepath.Join(dir, "p2.tsv")
	if err := os.WriteFile(tsv, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	good := "sqlite:" + filepath.Join(dir, "p2.db")
	key := map[string]string{"P2_SECRET_KEY": admKey}
	for _, c := range []struct {
		env   map[string]string
		args  []string
		names string
	}{
		{nil, []string{"stats", "--database-url", "mysql://x"}, "configuration: --database-url: must be sqlite:PATH or postgres://…"},
		{nil, []string{"stats", "--database-url", missing}, "configuration: --database-url: database unavailable: create the SQLite file: "},
		{key, []string{"stats", "--database-url", down}, "configuration: --database-url: database unavailable: ping: "},
		{key, []string{"migrate", "--database-url", down}, "configuration: --database-url: database unavailable: "},
		{nil, []string{"purge", "--not-seen-for", "90d", "--database-url", missing}, "configuration: --database-url: "},
		{nil, []string{"import-p2", "--from-tsv", tsv, "--database-url", missing}, "configuration: --database-url: "},
		{nil, []string{"copy", "--to", good, "--database-url", missing}, "configuration: --database-url: "},
		{nil, []string{"-database-url", "mysql://x"}, "configuration: -database-url: must be"},
		{nil, []string{"serve", "-database-url", missing}, "configuration: -database-url: database unavailable: "},
		// The environment's variable is named as before.
		{map[string]string{"P2_DATABASE_URL": missing}, []string{"stats"}, "configuration: P2_DATABASE_URL: database unavailable: "},
		// The commands' own flags.
		{map[string]string{"P2_DATABASE_URL": good}, []string{"copy", "--to", missing}, "copy: --to: database unavailable: create the SQLite file: "},
		{map[string]string{"P2_DATABASE_URL": good}, []string{"import-p2", "--from-tsv", filepath.Join(dir, "none.tsv")}, "import-p2: --from-tsv: open "},
		{map[string]string{"P2_DATABASE_URL": good}, []string{"import-p2", "--from", "mysql://root:hunter2@127.0.0.1:1/p2"}, "import-p2: --from: connect to MariaDB at 127.0.0.1:1: "},
		{map[string]string{"P2_DATABASE_URL": good}, []string{"purge", "--not-seen-for", "1h"}, "purge: --not-seen-for"},
		{map[string]string{"P2_DATABASE_URL": good}, []string{"stats", "--top", "-1"}, "stats: --top"},
	} {
		env := map[string]string{"P2_LISTEN": "127.0.0.1:0"}
		for k, v := range c.env {
			env[k] = v
		}
		out, errOut, err := admRun(t, env, c.args...)
		msg := errString(err)
		if err == nil || !strings.HasPrefix(msg, c.names) {
			t.Errorf("%q: %q, want it to begin %q", c.args, msg, c.names)
			continue
		}
		if len(c.env) == 0 || c.env["P2_DATABASE_URL"] == "" {
			if strings.Contains(msg, "P2_DATABASE_URL") {
				t.Errorf("%q: %q names P2_DATABASE_URL, not the flag given", c.args, msg)
			}
		}
		for _, word := range []string{"unavailable", "db:", "configuration", "p2import"} {
			if strings.Count(msg, word) > 1 {
				t.Errorf("%q: %q says %q more than once", c.args, msg, word)
			}
		}
		if strings.Contains(out+errOut+msg, "hunter2") {
			t.Errorf("%q: the password was printed", c.args)
		}
	}
}

// The start-up line names the SQLite file, or PostgreSQL's host and
// database, never the URL with its user and password.
func TestStartupLineNamesTheDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p2.db")
	_, logs := start(t, map[string]string{"P2_DEV": "1", "P2_LISTEN": "127.0.0.1:0", "P2_DATABASE_URL": "sqlite:" + path})
	if line := startupLine(t, logs.String()); !strings.Contains(line, "database=sqlite database_file="+path+" ") {
		t.Errorf("SQLite: %s", line)
	}

	u, err := url.Parse(dbtest.PostgresSchemaURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "hunter2-password") // trust authentication ignores it
	_, logs = start(t, map[string]string{"P2_DEV": "1", "P2_LISTEN": "127.0.0.1:0", "P2_DATABASE_URL": u.String(),
		"P2_SECRET_KEY": strings.Repeat("p", 40)})
	line := startupLine(t, logs.String())
	want := "database=postgres database_host=" + u.Host + " database_name=" + strings.TrimPrefix(u.Path, "/") + " "
	if !strings.Contains(line, want) {
		t.Errorf("PostgreSQL: %s\nwant %s", line, want)
	}
	if all := logs.String(); strings.Contains(all, "hunter2") || strings.Contains(all, "postgres://") || strings.Contains(all, "search_path") {
		t.Errorf("the logs hold the database URL:\n%s", all)
	}
}

// startupLine returns the "p2http listening" line of logs.
func startupLine(t *testing.T, logs string) string {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `msg="p2http listening"`) {
			return l
		}
	}
	t.Fatalf("no start-up line in\n%s", logs)
	return ""
}

// The built binary: -h on standard output with exit 0, and, with
// P2_LOG_FORMAT=json, the error that ends it as a JSON log line like those
// before it.
func TestBinaryHelpAndErrors(t *testing.T) {
	bin := buildP2HTTP(t)
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	exe := func(env map[string]string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		return testutil.Run(t, bin, dir, env, args...)
	}

	for _, args := range [][]string{{"-h"}, {"help"}} {
		out, errOut, code := exe(nil, args...)
		if code != 0 || !strings.Contains(out, "Usage: p2http") || errOut != "" {
			t.Errorf("p2http %s: exit %d\nstdout:\n%s\nstderr:\n%s", args[0], code, out, errOut)
		}
	}

	db := "sqlite:" + filepath.Join(dir, "p2.db")
	for _, c := range []struct {
		name  string
		env   map[string]string
		args  []string
		lines int // JSON lines before the error's, at least
		names string
	}{
		// Logged lines first (a new server key, dev mode), then the
		// listener fails.
		{"listen", map[string]string{"P2_LOG_FORMAT": "json", "P2_DEV": "1", "P2_DATABASE_URL": db, "P2_LISTEN": busy.Addr().String()},
			nil, 2, "P2_LISTEN"},
		{"flag", map[string]string{"P2_LISTEN": "nonsense"}, []string{"-log-format", "json"}, 0, "P2_LISTEN"},
		{"stats", map[string]string{"P2_LOG_FORMAT": "json"}, []string{"stats", "--database-url", "mysql://x"}, 0, "--database-url"},
	} {
		out, errOut, code := exe(c.env, c.args...)
		recs := testutil.JSONLines(t, c.name+": standard error", errOut)
		if code != 1 || out != "" || len(recs) < c.lines+1 {
			t.Errorf("%s: exit %d, stdout %q\nstderr:\n%s", c.name, code, out, errOut)
			continue
		}
		last := recs[len(recs)-1]
		if msg, _ := last["err"].(string); last["level"] != "ERROR" || last["msg"] != "p2http failed" || !strings.Contains(msg, c.names) {
			t.Errorf("%s: the last line is %v, want the error naming %s", c.name, last, c.names)
		}
	}
	// In the text format, as before.
	_, errOut, code := exe(map[string]string{"P2_LISTEN": "nonsense"})
	if code != 1 || !strings.HasPrefix(errOut, `p2http: configuration: P2_LISTEN: "nonsense" is not host:port`) {
		t.Errorf("text: exit %d, %q", code, errOut)
	}
}
