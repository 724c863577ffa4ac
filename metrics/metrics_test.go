package metrics_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/apps"
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

// has fails t for each line of want that the scrape lacks.
func has(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w+"\n") {
			t.Errorf("metrics lack %s", w)
		}
	}
}

func newMetrics(c metrics.Counter) *metrics.Metrics {
	return metrics.New(metrics.Config{Version: "v1.2.3", Apps: []p2http.App{p2http.DefaultApp, "quicksy"},
		States: apps.States, Registrations: c})
}

func TestOutcomes(t *testing.T) {
	c := &counter{}
	m := newMetrics(c)
	m.PushFinished("default", p2http.FCM, false, nil, 10*time.Millisecond)
	m.PushFinished("default", p2http.FCM, true, nil, 0)
	m.PushFinished("quicksy", p2http.APNs, false, &p2http.DeadTokenError{Reason: "Unregistered"}, time.Millisecond)
	m.PushFinished("default", p2http.FCM, false, p2http.Errorf(p2http.EUNAVAILABLE, "down"), time.Second)
	m.PushFinished("default", p2http.FCM, false, p2http.Errorf(p2http.EUPSTREAM, "credentials"), time.Second)
	// What the caller got wrong: rejected, and out of the delivery histogram.
	m.PushFinished("", "", false, p2http.Errorf(p2http.ENOTFOUND, "no such node"), time.Millisecond)
	m.PushFinished("default", "", false, p2http.Errorf(p2http.EFORBIDDEN, "wrong secret"), time.Millisecond)
	m.PushFinished("default", p2http.FCM, false, p2http.Errorf(p2http.ERATELIMIT, "slow down"), 0)
	m.PushFinished("", "", false, p2http.Invalid("node", "too long"), 0)
	// Failed before resolution: ours, with no service.
	m.PushFinished("default", "", false, p2http.Errorf(p2http.EUNAVAILABLE, "too many in flight"), 0)
	m.Sent("default", p2http.FCM, p2http.Errorf(p2http.EUNAVAILABLE, "down"), time.Millisecond)
	m.Sent("default", p2http.FCM, p2http.Errorf(p2http.EUPSTREAM, "credentials"), time.Millisecond)
	m.Sent("quicksy", p2http.APNs, &p2http.DeadTokenError{Reason: "Unregistered"}, time.Millisecond)
	m.Retried("default", p2http.FCM)
	m.Request("/v1/push", "POST", 200, time.Millisecond)
	out := scrape(t, m)
	has(t, out,
		`p2http_pushes_total{app="default",outcome="delivered",reason="",service="fcm"} 1`,
		`p2http_pushes_total{app="default",outcome="coalesced",reason="",service="fcm"} 1`,
		`p2http_pushes_total{app="quicksy",outcome="dead_token",reason="dead_token",service="apns"} 1`,
		`p2http_pushes_total{app="default",outcome="failed",reason="unavailable",service="fcm"} 1`,
		`p2http_pushes_total{app="default",outcome="failed",reason="upstream_rejected",service="fcm"} 1`,
		`p2http_pushes_total{app="unknown",outcome="rejected",reason="unknown_node",service="unknown"} 1`,
		`p2http_pushes_total{app="default",outcome="rejected",reason="forbidden",service="unknown"} 1`,
		`p2http_pushes_total{app="default",outcome="rejected",reason="rate_limited",service="fcm"} 1`,
		`p2http_pushes_total{app="unknown",outcome="rejected",reason="invalid",service="unknown"} 1`,
		`p2http_pushes_total{app="default",outcome="failed",reason="unavailable",service="unknown"} 1`,
		`p2http_pushes_total{app="default",outcome="delivered",reason="",service="apns"} 0`,
		`p2http_upstream_errors_total{app="default",reason="unavailable",service="fcm"} 1`,
		`p2http_upstream_errors_total{app="default",reason="upstream_rejected",service="fcm"} 1`,
		`p2http_upstream_errors_total{app="quicksy",reason="dead_token",service="apns"} 1`,
		`p2http_push_retries_total{app="default",service="fcm"} 1`,
		`p2http_http_requests_total{method="POST",route="/v1/push",status="200"} 1`,
		`p2http_registrations{service="fcm"} 7`,
		// delivered, failed twice: neither the coalesced push nor the
		// rate-limited one.
		`p2http_push_duration_seconds_count{app="default",service="fcm"} 3`,
		`p2http_push_duration_seconds_count{app="quicksy",service="apns"} 1`,
		`p2http_provider_request_duration_seconds_count{app="default",service="fcm"} 2`,
	)
	if strings.Contains(out, `p2http_push_duration_seconds_count{app="unknown"`) ||
		strings.Contains(out, `p2http_push_duration_seconds_count{app="default",service="unknown"}`) {
		t.Error("the delivery histogram has a series for pushes that never reached a provider")
	}
	if !strings.Contains(out, "process_resident_memory_bytes") {
		t.Error("no process metrics")
	}
	scrape(t, m)
	if c.calls != 1 {
		t.Fatalf("registrations counted %d times for two scrapes; once a minute at most", c.calls)
	}
}

