package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/api/client"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/internal/testutil"
)

// TestGeneratedClient drives the API through the Go client generated from
// openapi.yaml, as an integrator would, over the validating transport.
func TestGeneratedClient(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{tokens: []string{"admin-token"}})
	auth := client.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer admin-token")
		return nil
	})
	c, err := client.NewClientWithResponses(e.URL, client.WithHTTPClient(e.Client), auth)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	reg, err := c.RegisterWithResponse(ctx, client.RegisterRequest{
		Service: client.ServiceFcm, Account: "carol@example.org", DeviceId: "android-id-9", Token: "fcm-token-client",
	})
	if err != nil || reg.StatusCode() != 201 || reg.JSON201 == nil {
		t.Fatalf("register: %v %d %s", err, reg.StatusCode(), reg.Body)
	}
	again, err := c.RegisterWithResponse(ctx, client.RegisterRequest{
		Service: client.ServiceFcm, Account: "carol@example.org", DeviceId: "android-id-9", Token: "fcm-token-new",
	})
	if err != nil || again.StatusCode() != 200 || again.JSON200.Node != reg.JSON201.Node || again.JSON200.Secret != reg.JSON201.Secret {
		t.Fatalf("re-register: %v %d %s", err, again.StatusCode(), again.Body)
	}

	important := true
	push, err := c.PushWithResponse(ctx, client.PushRequest{Node: reg.JSON201.Node, Secret: reg.JSON201.Secret, Important: &important})
	if err != nil || push.JSON200 == nil || push.JSON200.Priority != client.PriorityHigh || push.JSON200.Service != client.ServiceFcm {
		t.Fatalf("push: %v %d %s", err, push.StatusCode(), push.Body)
	}
	if got := e.FCM.Tokens(); len(got) != 1 || got[0] != "fcm-token-new" {
		t.Fatalf("FCM tokens %v", got)
	}

	info, err := c.GetRegistrationWithResponse(ctx, &client.GetRegistrationParams{Node: reg.JSON201.Node})
	if err != nil || info.JSON200 == nil || info.JSON200.Domain != "example.org" || info.JSON200.LastPushAt == nil {
		t.Fatalf("registration: %v %d %s", err, info.StatusCode(), info.Body)
	}

	bad, err := c.PushWithResponse(ctx, client.PushRequest{Node: reg.JSON201.Node, Secret: "wrong-secret-wrong-secret"})
	if err != nil || bad.StatusCode() != 403 || bad.ApplicationproblemJSON403 == nil ||
		bad.ApplicationproblemJSON403.Type != client.ProblemTypeForbidden {
		t.Fatalf("wrong secret: %v %d %s", err, bad.StatusCode(), bad.Body)
	}

	un, err := c.UnregisterWithResponse(ctx, client.UnregisterRequest{Service: client.ServiceFcm, Account: "carol@example.org", DeviceId: "android-id-9"})
	if err != nil || un.StatusCode() != 204 {
		t.Fatalf("unregister: %v %d %s", err, un.StatusCode(), un.Body)
	}
	ready, err := c.ReadyzWithResponse(ctx)
	if err != nil || ready.JSON200 == nil || ready.JSON200.Status != client.ReadinessStatusReady {
		t.Fatalf("readyz: %v %s", err, ready.Body)
	}
}

