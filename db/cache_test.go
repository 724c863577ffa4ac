package db_test

import (
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
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
	eventually := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("instance A still serves a stale registration: %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	again := r
	again.Token, again.Node = "token-renewed", p2http.NewNode()
	if _, _, err := b.Register(ctx, again); err != nil {
		t.Fatal(err)
	}
	eventually("token replaced through B", func() bool {
		got, err := a.Lookup(ctx, r.Node)
		return err == nil && got.Token == "token-renewed"
	})
	if err := b.Unregister(ctx, p2http.DefaultApp, p2http.FCM, r.Device); err != nil {
		t.Fatal(err)
	}
	eventually("unregistered through B", func() bool {
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
	eventually("removed through B", func() bool {
		_, err := a.Lookup(ctx, c.Node)
		return p2http.ErrorCode(err) == p2http.ENOTFOUND
	})
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
		d.Pushed(ctx, at, r.Node)
		if got, _ := d.Lookup(ctx, r.Node); got.LastPushAt == nil || !got.LastPushAt.Equal(micro(at)) {
			t.Fatalf("cached last push %v, want %v", got.LastPushAt, micro(at))
		}
		d.Unregister(ctx, p2http.DefaultApp, p2http.FCM, r.Device)
		if _, err := d.Lookup(ctx, r.Node); p2http.ErrorCode(err) != p2http.ENOTFOUND {
			t.Fatalf("lookup after unregister: %v", err)
		}
	})
}
