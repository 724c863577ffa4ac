// Package pgcluster runs a private PostgreSQL cluster for a test: initdb into
// a fresh directory, a server on a free loopback port with trust
// authentication, and Stop, Start, Kill, Pause and Resume so a test can take
// the database away (cleanly, as a crash, or frozen) and bring it back. It needs the PostgreSQL server binaries (Debian's
// postgresql package); a test that cannot have them fails, it is never
// skipped.
//
// initdb and postgres refuse to run as root: as root, every command runs as
// the postgres user through runuser, in a directory under /tmp that the
// package creates, hands to that user and removes at cleanup.
package pgcluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"
)

// EnvBinDir names an environment variable that may point at the directory
// holding initdb, pg_ctl and postgres; by default the newest
// /usr/lib/postgresql/VERSION/bin is used, then $PATH.
const EnvBinDir = "P2_TEST_PG_BINDIR"

// Bounds on the slow steps; every failure message carries the server log.
const (
	initdbTimeout = 60 * time.Second
	startTimeout  = 30 * time.Second
	stopTimeout   = 30 * time.Second
	// User is the superuser initdb creates; trust authentication lets it in
	// without a password from 127.0.0.1.
	User = "postgres"
)

// Cluster is a running (or stopped) private PostgreSQL cluster.
type Cluster struct {
	binDir  string
	dir     string // owned by the server's user; holds data/, the socket and the log
	dataDir string
	logFile string
	port    int
	runAs   string // "" when the current user runs the server itself

	mu     sync.Mutex // one pg_ctl at a time
	paused []int      // processes Pause stopped, for Resume
}

// Start creates a cluster in a fresh directory, starts it and waits until it
// accepts connections. The cluster is stopped and its directory removed at
// cleanup.
func Start(t testing.TB) *Cluster {
	t.Helper()
	binDir, err := findBinDir()
	if err != nil {
		t.Fatalf("pgcluster: %v", err)
	}
	c := &Cluster{binDir: binDir}

	var uid, gid = -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup(User)
		if err != nil {
			t.Fatalf("pgcluster: running as root, PostgreSQL must run as the %s user, which is missing: %v", User, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		c.runAs = User
		if _, err := exec.LookPath("runuser"); err != nil {
			t.Fatalf("pgcluster: running as root needs runuser to start PostgreSQL as %s: %v", User, err)
		}
	}

	// t.TempDir() (and $TMPDIR) may sit under a directory only root can
	// enter; /tmp is open to every user.
	parent := ""
	if c.runAs != "" {
		parent = "/tmp"
	}
	c.dir, err = os.MkdirTemp(parent, "pgcluster-")
	if err != nil {
		t.Fatalf("pgcluster: %v", err)
	}
	t.Cleanup(func() {
		c.cleanup(t)
		if err := os.RemoveAll(c.dir); err != nil {
			t.Errorf("pgcluster: remove %s: %v", c.dir, err)
		}
	})
	if err := os.Chmod(c.dir, 0o700); err != nil {
		t.Fatalf("pgcluster: %v", err)
	}
	if uid >= 0 {
		if err := os.Chown(c.dir, uid, gid); err != nil {
			t.Fatalf("pgcluster: hand %s to %s: %v", c.dir, User, err)
		}
	}
	c.dataDir = filepath.Join(c.dir, "data")
	c.logFile = filepath.Join(c.dir, "server.log")

	ctx, cancel := context.WithTimeout(context.Background(), initdbTimeout)
	defer cancel()
	if out, err := c.command(ctx, "initdb", "-D", c.dataDir, "-U", User, "-A", "trust",
		"-E", "UTF8", "--locale=C").CombinedOutput(); err != nil {
		t.Fatalf("pgcluster: initdb: %v\n%s", err, out)
	}

	// A free port may be taken by someone else before the server binds it:
	// then try another.
	for attempt := 1; ; attempt++ {
		c.port, err = freePort()
		if err != nil {
			t.Fatalf("pgcluster: find a free port: %v", err)
		}
		if err := c.writeConf(); err != nil {
			t.Fatalf("pgcluster: %v", err)
		}
		err = c.start()
		if err == nil {
			return c
		}
		log := c.Log()
		if attempt == 3 || !strings.Contains(log, "could not bind") && !strings.Contains(log, "could not create any TCP/IP sockets") {
			t.Fatalf("pgcluster: %v\n%s", err, log)
		}
		c.stop("immediate") // in case it half started
	}
}

// writeConf writes the cluster's settings into postgresql.auto.conf, which
// wins over postgresql.conf. The socket stays inside the private directory;
// fsync and synchronous_commit stay on, because tests check durability.
func (c *Cluster) writeConf() error {
	conf := fmt.Sprintf(`# Written by pgcluster.
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 100
shared_buffers = '32MB'
logging_collector = off
`, c.port, c.dir)
	auto := filepath.Join(c.dataDir, "postgresql.auto.conf")
	// Keep the file's owner (the server's user): truncate, do not recreate.
	f, err := os.OpenFile(auto, os.O_TRUNC|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(conf)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("write %s: %w", auto, werr)
	}
	return nil
}

// Port returns the TCP port the cluster listens on (127.0.0.1), the same
// across restarts.
func (c *Cluster) Port() int { return c.port }

// Dir returns the cluster's private directory (data/, socket, server.log).
func (c *Cluster) Dir() string { return c.dir }

// URL returns the URL of database db (for example "postgres") as the
// superuser, without TLS, with a 2 s connect timeout.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable&connect_timeout=2", User, c.port, db)
}

