package api_test

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/fcm"
	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/ratelimit"
)

// registerN registers n phones for service and returns their push bodies.
func registerN(t *testing.T, e *env, service string, n int) []map[string]any {
	t.Helper()
	var out []map[string]any
	for i := range n {
		tok := fmt.Sprintf("%064x", i+1)
		r := e.do("POST", "/v1/register", map[string]any{"service": service, "account": fmt.Sprintf("user%d@example.org", i),
			"device_id": "dev", "token": tok})
		if r.Status != 201 {
			t.Fatalf("register %d: %d %s", i, r.Status, r.Raw)
		}
		out = append(out, map[string]any{"node": r.Str("node"), "secret": r.Str("secret"), "domain": "example.org"})
	}
	return out
}

// Temporary provider failures are retried within the deadline; permanent
// ones never are.
func TestRetries(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{})
	apnsPush := registerN(t, e, "apns", 1)[0]
	fcmPush := registerN(t, e, "fcm", 2)[1]

	e.APNs.Next(fake.APNsError(500, "InternalServerError", 0), fake.APNsError(503, "ServiceUnavailable", 0))
	if p := e.do("POST", "/v1/push", apnsPush); p.Status != 200 || p.Body["delivered"] != true {
		t.Fatalf("push after two APNs 5xx: %d %s", p.Status, p.Raw)
	}
	if n := len(e.APNs.Requests()); n != 3 {
		t.Fatalf("APNs got %d requests, want 3 (two failures, one success)", n)
	}

	// FCM 500 is not retried by the fcm package (only 503 is): by the relay.
	e.FCM.Next(fake.FCMError(500, "INTERNAL", "INTERNAL", "boom"))
	if p := e.do("POST", "/v1/push", fcmPush); p.Status != 200 {
		t.Fatalf("push after an FCM 500: %d %s", p.Status, p.Raw)
	}
	if n := len(e.FCM.Requests()); n != 2 {
		t.Fatalf("FCM got %d requests, want 2", n)
	}

	// Retry-After is honoured.
	e.APNs.Reset()
	e.APNs.Next(fake.Answer{Status: 429, Header: map[string]string{"Retry-After": "1"}, Body: `{"reason":"TooManyRequests"}`})
	start := time.Now()
	if p := e.do("POST", "/v1/push", apnsPush); p.Status != 200 {
		t.Fatalf("push after 429: %d %s", p.Status, p.Raw)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("retried after %v, before APNs' Retry-After of 1s", d)
	}

	// Permanent errors are not retried.
	e.FCM.Reset()
	// (The FCM sender sends once more with a new access token when FCM
	// refuses the one it had; the relay adds no retry of its own.)
	unauthenticated := fake.FCMError(401, "UNAUTHENTICATED", "", "bad credentials")
	e.FCM.Always(&unauthenticated)
	expectProblem(t, e.do("POST", "/v1/push", fcmPush), 502, "upstream-rejected")
	if n := len(e.FCM.Requests()); n != 2 {
		t.Fatalf("a credential error was retried: %d requests, want 2 (the second with a new access token)", n)
	}
	e.FCM.Always(nil)

	// A provider that stays down: the caller gets a temporary error with
	// Retry-After by the deadline, not later.
	e.APNs.Always(&fake.Answer{Status: 500, Body: `{"reason":"InternalServerError"}`})
	start = time.Now()
	p := e.do("POST", "/v1/push", apnsPush)
	if p.Status != 503 && p.Status != 504 {
		t.Fatalf("push to a provider that stays down: %d %s", p.Status, p.Raw)
	}
	expectProblem(t, p, p.Status, map[int]string{503: "unavailable", 504: "timeout"}[p.Status])
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("answered after %v; the deadline is 2s", d)
	}
	e.APNs.Always(nil)
}

// Credential trouble shows in /readyz and is logged once per burst.
func TestDegradedService(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{})
	push := registerN(t, e, "fcm", 1)[0]
	e.FCM.Always(&fake.Answer{Status: 403, Body: fake.FCMError(403, "PERMISSION_DENIED", "", "denied").Body})
	for range 3 {
		expectProblem(t, e.do("POST", "/v1/push", push), 502, "upstream-rejected")
	}
	r := e.do("GET", "/readyz", nil)
	if r.Status != 200 || r.Body["services"].(map[string]any)["fcm"] != "degraded" {
		t.Fatalf("readyz while FCM refuses our credentials: %d %s", r.Status, r.Raw)
	}
	if n := strings.Count(e.logs.String(), "rejects our credentials or configuration"); n != 1 {
		t.Fatalf("credential failure logged %d times for one burst, want 1", n)
	}
	e.FCM.Always(nil)
	if p := e.do("POST", "/v1/push", push); p.Status != 200 {
		t.Fatalf("push after recovery: %d", p.Status)
	}
	if r := e.do("GET", "/readyz", nil); r.Body["services"].(map[string]any)["fcm"] != "ok" {
		t.Fatalf("readyz after recovery: %s", r.Raw)
	}
	if g := e.do("GET", "/v1/registration?node="+url.QueryEscape(push["node"].(string)), nil); g.Status != 200 {
		t.Fatal("registration lost to credential errors")
	}
}

