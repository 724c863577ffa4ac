package main

import (
	"runtime/debug"
	"testing"
)

// The soft memory limit yields when it, rather than GOGC, makes the
// collector take more than a quarter of the CPU, and comes back down, step
// by step, to the default once GOGC sets the heap goal again.
func TestMemoryLimiter(t *testing.T) {
	const mib = 1 << 20
	l := &memoryLimiter{floor: 34 * mib, limit: 34 * mib, gcPercent: 100}
	cpu := gcStats{}
	step := func(gc, user float64, live, goal uint64) uint64 {
		cpu.gcCPU += gc
		cpu.userCPU += user
		cpu.live, cpu.goal = live, goal
		l.limit = l.check(cpu)
		return l.limit
	}
	if got := step(0, 0, 10*mib, 20*mib); got != 34*mib {
		t.Fatalf("first check: %d MiB", got/mib)
	}
	// GOGC sets the goal (2 × live): expensive collections are not the
	// limit's doing.
	if got := step(1, 1, 10*mib, 20*mib); got != 34*mib {
		t.Fatalf("busy collector under GOGC: limit %d MiB", got/mib)
	}
	// Live memory close to the limit: goal squeezed, collector busy.
	if got := step(1, 2, 25*mib, 28*mib); got != 42*mib+512*1024 {
		t.Fatalf("squeezed and busy: limit %.1f MiB, want 42.5", float64(got)/mib)
	}
	// Cheap again but still squeezed: kept.
	if got := step(0.05, 2, 25*mib, 38*mib); got != 42*mib+512*1024 {
		t.Fatalf("cheap but squeezed: limit %.1f MiB", float64(got)/mib)
	}
	// Live memory gone: down by tenths to the floor, never below.
	for range 10 {
		step(0.01, 2, 8*mib, 16*mib)
	}
	if l.limit != 34*mib {
		t.Fatalf("after the load: limit %.1f MiB, want 34", float64(l.limit)/mib)
	}
}

// GOMEMLIMIT, or GOGC=off, leaves the runtime's setting alone.
func TestMemoryLimitFromEnvironment(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	for _, env := range []map[string]string{{"GOMEMLIMIT": "1GiB"}, {"GOGC": "off"}} {
		setMemoryLimit(func(k string) string { return env[k] })
		if got := debug.SetMemoryLimit(-1); got != before {
			t.Fatalf("%v: memory limit set to %d", env, got)
		}
	}
}