// CreateDB creates database name in the running cluster and returns its URL.
func (c *Cluster) CreateDB(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	db, err := sql.Open("postgres", c.URL("postgres"))
	if err != nil {
		t.Fatalf("pgcluster: %v", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		t.Fatalf("pgcluster: create database %s: %v\n%s", name, err, c.Log())
	}
	return c.URL(name)
}

// Log returns the server log so far (the last 8 KiB).
func (c *Cluster) Log() string {
	b, err := os.ReadFile(c.logFile)
	if err != nil {
		return "(no server log: " + err.Error() + ")"
	}
	if len(b) > 8192 {
		b = append([]byte("…"), b[len(b)-8192:]...)
	}
	return "--- server log ---\n" + string(b)
}

// Start starts the cluster again on the same data directory and port, and
// waits until it accepts connections.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	if err := c.start(); err != nil {
		t.Fatalf("pgcluster: %v\n%s", err, c.Log())
	}
}

func (c *Cluster) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout+5*time.Second)
	defer cancel()
	secs := strconv.Itoa(int(startTimeout / time.Second))
	if out, err := c.command(ctx, "pg_ctl", "-D", c.dataDir, "-l", c.logFile, "-w", "-t", secs, "start").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl start: %v\n%s", err, out)
	}
	if err := c.waitAccepting(ctx); err != nil {
		return fmt.Errorf("the server does not accept connections on port %d: %v", c.port, err)
	}
	return nil
}

// Stop shuts the cluster down cleanly (fast mode: open sessions are ended,
// committed work is checkpointed) and waits until it is down.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if err := c.stop("fast"); err != nil {
		t.Fatalf("pgcluster: %v\n%s", err, c.Log())
	}
}

// Kill stops the cluster at once, as a crash would (immediate mode: no
// checkpoint; the next Start recovers from the WAL).
func (c *Cluster) Kill(t testing.TB) {
	t.Helper()
	if err := c.stop("immediate"); err != nil {
		t.Fatalf("pgcluster: %v\n%s", err, c.Log())
	}
}

func (c *Cluster) stop(mode string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.resume(); err != nil { // a paused server would not hear pg_ctl
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout+5*time.Second)
	defer cancel()
	secs := strconv.Itoa(int(stopTimeout / time.Second))
	out, err := c.command(ctx, "pg_ctl", "-D", c.dataDir, "-m", mode, "-w", "-t", secs, "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
	return nil
}

// Pause freezes the running server: the postmaster and every process it
// started get SIGSTOP. Connections stay open and new ones complete their TCP
// handshake, but nothing answers, as with a hung server or a network
// partition that drops packets. Resume undoes it.
func (c *Cluster) Pause(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused != nil {
		t.Fatal("pgcluster: Pause: already paused")
	}
	pid, err := c.postmasterPID()
	if err != nil {
		t.Fatalf("pgcluster: Pause: %v", err)
	}
	// The postmaster first, so that it starts no process after the list is
	// taken.
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("pgcluster: Pause: stop the postmaster %d: %v", pid, err)
	}
	c.paused = []int{pid}
	children, err := childrenOf(pid)
	if err != nil {
		t.Fatalf("pgcluster: Pause: %v", err)
	}
	for _, p := range children {
		if syscall.Kill(p, syscall.SIGSTOP) == nil {
			c.paused = append(c.paused, p)
		}
	}
}

