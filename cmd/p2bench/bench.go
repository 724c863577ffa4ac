package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/p2http/p2http/internal/benchfake"
	"github.com/p2http/p2http/keyring"
)

// benchKey is the server key (P2_SECRET_KEY) of every p2http the benchmark
// starts; the generator derives the secrets of seeded registrations from it.
const benchKey = "p2bench-server-key-not-a-secret-0123456789"

// The XMPP addresses of the benchmark.
const (
	pushJID    = "push.example.org" // p2xmpp's component, and P2_JID
	loadJID    = "load.example.org" // the load component, the "XMPP server" that publishes
	httpDomain = "example.org"      // the sending domain of HTTP pushes
)

// tokenSpace bounds the seeded registrations whose FCM messages the fake
// counts one by one.
const tokenSpace = 1_100_000

// bench is one run of p2bench: its configuration, the programs and fakes it
// shares between scenarios, and the results gathered so far.
type bench struct {
	cfg      *config
	dir      string
	cpus     int
	loadCPUs string // the load side's CPUs ("" = not pinned)
	sutCPUs  string // p2http's and p2xmpp's CPUs
	bins     struct{ p2http, p2xmpp string }
	fcm      *benchfake.FCM
	caFile   string
	credFile string
	pg       *pgAdmin
	keys     *keyring.Keyring
	started  time.Time
	// commit is the working tree's commit when the run started (binaries
	// are built before it): editing files during a long run does not
	// change what was measured.
	commit  string
	loadAvg [2]string // before and after

	// pushPeak is p2http's throughput in push_http_0ms, once measured.
	pushPeak float64

	rows    []row
	targets []target
	notes   []string
}

func newBench(ctx context.Context, cfg *config, cpus int, loadCPUs, sutCPUs string) (*bench, error) {
	b := &bench{cfg: cfg, cpus: cpus, loadCPUs: loadCPUs, sutCPUs: sutCPUs, started: time.Now(), commit: gitCommit(ctx)}
	b.loadAvg[0] = loadAverage()
	if l := loadOne(b.loadAvg[0]); l > float64(cpus)/2 {
		b.note("the machine was busy when the run started (load average %s on %d cores): absolute figures suffer; "+
			"the ratios, measured side by side in alternating rounds, suffer less", b.loadAvg[0], cpus)
	}
	var err error
	if b.dir, err = workDir(); err != nil {
		return nil, err
	}
	fail := func(err error) (*bench, error) {
		b.close()
		return nil, err
	}
	if b.keys, err = keyring.New(benchKey); err != nil {
		return fail(err)
	}
	if err := b.buildBinaries(ctx); err != nil {
		return fail(err)
	}
	if b.fcm, err = benchfake.NewFCM(tokenSpace); err != nil {
		return fail(err)
	}
	b.caFile = filepath.Join(b.dir, "fcm-ca.pem")
	b.credFile = filepath.Join(b.dir, "fcm-credentials.json")
	if err := os.WriteFile(b.caFile, b.fcm.CACertPEM(), 0o644); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(b.credFile, b.fcm.Credentials, 0o600); err != nil {
		return fail(err)
	}
	if b.pg, err = newPGAdmin(ctx, cfg.postgres); err != nil {
		return fail(err)
	}
	if cfg.profileDir != "" {
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			return fail(err)
		}
	}
	return b, nil
}

// close stops the fake and removes the working directory.
func (b *bench) close() {
	if b.fcm != nil {
		b.fcm.Close()
	}
	if b.pg != nil {
		b.pg.close()
	}
	if b.dir != "" && !b.cfg.keep {
		os.RemoveAll(b.dir)
	} else if b.dir != "" {
		fmt.Fprintln(os.Stderr, "p2bench: kept", b.dir)
	}
}

