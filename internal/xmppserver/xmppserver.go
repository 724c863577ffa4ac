// Package xmppserver starts real, private Prosody and ejabberd instances for
// end-to-end tests.
//
// Every instance gets its own directory (configuration, data, logs, pid file)
// under os.TempDir()/p2http-xmppserver, free loopback ports chosen when it is
// created, and (for ejabberd) a unique Erlang node name that talks to its
// tools over a fixed distribution port instead of epmd, so instances of
// several test binaries can run at once. Everything is stopped and removed by
// t.Cleanup, also when the test fails. Instances left behind by a test binary
// that was killed are reaped by the next call to StartProsody or
// StartEjabberd.
//
// A typical test:
//
//	srv := xmppserver.StartProsody(t, xmppserver.Options{
//		Domain:          "example.org",
//		Component:       "push.example.org",
//		ComponentSecret: "s3cret",
//		PushMaxErrors:   1,
//	})
//	srv.Register(t, "alice", "password")
//	// dial srv.C2SAddr as a client and srv.ComponentAddr as a component …
//	srv.Stop(t)
//	srv.Start(t) // same data, same ports
//
// The servers need root (Prosody runs with run_as_root; ejabberd runs as the
// ejabberd system user) and Debian's packages, which EnsureInstalled installs
// when they are missing, through scripts/xmpp-servers.sh (which also switches
// between the generations the tests run on: Debian 12's Prosody 0.12 and
// ejabberd 23.01, or Prosody 13 and ejabberd 24.12 from its backports). Prosody starts in about 0.1 s; ejabberd in 2 to 4 s, and each
// ejabberdctl call (Register) boots an Erlang VM, about 1 to 2 s.
//
// Set XMPPSERVER_KEEP=1 to keep the instance directories after the tests.
package xmppserver

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Kind names an XMPP server implementation.
type Kind string

// The supported servers.
const (
	Prosody  Kind = "prosody"
	Ejabberd Kind = "ejabberd"
)

// Default option values.
const (
	DefaultDomain        = "example.org"
	DefaultPushMaxErrors = 16
	DefaultStartTimeout  = 20 * time.Second
)

// Options configures a server instance. The zero value is usable.
type Options struct {
	// Domain is the server's virtual host (default DefaultDomain).
	Domain string
	// ExtraDomains are further virtual hosts, configured as Domain is, for
	// tests with users on two domains of one server (a second domain
	// publishing to the same component). Register and Dial reach their
	// users as "user@domain".
	ExtraDomains []string
	// Component is the domain of the XEP-0114 component the server accepts
	// (default "push." + Domain).
	Component string
	// ComponentSecret is the component's shared secret (default: random).
	ComponentSecret string
	// PushMaxErrors is Prosody's push_max_errors: after that many consecutive
	// non-"wait" error replies mod_cloud_notify deletes a push registration
	// (default DefaultPushMaxErrors). ejabberd's mod_push has no such setting:
	// it deletes a registration at the first non-"wait" error.
	PushMaxErrors int
	// StartTimeout bounds how long Start waits for the c2s and component
	// ports to accept connections (default DefaultStartTimeout).
	StartTimeout time.Duration
	// Debug raises ejabberd's log level to debug, which logs every stanza.
	// Prosody always logs at debug level.
	Debug bool
	// ExtraPluginPaths are directories Prosody searches for modules
	// (plugin_paths) before its own plugin directory. Prosody only.
	ExtraPluginPaths []string
	// ExtraModules are module names without "mod_" that every virtual host
	// loads: appended to Prosody's global modules_enabled, or added to
	// ejabberd's modules with no options (such as "adhoc", which both
	// servers' default configurations load and the tests' do not).
	ExtraModules []string
	// ExtraHostConfig is Lua configuration text appended to the virtual
	// host's section, after push_max_errors, for example
	// `p2http_push_url = "http://127.0.0.1:8080"`. Prosody only.
	ExtraHostConfig string
	// ModPush are options of ejabberd's mod_push, as YAML scalars, for
	// example {"notify_on": "messages"}; EjabberdModPushHas tells whether the
	// installed ejabberd knows an option. ejabberd only.
	ModPush map[string]string
}

