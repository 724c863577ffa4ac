package relay

import (
	"context"
	"sync"
	"time"

	"github.com/p2http/p2http"
)

// coalescer merges pushes for one node: while a push for it is in flight or
// was sent less than a window ago, further pushes are answered at once and
// owe one trailing push, sent when the window has passed. A phone wakes once
// for a burst of messages, and the provider's quota is spared.
//
// Windows opened together (a message to a large group wakes thousands of
// phones within a second) end together. Their trailing pushes therefore
// wait in a queue, in the order their windows ended, for one of
// maxTrailing workers: a burst's trailing pushes leave at the rate the
// provider answers them, over a bounded number of streams and connections,
// instead of all at once. A push arriving for a node whose trailing push
// still waits merges into it. close sends everything owed.
type coalescer struct {
	window time.Duration
	flush  func(t p2http.Target, important bool) error
	// maxTrailing bounds the trailing pushes being sent at once.
	maxTrailing int

	mu      sync.Mutex
	nodes   map[string]*pending
	queue   []string // nodes whose trailing push waits for a worker, oldest first
	workers int      // workers running
	closed  bool
	// wg counts armed timers and queued or running trailing pushes, so that
	// close can wait for every owed push.
	wg sync.WaitGroup
}

// pending is a node in flight, inside its window, or queued for its
// trailing push.
type pending struct {
	inflight  bool
	queued    bool          // its trailing push waits in the queue
	owed      bool          // a trailing push is owed
	important bool          // of the trailing push
	target    p2http.Target // the latest resolved target
	timer     *time.Timer
}

// DefaultMaxTrailing bounds the trailing pushes sent at once: with a
// provider answering in 30 to 200 ms, 64 streams send 300 to 2,000 of
// them a second, over one or two HTTP/2 connections.
const DefaultMaxTrailing = 64

func newCoalescer(window time.Duration, flush func(p2http.Target, bool) error) *coalescer {
	return &coalescer{window: window, flush: flush, maxTrailing: DefaultMaxTrailing, nodes: map[string]*pending{}}
}

// begin reports whether the caller should send now; when it should not, the
// push was merged into the node's trailing push.
func (c *coalescer) begin(t p2http.Target, important bool) bool {
	if c.window <= 0 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.nodes[t.Node]
	if p == nil {
		c.nodes[t.Node] = &pending{inflight: true}
		return true
	}
	p.owed = true
	p.important = p.important || important
	p.target = t
	return false
}

// done ends a send for node and opens its window.
func (c *coalescer) done(node string, err error) {
	if c.window <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.nodes[node]
	p.inflight = false
	if p2http.ErrorCode(err) == p2http.EGONE {
		p.owed = false // the token is dead: nothing left to wake
	}
	if c.closed {
		c.settle(node, p)
		return
	}
	c.wg.Add(1)
	p.timer = time.AfterFunc(c.window, func() {
		defer c.wg.Done()
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.nodes[node] == p && !p.inflight && !p.queued {
			c.settle(node, p)
		}
	})
}

// settle, with c.mu held, queues the node's owed trailing push or forgets
// the node.
func (c *coalescer) settle(node string, p *pending) {
	if !p.owed {
		delete(c.nodes, node)
		return
	}
	p.queued = true
	c.queue = append(c.queue, node)
	c.wg.Add(1)
	if c.workers < c.maxTrailing {
		c.workers++
		c.wg.Add(1) // the worker's own count: close waits until it has left
		go c.work()
	}
}

// work sends queued trailing pushes until the queue is empty.
func (c *coalescer) work() {
	c.mu.Lock()
	for len(c.queue) > 0 {
		node := c.queue[0]
		c.queue[0] = ""
		c.queue = c.queue[1:]
		if len(c.queue) == 0 {
			c.queue = nil // let a burst's backing array go
		}
		p := c.nodes[node]
		t, important := p.target, p.important
		p.queued, p.owed, p.important, p.inflight = false, false, false, true
		c.mu.Unlock()
		err := c.flush(t, important)
		c.done(node, err)
		c.wg.Done() // the queued push's count, after done armed the window
		c.mu.Lock()
	}
	c.workers--
	c.mu.Unlock()
	c.wg.Done()
}

// close sends every owed push now and waits for them, or for ctx.
func (c *coalescer) close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	for node, p := range c.nodes {
		if !p.inflight && !p.queued && p.timer != nil && p.timer.Stop() {
			c.wg.Done() // the stopped timer's count
			c.settle(node, p)
		}
	}
	c.mu.Unlock()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// trailing sends a push owed by coalescing, with a deadline of its own.
func (r *Relay) trailing(t p2http.Target, important bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.PushDeadline)
	defer cancel()
	select {
	case r.inflight <- struct{}{}:
		defer func() { <-r.inflight }()
	case <-ctx.Done():
		return timedOut(ctx.Err())
	}
	sender := r.senderFor(t)
	if sender == nil {
		return nil
	}
	err := r.send(ctx, sender, t, p2http.Wakeup{Token: t.Token, Device: t.Device, Important: important})
	r.recordPush(ctx, t, 0, false, err)
	if err != nil {
		r.cfg.Logger.WarnContext(ctx, "trailing push failed", "service", t.Service, "code", p2http.ErrorCode(err))
	}
	return err
}

// Close sends the pushes still owed by coalescing, waits for them until ctx
// ends, and writes what became of the pushes not written yet. Call it after the HTTP
// server stopped taking requests and before closing the store.
func (r *Relay) Close(ctx context.Context) error {
	err := r.coalesce.close(ctx)
	r.pushLog.close()
	return err
}
