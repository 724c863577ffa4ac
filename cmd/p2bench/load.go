package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// op performs one request of a load run. worker is the calling worker's
// index and seq the request's sequence number in the run (from 0). It returns
// nil on success, or an error whose text, up to the first colon, names the
// kind of failure counted in the results ("http 503", "timeout", …).
type op func(ctx context.Context, worker int, seq uint64) error

// stats is the outcome of one measured load run.
type stats struct {
	// OK counts the successful requests started inside the measured window.
	OK int
	// Errors counts the failed ones by kind.
	Errors map[string]int
	// Window is the length of the measured window.
	Window time.Duration
	// Lat holds the latency of each successful request, sorted.
	Lat []time.Duration
	// Samples holds the same requests in the order they started, each with
	// its start (from the run's) and latency: what -trace writes. A merge
	// of several runs (add) drops them.
	Samples []sample
	// Done counts every successful request of the run, warm-up included,
	// and CPU is the CPU time the system under test used meanwhile (0 when
	// not measured): CPU/Done is its cost per request.
	Done int64
	CPU  time.Duration
	// Sent counts every request of the run, warm-up and failures included,
	// and LoadCPU is the CPU time p2bench itself (generator, fake FCM, load
	// component) used meanwhile: whether the load side had room to spare.
	Sent    int64
	LoadCPU time.Duration
}

// LoadCPUPerOp is p2bench's own CPU time per request sent.
func (s stats) LoadCPUPerOp() time.Duration {
	if s.Sent == 0 {
		return 0
	}
	return s.LoadCPU / time.Duration(s.Sent)
}

// selfCPU is the CPU time (user plus system) this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// CPUPerOp is the system under test's CPU time per successful request.
func (s stats) CPUPerOp() time.Duration {
	if s.Done == 0 {
		return 0
	}
	return s.CPU / time.Duration(s.Done)
}

// add returns s with the samples of another run merged in.
func (s stats) add(o stats) stats {
	out := stats{OK: s.OK + o.OK, Errors: map[string]int{}, Window: s.Window + o.Window,
		Done: s.Done + o.Done, CPU: s.CPU + o.CPU, Sent: s.Sent + o.Sent, LoadCPU: s.LoadCPU + o.LoadCPU}
	for k, n := range s.Errors {
		out.Errors[k] += n
	}
	for k, n := range o.Errors {
		out.Errors[k] += n
	}
	out.Lat = append(append(make([]time.Duration, 0, len(s.Lat)+len(o.Lat)), s.Lat...), o.Lat...)
	slices.Sort(out.Lat)
	return out
}

// Throughput is successful requests per second over the window.
func (s stats) Throughput() float64 {
	if s.Window <= 0 {
		return 0
	}
	return float64(s.OK) / s.Window.Seconds()
}

// ErrorCount is the number of failed requests.
func (s stats) ErrorCount() int {
	n := 0
	for _, c := range s.Errors {
		n += c
	}
	return n
}

// ErrorSummary names the error kinds with their counts, most frequent first.
func (s stats) ErrorSummary() string {
	if len(s.Errors) == 0 {
		return ""
	}
	kinds := make([]string, 0, len(s.Errors))
	for k := range s.Errors {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return s.Errors[kinds[i]] > s.Errors[kinds[j]] })
	var b strings.Builder
	for i, k := range kinds {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d× %s", s.Errors[k], k)
	}
	return b.String()
}

// Quantile returns the q-quantile (0 < q ≤ 1) of the latencies, nearest
// rank; 0 when there are none.
func (s stats) Quantile(q float64) time.Duration {
	if len(s.Lat) == 0 {
		return 0
	}
	i := int(float64(len(s.Lat))*q+0.999999) - 1
	return s.Lat[min(max(i, 0), len(s.Lat)-1)]
}

// sample is one successful request of a run.
type sample struct {
	At  time.Duration // when it started (or was due), from the run's start
	Lat time.Duration
}

// recorder collects one worker's samples: its successful requests, and its
// failures by kind.
type recorder struct {
	samples []sample
	errors  map[string]int
}

// record notes a request that started at, from the run's start, and took
// lat.
func (r *recorder) record(at, lat time.Duration, err error) {
	if err == nil {
		r.samples = append(r.samples, sample{At: at, Lat: lat})
		return
	}
	kind, _, _ := strings.Cut(err.Error(), ":")
	if r.errors == nil {
		r.errors = map[string]int{}
	}
	r.errors[kind]++
}

