// Package memlimit is p2http's memory controller: a soft memory limit for
// the Go runtime (runtime/debug's SetMemoryLimit) when the environment sets
// no GOMEMLIMIT, which yields to live memory when it, rather than GOGC,
// makes the collector take too much of the CPU.
package memlimit

import (
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// DefaultMemoryLimit is p2http's soft memory limit (see runtime/debug's
// SetMemoryLimit) when the environment sets no GOMEMLIMIT: the memory the
// Go runtime may hold (heap, goroutine stacks, its own structures) before
// it collects garbage more often to stay under it.
//
// About 15 MiB of p2http's resident memory are its own program text and
// read-only data, mapped from the binary (28 MiB while it used the Firebase
// SDK). Without a limit the heap is allowed to grow to twice what is live,
// and a burst (hundreds of connections and requests in flight) took the
// process to 75 MiB; with 34 MiB for the runtime it stays under 64 MiB (46
// MiB at the peak of the benchmark's burst since the SDK went), for a few
// more collections during bursts. GOMEMLIMIT overrides it (off turns
// it off); so does GOGC=off, which disables the collector's pacing.
//
// The benchmark that shows it is make bench (cmd/p2bench), as memory of a
// whole process under load; there is no Go benchmark of it. One round each
// (docs/performance.md, change 10): rss_push_mib 69.7 MiB without a limit,
// 61.8 with 34 MiB; the burst's peak RSS 75.0 and 61.5 MiB (target 64); the
// collector's share of p2http's CPU 2 % either way over push HTTP, 2 and 4 %
// during the burst.
const DefaultMemoryLimit = 34 << 20

// DefaultGCPercent is p2http's GOGC when the environment sets neither GOGC
// nor GOMEMLIMIT, so that DefaultMemoryLimit applies. Go's default (100)
// collects each time the heap doubles what is live: every 0.1 to 0.2 s
// under load, where p2http's live heap is 6 to 10 MB and each push
// allocates about 13 KB, and each collection is an episode of slow
// requests. With 400 the soft limit, not GOGC, decides when the collector
// runs under load: the heap grows into the memory the limit grants it
// anyway, and the collector runs half as often, for the same peak RSS
// (docs/performance.md, change 19).
const DefaultGCPercent = 400

// The limit yields to live memory: a limit below what is live makes the
// collector run back to back (up to half of the CPU). When the collector's
// share of the CPU exceeds memoryLimitGCShare while the limit holds the
// heap goal under what GOGC (at most 100) would set, the limit is raised
// by a quarter; it returns by steps towards DefaultMemoryLimit once
// collections are cheap (or the process idle) and the heap may grow that
// far again. What it guards against was seen before the cache's bound fell
// to 20,000 entries: a full cache of 50,000 large entries under this limit
// made the collector run back to back, and scale_1m_p99's p99 went to 40 ms
// (docs/performance.md, change 7). Any live heap above the limit does the
// same (many connections, a larger cache), and BenchmarkLiveAboveLimit
// measures it: with 48 MiB live and a push's 13 KB allocated per
// operation, 38 to 40 µs per operation with the limit fixed and 4.3 to
// 4.7 µs with it yielding (two runs each, -benchtime 3s, on a 2-core
// machine shared with other work). Its allocation rate (about 3 GB/s, some
// twenty times p2http's at 10,000 pushes/s) keeps the collector's share
// above a quarter for longer than p2http's would, so the limit overshoots
// there (200 to 285 MiB) before it comes back down. TestMemoryLimiter and
// its siblings check the rules.
const (
	memoryLimitCheck   = 2 * time.Second
	memoryLimitGCShare = 0.25
	memoryLimitIdle    = 0.10
)

// Apply applies DefaultMemoryLimit unless GOMEMLIMIT is set (and with it
// DefaultGCPercent unless GOGC is set), and reports whether it did and the
// GOGC percentage in force: then Yield must follow it. It runs first thing
// in main, before any other goroutine.
func Apply(getenv func(string) string) (gcPercent int, ok bool) {
	if getenv("GOMEMLIMIT") != "" || getenv("GOGC") == "off" {
		return 0, false
	}
	if getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultGCPercent)
		gcPercent = DefaultGCPercent
	} else {
		// Read the environment's percentage as the runtime parsed it.
		gcPercent = debug.SetGCPercent(100)
		debug.SetGCPercent(gcPercent)
	}
	debug.SetMemoryLimit(DefaultMemoryLimit)
	return gcPercent, true
}

