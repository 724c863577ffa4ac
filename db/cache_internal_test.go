package db

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
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
	v := reflect.ValueOf(&reg).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Interface().(type) {
		case string, p2http.App, p2http.Service, p2http.SecretKind:
			f.SetString(fmt.Sprintf("%s-%d", v.Type().Field(i).Name, i))
		case []byte:
			f.SetBytes([]byte{1, 2, byte(i)})
		case time.Time:
			f.Set(reflect.ValueOf(time.Date(2024, 2, 29, 12, i, 0, 123456000, time.UTC)))
		case *time.Time:
			tm := time.Date(2025, 1, 1, 0, 0, i, 1000, time.UTC)
			f.Set(reflect.ValueOf(&tm))
		default:
			t.Fatalf("field %s of type %s: teach newCacheEntry and this test about it", v.Type().Field(i).Name, f.Type())
		}
	}
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

// BenchmarkCacheGC measures what a full cache adds to each collection
// (p2http runs one every 0.1 to 0.2 s under load): a full collection of a
// heap holding the cache, empty and full, with one P as p2bench runs p2http.
func BenchmarkCacheGC(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, n := range []int{0, cacheMax} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := newRegCache(true)
			now := time.Now()
			for i := range n {
				pushed := now
				c.put(p2http.Registration{App: "app", Service: p2http.FCM, Device: fmt.Sprint("device", i), Domain: "example.org",
					Token: fmt.Sprint(strings.Repeat("t", 160), i), Node: fmt.Sprint("node", i), SecretKind: p2http.SecretKept,
					SecretEnc: make([]byte, 48), CreatedAt: now, UpdatedAt: now, LastPushAt: &pushed}, c.gen.Load(), now)
			}
			if len(c.m) != n {
				b.Fatalf("%d entries cached, want %d", len(c.m), n)
			}
			runtime.GC()
			for b.Loop() {
				runtime.GC()
			}
			runtime.KeepAlive(c)
		})
	}
}