// api.Client, the domain over HTTP, against a real p2http, every request
// and answer held to openapi.yaml.
func TestClient(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{tokens: []string{"admin-token"}})
	c, err := api.NewClient(api.ClientConfig{BaseURL: e.URL, Token: "admin-token", Transport: e.Client.Transport})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	info, err := c.Describe(ctx)
	if err != nil || info.JID != testJID || !slices.Equal(info.Services, p2http.Services) || len(info.Apps) != 0 {
		t.Fatalf("Describe: %+v %v", info, err)
	}
	req := p2http.RegisterRequest{Service: p2http.FCM, Account: "carol@example.org", DeviceID: "android-id-9", Token: "fcm-token-client"}
	reg, err := c.Register(ctx, req)
	if err != nil || !reg.Created || reg.JID != testJID || reg.Node == "" || reg.Secret == "" {
		t.Fatalf("Register: %+v %v", reg, err)
	}
	req.Token = "fcm-token-new"
	if again, err := c.Register(ctx, req); err != nil || again.Created || again.Node != reg.Node || again.Secret != reg.Secret {
		t.Fatalf("Register again: %+v %v", again, err)
	}
	res, err := c.Push(ctx, p2http.PushRequest{Node: reg.Node, Secret: reg.Secret, Domain: "example.org", Important: true})
	if err != nil || res != (p2http.PushResult{Service: p2http.FCM, Priority: p2http.PriorityHigh}) {
		t.Fatalf("Push: %+v %v", res, err)
	}
	got, err := c.Lookup(ctx, reg.Node)
	if err != nil || got.Node != reg.Node || got.Domain != "example.org" || got.Service != p2http.FCM ||
		got.App != p2http.DefaultApp || got.Token != "" || got.CreatedAt.IsZero() || got.LastPushAt == nil {
		t.Fatalf("Lookup: %+v %v", got, err)
	}
	if h := got.PushHistory; !h.Recorded || h.Pushes != 1 || h.LastOutcome != p2http.PushDelivered || h.LastFailureAt != nil ||
		h.LastFailureReason != "" || !h.LastPushAt.Equal(*got.LastPushAt) {
		t.Fatalf("Lookup's push history: %+v", h)
	}

	_, err = c.Push(ctx, p2http.PushRequest{Node: reg.Node, Secret: "wrong-secret-wrong-secret"})
	wantCode(t, err, p2http.EFORBIDDEN)
	var re *api.ResponseError
	if !errors.As(err, &re) || re.Status != 403 || re.Type != api.ProblemTypePrefix+"forbidden" || re.RequestID == "" ||
		p2http.ErrorMessage(err) == "" {
		t.Fatalf("wrong secret: %#v %v", re, err)
	}
	_, err = c.Push(ctx, p2http.PushRequest{Node: "no-such-node", Secret: "s"})
	wantCode(t, err, p2http.ENOTFOUND)
	_, err = c.Register(ctx, p2http.RegisterRequest{Service: "gcm", Account: "carol@example.org", DeviceID: "d", Token: "t"})
	wantCode(t, err, p2http.EINVALID)
	if p2http.ErrorField(err) != "service" {
		t.Fatalf("field %q", p2http.ErrorField(err))
	}
	// Without apps in p2http's info, a further app is not asked for.
	_, err = c.Push(ctx, p2http.PushRequest{App: "quicksy", Node: reg.Node, Secret: reg.Secret})
	wantCode(t, err, p2http.ENOTFOUND)

	if err := c.Unregister(ctx, p2http.UnregisterRequest{Service: p2http.FCM, Account: "carol@example.org", DeviceID: "android-id-9"}); err != nil {
		t.Fatalf("Unregister: %v", err)
	}
	err = c.Unregister(ctx, p2http.UnregisterRequest{Service: p2http.FCM, Account: "carol@example.org", DeviceID: "android-id-9"})
	wantCode(t, err, p2http.ENOTFOUND)
	_, err = c.Lookup(ctx, reg.Node)
	wantCode(t, err, p2http.ENOTFOUND)

	wrong, err := api.NewClient(api.ClientConfig{BaseURL: e.URL, Token: "not-the-token", Transport: e.Client.Transport})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.Register(ctx, req)
	wantCode(t, err, p2http.EUNAUTHORIZED)
	if strings.Contains(err.Error(), "not-the-token") {
		t.Fatalf("the token in the error: %v", err)
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var e *p2http.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error %v, want a *p2http.Error of code %s", err, code)
	}
}

