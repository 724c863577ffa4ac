package api_test

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/internal/fake"
)

const (
	account  = "Alice@Example.ORG"
	deviceID = "android-id-1"
	fcmToken = "fcm-token-aaaa:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx"
	apnsTok  = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	body     = "the message text must never leave"
)

func register(t *testing.T, e *env, service, token string, header ...string) response {
	t.Helper()
	return e.do("POST", "/v1/register", map[string]any{
		"service": service, "account": account, "device_id": deviceID, "token": token,
	}, header...)
}

// TestRegisterPushUnregister walks the main path on both databases.
func TestRegisterPushUnregister(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, store *db.DB) {
		e := newEnv(t, store, options{})
		r := register(t, e, "fcm", fcmToken)
		if r.Status != 201 {
			t.Fatalf("register: %d %s", r.Status, r.Raw)
		}
		node, secret := r.Str("node"), r.Str("secret")
		if r.Str("jid") != testJID || len(node) != 12 || len(secret) != 24 {
			t.Fatalf("register answer %s", r.Raw)
		}
		if raw, err := base64.StdEncoding.DecodeString(node); err != nil || len(raw) != 9 {
			t.Fatalf("node %q is not standard Base64 of 9 bytes", node)
		}
		if _, err := base64.StdEncoding.DecodeString(secret); err != nil {
			t.Fatalf("secret %q is not standard Base64", secret)
		}

		// Registering again keeps node and secret and replaces the token.
		r2 := register(t, e, "fcm", "fcm-token-bbbb")
		if r2.Status != 200 || r2.Str("node") != node || r2.Str("secret") != secret {
			t.Fatalf("re-register: %d %s", r2.Status, r2.Raw)
		}

		p := e.do("POST", "/v1/push", map[string]any{"node": node, "secret": secret, "domain": "example.org",
			"summary": map[string]any{"message_count": 1, "last_message_sender": "bob@example.net", "last_message_body": body}})
		if p.Status != 200 || p.Body["delivered"] != true || p.Str("service") != "fcm" || p.Str("priority") != "high" {
			t.Fatalf("push: %d %s", p.Status, p.Raw)
		}
		reqs := e.FCM.Requests()
		if len(reqs) != 1 {
			t.Fatalf("FCM got %d requests", len(reqs))
		}
		msg := reqs[0].FCMMessage()
		device := p2http.DeviceHash("alice@example.org", deviceID)
		if msg.Token != "fcm-token-bbbb" || msg.Data.Account != device {
			t.Fatalf("FCM message %s", reqs[0].Body)
		}
		if strings.Contains(string(reqs[0].Body), body) || strings.Contains(string(reqs[0].Body), "bob@") {
			t.Fatal("summary content reached FCM")
		}

		info := e.do("GET", "/v1/registration?node="+url.QueryEscape(node), nil)
		if info.Status != 200 || info.Str("service") != "fcm" || info.Str("domain") != "example.org" ||
			info.Str("secret_kind") != "derived" || info.Body["last_push_at"] == nil {
			t.Fatalf("registration: %d %s", info.Status, info.Raw)
		}
		if strings.Contains(string(info.Raw), "fcm-token") {
			t.Fatal("registration info reveals the token")
		}

		u := e.do("POST", "/v1/unregister", map[string]any{"service": "fcm", "account": account, "device_id": deviceID})
		if u.Status != 204 {
			t.Fatalf("unregister: %d %s", u.Status, u.Raw)
		}
		expectProblem(t, e.do("POST", "/v1/unregister", map[string]any{"service": "fcm", "account": account, "device_id": deviceID}), 404, "not-found")
		expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": node, "secret": secret}), 404, "not-found")
		e.assertLogsClean(fcmToken, "fcm-token-bbbb", secret, "alice@", "Alice@", body, "bob@")
	})
}

func TestPushPriorities(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{})
	r := register(t, e, "fcm", fcmToken)
	node, secret := r.Str("node"), r.Str("secret")
	for _, c := range []struct {
		name string
		req  map[string]any
		want string
	}{
		{"no summary", map[string]any{}, "normal"},
		{"blank body", map[string]any{"summary": map[string]any{"message_count": 1, "last_message_body": "  "}}, "normal"},
		{"body", map[string]any{"summary": map[string]any{"last_message_body": "hi"}}, "high"},
		{"important", map[string]any{"important": true}, "high"},
		{"important false wins over body", map[string]any{"important": false, "summary": map[string]any{"last_message_body": "hi"}}, "normal"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.FCM.Reset()
			c.req["node"], c.req["secret"] = node, secret
			p := e.do("POST", "/v1/push", c.req)
			if p.Status != 200 || p.Str("priority") != c.want {
				t.Fatalf("push: %d %s", p.Status, p.Raw)
			}
			if got := e.FCM.Sent()[0].Android.Priority; got != c.want {
				t.Fatalf("FCM android.priority %q, want %s", got, c.want)
			}
		})
	}
}