func (o Options) withDefaults() Options {
	if o.Domain == "" {
		o.Domain = DefaultDomain
	}
	if o.Component == "" {
		o.Component = "push." + o.Domain
	}
	if o.ComponentSecret == "" {
		o.ComponentSecret = randomHex(12)
	}
	if o.PushMaxErrors <= 0 {
		o.PushMaxErrors = DefaultPushMaxErrors
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	return o
}

// Server is a private Prosody or ejabberd instance.
// Its exported fields are fixed for the life of the instance, across Stop and
// Start. Its methods are safe for concurrent use.
type Server struct {
	// Kind tells which server this is.
	Kind Kind
	// Domain is the server's virtual host; Options.ExtraDomains lists the
	// others.
	Domain string
	// Component is the JID (a domain) of the XEP-0114 component it accepts.
	Component string
	// ComponentSecret is the component's shared secret.
	ComponentSecret string
	// C2SAddr is "127.0.0.1:PORT" of the client listener: plain TCP, no TLS
	// offered or required, SASL PLAIN allowed.
	C2SAddr string
	// ComponentAddr is "127.0.0.1:PORT" of the XEP-0114 component listener.
	ComponentAddr string
	// Dir holds the instance's configuration, data and logs.
	Dir string
	// Version is the installed Debian package's version, such as
	// "0.12.3-1+deb12u1" or "24.12-3~bpo12+1".
	Version string

	opts   Options
	flavor flavor
	ports  map[string]int

	mu       sync.Mutex
	proc     *process
	startDur time.Duration
}

// flavor is what differs between the servers.
type flavor interface {
	// ports names the listening ports the server needs ("c2s" and
	// "component" at least).
	portNames() []string
	// setup writes the configuration into s.Dir; called once.
	setup(s *Server) error
	// command returns the foreground server command.
	command(s *Server) *exec.Cmd
	// started reports the PID to send SIGTERM to for a clean stop, once the
	// server is fully started (0 while it is not).
	started(s *Server, p *process) int
	// registerCommand returns the command creating the account
	// user@domain.
	registerCommand(s *Server, user, domain, password string) *exec.Cmd
	// logFile is the server's main log file.
	logFile(s *Server) string
}

type process struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
	err     error         // cmd.Wait's result, set before done is closed
	termPID int           // the process to send SIGTERM to
}

// StartProsody starts a private Prosody instance (0.12 with mod_cloud_notify
// from prosody-modules, or 13 with its own) and stops it at t.Cleanup.
func StartProsody(t testing.TB, opts Options) *Server {
	t.Helper()
	return start(t, Prosody, prosodyFlavor{}, opts)
}

// StartEjabberd starts a private ejabberd instance (with mod_push) and stops
// it at t.Cleanup.
func StartEjabberd(t testing.TB, opts Options) *Server {
	t.Helper()
	return start(t, Ejabberd, ejabberdFlavor{}, opts)
}

// NewEjabberd configures a private ejabberd instance as StartEjabberd does,
// without starting it: for a test that expects Start to fail (TryStart).
func NewEjabberd(t testing.TB, opts Options) *Server {
	t.Helper()
	return create(t, Ejabberd, ejabberdFlavor{}, opts)
}

func start(t testing.TB, kind Kind, f flavor, opts Options) *Server {
	t.Helper()
	s := create(t, kind, f, opts)
	s.Start(t)
	return s
}

// create configures an instance that is stopped at t.Cleanup if it runs.
func create(t testing.TB, kind Kind, f flavor, opts Options) *Server {
	t.Helper()
	EnsureInstalled(t, kind)
	reapStale()
	opts = opts.withDefaults()

	dir, err := newInstanceDir(string(kind))
	if err != nil {
		t.Fatalf("xmppserver: %v", err)
	}
	s := &Server{
		Kind:            kind,
		Domain:          opts.Domain,
		Component:       opts.Component,
		ComponentSecret: opts.ComponentSecret,
		Dir:             dir,
		Version:         version(string(kind)),
		opts:            opts,
		flavor:          f,
	}
	t.Cleanup(func() {
		if err := s.stopFor(t); err != nil {
			t.Errorf("xmppserver: stopping %s: %v", s, err)
		}
		if t.Failed() {
			t.Logf("xmppserver: this test failed against %s; its log tail (%s):\n%s", s, s.Dir, s.logTail(80))
		}
		if os.Getenv("XMPPSERVER_KEEP") == "" {
			_ = os.RemoveAll(s.Dir)
		}
	})

	names := f.portNames()
	ports, err := freePorts(len(names))
	if err != nil {
		t.Fatalf("xmppserver: %v", err)
	}
	s.ports = make(map[string]int, len(names))
	for i, n := range names {
		s.ports[n] = ports[i]
	}
	s.C2SAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.ports["c2s"]))
	s.ComponentAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.ports["component"]))

	if err := f.setup(s); err != nil {
		t.Fatalf("xmppserver: configuring %s: %v", s, err)
	}
	return s
}

