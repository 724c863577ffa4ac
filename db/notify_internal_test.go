package db

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"
)

func testPostgresURL() string {
	if u := os.Getenv("P2_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// Writes invalidating at once share statements, and every node is
// notified, once it is sent, to every listener.
func TestNotifierBatches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := testPostgresURL()
	channel := fmt.Sprintf("p2http_test_%d", time.Now().UnixNano())
	l := pq.NewListener(url, 10*time.Millisecond, time.Second, nil)
	defer l.Close()
	if err := l.Listen(channel); err != nil {
		t.Fatal(err)
	}
	n, err := newNotifier(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	n.channel = channel
	const writes = 200
	var wg sync.WaitGroup
	for i := range writes {
		wg.Go(func() {
			if err := n.notify(ctx, fmt.Sprint("node", i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got := map[string]bool{}
	for len(got) < writes {
		select {
		case m := <-l.Notify:
			if m != nil {
				got[m.Extra] = true
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d nodes notified", len(got), writes)
		}
	}
	if b := n.batches.Load(); b >= writes/2 {
		t.Errorf("%d statements for %d writes at once", b, writes)
	} else {
		t.Logf("%d statements for %d writes", b, writes)
	}
	if err := n.close(); err != nil {
		t.Fatal(err)
	}
	if err := n.notify(ctx, "after close"); err == nil {
		t.Fatal("notify after close succeeded")
	}
}