func TestAPNsPush(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{})
	r := register(t, e, "apns", apnsTok)
	node, secret := r.Str("node"), r.Str("secret")
	device := p2http.DeviceHash("alice@example.org", deviceID)

	p := e.do("POST", "/v1/push", map[string]any{"node": node, "secret": secret, "important": true})
	if p.Status != 200 || p.Str("service") != "apns" || p.Str("priority") != "high" {
		t.Fatalf("push: %d %s", p.Status, p.Raw)
	}
	p = e.do("POST", "/v1/push", map[string]any{"node": node, "secret": secret})
	if p.Status != 200 || p.Str("priority") != "normal" {
		t.Fatalf("push: %d %s", p.Status, p.Raw)
	}
	reqs := e.APNs.Requests()
	if len(reqs) != 2 || reqs[0].Path != "/3/device/"+apnsTok || reqs[0].Proto != 2 {
		t.Fatalf("APNs requests %+v", reqs)
	}
	if h := reqs[0].Header; h.Get("apns-push-type") != "alert" || h.Get("apns-priority") != "10" || h.Get("apns-topic") != e.APNs.Topic {
		t.Fatalf("alert headers %v", h)
	}
	if got := reqs[0].JSON(); got["account"] != device || got["aps"].(map[string]any)["alert"].(map[string]any)["title"] != "New message" {
		t.Fatalf("alert body %s", reqs[0].Body)
	}
	if h := reqs[1].Header; h.Get("apns-push-type") != "background" || h.Get("apns-priority") != "5" {
		t.Fatalf("background headers %v", h)
	}
	if got := string(reqs[1].Body); !strings.Contains(got, `"content-available":1`) || strings.Contains(got, "alert") {
		t.Fatalf("background body %s", got)
	}
}

func TestPushRefusals(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{})
	r := register(t, e, "fcm", fcmToken)
	node, secret := r.Str("node"), r.Str("secret")

	wrong := "A" + secret[1:]
	if secret[0] == 'A' {
		wrong = "B" + secret[1:]
	}
	expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": node, "secret": wrong}), 403, "forbidden")
	expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": "AAAAAAAAAAAA", "secret": secret}), 404, "not-found")
	expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": node, "secret": secret, "domain": "example.net"}), 404, "not-found")
	expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": node, "secret": secret, "domain": "not a domain"}), 400, "invalid-request")
	// "." normalises to an empty domain: it must not skip the domain check.
	expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": node, "secret": secret, "domain": "."}), 400, "invalid-request")
	expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": node, "secret": secret, "domain": ".."}), 400, "invalid-request")
	expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": node}), 400, "invalid-request")
	// The domain is compared as XMPP servers compare it.
	if p := e.do("POST", "/v1/push", map[string]any{"node": node, "secret": secret, "domain": "EXAMPLE.org"}); p.Status != 200 {
		t.Fatalf("push with upper-case domain: %d %s", p.Status, p.Raw)
	}
	if n := len(e.FCM.Requests()); n != 1 {
		t.Fatalf("refused pushes reached FCM: %d requests", n)
	}
}