// Resume lets a paused server run again.
func (c *Cluster) Resume(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.resume(); err != nil {
		t.Fatalf("pgcluster: Resume: %v", err)
	}
}

// resume continues the paused processes, children first; c.mu is held.
func (c *Cluster) resume() error {
	if c.paused == nil {
		return nil
	}
	var errs []error
	for i := len(c.paused) - 1; i >= 0; i-- {
		if err := syscall.Kill(c.paused[i], syscall.SIGCONT); err != nil && err != syscall.ESRCH {
			errs = append(errs, fmt.Errorf("continue %d: %w", c.paused[i], err))
		}
	}
	c.paused = nil
	return errors.Join(errs...)
}

// postmasterPID reads the first line of postmaster.pid.
func (c *Cluster) postmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(c.dataDir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("the server is not running: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("postmaster.pid holds no process id: %q", line)
	}
	return pid, nil
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var kids []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) >= 2 && f[1] == strconv.Itoa(pid) {
			kids = append(kids, p)
		}
	}
	return kids, nil
}

// cleanup stops a cluster still running, at once, whatever the test did.
func (c *Cluster) cleanup(t testing.TB) {
	if c.dataDir == "" {
		return
	}
	if _, err := os.Stat(filepath.Join(c.dataDir, "postmaster.pid")); err != nil {
		return // never started, or stopped
	}
	if err := c.stop("immediate"); err != nil {
		t.Errorf("pgcluster: cleanup: %v\n%s", err, c.Log())
	}
}

// waitAccepting polls until a session can run a query.
func (c *Cluster) waitAccepting(ctx context.Context) error {
	db, err := sql.Open("postgres", c.URL("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	var last error
	for {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		var one int
		last = db.QueryRowContext(qctx, "SELECT 1").Scan(&one)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// command prepares one of the server's programs, run as the postgres user
// when the test runs as root. Its environment holds no PG* variables of the
// caller's, so it talks to this cluster only.
func (c *Cluster) command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	path := filepath.Join(c.binDir, prog)
	var cmd *exec.Cmd
	if c.runAs != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", c.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = c.dir
	env := []string{"LC_ALL=C", "LANG=C", "HOME=" + c.dir, "TZ=UTC"}
	if p := os.Getenv("PATH"); p != "" {
		env = append(env, "PATH="+p)
	}
	cmd.Env = env
	// pg_ctl start leaves the server running with its output in the log
	// file; should it keep our pipes, do not wait for them forever.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// findBinDir returns the directory holding initdb, pg_ctl and postgres.
func findBinDir() (string, error) {
	has := func(dir string) bool {
		for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
			if st, err := os.Stat(filepath.Join(dir, p)); err != nil || st.IsDir() {
				return false
			}
		}
		return true
	}
	if d := os.Getenv(EnvBinDir); d != "" {
		if !has(d) {
			return "", fmt.Errorf("$%s=%s does not hold initdb, pg_ctl and postgres", EnvBinDir, d)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first (numerically: 9.6 < 15 < 16).
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, pg_ctl, postgres) in /usr/lib/postgresql/*/bin or $PATH; " +
		"install them (apt-get install postgresql) or set $" + EnvBinDir)
}

// versionOf reads VERSION from /usr/lib/postgresql/VERSION/bin as a number.
func versionOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// freePort asks the kernel for a free port on 127.0.0.1. Another process
// could take it before the server binds it: the first Start then tries
// another; a restart on the same port fails with "could not bind" in the
// server log.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// String describes the cluster for messages.
func (c *Cluster) String() string {
	return "PostgreSQL (" + c.binDir + ") on 127.0.0.1:" + strconv.Itoa(c.port) + " in " + c.dir
}