// What Client makes of every kind of answer: only p2http's own problem
// documents carry their code; any other answer is never permanent; no
// answer is EUNREACHABLE.
func TestClientAnswers(t *testing.T) {
	const pj = "application/problem+json"
	problem := func(typ string, status int) string {
		return fmt.Sprintf(`{"type":"urn:p2http:problem:%s","title":"t","status":%d,"detail":"what went wrong","field":"node","request_id":"req-1"}`, typ, status)
	}
	tests := []struct {
		status      int
		contentType string
		body        string
		code        string
		own         bool // p2http's problem: its detail is the message
	}{
		{400, pj, problem("invalid-request", 400), p2http.EINVALID, true},
		{400, pj, problem("service-not-configured", 400), p2http.ENOTCONFIGURED, true},
		{401, pj, problem("unauthorized", 401), p2http.EUNAUTHORIZED, true},
		{403, pj, problem("forbidden", 403), p2http.EFORBIDDEN, true},
		{404, pj, problem("not-found", 404), p2http.ENOTFOUND, true},
		{410, pj, problem("token-dead", 410), p2http.EGONE, true},
		{429, pj, problem("rate-limited", 429), p2http.ERATELIMIT, true},
		{500, pj, problem("internal", 500), p2http.EINTERNAL, true},
		{502, pj, problem("upstream-rejected", 502), p2http.EUPSTREAM, true},
		{503, pj, problem("unavailable", 503), p2http.EUNAVAILABLE, true},
		{504, pj, problem("timeout", 504), p2http.ETIMEOUT, true},
		// p2http's own, of codes only HTTP knows: p2xmpp and p2http are
		// out of step.
		{405, pj, problem("method-not-allowed", 405), p2http.EINTERNAL, true},
		{413, pj, problem("body-too-large", 413), p2http.EINTERNAL, true},
		{415, pj, problem("unsupported-media-type", 415), p2http.EINTERNAL, true},
		{421, pj, problem("misdirected-request", 421), p2http.EINTERNAL, true},
		// Not p2http's own: never a permanent code.
		{404, "text/html", "<html>404 page not found</html>", p2http.EINTERNAL, false},
		{404, pj, problem("method-not-allowed", 404), p2http.EINTERNAL, false},
		{404, pj, problem("no-such-type", 404), p2http.EINTERNAL, false},
		{404, "application/json", problem("not-found", 404), p2http.EINTERNAL, false},
		{403, pj, problem("forbidden", 404), p2http.EINTERNAL, false},
		{410, pj, `{not json`, p2http.EINTERNAL, false},
		{401, "text/html", "<html>Authorization required</html>", p2http.EUNAUTHORIZED, false},
		{429, "text/plain", "slow down", p2http.ERATELIMIT, false},
		{502, "text/html", "<html>Bad Gateway</html>", p2http.EINTERNAL, false},
		{503, "text/html", "<html>Service Unavailable</html>", p2http.EUNAVAILABLE, false},
		{504, "text/html", "<html>Gateway Timeout</html>", p2http.ETIMEOUT, false},
		{507, "text/plain", "insufficient storage", p2http.EINTERNAL, false},
		{204, "", "", p2http.EINTERNAL, false},
		{200, "application/json", `{not json`, p2http.EINTERNAL, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status, " ", tt.contentType, " ", tt.body[:min(len(tt.body), 40)]), func(t *testing.T) {
			c := cannedClient(t, tt.status, tt.contentType, tt.body, map[string]string{"Retry-After": "7"})
			_, err := c.Push(t.Context(), p2http.PushRequest{Node: "n", Secret: "s"})
			wantCode(t, err, tt.code)
			if got := p2http.ErrorMessage(err) == "what went wrong"; got != tt.own {
				t.Errorf("p2http's detail as the message: %v, want %v (%v)", got, tt.own, err)
			}
			if got := p2http.ErrorField(err) == "node"; got != tt.own {
				t.Errorf("p2http's field: %v, want %v (%v)", got, tt.own, err)
			}
			if p2http.RetryAfter(err) != 7*time.Second && tt.status >= 300 {
				t.Errorf("RetryAfter %v", p2http.RetryAfter(err))
			}
			var re *api.ResponseError
			if tt.status >= 300 && (!errors.As(err, &re) || re.Status != tt.status || (re.RequestID == "req-1") != tt.own) {
				t.Errorf("ResponseError %#v (%v)", re, err)
			}
		})
	}
}

