package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/apns"
	"github.com/p2http/p2http/apps"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/fcm"
	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/internal/testutil"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/ratelimit"
	"github.com/p2http/p2http/stack"
)

const (
	testJID = "push.example.org"
	testKey = "test-server-key-0123456789abcdef0123"
)

// env is a running API over a real store, with fake FCM and APNs servers
// behind the real senders, and an HTTP client that holds every request and
// response to openapi.yaml.
type env struct {
	t      testing.TB
	URL    string
	Client *http.Client
	FCM    *fake.FCM
	APNs   *fake.APNs
	// AppFCM holds the fake FCM project of each further app.
	AppFCM map[string]*fake.FCM
	Store  *db.DB
	Keys   *keyring.Keyring
	// Handler is the API itself, for benchmarks that skip the network.
	Handler http.Handler
	logs    *testutil.LogBuffer
}

type options struct {
	tokens   []string
	services []p2http.Service
	deadline time.Duration
	coalesce time.Duration
	inflight int
	// limits of pushes per domain, registrations per domain, requests per
	// token, failed pushes per caller and claimed domain
	pushLimit, registerLimit, tokenLimit, failLimit ratelimit.Rate
	logLevel                                        slog.Level
	pushLogEvery                                    time.Duration
	// apps are further apps, each with FCM in its own fake project.
	apps []string
	// allowedHosts is api.Config.AllowedHosts.
	allowedHosts []string
}

// newEnv starts the API over store. By default both services are configured
// and no API token is required.
func newEnv(t testing.TB, store *db.DB, opt options) *env {
	t.Helper()
	if opt.services == nil {
		opt.services = p2http.Services
	}
	if opt.logLevel == 0 {
		opt.logLevel = slog.LevelDebug
	}
	if opt.deadline == 0 {
		opt.deadline = 2 * time.Second // keeps retry-until-deadline tests short
	}
	e := &env{t: t, Store: store, logs: &testutil.LogBuffer{}}
	e.FCM = fake.NewFCM()
	t.Cleanup(e.FCM.Close)
	e.APNs = fake.NewAPNs()
	t.Cleanup(e.APNs.Close)
	keys, err := keyring.New(testKey)
	if err != nil {
		t.Fatal(err)
	}
	e.Keys = keys
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: opt.logLevel}))
	senders := map[p2http.Service]p2http.Sender{}
	for _, s := range opt.services {
		switch s {
		case p2http.FCM:
			f, err := fcm.New(context.Background(), fcm.Config{CredentialsJSON: e.FCM.Credentials, Endpoint: e.FCM.Endpoint(), HTTPClient: e.FCM.Client})
			if err != nil {
				t.Fatal(err)
			}
			senders[s] = f
		case p2http.APNs:
			a, err := apns.New(apns.Config{Endpoint: e.APNs.Endpoint(), Topic: e.APNs.Topic, SigningKey: e.APNs.SigningKey,
				KeyID: e.APNs.KeyID, TeamID: e.APNs.TeamID, HTTPClient: e.APNs.Client})
			if err != nil {
				t.Fatal(err)
			}
			senders[s] = a
		}
	}
	e.AppFCM = map[string]*fake.FCM{}
	appSenders := map[string]map[p2http.Service]p2http.Sender{}
	for _, app := range opt.apps {
		f := fake.NewFCMProject("p2http-" + app)
		t.Cleanup(f.Close)
		s, err := fcm.New(context.Background(), fcm.Config{CredentialsJSON: f.Credentials, Endpoint: f.Endpoint(), HTTPClient: f.Client})
		if err != nil {
			t.Fatal(err)
		}
		e.AppFCM[app] = f
		appSenders[app] = map[p2http.Service]p2http.Sender{p2http.FCM: s}
	}
	st := stack.New(stack.Config{JID: testJID, Store: store, Database: store, Keyring: keys, Senders: apps.Given(senders, appSenders),
		PushDeadline: opt.deadline, CoalesceWindow: opt.coalesce, MaxInFlight: opt.inflight, RetryBackoff: 20 * time.Millisecond,
		PushLogEvery: opt.pushLogEvery, LimitPushDomain: opt.pushLimit, LimitRegister: opt.registerLimit,
		LimitPushFailed: opt.failLimit, LimitAPIToken: opt.tokenLimit,
		Tokens: opt.tokens, AllowedHosts: opt.allowedHosts, Version: "test", Logger: log})
	t.Cleanup(func() { st.Close(context.Background()) })
	e.Handler = st.Handler
	srv := httptest.NewServer(e.Handler)
	t.Cleanup(srv.Close)
	e.URL = srv.URL
	e.Client = &http.Client{Transport: newValidator(t, srv.URL, http.DefaultTransport)}
	return e
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