func TestDeadTokens(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, store *db.DB) {
		e := newEnv(t, store, options{})
		for _, reason := range []string{"UNREGISTERED", "SENDER_ID_MISMATCH"} {
			r := register(t, e, "fcm", fcmToken)
			// A push FCM accepts first: a SENDER_ID_MISMATCH with none
			// before it is taken for credentials of another project, and
			// the registration is kept (fcm's TestSenderIDMismatchBurst).
			if p := e.do("POST", "/v1/push", map[string]any{"node": r.Str("node"), "secret": r.Str("secret")}); p.Status != 200 {
				t.Fatalf("push: %d %s", p.Status, p.Raw)
			}
			e.FCM.Next(fake.FCMError(404, "NOT_FOUND", reason, "Requested entity was not found."))
			expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": r.Str("node"), "secret": r.Str("secret")}), 410, "token-dead")
			expectProblem(t, e.do("GET", "/v1/registration?node="+url.QueryEscape(r.Str("node")), nil), 404, "not-found")
		}

		// APNs: a token that died before the phone last registered is kept.
		r := register(t, e, "apns", apnsTok)
		node, secret := r.Str("node"), r.Str("secret")
		e.APNs.Next(fake.APNsError(410, "Unregistered", time.Now().Add(-time.Hour).UnixMilli()))
		expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": node, "secret": secret}), 503, "unavailable")
		if g := e.do("GET", "/v1/registration?node="+url.QueryEscape(node), nil); g.Status != 200 {
			t.Fatalf("registration renewed after the token died was removed: %d", g.Status)
		}
		e.APNs.Next(fake.APNsError(410, "Unregistered", time.Now().Add(time.Minute).UnixMilli()))
		expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": node, "secret": secret}), 410, "token-dead")
		expectProblem(t, e.do("GET", "/v1/registration?node="+url.QueryEscape(node), nil), 404, "not-found")
	})
}

func TestUpstreamFailures(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{})
	r := register(t, e, "fcm", fcmToken)
	push := map[string]any{"node": r.Str("node"), "secret": r.Str("secret")}

	e.FCM.Next(fake.Answer{Status: 429, Header: map[string]string{"Retry-After": "30"},
		Body: fake.FCMError(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "quota").Body})
	p := e.do("POST", "/v1/push", push)
	expectProblem(t, p, 503, "unavailable")
	if p.Header.Get("Retry-After") != "30" {
		t.Fatalf("Retry-After %q, want FCM's 30", p.Header.Get("Retry-After"))
	}
	// Refused credentials (the sender asks for a new access token once,
	// refused again).
	unauthenticated := fake.FCMError(401, "UNAUTHENTICATED", "", "bad credentials")
	e.FCM.Always(&unauthenticated)
	expectProblem(t, e.do("POST", "/v1/push", push), 502, "upstream-rejected")
	e.FCM.Always(&fake.Answer{Status: 500, Body: fake.FCMError(500, "INTERNAL", "INTERNAL", "boom").Body})
	expectProblem(t, e.do("POST", "/v1/push", push), 503, "unavailable")
	e.FCM.Always(nil)
	// Nothing was deleted by temporary or credential failures.
	if g := e.do("GET", "/v1/registration?node="+url.QueryEscape(r.Str("node")), nil); g.Status != 200 {
		t.Fatalf("registration lost after upstream failures: %d", g.Status)
	}
}

func TestDatabaseDown(t *testing.T) {
	store := dbtest.SQLite(t)
	e := newEnv(t, store, options{})
	r := register(t, e, "fcm", fcmToken)
	store.Close()
	expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": r.Str("node"), "secret": r.Str("secret")}), 503, "unavailable")
	expectProblem(t, register(t, e, "fcm", fcmToken), 503, "unavailable")
	rd := e.do("GET", "/readyz", nil)
	if rd.Status != 503 || rd.Str("database") != "unavailable" {
		t.Fatalf("readyz with the database closed: %d %s", rd.Status, rd.Raw)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{})
	for _, c := range []struct {
		name, path, body, field string
		status                  int
		typ                     string
	}{
		{"malformed", "/v1/register", `{"service":"fcm",`, "", 400, "invalid-request"},
		{"not an object", "/v1/push", `[1,2]`, "", 400, "invalid-request"},
		{"empty", "/v1/push", ``, "", 400, "invalid-request"},
		{"trailing data", "/v1/push", `{"node":"a","secret":"b"} {}`, "", 400, "invalid-request"},
		{"unknown field", "/v1/register", `{"service":"fcm","account":"a@b.c","device_id":"d","token":"t","colour":"red"}`, "colour", 400, "invalid-request"},
		{"unknown summary field", "/v1/push", `{"node":"a","secret":"b","summary":{"x":1}}`, "summary.x", 400, "invalid-request"},
		{"wrong type", "/v1/register", `{"service":"fcm","account":5,"device_id":"d","token":"t"}`, "account", 400, "invalid-request"},
		{"unknown service", "/v1/register", `{"service":"gcm","account":"a@b.c","device_id":"d","token":"t"}`, "service", 400, "invalid-request"},
		{"missing token", "/v1/register", `{"service":"fcm","account":"a@b.c","device_id":"d"}`, "token", 400, "invalid-request"},
		{"full JID", "/v1/register", `{"service":"fcm","account":"a@b.c/phone","device_id":"d","token":"t"}`, "account", 400, "invalid-request"},
		{"domain JID", "/v1/register", `{"service":"fcm","account":"b.c","device_id":"d","token":"t"}`, "account", 400, "invalid-request"},
		{"bad JID", "/v1/register", `{"service":"fcm","account":"a@@b","device_id":"d","token":"t"}`, "account", 400, "invalid-request"},
		{"token with space", "/v1/register", `{"service":"fcm","account":"a@b.c","device_id":"d","token":"t t"}`, "token", 400, "invalid-request"},
		{"APNs token not hex", "/v1/register", `{"service":"apns","account":"a@b.c","device_id":"d","token":"xyz"}`, "token", 400, "invalid-request"},
		{"control character in device id", "/v1/register", `{"service":"fcm","account":"a@b.c","device_id":"d\u0001","token":"t"}`, "device_id", 400, "invalid-request"},
		{"negative count", "/v1/push", `{"node":"a","secret":"b","summary":{"message_count":-1}}`, "summary.message_count", 400, "invalid-request"},
		{"oversized", "/v1/push", `{"node":"` + strings.Repeat("a", 70<<10) + `","secret":"b"}`, "", 413, "body-too-large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", c.path, c.body)
			expectProblem(t, r, c.status, c.typ)
			if r.Str("field") != c.field {
				t.Fatalf("field %q, want %q: %s", r.Str("field"), c.field, r.Raw)
			}
			if r.Str("detail") == "" {
				t.Fatal("no detail")
			}
		})
	}
	if n := len(e.FCM.Requests()); n != 0 {
		t.Fatalf("bad input reached FCM %d times", n)
	}
	// Unknown routes and methods are problems too.
	expectProblem(t, e.do("GET", "/v1/nothing", nil), 404, "not-found")
	r := e.do("GET", "/v1/push", nil)
	expectProblem(t, r, 405, "method-not-allowed")
	if r.Header.Get("Allow") != "POST" {
		t.Fatalf("Allow %q", r.Header.Get("Allow"))
	}
}

