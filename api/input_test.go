package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db/dbtest"
)

// A request body is JSON sent as application/json, with at most a utf-8
// charset: a web page can send text/plain, form and multipart bodies to
// another origin without a preflight, so accepting them would let any page
// in a browser on the same host register (CSRF). Everything else is 415.
func TestContentType(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{})
	reg := `{"service":"fcm","account":"alice@example.org","device_id":"d1","token":"t1"}`
	for _, c := range []struct{ name, ctype, body string }{
		{"text/plain", "text/plain", reg},
		{"text/plain with charset", "text/plain;charset=UTF-8", reg},
		{"form", "application/x-www-form-urlencoded", "service=fcm&account=alice%40example.org&device_id=d1&token=t1"},
		{"form holding JSON", "application/x-www-form-urlencoded", reg},
		{"multipart", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"service\"\r\n\r\nfcm\r\n--x--\r\n"},
		{"none", "", reg},
		{"another charset", "application/json; charset=iso-8859-1", reg},
		{"another parameter", "application/json; profile=x", reg},
		{"a JSON suffix", "application/problem+json", reg},
		{"a lookalike", "application/jsonp", reg},
		{"malformed", "application/json; charset", reg},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, path := range []string{"/v1/register", "/v1/unregister", "/v1/push"} {
				r := e.do("POST", path, c.body, "Content-Type", c.ctype)
				expectProblem(t, r, http.StatusUnsupportedMediaType, "unsupported-media-type")
				if !strings.Contains(r.Str("detail"), "Content-Type: application/json") {
					t.Fatalf("%s: the detail does not say what to send: %s", path, r.Raw)
				}
			}
		})
	}
	if counts, err := e.Store.CountRegistrations(t.Context()); err != nil || counts[p2http.FCM] != 0 {
		t.Fatalf("a body that is not application/json registered: %v %v", counts, err)
	}
	for i, ctype := range []string{"application/json", "Application/JSON; charset=UTF-8", `application/json;charset="utf-8"`} {
		r := e.do("POST", "/v1/register", fmt.Sprintf(`{"service":"fcm","account":"alice@example.org","device_id":"d%d","token":"t"}`, i),
			"Content-Type", ctype)
		if r.Status != http.StatusCreated {
			t.Fatalf("Content-Type %q: %d %s", ctype, r.Status, r.Raw)
		}
	}
}

