package sealed_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/relay"
)

// recorder is a Sender that records wake-ups and answers err.
type recorder struct {
	mu   sync.Mutex
	sent []p2http.Wakeup
	err  error
}

func (r *recorder) Send(ctx context.Context, w p2http.Wakeup) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, w)
	return r.err
}

func (r *recorder) take() []p2http.Wakeup {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sent
	r.sent = nil
	return s
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

func newRelay(store p2http.Store, resolver p2http.Resolver, k *keyring.Keyring, sender p2http.Sender) *relay.Relay {
	return relay.New(relay.Config{
		JID:      "p2.example.org",
		Store:    store,
		Resolver: resolver,
		Keyring:  k,
		Senders:  map[p2http.Service]p2http.Sender{p2http.FCM: sender},
		Logger:   slog.New(slog.DiscardHandler),
	})
}

// The stateless relay registers and pushes as the stored one does.
func TestRelay(t *testing.T) {
	keys := []*keyring.Keyring{newKey(t, "current"), newKey(t, "old")}
	s := newStore(t, keys...)
	sealedSender, storedSender := &recorder{}, &recorder{}
	stateless := newRelay(s, s, keys[0], sealedSender)
	stored := newRelay(dbtest.SQLite(t), nil, keys[0], storedSender)

	req := p2http.RegisterRequest{Service: p2http.FCM, Account: "Alice@Conversations.IM", DeviceID: "android-id-1", Token: fcmToken}
	reg, err := stateless.Register(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if reg.JID != "p2.example.org" || !reg.Created || len(reg.Secret) != 24 || reg.Secret != keys[0].Secret(reg.Node) {
		t.Fatalf("Register returned %+v", reg)
	}
	if len(reg.Node) > p2http.MaxNodeLength {
		t.Errorf("node of %d characters: above the %d that api/ and xmpp/ accept in a push", len(reg.Node), p2http.MaxNodeLength)
	}
	storedReg, err := stored.Register(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// Registering again (Conversations does at every login) gives the same
	// node and secret, as in the stored mode; a new token, a new node.
	for range 3 {
		again, err := stateless.Register(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if again.Node != reg.Node || again.Secret != reg.Secret {
			t.Fatalf("registering again gave %+v, first %+v", again, reg)
		}
		storedAgain, err := stored.Register(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if storedAgain.Node != storedReg.Node || storedAgain.Secret != storedReg.Secret {
			t.Fatalf("stored mode: registering again gave %+v, first %+v", storedAgain, storedReg)
		}
	}
	newToken := req
	newToken.Token = fcmToken + "x"
	if renewed, err := stateless.Register(ctx, newToken); err != nil || renewed.Node == reg.Node || renewed.Secret == reg.Secret {
		t.Fatalf("a new token: %+v, %v", renewed, err)
	}

	for _, important := range []bool{true, false} {
		res, err := stateless.Push(ctx, p2http.PushRequest{Node: reg.Node, Secret: reg.Secret, Domain: "conversations.im", Important: important})
		if err != nil {
			t.Fatal(err)
		}
		if res.Service != p2http.FCM || res.Coalesced {
			t.Fatalf("Push returned %+v", res)
		}
		if _, err := stored.Push(ctx, p2http.PushRequest{Node: storedReg.Node, Secret: storedReg.Secret, Domain: "conversations.im", Important: important}); err != nil {
			t.Fatal(err)
		}
		got, want := sealedSender.take(), storedSender.take()
		if len(got) != 1 || len(want) != 1 || got[0] != want[0] {
			t.Fatalf("stateless mode sent %+v, stored mode %+v", got, want)
		}
		if got[0].Token != fcmToken || got[0].Device != p2http.DeviceHash("alice@conversations.im", "android-id-1") || got[0].Important != important {
			t.Fatalf("sent %+v", got[0])
		}
	}

	_, err = stateless.Push(ctx, p2http.PushRequest{Node: reg.Node, Secret: keys[1].Secret(reg.Node)})
	wantCode(t, "wrong secret", err, p2http.EFORBIDDEN)
	_, err = stateless.Push(ctx, p2http.PushRequest{Node: reg.Node, Secret: reg.Secret, Domain: "example.org"})
	wantCode(t, "another domain", err, p2http.ENOTFOUND)
	_, err = stateless.Push(ctx, p2http.PushRequest{Node: storedReg.Node, Secret: storedReg.Secret})
	wantCode(t, "a stored-mode node", err, p2http.ENOTFOUND)
	if n := len(sealedSender.take()); n != 0 {
		t.Fatalf("%d wake-ups sent for refused pushes", n)
	}

	// A node sealed under the previous key still pushes.
	old := newStore(t, keys[1])
	oldReg, err := newRelay(old, old, keys[1], &recorder{}).Register(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stateless.Push(ctx, p2http.PushRequest{Node: oldReg.Node, Secret: oldReg.Secret}); err != nil {
		t.Fatalf("node of the previous key: %v", err)
	}
	sealedSender.take()

	// A dead token: EGONE, so that the XMPP server drops the node.
	sealedSender.fail(&p2http.DeadTokenError{Reason: "UNREGISTERED"})
	_, err = stateless.Push(ctx, p2http.PushRequest{Node: reg.Node, Secret: reg.Secret, Domain: "conversations.im"})
	wantCode(t, "dead token", err, p2http.EGONE)

	if err := stateless.Unregister(ctx, p2http.UnregisterRequest{Service: p2http.FCM, Account: "alice@conversations.im", DeviceID: "android-id-1"}); err != nil {
		t.Fatalf("Unregister: %v", err)
	}
}

// A node of a named app carries its app: its pushes go out with that app's
// sender, and only when addressed to that app (or to none).
func TestRelayApp(t *testing.T) {
	k := newKey(t, "current")
	s := newStore(t, k)
	def, beta := &recorder{}, &recorder{}
	r := relay.New(relay.Config{
		JID:      "p2.example.org",
		Store:    s,
		Resolver: s,
		Keyring:  k,
		Senders:  map[p2http.Service]p2http.Sender{p2http.FCM: def},
		Apps:     map[string]map[p2http.Service]p2http.Sender{"beta": {p2http.FCM: beta}},
		Logger:   slog.New(slog.DiscardHandler),
	})
	reg, err := r.Register(ctx, p2http.RegisterRequest{App: "beta", Service: p2http.FCM, Account: "bob@example.org", DeviceID: "d", Token: fcmToken})
	if err != nil {
		t.Fatal(err)
	}
	if reg.JID != "beta@p2.example.org" {
		t.Fatalf("JID %q", reg.JID)
	}
	for _, app := range []p2http.App{"", "beta"} {
		if _, err := r.Push(ctx, p2http.PushRequest{Node: reg.Node, Secret: reg.Secret, App: app}); err != nil {
			t.Fatalf("push to app %q: %v", app, err)
		}
	}
	_, err = r.Push(ctx, p2http.PushRequest{Node: reg.Node, Secret: reg.Secret, App: p2http.DefaultApp})
	wantCode(t, "push to the default app", err, p2http.ENOTFOUND)
	if n, m := len(beta.take()), len(def.take()); n != 2 || m != 0 {
		t.Fatalf("beta sent %d, the default app %d wake-ups", n, m)
	}
}

// An APNs dead-token report carries a timestamp. The stored mode keeps a
// registration renewed after it; a node holds no time (its target's
// UpdatedAt is zero), so the report always retires it: EGONE.
func TestRelayDeadAPNsToken(t *testing.T) {
	k := newKey(t, "current")
	s := newStore(t, k)
	apns := &recorder{}
	r := relay.New(relay.Config{
		JID:      "p2.example.org",
		Store:    s,
		Resolver: s,
		Keyring:  k,
		Senders:  map[p2http.Service]p2http.Sender{p2http.APNs: apns},
		Logger:   slog.New(slog.DiscardHandler),
	})
	reg, err := r.Register(ctx, p2http.RegisterRequest{Service: p2http.APNs, Account: "carol@example.org", DeviceID: "iphone", Token: apnsToken})
	if err != nil {
		t.Fatal(err)
	}
	target, err := s.Resolve(ctx, p2http.PushRequest{Node: reg.Node, Secret: reg.Secret})
	if err != nil || !target.UpdatedAt.IsZero() || target.Token != apnsToken {
		t.Fatalf("Resolve: %+v, %v", target, err)
	}
	if _, err := r.Push(ctx, p2http.PushRequest{Node: reg.Node, Secret: reg.Secret, Domain: "example.org"}); err != nil {
		t.Fatal(err)
	}
	for _, since := range []time.Time{time.Now(), time.Unix(1, 0)} {
		apns.fail(&p2http.DeadTokenError{Reason: "Unregistered", Since: since})
		_, err = r.Push(ctx, p2http.PushRequest{Node: reg.Node, Secret: reg.Secret, Domain: "example.org"})
		wantCode(t, fmt.Sprintf("APNs token dead since %v", since), err, p2http.EGONE)
	}
	if n := len(apns.take()); n != 3 {
		t.Fatalf("%d wake-ups sent, want 3", n)
	}
}