func TestServiceNotConfigured(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{services: []p2http.Service{p2http.FCM}})
	r := register(t, e, "apns", apnsTok)
	expectProblem(t, r, 400, "service-not-configured")
	if r.Str("field") != "service" {
		t.Fatalf("field %q", r.Str("field"))
	}
	info := e.do("GET", "/v1/info", nil)
	if info.Status != 200 || fmt.Sprint(info.Body["services"]) != "[fcm]" || info.Str("jid") != testJID || info.Str("version") != "test" {
		t.Fatalf("info: %s", info.Raw)
	}
}

func TestBearerTokens(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{tokens: []string{"first-token", "second-token"}})
	r := register(t, e, "fcm", fcmToken)
	expectProblem(t, r, 401, "unauthorized")
	if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
	expectProblem(t, register(t, e, "fcm", fcmToken, "Authorization", "Bearer wrong"), 401, "unauthorized")
	expectProblem(t, register(t, e, "fcm", fcmToken, "Authorization", "Basic c2Vjb25kLXRva2Vu"), 401, "unauthorized")
	expectProblem(t, e.do("GET", "/v1/registration?node=x", nil), 401, "unauthorized")
	r = register(t, e, "fcm", fcmToken, "Authorization", "Bearer second-token")
	if r.Status != 201 {
		t.Fatalf("register with token: %d %s", r.Status, r.Raw)
	}
	push := map[string]any{"node": r.Str("node"), "secret": r.Str("secret")}
	if p := e.do("POST", "/v1/push", push); p.Status != 200 {
		t.Fatalf("push without token: %d %s", p.Status, p.Raw)
	}
	expectProblem(t, e.do("POST", "/v1/push", push, "Authorization", "Bearer wrong"), 401, "unauthorized")
	if p := e.do("POST", "/v1/push", push, "Authorization", "bearer first-token"); p.Status != 200 {
		t.Fatalf("push with token: %d %s", p.Status, p.Raw)
	}
	e.assertLogsClean("first-token", "second-token")
}

