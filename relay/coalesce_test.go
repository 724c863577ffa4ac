package relay

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/internal/testutil"
)

// flushRecorder is a coalescer's flush that records what it sends and can
// hold the sends until released.
type flushRecorder struct {
	hold    chan struct{} // nil: do not hold
	running atomic.Int64
	most    atomic.Int64

	mu    sync.Mutex
	sent  map[string]int
	last  map[string]p2http.Target
	imp   map[string]bool
	total int
}

func newFlushRecorder(hold bool) *flushRecorder {
	f := &flushRecorder{sent: map[string]int{}, last: map[string]p2http.Target{}, imp: map[string]bool{}}
	if hold {
		f.hold = make(chan struct{})
	}
	return f
}

func (f *flushRecorder) flush(t p2http.Target, important bool) error {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		m := f.most.Load()
		if n <= m || f.most.CompareAndSwap(m, n) {
			break
		}
	}
	if f.hold != nil {
		<-f.hold
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent[t.Node]++
	f.last[t.Node] = t
	f.imp[t.Node] = important
	f.total++
	return nil
}

func (f *flushRecorder) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.total
}

// owe sends a push for node, ends it, and merges a second one into its
// trailing push.
func owe(t *testing.T, c *coalescer, node string, important bool) {
	t.Helper()
	if !c.begin(p2http.Target{Node: node}, false) {
		t.Fatalf("%s: the first push was coalesced", node)
	}
	c.done(node, nil)
	if c.begin(p2http.Target{Node: node, Token: "latest"}, important) {
		t.Fatalf("%s: a push inside the window was sent", node)
	}
}

// Windows that end together send their trailing pushes through at most
// maxTrailing workers, every one of them exactly once.
func TestCoalescerBoundsTrailingPushes(t *testing.T) {
	f := newFlushRecorder(true)
	c := newCoalescer(20*time.Millisecond, f.flush)
	c.maxTrailing = 4
	const nodes = 200
	for i := range nodes {
		owe(t, c, fmt.Sprint("node", i), false)
	}
	testutil.Eventually(t, 5*time.Second, "the first trailing pushes", func() bool { return f.running.Load() == int64(c.maxTrailing) })
	// Every window ends; the pushes beyond the bound wait in the queue.
	testutil.Eventually(t, 5*time.Second, "the other trailing pushes queued", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.queue) == nodes-c.maxTrailing
	})
	if n := f.running.Load(); n != int64(c.maxTrailing) {
		t.Fatalf("%d trailing pushes running, want %d", n, c.maxTrailing)
	}
	close(f.hold)
	testutil.Eventually(t, 5*time.Second, "every trailing push", func() bool { return f.count() == nodes })
	if m := f.most.Load(); m > int64(c.maxTrailing) {
		t.Fatalf("%d trailing pushes ran at once, bound %d", m, c.maxTrailing)
	}
	if err := c.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for node, n := range f.sent {
		if n != 1 {
			t.Fatalf("%s: %d trailing pushes", node, n)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.nodes) != 0 || c.workers != 0 {
		t.Fatalf("%d nodes and %d workers left after close", len(c.nodes), c.workers)
	}
}

// A push for a node whose trailing push waits in the queue merges into it:
// one push goes out, with the latest target and importance, and no further
// one is owed.
func TestCoalescerMergesIntoQueuedPush(t *testing.T) {
	f := newFlushRecorder(true)
	c := newCoalescer(10*time.Millisecond, f.flush)
	c.maxTrailing = 1
	owe(t, c, "a", false)
	testutil.Eventually(t, 5*time.Second, "a's trailing push", func() bool { return f.running.Load() == 1 })
	owe(t, c, "b", false)
	testutil.Eventually(t, 5*time.Second, "b's trailing push queued", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.nodes["b"].queued
	})
	if c.begin(p2http.Target{Node: "b", Token: "newest"}, true) {
		t.Fatal("a push for a queued node was sent")
	}
	close(f.hold)
	testutil.Eventually(t, 5*time.Second, "both trailing pushes", func() bool { return f.count() == 2 })
	time.Sleep(30 * time.Millisecond) // b's next window ends
	if err := c.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sent["b"] != 1 || f.last["b"].Token != "newest" || !f.imp["b"] {
		t.Fatalf("b: %d pushes, last %+v, important %v; want one, newest and important", f.sent["b"], f.last["b"], f.imp["b"])
	}
}

// close sends what is owed at once, without waiting for the windows, through
// the same bounded workers, and waits for it.
func TestCoalescerCloseFlushes(t *testing.T) {
	f := newFlushRecorder(false)
	c := newCoalescer(time.Hour, f.flush)
	c.maxTrailing = 3
	const nodes = 50
	for i := range nodes {
		owe(t, c, fmt.Sprint("node", i), i%2 == 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.count(); n != nodes {
		t.Fatalf("%d of %d owed pushes sent by close", n, nodes)
	}
	if m := f.most.Load(); m > int64(c.maxTrailing) {
		t.Fatalf("%d trailing pushes ran at once, bound %d", m, c.maxTrailing)
	}
	// After close, a push that ends sends its owed push at once.
	if !c.begin(p2http.Target{Node: "late"}, false) || c.begin(p2http.Target{Node: "late"}, false) {
		t.Fatal("late: the first push was coalesced, or the second one sent")
	}
	c.done("late", nil)
	testutil.Eventually(t, 5*time.Second, "the late owed push", func() bool { return f.count() == nodes+1 })
}

// A dead token cancels the trailing push owed to its node.
func TestCoalescerDeadTokenOwesNothing(t *testing.T) {
	f := newFlushRecorder(false)
	c := newCoalescer(5*time.Millisecond, f.flush)
	c.begin(p2http.Target{Node: "gone"}, false)
	c.begin(p2http.Target{Node: "gone"}, false)
	c.done("gone", p2http.Errorf(p2http.EGONE, "dead"))
	time.Sleep(20 * time.Millisecond)
	if err := c.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.count(); n != 0 {
		t.Fatalf("%d trailing pushes for a dead token", n)
	}
}
