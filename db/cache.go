package db

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"

	"github.com/p2http/p2http"
)

// The registration cache keeps recently pushed registrations in memory, so
// that a push for a hot node does not wait for the database. It stays
// correct across several p2http instances on one PostgreSQL: every write
// that changes where a node's pushes go (register, unregister, removal of a
// dead token) notifies the channel below after it commits, every instance
// listens and forgets that node, and while an instance's listening
// connection is down its cache is off and emptied. A time to live bounds
// what a write from outside p2http (a manual UPDATE, an admin command that
// bypasses this package) can leave stale.

const (
	// notifyChannel is the PostgreSQL channel of node invalidations.
	notifyChannel = "p2http_registrations"
	// cacheTTL bounds how long an entry is trusted without a notification.
	cacheTTL = 30 * time.Second
	// cacheMax bounds the entries kept; beyond it the cache starts afresh.
	cacheMax = 50_000
)

type cacheEntry struct {
	reg p2http.Registration
	at  time.Time
}

// regCache is a node → registration cache with explicit invalidation.
type regCache struct {
	on  atomic.Bool
	gen atomic.Uint64 // bumped by every invalidation

	mu sync.RWMutex
	m  map[string]cacheEntry
}

func newRegCache(on bool) *regCache {
	c := &regCache{m: map[string]cacheEntry{}}
	c.on.Store(on)
	return c
}

// get returns a fresh cached registration of node.
func (c *regCache) get(node string, now time.Time) (p2http.Registration, bool) {
	if !c.on.Load() {
		return p2http.Registration{}, false
	}
	c.mu.RLock()
	e, ok := c.m[node]
	c.mu.RUnlock()
	if !ok || now.Sub(e.at) > cacheTTL {
		return p2http.Registration{}, false
	}
	return e.reg, true
}

// put caches reg, read from the database while the generation was gen: an
// invalidation since then may concern it, so it is not cached.
func (c *regCache) put(reg p2http.Registration, gen uint64, now time.Time) {
	if !c.on.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if len(c.m) >= cacheMax {
		clear(c.m)
	}
	c.m[reg.Node] = cacheEntry{reg: reg, at: now}
}

// pushed updates the last-push time of cached nodes.
func (c *regCache) pushed(t time.Time, nodes []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range nodes {
		if e, ok := c.m[n]; ok {
			e.reg.LastPushAt = &t
			c.m[n] = e
		}
	}
}

// forget drops node.
func (c *regCache) forget(node string) {
	c.mu.Lock()
	c.gen.Add(1)
	delete(c.m, node)
	c.mu.Unlock()
}

// reset empties the cache and turns it on or off.
func (c *regCache) reset(on bool) {
	c.mu.Lock()
	c.gen.Add(1)
	clear(c.m)
	c.on.Store(on)
	c.mu.Unlock()
}

// invalidate forgets node here and, on PostgreSQL, in every other instance.
// It runs after the write committed; a failed notification empties this
// instance's cache is all it can do, and the TTL bounds the others.
func (d *DB) invalidate(ctx context.Context, node string) {
	d.cache.forget(node)
	if d.driver != DriverPostgres {
		return
	}
	if _, err := d.x.ExecContext(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, node); err != nil {
		d.cache.reset(d.cache.on.Load())
	}
}

// listen follows the invalidations of other instances until Close. The
// cache is on only while the listening connection is up.
func (d *DB) listen(dsn string) {
	events := func(ev pq.ListenerEventType, err error) {
		switch ev {
		case pq.ListenerEventConnected, pq.ListenerEventReconnected:
			d.cache.reset(true)
		case pq.ListenerEventDisconnected, pq.ListenerEventConnectionAttemptFailed:
			d.cache.reset(false)
		}
	}
	l := pq.NewListener(dsn, 100*time.Millisecond, 5*time.Second, events)
	d.listener = l
	if err := l.Listen(notifyChannel); err != nil {
		d.cache.reset(false)
	}
	d.listening.Add(1)
	go func() {
		defer d.listening.Done()
		ping := time.NewTicker(30 * time.Second)
		defer ping.Stop()
		for {
			select {
			case n, ok := <-l.Notify:
				switch {
				case !ok:
					return
				case n == nil: // reconnected: notifications may have been missed
					d.cache.reset(true)
				default:
					d.cache.forget(n.Extra)
				}
			case <-ping.C:
				if err := l.Ping(); err != nil {
					d.cache.reset(false)
				}
			case <-d.closing:
				return
			}
		}
	}()
}
