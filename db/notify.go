package db

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"

	"github.com/lib/pq"
)

// The invalidations of the registration cache (see cache.go) go to the other
// instances as PostgreSQL notifications, one per node, sent after the write
// committed and before the write returns. A transaction that notifies takes
// a lock that PostgreSQL holds until its commit is on disk, so that
// notifications queue in commit order: every notification is a commit of
// its own, and they are serialised. One statement per write made the
// notifications the bottleneck of registrations (half of their time in the
// database).
//
// The notifier therefore sends them in batches, the way a database groups
// commits: a write hands its node over and waits; one goroutine sends
// whatever accumulated while the previous batch was under way, as one
// statement, and wakes the writers of that batch. Alone, a write waits for
// one round trip, as before; under load, dozens share it. The batches go
// over a connection of their own, with synchronous_commit off: their
// commits need no disk flush, as a notification is worth nothing after a
// crash of the server (every listener reconnects and empties its cache).

// sqlNotifyBatch notifies every node of $2 on channel $1.
const sqlNotifyBatch = `SELECT pg_notify($1, n) FROM unnest($2::text[]) AS n`

// notifier batches the notifications of one instance.
type notifier struct {
	pool    *sql.DB
	stmt    *sql.Stmt
	channel string // notifyChannel; another in tests

	mu      sync.Mutex
	next    *notifyBatch // filling up; nil when nothing waits
	sending bool         // a goroutine is sending batches
	wg      sync.WaitGroup
	batches atomic.Int64 // statements sent, for tests
}

// notifyBatch is the nodes of one statement, and its outcome for the
// writers waiting on done.
type notifyBatch struct {
	nodes []string
	done  chan struct{}
	err   error
}

// newNotifier opens the notifier's pool on dsn and prepares its statement.
func newNotifier(ctx context.Context, dsn string) (*notifier, error) {
	pool, err := openPostgres(dsn, map[string]string{"synchronous_commit": "off"})
	if err != nil {
		return nil, err
	}
	// One connection sends the batches; a second one takes over at once
	// while a lost one is being replaced.
	pool.SetMaxOpenConns(2)
	pool.SetMaxIdleConns(1)
	stmt, err := pool.PrepareContext(ctx, sqlNotifyBatch)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &notifier{pool: pool, stmt: stmt, channel: notifyChannel}, nil
}

// notify sends a notification for node and returns once it is sent, or
// when ctx ends.
func (n *notifier) notify(ctx context.Context, node string) error {
	n.mu.Lock()
	b := n.next
	if b == nil {
		b = &notifyBatch{done: make(chan struct{})}
		n.next = b
	}
	b.nodes = append(b.nodes, node)
	if !n.sending {
		n.sending = true
		n.wg.Add(1)
		go n.send()
	}
	n.mu.Unlock()
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send sends batches until none waits.
func (n *notifier) send() {
	defer n.wg.Done()
	for {
		n.mu.Lock()
		b := n.next
		n.next = nil
		if b == nil {
			n.sending = false
			n.mu.Unlock()
			return
		}
		n.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), PostgresCallTimeout)
		_, b.err = n.stmt.ExecContext(ctx, n.channel, pq.StringArray(b.nodes))
		cancel()
		n.batches.Add(1)
		close(b.done)
	}
}

// close waits for the batches under way and closes the pool.
func (n *notifier) close() error {
	n.wg.Wait()
	return n.pool.Close()
}
