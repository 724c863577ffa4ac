package metrics_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/apps"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/fcm"
	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/metrics"
	"github.com/p2http/p2http/stack"
)

// fcmSender is a real FCM sender to the fake f.
func fcmSender(t *testing.T, f *fake.FCM) p2http.Sender {
	t.Helper()
	s, err := fcm.New(context.Background(), fcm.Config{CredentialsJSON: f.Credentials, Endpoint: f.Endpoint(), HTTPClient: f.Client})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The relay tells the metrics each push's app and service as resolved, and
// the caller's mistakes count as rejected, never as failed deliveries.
func TestPushesThroughTheStack(t *testing.T) {
	store := dbtest.SQLite(t)
	keys, err := keyring.New("test-server-key-0123456789abcdef0123")
	if err != nil {
		t.Fatal(err)
	}
	def, quicksy := fake.NewFCM(), fake.NewFCMProject("p2http-quicksy")
	t.Cleanup(def.Close)
	t.Cleanup(quicksy.Close)
	senders := apps.Given(map[p2http.Service]p2http.Sender{p2http.FCM: fcmSender(t, def)},
		map[string]map[p2http.Service]p2http.Sender{"quicksy": {p2http.FCM: fcmSender(t, quicksy)}})
	m := metrics.New(metrics.Config{Version: "test", Apps: senders.Names(), States: apps.States, Registrations: store})
	st := stack.New(stack.Config{JID: "push.example.org", Store: store, Database: store, Keyring: keys, Senders: senders,
		PushDeadline: 300 * time.Millisecond, RetryBackoff: 20 * time.Millisecond, MaxInFlight: 64,
		Observer: m, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { st.Close(context.Background()) })
	m.InFlight(st.Relay.InFlight)
	m.Readiness(st)
	ctx := context.Background()

	register := func(app p2http.App, device string) p2http.Registered {
		t.Helper()
		reg, err := st.Relay.Register(ctx, p2http.RegisterRequest{App: app, Service: p2http.FCM,
			Account: "alice@example.org", DeviceID: device, Token: "token-" + device})
		if err != nil {
			t.Fatal(err)
		}
		return reg
	}
	push := func(req p2http.PushRequest, want string) {
		t.Helper()
		if _, err := st.Relay.Push(ctx, req); p2http.ErrorCode(err) != want {
			t.Fatalf("push %+v: %v, want code %q", req, err, want)
		}
	}
	a, q := register("", "phone-a"), register("quicksy", "phone-q")
	push(p2http.PushRequest{Node: a.Node, Secret: a.Secret}, "")
	push(p2http.PushRequest{Node: q.Node, Secret: q.Secret, App: "quicksy"}, "")
	// The caller's mistakes, before and after the node is resolved.
	push(p2http.PushRequest{Node: a.Node, Secret: "wrong-secret-wrong-secret"}, p2http.EFORBIDDEN)
	push(p2http.PushRequest{Node: a.Node, Secret: "wrong-secret-wrong-secret", App: "default"}, p2http.EFORBIDDEN)
	push(p2http.PushRequest{Node: "no-such-node", Secret: "s"}, p2http.ENOTFOUND)
	push(p2http.PushRequest{Node: a.Node, Secret: a.Secret, App: "not-an-app-of-ours"}, p2http.ENOTFOUND)
	push(p2http.PushRequest{Node: q.Node, Secret: q.Secret, App: "default"}, p2http.ENOTFOUND)
	push(p2http.PushRequest{Node: a.Node, Secret: a.Secret, Domain: "not a domain"}, p2http.EINVALID)
	// The provider's failures: down until the deadline, then a dead token.
	down := fake.FCMError(500, "INTERNAL", "", "down")
	def.Always(&down)
	push(p2http.PushRequest{Node: a.Node, Secret: a.Secret}, p2http.EUNAVAILABLE)
	def.Always(nil)
	quicksy.Next(fake.FCMError(404, "NOT_FOUND", "UNREGISTERED", "gone"))
	push(p2http.PushRequest{Node: q.Node, Secret: q.Secret}, p2http.EGONE)

	out := scrape(t, m)
	has(t, out,
		`p2http_pushes_total{app="default",outcome="delivered",reason="",service="fcm"} 1`,
		`p2http_pushes_total{app="quicksy",outcome="delivered",reason="",service="fcm"} 1`,
		`p2http_pushes_total{app="unknown",outcome="rejected",reason="forbidden",service="unknown"} 1`,
		`p2http_pushes_total{app="default",outcome="rejected",reason="forbidden",service="unknown"} 1`,
		`p2http_pushes_total{app="unknown",outcome="rejected",reason="unknown_node",service="unknown"} 2`,
		`p2http_pushes_total{app="quicksy",outcome="rejected",reason="unknown_node",service="fcm"} 1`,
		`p2http_pushes_total{app="unknown",outcome="rejected",reason="invalid",service="unknown"} 1`,
		`p2http_pushes_total{app="default",outcome="failed",reason="unavailable",service="fcm"} 1`,
		`p2http_pushes_total{app="quicksy",outcome="dead_token",reason="dead_token",service="fcm"} 1`,
		`p2http_upstream_errors_total{app="quicksy",reason="dead_token",service="fcm"} 1`,
		// Delivered, failed, dead token: the six rejected pushes are not
		// deliveries.
		`p2http_push_duration_seconds_count{app="default",service="fcm"} 2`,
		`p2http_push_duration_seconds_count{app="quicksy",service="fcm"} 2`,
		`p2http_pushes_in_flight 0`, `p2http_pushes_in_flight_limit 64`, `p2http_ready 1`,
		`p2http_service_state{app="default",service="fcm",state="ok"} 1`,
		`p2http_service_state{app="default",service="apns",state="not-configured"} 1`,
		`p2http_service_state{app="quicksy",service="fcm",state="ok"} 1`,
		`p2http_registrations{service="fcm"} 1`, // the dead token's is gone
	)
	for _, line := range []string{`p2http_push_retries_total{app="default",service="fcm"} 0`,
		`p2http_upstream_errors_total{app="default",reason="unavailable",service="fcm"} 0`} {
		if strings.Contains(out, line+"\n") {
			t.Errorf("the push that failed until its deadline was not retried: %s", line)
		}
	}
}
