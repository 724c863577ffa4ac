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

// benchEach runs f as a sub-benchmark on a fresh SQLite file and a fresh
// PostgreSQL schema.
func benchEach(b *testing.B, f func(b *testing.B, d *db.DB)) {
	b.Run("sqlite", func(b *testing.B) { f(b, dbtest.SQLite(b)) })
	b.Run("postgres", func(b *testing.B) { f(b, dbtest.Postgres(b)) })
}

// registerNodes registers n devices and returns their nodes.
func registerNodes(b *testing.B, d *db.DB, n int) []string {
	b.Helper()
	nodes := make([]string, n)
	for i := range nodes {
		r := reg(fmt.Sprintf("user%d", i))
		if _, _, err := d.Register(context.Background(), r); err != nil {
			b.Fatal(err)
		}
		nodes[i] = r.Node
	}
	return nodes
}

// benchLookups looks the nodes up in turn, b.N times.
func benchLookups(b *testing.B, d *db.DB, nodes []string) {
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := d.Lookup(ctx, nodes[i%len(nodes)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkLookup measures the push path's look-up of a node, served by the
// cache after the first read, on both databases.
func BenchmarkLookup(b *testing.B) {
	benchEach(b, func(b *testing.B, d *db.DB) {
		benchLookups(b, d, registerNodes(b, d, 1000))
	})
}

// BenchmarkLookupUncached measures the look-up of a node that is not
// cached: one query, the database's round trip included.
func BenchmarkLookupUncached(b *testing.B) {
	benchEach(b, func(b *testing.B, d *db.DB) {
		nodes := registerNodes(b, d, 1000)
		db.SetCacheForTest(d, false)
		benchLookups(b, d, nodes)
	})
}

// BenchmarkRecordPushes measures writing the push records of 100 nodes, as
// the relay does about once a second: one statement, every row written (a
// node is only handed over when its record is worth a write). One node in
// ten failed.
func BenchmarkRecordPushes(b *testing.B) {
	benchEach(b, func(b *testing.B, d *db.DB) {
		nodes := registerNodes(b, d, 100)
		recs := make([]p2http.PushRecord, len(nodes))
		ctx := context.Background()
		at := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			at = at.Add(time.Second)
			for i, n := range nodes {
				recs[i] = p2http.PushRecord{Node: n, Pushes: 3, At: at, Outcome: p2http.PushDelivered}
				if i%10 == 0 {
					recs[i] = p2http.PushRecord{Node: n, Pushes: 1, At: at, Outcome: p2http.PushFailed, FailedAt: at, FailureReason: "QUOTA_EXCEEDED"}
				}
			}
			if err := d.RecordPushes(ctx, recs...); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRegister re-registers one device, as a phone does: with the
// token already stored (Conversations at every login, the common case:
// only the update time changes) and with a new token each time (which
// every instance's cache must forget).
func BenchmarkRegister(b *testing.B) {
	for _, c := range []struct {
		name     string
		newToken bool
	}{{"same-token", false}, {"new-token", true}} {
		b.Run(c.name, func(b *testing.B) {
			benchEach(b, func(b *testing.B, d *db.DB) {
				ctx := context.Background()
				r := reg("bench")
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					r.Node = p2http.NewNode()
					if c.newToken {
						i++
						r.Token = fmt.Sprintf("token-%d", i)
					}
					if _, _, err := d.Register(ctx, r); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