// Concurrent first registrations of one device yield one registration.
func TestConcurrentFirstRegistrations(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, store *db.DB) {
		e := newEnv(t, store, options{})
		const n = 16
		var wg sync.WaitGroup
		results := make([]response, n)
		for i := range n {
			wg.Go(func() { results[i] = register(t, e, "fcm", fmt.Sprintf("token-%d", i)) })
		}
		wg.Wait()
		created := 0
		for _, r := range results {
			if r.Status != 200 && r.Status != 201 {
				t.Fatalf("status %d: %s", r.Status, r.Raw)
			}
			if r.Status == 201 {
				created++
			}
			if r.Str("node") != results[0].Str("node") || r.Str("secret") != results[0].Str("secret") {
				t.Fatalf("concurrent registrations got different nodes: %s vs %s", r.Raw, results[0].Raw)
			}
		}
		if created != 1 {
			t.Fatalf("%d answers said created, want 1", created)
		}
		counts, err := store.CountRegistrations(t.Context())
		if err != nil || counts[p2http.FCM] != 1 {
			t.Fatalf("counts %v %v", counts, err)
		}
	})
}

func TestOperationalEndpoints(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{})
	if r := e.do("GET", "/healthz", nil); r.Status != 200 || r.Str("status") != "ok" {
		t.Fatalf("healthz %d %s", r.Status, r.Raw)
	}
	r := e.do("GET", "/readyz", nil)
	if r.Status != 200 || r.Str("status") != "ready" || r.Body["migration_version"].(float64) < 1 ||
		r.Body["services"].(map[string]any)["fcm"] != "ok" {
		t.Fatalf("readyz %d %s", r.Status, r.Raw)
	}
	r = e.do("GET", "/openapi.yaml", nil)
	if r.Status != 200 || !strings.HasPrefix(string(r.Raw), "openapi: ") {
		t.Fatalf("openapi.yaml %d", r.Status)
	}
	if r.Header.Get("X-Request-ID") == "" {
		t.Fatal("no request id")
	}
	if r := e.do("GET", "/healthz", nil, "X-Request-ID", "abc-123"); r.Header.Get("X-Request-ID") != "abc-123" {
		t.Fatalf("request id not kept: %q", r.Header.Get("X-Request-ID"))
	}
	if r := e.do("GET", "/healthz", nil, "X-Request-ID", "bad id;with=stuff"); r.Header.Get("X-Request-ID") == "bad id;with=stuff" {
		t.Fatal("unsafe request id echoed")
	}
	// A node holding + and / is found when URL-encoded.
	r = register(t, e, "fcm", fcmToken)
	node := r.Str("node")
	g := e.do("GET", "/v1/registration?node="+url.QueryEscape(node), nil)
	if g.Status != 200 {
		t.Fatalf("registration of %q: %d %s", node, g.Status, g.Raw)
	}
	expectProblem(t, e.do("GET", "/v1/registration", nil), 400, "invalid-request")
}

// A provider slower than the push deadline yields 504 with Retry-After.
func TestPushDeadline(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{deadline: 300 * time.Millisecond})
	r := register(t, e, "apns", apnsTok)
	e.APNs.Next(fake.Answer{Status: 200, Delay: 2 * time.Second})
	start := time.Now()
	expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": r.Str("node"), "secret": r.Str("secret")}), 504, "timeout")
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("push answered after %v, deadline 300ms", d)
	}
}

// Secrets kept from p2 (sealed under the server key) authorise pushes and
// are handed back unchanged when the phone registers again.
func TestKeptSecret(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, store *db.DB) {
		e := newEnv(t, store, options{})
		const node, secret = "eKxTS5n3bOe0", "KK4+H5WMfpRG/2zCbuKq6wpX"
		now := time.Now()
		_, _, err := store.Register(t.Context(), p2http.Registration{
			App: p2http.DefaultApp, Service: p2http.FCM, Device: p2http.DeviceHash("alice@example.org", deviceID),
			Domain: "example.org", Token: fcmToken, Node: node, SecretKind: p2http.SecretKept,
			SecretEnc: e.Keys.Seal(node, secret), CreatedAt: now, UpdatedAt: now,
		})
		if err != nil {
			t.Fatal(err)
		}
		if p := e.do("POST", "/v1/push", map[string]any{"node": node, "secret": secret, "domain": "example.org"}); p.Status != 200 {
			t.Fatalf("push with kept secret: %d %s", p.Status, p.Raw)
		}
		expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": node, "secret": e.Keys.Secret(node)}), 403, "forbidden")
		r := register(t, e, "fcm", "fcm-token-renewed")
		if r.Status != 200 || r.Str("node") != node || r.Str("secret") != secret {
			t.Fatalf("re-register of an imported registration: %d %s", r.Status, r.Raw)
		}
		if g := e.do("GET", "/v1/registration?node="+url.QueryEscape(node), nil); g.Str("secret_kind") != "kept" {
			t.Fatalf("registration %s", g.Raw)
		}
	})
}
