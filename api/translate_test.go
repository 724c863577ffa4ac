package api_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/internal/testutil"
	"github.com/p2http/p2http/mock"
)

// services are the in-memory domain services a mock env's API calls.
type services struct {
	Registrar mock.Registrar
	Pusher    mock.Pusher
	Describer mock.Describer
}

// newMockEnv starts the API over the services of m alone: no database, no
// relay, no fake push service. Its tests check translation only, JSON to
// domain calls and back, and every request and answer is still checked
// against openapi.yaml.
func newMockEnv(t testing.TB, m *services) *env {
	t.Helper()
	e := &env{t: t, logs: &testutil.LogBuffer{}}
	e.Handler = api.New(api.Config{Registrar: &m.Registrar, Pusher: &m.Pusher, Describer: &m.Describer,
		Version: "test", Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	srv := httptest.NewServer(e.Handler)
	t.Cleanup(srv.Close)
	e.URL = srv.URL
	e.Client = &http.Client{Transport: newValidator(t, srv.URL, http.DefaultTransport)}
	return e
}

// TestPushTranslation: a push's JSON becomes the PushRequest the domain
// gets (importance from important, else from the summary's body; the
// caller's address), and its PushResult the JSON answer.
func TestPushTranslation(t *testing.T) {
	var got p2http.PushRequest
	m := &services{}
	m.Pusher.PushFn = func(_ context.Context, req p2http.PushRequest) (p2http.PushResult, error) {
		got = req
		return p2http.PushResult{Service: p2http.APNs, Priority: p2http.PriorityNormal, Coalesced: req.Node == "coalesced"}, nil
	}
	e := newMockEnv(t, m)
	for _, tc := range []struct {
		name      string
		body      map[string]any
		important bool
	}{
		{"important set", map[string]any{"node": "n1", "secret": "s1", "domain": "example.org", "important": true}, true},
		{"summary with a body", map[string]any{"node": "n1", "secret": "s1", "summary": map[string]any{"last_message_body": "hi"}}, true},
		{"summary with a blank body", map[string]any{"node": "n1", "secret": "s1", "summary": map[string]any{"last_message_body": "  "}}, false},
		{"important overrides the summary", map[string]any{"node": "n1", "secret": "s1", "important": false, "summary": map[string]any{"last_message_body": "hi"}}, false},
		{"an app", map[string]any{"app": "chat", "node": "coalesced", "secret": "s1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = p2http.PushRequest{}
			r := e.do("POST", "/v1/push", tc.body)
			if r.Status != 200 {
				t.Fatalf("status %d: %s", r.Status, r.Raw)
			}
			b := tc.body
			str := func(k string) string { s, _ := b[k].(string); return s }
			if got.Node != str("node") || got.Secret != str("secret") || got.Domain != str("domain") ||
				got.App != p2http.App(str("app")) || got.Important != tc.important {
				t.Fatalf("domain got %+v from %v", got, b)
			}
			if !strings.HasPrefix(got.Caller, "127.0.0.1") {
				t.Fatalf("caller %q, want the loopback address", got.Caller)
			}
			coalesced := str("node") == "coalesced"
			if r.Body["delivered"] != !coalesced || r.Body["coalesced"] != coalesced ||
				r.Str("service") != "apns" || r.Str("priority") != "normal" {
				t.Fatalf("answer %s", r.Raw)
			}
		})
	}
}

// TestErrorCodesToProblems: each domain error code a service returns
// becomes its status and problem type, with Retry-After where the client
// should come back, and the domain's message (caller-safe by contract)
// reaches the detail; an error that is no domain error is a 500 whose
// detail says nothing of it.
func TestErrorCodesToProblems(t *testing.T) {
	var next error
	m := &services{}
	m.Pusher.PushFn = func(context.Context, p2http.PushRequest) (p2http.PushResult, error) { return p2http.PushResult{}, next }
	e := newMockEnv(t, m)
	for _, tc := range []struct {
		code   string
		status int
		typ    string
	}{
		{p2http.EINVALID, 400, "invalid-request"},
		{p2http.EFORBIDDEN, 403, "forbidden"},
		{p2http.ENOTFOUND, 404, "not-found"},
		{p2http.EGONE, 410, "token-dead"},
		{p2http.ERATELIMIT, 429, "rate-limited"},
		{p2http.EUPSTREAM, 502, "upstream-rejected"},
		{p2http.EUNAVAILABLE, 503, "unavailable"},
		{p2http.ETIMEOUT, 504, "timeout"},
		{p2http.EINTERNAL, 500, "internal"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			next = &p2http.Error{Code: tc.code, Message: "the domain's words " + tc.code, RetryAfter: 7 * time.Second}
			r := e.do("POST", "/v1/push", map[string]any{"node": "n1", "secret": "s1"})
			expectProblem(t, r, tc.status, tc.typ)
			detail := r.Str("detail")
			if !strings.Contains(detail, "the domain's words "+tc.code) {
				t.Fatalf("detail %q lost the domain's message", detail)
			}
			if (tc.status == 429 || tc.status >= 502) && r.Header.Get("Retry-After") != "7" {
				t.Fatalf("Retry-After %q, want 7", r.Header.Get("Retry-After"))
			}
		})
	}
	next = errors.New("pq: connection to 10.0.0.5 refused for user p2http")
	r := e.do("POST", "/v1/push", map[string]any{"node": "n1", "secret": "s1"})
	expectProblem(t, r, 500, "internal")
	if strings.Contains(string(r.Raw), "10.0.0.5") || strings.Contains(string(r.Raw), "pq:") {
		t.Fatalf("a plain error's text reached the client: %s", r.Raw)
	}
}

// TestRegistrationTranslation: a Registration becomes GET
// /v1/registration's answer: its push history when the store records one,
// push_history none and nulls when it does not (the stateless mode), and
// never its token.
func TestRegistrationTranslation(t *testing.T) {
	pushed := time.Date(2025, 3, 4, 10, 12, 12, 345678000, time.UTC)
	failed := pushed.Add(-time.Minute)
	var next p2http.Registration
	m := &services{}
	m.Registrar.LookupFn = func(context.Context, string) (p2http.Registration, error) { return next, nil }
	e := newMockEnv(t, m)
	base := p2http.Registration{App: p2http.DefaultApp, Service: p2http.FCM, Domain: "example.org", Token: "tok-hidden",
		Node: "n", SecretKind: p2http.SecretDerived}
	for _, tc := range []struct {
		name string
		hist p2http.PushHistory
		want map[string]any
	}{
		{"stateless", p2http.PushHistory{}, map[string]any{"push_history": "none", "push_count": nil, "last_push_at": nil,
			"last_push_outcome": nil, "last_failure_at": nil, "last_failure_reason": nil, "created_at": nil}},
		{"never pushed", p2http.PushHistory{Recorded: true}, map[string]any{"push_history": "kept", "push_count": 0.0,
			"last_push_at": nil, "last_push_outcome": nil, "last_failure_at": nil, "last_failure_reason": nil}},
		{"delivered after a failure", p2http.PushHistory{Recorded: true, Pushes: 12, LastPushAt: &pushed, LastOutcome: p2http.PushDelivered,
			LastFailureAt: &failed, LastFailureReason: "BadDeviceToken"},
			map[string]any{"push_history": "kept", "push_count": 12.0, "last_push_at": "2025-03-04T10:12:12.345678Z",
				"last_push_outcome": "delivered", "last_failure_at": "2025-03-04T10:11:12.345678Z", "last_failure_reason": "BadDeviceToken"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next = base
			next.PushHistory = tc.hist
			r := e.do("GET", "/v1/registration?node=n", nil)
			if r.Status != 200 || strings.Contains(string(r.Raw), "tok-hidden") {
				t.Fatalf("registration: %d %s", r.Status, r.Raw)
			}
			for k, v := range tc.want {
				if r.Body[k] != v {
					t.Fatalf("%s = %v, want %v: %s", k, r.Body[k], v, r.Raw)
				}
			}
		})
	}
}