// Before any event, every counter of every app, service, outcome and reason
// is there at zero, and the build is described.
func TestZeroFromStart(t *testing.T) {
	out := scrape(t, newMetrics(nil))
	apps := []string{"default", "quicksy", "unknown"}
	var want []string
	for _, app := range apps {
		for _, service := range []string{"fcm", "apns", "unknown"} {
			for _, o := range []struct{ outcome, reason string }{
				{"delivered", ""}, {"coalesced", ""}, {"dead_token", "dead_token"},
				{"rejected", "invalid"}, {"rejected", "unknown_node"}, {"rejected", "forbidden"}, {"rejected", "rate_limited"},
				{"failed", "unavailable"}, {"failed", "timeout"}, {"failed", "upstream_rejected"}, {"failed", "internal"},
			} {
				want = append(want, `p2http_pushes_total{app="`+app+`",outcome="`+o.outcome+`",reason="`+o.reason+`",service="`+service+`"} 0`)
			}
		}
	}
	for _, app := range apps[:2] {
		for _, service := range []string{"fcm", "apns"} {
			for _, r := range []string{"dead_token", "unavailable", "timeout", "upstream_rejected", "internal"} {
				want = append(want, `p2http_upstream_errors_total{app="`+app+`",reason="`+r+`",service="`+service+`"} 0`)
			}
			want = append(want, `p2http_push_retries_total{app="`+app+`",service="`+service+`"} 0`,
				`p2http_push_duration_seconds_count{app="`+app+`",service="`+service+`"} 0`,
				`p2http_provider_request_duration_seconds_count{app="`+app+`",service="`+service+`"} 0`)
		}
	}
	want = append(want,
		`p2http_build_info{goversion="`+runtime.Version()+`",version="v1.2.3"} 1`,
		`p2http_http_connections_refused_total{reason="per_address"} 0`,
		`p2http_http_connection_errors_total{kind="tls_handshake"} 0`)
	has(t, out, want...)
}

// The app label only takes the configured apps' names: a caller's string
// is counted as unknown, and never shows.
func TestAppLabelBounded(t *testing.T) {
	m := newMetrics(nil)
	before := strings.Count(scrape(t, m), "\n")
	for _, app := range []p2http.App{"not-an-app-of-ours", "", "unknown", "Default"} {
		m.PushFinished(app, "some-service", false, p2http.Errorf(p2http.ENOTFOUND, "no such node"), 0)
		m.PushFinished(app, p2http.FCM, false, nil, time.Millisecond)
		m.Sent(app, p2http.FCM, p2http.Errorf(p2http.EUNAVAILABLE, "down"), time.Millisecond)
		m.Retried(app, p2http.FCM)
	}
	out := scrape(t, m)
	for _, s := range []string{"not-an-app-of-ours", "some-service", "Default"} {
		if strings.Contains(out, s) {
			t.Errorf("a caller's string is a label value: %s", s)
		}
	}
	has(t, out, `p2http_pushes_total{app="unknown",outcome="rejected",reason="unknown_node",service="unknown"} 4`,
		`p2http_pushes_total{app="unknown",outcome="delivered",reason="",service="fcm"} 4`,
		`p2http_upstream_errors_total{app="unknown",reason="unavailable",service="fcm"} 4`,
		`p2http_push_retries_total{app="unknown",service="fcm"} 4`)
	// The provider metrics of the unknown app, which sends nothing in
	// practice (an upstream error, a retry, a provider histogram: 18
	// lines), and nothing else: the rest was there from the start.
	if after := strings.Count(out, "\n"); after != before+18 {
		t.Errorf("%d lines before, %d after: the label values are not bounded", before, after)
	}
}