// Keys are case-sensitive; unknown and duplicate keys, and invalid UTF-8
// anywhere, are refused with 400 naming the field, instead of being matched
// loosely, overwritten, or repaired into U+FFFD before any check.
func TestStrictJSON(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{})
	const rest = `"account":"a@b.c","device_id":"d","token":"t"`
	for _, c := range []struct {
		name, path, body, field, detail string
	}{
		{"upper-case key", "/v1/register", `{"SERVICE":"fcm",` + rest + `}`, "SERVICE", "unknown field"},
		{"capitalised key", "/v1/unregister", `{"service":"fcm","Account":"a@b.c","device_id":"d"}`, "Account", "unknown field"},
		{"unknown key", "/v1/register", `{"service":"fcm",` + rest + `,"colour":"red"}`, "colour", "unknown field"},
		{"unknown summary key", "/v1/push", `{"node":"n","secret":"s","summary":{"Last_Message_Body":"x"}}`, "summary.Last_Message_Body", "unknown field"},
		{"duplicate key", "/v1/register", `{"service":"fcm",` + rest + `,"token":"u"}`, "token", "duplicate field"},
		{"duplicate service", "/v1/register", `{"service":"apns","service":"fcm",` + rest + `}`, "service", "duplicate field"},
		{"duplicate summary key", "/v1/push", `{"node":"n","secret":"s","summary":{"last_message_body":"","last_message_body":"x"}}`, "summary.last_message_body", "duplicate field"},
		{"duplicate key of another case", "/v1/push", `{"node":"n","NODE":"m","secret":"s"}`, "NODE", "unknown field"},
		{"invalid UTF-8 in device_id", "/v1/register", "{\"service\":\"fcm\",\"account\":\"a@b.c\",\"device_id\":\"x\xff\",\"token\":\"t\"}", "device_id", "UTF-8"},
		{"invalid UTF-8 in account", "/v1/register", "{\"service\":\"fcm\",\"account\":\"a\xfe@b.c\",\"device_id\":\"d\",\"token\":\"t\"}", "account", "UTF-8"},
		{"invalid UTF-8 in unregister", "/v1/unregister", "{\"service\":\"fcm\",\"account\":\"a@b.c\",\"device_id\":\"x\xfe\"}", "device_id", "UTF-8"},
		{"invalid UTF-8 in node", "/v1/push", "{\"node\":\"n\xc3\",\"secret\":\"s\"}", "node", "UTF-8"},
		{"invalid UTF-8 in the summary", "/v1/push", "{\"node\":\"n\",\"secret\":\"s\",\"summary\":{\"last_message_body\":\"\xed\xa0\x80\"}}", "summary.last_message_body", "UTF-8"},
		{"lone surrogate escape", "/v1/register", `{"service":"fcm","account":"a@b.c","device_id":"x\ud800","token":"t"}`, "device_id", "UTF-8"},
		{"invalid UTF-8 in a key", "/v1/push", "{\"node\":\"n\",\"secret\":\"s\",\"summary\":{\"x\xff\":1}}", "summary", "UTF-8"},
		{"not an object", "/v1/push", `null`, "", "JSON object"},
		{"a string", "/v1/register", `"x"`, "", "JSON object"},
		{"wrong type in summary", "/v1/push", `{"node":"n","secret":"s","summary":{"message_count":"1"}}`, "summary.message_count", "integer"},
		{"fraction", "/v1/push", `{"node":"n","secret":"s","summary":{"message_count":1.5}}`, "summary.message_count", "integer"},
		{"wrong type", "/v1/push", `{"node":"n","secret":"s","important":"true"}`, "important", "boolean"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", c.path, c.body)
			expectProblem(t, r, http.StatusBadRequest, "invalid-request")
			if r.Str("field") != c.field || !strings.Contains(r.Str("detail"), c.detail) {
				t.Fatalf("field %q, want %q; detail %q, want it to hold %q", r.Str("field"), c.field, r.Str("detail"), c.detail)
			}
		})
	}

	// x\xff, x\xfe and x\uFFFD were one registration: the first two are now
	// refused, the third is a device id of its own.
	dev := func(id string) string {
		return `{"service":"fcm","account":"alice@example.org","device_id":"` + id + `","token":"t"}`
	}
	if r := e.do("POST", "/v1/register", dev(`x\uFFFD`)); r.Status != http.StatusCreated {
		t.Fatalf("device id x\\uFFFD: %d %s", r.Status, r.Raw)
	}
	for _, id := range []string{"x\xff", "x\xfe"} {
		expectProblem(t, e.do("POST", "/v1/register", dev(id)), http.StatusBadRequest, "invalid-request")
	}
	if counts, _ := e.Store.CountRegistrations(t.Context()); counts[p2http.FCM] != 1 {
		t.Fatalf("%d registrations, want 1", counts[p2http.FCM])
	}
	if n := len(e.FCM.Requests()); n != 0 {
		t.Fatalf("refused input reached FCM %d times", n)
	}
}

