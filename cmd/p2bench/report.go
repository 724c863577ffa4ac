package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one line of the results table: one measured run.
type row struct {
	Scenario string
	Path     string // what was measured: "p2http", "ceiling: …"
	Load     string // offered load and duration, such as "C=64, 2+8 s"
	Stats    stats
	// RSS is p2http's peak resident set size so far, in MiB; 0 when the
	// run did not involve p2http.
	RSS float64
	// Ratio is the throughput relative to the ceiling; 0 for ceiling rows
	// and runs without one.
	Ratio float64
	// Throughput overrides Stats.Throughput when not 0 (the burst reports
	// pushes answered per second of the whole burst).
	Throughput float64
}

func (r row) throughput() float64 {
	if r.Throughput != 0 {
		return r.Throughput
	}
	return r.Stats.Throughput()
}

// target is one checked target of issue 5.
type target struct {
	Name   string
	Value  float64
	Op     string // ">=", "<=" or "="
	Limit  float64
	OK     bool
	Failed bool // the scenario did not complete: no value
	Why    string
}

// check sets OK from Value, Op and Limit (and any extra condition). Value
// is judged as measured, not as printed: a ratio of 0.496 misses 0.5.
func (t target) check(extra bool) target {
	t.OK = t.meets(t.Value) && extra && !math.IsNaN(t.Value)
	if !extra && t.Why == "" {
		t.Why = "the run had errors, see the table"
	}
	return t
}

// meets tells whether v is within the target's limit.
func (t target) meets(v float64) bool {
	switch t.Op {
	case ">=":
		return v >= t.Limit
	case "<=":
		return v <= t.Limit
	case "=":
		return v == t.Limit
	}
	return false
}

// value prints the target's value with two decimals, or with four when two
// would round it across the limit (0.4958 is not shown as 0.50 against a
// limit of 0.5); "n/a" when the scenario failed.
func (t target) value() string {
	if t.Failed {
		return "n/a"
	}
	v := fmtNum(t.Value)
	if shown, err := strconv.ParseFloat(v, 64); err == nil && t.meets(shown) != t.meets(t.Value) {
		v = strconv.FormatFloat(t.Value, 'f', 4, 64)
	}
	return v
}

func (t target) line() string {
	v := t.value()
	return fmt.Sprintf("scenario=%s value=%s target=%s%s ok=%t", t.Name, v, t.Op, fmtLimit(t.Limit), t.OK && !t.Failed)
}

// fmtNum prints a value: whole numbers without decimals, others with two.
func fmtNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// fmtLimit prints a target's limit as written in the issue.
func fmtLimit(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

var tableHeader = []string{"scenario", "path", "load (warm-up+measured)", "ops/s", "p50 ms", "p99 ms", "p99.9 ms",
	"errors", "p2http peak RSS MiB", "p2http CPU µs/op", "p2bench CPU µs/op", "ratio to ceiling"}

// cells formats a row for both tables.
func (r row) cells() []string {
	rss, cpu, loadCPU, ratio, errs := "-", "-", "-", "-", "0"
	if r.RSS > 0 {
		rss = strconv.FormatFloat(r.RSS, 'f', 1, 64)
	}
	if c := r.Stats.CPUPerOp(); c > 0 {
		cpu = strconv.FormatInt(c.Microseconds(), 10)
	}
	if c := r.Stats.LoadCPUPerOp(); c > 0 {
		loadCPU = strconv.FormatInt(c.Microseconds(), 10)
	}
	if r.Ratio > 0 {
		ratio = strconv.FormatFloat(r.Ratio, 'f', 2, 64)
	}
	if n := r.Stats.ErrorCount(); n > 0 {
		errs = fmt.Sprintf("%d (%s)", n, r.Stats.ErrorSummary())
	}
	return []string{r.Scenario, r.Path, r.Load, strconv.FormatFloat(r.throughput(), 'f', 0, 64),
		ms(r.Stats.Quantile(0.5)), ms(r.Stats.Quantile(0.99)), ms(r.Stats.Quantile(0.999)), errs, rss, cpu, loadCPU, ratio}
}

// table is the plain-text table printed at the end.
func (b *bench) table() string {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(tableHeader, "\t"))
	for _, r := range b.rows {
		fmt.Fprintln(tw, strings.Join(r.cells(), "\t"))
	}
	tw.Flush()
	return buf.String()
}

// markdownTable is the same table in Markdown.
func (b *bench) markdownTable() string {
	var buf strings.Builder
	buf.WriteString("| " + strings.Join(tableHeader, " | ") + " |\n")
	buf.WriteString(strings.Repeat("| --- ", len(tableHeader)) + "|\n")
	for _, r := range b.rows {
		c := r.cells()
		for i := range c {
			c[i] = strings.ReplaceAll(c[i], "|", "\\|")
		}
		buf.WriteString("| " + strings.Join(c, " | ") + " |\n")
	}
	return buf.String()
}

