package client_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/p2http/p2http/api/client"
)

// answer is a canned HTTP answer.
type answer struct {
	status  int
	header  http.Header
	ctype   string
	body    string
	request func(t *testing.T, r *http.Request, body []byte) // optional checks
}

// validator validates requests and answers against the OpenAPI document, as
// the API tests do.
type validator struct {
	router routers.Router
}

func newValidator(t *testing.T) *validator {
	t.Helper()
	doc := loadSpec(t)
	doc.Servers = nil // match any host: the test server listens on a random port
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	return &validator{router: router}
}

func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.RequestValidationInput.Request.Header.Get("Authorization") == "Bearer good-token" {
		return nil
	}
	return errors.New("no good token")
}

func (v *validator) options() *openapi3filter.Options {
	return &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		AuthenticationFunc:    authenticate,
	}
}

// request validates r, whose body is body.
func (v *validator) request(r *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	route, params, err := v.router.FindRoute(r)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: v.options()}
	return in, openapi3filter.ValidateRequest(r.Context(), in)
}

// response validates a against the operation of in.
func (v *validator) response(in *openapi3filter.RequestValidationInput, a answer) error {
	header := a.header.Clone()
	if header == nil {
		header = http.Header{}
	}
	if a.ctype != "" {
		header.Set("Content-Type", a.ctype)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 a.status,
		Header:                 header,
		Options:                v.options(),
	}
	out.SetBodyBytes([]byte(a.body))
	return openapi3filter.ValidateResponse(context.Background(), out)
}

