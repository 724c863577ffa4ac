package relay_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/devlog"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/relay"
)

// Last-push times are written in batches, and Close writes what is pending.
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
		if reg, _ := store.Lookup(ctx, n); reg.LastPushAt != nil {
			t.Fatal("last-push time written at once although batching is on")
		}
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if reg, err := store.Lookup(ctx, n); err != nil || reg.LastPushAt == nil {
			t.Fatalf("last-push time of %s not written at Close: %v", n, err)
		}
	}
}

// countingStore counts the nodes handed to RecordLastPush.
type countingStore struct {
	*db.DB
	pushed []string
}

func (s *countingStore) RecordLastPush(ctx context.Context, t time.Time, nodes ...string) error {
	s.pushed = append(s.pushed, nodes...)
	return s.DB.RecordLastPush(ctx, t, nodes...)
}

// A push is recorded only when the node's recorded time is
// p2http.PushTimePrecision old or more: the store is not even asked
// meanwhile.
func TestPushTimeRecordedOncePerPrecision(t *testing.T) {
	store := &countingStore{DB: dbtest.SQLite(t)}
	keys, _ := keyring.New(strings.Repeat("k", 32))
	log := slog.New(slog.DiscardHandler)
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	now := t0
	r := relay.New(relay.Config{JID: "push.example.org", Store: store, Keyring: keys, Logger: log, Now: func() time.Time { return now },
		Senders: map[p2http.Service]p2http.Sender{p2http.FCM: &devlog.Sender{Service: p2http.FCM, Logger: log}}})
	ctx := context.Background()
	reg, err := r.Register(ctx, p2http.RegisterRequest{Service: p2http.FCM, Account: "u@example.org", DeviceID: "d", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at      time.Duration
		records int // nodes handed to the store so far
	}{
		{0, 1},
		{time.Minute, 1},
		{p2http.PushTimePrecision - time.Second, 1},
		{p2http.PushTimePrecision, 2},
		{p2http.PushTimePrecision + time.Minute, 2},
	} {
		now = t0.Add(c.at)
		if _, err := r.Push(ctx, p2http.PushRequest{Node: reg.Node, Secret: reg.Secret}); err != nil {
			t.Fatal(err)
		}
		if len(store.pushed) != c.records {
			t.Fatalf("after a push at +%v: %d records, want %d", c.at, len(store.pushed), c.records)
		}
	}
	got, err := store.Lookup(ctx, reg.Node)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(p2http.PushTimePrecision); got.LastPushAt == nil || !got.LastPushAt.Equal(want) {
		t.Errorf("last push %v, want %v", got.LastPushAt, want)
	}
}