// A node or secret longer than openapi.yaml allows (1023 and 256 bytes) is
// 400 naming the field, not looked up and answered 404.
func TestPushLengths(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{})
	r := register(t, e, "fcm", fcmToken)
	node, secret := r.Str("node"), r.Str("secret")
	for _, c := range []struct {
		name, node, secret, field, limit string
	}{
		{"5000-byte node", strings.Repeat("A", 5000), secret, "node", "1023"},
		{"1024-byte node", strings.Repeat("A", 1024), secret, "node", "1023"},
		{"5000-byte secret", node, strings.Repeat("A", 5000), "secret", "256"},
		{"257-byte secret", node, strings.Repeat("A", 257), "secret", "256"},
		{"both", strings.Repeat("A", 5000), strings.Repeat("A", 5000), "node", "1023"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", "/v1/push", map[string]any{"node": c.node, "secret": c.secret, "domain": "example.org"})
			expectProblem(t, r, http.StatusBadRequest, "invalid-request")
			if r.Str("field") != c.field || !strings.Contains(r.Str("detail"), c.limit) {
				t.Fatalf("field %q, want %q; detail %q, want the limit %s", r.Str("field"), c.field, r.Str("detail"), c.limit)
			}
		})
	}
	// At the limits the node is looked up as usual.
	expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": strings.Repeat("A", 1023), "secret": secret}), http.StatusNotFound, "not-found")
	expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": node, "secret": strings.Repeat("A", 256)}), http.StatusForbidden, "forbidden")
	if n := len(e.FCM.Requests()); n != 0 {
		t.Fatalf("refused pushes reached FCM %d times", n)
	}
}

// With allowed hosts (cmd/p2http sets them for a loopback listener without
// API tokens), a request naming another Host is 421: a page of
// evil.example whose name was rebound to 127.0.0.1 reaches the listener,
// but not the API.
func TestAllowedHosts(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{allowedHosts: []string{"localhost", "127.0.0.1", "::1", "[::2]", "p2.internal", "Push.Example.ORG"}})
	for _, host := range []string{
		"localhost", "localhost:8080", "LOCALHOST:1", "localhost.",
		"127.0.0.1", "127.0.0.1:8080", "[::1]", "[::1]:8080", "[0:0:0:0:0:0:0:1]:80", "[::2]:9",
		"p2.internal", "p2.internal:443", "push.example.org", "PUSH.example.org:8443",
	} {
		if r := e.do("GET", "/v1/info", nil, "Host", host); r.Status != http.StatusOK {
			t.Errorf("Host %q: %d %s", host, r.Status, r.Raw)
		}
	}
	if r := register(t, e, "fcm", fcmToken, "Host", "localhost:8080"); r.Status != http.StatusCreated {
		t.Fatalf("register with Host localhost:8080: %d %s", r.Status, r.Raw)
	}
	for _, host := range []string{
		"evil.example", "evil.example:8080", "localhost.evil.example", "127.0.0.1.evil.example", "127.0.0.2", "[::3]",
		"p2.internal.evil.example", "xp2.internal", "example.org",
	} {
		for _, req := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/v1/info", nil}, {"GET", "/healthz", nil}, {"GET", "/openapi.yaml", nil},
			{"GET", "/v1/registration?node=x", nil},
			{"POST", "/v1/register", map[string]any{"service": "fcm", "account": account, "device_id": "rebound", "token": "t"}},
			{"POST", "/v1/push", map[string]any{"node": "n", "secret": "s"}},
		} {
			r := e.do(req.method, req.path, req.body, "Host", host)
			expectProblem(t, r, http.StatusMisdirectedRequest, "misdirected-request")
			if !strings.Contains(r.Str("detail"), "P2_ALLOWED_HOSTS") {
				t.Fatalf("Host %q: the detail does not say how to allow a name: %s", host, r.Raw)
			}
		}
	}
	if counts, _ := e.Store.CountRegistrations(t.Context()); counts[p2http.FCM] != 1 {
		t.Fatalf("%d registrations, want only the one from localhost", counts[p2http.FCM])
	}

	// Without allowed hosts (another listener, or API tokens) any Host is served.
	open := newEnv(t, dbtest.SQLite(t), options{})
	if r := open.do("GET", "/v1/info", nil, "Host", "evil.example"); r.Status != http.StatusOK {
		t.Fatalf("no allowed hosts, Host evil.example: %d %s", r.Status, r.Raw)
	}
}
