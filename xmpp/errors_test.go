package xmpp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/p2http/p2http/xmpp"
)

// statusServer answers /v1/info like p2http and every other request with
// the status and body set, for the statuses the real p2http in the other
// tests cannot be made to give on demand (500, a proxy's HTML page…).
type statusServer struct {
	status      int
	contentType string
	body        string
	info        bool // answer /v1/info with the status too
}

func (s *statusServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/info" && s.info {
		w.Header().Set("Content-Type", s.contentType)
		w.WriteHeader(s.status)
		fmt.Fprint(w, s.body)
		return
	}
	if r.URL.Path == "/v1/info" {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jid":%q,"services":["fcm"],"version":"test","dev_mode":false}`, compJID)
		return
	}
	w.Header().Set("Content-Type", s.contentType)
	w.Header().Set("Retry-After", "5")
	w.WriteHeader(s.status)
	fmt.Fprint(w, s.body)
}

func problem(status int, typ, detail string) string {
	return fmt.Sprintf(`{"type":"urn:p2http:problem:%s","title":"t","status":%d,"detail":%q,"request_id":"req-1"}`, typ, status, detail)
}

// newStatusAPI returns p2http's API as p2xmpp reaches it, in front of a
// statusServer the test sets answers on.
func newStatusAPI(t *testing.T) (*statusServer, *xmpp.HTTPAPI) {
	t.Helper()
	stub := &statusServer{}
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)
	hapi, err := xmpp.NewHTTPAPI(xmpp.HTTPConfig{BaseURL: srv.URL, Token: apiToken})
	if err != nil {
		t.Fatal(err)
	}
	return stub, hapi
}

// The error table, status by status, through the generated client.
func TestStatusTable(t *testing.T) {
	stub, hapi := newStatusAPI(t)
	comp, err := xmpp.New(xmpp.Config{JID: compJID, API: hapi, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	const pj = "application/problem+json"
	tests := []struct {
		status      int
		contentType string
		body        string
		typ, cond   string
	}{
		{400, pj, problem(400, "invalid-request", "node is too long"), "modify", "bad-request"},
		{401, pj, problem(401, "unauthorized", "a valid bearer token is required"), "wait", "internal-server-error"},
		{403, pj, problem(403, "forbidden", "the secret does not match"), "auth", "forbidden"},
		{404, pj, problem(404, "not-found", "no registration holds this node"), "cancel", "item-not-found"},
		{410, pj, problem(410, "token-dead", "the token is dead"), "cancel", "item-not-found"},
		{429, pj, problem(429, "rate-limited", "slow down"), "wait", "resource-constraint"},
		{500, pj, problem(500, "internal", "internal error"), "wait", "internal-server-error"},
		{502, pj, problem(502, "upstream-rejected", "FCM rejected our credentials"), "wait", "internal-server-error"},
		{503, pj, problem(503, "unavailable", "FCM is unavailable"), "wait", "recipient-unavailable"},
		{504, pj, problem(504, "timeout", "deadline"), "wait", "remote-server-timeout"},
		{413, pj, problem(413, "body-too-large", "too large"), "wait", "internal-server-error"},
		{405, pj, problem(405, "method-not-allowed", "no"), "wait", "internal-server-error"},
		// p2xmpp misconfigured (its P2XMPP_API names a host p2http does not
		// serve) or out of step with p2http: never the registration's fault.
		{415, pj, problem(415, "unsupported-media-type", "send application/json"), "wait", "internal-server-error"},
		{421, pj, problem(421, "misdirected-request", "add the name to P2_ALLOWED_HOSTS"), "wait", "internal-server-error"},
		{507, "text/plain", "insufficient storage", "wait", "internal-server-error"},
		// Answers that are not p2http's own never delete a registration.
		{404, "text/html", "<html>404 page not found</html>", "wait", "internal-server-error"},
		{404, pj, problem(404, "method-not-allowed", "x"), "wait", "internal-server-error"},
		{403, "text/html", "<html>Forbidden by the proxy</html>", "wait", "internal-server-error"},
		{410, "application/json", `{"error":"gone"}`, "wait", "internal-server-error"},
		{400, pj, `{not json`, "wait", "internal-server-error"},
		{502, "text/html", "<html>Bad Gateway</html>", "wait", "internal-server-error"},
		{200, "application/json", `{not json`, "wait", "internal-server-error"},
		{200, "text/plain", `ok`, "result", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status, " ", tt.contentType, " ", tt.body[:min(len(tt.body), 40)]), func(t *testing.T) {
			stub.status, stub.contentType, stub.body = tt.status, tt.contentType, tt.body
			st := parseStanza(t, prosodyPublish(prosodyID, "eKxTS5n3bOe0", "KK4+H5WMfpRG/2zCbuKq6wpX", ""))
			r := parseReply(t, comp.Handle(context.Background(), st).String())
			if tt.typ == "result" {
				expectResult(t, r, prosodyID, compJID, "example.com")
				return
			}
			expectError(t, r, prosodyID, compJID, "example.com", tt.typ, tt.cond)
			if tt.typ != "wait" && !strings.Contains(r.Raw, ">"+strings.Split(tt.body, `"detail":"`)[1][:5]) {
				t.Fatalf("p2http's detail is not the error's text:\n%s", r.Raw)
			}
		})
	}
}

// p2http unreachable, seen through the generated client.
func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	hapi, err := xmpp.NewHTTPAPI(xmpp.HTTPConfig{BaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	comp, err := xmpp.New(xmpp.Config{JID: compJID, API: hapi, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	st := parseStanza(t, prosodyPublish(prosodyID, "eKxTS5n3bOe0", "KK4+H5WMfpRG/2zCbuKq6wpX", ""))
	expectError(t, parseReply(t, comp.Handle(context.Background(), st).String()), prosodyID, compJID, "example.com", "wait", "remote-server-timeout")
	var ue *xmpp.UnreachableError
	if err := comp.Check(context.Background()); !errors.As(err, &ue) {
		t.Fatalf("Check: %v", err)
	}
}

func TestNewHTTPAPIRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://x", "http://", "://"} {
		if _, err := xmpp.NewHTTPAPI(xmpp.HTTPConfig{BaseURL: u}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}

func TestNewRefusesBadJIDs(t *testing.T) {
	hapi, _ := xmpp.NewHTTPAPI(xmpp.HTTPConfig{BaseURL: "http://127.0.0.1:1"})
	for _, j := range []string{"", "alice@example.com", "push.example.org/res", "a b"} {
		if _, err := xmpp.New(xmpp.Config{JID: j, API: hapi}); err == nil {
			t.Errorf("%q accepted", j)
		}
	}
}

// Whatever /v1/info answers, the requests waiting for it get a wait error:
// a misrouted P2XMPP_API must not delete registrations.
func TestInfoFailureIsWait(t *testing.T) {
	stub := &statusServer{info: true}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	hapi, err := xmpp.NewHTTPAPI(xmpp.HTTPConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	comp, err := xmpp.New(xmpp.Config{JID: compJID, API: hapi, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, status := range []int{400, 403, 404, 410, 500} {
		stub.status, stub.contentType, stub.body = status, "application/problem+json", problem(status, "not-found", "x")
		st := parseStanza(t, prosodyPublish(prosodyID, "eKxTS5n3bOe0", "KK4+H5WMfpRG/2zCbuKq6wpX", ""))
		r := parseReply(t, comp.Handle(context.Background(), st).String())
		expectError(t, r, prosodyID, compJID, "example.com", "wait", "internal-server-error")
	}
}