// merge gathers the workers' samples of a run.
func merge(recs []*recorder, window time.Duration) stats {
	s := stats{Errors: map[string]int{}, Window: window}
	for _, r := range recs {
		s.OK += len(r.samples)
		s.Samples = append(s.Samples, r.samples...)
		for _, x := range r.samples {
			s.Lat = append(s.Lat, x.Lat)
		}
		for k, n := range r.errors {
			s.Errors[k] += n
		}
	}
	slices.Sort(s.Lat)
	slices.SortFunc(s.Samples, func(a, b sample) int { return cmp.Compare(a.At, b.At) })
	return s
}

// closedLoop runs conc workers that each send one request after another for
// warmup plus measure. Only requests started after the warm-up count; the
// latency of a request runs from its start to its answer.
func closedLoop(ctx context.Context, conc int, warmup, measure time.Duration, do op) stats {
	cpu0 := selfCPU()
	start := time.Now()
	from, until := start.Add(warmup), start.Add(warmup+measure)
	recs := make([]*recorder, conc)
	var seq sync.Mutex
	next := uint64(0)
	var wg sync.WaitGroup
	for w := range conc {
		recs[w] = &recorder{samples: make([]sample, 0, 4096)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(until) {
					return
				}
				seq.Lock()
				n := next
				next++
				seq.Unlock()
				err := do(ctx, w, n)
				if !t0.Before(from) {
					recs[w].record(t0.Sub(start), time.Since(t0), err)
				}
			}
		}()
	}
	wg.Wait()
	s := merge(recs, measure)
	s.Sent, s.LoadCPU = int64(next), selfCPU()-cpu0
	return s
}

// openLoop sends requests at a fixed rate for warmup plus measure, whatever
// the answers: a dispatcher hands each request to one of conc workers at its
// scheduled time, and its latency runs from that time, so that a slow answer
// also counts the wait of the requests queued behind it (no coordinated
// omission). Only requests scheduled after the warm-up count.
func openLoop(ctx context.Context, rate float64, conc int, warmup, measure time.Duration, do op) stats {
	total := int(rate * (warmup + measure).Seconds())
	return schedule(ctx, total, conc, func(i int) time.Duration {
		return time.Duration(float64(i) / rate * float64(time.Second))
	}, func(i int) bool {
		return time.Duration(float64(i)/rate*float64(time.Second)) >= warmup
	}, measure, do)
}

// job is one scheduled request: at is when it is due, off the same time
// from the run's start.
type job struct {
	seq  uint64
	at   time.Time
	off  time.Duration
	keep bool
}

// schedule sends n requests, request i at offset(i) from now, through conc
// workers; requests for which counted(i) is false are sent but not recorded.
// window is the length reported for the throughput.
func schedule(ctx context.Context, n, conc int, offset func(int) time.Duration, counted func(int) bool,
	window time.Duration, do op) stats {
	jobs := make(chan job, n)
	recs := make([]*recorder, conc)
	var wg sync.WaitGroup
	for w := range conc {
		recs[w] = &recorder{samples: make([]sample, 0, 1024)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				err := do(ctx, w, j.seq)
				if j.keep {
					recs[w].record(j.off, time.Since(j.at), err)
				}
			}
		}()
	}
	cpu0 := selfCPU()
	start := time.Now()
	i := 0 // after the loop: the requests sent
	for ; i < n && ctx.Err() == nil; i++ {
		at := start.Add(offset(i))
		if d := time.Until(at); d > 50*time.Microsecond {
			time.Sleep(d)
		} else if d > 0 {
			// Too close to sleep for: send it a little early, and measure
			// from when it was really sent.
			at = time.Now()
		}
		jobs <- job{seq: uint64(i), at: at, off: at.Sub(start), keep: counted(i)}
	}
	close(jobs)
	wg.Wait()
	s := merge(recs, window)
	s.Sent, s.LoadCPU = int64(i), selfCPU()-cpu0
	return s
}

// cores is how many cores' worth of CPU a cost per request takes at rate
// requests per second: 0.8 is one core 80 % busy.
func cores(perOp time.Duration, rate float64) float64 { return perOp.Seconds() * rate }

// busyNote describes, for an open-loop comparison at rate, the CPU that p2bench
// and the system under test took on each side, in cores: how close to
// saturation each was, which decides how much of a p99 is queueing.
func busyNote(name string, rate float64, labels [2]string, sides [2]stats) string {
	parts := make([]string, 0, 2)
	for i, s := range sides {
		p := fmt.Sprintf("%s: p2bench %.2f", labels[i], cores(s.LoadCPUPerOp(), rate))
		if c := s.CPUPerOp(); c > 0 {
			p += fmt.Sprintf(", p2http %.2f", cores(c, rate))
		}
		parts = append(parts, p)
	}
	return fmt.Sprintf("%s at %.0f/s, CPU busy in cores (CPU per request times the rate): %s", name, rate, strings.Join(parts, "; "))
}
