package db_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/internal/testutil"
)

// twoInstances opens a fresh PostgreSQL schema twice, as two p2http
// instances would, and returns both and the schema's URL.
func twoInstances(t *testing.T) (a, b *db.DB, url string) {
	url = dbtest.PostgresSchemaURL(t)
	open := func() *db.DB {
		d, err := db.Open(ctxT(t), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	return open(), open(), url
}

// Two instances on one PostgreSQL: what one writes, the other's cache
// forgets, so a push never goes to a replaced token or a removed phone.
func TestCacheAcrossInstances(t *testing.T) {
	ctx := ctxT(t)
	a, b, _ := twoInstances(t)
	r := reg("alice")
	if _, _, err := a.Register(ctx, r); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second look-up is served from A's cache
		if got, err := a.Lookup(ctx, r.Node); err != nil || got.Token != "token-alice" {
			t.Fatalf("lookup: %v %v", got.Token, err)
		}
	}
	again := r
	again.Token, again.Node = "token-renewed", p2http.NewNode()
	if _, _, err := b.Register(ctx, again); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 3*time.Second, "instance A still serves a stale registration: token replaced through B", func() bool {
		got, err := a.Lookup(ctx, r.Node)
		return err == nil && got.Token == "token-renewed"
	})
	if err := b.Unregister(ctx, p2http.DefaultApp, p2http.FCM, r.Device); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 3*time.Second, "instance A still serves a stale registration: unregistered through B", func() bool {
		_, err := a.Lookup(ctx, r.Node)
		return p2http.ErrorCode(err) == p2http.ENOTFOUND
	})

	// A dead token removed through B.
	c := reg("carol")
	if _, _, err := a.Register(ctx, c); err != nil {
		t.Fatal(err)
	}
	a.Lookup(ctx, c.Node)
	if ok, err := b.RemoveDead(ctx, c.Node, time.Now().Add(time.Second)); err != nil || !ok {
		t.Fatalf("remove dead: %v %v", ok, err)
	}
	testutil.Eventually(t, 3*time.Second, "instance A still serves a stale registration: removed through B", func() bool {
		_, err := a.Lookup(ctx, c.Node)
		return p2http.ErrorCode(err) == p2http.ENOTFOUND
	})
}

// Re-registrations of one device race through two instances, each with one
// of two tokens, so that some keep the stored token (and notify no one)
// while others replace it. Once they stop, both caches serve what the
// database holds: a re-registration that took the token for kept while
// another replaced it would leave a cache on the replaced token.
func TestRacingReRegistrationsKeepCachesRight(t *testing.T) {
	ctx := ctxT(t)
	a, b, url := twoInstances(t)
	truth, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer truth.Close()
	db.SetCacheForTest(truth, false)

	r := reg("racer")
	stored, _, err := a.Register(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	tokens := []string{"token-one", "token-two"}
	var wg sync.WaitGroup
	for _, d := range []*db.DB{a, b} {
		wg.Go(func() {
			for range 300 {
				again := r
				again.Node, again.Token = p2http.NewNode(), tokens[rand.IntN(len(tokens))]
				if _, _, err := d.Register(ctx, again); err != nil {
					t.Error(err)
					return
				}
				if _, err := d.Lookup(ctx, stored.Node); err != nil { // (re)fills the cache
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	want, err := truth.Lookup(ctx, stored.Node)
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]*db.DB{"A": a, "B": b} {
		testutil.Eventually(t, 3*time.Second, fmt.Sprintf("instance %s does not serve the database's token %q", name, want.Token), func() bool {
			got, err := d.Lookup(ctx, stored.Node)
			return err == nil && got.Token == want.Token
		})
	}
}

// On one instance the cache never serves what was just written.
func TestCacheLocalWrites(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		r := reg("dave")
		d.Register(ctx, r)
		d.Lookup(ctx, r.Node)
		r2 := r
		r2.Token = "token-new"
		d.Register(ctx, r2)
		if got, _ := d.Lookup(ctx, r.Node); got.Token != "token-new" {
			t.Fatalf("cached token %q after re-registration", got.Token)
		}
		at := time.Now().Add(time.Minute)
		delivered(t, d, at, r.Node)
		if got, _ := d.Lookup(ctx, r.Node); got.LastPushAt == nil || !got.LastPushAt.Equal(micro(at)) {
			t.Fatalf("cached last push %v, want %v", got.LastPushAt, micro(at))
		}
		d.Unregister(ctx, p2http.DefaultApp, p2http.FCM, r.Device)
		if _, err := d.Lookup(ctx, r.Node); p2http.ErrorCode(err) != p2http.ENOTFOUND {
			t.Fatalf("lookup after unregister: %v", err)
		}
	})
}
