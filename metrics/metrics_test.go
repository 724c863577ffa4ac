package metrics_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/metrics"
)

type counter struct{ calls int }

func (c *counter) CountRegistrations(context.Context) (map[p2http.Service]int64, error) {
	c.calls++
	return map[p2http.Service]int64{p2http.FCM: 7, p2http.APNs: 2}, nil
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(w.Body)
	return string(b)
}

func TestOutcomes(t *testing.T) {
	c := &counter{}
	m := metrics.New(c)
	m.PushFinished(p2http.FCM, false, nil, 10*time.Millisecond)
	m.PushFinished(p2http.FCM, true, nil, 0)
	m.PushFinished(p2http.APNs, false, &p2http.DeadTokenError{Reason: "Unregistered"}, time.Millisecond)
	m.PushFinished("", false, p2http.Errorf(p2http.ERATELIMIT, "slow down"), 0)
	m.PushFinished(p2http.FCM, false, p2http.Errorf(p2http.EUNAVAILABLE, "down"), time.Second)
	m.Sent(p2http.FCM, p2http.Errorf(p2http.EUNAVAILABLE, "down"), time.Millisecond)
	m.Retried(p2http.FCM)
	m.Request("/v1/push", "POST", 200, time.Millisecond)
	out := scrape(t, m)
	for _, want := range []string{
		`p2http_pushes_total{outcome="delivered",service="fcm"} 1`,
		`p2http_pushes_total{outcome="coalesced",service="fcm"} 1`,
		`p2http_pushes_total{outcome="dead_token",service="apns"} 1`,
		`p2http_pushes_total{outcome="rate_limited",service="unknown"} 1`,
		`p2http_pushes_total{outcome="failed",service="fcm"} 1`,
		`p2http_pushes_total{outcome="delivered",service="apns"} 0`,
		`p2http_upstream_errors_total{reason="unavailable",service="fcm"} 1`,
		`p2http_push_retries_total{service="fcm"} 1`,
		`p2http_http_requests_total{method="POST",route="/v1/push",status="200"} 1`,
		`p2http_registrations{service="fcm"} 7`,
		`p2http_push_duration_seconds_count{service="fcm"} 2`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	scrape(t, m)
	if c.calls != 1 {
		t.Fatalf("registrations counted %d times for two scrapes; once a minute at most", c.calls)
	}
}