// pprofOverlay is added to package main of p2http and p2xmpp when profiling:
// a pprof listener on $P2BENCH_PPROF. The repository's files are left alone
// (go build -overlay).
const pprofOverlay = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("P2BENCH_PPROF"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
}
`

// buildBinaries builds p2http and p2xmpp into the working directory unless
// given, and always when profiling (with the pprof overlay).
func (b *bench) buildBinaries(ctx context.Context) error {
	b.bins.p2http, b.bins.p2xmpp = b.cfg.p2http, b.cfg.p2xmpp
	profiling := b.cfg.profileDir != ""
	if b.bins.p2http != "" && b.bins.p2xmpp != "" && !profiling {
		return nil
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	var overlay string
	if profiling {
		src := filepath.Join(b.dir, "pprof_overlay.go")
		if err := os.WriteFile(src, []byte(pprofOverlay), 0o644); err != nil {
			return err
		}
		overlay = filepath.Join(b.dir, "overlay.json")
		js := fmt.Sprintf(`{"Replace":{%q:%q,%q:%q}}`,
			filepath.Join(root, "cmd/p2http/zz_p2bench_pprof.go"), src,
			filepath.Join(root, "cmd/p2xmpp/zz_p2bench_pprof.go"), src)
		if err := os.WriteFile(overlay, []byte(js), 0o644); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		bin *string
		pkg string
	}{{&b.bins.p2http, "./cmd/p2http"}, {&b.bins.p2xmpp, "./cmd/p2xmpp"}} {
		if *t.bin != "" && !profiling {
			continue
		}
		out := filepath.Join(b.dir, filepath.Base(t.pkg))
		args := []string{"build", "-o", out}
		if overlay != "" {
			args = append(args, "-overlay", overlay)
		}
		cmd := exec.CommandContext(ctx, "go", append(args, t.pkg)...)
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", t.pkg, err, msg)
		}
		*t.bin = out
	}
	return nil
}

// moduleRoot is the directory of the p2http module.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run p2bench inside the p2http module, or give -p2http and -p2xmpp")
	}
	return filepath.Dir(gomod), nil
}

// sut is a running p2http.
type sut struct {
	*proc
	base  string // http://127.0.0.1:PORT
	pprof string // the pprof listener's address when profiling
}

// p2httpOptions are what differs between the p2http instances.
type p2httpOptions struct {
	label    string // names the log file and profiles
	database string // P2_DATABASE_URL; unused when stateless
	coalesce time.Duration
	// stateless runs p2http with P2_MODE=stateless: no database.
	stateless bool
}

// startP2HTTP starts p2http pinned to the system-under-test CPUs and waits
// until it is ready. Rate limits are set to a million per second: the
// limiter code runs as in production but never refuses.
func (b *bench) startP2HTTP(ctx context.Context, o p2httpOptions) (*sut, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	const high = "1000000:1000000"
	env := map[string]string{
		"P2_LISTEN": addr, "P2_DATABASE_URL": o.database, "P2_SECRET_KEY": benchKey, "P2_JID": pushJID,
		"P2_FCM_CREDENTIALS": b.credFile, "P2_FCM_ENDPOINT": b.fcm.Endpoint(), "SSL_CERT_FILE": b.caFile,
		"P2_COALESCE_WINDOW": o.coalesce.String(), "P2_LOG_FORMAT": "json",
		"P2_LIMIT_PUSH_DOMAIN": high, "P2_LIMIT_REGISTER_DOMAIN": high, "P2_LIMIT_API_TOKEN": high, "P2_LIMIT_PUSH_FAILED": high,
	}
	if n := b.sutCPUCount(); n > 0 {
		env["GOMAXPROCS"] = strconv.Itoa(n)
	}
	if o.stateless {
		delete(env, "P2_DATABASE_URL")
		env["P2_MODE"] = "stateless"
	}
	maps.Copy(env, b.cfg.env)
	s := &sut{base: "http://" + addr}
	if b.cfg.profileDir != "" {
		if s.pprof, err = freeAddr(); err != nil {
			return nil, err
		}
		env["P2BENCH_PPROF"] = s.pprof
	}
	s.proc, err = startProc("p2http", b.bins.p2http, nil, env, b.sutCPUs, filepath.Join(b.dir, "p2http-"+o.label+".log"))
	if err != nil {
		return nil, err
	}
	if err := s.waitHTTP(ctx, s.base+"/readyz", 60*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// sutCPUCount is the number of CPUs p2http and p2xmpp are pinned to; 0
// when not pinned.
func (b *bench) sutCPUCount() int {
	if b.sutCPUs == "" {
		return 0
	}
	return b.cpus - b.cpus/2
}

// profile starts a CPU profile of a measured run when profiling; wait for
// the returned function before stopping the process.
func (b *bench) profile(pprofAddr, name string) func() {
	if b.cfg.profileDir == "" || pprofAddr == "" {
		return func() {}
	}
	path := filepath.Join(b.cfg.profileDir, name+".cpu.pprof")
	errc := profileCPU(pprofAddr, b.cfg.warmup+b.cfg.duration, path)
	return func() {
		if err := <-errc; err != nil {
			b.note("profile %s: %v", name, err)
		}
	}
}

// memoryProfiles saves heap and goroutine profiles of s when profiling.
func (b *bench) memoryProfiles(s *sut, name string) {
	if b.cfg.profileDir == "" || s.pprof == "" {
		return
	}
	for _, kind := range []string{"heap", "goroutine"} {
		if err := profileSnapshot(s.pprof, kind, filepath.Join(b.cfg.profileDir, name+"."+kind+".pprof")); err != nil {
			b.note("%s profile %s: %v", kind, name, err)
		}
	}
}

// sideBySide runs a ceiling and the path measured against it alternately,
// -rounds times, and merges each side's samples: on a shared, noisy machine
// both then see the same disturbances. The rounds' own throughputs and p99s
// go to the notes, so that a reader sees how far the machine's noise moves
// each side.
func (b *bench) sideBySide(name string, ceiling, measured func(round int) stats) (c, m stats) {
	var rounds [2][]stats
	for r := 1; r <= b.cfg.rounds; r++ {
		progress("%s: ceiling, round %d", name, r)
		run := ceiling(r)
		b.trace(fmt.Sprintf("%s-ceiling-r%d", name, r), run)
		c = c.add(run)
		rounds[0] = append(rounds[0], run)
		progress("%s: measured, round %d", name, r)
		run = measured(r)
		b.trace(fmt.Sprintf("%s-measured-r%d", name, r), run)
		m = m.add(run)
		rounds[1] = append(rounds[1], run)
	}
	b.note("%s round by round, first side (ceiling or baseline) / second side: ops/s %s / %s; p99 ms %s / %s",
		name, perRound(rounds[0], throughputOf), perRound(rounds[1], throughputOf),
		perRound(rounds[0], p99Of), perRound(rounds[1], p99Of))
	return c, m
}

// perRound formats one figure of each run, in order.
func perRound(runs []stats, figure func(stats) string) string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = figure(r)
	}
	return strings.Join(out, " ")
}

func throughputOf(s stats) string { return fmt.Sprintf("%.0f", s.Throughput()) }
func p99Of(s stats) string        { return fmt.Sprintf("%.2f", ms64(s.Quantile(0.99))) }

// trace writes the requests of one run, in the order they started, to
// name.tsv in -trace's directory: when each started (ms from the run's
// start, warm-up included) and its latency (ms). Slow requests that bunch
// together in time point at a stall of the whole path (a collector cycle,
// a database write), spread-out ones at queueing.
func (b *bench) trace(name string, s stats) {
	if b.cfg.traceDir == "" {
		return
	}
	var buf bytes.Buffer
	buf.WriteString("start_ms\tlatency_ms\n")
	for _, x := range s.Samples {
		fmt.Fprintf(&buf, "%.3f\t%.3f\n", ms64(x.At), ms64(x.Lat))
	}
	if err := os.MkdirAll(b.cfg.traceDir, 0o755); err != nil {
		b.note("trace %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.cfg.traceDir, name+".tsv"), buf.Bytes(), 0o644); err != nil {
		b.note("trace %s: %v", name, err)
	}
}

// note records a remark for the results.
func (b *bench) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, "p2bench:", msg)
	b.notes = append(b.notes, msg)
}

// progress tells what is running.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "p2bench: %s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// run runs the scenarios, prints the table and the target lines, writes the
// results file when asked, and reports whether anything failed to run.
func (b *bench) run(ctx context.Context, selected []scenario) (failed bool) {
	for _, s := range selected {
		if ctx.Err() != nil {
			break
		}
		progress("scenario %s", s.name)
		began := time.Now()
		if err := s.run(b, ctx); err != nil {
			b.note("scenario %s failed: %v", s.name, err)
			failed = true
			for _, t := range s.targets {
				if !b.hasTarget(t) {
					b.targets = append(b.targets, target{Name: t, Failed: true})
				}
			}
		}
		progress("scenario %s took %v", s.name, time.Since(began).Round(time.Second))
	}
	b.loadAvg[1] = loadAverage()
	fmt.Println()
	fmt.Print(b.table())
	fmt.Println()
	for _, t := range b.targets {
		fmt.Println(t.line())
	}
	if b.cfg.results != "" {
		if err := b.writeResults(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "p2bench: writing results:", err)
			failed = true
		}
	}
	return failed || ctx.Err() != nil
}

func (b *bench) hasTarget(name string) bool {
	for _, t := range b.targets {
		if t.Name == name {
			return true
		}
	}
	return false
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// loadOne is the one-minute load average of a loadAverage string.
func loadOne(avg string) float64 {
	f, _ := strconv.ParseFloat(strings.Fields(avg + " ?")[0], 64)
	return f
}

// goVersion is the Go release p2bench was built with.
func goVersion() string { return runtime.Version() }
