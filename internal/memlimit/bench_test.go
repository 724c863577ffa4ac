package memlimit

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// benchSink keeps each allocation of BenchmarkLiveAboveLimit reachable
// until the next, so that the compiler cannot drop it.
var benchSink []byte

// entry is one pointer-holding object of the benchmark's live heap, so that
// marking it costs what marking the registration cache and the connections'
// state does (a heap of plain byte slices is not scanned at all).
type entry struct {
	next *entry
	pad  [112]byte
}

// BenchmarkLiveAboveLimit measures what Yield is for: a process whose live
// heap (48 MiB of small pointer-holding objects) is above
// DefaultMemoryLimit, allocating what a push allocates (13 KB) per
// operation. With the limit fixed, every collection leaves the heap above
// the limit and the collector runs back to back; with the limiter checking
// (every 50 ms here, every 2 s in p2http), the limit rises until
// collections are rare again. It reports the collector's share of the CPU
// (gc-cpu-%) and the limit it ended with (limit-MiB).
func BenchmarkLiveAboveLimit(b *testing.B) {
	for _, yield := range []bool{false, true} {
		name := "fixed"
		if yield {
			name = "yielding"
		}
		b.Run(name, func(b *testing.B) {
			defer debug.SetGCPercent(debug.SetGCPercent(DefaultGCPercent))
			defer debug.SetMemoryLimit(debug.SetMemoryLimit(DefaultMemoryLimit))
			var live *entry
			for range (48 << 20) / 128 {
				live = &entry{next: live}
			}
			runtime.GC()
			l := newMemoryLimiter(DefaultMemoryLimit, DefaultGCPercent)
			l.check(readGCStats())
			start := readGCStats()
			last := time.Now()
			b.ResetTimer()
			for i := range b.N {
				benchSink = make([]byte, 13<<10)
				if yield && i%64 == 0 && time.Since(last) > 50*time.Millisecond {
					last = time.Now()
					if next := l.check(readGCStats()); next != l.limit {
						l.limit = next
						debug.SetMemoryLimit(int64(next))
					}
				}
			}
			b.StopTimer()
			end := readGCStats()
			if gc, user := end.gcCPU-start.gcCPU, end.userCPU-start.userCPU; gc+user > 0 {
				b.ReportMetric(100*gc/(gc+user), "gc-cpu-%")
			}
			b.ReportMetric(float64(l.limit)/(1<<20), "limit-MiB")
			runtime.KeepAlive(live)
		})
	}
}
