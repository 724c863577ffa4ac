package api_test

import (
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/internal/fake"
)

// TestLogsHoldNoSecrets runs a full session at debug level — registrations,
// pushes with summaries, retries, a dead token, refusals, credential
// trouble — and fails if any token, secret, message body, sender or
// account JID shows up in the log.
func TestLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{tokens: []string{"api-token-zyx"}, coalesce: 50 * time.Millisecond})
	auth := []string{"Authorization", "Bearer api-token-zyx"}
	var secrets []string
	reg := func(service, account, token string) (string, string) {
		r := e.do("POST", "/v1/register", map[string]any{"service": service, "account": account, "device_id": "dev-id-secret", "token": token}, auth...)
		if r.Status != 201 && r.Status != 200 {
			t.Fatalf("register: %d %s", r.Status, r.Raw)
		}
		secrets = append(secrets, token, r.Str("secret"))
		return r.Str("node"), r.Str("secret")
	}
	fn, fs := reg("fcm", "Carol.Private@Example.org", "fcm-token-private-1")
	an, as := reg("apns", "dave.private@example.org", "abcdef0123456789abcdef")
	summary := map[string]any{"last_message_sender": "eve.sender@example.net", "last_message_body": "private body text"}

	e.do("POST", "/v1/push", map[string]any{"node": fn, "secret": fs, "domain": "example.org", "summary": summary})
	e.do("POST", "/v1/push", map[string]any{"node": fn, "secret": fs, "summary": summary}) // coalesced
	e.APNs.Next(fake.APNsError(503, "ServiceUnavailable", 0))
	e.do("POST", "/v1/push", map[string]any{"node": an, "secret": as, "important": true})
	e.do("POST", "/v1/push", map[string]any{"node": an, "secret": "wrong-secret-private"})
	e.do("POST", "/v1/push", map[string]any{"node": an, "secret": as, "domain": "example.net"})
	e.do("POST", "/v1/register", map[string]any{"service": "apns", "account": "bad/jid@private.example", "device_id": "d", "token": "zz"}, auth...)
	e.do("POST", "/v1/register", map[string]any{"service": "fcm", "account": "x@y.z", "device_id": "d", "token": "t"}, "Authorization", "Bearer wrong-token-private")
	e.do("GET", "/v1/registration?node="+url.QueryEscape(fn), nil, auth...)
	e.FCM.Next(fake.FCMError(403, "PERMISSION_DENIED", "", "denied"))
	time.Sleep(100 * time.Millisecond) // past the coalescing window
	e.do("POST", "/v1/push", map[string]any{"node": fn, "secret": fs})
	time.Sleep(100 * time.Millisecond)
	e.FCM.Next(fake.FCMError(404, "NOT_FOUND", "UNREGISTERED", "gone"))
	if p := e.do("POST", "/v1/push", map[string]any{"node": fn, "secret": fs}); p.Status != 410 {
		t.Fatalf("dead token push: %d %s", p.Status, p.Raw)
	}
	e.do("POST", "/v1/unregister", map[string]any{"service": "apns", "account": "dave.private@example.org", "device_id": "dev-id-secret"}, auth...)

	secrets = append(secrets, "api-token-zyx", "wrong-token-private", "wrong-secret-private", "private body text",
		"eve.sender", "dev-id-secret", "Carol.Private", "carol.private", "dave.private", "bad/jid")
	e.assertLogsClean(secrets...)
	if jid := regexp.MustCompile(`[A-Za-z0-9._-]+@[A-Za-z0-9.-]+`).FindString(e.logs.String()); jid != "" {
		t.Fatalf("the log holds something shaped like a JID: %q", jid)
	}
}

// infoLevel is the default level, slog.LevelInfo, as newEnv can be given it:
// newEnv reads a zero level (which slog.LevelInfo is) as unset and logs at
// debug. One below info lets through exactly what info does, since nothing
// logs between debug and info.
const infoLevel = slog.LevelInfo - 1

