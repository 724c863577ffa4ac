package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/apps"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/metrics"
	"github.com/p2http/p2http/stack"
)

// Every GET route answers HEAD with the GET's status and headers and no
// body (RFC 9110, 9.3.2), the errors included: uptime checks and curl -I
// use HEAD. openapi.yaml lists GET only; every GET path of it is here.
func TestHeadAnswersLikeGet(t *testing.T) {
	const token = "head-test-token-0123456789"
	store := dbtest.SQLite(t)
	e := newEnv(t, store, options{tokens: []string{token}})
	r := register(t, e, "fcm", fcmToken, "Authorization", "Bearer "+token)
	if r.Status != 201 {
		t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	node := r.Str("node")
	// The same store and keys behind an API that also serves /metrics, as
	// p2http does without P2_METRICS.
	st := stack.New(stack.Config{JID: testJID, Store: store, Database: store, Keyring: e.Keys,
		Senders: apps.Given(nil, nil), Tokens: []string{token}, Version: "test",
		Metrics: metrics.New(metrics.Config{Version: "test", Registrations: store}).Handler(), Logger: discardLogger()})
	t.Cleanup(func() { st.Close(context.Background()) })
	srv := httptest.NewServer(st.Handler)
	t.Cleanup(srv.Close)

	auth := "Bearer " + token
	cases := []struct {
		path, auth string
		status     int
		// lengthVaries: the body differs between GET and HEAD (the metrics
		// change between two scrapes; a 405's detail names the method),
		// and so does its length.
		lengthVaries bool
	}{
		{path: "/healthz", status: 200},
		{path: "/readyz", status: 200},
		{path: "/openapi.yaml", status: 200},
		{path: "/docs", status: 200},
		{path: "/docs/", status: 301},
		{path: "/docs/redoc.standalone.js", status: 200},
		{path: "/v1/info", status: 200},
		{path: "/metrics", auth: auth, status: 200, lengthVaries: true},
		{path: "/metrics", status: 401},
		{path: "/v1/registration?node=" + url.QueryEscape(node), auth: auth, status: 200},
		{path: "/v1/registration?node=" + url.QueryEscape(node), status: 401},
		{path: "/v1/registration?node=unknown-node", auth: auth, status: 404},
		{path: "/v1/registration", auth: auth, status: 400},
		{path: "/v1/nothing", status: 404},
		{path: "/v1/push", status: 405, lengthVaries: true},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		path, _, _ := strings.Cut(c.path, "?")
		covered[path] = true
		get := rawDo(t, srv.URL, "GET", c.path, c.auth)
		head := rawDo(t, srv.URL, "HEAD", c.path, c.auth)
		if get.status != c.status {
			t.Errorf("GET %s: %d, want %d", c.path, get.status, c.status)
		}
		if head.status != get.status {
			t.Errorf("HEAD %s: %d, GET %d", c.path, head.status, get.status)
		}
		if len(head.body) != 0 {
			t.Errorf("HEAD %s: a body of %d bytes", c.path, len(head.body))
		}
		if len(get.body) == 0 && c.status != 301 {
			t.Errorf("GET %s: no body", c.path)
		}
		skip := []string{"Date", http.CanonicalHeaderKey(api.RequestIDHeader)}
		if c.lengthVaries || get.header.Get("Content-Length") == "0" {
			// net/http sends Content-Length: 0 for an empty GET answer,
			// nothing for the HEAD one.
			skip = append(skip, "Content-Length")
		}
		for name := range mergeKeys(get.header, head.header) {
			if slices.Contains(skip, name) {
				continue
			}
			if g, h := get.header.Values(name), head.header.Values(name); !slices.Equal(g, h) {
				t.Errorf("%s: header %s: GET %q, HEAD %q", c.path, name, g, h)
			}
		}
	}
	if allow := rawDo(t, srv.URL, "HEAD", "/v1/push", "").header.Get("Allow"); allow != "POST" {
		t.Errorf("HEAD /v1/push: Allow %q", allow)
	}
	if allow := rawDo(t, srv.URL, "POST", "/healthz", "").header.Get("Allow"); allow != "GET, HEAD" {
		t.Errorf("POST /healthz: Allow %q, want GET, HEAD", allow)
	}

	// Each GET path of the contract is covered above.
	doc, err := openapi3.NewLoader().LoadFromData(p2http.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		if item.Head != nil {
			t.Errorf("openapi.yaml declares HEAD %s: HEAD is answered by every GET route and left out of the contract", path)
		}
		if item.Get != nil && !covered[path] {
			t.Errorf("GET %s: not covered by TestHeadAnswersLikeGet", path)
		}
	}
}

// rawAnswer is an answer read without the contract validator: HEAD is
// outside the contract.
type rawAnswer struct {
	status int
	header http.Header
	body   []byte
}

// rawDo sends method to base+path with Accept-Encoding: gzip set, so that
// the client neither adds it nor decompresses: both answers' headers are
// what the server sent.
func rawDo(t *testing.T, base, method, path, auth string) rawAnswer {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Encoding", "gzip")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawAnswer{res.StatusCode, res.Header, body}
}

// noRedirects is a client that returns redirects rather than follow them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// mergeKeys returns the header names of a and b.
func mergeKeys(a, b http.Header) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}