// String names the server and its version, as "Prosody 13.0.1-1~bpo12+1" or
// "ejabberd 23.01-1",
// for test failures.
func (s *Server) String() string {
	name := string(s.Kind)
	if s.Kind == Prosody {
		name = "Prosody"
	}
	if s.Version == "" {
		return name + " (version unknown)"
	}
	return name + " " + s.Version
}

// Start starts the server (again) with the same configuration, data and
// ports, and waits until the c2s and component ports accept connections.
// It fails the test if the server does not come up within
// Options.StartTimeout. Starting a running server is an error.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if err := s.TryStart(); err != nil {
		t.Fatalf("xmppserver: %v", err)
	}
}

// TryStart is Start that returns its failure, with the tail of the server's
// log, instead of failing the test.
func (s *Server) TryStart() error {
	if err := s.start(); err != nil {
		return fmt.Errorf("starting %s: %w\n--- log tail (%s) ---\n%s", s, err, s.Dir, s.logTail(60))
	}
	return nil
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("already running")
	}
	console, err := os.OpenFile(filepath.Join(s.Dir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer console.Close()

	cmd := s.flavor.command(s)
	cmd.Stdout = console
	cmd.Stderr = console
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// A process group of its own lets stop kill everything the server
	// started; Pdeathsig stops a directly started server when the test binary
	// dies (reapStale handles the rest).
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM

	began := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.proc = p

	deadline := time.Now().Add(s.opts.StartTimeout)
	for {
		select {
		case <-p.done:
			s.proc = nil
			return fmt.Errorf("server exited during start: %v", p.err)
		default:
		}
		if p.termPID == 0 {
			p.termPID = s.flavor.started(s, p)
		}
		if p.termPID != 0 && accepts(s.C2SAddr) && accepts(s.ComponentAddr) {
			s.startDur = time.Since(began)
			return nil
		}
		if time.Now().After(deadline) {
			_ = s.kill(p)
			s.proc = nil
			return fmt.Errorf("not ready after %v (c2s %s, component %s)", s.opts.StartTimeout, s.C2SAddr, s.ComponentAddr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartDuration is how long the last successful Start took until both ports
// accepted connections.
func (s *Server) StartDuration() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startDur
}

// Stop stops the server cleanly (SIGTERM, then SIGKILL after 20 s, or 3 s
// after Prosody logged the end of its shutdown) and waits until its
// processes have exited. Its data stays for the next Start.
// Stopping a stopped server does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stopFor(t); err != nil {
		t.Fatalf("xmppserver: stopping %s: %v", s, err)
	}
}

// stopFor stops the server for t: a Prosody killed after it completed its
// shutdown (errHungAfterShutdown) is logged to t, not returned.
func (s *Server) stopFor(t testing.TB) error {
	err := s.stop()
	if errors.Is(err, errHungAfterShutdown) {
		t.Logf("xmppserver: stopping %s: %v", s, err)
		return nil
	}
	return err
}

func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	pid := p.termPID
	if pid == 0 {
		pid = p.cmd.Process.Pid
	}
	shutdowns := s.prosodyShutdowns()
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.After(20 * time.Second)
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	var shutDown time.Time
	for {
		select {
		case <-p.done:
			return nil
		case <-deadline:
			if err := s.kill(p); err != nil {
				return err
			}
			return errors.New("did not stop within 20 s of SIGTERM; killed")
		case now := <-poll.C:
			// Prosody 0.12.3 can fail in its event loop after it logged
			// "Shutdown complete" (util/indexedbheap.lua: "table index is
			// nil", closing a component connection that is being read)
			// and then never exits. Its shutdown is done by then.
			if s.prosodyShutdowns() <= shutdowns {
				continue
			}
			if shutDown.IsZero() {
				shutDown = now
			} else if now.Sub(shutDown) > 3*time.Second {
				if err := s.kill(p); err != nil {
					return err
				}
				return errHungAfterShutdown
			}
		}
	}
}

// errHungAfterShutdown is the error of a stop that had to kill Prosody
// after it logged the end of its shutdown (see stop): the shutdown itself
// completed, and the tests do not count it as a failure.
var errHungAfterShutdown = errors.New("prosody completed its shutdown but did not exit; killed")

// prosodyShutdowns counts the shutdowns Prosody logged as complete (0 for
// ejabberd).
func (s *Server) prosodyShutdowns() int {
	if s.Kind != Prosody {
		return 0
	}
	return strings.Count(s.Logs(), "\tinfo\tShutdown complete")
}

// kill kills the server's process group and waits for the direct child.
func (s *Server) kill(p *process) error {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	if p.termPID != 0 {
		_ = syscall.Kill(p.termPID, syscall.SIGKILL)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("server process did not exit after SIGKILL")
	}
}

// Running reports whether the server has been started and not stopped.
// A server that crashed on its own still counts as running until Stop.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// Register creates the account user@Domain with the given password, using
// prosodyctl or ejabberdctl; user may also be "name@domain" for a domain of
// Options.ExtraDomains. The server must be running (Prosody's tool also
// works while it is stopped).
func (s *Server) Register(t testing.TB, user, password string) {
	t.Helper()
	name, domain := s.split(user)
	cmd := s.flavor.registerCommand(s, name, domain, password)
	out, err := runTimeout(cmd, 30*time.Second)
	if err != nil {
		t.Fatalf("xmppserver: registering %s@%s on %s: %v\n%s", name, domain, s, err, out)
	}
}

// split reads a user of Register or Dial: "name" on Domain, or
// "name@domain".
func (s *Server) split(user string) (name, domain string) {
	if name, domain, ok := strings.Cut(user, "@"); ok {
		return name, domain
	}
	return user, s.Domain
}

// Logs returns the server's log so far (across restarts).
func (s *Server) Logs() string {
	b, err := os.ReadFile(s.flavor.logFile(s))
	if err != nil {
		return ""
	}
	return string(b)
}

// logTail returns the last n lines of the log and of the console output.
func (s *Server) logTail(n int) string {
	var b strings.Builder
	b.WriteString(tail(s.Logs(), n))
	if c, err := os.ReadFile(filepath.Join(s.Dir, "console.log")); err == nil && len(bytes.TrimSpace(c)) > 0 {
		b.WriteString("\n--- console ---\n")
		b.WriteString(tail(string(c), n/2))
	}
	return b.String()
}

func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

func runTimeout(cmd *exec.Cmd, d time.Duration) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return out.Bytes(), fmt.Errorf("timed out after %v", d)
	}
}