// writeResults writes the Markdown results file.
func (b *bench) writeResults(ctx context.Context) error {
	var w strings.Builder
	fmt.Fprintf(&w, "# p2http benchmark results\n\n")
	fmt.Fprintf(&w, "Written by `make bench` (`cmd/p2bench`); bench/README.md describes the scenarios, the ceilings and how to run one of them.\n\n")
	pin := "not pinned: everything shares all CPUs"
	if b.loadCPUs != "" {
		pin = fmt.Sprintf("load side (p2bench: generator, fake FCM, XMPP load component; and Prosody) on CPU %s; "+
			"p2http and p2xmpp on CPU %s (GOMAXPROCS=%d); PostgreSQL not pinned", b.loadCPUs, b.sutCPUs, b.sutCPUCount())
	}
	fmt.Fprintf(&w, "| | |\n| --- | --- |\n")
	for _, kv := range [][2]string{
		{"date", b.started.UTC().Format("2006-01-02 15:04 UTC")},
		{"commit", b.commit},
		{"machine", fmt.Sprintf("%d cores, %s, %d MiB RAM", b.cpus, cpuModel(), memMiB())},
		{"kernel", readTrim("/proc/sys/kernel/osrelease")},
		{"Go", goVersion()},
		{"PostgreSQL", b.pg.version(ctx) + " (shared system instance, fsync on)"},
		{"Prosody", packageVersion(ctx, "prosody")},
		{"CPU pinning", pin},
		{"load average (1, 5, 15 min) before / after", b.loadAvg[0] + " / " + b.loadAvg[1]},
		{"run time", time.Since(b.started).Round(time.Second).String()},
		{"settings", fmt.Sprintf("warm-up %v, measured %v per run; C=%d (push HTTP), %d outstanding (XMPP), %d (register), %d connections (burst); scale %d registrations; %d rounds of each side of a comparison",
			b.cfg.warmup, b.cfg.duration, b.cfg.conc, b.cfg.xmppConc, b.cfg.regConc, b.cfg.burstConc, b.cfg.scaleN, b.cfg.rounds)},
	} {
		fmt.Fprintf(&w, "| %s | %s |\n", kv[0], kv[1])
	}
	fmt.Fprintf(&w, "\n## Results\n\n%s\n", b.markdownTable())
	fmt.Fprintf(&w, "Each comparison alternates its two sides, %d runs each, and merges each side's samples. "+
		"Coalescing is off (`P2_COALESCE_WINDOW=0`) everywhere but in the burst, so that every push must reach the fake FCM, "+
		"which p2bench checks registration by registration; rate limits are set to 1000000:1000000 (never refusing). "+
		"Latency runs from a request's start (closed loop, C=…) or from its scheduled time (open loop). "+
		"p2http CPU µs/op is the CPU time of p2http (and p2xmpp in the XMPP row) per successful operation, warm-up included; "+
		"p2bench CPU µs/op is p2bench's own (generator, fake FCM, load components) per request sent.\n\n", b.cfg.rounds)
	fmt.Fprintf(&w, "## Targets\n\n| target | value | wanted | ok |\n| --- | --- | --- | --- |\n")
	for _, t := range b.targets {
		v := t.value()
		ok := "yes"
		if !t.OK || t.Failed {
			ok = "**no**"
		}
		if t.Why != "" {
			ok += " (" + t.Why + ")"
		}
		fmt.Fprintf(&w, "| %s | %s | %s %s | %s |\n", t.Name, v, t.Op, fmtLimit(t.Limit), ok)
	}
	fmt.Fprintf(&w, "\n```\n")
	for _, t := range b.targets {
		fmt.Fprintln(&w, t.line())
	}
	fmt.Fprintf(&w, "```\n")
	if len(b.notes) > 0 {
		fmt.Fprintf(&w, "\n## Notes from this run\n\n")
		for _, n := range b.notes {
			fmt.Fprintf(&w, "- %s\n", n)
		}
	}
	return os.WriteFile(b.cfg.results, []byte(w.String()), 0o644)
}

// gitCommit is the short commit of the working tree, with "-dirty" when it
// has changes.
func gitCommit(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += "-dirty"
	}
	return c
}

func cpuModel() string {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memMiB() int64 {
	raw, _ := os.ReadFile("/proc/meminfo")
	var kib int64
	for _, l := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			kib, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return kib / 1024
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func packageVersion(ctx context.Context, pkg string) string {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f", "${Version}", pkg).Output()
	if err != nil {
		return "?"
	}
	return string(out)
}
