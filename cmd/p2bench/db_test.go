package main

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
)

// TestSeedPushTimes seeds a real PostgreSQL schema both ways the scenarios
// do: never pushed (as after an import), and pushed within an hour, spread
// over all of it (the scale scenario's steady state).
func TestSeedPushTimes(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		within time.Duration
	}{{"never", 0}, {"hour", time.Hour}} {
		t.Run(c.name, func(t *testing.T) {
			url := dbtest.PostgresSchemaURL(t)
			store, err := db.Open(ctx, url) // the schema, by p2http's migrations
			if err != nil {
				t.Fatal(err)
			}
			store.Close()
			const n = 500
			began := time.Now()
			if err := seedPostgres(ctx, url, 0, n, "example.org", c.within); err != nil {
				t.Fatal(err)
			}
			conn, err := sql.Open("postgres", url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var rows, pushed int
			var oldest, newest sql.NullTime
			err = conn.QueryRowContext(ctx, `SELECT count(*), count(last_push_at), min(last_push_at), max(last_push_at)
				FROM registrations`).Scan(&rows, &pushed, &oldest, &newest)
			if err != nil {
				t.Fatal(err)
			}
			if rows != n {
				t.Fatalf("%d rows, want %d", rows, n)
			}
			if c.within == 0 {
				if pushed != 0 {
					t.Errorf("%d rows have a last push; want none", pushed)
				}
				return
			}
			if pushed != n {
				t.Fatalf("%d rows have a last push; want all %d", pushed, n)
			}
			// Spread over the whole hour: the oldest near its start, the
			// newest near now, none older than the hour.
			start := began.Add(-c.within)
			if oldest.Time.Before(start.Add(-time.Minute)) || oldest.Time.After(start.Add(5*time.Minute)) {
				t.Errorf("oldest last push %v; want within minutes after %v", oldest.Time, start)
			}
			if newest.Time.Before(began.Add(-5*time.Minute)) || newest.Time.After(time.Now()) {
				t.Errorf("newest last push %v; want within minutes before %v", newest.Time, began)
			}
		})
	}
}