// Str returns a string field of the body.
func (r response) Str(key string) string { s, _ := r.Body[key].(string); return s }

// do sends a request; body may be a string (sent verbatim) or a value
// (JSON-encoded), sent as application/json. header holds name/value pairs;
// "Host" sets the request's Host header, and a Content-Type given there
// replaces application/json ("" sends none).
func (e *env) do(method, path string, body any, header ...string) response {
	e.t.Helper()
	return e.doVia(e.Client, method, path, body, header...)
}

// doVia is do through another client, such as one calling from another
// address.
func (e *env) doVia(client *http.Client, method, path string, body any, header ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		switch name, value := header[i], header[i+1]; {
		case strings.EqualFold(name, "Host"):
			req.Host = value
		case strings.EqualFold(name, "Content-Type") && value == "":
			req.Header.Del(name)
		default:
			req.Header.Set(name, value)
		}
	}
	res, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := response{Status: res.StatusCode, Header: res.Header, Raw: raw}
	json.Unmarshal(raw, &out.Body)
	return out
}

// expectProblem checks a problem+json answer's status and type.
func expectProblem(t *testing.T, r response, status int, typ string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Raw)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json", ct)
	}
	if got := r.Str("type"); got != api.ProblemTypePrefix+typ {
		t.Fatalf("problem type %q, want %q", got, api.ProblemTypePrefix+typ)
	}
	if int(r.Body["status"].(float64)) != status || r.Str("title") == "" || r.Str("request_id") == "" {
		t.Fatalf("incomplete problem: %s", r.Raw)
	}
	if (status == 429 || status >= 502) && r.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d without Retry-After", status)
	}
}

// assertLogsClean fails when the logs hold any of the given strings, or
// nothing at all.
func (e *env) assertLogsClean(secrets ...string) {
	e.t.Helper()
	testutil.AssertNoLeaks(e.t, "the request log", e.logs.String(), secrets...)
}

// validator is an http.RoundTripper that checks every request and response
// against openapi.yaml. A request the contract does not allow must be
// answered with a 4xx; every response must be one the contract declares.
type validator struct {
	t      testing.TB
	router routers.Router
	next   http.RoundTripper
}

func newValidator(t testing.TB, serverURL string, next http.RoundTripper) *validator {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(p2http.OpenAPI)
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml invalid: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: serverURL}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &validator{t: t, router: router, next: next}
}

func (v *validator) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodHead {
		// Left out of the contract: every GET route answers HEAD as GET
		// does, without the body (TestHeadAnswersLikeGet).
		return v.next.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	reset := func() {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	reset()
	route, params, routeErr := v.router.FindRoute(req)
	var reqInput *openapi3filter.RequestValidationInput
	var reqErr error
	if routeErr == nil {
		reqInput = &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		reqErr = openapi3filter.ValidateRequest(req.Context(), reqInput)
		reset()
	}
	res, err := v.next.RoundTrip(req)
	if err != nil || routeErr != nil {
		return res, err // routes outside the contract (404, 405) are checked by their tests
	}
	resBody, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(resBody))
	if reqErr != nil && (res.StatusCode < 400 || res.StatusCode >= 500) {
		v.t.Errorf("%s %s: request breaks openapi.yaml (%v) but was answered %d", req.Method, req.URL.Path, reqErr, res.StatusCode)
	}
	resInput := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqInput, Status: res.StatusCode, Header: res.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	resInput.SetBodyBytes(resBody)
	if err := openapi3filter.ValidateResponse(req.Context(), resInput); err != nil {
		v.t.Errorf("%s %s: response %d breaks openapi.yaml: %v\n%s", req.Method, req.URL.Path, res.StatusCode, err, resBody)
	}
	return res, nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
