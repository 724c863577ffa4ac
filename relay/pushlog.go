package relay

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/p2http/p2http"
)

// pushLog records what became of the pushes to each node (its
// p2http.PushHistory: a count, the last push and its outcome, the last
// failure and its reason) at about the write cost the time of the last
// push alone had: one statement a second for all the nodes due, and each
// node's row written about once an hour while its pushes keep the same
// kind of outcome.
//
// Writing one row per push would put a database write on the hot path of
// every push and a new row version per push in the table (a busy phone is
// pushed dozens of times an hour). Instead each push only updates the
// node's entry here, in memory, and an entry is written once it is due:
//   - at once (the next flush, within a second) when the store has no push
//     of the node, or its last one is p2http.PushTimePrecision old or more;
//   - a minute after the stored push (outcomeChangeDelay) when a push had
//     another kind of outcome than the stored one: it failed where the
//     stored one did not, did not where it did, or failed for another
//     reason. A failure shows soon, and a node that flaps between two
//     outcomes costs a write a minute at most;
//   - otherwise PushTimePrecision after the stored push, with everything
//     counted meanwhile.
//
// Entries waiting for their time are checked once a minute (heldScanEvery);
// those due at once wait for the next flush only. A look-up through the
// relay adds the entry of its node (Relay.Lookup), so that this instance
// answers with every push it made; the database, other instances and
// `p2http stats` can be up to an hour behind on the count and on the last
// push of a kind already stored. A crash loses what was not written yet;
// Close writes it all.
//
// Entries waiting are bounded by maxHeld (about 130 bytes each, 2.6 MB in
// all, next to the registration cache's 20,000 entries). Beyond it
// a push that is not due by itself is not counted, rather than written
// early: the write cost stays bounded, and a warning says that counts fall
// short.
type pushLog struct {
	store   p2http.Keeper
	every   time.Duration
	now     func() time.Time
	log     *slog.Logger
	maxHeld int

	mu       sync.Mutex
	ready    map[string]*pushEntry // due: written at the next flush
	held     map[string]*pushEntry // waiting for their time
	lastScan time.Time
	dropped  int64     // pushes not counted since the last warning
	warned   time.Time // when dropped pushes were last reported

	stop chan struct{}
	done chan struct{}
}

// pushEntry is what became of a node's pushes since it was last written.
type pushEntry struct {
	pushes   int64
	at       int64 // unix nanoseconds of the last push
	failedAt int64 // of the last failure; 0 when none
	stored   int64 // of the last push the store had when the entry began; 0 when none
	outcome  p2http.PushOutcome
	reason   string // of the last failure
	changed  bool   // a push had another kind of outcome than the stored one
}

const (
	// outcomeChangeDelay is how long after the stored push a push of
	// another kind of outcome is written.
	outcomeChangeDelay = time.Minute
	// heldScanEvery is how often waiting entries are checked for being due.
	heldScanEvery = time.Minute
	// defaultMaxHeld bounds the entries waiting for their time.
	defaultMaxHeld = 20_000
)

func newPushLog(store p2http.Keeper, every time.Duration, now func() time.Time, log *slog.Logger) *pushLog {
	p := &pushLog{store: store, every: every, now: now, log: log, maxHeld: defaultMaxHeld,
		ready: map[string]*pushEntry{}, held: map[string]*pushEntry{}, lastScan: now()}
	if every > 0 {
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.loop()
	}
	return p
}

// sameKind reports whether outcome a (failed for reason ar) is of the same
// kind as b (failed for br), or news next to it: delivered and coalesced
// are one kind, failed for each reason another.
func sameKind(a p2http.PushOutcome, ar string, b p2http.PushOutcome, br string) bool {
	af, bf := a == p2http.PushFailed, b == p2http.PushFailed
	return af == bf && (!af || ar == br)
}

// due reports whether e is worth a write at now.
func (e *pushEntry) due(now int64) bool {
	return e.stored == 0 || now-e.stored >= int64(p2http.PushTimePrecision) ||
		e.changed && now-e.stored >= int64(outcomeChangeDelay)
}

// record is the entry as a p2http.PushRecord of node.
func (e *pushEntry) record(node string) p2http.PushRecord {
	rec := p2http.PushRecord{Node: node, Pushes: e.pushes, At: time.Unix(0, e.at).UTC(), Outcome: e.outcome}
	if e.failedAt != 0 {
		rec.FailedAt, rec.FailureReason = time.Unix(0, e.failedAt).UTC(), e.reason
	}
	return rec
}