func accepts(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("choosing a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// baseDir holds one directory per instance.
func baseDir() string { return filepath.Join(os.TempDir(), "p2http-xmppserver") }

// ownerFile, in each instance directory, names the process that owns the
// instance: "PID STARTTIME" (STARTTIME from /proc/PID/stat, so that a reused
// PID is not mistaken for the owner).
const ownerFile = "owner"

func newInstanceDir(kind string) (string, error) {
	base := baseDir()
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	// Other users (ejabberd) must be able to traverse it.
	if err := os.Chmod(base, 0o755); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(base, kind+"-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	self := os.Getpid()
	owner := fmt.Sprintf("%d %s\n", self, procStartTime(self))
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

// reapStale kills the servers of instances whose owning test binary is gone
// (killed before its cleanups ran) and removes their directories.
func reapStale() {
	entries, err := os.ReadDir(baseDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(baseDir(), e.Name())
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			// Being created right now, or junk: reap junk after a while.
			if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < time.Minute {
				continue
			}
		} else if ownerAlive(string(b)) {
			continue
		}
		killProcessesMentioning(dir)
		_ = os.RemoveAll(dir)
	}
}

func ownerAlive(owner string) bool {
	f := strings.Fields(owner)
	if len(f) != 2 {
		return false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return false
	}
	st := procStartTime(pid)
	return st != "" && st == f[1]
}

// procStartTime returns field 22 of /proc/PID/stat, or "" if there is no
// such process.
func procStartTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// killProcessesMentioning SIGKILLs every process whose command line
// contains dir (the server and the wrappers started for it).
func killProcessesMentioning(dir string) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(dir+"/")) || bytes.Contains(b, append([]byte(dir), 0)) || bytes.Contains(b, []byte(dir+"\"")) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// readPID reads a PID file; 0 if absent or invalid.
func readPID(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
