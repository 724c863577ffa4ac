package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db/dbtest"
)

// A first registration sends no cache notification (its node is in no
// cache); a re-registration, which changes the token behind a known node,
// sends exactly one.
func TestRegisterNotifiesOnlyChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := pq.NewListener(dbtest.PostgresURL(), 10*time.Millisecond, time.Second, nil)
	defer l.Close()
	if err := l.Listen("p2http_registrations"); err != nil {
		t.Fatal(err)
	}
	store := dbtest.Postgres(t)
	r := reg("notify-" + time.Now().Format("150405.000000"))
	first, created, err := store.Register(ctx, r)
	if err != nil || !created {
		t.Fatalf("first registration: created %v, %v", created, err)
	}
	r.Token, r.Node = "a-new-token", p2http.NewNode() // as the relay does: a fresh node each time
	if _, created, err := store.Register(ctx, r); err != nil || created {
		t.Fatalf("re-registration: created %v, %v", created, err)
	}
	// Notifications arrive in the order they were sent; other tests share
	// the channel, so count only this node's, until well after the second.
	seen := 0
	quiet := time.After(5 * time.Second)
	for {
		select {
		case m := <-l.Notify:
			if m != nil && m.Extra == first.Node {
				seen++
				quiet = time.After(300 * time.Millisecond)
			}
		case <-quiet:
			if seen != 1 {
				t.Fatalf("%d notifications for the node, want 1 (for the re-registration only)", seen)
			}
			return
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
}
