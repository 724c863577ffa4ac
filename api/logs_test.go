package api_test

import (
	"net/url"
	"regexp"
	"testing"
	"time"

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