// Yield lets the limit set by Apply yield to live memory, checking every
// memoryLimitCheck for as long as the process runs.
func Yield(gcPercent int) {
	l := newMemoryLimiter(DefaultMemoryLimit, gcPercent)
	for range time.Tick(memoryLimitCheck) {
		if next := l.check(readGCStats()); next != l.limit {
			l.limit = next
			debug.SetMemoryLimit(int64(next))
		}
	}
}

// gcStats are the runtime figures the limiter decides on.
type gcStats struct {
	// Cumulative CPU seconds: the collector's (without the marking it does
	// on otherwise idle Ps, which costs nothing else), user code's, and all
	// that GOMAXPROCS makes available.
	gcCPU, userCPU, availCPU float64
	live, goal               uint64 // live heap after the last collection, and the heap goal
}

var gcMetrics = []metrics.Sample{
	{Name: "/cpu/classes/gc/total:cpu-seconds"},
	{Name: "/cpu/classes/gc/mark/idle:cpu-seconds"},
	{Name: "/cpu/classes/user:cpu-seconds"},
	{Name: "/cpu/classes/total:cpu-seconds"},
	{Name: "/gc/heap/live:bytes"},
	{Name: "/gc/heap/goal:bytes"},
}

func readGCStats() gcStats {
	metrics.Read(gcMetrics)
	f := func(i int) float64 {
		if gcMetrics[i].Value.Kind() == metrics.KindFloat64 {
			return gcMetrics[i].Value.Float64()
		}
		return 0
	}
	u := func(i int) uint64 {
		if gcMetrics[i].Value.Kind() == metrics.KindUint64 {
			return gcMetrics[i].Value.Uint64()
		}
		return 0
	}
	return gcStats{gcCPU: f(0) - f(1), userCPU: f(2), availCPU: f(3), live: u(4), goal: u(5)}
}

// memoryLimiter decides the soft memory limit from one check to the next.
type memoryLimiter struct {
	floor, limit uint64
	gcPercent    int
	last         gcStats
	started      bool
}

func newMemoryLimiter(floor uint64, gcPercent int) *memoryLimiter {
	return &memoryLimiter{floor: floor, limit: floor, gcPercent: gcPercent}
}

// check returns the limit to use from now on, given the runtime's figures.
func (l *memoryLimiter) check(s gcStats) uint64 {
	prev := l.last
	l.last = s
	if !l.started {
		l.started = true
		return l.limit
	}
	gc, user, avail := s.gcCPU-prev.gcCPU, s.userCPU-prev.userCPU, s.availCPU-prev.availCPU
	// A process that used under a tenth of its CPU is idle: a collection
	// then costs nothing, whatever its share of that little work (the
	// runtime forces one every two minutes, which would keep a raised
	// limit up for as long as the process stays idle).
	idle := avail > 0 && gc+user < memoryLimitIdle*avail
	share := 0.0
	if gc+user > 0 {
		share = gc / (gc + user)
	}
	// GOGC's goal would be live × (1 + GOGC/100); a goal well under it
	// means the limit is what makes the collector run. A GOGC above 100
	// (DefaultGCPercent) asks for fewer collections than Go's default, and
	// the limit capping it costs nothing more than that default would: the
	// limit counts as binding only when it holds the heap under twice what
	// is live.
	gogcGoal := float64(s.live) * (1 + float64(min(l.gcPercent, 100))/100)
	binding := float64(s.goal) < 0.95*gogcGoal
	switch {
	case share > memoryLimitGCShare && binding && !idle:
		return uint64(math.Min(float64(l.limit)*1.25, math.MaxInt64))
	case (share < memoryLimitIdle || idle) && !binding && l.limit > l.floor:
		return max(l.floor, l.limit*9/10)
	}
	return l.limit
}
