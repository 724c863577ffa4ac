package db

import (
	"context"
	"hash/maphash"
	"math/rand/v2"
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
//
// Entries read together (a burst of pushes, a restart) must not expire
// together, or every push of the next moment waits for the database at once:
// each entry lives cacheTTL give or take cacheJitter, drawn at random, and a
// look-up in the last part of an entry's life (from cacheRefreshAt of it on)
// is served from the cache while the entry is read again in the background.
// A node pushed regularly thus never leaves the cache, and its pushes never
// wait for the database; a node pushed once is forgotten when its time is up.
//
// A full cache takes a node in only when it missed recently already (a
// "doorkeeper", as in TinyLFU), or when the entry picked at random to make
// room has expired. On a large server most nodes are pushed once in a long
// while: caching each of them would drop a node pushed every minute for one
// that will not be looked up again, and allocate and drop an entry for
// every such push. The doorkeeper remembers recent misses in a fixed table
// of fingerprints, which holds no pointers for the collector to scan.
//
// What each part is worth, measured on the project's shared 2-core machines
// (docs/performance.md, changes 2, 7, 18 and 24; figures of one session,
// builds alternated):
//   - The cache: BenchmarkLookup (a hit) takes about 0.1 µs and allocates
//     nothing; BenchmarkLookupUncached, the same look-up as a query, 23 µs
//     on SQLite and 83 µs on PostgreSQL, of which 50 µs of p2http's own CPU.
//     A push costs p2http 45 to 100 µs of CPU in all, so without the cache
//     it would cost half as much again, and wait for the database.
//   - The doorkeeper: BenchmarkCachePutFull, a miss of a full cache by a
//     node seen once, 0.2 to 0.3 µs and no allocation, against 1.1 µs and
//     544 bytes in 3 allocations when every miss built an entry.
//   - Packed entries (cacheEntry): BenchmarkCacheGC counts 496 bytes and 4
//     objects per entry (560 since the push history joined it: change 25),
//     against 641 bytes and 9 with the plain p2http.Registration kept as it
//     was read; 20,000 of those are 2.9 MB
//     more under a soft memory limit of 34 MiB that, under load, decides when
//     the collector runs. BenchmarkCacheUnderLimit/20000 (a hit and a push's
//     garbage under p2http's memory settings, full cache) took 9.2 µs of CPU
//     per push packed and 13.1 µs plain (medians of 8 rounds alternated;
//     plain cost more in 7 of them): 4 to 9 % of a push. TestCacheEntryRoundTrip
//     keeps the packing complete.

const (
	// notifyChannel is the PostgreSQL channel of node invalidations.
	notifyChannel = "p2http_registrations"
	// cacheTTL is how long an entry is trusted without a notification, on
	// average; cacheJitter the fraction it varies by, either way (so 24 to
	// 36 s).
	cacheTTL    = 30 * time.Second
	cacheJitter = 0.2
	// cacheRefreshAt is the fraction of an entry's life after which a
	// look-up refreshes it in the background.
	cacheRefreshAt = 0.75
	// cacheRefreshers bounds the background refreshes running at once;
	// beyond it an entry is refreshed by a later look-up, or expires.
	cacheRefreshers = 4
	// cacheMax bounds the entries kept (about 300 bytes each: the token
	// dominates); beyond it one, picked at random, makes room for a node
	// the doorkeeper lets in. It is sized so that a full cache fits under
	// the default soft memory limit of p2http next to everything else (a
	// full cache that does not made the collector run back to back); a
	// registration pushed twice within the time to live is what it is for.
	cacheMax = 20_000
	// cacheSeenSlots is the size of the doorkeeper's table (4 bytes each):
	// a miss of a full cache is remembered until another one lands in its
	// slot, on average cacheSeenSlots such misses later (25 s at 2,600
	// misses a second); it survives k of them with probability
	// exp(-k/cacheSeenSlots).
	cacheSeenSlots = 1 << 16
)

// cacheEntry is a cached registration, stored compactly: its strings end to
// end in one string, its times as integers. Entries are never changed once
// in the map, except for hist (under the write lock) and refreshing.
type cacheEntry struct {
	s                string    // App, Service, Device, Domain, Token, Node, SecretKind, end to end
	ends             [7]uint16 // where each of them ends in s
	secret           []byte    // SecretEnc
	createdS, updatS int64     // CreatedAt and UpdatedAt: unix seconds…
	createdN, updatN int32     // …and nanoseconds
	hist             p2http.PushHistory
	refreshAt        int64 // unix nanoseconds: from then on a look-up refreshes the entry
	expires          int64 // unix nanoseconds: from then on it is not served
	// refreshing is set by the look-up that starts a refresh, so that one
	// runs at a time per entry.
	refreshing atomic.Bool
}

// newCacheEntry packs reg; ok is false when its strings are too long to
// pack (they are bounded far below that by validation).
func newCacheEntry(reg p2http.Registration) (e *cacheEntry, ok bool) {
	parts := [7]string{string(reg.App), string(reg.Service), reg.Device, reg.Domain, reg.Token, reg.Node, string(reg.SecretKind)}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > 1<<16-1 {
		return nil, false
	}
	b := make([]byte, 0, n)
	e = &cacheEntry{secret: reg.SecretEnc, hist: reg.PushHistory,
		createdS: reg.CreatedAt.Unix(), createdN: int32(reg.CreatedAt.Nanosecond()),
		updatS: reg.UpdatedAt.Unix(), updatN: int32(reg.UpdatedAt.Nanosecond())}
	for i, p := range parts {
		b = append(b, p...)
		e.ends[i] = uint16(len(b))
	}
	e.s = string(b)
	return e, true
}

// part returns the i-th string of e.
func (e *cacheEntry) part(i int) string {
	start := uint16(0)
	if i > 0 {
		start = e.ends[i-1]
	}
	return e.s[start:e.ends[i]]
}

// registration unpacks e; the strings share e's memory.
func (e *cacheEntry) registration() p2http.Registration {
	return p2http.Registration{
		App: p2http.App(e.part(0)), Service: p2http.Service(e.part(1)), Device: e.part(2), Domain: e.part(3),
		Token: e.part(4), Node: e.part(5), SecretKind: p2http.SecretKind(e.part(6)),
		SecretEnc:   e.secret,
		CreatedAt:   time.Unix(e.createdS, int64(e.createdN)).UTC(),
		UpdatedAt:   time.Unix(e.updatS, int64(e.updatN)).UTC(),
		PushHistory: e.hist,
	}
}

// regCache is a node → registration cache with explicit invalidation.
type regCache struct {
	on  atomic.Bool
	gen atomic.Uint64 // bumped by every invalidation

	mu sync.RWMutex
	m  map[string]*cacheEntry

	// seen is the doorkeeper: fingerprints of recent misses, by hash.
	seed maphash.Seed
	seen []atomic.Uint32
}

func newRegCache(on bool) *regCache {
	c := &regCache{m: map[string]*cacheEntry{}, seed: maphash.MakeSeed(), seen: make([]atomic.Uint32, cacheSeenSlots)}
	c.on.Store(on)
	return c
}

// get returns a fresh cached registration of node. When the entry is due
// for a refresh and nobody refreshes it yet, stale is that entry: the caller
// must refresh it (or call its refreshing.Store(false)).
func (c *regCache) get(node string, now time.Time) (reg p2http.Registration, ok bool, stale *cacheEntry) {
	if !c.on.Load() {
		return p2http.Registration{}, false, nil
	}
	n := now.UnixNano()
	c.mu.RLock()
	e := c.m[node]
	if e == nil || n >= e.expires {
		c.mu.RUnlock()
		return p2http.Registration{}, false, nil
	}
	reg = e.registration()
	c.mu.RUnlock()
	if n >= e.refreshAt && e.refreshing.CompareAndSwap(false, true) {
		stale = e
	}
	return reg, true, stale
}

// put caches reg, read from the database while the generation was gen: an
// invalidation since then may concern it, so it is not cached. A full cache
// takes it in the place of another entry, picked at random, only when reg's
// node missed a full cache recently already or that entry has expired. It
// reports whether reg was cached.
func (c *regCache) put(reg p2http.Registration, gen uint64, now time.Time) bool {
	if !c.on.Load() {
		return false
	}
	// Decide what can be decided under the read lock, and build the entry
	// before taking the write lock, which every look-up waits for.
	c.mu.RLock()
	_, there := c.m[reg.Node]
	full := len(c.m) >= cacheMax
	c.mu.RUnlock()
	again := false
	if !there && full {
		again = c.missed(reg.Node)
	}
	var e *cacheEntry
	if there || !full || again {
		var ok bool
		if e, ok = newCacheEntry(reg); !ok {
			return false
		}
	}
	life := time.Duration(float64(cacheTTL) * (1 - cacheJitter + 2*cacheJitter*rand.Float64()))
	n := now.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return false
	}
	victim, evict := "", false
	if _, there := c.m[reg.Node]; !there && len(c.m) >= cacheMax {
		var expired bool
		victim, expired = c.victimLocked(n)
		if !again && !expired {
			return false
		}
		evict = true
	}
	if e == nil { // the cache filled up meanwhile, or the victim expired
		var ok bool
		if e, ok = newCacheEntry(reg); !ok {
			return false
		}
	}
	if evict {
		delete(c.m, victim)
	}
	e.refreshAt, e.expires = n+int64(float64(life)*cacheRefreshAt), n+int64(life)
	c.m[e.part(5)] = e // the key shares the entry's memory
	return true
}

