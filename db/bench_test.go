package db_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
)

// BenchmarkLookup measures the push path's look-up of a node, served by the
// cache after the first read, on both databases.
func BenchmarkLookup(b *testing.B) {
	for _, c := range []struct {
		name string
		open func(testing.TB) *db.DB
	}{{"sqlite", func(tb testing.TB) *db.DB { return dbtest.SQLite(tb) }}, {"postgres", func(tb testing.TB) *db.DB { return dbtest.Postgres(tb) }}} {
		b.Run(c.name, func(b *testing.B) {
			d := c.open(b)
			ctx := context.Background()
			nodes := make([]string, 1000)
			for i := range nodes {
				r := reg(fmt.Sprintf("user%d", i))
				if _, _, err := d.Register(ctx, r); err != nil {
					b.Fatal(err)
				}
				nodes[i] = r.Node
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := d.Lookup(ctx, nodes[i%len(nodes)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkLookupUncached measures the look-up of a node that is not
// cached: one query, the database's round trip included.
func BenchmarkLookupUncached(b *testing.B) {
	for _, c := range []struct {
		name string
		open func(testing.TB) *db.DB
	}{{"sqlite", func(tb testing.TB) *db.DB { return dbtest.SQLite(tb) }}, {"postgres", func(tb testing.TB) *db.DB { return dbtest.Postgres(tb) }}} {
		b.Run(c.name, func(b *testing.B) {
			d := c.open(b)
			ctx := context.Background()
			nodes := make([]string, 1000)
			for i := range nodes {
				r := reg(fmt.Sprintf("user%d", i))
				if _, _, err := d.Register(ctx, r); err != nil {
					b.Fatal(err)
				}
				nodes[i] = r.Node
			}
			db.SetCacheForTest(d, false)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := d.Lookup(ctx, nodes[i%len(nodes)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkPushed measures writing the last-push times of 100 nodes, as
// the relay does once a second.
func BenchmarkPushed(b *testing.B) {
	for _, c := range []struct {
		name string
		open func(testing.TB) *db.DB
	}{{"sqlite", func(tb testing.TB) *db.DB { return dbtest.SQLite(tb) }}, {"postgres", func(tb testing.TB) *db.DB { return dbtest.Postgres(tb) }}} {
		b.Run(c.name, func(b *testing.B) {
			d := c.open(b)
			ctx := context.Background()
			nodes := make([]string, 100)
			for i := range nodes {
				r := reg(fmt.Sprintf("user%d", i))
				if _, _, err := d.Register(ctx, r); err != nil {
					b.Fatal(err)
				}
				nodes[i] = r.Node
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := d.Pushed(ctx, time.Now(), nodes...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRegister measures a re-registration (the common case:
// Conversations registers again at every login).
func BenchmarkRegister(b *testing.B) {
	for _, c := range []struct {
		name string
		open func(testing.TB) *db.DB
	}{{"sqlite", func(tb testing.TB) *db.DB { return dbtest.SQLite(tb) }}, {"postgres", func(tb testing.TB) *db.DB { return dbtest.Postgres(tb) }}} {
		b.Run(c.name, func(b *testing.B) {
			d := c.open(b)
			ctx := context.Background()
			r := reg("bench")
			b.ReportAllocs()
			for b.Loop() {
				r.Node = p2http.NewNode()
				if _, _, err := d.Register(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
