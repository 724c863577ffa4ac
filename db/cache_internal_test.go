package db

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/internal/testutil"
)

// Entries cached at the same moment expire over a spread of times, within
// cacheTTL ± cacheJitter, and are due for a refresh before they expire.
func TestCacheJitter(t *testing.T) {
	c := newRegCache(true)
	now := time.Now()
	for i := range 1000 {
		c.put(p2http.Registration{Node: string(rune('a'+i%26)) + time.Duration(i).String()}, c.gen.Load(), now)
	}
	lo, hi := time.Duration(1<<62), time.Duration(0)
	for _, e := range c.m {
		life := time.Duration(e.expires - now.UnixNano())
		lo, hi = min(lo, life), max(hi, life)
		if refresh := time.Duration(e.refreshAt - now.UnixNano()); refresh <= 0 || refresh >= life {
			t.Fatalf("refresh due at %v of a life of %v", refresh, life)
		}
	}
	minLife := time.Duration(float64(cacheTTL) * (1 - cacheJitter))
	maxLife := time.Duration(float64(cacheTTL) * (1 + cacheJitter))
	if lo < minLife || hi > maxLife {
		t.Fatalf("lives from %v to %v, want within %v to %v", lo, hi, minLife, maxLife)
	}
	if hi-lo < (maxLife-minLife)/2 {
		t.Fatalf("lives from %v to %v: entries cached together still expire together", lo, hi)
	}
	node := "a0s"
	if _, ok, stale := c.get(node, now.Add(time.Duration(c.m[node].refreshAt-now.UnixNano())-time.Millisecond)); !ok || stale != nil {
		t.Fatalf("before its refresh time: cached %v, due %v", ok, stale != nil)
	}
	at := now.Add(time.Duration(c.m[node].refreshAt - now.UnixNano()))
	if _, ok, stale := c.get(node, at); !ok || stale == nil {
		t.Fatalf("at its refresh time: cached %v, due %v", ok, stale != nil)
	}
	if _, ok, stale := c.get(node, at); !ok || stale != nil {
		t.Fatalf("a second look-up while the refresh runs: cached %v, due %v", ok, stale != nil)
	}
	if _, ok, _ := c.get(node, now.Add(time.Duration(c.m[node].expires-now.UnixNano()))); ok {
		t.Fatal("served after its expiry")
	}
}

// A look-up of an entry due for a refresh is served from the cache, and
// reads the database again in the background: a change made behind
// p2http's back (no notification) shows before the entry would have
// expired, and so does a removal.
func TestCacheRefreshAhead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "p2.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r := p2http.Registration{Service: p2http.FCM, Device: p2http.DeviceHash("a@example.org", "d"), Domain: "example.org",
		Token: "token-old", Node: p2http.NewNode()}
	if _, _, err := d.Register(ctx, r); err != nil {
		t.Fatal(err)
	}
	lookup := func() (p2http.Registration, error) {
		t.Helper()
		return d.Lookup(ctx, r.Node)
	}
	if _, err := lookup(); err != nil { // cached from now on
		t.Fatal(err)
	}
	if _, err := d.x.ExecContext(ctx, `UPDATE registrations SET token = 'token-new' WHERE node = ?`, r.Node); err != nil {
		t.Fatal(err)
	}
	if got, _ := lookup(); got.Token != "token-old" {
		t.Fatalf("token %q: the entry was not cached", got.Token)
	}
	due := func() {
		d.cache.mu.Lock()
		d.cache.m[r.Node].refreshAt = time.Now().UnixNano()
		d.cache.mu.Unlock()
	}
	due()
	if got, _ := lookup(); got.Token != "token-old" {
		t.Fatalf("token %q: a look-up due for a refresh waited for the database", got.Token)
	}
	testutil.Eventually(t, 3*time.Second, "the refresh", func() bool {
		got, err := lookup()
		return err == nil && got.Token == "token-new"
	})
	d.cache.mu.RLock()
	e := d.cache.m[r.Node]
	d.cache.mu.RUnlock()
	if e == nil || e.refreshing.Load() || time.Until(time.Unix(0, e.expires)) < time.Duration(float64(cacheTTL)*(1-cacheJitter))-time.Second {
		t.Fatal("the refreshed entry does not start a new life")
	}

	if _, err := d.x.ExecContext(ctx, `DELETE FROM registrations WHERE node = ?`, r.Node); err != nil {
		t.Fatal(err)
	}
	due()
	lookup()
	testutil.Eventually(t, 3*time.Second, "the removal", func() bool {
		_, err := lookup()
		return p2http.ErrorCode(err) == p2http.ENOTFOUND
	})
}