// The one table: each of the domain's error codes (the constants E… of
// ../error.go) has a reason of its own, and the caller's faults are
// rejected, not failed.
func TestOutcomeTable(t *testing.T) {
	for _, c := range []struct{ code, outcome, reason string }{
		{p2http.ENOTFOUND, "rejected", "unknown_node"},
		{p2http.EFORBIDDEN, "rejected", "forbidden"},
		{p2http.ERATELIMIT, "rejected", "rate_limited"},
		{p2http.EINVALID, "rejected", "invalid"},
		{p2http.ENOTCONFIGURED, "rejected", "not_configured"},
		{p2http.EGONE, "dead_token", "dead_token"},
		{p2http.EUNAVAILABLE, "failed", "unavailable"},
		{p2http.ETIMEOUT, "failed", "timeout"},
		{p2http.EUPSTREAM, "failed", "upstream_rejected"},
		{p2http.EINTERNAL, "failed", "internal"},
		{p2http.EUNAUTHORIZED, "failed", "unauthorized"},
		{p2http.EUNREACHABLE, "failed", "unreachable"},
		{"a-code-nobody-has", "failed", "internal"},
	} {
		if o, r := metrics.Outcome(&p2http.Error{Code: c.code}, false); o != c.outcome || r != c.reason {
			t.Errorf("%s: %s/%s, want %s/%s", c.code, o, r, c.outcome, c.reason)
		}
	}
	if o, r := metrics.Outcome(&p2http.DeadTokenError{}, false); o != "dead_token" || r != "dead_token" {
		t.Errorf("a dead token: %s/%s", o, r)
	}
	if o, r := metrics.Outcome(nil, false); o != "delivered" || r != "" {
		t.Errorf("no error: %s/%s", o, r)
	}
	if o, _ := metrics.Outcome(nil, true); o != "coalesced" {
		t.Errorf("coalesced: %s", o)
	}

	codes := domainCodes(t)
	if len(codes) < 12 {
		t.Fatalf("found %d error codes in ../error.go", len(codes))
	}
	reasons := map[string]string{}
	for name, code := range codes {
		_, r := metrics.Outcome(&p2http.Error{Code: code}, false)
		if r == "internal" && code != p2http.EINTERNAL {
			t.Errorf("%s (%q) has no row of its own: it counts as internal", name, code)
		}
		if other, dup := reasons[r]; dup {
			t.Errorf("%s and %s share the reason %s", name, other, r)
		}
		reasons[r] = name
	}
}

// domainCodes returns the error codes of the root package, by constant
// name, as ../error.go declares them.
func domainCodes(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../error.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			v := spec.(*ast.ValueSpec)
			for i, name := range v.Names {
				if lit, ok := v.Values[i].(*ast.BasicLit); ok && strings.HasPrefix(name.Name, "E") {
					codes[name.Name] = strings.Trim(lit.Value, `"`)
				}
			}
		}
	}
	return codes
}

// A push costs no allocation for its labels: the children are resolved in
// New.
func TestNoAllocationPerPush(t *testing.T) {
	m := newMetrics(nil)
	down := p2http.Errorf(p2http.EUNAVAILABLE, "down")
	stale := p2http.Errorf(p2http.ENOTFOUND, "no such node")
	for name, f := range map[string]func(){
		"delivered":        func() { m.PushFinished("quicksy", p2http.FCM, false, nil, time.Millisecond) },
		"failed":           func() { m.PushFinished("default", p2http.APNs, false, down, time.Millisecond) },
		"rejected unknown": func() { m.PushFinished("", "", false, stale, time.Millisecond) },
		"sent":             func() { m.Sent("default", p2http.FCM, nil, time.Millisecond) },
		"sent failed":      func() { m.Sent("default", p2http.FCM, down, time.Millisecond) },
		"retried":          func() { m.Retried("default", p2http.FCM) },
	} {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s: %.1f allocations per call", name, n)
		}
	}
}

type readiness struct {
	ready  bool
	states map[p2http.App]map[p2http.Service]string
}

func (r *readiness) Ready(context.Context) bool { return r.ready }
func (r *readiness) ServiceStates() map[p2http.App]map[p2http.Service]string {
	return r.states
}

func TestInFlightAndReadiness(t *testing.T) {
	m := newMetrics(nil)
	n := 3
	m.InFlight(func() (int, int) { return n, 4096 })
	r := &readiness{ready: true, states: map[p2http.App]map[p2http.Service]string{
		"default": {p2http.FCM: apps.StateOK, p2http.APNs: apps.StateNotConfigured},
		"quicksy": {p2http.FCM: apps.StateDegraded, p2http.APNs: "a-state-nobody-listed"},
	}}
	m.Readiness(r)
	has(t, scrape(t, m),
		`p2http_pushes_in_flight 3`, `p2http_pushes_in_flight_limit 4096`, `p2http_ready 1`,
		`p2http_service_state{app="default",service="fcm",state="ok"} 1`,
		`p2http_service_state{app="default",service="fcm",state="degraded"} 0`,
		`p2http_service_state{app="default",service="apns",state="not-configured"} 1`,
		`p2http_service_state{app="default",service="apns",state="ok"} 0`,
		`p2http_service_state{app="quicksy",service="fcm",state="degraded"} 1`,
		`p2http_service_state{app="quicksy",service="fcm",state="dev-log"} 0`,
		`p2http_service_state{app="quicksy",service="apns",state="a-state-nobody-listed"} 1`,
	)
	n, r.ready = 17, false
	r.states["default"][p2http.FCM] = apps.StateDegraded
	has(t, scrape(t, m), `p2http_pushes_in_flight 17`, `p2http_ready 0`,
		`p2http_service_state{app="default",service="fcm",state="ok"} 0`,
		`p2http_service_state{app="default",service="fcm",state="degraded"} 1`)
}

func BenchmarkPushFinished(b *testing.B) {
	m := newMetrics(nil)
	b.ReportAllocs()
	for b.Loop() {
		m.PushFinished("default", p2http.FCM, false, nil, time.Millisecond)
	}
}
