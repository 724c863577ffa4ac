package relay_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/devlog"
	"github.com/p2http/p2http/internal/testutil"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/relay"
)

// Pushes are written in batches, and Close writes what is pending; a
// look-up through the relay shows them before they are written.
func TestPushLogBatches(t *testing.T) {
	store := dbtest.SQLite(t)
	keys, _ := keyring.New(strings.Repeat("k", 32))
	log := slog.New(slog.DiscardHandler)
	r := relay.New(relay.Config{JID: "push.example.org", Store: store, Keyring: keys, Logger: log,
		Senders:      map[p2http.Service]p2http.Sender{p2http.FCM: &devlog.Sender{Service: p2http.FCM, Logger: log}},
		PushLogEvery: time.Hour})
	ctx := context.Background()
	var nodes []string
	for i := range 3 {
		reg, err := r.Register(ctx, p2http.RegisterRequest{Service: p2http.FCM, Account: fmt.Sprintf("u%d@example.org", i), DeviceID: "d", Token: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Push(ctx, p2http.PushRequest{Node: reg.Node, Secret: reg.Secret}); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, reg.Node)
	}
	for _, n := range nodes {
		if reg, _ := store.Lookup(ctx, n); reg.LastPushAt != nil || reg.Pushes != 0 {
			t.Fatal("push written at once although batching is on")
		}
		if reg, err := r.Lookup(ctx, n); err != nil || reg.Pushes != 1 || reg.LastOutcome != p2http.PushDelivered || reg.LastPushAt == nil {
			t.Fatalf("the relay's look-up leaves out its pending push: %+v, %v", reg.PushHistory, err)
		}
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if reg, err := store.Lookup(ctx, n); err != nil || reg.LastPushAt == nil || reg.Pushes != 1 || reg.LastOutcome != p2http.PushDelivered {
			t.Fatalf("push to %s not written at Close: %+v, %v", n, reg.PushHistory, err)
		}
	}
}

// countingStore keeps the records handed to RecordPushes.
type countingStore struct {
	*db.DB
	mu   sync.Mutex
	recs []p2http.PushRecord
}

func (s *countingStore) RecordPushes(ctx context.Context, recs ...p2http.PushRecord) error {
	s.mu.Lock()
	s.recs = append(s.recs, recs...)
	s.mu.Unlock()
	return s.DB.RecordPushes(ctx, recs...)
}

// take returns the records handed over since the last take.
func (s *countingStore) take() []p2http.PushRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.recs
	s.recs = nil
	return r
}

// reasonError is a push service's error answer with a reason, as the
// senders keep it.
type reasonError string

func (e reasonError) Error() string         { return "push service answered " + string(e) }
func (e reasonError) ServiceReason() string { return string(e) }