// Close waits for the refreshes running and lets none start afterwards.
func TestCacheRefreshClose(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "p2.db"))
	if err != nil {
		t.Fatal(err)
	}
	e := &cacheEntry{}
	e.refreshing.Store(true)
	d.Close()
	d.refresh("node", e) // must neither block nor start anything
	if e.refreshing.Load() {
		t.Fatal("a refresh refused after Close left the entry marked as refreshing")
	}
}

// An entry gives back exactly the registration it was made of, every
// field of it: a field added to p2http.Registration and not to the cache's
// packing fails here.
func TestCacheEntryRoundTrip(t *testing.T) {
	var reg p2http.Registration
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		for i := range v.NumField() {
			f := v.Field(i)
			switch f.Interface().(type) {
			case string, p2http.App, p2http.Service, p2http.SecretKind, p2http.PushOutcome:
				f.SetString(fmt.Sprintf("%s-%d", v.Type().Field(i).Name, i))
			case []byte:
				f.SetBytes([]byte{1, 2, byte(i)})
			case time.Time:
				f.Set(reflect.ValueOf(time.Date(2024, 2, 29, 12, i, 0, 123456000, time.UTC)))
			case *time.Time:
				tm := time.Date(2025, 1, 1, 0, 0, i, 1000, time.UTC)
				f.Set(reflect.ValueOf(&tm))
			case bool:
				f.SetBool(true)
			case int64:
				f.SetInt(int64(1000 + i))
			case p2http.PushHistory:
				fill(f)
			default:
				t.Fatalf("field %s of type %s: teach newCacheEntry and this test about it", v.Type().Field(i).Name, f.Type())
			}
		}
	}
	fill(reflect.ValueOf(&reg).Elem())
	e, ok := newCacheEntry(reg)
	if !ok {
		t.Fatal("not packed")
	}
	if got := e.registration(); !reflect.DeepEqual(got, reg) {
		t.Fatalf("unpacked %+v\nwant %+v", got, reg)
	}
	// Zero times and a derived secret survive too.
	zero := p2http.Registration{Node: "n"}
	e, _ = newCacheEntry(zero)
	if got := e.registration(); !reflect.DeepEqual(got, zero) {
		t.Fatalf("unpacked %+v\nwant %+v", got, zero)
	}
}

// A full cache takes a new node in only at its second miss, in the place of
// one entry; replacing an entry it holds drops none.
func TestCacheEviction(t *testing.T) {
	c := newRegCache(true)
	now := time.Now()
	for i := range cacheMax {
		if !c.put(p2http.Registration{Node: fmt.Sprint("n", i)}, c.gen.Load(), now) {
			t.Fatalf("entry %d refused by a cache with room", i)
		}
	}
	late := p2http.Registration{Node: "late"}
	if c.put(late, c.gen.Load(), now) {
		t.Fatal("a full cache took a node in at its first miss")
	}
	if !c.put(late, c.gen.Load(), now) {
		t.Fatal("a full cache refused a node at its second miss")
	}
	if n := len(c.m); n != cacheMax {
		t.Fatalf("%d entries after a second miss in a full cache, want %d", n, cacheMax)
	}
	if _, ok, _ := c.get(late.Node, now); !ok {
		t.Fatal("the node that made room is not cached")
	}
	for node := range c.m {
		if !c.put(p2http.Registration{Node: node, Token: "new"}, c.gen.Load(), now) {
			t.Fatal("a full cache refused to replace an entry it holds")
		}
		break
	}
	if len(c.m) != cacheMax {
		t.Fatalf("%d entries after a replacement in a full cache", len(c.m))
	}
}

// Nodes looked up once each (a large server's pushes to rarely pushed
// devices) leave a full cache's entries alone; once its entries have
// expired, a node is taken in at its first miss again.
func TestCacheDoorkeeper(t *testing.T) {
	c := newRegCache(true)
	now := time.Now()
	for i := range cacheMax {
		c.put(p2http.Registration{Node: fmt.Sprint("hot", i)}, c.gen.Load(), now)
	}
	for i := range 2 * cacheMax {
		if c.put(p2http.Registration{Node: fmt.Sprint("once", i)}, c.gen.Load(), now) {
			t.Fatalf("one-off node %d taken into a full cache", i)
		}
	}
	for i := range cacheMax {
		if _, ok, _ := c.get(fmt.Sprint("hot", i), now); !ok {
			t.Fatalf("hot node %d dropped by one-off look-ups", i)
		}
	}
	later := now.Add(time.Duration(float64(cacheTTL)*(1+cacheJitter)) + time.Second)
	if !c.put(p2http.Registration{Node: "fresh"}, c.gen.Load(), later) {
		t.Fatal("a cache of expired entries refused a node at its first miss")
	}
	if n := len(c.m); n != cacheMax {
		t.Fatalf("%d entries, want %d: an expired entry makes room, it does not add one", n, cacheMax)
	}
}

