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
type coalescer struct {
	window time.Duration
	flush  func(t p2http.Target, important bool) error

	mu     sync.Mutex
	nodes  map[string]*pending
	closed bool
	// wg counts armed timers and running trailing pushes, so that close can
	// wait for every owed push.
	wg sync.WaitGroup
}

// pending is a node in flight or inside its window.
type pending struct {
	inflight  bool
	owed      bool          // a trailing push is owed
	important bool          // of the trailing push
	target    p2http.Target // the latest resolved target
	timer     *time.Timer
}

func newCoalescer(window time.Duration, flush func(p2http.Target, bool) error) *coalescer {
	return &coalescer{window: window, flush: flush, nodes: map[string]*pending{}}
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
		if c.nodes[node] == p && !p.inflight {
			c.settle(node, p)
		}
	})
}

// settle, with c.mu held, starts the node's owed trailing push or forgets
// the node.
func (c *coalescer) settle(node string, p *pending) {
	if !p.owed {
		delete(c.nodes, node)
		return
	}
	t, important := p.target, p.important
	p.owed, p.important, p.inflight = false, false, true
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.done(node, c.flush(t, important))
	}()
}

// close sends every owed push now and waits for them, or for ctx.
func (c *coalescer) close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	for node, p := range c.nodes {
		if !p.inflight && p.timer != nil && p.timer.Stop() {
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
	if err != nil {
		r.cfg.Logger.WarnContext(ctx, "trailing push failed", "service", t.Service, "code", p2http.ErrorCode(err))
	}
	return err
}

// Close sends the pushes still owed by coalescing, waits for them until ctx
// ends, and writes the pending last-push times. Call it after the HTTP
// server stopped taking requests and before closing the store.
func (r *Relay) Close(ctx context.Context) error {
	err := r.coalesce.close(ctx)
	r.pushLog.close()
	return err
}
