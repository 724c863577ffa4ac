package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// An open-loop run keeps each successful request's start and latency, in
// the order they started, and -trace writes them out one line each.
func TestRunSamplesAndTrace(t *testing.T) {
	const n = 200
	do := func(ctx context.Context, worker int, seq uint64) error {
		if seq%50 == 7 {
			return errTest
		}
		time.Sleep(time.Duration(seq%5) * 100 * time.Microsecond)
		return nil
	}
	s := openLoop(context.Background(), 10_000, 8, 0, n*100*time.Microsecond, do)
	if s.OK != n-4 || s.ErrorCount() != 4 {
		t.Fatalf("OK %d, errors %d; want %d and 4", s.OK, s.ErrorCount(), n-4)
	}
	if len(s.Samples) != s.OK {
		t.Fatalf("%d samples for %d successful requests", len(s.Samples), s.OK)
	}
	if !slices.IsSortedFunc(s.Samples, func(a, b sample) int { return int(a.At - b.At) }) {
		t.Fatal("samples are not in the order the requests started")
	}
	lat := make([]time.Duration, 0, len(s.Samples))
	for _, x := range s.Samples {
		if x.At < 0 || x.At > time.Second {
			t.Fatalf("a request started at %v from the run's start", x.At)
		}
		lat = append(lat, x.Lat)
	}
	slices.Sort(lat)
	if !slices.Equal(lat, s.Lat) {
		t.Fatal("the samples' latencies are not the run's")
	}
	if merged := s.add(s); merged.Samples != nil || merged.OK != 2*s.OK {
		t.Fatalf("a merge of two runs keeps %d samples and %d OK", len(merged.Samples), merged.OK)
	}

	dir := t.TempDir()
	b := &bench{cfg: &config{traceDir: dir}}
	b.trace("push_added_p99_ms-measured-r1", s)
	data, err := os.ReadFile(filepath.Join(dir, "push_added_p99_ms-measured-r1.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if lines[0] != "start_ms\tlatency_ms" || len(lines) != s.OK+1 {
		t.Fatalf("trace: header %q and %d lines for %d requests", lines[0], len(lines)-1, s.OK)
	}
}

var errTest = errors.New("test: failed on purpose")

// A side-by-side comparison notes each round's throughput and p99, side by
// side and in the order run, besides merging them.
func TestSideBySideNotesRounds(t *testing.T) {
	b := &bench{cfg: &config{rounds: 2}}
	run := func(ms ...int) stats {
		s := stats{OK: len(ms), Window: time.Second}
		for _, m := range ms {
			s.Lat = append(s.Lat, time.Duration(m)*time.Millisecond)
		}
		return s
	}
	ceil := []stats{run(1, 2), run(3, 4, 5)}
	got := []stats{run(6), run(7, 8, 9, 10)}
	c, m := b.sideBySide("x", func(r int) stats { return ceil[r-1] }, func(r int) stats { return got[r-1] })
	if c.OK != 5 || m.OK != 5 {
		t.Fatalf("merged %d and %d requests, want 5 and 5", c.OK, m.OK)
	}
	want := "x round by round, first side (ceiling or baseline) / second side: ops/s 2 3 / 1 4; p99 ms 2.00 5.00 / 6.00 10.00"
	if len(b.notes) != 1 || b.notes[0] != want {
		t.Fatalf("notes %q\nwant %q", b.notes, want)
	}
}

// Both loops count every request they send, failures and warm-up included,
// and the CPU time p2bench spent meanwhile: requests that each do a fixed
// amount of work show at least about that much CPU per request, however the
// machine schedules them.
func TestLoadSideCPU(t *testing.T) {
	var sink atomic.Uint64
	work := func() {
		x := uint64(1)
		for i := range uint64(200_000) {
			x = x*31 + i
		}
		sink.Add(x)
	}
	const k = 50
	c0 := selfCPU()
	for range k {
		work()
	}
	perWork := (selfCPU() - c0) / k
	if perWork <= 0 {
		t.Fatal("selfCPU does not advance")
	}

	var calls atomic.Int64
	do := func(ctx context.Context, worker int, seq uint64) error {
		calls.Add(1)
		work()
		if seq%3 == 0 {
			return errTest
		}
		return nil
	}
	for name, run := range map[string]func() stats{
		"closed": func() stats { return closedLoop(context.Background(), 2, 20*time.Millisecond, 50*time.Millisecond, do) },
		"open": func() stats {
			return openLoop(context.Background(), 1000, 4, 20*time.Millisecond, 80*time.Millisecond, do)
		},
	} {
		calls.Store(0)
		s := run()
		if s.Sent != calls.Load() || s.Sent == 0 {
			t.Fatalf("%s loop: Sent %d, requests made %d", name, s.Sent, calls.Load())
		}
		// Half, for the clock's granularity and a cold cache.
		if got := s.LoadCPUPerOp(); got < perWork/2 {
			t.Errorf("%s loop: %v of CPU per request, want at least %v", name, got, perWork/2)
		}
		if m := s.add(s); m.Sent != 2*s.Sent || m.LoadCPU != 2*s.LoadCPU {
			t.Errorf("%s loop: a merge of two runs has Sent %d, LoadCPU %v", name, m.Sent, m.LoadCPU)
		}
	}
	if (stats{}).LoadCPUPerOp() != 0 {
		t.Error("a run that sent nothing has a CPU time per request")
	}
}

// The note of an open-loop comparison turns CPU per request into cores at
// the run's rate, and names p2http only on the side that measured it.
func TestBusyNote(t *testing.T) {
	ceil := stats{Sent: 1000, LoadCPU: 100 * time.Millisecond}                                         // 100 µs a request
	got := stats{Sent: 1000, LoadCPU: 150 * time.Millisecond, Done: 1000, CPU: 160 * time.Millisecond} // 150 and 160 µs
	n := busyNote("push_added_p99_ms", 5000, [2]string{"ceiling", "through p2http"}, [2]stats{ceil, got})
	want := "push_added_p99_ms at 5000/s, CPU busy in cores (CPU per request times the rate): " +
		"ceiling: p2bench 0.50; through p2http: p2bench 0.75, p2http 0.80"
	if n != want {
		t.Fatalf("note\n%s\nwant\n%s", n, want)
	}
}