// serve starts a server answering every request with next(), after
// validating both the request and the answer.
func serve(t *testing.T, v *validator, next func() answer) *client.ClientWithResponses {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		in, err := v.request(r, body)
		if err != nil {
			t.Errorf("%s %s: request does not match the spec: %v", r.Method, r.URL, err)
		}
		a := next()
		if a.request != nil {
			a.request(t, r, body)
		}
		if in != nil {
			if err := v.response(in, a); err != nil {
				t.Errorf("%s %s: answer %d does not match the spec: %v", r.Method, r.URL, a.status, err)
			}
		}
		for k, vs := range a.header {
			w.Header()[k] = vs
		}
		if a.ctype != "" {
			w.Header().Set("Content-Type", a.ctype)
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	c, err := client.NewClientWithResponses(srv.URL, client.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func problem(typ string, status int) string {
	b, _ := json.Marshal(map[string]any{
		"type":       "urn:p2http:problem:" + typ,
		"title":      http.StatusText(status),
		"status":     status,
		"request_id": "r1",
	})
	return string(b)
}

const problemJSON = "application/problem+json"

func TestClientRegister(t *testing.T) {
	v := newValidator(t)
	c := serve(t, v, func() answer {
		return answer{
			status: http.StatusCreated,
			ctype:  "application/json",
			body:   `{"jid":"p2.example.org","node":"eKxTS5n3bOe0","secret":"KK4+H5WMfpRG/2zCbuKq6wpX"}`,
			request: func(t *testing.T, r *http.Request, body []byte) {
				want := `{"account":"alice@example.org","device_id":"android-id-1","service":"fcm","token":"tok"}`
				if string(body) != want {
					t.Errorf("body = %s, want %s", body, want)
				}
				if got := r.Header.Get("Authorization"); got != "Bearer good-token" {
					t.Errorf("Authorization = %q", got)
				}
			},
		}
	})
	res, err := c.RegisterWithResponse(context.Background(), client.RegisterRequest{
		Service:  client.ServiceFcm,
		Account:  "alice@example.org",
		DeviceId: "android-id-1",
		Token:    "tok",
	}, func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer good-token")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode() != http.StatusCreated || res.JSON201 == nil {
		t.Fatalf("status %d, JSON201 %v", res.StatusCode(), res.JSON201)
	}
	if got := *res.JSON201; got != (client.Registration{Jid: "p2.example.org", Node: "eKxTS5n3bOe0", Secret: "KK4+H5WMfpRG/2zCbuKq6wpX"}) {
		t.Errorf("registration = %+v", got)
	}
}

func TestClientPush(t *testing.T) {
	v := newValidator(t)
	answers := []answer{
		{status: 200, ctype: "application/json", body: `{"delivered":true,"coalesced":false,"service":"apns","priority":"high"}`,
			request: func(t *testing.T, _ *http.Request, body []byte) {
				want := `{"important":true,"node":"eKx+S5n3/Oe0","secret":"s"}`
				if string(body) != want {
					t.Errorf("body = %s, want %s", body, want)
				}
			}},
		{status: 429, ctype: problemJSON, header: http.Header{"Retry-After": {"7"}}, body: problem("rate-limited", 429)},
		{status: 401, ctype: problemJSON, header: http.Header{"Www-Authenticate": {`Bearer realm="p2http"`}}, body: problem("unauthorized", 401)},
		{status: 410, ctype: problemJSON, body: problem("token-dead", 410)},
	}
	i := 0
	c := serve(t, v, func() answer { i++; return answers[i-1] })
	ctx := context.Background()
	important := true
	req := client.PushRequest{Node: "eKx+S5n3/Oe0", Secret: "s", Important: &important}

	res, err := c.PushWithResponse(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.JSON200 == nil || *res.JSON200 != (client.PushResult{Delivered: true, Service: client.ServiceApns, Priority: client.PriorityHigh}) {
		t.Errorf("JSON200 = %+v", res.JSON200)
	}

	res, err = c.PushWithResponse(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.ApplicationproblemJSON429 == nil || res.ApplicationproblemJSON429.Type != client.ProblemTypeRateLimited {
		t.Errorf("429 problem = %+v", res.ApplicationproblemJSON429)
	}
	if res.Headers429 == nil || res.Headers429.RetryAfter != 7 {
		t.Errorf("Headers429 = %+v", res.Headers429)
	}

	res, err = c.PushWithResponse(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Headers401 == nil || res.Headers401.WWWAuthenticate != `Bearer realm="p2http"` {
		t.Errorf("Headers401 = %+v", res.Headers401)
	}

	res, err = c.PushWithResponse(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if p := res.ApplicationproblemJSON410; p == nil || p.Type != client.ProblemTypeTokenDead || p.Status != 410 || p.RequestId == nil {
		t.Errorf("410 problem = %+v", p)
	}
}

func TestClientGetRegistration(t *testing.T) {
	v := newValidator(t)
	answers := []answer{
		{status: 200, ctype: "application/json",
			body: `{"app":"default","service":"fcm","domain":"example.org","secret_kind":"kept","created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T03:04:05Z","last_push_at":null,
				"push_history":"kept","push_count":0,"last_push_outcome":null,"last_failure_at":null,"last_failure_reason":null}`,
			request: func(t *testing.T, r *http.Request, _ []byte) {
				if got := r.URL.Query().Get("node"); got != "eKx+S5n3/Oe0" {
					t.Errorf("node = %q (raw query %q)", got, r.URL.RawQuery)
				}
			}},
		{status: 200, ctype: "application/json",
			body: `{"app":"default","service":"apns","domain":"example.org","secret_kind":"derived","created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T03:04:05Z","last_push_at":"2025-01-03T00:00:00Z",
				"push_history":"kept","push_count":7,"last_push_outcome":"delivered","last_failure_at":"2025-01-02T23:00:00Z","last_failure_reason":"BadDeviceToken"}`},
	}
	i := 0
	c := serve(t, v, func() answer { i++; return answers[i-1] })
	ctx := context.Background()

	res, err := c.GetRegistrationWithResponse(ctx, &client.GetRegistrationParams{Node: "eKx+S5n3/Oe0"})
	if err != nil {
		t.Fatal(err)
	}
	if res.JSON200 == nil || res.JSON200.LastPushAt != nil || res.JSON200.SecretKind != client.SecretKindKept {
		t.Errorf("JSON200 = %+v", res.JSON200)
	}

	res, err = c.GetRegistrationWithResponse(ctx, &client.GetRegistrationParams{Node: "eKxTS5n3bOe0"})
	if err != nil {
		t.Fatal(err)
	}
	if res.JSON200 == nil || res.JSON200.LastPushAt == nil || !res.JSON200.LastPushAt.Equal(time.Date(2025, 1, 3, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("JSON200 = %+v", res.JSON200)
	}
	if in := res.JSON200; in.PushHistory != client.RegistrationInfoPushHistoryKept || in.PushCount == nil || *in.PushCount != 7 ||
		in.LastPushOutcome == nil || *in.LastPushOutcome != "delivered" ||
		in.LastFailureReason == nil || *in.LastFailureReason != "BadDeviceToken" || in.LastFailureAt == nil {
		t.Errorf("history %+v", in)
	}
}

func TestClientOperations(t *testing.T) {
	v := newValidator(t)
	spec, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	answers := []answer{
		{status: 200, ctype: "application/yaml", body: string(spec)},
		{status: 503, ctype: "application/json",
			body: `{"status":"unavailable","database":"unavailable","migration_version":3,"dev_mode":true,"services":{"fcm":"dev-log","apns":"not-configured"}}`},
		{status: 200, ctype: "application/json", body: `{"jid":"p2.example.org","services":["fcm"],"apps":[],"version":"0.1.0","dev_mode":false}`},
		{status: 200, ctype: "application/json", body: `{"status":"ok"}`},
		{status: 204},
	}
	i := 0
	c := serve(t, v, func() answer { i++; return answers[i-1] })
	ctx := context.Background()

	o, err := c.GetOpenAPIWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if o.StatusCode() != 200 || !bytes.Equal(o.Body, spec) {
		t.Errorf("openapi.yaml: status %d, %d bytes", o.StatusCode(), len(o.Body))
	}

	r, err := c.ReadyzWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.JSON503 == nil || r.JSON503.Services.Fcm != client.ServiceStatusDevLog || r.JSON503.Status != client.ReadinessStatusUnavailable {
		t.Errorf("readyz = %+v", r.JSON503)
	}

	info, err := c.GetInfoWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.JSON200 == nil || len(info.JSON200.Services) != 1 || info.JSON200.Services[0] != client.ServiceFcm {
		t.Errorf("info = %+v", info.JSON200)
	}

	h, err := c.HealthzWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.JSON200 == nil || h.JSON200.Status != client.HealthStatusOk {
		t.Errorf("healthz = %+v", h.JSON200)
	}

	u, err := c.UnregisterWithResponse(ctx, client.UnregisterRequest{Service: client.ServiceApns, Account: "alice@example.org", DeviceId: "d"})
	if err != nil {
		t.Fatal(err)
	}
	if u.StatusCode() != http.StatusNoContent {
		t.Errorf("unregister status %d", u.StatusCode())
	}
}

// TestSpecStrict checks that the document refuses what the server must not
// send or accept, so that the API tests catch it.
func TestSpecStrict(t *testing.T) {
	v := newValidator(t)
	registration := `{"app":"default","service":"fcm","domain":"example.org","secret_kind":"derived","created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T03:04:05Z","last_push_at":null,` +
		`"push_history":"kept","push_count":0,"last_push_outcome":null,"last_failure_at":null,"last_failure_reason":null}`
	pushBody := `{"node":"n","secret":"s"}`
	registerBody := `{"service":"fcm","account":"alice@example.org","device_id":"d","token":"t"}`
	for _, tc := range []struct {
		name         string
		method, path string
		auth         bool
		body         string
		ctype        string // of the request body; application/json when empty
		answer       answer
		badRequest   bool // the request must be refused
		badResponse  bool // the answer must be refused
	}{
		{name: "valid push", method: "POST", path: "/v1/push", body: pushBody,
			answer: answer{status: 200, ctype: "application/json", body: `{"delivered":true,"coalesced":false,"service":"fcm","priority":"normal"}`}},
		{name: "push with summary", method: "POST", path: "/v1/push",
			body:   `{"node":"n","secret":"s","domain":"example.org","summary":{"message_count":2,"last_message_sender":"bob@example.org","last_message_body":"hi","pending_subscription_count":0}}`,
			answer: answer{status: 403, ctype: problemJSON, body: problem("forbidden", 403)}},
		{name: "unknown field", method: "POST", path: "/v1/push", body: `{"node":"n","secret":"s","nodes":1}`, badRequest: true,
			answer: answer{status: 400, ctype: problemJSON, body: `{"type":"urn:p2http:problem:invalid-request","title":"Invalid request","status":400,"field":"nodes"}`}},
		{name: "unknown summary field", method: "POST", path: "/v1/push", body: `{"node":"n","secret":"s","summary":{"x":1}}`, badRequest: true,
			answer: answer{status: 400, ctype: problemJSON, body: problem("invalid-request", 400)}},
		{name: "negative count", method: "POST", path: "/v1/push", body: `{"node":"n","secret":"s","summary":{"message_count":-1}}`, badRequest: true,
			answer: answer{status: 400, ctype: problemJSON, body: problem("invalid-request", 400)}},
		{name: "empty node", method: "POST", path: "/v1/push", body: `{"node":"","secret":"s"}`, badRequest: true,
			answer: answer{status: 400, ctype: problemJSON, body: problem("invalid-request", 400)}},
		{name: "unknown service", method: "POST", path: "/v1/register", body: `{"service":"gcm","account":"a@b","device_id":"d","token":"t"}`, badRequest: true,
			answer: answer{status: 400, ctype: problemJSON, body: problem("invalid-request", 400)}},
		{name: "missing token", method: "POST", path: "/v1/register", body: `{"service":"fcm","account":"a@b","device_id":"d"}`, badRequest: true,
			answer: answer{status: 400, ctype: problemJSON, body: problem("invalid-request", 400)}},
		{name: "service not configured", method: "POST", path: "/v1/register", body: registerBody,
			answer: answer{status: 400, ctype: problemJSON, body: problem("service-not-configured", 400)}},
		{name: "register 200", method: "POST", path: "/v1/register", body: registerBody,
			answer: answer{status: 200, ctype: "application/json", body: `{"jid":"p2.example.org","node":"eKxTS5n3bOe0","secret":"KK4+H5WMfpRG/2zCbuKq6wpX"}`}},
		{name: "node not base64", method: "POST", path: "/v1/register", body: registerBody, badResponse: true,
			answer: answer{status: 201, ctype: "application/json", body: `{"jid":"p2.example.org","node":"eKxTS5n3bOe-","secret":"KK4+H5WMfpRG/2zCbuKq6wpX"}`}},
		{name: "register, stateless node", method: "POST", path: "/v1/register", body: registerBody,
			answer: answer{status: 201, ctype: "application/json", body: `{"jid":"p2.example.org","node":"` + strings.Repeat("Ab-_9", 48) + `QQ","secret":"KK4+H5WMfpRG/2zCbuKq6wpX"}`}},
		{name: "register, node too long", method: "POST", path: "/v1/register", body: registerBody, badResponse: true,
			answer: answer{status: 201, ctype: "application/json", body: `{"jid":"p2.example.org","node":"` + strings.Repeat("A", 1024) + `","secret":"KK4+H5WMfpRG/2zCbuKq6wpX"}`}},
		{name: "readyz stateless with apps", method: "GET", path: "/readyz",
			answer: answer{status: 200, ctype: "application/json", body: `{"status":"ready","database":"none","migration_version":0,"dev_mode":false,"services":{"fcm":"ok","apns":"not-configured"},"apps":{"quicksy":{"fcm":"degraded","apns":"ok"}}}`}},
		{name: "register 404 for an unknown app", method: "POST", path: "/v1/register", body: registerBody,
			answer: answer{status: 404, ctype: problemJSON, body: problem("not-found", 404)}},
		{name: "register 410 undeclared", method: "POST", path: "/v1/register", body: registerBody, badResponse: true,
			answer: answer{status: 410, ctype: problemJSON, body: problem("token-dead", 410)}},
		{name: "type does not match status", method: "POST", path: "/v1/push", body: pushBody, badResponse: true,
			answer: answer{status: 404, ctype: problemJSON, body: problem("forbidden", 404)}},
		{name: "status field does not match", method: "POST", path: "/v1/push", body: pushBody, badResponse: true,
			answer: answer{status: 404, ctype: problemJSON, body: problem("not-found", 400)}},
		{name: "problem as application/json", method: "POST", path: "/v1/push", body: pushBody, badResponse: true,
			answer: answer{status: 404, ctype: "application/json", body: problem("not-found", 404)}},
		{name: "503 without Retry-After", method: "POST", path: "/v1/push", body: pushBody, badResponse: true,
			answer: answer{status: 503, ctype: problemJSON, body: problem("unavailable", 503)}},
		{name: "503 with Retry-After", method: "POST", path: "/v1/push", body: pushBody,
			answer: answer{status: 503, ctype: problemJSON, header: http.Header{"Retry-After": {"5"}}, body: problem("unavailable", 503)}},
		{name: "504 with date Retry-After", method: "POST", path: "/v1/push", body: pushBody, badResponse: true,
			answer: answer{status: 504, ctype: problemJSON, header: http.Header{"Retry-After": {"Wed, 21 Oct 2015 07:28:00 GMT"}}, body: problem("timeout", 504)}},
		{name: "401 without WWW-Authenticate", method: "POST", path: "/v1/unregister", body: `{"service":"fcm","account":"a@b","device_id":"d"}`, badResponse: true,
			answer: answer{status: 401, ctype: problemJSON, body: problem("unauthorized", 401)}},
		{name: "registration", method: "GET", path: "/v1/registration?node=eKx%2BS5n3%2FOe0", auth: true,
			answer: answer{status: 200, ctype: "application/json", body: registration}},
		{name: "registration leaks the token", method: "GET", path: "/v1/registration?node=n", badResponse: true,
			answer: answer{status: 200, ctype: "application/json", body: strings.Replace(registration, `"app"`, `"token":"t","app"`, 1)}},
		{name: "registration without last_push_at", method: "GET", path: "/v1/registration?node=n", badResponse: true,
			answer: answer{status: 200, ctype: "application/json", body: strings.Replace(registration, `,"last_push_at":null`, ``, 1)}},
		{name: "registration without push_count", method: "GET", path: "/v1/registration?node=n", badResponse: true,
			answer: answer{status: 200, ctype: "application/json", body: strings.Replace(registration, `,"push_count":0`, ``, 1)}},
		{name: "registration with a negative push_count", method: "GET", path: "/v1/registration?node=n", badResponse: true,
			answer: answer{status: 200, ctype: "application/json", body: strings.Replace(registration, `"push_count":0`, `"push_count":-1`, 1)}},
		{name: "registration with an unknown outcome", method: "GET", path: "/v1/registration?node=n", badResponse: true,
			answer: answer{status: 200, ctype: "application/json", body: strings.Replace(registration, `"last_push_outcome":null`, `"last_push_outcome":"lost"`, 1)}},
		{name: "registration with a long reason", method: "GET", path: "/v1/registration?node=n", badResponse: true,
			answer: answer{status: 200, ctype: "application/json",
				body: strings.Replace(registration, `"last_failure_reason":null`, `"last_failure_reason":"`+strings.Repeat("X", 65)+`"`, 1)}},
		{name: "registration without node", method: "GET", path: "/v1/registration", badRequest: true,
			answer: answer{status: 400, ctype: problemJSON, body: problem("invalid-request", 400)}},
		{name: "readyz 503 missing service", method: "GET", path: "/readyz", badResponse: true,
			answer: answer{status: 503, ctype: "application/json", body: `{"status":"unavailable","database":"unavailable","migration_version":0,"dev_mode":false,"services":{"fcm":"ok"}}`}},
		{name: "info 500 undeclared", method: "GET", path: "/v1/info", badResponse: true,
			answer: answer{status: 500, ctype: problemJSON, body: problem("internal", 500)}},
		{name: "text/plain body", method: "POST", path: "/v1/register", body: registerBody, ctype: "text/plain", badRequest: true,
			answer: answer{status: 415, ctype: problemJSON, body: problem("unsupported-media-type", 415)}},
		{name: "form body", method: "POST", path: "/v1/push", body: "node=n&secret=s", ctype: "application/x-www-form-urlencoded", badRequest: true,
			answer: answer{status: 415, ctype: problemJSON, body: problem("unsupported-media-type", 415)}},
		{name: "415 of another type", method: "POST", path: "/v1/unregister", body: `{"service":"fcm","account":"a@b","device_id":"d"}`, badResponse: true,
			answer: answer{status: 415, ctype: problemJSON, body: problem("invalid-request", 415)}},
		{name: "421", method: "GET", path: "/v1/info",
			answer: answer{status: 421, ctype: problemJSON, body: problem("misdirected-request", 421)}},
		{name: "421 on a push", method: "POST", path: "/v1/push", body: pushBody,
			answer: answer{status: 421, ctype: problemJSON, body: problem("misdirected-request", 421)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://127.0.0.1:8080"+tc.path, strings.NewReader(tc.body))
			if tc.body != "" {
				r.Header.Set("Content-Type", cmp.Or(tc.ctype, "application/json"))
			}
			if tc.auth {
				r.Header.Set("Authorization", "Bearer good-token")
			}
			in, err := v.request(r, []byte(tc.body))
			if in == nil {
				t.Fatalf("no route: %v", err)
			}
			if (err != nil) != tc.badRequest {
				t.Errorf("request error = %v, want error: %v", err, tc.badRequest)
			}
			err = v.response(in, tc.answer)
			if (err != nil) != tc.badResponse {
				t.Errorf("response error = %v, want error: %v", err, tc.badResponse)
			}
		})
	}
}