// missed remembers a miss of node in a full cache and reports whether node
// had missed a full cache recently already.
func (c *regCache) missed(node string) bool {
	h := maphash.String(c.seed, node)
	fp := uint32(h>>32) | 1 // never 0, an empty slot
	return c.seen[h%cacheSeenSlots].Swap(fp) == fp
}

// victimLocked picks the entry a full cache drops to make room: the first
// one map iteration yields, which starts at a random place. expired
// reports whether it is past its time (at n). c.mu is held.
func (c *regCache) victimLocked(n int64) (node string, expired bool) {
	for node, e := range c.m {
		return node, n >= e.expires
	}
	return "", false
}

// recorded adds push records to the cached registrations of their nodes
// as RecordPushes does in the database, at the precision the database
// keeps.
func (c *regCache) recorded(recs []p2http.PushRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range recs {
		e, ok := c.m[r.Node]
		if !ok {
			continue
		}
		r.At = r.At.UTC().Truncate(time.Microsecond)
		if !r.FailedAt.IsZero() {
			r.FailedAt = r.FailedAt.UTC().Truncate(time.Microsecond)
		}
		e.hist.Add(r) // new pointers: look-ups that copied the history keep theirs
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

// refresh reads e's node again in the background, unless cacheRefreshers
// refreshes are running already or d is closing; the entry is then served
// until a later look-up refreshes it, or it expires.
func (d *DB) refresh(node string, e *cacheEntry) {
	select {
	case d.refreshers <- struct{}{}:
	default:
		e.refreshing.Store(false)
		return
	}
	go func() {
		defer func() { <-d.refreshers }()
		_, cached, err := d.load(d.bg, node)
		switch {
		case p2http.ErrorCode(err) == p2http.ENOTFOUND:
			d.cache.forget(node)
		case !cached:
			// Failed, or raced an invalidation: a later look-up tries again.
			e.refreshing.Store(false)
		}
	}()
}

// stopRefreshes waits for the background refreshes (cancelled by d.bg) and
// lets no new one start.
func (d *DB) stopRefreshes() {
	for range cap(d.refreshers) {
		d.refreshers <- struct{}{}
	}
}

// invalidate forgets node here and, on PostgreSQL, in every other instance.
// It runs after the write committed; a failed notification empties this
// instance's cache is all it can do, and the TTL bounds the others.
func (d *DB) invalidate(ctx context.Context, node string) {
	d.cache.forget(node)
	if d.driver != DriverPostgres {
		return
	}
	var err error
	if d.notifier != nil {
		err = d.notifier.notify(ctx, node)
	} else {
		_, err = d.x.ExecContext(ctx, sqlNotify, notifyChannel, node)
	}
	if err != nil {
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
