package memlimit

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// limiterSteps returns a function that feeds l one check's figures: the
// CPU seconds of the collector, of user code and available, spent since
// the last check, and the live heap and heap goal now. It returns the
// limit l decides on, which it also keeps.
func limiterSteps(l *memoryLimiter) func(gc, user, avail float64, live, goal uint64) uint64 {
	var cpu gcStats
	return func(gc, user, avail float64, live, goal uint64) uint64 {
		cpu.gcCPU += gc
		cpu.userCPU += user
		cpu.availCPU += avail
		cpu.live, cpu.goal = live, goal
		l.limit = l.check(cpu)
		return l.limit
	}
}

// The soft memory limit yields when it, rather than GOGC, makes the
// collector take more than a quarter of the CPU, and comes back down, step
// by step, to the default once GOGC sets the heap goal again.
func TestMemoryLimiter(t *testing.T) {
	const mib = 1 << 20
	l := &memoryLimiter{floor: 34 * mib, limit: 34 * mib, gcPercent: 100}
	step := limiterSteps(l)
	if got := step(0, 0, 0, 10*mib, 20*mib); got != 34*mib {
		t.Fatalf("first check: %d MiB", got/mib)
	}
	// GOGC sets the goal (2 × live): expensive collections are not the
	// limit's doing.
	if got := step(1, 1, 0, 10*mib, 20*mib); got != 34*mib {
		t.Fatalf("busy collector under GOGC: limit %d MiB", got/mib)
	}
	// Live memory close to the limit: goal squeezed, collector busy.
	if got := step(1, 2, 0, 25*mib, 28*mib); got != 42*mib+512*1024 {
		t.Fatalf("squeezed and busy: limit %.1f MiB, want 42.5", float64(got)/mib)
	}
	// Cheap again but still squeezed: kept.
	if got := step(0.05, 2, 0, 25*mib, 38*mib); got != 42*mib+512*1024 {
		t.Fatalf("cheap but squeezed: limit %.1f MiB", float64(got)/mib)
	}
	// Live memory gone: down by tenths to the floor, never below.
	for range 10 {
		step(0.01, 2, 0, 8*mib, 16*mib)
	}
	if l.limit != 34*mib {
		t.Fatalf("after the load: limit %.1f MiB, want 34", float64(l.limit)/mib)
	}
}

// With GOGC above 100 (p2http's default), a limit that caps the heap
// above twice what is live is not binding: it comes back down after a
// burst instead of staying raised for as long as GOGC's goal is above it.
func TestMemoryLimiterHighGOGC(t *testing.T) {
	const mib = 1 << 20
	l := &memoryLimiter{floor: 34 * mib, limit: 34 * mib, gcPercent: DefaultGCPercent}
	step := limiterSteps(l)
	step(0, 0, 0, 8*mib, 28*mib)
	// A burst: live memory near the limit, the collector busy.
	if got := step(1, 2, 0, 25*mib, 30*mib); got != 42*mib+512*1024 {
		t.Fatalf("squeezed and busy: limit %.1f MiB, want 42.5", float64(got)/mib)
	}
	// After it: 8 MiB live, the heap capped at 36 MiB by the raised limit,
	// far under GOGC=400's 40 MiB but above twice what is live.
	for range 10 {
		step(0.01, 2, 0, 8*mib, 36*mib)
	}
	if l.limit != 34*mib {
		t.Fatalf("after the burst: limit %.1f MiB, want 34", float64(l.limit)/mib)
	}
}

// A raised limit comes back down while the process is idle, even though
// the few collections of an idle process are most of the little CPU it
// uses; an idle process does not raise it either.
func TestMemoryLimiterIdle(t *testing.T) {
	const mib = 1 << 20
	l := &memoryLimiter{floor: 34 * mib, limit: 42*mib + 512*1024, gcPercent: DefaultGCPercent}
	step := limiterSteps(l)
	step(0, 0, 0, 5*mib, 25*mib)
	// Idle: 2 s available, a few ms used, most of it a forced collection.
	if got := step(0.004, 0.001, 2, 5*mib, 25*mib); got != 38*mib+256*1024 {
		t.Fatalf("idle: limit %.2f MiB, want 38.25", float64(got)/mib)
	}
	for range 10 {
		step(0, 0, 2, 5*mib, 25*mib) // nothing at all ran
	}
	if l.limit != 34*mib {
		t.Fatalf("after idling: limit %.2f MiB, want 34", float64(l.limit)/mib)
	}
	// Squeezed, but idle: a collection that costs nothing raises nothing.
	if got := step(0.01, 0.005, 2, 20*mib, 30*mib); got != 34*mib {
		t.Fatalf("squeezed while idle: limit raised to %.2f MiB", float64(got)/mib)
	}
}

// GOMEMLIMIT, or GOGC=off, leaves the runtime's settings alone; otherwise
// the default limit applies, with DefaultGCPercent unless GOGC is set.
func TestMemoryLimitFromEnvironment(t *testing.T) {
	beforeLimit := debug.SetMemoryLimit(-1)
	beforePct := debug.SetGCPercent(100)
	defer func() {
		debug.SetMemoryLimit(beforeLimit)
		debug.SetGCPercent(beforePct)
	}()
	for _, env := range []map[string]string{{"GOMEMLIMIT": "1GiB"}, {"GOGC": "off"}} {
		if _, ok := Apply(func(k string) string { return env[k] }); ok {
			t.Fatalf("%v: applied", env)
		}
		if got := debug.SetMemoryLimit(-1); got != beforeLimit {
			t.Fatalf("%v: memory limit set to %d", env, got)
		}
		if got := debug.SetGCPercent(100); got != 100 {
			t.Fatalf("%v: GOGC set to %d", env, got)
		}
	}
	debug.SetGCPercent(150) // as the runtime does for GOGC=150
	if pct, ok := Apply(func(k string) string { return map[string]string{"GOGC": "150"}[k] }); !ok || pct != 150 {
		t.Fatalf("GOGC=150: applied %v, percentage %d", ok, pct)
	}
	if got := debug.SetGCPercent(100); got != 150 {
		t.Fatalf("GOGC=150 in the environment: p2http set %d over it", got)
	}
	if got := debug.SetMemoryLimit(-1); got != DefaultMemoryLimit {
		t.Fatalf("GOGC=150: memory limit %d, want the default", got)
	}
	if pct, ok := Apply(func(string) string { return "" }); !ok || pct != DefaultGCPercent {
		t.Fatalf("nothing in the environment: applied %v, percentage %d", ok, pct)
	}
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Fatalf("nothing in the environment: GOGC %d, want %d", got, DefaultGCPercent)
	}
}

// The runtime has every figure the limiter reads, and they add up: the
// collector's and user code's CPU fit in what was available.
func TestReadGCStats(t *testing.T) {
	runtime.GC()
	s := readGCStats()
	if s.availCPU <= 0 || s.live == 0 || s.goal == 0 {
		t.Fatalf("missing figures: %+v", s)
	}
	if s.gcCPU < 0 || s.userCPU < 0 || s.gcCPU+s.userCPU > s.availCPU {
		t.Fatalf("figures that do not add up: %+v", s)
	}
}
