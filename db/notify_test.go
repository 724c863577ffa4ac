package db_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
)

// listenNotifications listens to the cache notifications of every database
// of the test cluster, until the test ends.
func listenNotifications(t *testing.T) *pq.Listener {
	t.Helper()
	l := pq.NewListener(dbtest.PostgresURL(), 10*time.Millisecond, time.Second, nil)
	t.Cleanup(func() { l.Close() })
	if err := l.Listen("p2http_registrations"); err != nil {
		t.Fatal(err)
	}
	return l
}

// notificationsFor counts the notifications for node that l receives: until
// none has come for 300 ms after the last one, or for 5 s when none comes.
// Notifications arrive in the order they were sent, and other tests share
// the channel, so only node's count.
func notificationsFor(ctx context.Context, t *testing.T, l *pq.Listener, node string) int {
	t.Helper()
	seen := 0
	quiet := time.After(5 * time.Second)
	for {
		select {
		case m := <-l.Notify:
			if m != nil && m.Extra == node {
				seen++
				quiet = time.After(300 * time.Millisecond)
			}
		case <-quiet:
			return seen
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
}

// A first registration sends no cache notification (its node is in no
// cache); a re-registration, which changes the token behind a known node,
// sends exactly one.
func TestRegisterNotifiesOnlyChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := listenNotifications(t)
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
	if seen := notificationsFor(ctx, t, l, first.Node); seen != 1 {
		t.Fatalf("%d notifications for the node, want 1 (for the re-registration only)", seen)
	}
}

// A re-registration with the token stored when it started, blocked by a
// transaction that replaces that token and commits: the re-registration
// then replaces the token in turn, so it must notify, although the token it
// saw at first was its own. This guards any saving of the notification for
// a re-registration with an unchanged token (docs/performance.md, "tried
// and not kept"): reading the old token from the statement's snapshot would
// miss this one and leave other caches on the other transaction's token.
func TestReRegistrationAfterConcurrentChangeNotifies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := listenNotifications(t)
	url := dbtest.PostgresSchemaURL(t)
	store, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	r := reg("racing-" + time.Now().Format("150405.000000"))
	first, _, err := store.Register(ctx, r)
	if err != nil {
		t.Fatal(err)
	}

	raw, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE registrations SET token = 'token-elsewhere' WHERE node = $1`, first.Node); err != nil {
		t.Fatal(err)
	}

	type result struct {
		reg p2http.Registration
		err error
	}
	done := make(chan result, 1)
	go func() {
		again := r
		again.Node = p2http.NewNode()
		got, _, err := store.Register(ctx, again)
		done <- result{got, err}
	}()
	// Commit once the re-registration waits for the row.
	for waiting := 0; waiting == 0; {
		err := raw.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO registrations%'`).Scan(&waiting)
		if err != nil {
			t.Fatalf("the re-registration did not wait for the row: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil || res.reg.Token != r.Token || res.reg.Node != first.Node {
		t.Fatalf("re-registration: node %q token %q, %v; want node %q token %q", res.reg.Node, res.reg.Token, res.err, first.Node, r.Token)
	}

	// The other transaction's UPDATE notifies no one: the one notification
	// is the re-registration's.
	if seen := notificationsFor(ctx, t, l, first.Node); seen != 1 {
		t.Fatalf("%d notifications for the node, want 1: without it other caches keep the token of the other transaction", seen)
	}
}
