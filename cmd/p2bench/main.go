// Command p2bench is p2http's load benchmark: it measures p2http (and
// p2xmpp, behind a real Prosody) against a fake FCM, next to the ceiling of
// the same machine measured in the same run, and checks the targets of
// issue 5. `make bench` runs it; bench/README.md explains the scenarios and
// how to run one of them.
//
// It starts everything itself on loopback: p2http and p2xmpp as separate
// processes (built with go build unless given), a private Prosody, a fake
// FCM speaking HTTP/2 over TLS (internal/benchfake), and fresh PostgreSQL
// databases and SQLite files that it removes afterwards. On a machine with
// two cores or more it pins itself (the load side: generator, fake FCM,
// XMPP load component, Prosody) to the first half of the CPUs and p2http and
// p2xmpp to the other half, so that the load side and the system under test
// do not take CPU from each other.
//
// Output: one table (stdout), then one line per target:
//
//	scenario=<name> value=<x> target=<op><y> ok=<true|false>
//
// With -results FILE the table, the targets and the machine's description
// are also written there as Markdown.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"
)

// config holds the flags.
type config struct {
	only       string
	results    string
	p2http     string
	p2xmpp     string
	postgres   string
	warmup     time.Duration
	duration   time.Duration
	conc       int
	xmppConc   int
	regConc    int
	burstConc  int
	scaleN     int
	scaleRate  float64
	addedRate  float64
	pin        bool
	profileDir string
	traceDir   string
	keep       bool
	rounds     int
	burstNodes int
	burstPush  int
	// env is added to the environment of p2http and p2xmpp (-env).
	env map[string]string
}

func parseFlags() *config {
	c := &config{}
	pg := os.Getenv("P2_TEST_POSTGRES_URL")
	if pg == "" {
		pg = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	flag.StringVar(&c.only, "only", "", "comma-separated scenarios or targets to run (default: all); see -list")
	list := flag.Bool("list", false, "list the scenarios and their targets, then exit")
	flag.StringVar(&c.results, "results", "", "write the results as Markdown to this file")
	flag.StringVar(&c.p2http, "p2http", "", "p2http binary (default: go build ./cmd/p2http)")
	flag.StringVar(&c.p2xmpp, "p2xmpp", "", "p2xmpp binary (default: go build ./cmd/p2xmpp)")
	flag.StringVar(&c.postgres, "postgres", pg, "PostgreSQL admin URL; fresh databases are created and dropped there")
	flag.DurationVar(&c.warmup, "warmup", time.Second, "warm-up of each run, not counted")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "measured length of each run")
	flag.IntVar(&c.rounds, "rounds", 4, "runs of each side of a comparison, alternating with the other side")
	flag.IntVar(&c.conc, "conc", 64, "concurrent clients in the push HTTP scenarios (C)")
	flag.IntVar(&c.xmppConc, "xmpp-conc", 128, "publishes outstanding at once in the push XMPP scenario")
	flag.IntVar(&c.regConc, "register-conc", 32, "concurrent clients in the register scenarios")
	flag.IntVar(&c.burstConc, "burst-conc", 256, "connections the burst is sent through (p2xmpp's bound per link)")
	flag.IntVar(&c.scaleN, "scale-n", 1_000_000, "registrations of the large database in the scale scenario")
	flag.Float64Var(&c.scaleRate, "scale-rate", 0, "pushes per second in the scale scenario (default: a quarter of push_http_0ms's p2http throughput, or 250 when push_http did not run)")
	flag.Float64Var(&c.addedRate, "added-rate", 0, "pushes per second in push_added_p99_ms (default: half of push_http_0ms's p2http throughput, as issue 5 defines it); a fixed rate compares builds at the same load")
	flag.IntVar(&c.burstNodes, "burst-nodes", 5_000, "nodes of the burst")
	flag.IntVar(&c.burstPush, "burst-pushes", 50_000, "pushes of the burst, offered in one second")
	flag.BoolVar(&c.pin, "pin", true, "pin the load side and the system under test to separate CPUs (taskset)")
	flag.StringVar(&c.profileDir, "profile", "", "build p2http and p2xmpp with a pprof listener and save CPU profiles of the measured runs here")
	flag.StringVar(&c.traceDir, "trace", "", "write every run of a side-by-side comparison, request by request (start and latency), to DIR/<target>-<side>-r<round>.tsv")
	flag.BoolVar(&c.keep, "keep", false, "keep the working directory (logs, SQLite files)")
	envFlag := flag.String("env", "", "comma-separated NAME=VALUE pairs added to the environment of p2http and p2xmpp, such as GOGC=200,GODEBUG=gctrace=1")
	flag.Parse()
	c.env = map[string]string{}
	for _, kv := range strings.Split(*envFlag, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			fmt.Fprintf(os.Stderr, "p2bench: -env: %q is not NAME=VALUE\n", kv)
			os.Exit(2)
		}
		c.env[k] = v
	}
	if *list {
		for _, s := range scenarios {
			fmt.Printf("%-18s %s\n  targets: %s\n", s.name, s.about, strings.Join(s.targets, ", "))
		}
		os.Exit(0)
	}
	return c
}