// A burst of pushes for one node wakes the phone twice at most: now, and
// once more when the window has passed.
func TestCoalescing(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{coalesce: 300 * time.Millisecond})
	pushes := registerN(t, e, "fcm", 2)
	e.FCM.SetLatency(100 * time.Millisecond)
	var wg sync.WaitGroup
	results := make([]response, 10)
	for i := range results {
		wg.Go(func() {
			body := map[string]any{"node": pushes[0]["node"], "secret": pushes[0]["secret"], "important": i == 7}
			results[i] = e.do("POST", "/v1/push", body)
		})
		if i == 0 {
			// The first push is then in flight (FCM answers after 100 ms), and
			// the important one is among those merged into the trailing push.
			time.Sleep(30 * time.Millisecond)
		}
	}
	other := e.do("POST", "/v1/push", pushes[1])
	wg.Wait()
	delivered, coalesced := 0, 0
	for _, r := range results {
		if r.Status != 200 {
			t.Fatalf("push: %d %s", r.Status, r.Raw)
		}
		if r.Body["coalesced"] == true {
			coalesced++
		} else if r.Body["delivered"] == true {
			delivered++
		}
	}
	if delivered != 1 || coalesced != 9 {
		t.Fatalf("%d delivered, %d coalesced; want 1 and 9", delivered, coalesced)
	}
	if other.Body["delivered"] != true {
		t.Fatalf("another node's push was held back: %s", other.Raw)
	}
	time.Sleep(700 * time.Millisecond) // past the window and the trailing push's latency
	reqs := e.FCM.Requests()
	if len(reqs) != 3 {
		t.Fatalf("FCM got %d requests, want 3 (first, trailing, other node)", len(reqs))
	}
	var trailing *fcm.Message
	for _, r := range reqs[1:] {
		if m := r.FCMMessage(); m.Token == fmt.Sprintf("%064x", 1) {
			trailing = &m
		}
	}
	if trailing == nil || trailing.Android.Priority != "high" {
		t.Fatalf("trailing push missing or not high priority although an important push was merged: %v", trailing)
	}
	// Once the trailing push's own window has passed, a push goes straight
	// out again.
	time.Sleep(500 * time.Millisecond)
	if p := e.do("POST", "/v1/push", pushes[0]); p.Body["delivered"] != true {
		t.Fatalf("push after the window: %s", p.Raw)
	}
}

func TestRateLimits(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{
		pushLimit:     ratelimit.Rate{PerSecond: 0.5, Burst: 2},
		registerLimit: ratelimit.Rate{PerSecond: 0.5, Burst: 3},
		tokenLimit:    ratelimit.Rate{PerSecond: 0.5, Burst: 5},
		tokens:        []string{"tok"},
	})
	auth := []string{"Authorization", "Bearer tok"}
	pushes := registerN2(t, e, 3, auth)
	r := e.do("POST", "/v1/register", map[string]any{"service": "fcm", "account": "x@example.org", "device_id": "d", "token": "t"}, auth...)
	expectProblem(t, r, 429, "rate-limited")
	// Another account domain has its own bucket.
	if r := e.do("POST", "/v1/register", map[string]any{"service": "fcm", "account": "x@example.net", "device_id": "d", "token": "t"}, auth...); r.Status != 201 {
		t.Fatalf("register for another domain: %d %s", r.Status, r.Raw)
	}
	for i := range 2 {
		if p := e.do("POST", "/v1/push", pushes[i]); p.Status != 200 {
			t.Fatalf("push %d: %d %s", i, p.Status, p.Raw)
		}
	}
	p := e.do("POST", "/v1/push", pushes[2])
	expectProblem(t, p, 429, "rate-limited")
	if p.Header.Get("Retry-After") != "2" {
		t.Fatalf("Retry-After %q, want 2 at 0.5/s", p.Header.Get("Retry-After"))
	}
	// The API token's own bucket (5) is spent by now: 4 registrations + 1.
	expectProblem(t, e.do("POST", "/v1/unregister", map[string]any{"service": "fcm", "account": "x@example.net", "device_id": "d"}, auth...), 429, "rate-limited")
}

func registerN2(t *testing.T, e *env, n int, header []string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for i := range n {
		r := e.do("POST", "/v1/register", map[string]any{"service": "fcm", "account": fmt.Sprintf("u%d@example.org", i), "device_id": "d", "token": "t"}, header...)
		if r.Status != 201 {
			t.Fatalf("register %d: %d %s", i, r.Status, r.Raw)
		}
		out = append(out, map[string]any{"node": r.Str("node"), "secret": r.Str("secret"), "domain": "example.org"})
	}
	return out
}

// Beyond the in-flight bound a push is refused at once with 503.
func TestInFlightBound(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{inflight: 2})
	pushes := registerN(t, e, "fcm", 3)
	e.FCM.SetLatency(time.Second)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			if p := e.do("POST", "/v1/push", pushes[i]); p.Status != 200 {
				t.Errorf("push %d: %d", i, p.Status)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	expectProblem(t, e.do("POST", "/v1/push", pushes[2]), 503, "unavailable")
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Fatalf("refusal took %v; it must be immediate", d)
	}
	wg.Wait()
	if p := e.do("POST", "/v1/push", pushes[2]); p.Status != 200 {
		t.Fatalf("push once slots are free: %d", p.Status)
	}
}
