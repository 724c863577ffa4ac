package xmpp_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/internal/testutil"
	"github.com/p2http/p2http/xmpp"
	"mellium.im/xmpp/stanza"
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

// newStatusAPI returns p2http's services as p2xmpp reaches them, in front
// of a statusServer the test sets answers on.
func newStatusAPI(t *testing.T) (*statusServer, *api.Client) {
	t.Helper()
	stub := &statusServer{}
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)
	c, err := api.NewClient(api.ClientConfig{BaseURL: srv.URL, Token: apiToken})
	if err != nil {
		t.Fatal(err)
	}
	return stub, c
}

// newComponent returns a Component over c.
func newComponent(t *testing.T, c *api.Client) *xmpp.Component {
	t.Helper()
	comp, err := xmpp.New(xmpp.Config{JID: compJID, Registrar: c, Pusher: c, Describer: c, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return comp
}

// The error table, status by status, through api.Client and the generated
// client.
func TestStatusTable(t *testing.T) {
	stub, c := newStatusAPI(t)
	comp := newComponent(t, c)
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

// Whatever p2http or a proxy answers, only 400, 403, 404 and 410 with
// p2http's own problem type of that status are answered with a type other
// than wait.
func TestOnlyOwnProblemsArePermanent(t *testing.T) {
	var status int
	var body string
	c, err := api.NewClient(api.ClientConfig{BaseURL: "http://p2http.invalid", Transport: testutil.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		h := http.Header{"Content-Type": {"application/problem+json"}}
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	permanent := map[int]string{400: "invalid-request service-not-configured", 403: "forbidden", 404: "not-found", 410: "token-dead"}
	for status = 100; status < 600; status++ {
		for _, typ := range []string{"", "invalid-request", "forbidden", "not-found", "token-dead", "service-not-configured"} {
			body = fmt.Sprintf(`{"type":"urn:p2http:problem:%s","title":"t","status":%d}`, typ, status)
			_, err := c.Push(context.Background(), p2http.PushRequest{Node: "n", Secret: "s"})
			if err == nil {
				continue // a success
			}
			e := xmpp.ErrorFor(err)
			own := typ != "" && strings.Contains(" "+permanent[status]+" ", " "+typ+" ")
			if (e.Type != stanza.Wait) != own {
				t.Errorf("HTTP %d %s: %s", status, typ, e)
			}
		}
	}
}

// p2http unreachable, seen through api.Client.
func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := api.NewClient(api.ClientConfig{BaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	comp := newComponent(t, c)
	st := parseStanza(t, prosodyPublish(prosodyID, "eKxTS5n3bOe0", "KK4+H5WMfpRG/2zCbuKq6wpX", ""))
	expectError(t, parseReply(t, comp.Handle(context.Background(), st).String()), prosodyID, compJID, "example.com", "wait", "remote-server-timeout")
	if err := comp.Check(context.Background()); p2http.ErrorCode(err) != p2http.EUNREACHABLE {
		t.Fatalf("Check: %v", err)
	}
}

func TestNewRefusesBadJIDs(t *testing.T) {
	c, _ := api.NewClient(api.ClientConfig{BaseURL: "http://127.0.0.1:1"})
	for _, j := range []string{"", "alice@example.com", "push.example.org/res", "a b"} {
		if _, err := xmpp.New(xmpp.Config{JID: j, Registrar: c, Pusher: c, Describer: c}); err == nil {
			t.Errorf("%q accepted", j)
		}
	}
	if _, err := xmpp.New(xmpp.Config{JID: compJID, Registrar: c, Pusher: c}); err == nil {
		t.Error("accepted without a Describer")
	}
}

// Whatever /v1/info answers, the requests waiting for it get a wait error:
// a misrouted P2XMPP_API must not delete registrations.
func TestInfoFailureIsWait(t *testing.T) {
	stub := &statusServer{info: true}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	c, err := api.NewClient(api.ClientConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	comp := newComponent(t, c)
	for _, status := range []int{400, 403, 404, 410, 500} {
		stub.status, stub.contentType, stub.body = status, "application/problem+json", problem(status, "not-found", "x")
		st := parseStanza(t, prosodyPublish(prosodyID, "eKxTS5n3bOe0", "KK4+H5WMfpRG/2zCbuKq6wpX", ""))
		r := parseReply(t, comp.Handle(context.Background(), st).String())
		expectError(t, r, prosodyID, compJID, "example.com", "wait", "internal-server-error")
	}
}