// logLines returns the lines of logs that hold substr.
func logLines(logs, substr string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// requestLine is how the text handler starts the request line.
const requestLine = "msg=request request_id="

// At the default level, requests answered below 500 write no line (a push
// flood would otherwise flood the journal; /metrics counts them), and a 5xx
// writes exactly one, at warn, holding the route, the status and the cause.
func TestRequestLinesAtInfo(t *testing.T) {
	store := dbtest.SQLite(t)
	e := newEnv(t, store, options{logLevel: infoLevel})
	r := register(t, e, "fcm", fcmToken)
	push := map[string]any{"node": r.Str("node"), "secret": r.Str("secret")}
	if p := e.do("POST", "/v1/push", push); p.Status != 200 {
		t.Fatalf("push: %d %s", p.Status, p.Raw)
	}
	expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": r.Str("node"), "secret": "wrong"}), 403, "forbidden")
	expectProblem(t, e.do("GET", "/v1/registration?node=nosuchnode000", nil), 404, "not-found")
	if lines := logLines(e.logs.String(), requestLine); len(lines) != 0 {
		t.Fatalf("requests answered below 500 were logged at info:\n%s", strings.Join(lines, "\n"))
	}

	store.Close()
	p := e.do("POST", "/v1/push", push)
	expectProblem(t, p, 503, "unavailable")
	id := p.Header.Get(api.RequestIDHeader)
	lines := logLines(e.logs.String(), "request_id="+id)
	if len(lines) != 1 {
		t.Fatalf("%d lines hold the 503's request id, want one:\n%s", len(lines), e.logs.String())
	}
	for _, want := range []string{"level=WARN", requestLine + id, "method=POST", "route=/v1/push", "status=503", "code=unavailable", "err="} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("the 503's line lacks %s:\n%s", want, lines[0])
		}
	}
	// A 5xx answered without a problem, without a cause to give.
	if rd := e.do("GET", "/readyz", nil); rd.Status != 503 {
		t.Fatalf("readyz with the database closed: %d", rd.Status)
	}
	if lines := logLines(e.logs.String(), "route=/readyz"); len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") ||
		!strings.Contains(lines[0], "status=503") {
		t.Fatalf("readyz's 503 logged as %q, want one warn line", lines)
	}
}

// At debug, every request has its line, with the route pattern (never the
// path or query), the status and the request id.
func TestRequestLinesAtDebug(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{logLevel: slog.LevelDebug})
	r := register(t, e, "fcm", fcmToken)
	p := e.do("POST", "/v1/push", map[string]any{"node": r.Str("node"), "secret": r.Str("secret")})
	if p.Status != 200 {
		t.Fatalf("push: %d %s", p.Status, p.Raw)
	}
	nf := e.do("GET", "/v1/registration?node=nosuchnode000", nil)
	expectProblem(t, nf, 404, "not-found")
	for _, c := range []struct {
		res   response
		wants []string
	}{
		{r, []string{"method=POST", "route=/v1/register", "status=201"}},
		{p, []string{"method=POST", "route=/v1/push", "status=200"}},
		{nf, []string{"method=GET", "route=/v1/registration", "status=404"}},
	} {
		id := c.res.Header.Get(api.RequestIDHeader)
		lines := logLines(e.logs.String(), requestLine+id)
		if id == "" || len(lines) != 1 {
			t.Fatalf("request %q has %d lines, want one:\n%s", id, len(lines), e.logs.String())
		}
		for _, want := range append(c.wants, "level=DEBUG", "duration_ms=") {
			if !strings.Contains(lines[0], want) {
				t.Errorf("line lacks %s:\n%s", want, lines[0])
			}
		}
		if strings.Contains(lines[0], "nosuchnode") || strings.Contains(lines[0], " code=") {
			t.Errorf("line holds the query or a cause:\n%s", lines[0])
		}
	}
}
