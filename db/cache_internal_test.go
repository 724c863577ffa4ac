package db

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/p2http/p2http"
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
	eventually(t, "the refresh", func() bool {
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
	eventually(t, "the removal", func() bool {
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

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not show within 3 s", what)
		}
		time.Sleep(5 * time.Millisecond)
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
		case string, p2http.Service, p2http.SecretKind:
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

// A full cache makes room by dropping some entries, not all of them.
func TestCacheEviction(t *testing.T) {
	c := newRegCache(true)
	now := time.Now()
	for i := range cacheMax + 1 {
		c.put(p2http.Registration{Node: fmt.Sprint("n", i)}, c.gen.Load(), now)
	}
	if n := len(c.m); n != cacheMax-cacheMax/8+1 {
		t.Fatalf("%d entries after filling %d + 1, want %d", n, cacheMax, cacheMax-cacheMax/8+1)
	}
	if _, ok, _ := c.get(fmt.Sprint("n", cacheMax), now); !ok {
		t.Fatal("the entry that made room is not cached")
	}
	// Replacing an entry of a full cache evicts nothing.
	for len(c.m) < cacheMax {
		c.put(p2http.Registration{Node: fmt.Sprint("m", len(c.m))}, c.gen.Load(), now)
	}
	for node := range c.m {
		c.put(p2http.Registration{Node: node, Token: "new"}, c.gen.Load(), now)
		break
	}
	if len(c.m) != cacheMax {
		t.Fatalf("%d entries after a replacement in a full cache", len(c.m))
	}
}
