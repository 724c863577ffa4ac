package relay_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
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
		reg, err := r.Register(ctx, relay.Registration{Service: p2http.FCM, Account: fmt.Sprintf("u%d@example.org", i), DeviceID: "d", Token: "t"})
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