// A node's pushes are written when due: the first at once, then about once
// per p2http.PushTimePrecision while their outcome stays of the same kind,
// and a minute after the stored push when it changes; everything is
// counted.
func TestPushRecordsWhenDue(t *testing.T) {
	store := &countingStore{DB: dbtest.SQLite(t)}
	keys, _ := keyring.New(strings.Repeat("k", 32))
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	at := func(d time.Duration) { mu.Lock(); now = t0.Add(d); mu.Unlock() }
	sender := &recorder{}
	r := relay.New(relay.Config{JID: "push.example.org", Store: store, Keyring: keys, Logger: slog.New(slog.DiscardHandler),
		Now: clock, Senders: map[p2http.Service]p2http.Sender{p2http.FCM: sender}, PushLogEvery: time.Hour})
	defer r.Close(context.Background())
	ctx := context.Background()
	reg, err := r.Register(ctx, p2http.RegisterRequest{Service: p2http.FCM, Account: "u@example.org", DeviceID: "d", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	quota := &p2http.Error{Code: p2http.EUPSTREAM, Message: "refused", Err: reasonError("THIRD_PARTY_AUTH_ERROR")}
	want := p2http.PushHistory{Recorded: true}
	for _, c := range []struct {
		name    string
		at      time.Duration
		push    error // nil: no push, else errOK for a delivered one
		written int   // records handed to the store by the flush after it
		pushes  int64 // the count of the record written
	}{
		{"first push: at once", 0, errOK, 1, 1},
		{"delivered again", time.Minute, errOK, 0, 0},
		{"and again", 2 * time.Minute, errOK, 0, 0},
		{"nothing due yet", p2http.PushTimePrecision - time.Second, nil, 0, 0},
		// Waiting entries are looked at once a minute.
		{"the hour is up, no look yet", p2http.PushTimePrecision, nil, 0, 0},
		{"the hour is up", p2http.PushTimePrecision + 59*time.Second, nil, 1, 2},
		{"a failure: a change, at once", p2http.PushTimePrecision + time.Minute, quota, 1, 1},
		{"the same failure", p2http.PushTimePrecision + 70*time.Second, quota, 0, 0},
		{"delivered within the minute", p2http.PushTimePrecision + 80*time.Second, errOK, 0, 0},
		{"a minute after the stored push", p2http.PushTimePrecision + 2*time.Minute + 10*time.Second, nil, 1, 2},
	} {
		at(c.at)
		if c.push != nil {
			if c.push == errOK {
				sender.fail(nil)
			} else {
				sender.fail(c.push)
			}
			_, err := r.Push(ctx, p2http.PushRequest{Node: reg.Node, Secret: reg.Secret})
			if (err != nil) != (c.push != errOK) {
				t.Fatalf("%s: push error %v", c.name, err)
			}
			// The relay's look-up shows every push at once.
			looked, err := r.Lookup(ctx, reg.Node)
			if err != nil {
				t.Fatal(err)
			}
			outcome := p2http.PushDelivered
			if c.push != errOK {
				outcome = p2http.PushFailed
			}
			if !looked.LastPushAt.Equal(clock()) || looked.LastOutcome != outcome {
				t.Fatalf("%s: looked up %+v", c.name, looked.PushHistory)
			}
		}
		relay.FlushPushLog(r)
		recs := store.take()
		if len(recs) != c.written {
			t.Fatalf("%s: %d records written, want %d: %+v", c.name, len(recs), c.written, recs)
		}
		for _, rec := range recs {
			if rec.Pushes != c.pushes {
				t.Fatalf("%s: a record of %d pushes, want %d", c.name, rec.Pushes, c.pushes)
			}
			want.Add(rec)
		}
	}
	got, err := store.Lookup(ctx, reg.Node)
	if err != nil {
		t.Fatal(err)
	}
	h := got.PushHistory
	if h.Pushes != 6 || h.LastOutcome != p2http.PushDelivered || !h.LastPushAt.Equal(t0.Add(p2http.PushTimePrecision+80*time.Second)) ||
		h.LastFailureReason != "THIRD_PARTY_AUTH_ERROR" || !h.LastFailureAt.Equal(t0.Add(p2http.PushTimePrecision+70*time.Second)) {
		t.Fatalf("stored history %+v, want 6 pushes, the last delivered, the last failure at +1h1m10s", h)
	}
	if h.Pushes != want.Pushes || !h.LastPushAt.Equal(*want.LastPushAt) {
		t.Fatalf("stored %+v, records add up to %+v", h, want)
	}
}

// errOK stands for a delivered push in TestPushRecordsWhenDue's table.
var errOK = fmt.Errorf("delivered")

// A coalesced push is counted; the trailing push it owes records its own
// outcome without being counted again.
func TestPushRecordsCoalesced(t *testing.T) {
	store := dbtest.SQLite(t)
	keys, _ := keyring.New(strings.Repeat("k", 32))
	sender := &recorder{}
	r := relay.New(relay.Config{JID: "push.example.org", Store: store, Keyring: keys, Logger: slog.New(slog.DiscardHandler),
		Senders: map[p2http.Service]p2http.Sender{p2http.FCM: sender}, PushLogEvery: time.Hour, CoalesceWindow: time.Hour})
	ctx := context.Background()
	reg, err := r.Register(ctx, p2http.RegisterRequest{Service: p2http.FCM, Account: "u@example.org", DeviceID: "d", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	for i, coalesced := range []bool{false, true, true} {
		res, err := r.Push(ctx, p2http.PushRequest{Node: reg.Node, Secret: reg.Secret})
		if err != nil || res.Coalesced != coalesced {
			t.Fatalf("push %d: %+v, %v", i, res, err)
		}
	}
	if looked, _ := r.Lookup(ctx, reg.Node); looked.Pushes != 3 || looked.LastOutcome != p2http.PushCoalesced {
		t.Fatalf("after a coalesced push: %+v", looked.PushHistory)
	}
	sender.fail(&p2http.Error{Code: p2http.EUPSTREAM, Err: reasonError("BadTopic")})
	if err := r.Close(ctx); err != nil { // sends the trailing push
		t.Fatal(err)
	}
	if n := len(sender.take()); n != 2 {
		t.Fatalf("%d wake-ups sent, want 2 (the first push and the trailing one)", n)
	}
	got, err := store.Lookup(ctx, reg.Node)
	if err != nil {
		t.Fatal(err)
	}
	if h := got.PushHistory; h.Pushes != 3 || h.LastOutcome != p2http.PushFailed || h.LastFailureReason != "BadTopic" || h.LastFailureAt == nil {
		t.Fatalf("stored history %+v, want 3 pushes, the last the failed trailing one", h)
	}
}

// Beyond the bound of entries waiting, a push that is not due by itself is
// not counted rather than written early, and a warning says so.
func TestPushLogBound(t *testing.T) {
	store := &countingStore{DB: dbtest.SQLite(t)}
	keys, _ := keyring.New(strings.Repeat("k", 32))
	logs := &testutil.LogBuffer{}
	r := relay.New(relay.Config{JID: "push.example.org", Store: store, Keyring: keys, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Senders: map[p2http.Service]p2http.Sender{p2http.FCM: &recorder{}}, PushLogEvery: time.Hour})
	relay.SetMaxHeld(r, 1)
	ctx := context.Background()
	var regs []p2http.Registered
	for i := range 2 {
		reg, err := r.Register(ctx, p2http.RegisterRequest{Service: p2http.FCM, Account: fmt.Sprintf("u%d@example.org", i), DeviceID: "d", Token: "t"})
		if err != nil {
			t.Fatal(err)
		}
		regs = append(regs, reg)
	}
	push := func(reg p2http.Registered) {
		if _, err := r.Push(ctx, p2http.PushRequest{Node: reg.Node, Secret: reg.Secret}); err != nil {
			t.Fatal(err)
		}
	}
	for _, reg := range regs { // first pushes: due at once, whatever the bound
		push(reg)
	}
	relay.FlushPushLog(r)
	if n := len(store.take()); n != 2 {
		t.Fatalf("%d first pushes written, want 2", n)
	}
	push(regs[0]) // waits: the one entry allowed
	push(regs[1]) // not counted
	push(regs[0])
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	recs := store.take()
	if len(recs) != 1 || recs[0].Node != regs[0].Node || recs[0].Pushes != 2 {
		t.Fatalf("records at Close %+v, want 2 pushes of the first node", recs)
	}
	if !strings.Contains(logs.String(), "push counts fall short") || !strings.Contains(logs.String(), "uncounted=1") {
		t.Fatalf("no warning about the uncounted push:\n%s", logs)
	}
}

// A store that keeps nothing (the stateless mode) has no history to show.
func TestStatelessKeepsNoHistory(t *testing.T) {
	k := newKey(t, "current")
	s := newStore(t, k)
	r := newRelay(s, s, k, &recorder{})
	ctx := context.Background()
	reg, err := r.Register(ctx, p2http.RegisterRequest{Service: p2http.FCM, Account: "u@example.org", DeviceID: "d", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Push(ctx, p2http.PushRequest{Node: reg.Node, Secret: reg.Secret}); err != nil {
		t.Fatal(err)
	}
	got, err := r.Lookup(ctx, reg.Node)
	if err != nil {
		t.Fatal(err)
	}
	if got.PushHistory != (p2http.PushHistory{}) {
		t.Fatalf("the stateless mode shows a history: %+v", got.PushHistory)
	}
}