// loadGCPercent is the load side's GOGC (unless the environment sets one).
// With the default 100 its collector ran every 0.3 s in the open-loop
// runs, 9 to 10 ms each on the load side's one core, and each run delayed
// the requests of both sides of a comparison by up to 20 ms (-trace shows
// the episodes): the instrument's own noise in every p99. Its live heap is
// tens of MB, so a goal eleven times that is affordable.
const loadGCPercent = 1000

func main() {
	cfg := parseFlags()
	cpus := onlineCPUs()
	loadCPUs, sutCPUs := "", ""
	if cfg.pin && cpus >= 2 {
		loadCPUs, sutCPUs = cpuRange(0, cpus/2), cpuRange(cpus/2, cpus)
		if os.Getenv("P2BENCH_PINNED") == "" {
			// Re-run pinned to the load side's CPUs, so that the Go runtime
			// sizes GOMAXPROCS for them from the start.
			self, err := os.Executable()
			taskset := ""
			if err == nil {
				taskset, err = exec.LookPath("taskset")
			}
			if err == nil {
				env := append(os.Environ(), "P2BENCH_PINNED=1")
				err = syscall.Exec(taskset, append([]string{"taskset", "-c", loadCPUs, self}, os.Args[1:]...), env)
			}
			fmt.Fprintln(os.Stderr, "p2bench: cannot pin with taskset, running unpinned:", err)
			loadCPUs, sutCPUs = "", ""
		}
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(loadGCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	selected, err := selectScenarios(cfg.only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "p2bench:", err)
		os.Exit(2)
	}
	b, err := newBench(ctx, cfg, cpus, loadCPUs, sutCPUs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "p2bench:", err)
		os.Exit(1)
	}
	failed := b.run(ctx, selected)
	b.close()
	if failed {
		os.Exit(1)
	}
}

// onlineCPUs counts the machine's CPUs, whatever this process's affinity
// (runtime.NumCPU counts only the CPUs it may run on).
func onlineCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		var lo, hi int
		if c, _ := fmt.Sscanf(part, "%d-%d", &lo, &hi); c == 2 {
			n += hi - lo + 1
		} else {
			n++
		}
	}
	return n
}

// cpuRange formats CPUs lo to hi-1 for taskset.
func cpuRange(lo, hi int) string {
	if hi-lo == 1 {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d-%d", lo, hi-1)
}

// scenario is a group of measurements sharing a set-up.
type scenario struct {
	name    string
	about   string
	targets []string
	run     func(b *bench, ctx context.Context) error
}

// scenarios in the order make bench runs them.
var scenarios = []scenario{
	{"push_http", "10,000 registrations; C clients POST /v1/push; p2http -> fake FCM at 0 ms and 30 ms, then p2http's added latency at half its peak",
		[]string{"push_http_0ms", "push_http_30ms", "push_added_p99_ms", "rss_push_mib"}, (*bench).pushHTTP},
	{"push_stateless", "push HTTP at fake latency 0 ms with p2http in the stateless mode (nodes are sealed registrations), against the stored mode on PostgreSQL and against the ceiling",
		[]string{"push_stateless"}, (*bench).pushStateless},
	{"push_xmpp", "publishes from a load component through Prosody -> p2xmpp -> p2http -> fake FCM",
		[]string{"push_xmpp"}, (*bench).pushXMPP},
	{"register_postgres", "new and re-registrations through POST /v1/register on PostgreSQL",
		[]string{"register_postgres"}, func(b *bench, ctx context.Context) error { return b.register(ctx, "postgres") }},
	{"register_sqlite", "new and re-registrations through POST /v1/register on SQLite",
		[]string{"register_sqlite"}, func(b *bench, ctx context.Context) error { return b.register(ctx, "sqlite") }},
	{"scale", "push latency with 1,000,000 registrations in PostgreSQL against 10,000",
		[]string{"scale_1m_p99"}, (*bench).scale},
	{"burst", "50,000 pushes for 5,000 nodes in one second, coalescing on",
		[]string{"burst"}, (*bench).burst},
	{"edge", "slow-header, slow-body and idle connections from 39 loopback addresses: p2http's RSS per connection and at the default caps, refusals over them, genuine pushes meanwhile",
		[]string{"edge_rss_mib", "edge_over_cap_kept", "edge_push_ok", "edge_per_addr_kept"}, (*bench).edge},
}

// selectScenarios maps -only (scenario or target names) to scenarios.
func selectScenarios(only string) ([]scenario, error) {
	if strings.TrimSpace(only) == "" {
		return scenarios, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		n = strings.TrimSpace(n)
		found := false
		for _, s := range scenarios {
			if s.name == n || slices.Contains(s.targets, n) {
				want[s.name], found = true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown scenario or target %q (see -list)", n)
		}
	}
	var out []scenario
	for _, s := range scenarios {
		if want[s.name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// workDir makes the run's working directory.
func workDir() (string, error) {
	dir, err := os.MkdirTemp("", "p2bench-")
	if err != nil {
		return "", err
	}
	// PostgreSQL and Prosody run as root here, but keep it traversable.
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	return filepath.Abs(dir)
}
