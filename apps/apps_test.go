package apps_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/apps"
	"github.com/p2http/p2http/internal/envflag"
)

// Without credentials a service is not configured, or logs in dev mode; a
// service that refuses an app's credentials is degraded for that app only.
func TestStates(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	name := func(field string) string { return "ENV " + field }
	s, err := apps.Build(context.Background(), apps.Config{}, name, nil, false, log)
	if err != nil {
		t.Fatal(err)
	}
	if s.Configured[p2http.FCM] != "not-configured" || s.Default[p2http.FCM] != nil {
		t.Fatalf("without credentials: %v %v", s.Configured, s.Default)
	}
	s, err = apps.Build(context.Background(), apps.Config{}, name, nil, true, log)
	if err != nil {
		t.Fatal(err)
	}
	if s.Configured[p2http.APNs] != "dev-log" || s.Default[p2http.APNs] == nil {
		t.Fatalf("dev mode: %v", s.Configured)
	}
	s.AppsConfigured = map[string]map[p2http.Service]string{"quicksy": {p2http.FCM: "ok", p2http.APNs: "not-configured"}}
	degraded := func(app p2http.App, sv p2http.Service) (bool, string) {
		return app == "quicksy" && sv == p2http.FCM, "refused"
	}
	if got := s.ServiceStates(degraded)(); got[p2http.FCM] != "dev-log" || got[p2http.APNs] != "dev-log" {
		t.Fatalf("default app: %v", got)
	}
	got := s.AppStates(degraded)()
	if got["quicksy"][p2http.FCM] != "degraded" || got["quicksy"][p2http.APNs] != "not-configured" {
		t.Fatalf("quicksy: %v", got)
	}
	if s.AppsConfigured["quicksy"][p2http.FCM] != "ok" {
		t.Fatal("the configured states were changed")
	}

	// An error names the field the way the caller says.
	_, err = apps.Build(context.Background(), apps.Config{FCM: apps.FCM{Credentials: "/nonexistent.json"}}, name, nil, false, log)
	var ee *envflag.Error
	if !errors.As(err, &ee) || ee.Var != "ENV fcm.credentials" {
		t.Fatalf("missing credentials: %v", err)
	}
}

// A file's app names its own fields in errors, under P2_CONFIG.
func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apps.yaml")
	os.WriteFile(path, []byte("apps:\n  quicksy:\n    apns:\n      cert: /c.pem\n      topic: im.quicksy\n"), 0o600)
	_, err := apps.LoadFile(path)
	var ee *envflag.Error
	if !errors.As(err, &ee) || ee.Var != "P2_CONFIG apps.quicksy.apns.cert_key" {
		t.Fatalf("cert without key: %v", err)
	}
	os.WriteFile(path, []byte("apps:\n  quicksy:\n    fcm:\n      credentials: /q.json\n"), 0o600)
	got, err := apps.LoadFile(path)
	if err != nil || got["quicksy"].FCM.Credentials != "/q.json" || !got["quicksy"].FCMConfigured() {
		t.Fatalf("%v %v", got, err)
	}
}

// senderFunc is a p2http.Sender for TestGiven; it is never called.
type senderFunc func(context.Context, p2http.Wakeup) error

func (f senderFunc) Send(ctx context.Context, m p2http.Wakeup) error { return f(ctx, m) }

// Given keeps the senders it is handed, and reports a service with one as
// "ok" and one without as "not-configured", for each app apart.
func TestGiven(t *testing.T) {
	fcm := senderFunc(func(context.Context, p2http.Wakeup) error { return nil })
	apns := senderFunc(func(context.Context, p2http.Wakeup) error { return errors.New("x") })
	s := apps.Given(map[p2http.Service]p2http.Sender{p2http.FCM: fcm},
		map[string]map[p2http.Service]p2http.Sender{"quicksy": {p2http.APNs: apns}})
	if s.Default[p2http.FCM] == nil || s.Default[p2http.APNs] != nil {
		t.Fatalf("default senders %v", s.Default)
	}
	if s.Configured[p2http.FCM] != "ok" || s.Configured[p2http.APNs] != "not-configured" {
		t.Fatalf("default states %v", s.Configured)
	}
	q := s.AppsConfigured["quicksy"]
	if q[p2http.FCM] != "not-configured" || q[p2http.APNs] != "ok" || s.Apps["quicksy"][p2http.APNs] == nil {
		t.Fatalf("quicksy: states %v, senders %v", q, s.Apps["quicksy"])
	}
	if len(s.Configured) != len(p2http.Services) || len(q) != len(p2http.Services) {
		t.Fatalf("a state for each service: %v %v", s.Configured, q)
	}
}
