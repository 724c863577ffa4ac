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

// With GOGC above 100 (p2http's default), a limit that caps the heap
// above twice what is live is not binding: it comes back down after a
// burst instead of staying raised for as long as GOGC's goal is above it.
func TestMemoryLimiterHighGOGC(t *testing.T) {
	const mib = 1 << 20
	l := &memoryLimiter{floor: 34 * mib, limit: 34 * mib, gcPercent: DefaultGCPercent}
	cpu := gcStats{}
	step := func(gc, user float64, live, goal uint64) uint64 {
		cpu.gcCPU += gc
		cpu.userCPU += user
		cpu.live, cpu.goal = live, goal
		l.limit = l.check(cpu)
		return l.limit
	}
	step(0, 0, 8*mib, 28*mib)
	// A burst: live memory near the limit, the collector busy.
	if got := step(1, 2, 25*mib, 30*mib); got != 42*mib+512*1024 {
		t.Fatalf("squeezed and busy: limit %.1f MiB, want 42.5", float64(got)/mib)
	}
	// After it: 8 MiB live, the heap capped at 36 MiB by the raised limit,
	// far under GOGC=400's 40 MiB but above twice what is live.
	for range 10 {
		step(0.01, 2, 8*mib, 36*mib)
	}
	if l.limit != 34*mib {
		t.Fatalf("after the burst: limit %.1f MiB, want 34", float64(l.limit)/mib)
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
		if setMemoryLimit(func(k string) string { return env[k] }) {
			t.Fatalf("%v: applied", env)
		}
		if got := debug.SetMemoryLimit(-1); got != beforeLimit {
			t.Fatalf("%v: memory limit set to %d", env, got)
		}
		if got := debug.SetGCPercent(100); got != 100 {
			t.Fatalf("%v: GOGC set to %d", env, got)
		}
	}
	if !setMemoryLimit(func(k string) string { return map[string]string{"GOGC": "150"}[k] }) {
		t.Fatal("GOGC=150: the default limit not applied")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC=150 in the environment: p2http set %d over it", got)
	}
	if got := debug.SetMemoryLimit(-1); got != DefaultMemoryLimit {
		t.Fatalf("GOGC=150: memory limit %d, want the default", got)
	}
	if !setMemoryLimit(func(string) string { return "" }) {
		t.Fatal("nothing in the environment: the default limit not applied")
	}
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Fatalf("nothing in the environment: GOGC %d, want %d", got, DefaultGCPercent)
	}
}