// BenchmarkCachePutFull measures what a miss costs a full cache of fresh
// entries when the node is looked up once in a long while (the
// million-registration side of p2bench's scale scenario): with the
// doorkeeper, a fingerprint and a refusal; before it, an entry built, and
// an eighth of the cache evicted every cacheMax/8 misses. (Once entries
// expire, a miss that picks an expired victim builds an entry again.)
func BenchmarkCachePutFull(b *testing.B) {
	c := newRegCache(true)
	now := time.Now()
	reg := p2http.Registration{App: "app", Service: p2http.FCM, Device: "device", Domain: "example.org",
		Token: strings.Repeat("t", 160), SecretKind: p2http.SecretKept, SecretEnc: make([]byte, 48), CreatedAt: now, UpdatedAt: now}
	for i := range cacheMax {
		reg.Node = fmt.Sprint("full", i)
		c.put(reg, c.gen.Load(), now)
	}
	nodes := make([]string, 1<<20)
	for i := range nodes {
		nodes[i] = fmt.Sprint("once", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		reg.Node = nodes[i%len(nodes)]
		c.put(reg, c.gen.Load(), now)
		i++
	}
}

// scannedRegistration is registration i as a look-up reads it: every
// string of its own, as database/sql scans them, and a 160-character token.
func scannedRegistration(i int, now time.Time) p2http.Registration {
	pushed := now
	return p2http.Registration{App: p2http.App(strings.Clone("default")), Service: p2http.Service(strings.Clone("fcm")),
		Device: fmt.Sprintf("%040x", i), Domain: strings.Clone("example.org"),
		Token: fmt.Sprint(strings.Repeat("t", 160), i), Node: fmt.Sprintf("node%08d", i),
		SecretKind: p2http.SecretKind(strings.Clone("kept")), SecretEnc: make([]byte, 48),
		CreatedAt: now, UpdatedAt: now,
		PushHistory: p2http.PushHistory{Recorded: true, Pushes: 3, LastPushAt: &pushed, LastOutcome: p2http.PushDelivered}}
}

// fillCache caches registrations 0 to n-1 and returns their nodes.
func fillCache(b *testing.B, c *regCache, n int, now time.Time) []string {
	nodes := make([]string, n)
	for i := range n {
		reg := scannedRegistration(i, now)
		nodes[i] = reg.Node
		c.put(reg, c.gen.Load(), now)
	}
	if len(c.m) != n {
		b.Fatalf("%d entries cached, want %d", len(c.m), n)
	}
	return nodes
}

// BenchmarkCacheGC measures what a full cache adds to each collection
// (p2http runs one every 0.1 to 0.2 s under load): a full collection of a
// heap holding the cache, empty and full, with one P as p2bench runs p2http,
// and the heap and the objects each entry holds.
func BenchmarkCacheGC(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, n := range []int{0, cacheMax} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			c := newRegCache(true)
			fillCache(b, c, n, time.Now())
			runtime.GC()
			runtime.ReadMemStats(&after)
			for b.Loop() {
				runtime.GC()
			}
			if n > 0 {
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "heap-B/entry")
				b.ReportMetric(float64(after.HeapObjects-before.HeapObjects)/float64(n), "objects/entry")
			}
			runtime.KeepAlive(c)
		})
	}
}

// BenchmarkCacheUnderLimit measures a push's cache hit with what the
// collector charges the push for the cache's entries, under p2http's memory
// settings: GOGC=400 and the default soft memory limit of 34 MiB (which
// under load, not GOGC, sets when the collector runs: docs/performance.md,
// change 19), one P, a few MB live besides the cache, and each push leaving
// the garbage of one (12 KB in 150 objects, as the api benchmark's push).
// With 1,000 entries it is the hit and the garbage; with a full cache, the
// difference is the entries' share of each collection, per push.
func BenchmarkCacheUnderLimit(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(34 << 20))
	for _, n := range []int{1000, cacheMax} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := newRegCache(true)
			now := time.Now()
			nodes := fillCache(b, c, n, now)
			live := make([][]byte, 300) // 3 MB: connections, buffers, the rest of p2http
			for i := range live {
				live[i] = make([]byte, 10<<10)
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			i := 0
			for b.Loop() {
				if _, ok, _ := c.get(nodes[i%n], now); !ok {
					b.Fatal("a cached node missed")
				}
				for range 150 {
					pushGarbage = make([]byte, 80)
				}
				i++
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.NumGC-before.NumGC)/float64(b.N)*1000, "GCs/1000op")
			runtime.KeepAlive(live)
		})
	}
}

// pushGarbage keeps BenchmarkCacheUnderLimit's allocations on the heap.
var pushGarbage []byte