// record notes a push to t that ended now with outcome (and reason, when it
// failed), counting pushes (0 for a trailing push): written at once when
// batching is off, else when due.
func (p *pushLog) record(ctx context.Context, t p2http.Target, pushes int64, outcome p2http.PushOutcome, reason string) {
	now := p.now()
	n := pushEntry{pushes: pushes, at: now.UnixNano(), outcome: outcome}
	if outcome == p2http.PushFailed {
		n.failedAt, n.reason = n.at, reason
	}
	if p.every <= 0 {
		// The push's own context may be past its deadline (a push that
		// timed out is recorded too).
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := p.store.RecordPushes(ctx, n.record(t.Node)); err != nil {
			// The push is over; a missed record is not worth failing it.
			p.log.WarnContext(ctx, "recording a push failed", "err", err)
		}
		return
	}
	changed := !sameKind(outcome, reason, t.LastOutcome, t.LastFailureReason)
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.ready[t.Node]; e != nil {
		e.add(&n, changed)
		return
	}
	if e := p.held[t.Node]; e != nil {
		e.add(&n, changed)
		if e.due(n.at) {
			delete(p.held, t.Node)
			p.ready[t.Node] = e
		}
		return
	}
	if t.LastPushAt != nil {
		n.stored = t.LastPushAt.UnixNano()
	}
	n.changed = changed
	due := n.due(n.at)
	if !due && len(p.held) >= p.maxHeld {
		p.dropped += pushes
		return
	}
	e := new(pushEntry)
	*e = n
	node := strings.Clone(t.Node) // not the look-up's memory, which holds the token
	if due {
		p.ready[node] = e
	} else {
		p.held[node] = e
	}
}

// add folds the newer entry n into e.
func (e *pushEntry) add(n *pushEntry, changed bool) {
	e.pushes += n.pushes
	e.at, e.outcome = n.at, n.outcome
	if n.failedAt != 0 {
		e.failedAt, e.reason = n.failedAt, n.reason
	}
	e.changed = e.changed || changed
}

// merge adds what is pending for reg's node to its history.
func (p *pushLog) merge(reg *p2http.Registration) {
	p.mu.Lock()
	e := p.ready[reg.Node]
	if e == nil {
		e = p.held[reg.Node]
	}
	var rec p2http.PushRecord
	if e != nil {
		rec = e.record(reg.Node)
	}
	p.mu.Unlock()
	if e != nil {
		reg.PushHistory.Add(rec)
	}
}

func (p *pushLog) loop() {
	defer close(p.done)
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.flush(false)
		case <-p.stop:
			p.flush(true)
			return
		}
	}
}

// flush writes the entries due, in one call of the store; with all, every
// entry. Waiting entries are looked at once per heldScanEvery.
func (p *pushLog) flush(all bool) {
	now := p.now()
	p.mu.Lock()
	recs := make([]p2http.PushRecord, 0, len(p.ready))
	for node, e := range p.ready {
		recs = append(recs, e.record(node))
	}
	clear(p.ready)
	if all || now.Sub(p.lastScan) >= heldScanEvery {
		p.lastScan = now
		for node, e := range p.held {
			if all || e.due(now.UnixNano()) {
				recs = append(recs, e.record(node))
				delete(p.held, node)
			}
		}
	}
	dropped := p.dropped
	report := dropped > 0 && (all || now.Sub(p.warned) >= p2http.PushTimePrecision)
	if report {
		p.dropped, p.warned = 0, now
	}
	p.mu.Unlock()
	if report {
		p.log.Warn("push counts fall short: too many nodes pushed again within the hour to keep counting them all",
			"uncounted", dropped, "max_waiting", p.maxHeld)
	}
	if len(recs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.store.RecordPushes(ctx, recs...); err != nil {
		p.log.Warn("recording pushes failed", "nodes", len(recs), "err", err)
	}
}

// close writes everything pending and stops the loop; a nil pushLog (a
// store that keeps nothing) has nothing to write.
func (p *pushLog) close() {
	if p != nil && p.stop != nil {
		close(p.stop)
		<-p.done
		p.stop = nil
	}
}
