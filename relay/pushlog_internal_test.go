package relay

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2http/p2http"
)

// BenchmarkPushLogRecord measures what recording a delivered push adds to
// the push path, 1,000 nodes pushed over and over from 32 goroutines: the
// entry of a node waiting for its hour updated under the log's lock. (The
// first push of a node since its last write also allocates its entry.)
func BenchmarkPushLogRecord(b *testing.B) {
	now := time.Now()
	// A log batching hourly, without its loop: nothing is written.
	p := &pushLog{every: time.Hour, now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler),
		maxHeld: defaultMaxHeld, ready: map[string]*pushEntry{}, held: map[string]*pushEntry{}, lastScan: now}
	stored := now.Add(-time.Minute)
	targets := make([]p2http.Target, 1000)
	for i := range targets {
		targets[i] = p2http.Target{Node: fmt.Sprintf("node%08d", i),
			PushHistory: p2http.PushHistory{Recorded: true, LastPushAt: &stored, LastOutcome: p2http.PushDelivered}}
		p.record(context.Background(), targets[i], 1, p2http.PushDelivered, "")
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			p.record(ctx, targets[next.Add(1)%int64(len(targets))], 1, p2http.PushDelivered, "")
		}
	})
	if len(p.held) != len(targets) {
		b.Fatalf("%d entries waiting, want %d", len(p.held), len(targets))
	}
}
