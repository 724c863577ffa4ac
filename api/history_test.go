package api_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/internal/fake"
)

// history is the push history GET /v1/registration shows for node (every
// answer is held to openapi.yaml by the client).
func (e *env) history(t *testing.T, node string) response {
	t.Helper()
	g := e.do("GET", "/v1/registration?node="+url.QueryEscape(node), nil)
	if g.Status != 200 || g.Str("push_history") != "kept" {
		t.Fatalf("registration: %d %s", g.Status, g.Raw)
	}
	return g
}

// timeField returns a date-time field of r, failing unless it is within
// [from, to].
func timeField(t *testing.T, r response, key string, from, to time.Time) time.Time {
	t.Helper()
	got, err := time.Parse(time.RFC3339Nano, r.Str(key))
	if err != nil {
		t.Fatalf("%s: %v in %s", key, err, r.Raw)
	}
	if got.Before(from.Truncate(time.Microsecond)) || got.After(to) {
		t.Fatalf("%s = %v, not within %v … %v", key, got, from, to)
	}
	return got
}

// After a push that failed upstream (FCM over its quota until past the push
// deadline), the registration shows the failure's time and FCM's reason;
// after a delivered push, the delivery, the failure still there; a dead
// token still removes the registration. On both databases, with each push
// written at once and with pushes batched (shown by the relay before they
// are written).
func TestPushHistoryShown(t *testing.T) {
	for _, c := range []struct {
		name  string
		every time.Duration
	}{{"written at once", 0}, {"batched", time.Hour}} {
		t.Run(c.name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, store *db.DB) {
				e := newEnv(t, store, options{pushLogEvery: c.every})
				r := register(t, e, "fcm", fcmToken)
				node, secret := r.Str("node"), r.Str("secret")
				push := map[string]any{"node": node, "secret": secret, "domain": "example.org"}

				g := e.history(t, node)
				if g.Body["push_count"] != 0.0 || g.Body["last_push_at"] != nil || g.Body["last_push_outcome"] != nil ||
					g.Body["last_failure_at"] != nil || g.Body["last_failure_reason"] != nil {
					t.Fatalf("never pushed: %s", g.Raw)
				}

				// Over quota until the deadline (2 s here): retried, then a
				// temporary error.
				quota := fake.FCMError(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded for the project")
				quota.Header = map[string]string{"Retry-After": "1"}
				e.FCM.Always(&quota)
				before := time.Now()
				p := e.do("POST", "/v1/push", push)
				after := time.Now()
				if p.Status != 503 && p.Status != 504 {
					t.Fatalf("push over quota: %d %s", p.Status, p.Raw)
				}
				if n := len(e.FCM.Requests()); n < 2 {
					t.Fatalf("FCM got %d requests; the relay retries a 429 within the deadline", n)
				}
				e.FCM.Always(nil)
				g = e.history(t, node)
				failedAt := timeField(t, g, "last_failure_at", before, after)
				if g.Body["push_count"] != 1.0 || g.Str("last_push_outcome") != "failed" ||
					g.Str("last_failure_reason") != "QUOTA_EXCEEDED" || g.Str("last_push_at") != g.Str("last_failure_at") {
					t.Fatalf("after a push over quota: %s", g.Raw)
				}

				// Delivered: the last push is the delivery, the failure stays.
				e.FCM.Reset()
				before = time.Now()
				if p := e.do("POST", "/v1/push", push); p.Status != 200 {
					t.Fatalf("push: %d %s", p.Status, p.Raw)
				}
				g = e.history(t, node)
				timeField(t, g, "last_push_at", before, time.Now())
				if g.Body["push_count"] != 2.0 || g.Str("last_push_outcome") != "delivered" || g.Str("last_failure_reason") != "QUOTA_EXCEEDED" ||
					!timeField(t, g, "last_failure_at", before.Add(-time.Hour), before).Equal(failedAt) {
					t.Fatalf("after a delivered push: %s", g.Raw)
				}

				// FCM's status alone, with no error code, is the reason then.
				bare := fake.FCMError(403, "PERMISSION_DENIED", "", "The caller does not have permission")
				e.FCM.Always(&bare)
				expectProblem(t, e.do("POST", "/v1/push", push), 502, "upstream-rejected")
				e.FCM.Always(nil)
				if g = e.history(t, node); g.Str("last_failure_reason") != "PERMISSION_DENIED" || g.Body["push_count"] != 3.0 {
					t.Fatalf("after a refused push: %s", g.Raw)
				}

				// Registering again keeps the history.
				if r := register(t, e, "fcm", "fcm-token-renewed"); r.Status != 200 || r.Str("node") != node {
					t.Fatalf("re-register: %d %s", r.Status, r.Raw)
				}
				if g = e.history(t, node); g.Body["push_count"] != 3.0 || g.Str("last_push_outcome") != "failed" {
					t.Fatalf("after registering again: %s", g.Raw)
				}

				// Nothing of the token, the account or the provider's text.
				for _, leak := range []string{fcmToken, "fcm-token-renewed", "alice", "Alice", "Quota exceeded", "permission", secret} {
					if strings.Contains(string(g.Raw), leak) {
						t.Fatalf("the registration shows %q: %s", leak, g.Raw)
					}
				}

				// A dead token still removes the registration, history and all.
				dead := fake.FCMError(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
				e.FCM.Next(dead)
				expectProblem(t, e.do("POST", "/v1/push", push), 410, "token-dead")
				expectProblem(t, e.do("GET", "/v1/registration?node="+url.QueryEscape(node), nil), 404, "not-found")
			})
		})
	}
}

// APNs' reasons are shown as Apple names them.
func TestPushHistoryAPNsReason(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{})
	r := register(t, e, "apns", apnsTok)
	node := r.Str("node")
	e.APNs.Next(fake.APNsError(400, "TopicDisallowed", 0))
	expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": node, "secret": r.Str("secret")}), 502, "upstream-rejected")
	if g := e.history(t, node); g.Str("last_failure_reason") != "TopicDisallowed" || g.Str("last_push_outcome") != "failed" {
		t.Fatalf("after a topic APNs refused: %s", g.Raw)
	}
}
