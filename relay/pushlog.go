package relay

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/p2http/p2http"
)

// pushLog records when each node was last pushed. Writing one row per push
// would put a database write on the hot path of every push; instead the
// nodes pushed are collected and written together, once per interval, in a
// few statements. A crash loses at most one interval of timestamps, which
// only feed statistics and retention.
type pushLog struct {
	store p2http.Keeper
	every time.Duration
	now   func() time.Time
	log   *slog.Logger

	mu    sync.Mutex
	nodes map[string]struct{}

	stop chan struct{}
	done chan struct{}
}

func newPushLog(store p2http.Keeper, every time.Duration, now func() time.Time, log *slog.Logger) *pushLog {
	p := &pushLog{store: store, every: every, now: now, log: log, nodes: map[string]struct{}{}}
	if every > 0 {
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.loop()
	}
	return p
}

// record notes a delivered push: at once when batching is off, else at the
// next flush.
func (p *pushLog) record(ctx context.Context, node string) {
	if p.every <= 0 {
		if err := p.store.RecordLastPush(ctx, p.now().UTC(), node); err != nil && p2http.ErrorCode(err) != p2http.ENOTFOUND {
			// The wake-up went out; a missed timestamp is not worth failing it.
			p.log.WarnContext(ctx, "recording push time failed", "err", err)
		}
		return
	}
	p.mu.Lock()
	p.nodes[node] = struct{}{}
	p.mu.Unlock()
}

func (p *pushLog) loop() {
	defer close(p.done)
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.flush()
		case <-p.stop:
			p.flush()
			return
		}
	}
}

// flush writes the nodes collected since the last flush.
func (p *pushLog) flush() {
	p.mu.Lock()
	if len(p.nodes) == 0 {
		p.mu.Unlock()
		return
	}
	nodes := make([]string, 0, len(p.nodes))
	for n := range p.nodes {
		nodes = append(nodes, n)
	}
	clear(p.nodes)
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.store.RecordLastPush(ctx, p.now().UTC(), nodes...); err != nil && p2http.ErrorCode(err) != p2http.ENOTFOUND {
		p.log.Warn("recording push times failed", "nodes", len(nodes), "err", err)
	}
}

// close writes what is pending and stops the loop; a nil pushLog (a store
// that keeps nothing) has nothing to write.
func (p *pushLog) close() {
	if p != nil && p.stop != nil {
		close(p.stop)
		<-p.done
		p.stop = nil
	}
}