// cannedClient returns a Client whose every call gets the one answer.
func cannedClient(t *testing.T, status int, contentType, body string, header map[string]string) *api.Client {
	t.Helper()
	c, err := api.NewClient(api.ClientConfig{BaseURL: "http://p2http.invalid", Transport: testutil.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		h := http.Header{}
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		for k, v := range header {
			h.Set(k, v)
		}
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// No answer is EUNREACHABLE, a cancelled call still says so, and neither
// names the node.
func TestClientUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := api.NewClient(api.ClientConfig{BaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Lookup(t.Context(), "secret-node")
	wantCode(t, err, p2http.EUNREACHABLE)
	if strings.Contains(err.Error(), "secret-node") {
		t.Fatalf("the node in the error: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = c.Describe(ctx)
	wantCode(t, err, p2http.EUNREACHABLE)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("not context.Canceled: %v", err)
	}

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	c, err = api.NewClient(api.ClientConfig{BaseURL: slow.URL, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Push(t.Context(), p2http.PushRequest{Node: "n", Secret: "s"})
	wantCode(t, err, p2http.EUNREACHABLE)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("answered after %v, the timeout is 200 ms", d)
	}
}

// Every request carries the token; the push carries neither a summary nor
// the caller; an answer is read up to its limit only.
func TestClientRequests(t *testing.T) {
	var auth []string
	var pushBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = append(auth, r.Header.Get("Authorization"))
		switch r.URL.Path {
		case "/v1/info":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"jid":"push.example.org","services":["fcm"],"apps":[{"name":"quicksy","jid":"quicksy@push.example.org","services":["fcm"]}],"version":"t","dev_mode":false}`)
		case "/v1/push":
			b, _ := io.ReadAll(r.Body)
			pushBody = string(b)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"delivered":false,"coalesced":true,"service":"fcm","priority":"normal"}`)
		default:
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(404)
			io.WriteString(w, `{"type":"urn:p2http:problem:not-found","title":"Not found","status":404,"detail":"`+strings.Repeat("x", 2<<20)+`"}`)
		}
	}))
	defer srv.Close()
	c, err := api.NewClient(api.ClientConfig{BaseURL: srv.URL + "/", Token: "tok-123"})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Describe(t.Context())
	if err != nil || len(info.Apps) != 1 || info.Apps[0].Name != "quicksy" || info.Apps[0].JID != "quicksy@push.example.org" ||
		!slices.Equal(info.Apps[0].Services, []p2http.Service{p2http.FCM}) {
		t.Fatalf("Describe: %+v %v", info, err)
	}
	res, err := c.Push(t.Context(), p2http.PushRequest{App: "quicksy", Node: "n", Secret: "s", Domain: "example.org", Caller: "someone"})
	if err != nil || res != (p2http.PushResult{Service: p2http.FCM, Priority: p2http.PriorityNormal, Coalesced: true}) {
		t.Fatalf("Push: %+v %v", res, err)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(pushBody), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"app": "quicksy", "node": "n", "secret": "s", "domain": "example.org", "important": false}
	if !maps.Equal(body, want) {
		t.Fatalf("push body %s", pushBody)
	}
	// 2 MiB of detail, cut at 1 MiB: not JSON any more, so not p2http's own.
	_, err = c.Lookup(t.Context(), "n")
	wantCode(t, err, p2http.EINTERNAL)
	for _, a := range auth {
		if a != "Bearer tok-123" {
			t.Fatalf("Authorization %q", a)
		}
	}
}

func TestNewClientRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://x", "http://", "://"} {
		if _, err := api.NewClient(api.ClientConfig{BaseURL: u}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}
