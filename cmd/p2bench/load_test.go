package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
