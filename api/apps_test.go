package api_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/internal/fake"
)

// TestApps serves the default app and a second one with its own FCM
// project: each phone registers with its app, its pushes go out through its
// app's project only, and a push never crosses apps.
func TestApps(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, store *db.DB) {
		e := newEnv(t, store, options{apps: []string{"quicksy"}})
		quicksy := e.AppFCM["quicksy"]

		// One account, one device, registered with both apps: two registrations.
		def := register(t, e, "fcm", fcmToken)
		q := e.do("POST", "/v1/register", map[string]any{
			"app": "quicksy", "service": "fcm", "account": account, "device_id": deviceID, "token": "quicksy-token",
		})
		if def.Status != 201 || q.Status != 201 {
			t.Fatalf("register: %d %s / %d %s", def.Status, def.Raw, q.Status, q.Raw)
		}
		if def.Str("jid") != testJID || q.Str("jid") != "quicksy@"+testJID {
			t.Fatalf("jids %q and %q", def.Str("jid"), q.Str("jid"))
		}
		if def.Str("node") == q.Str("node") {
			t.Fatal("two apps share a node")
		}
		// Registering again with the same app keeps its node.
		again := e.do("POST", "/v1/register", map[string]any{
			"app": "quicksy", "service": "fcm", "account": account, "device_id": deviceID, "token": "quicksy-token-2",
		})
		if again.Status != 200 || again.Str("node") != q.Str("node") || again.Str("jid") != "quicksy@"+testJID {
			t.Fatalf("re-register: %d %s", again.Status, again.Raw)
		}

		push := func(app, node, secret string) response {
			body := map[string]any{"node": node, "secret": secret, "important": true}
			if app != "" {
				body["app"] = app
			}
			return e.do("POST", "/v1/push", body)
		}
		if p := push("quicksy", q.Str("node"), q.Str("secret")); p.Status != 200 || p.Body["delivered"] != true {
			t.Fatalf("push to quicksy: %d %s", p.Status, p.Raw)
		}
		// Without an app the node's own app is used: still quicksy's project.
		if p := push("", q.Str("node"), q.Str("secret")); p.Status != 200 {
			t.Fatalf("push without app: %d %s", p.Status, p.Raw)
		}
		if p := push("", def.Str("node"), def.Str("secret")); p.Status != 200 {
			t.Fatalf("push to default: %d %s", p.Status, p.Raw)
		}
		if got := quicksy.Tokens(); len(got) != 2 || got[0] != "quicksy-token-2" || got[1] != "quicksy-token-2" {
			t.Fatalf("quicksy's project got tokens %q", got)
		}
		if got := e.FCM.Tokens(); len(got) != 1 || got[0] != fcmToken {
			t.Fatalf("default project got tokens %q", got)
		}
		// Each project saw only its own credentials and URL.
		for _, r := range quicksy.Requests() {
			if r.Path != "/v1/projects/p2http-quicksy/messages:send" || r.Header.Get("Authorization") != "Bearer "+quicksy.AccessToken {
				t.Fatalf("quicksy request %s with %q", r.Path, r.Header.Get("Authorization"))
			}
		}

		// A push addressed to one app never reaches another app's node.
		expectProblem(t, push("quicksy", def.Str("node"), def.Str("secret")), 404, "not-found")
		expectProblem(t, push("default", q.Str("node"), q.Str("secret")), 404, "not-found")
		expectProblem(t, push("nosuchapp", q.Str("node"), q.Str("secret")), 404, "not-found")
		if n := len(quicksy.Requests()) + len(e.FCM.Requests()); n != 3 {
			t.Fatalf("refused pushes reached FCM: %d requests in all", n)
		}

		// Unknown apps are 404 for registration, names that could be no app's too
		// (p2xmpp passes any local part it is sent to; item-not-found is right).
		r := e.do("POST", "/v1/register", map[string]any{
			"app": "nosuchapp", "service": "fcm", "account": account, "device_id": deviceID, "token": fcmToken,
		})
		expectProblem(t, r, 404, "not-found")
		if r.Body["field"] != "app" {
			t.Fatalf("unknown app: %s", r.Raw)
		}
		expectProblem(t, e.do("POST", "/v1/register", map[string]any{
			"app": "Not An App!", "service": "fcm", "account": account, "device_id": deviceID, "token": fcmToken,
		}), 404, "not-found")

		info := e.do("GET", "/v1/registration?node="+url.QueryEscape(q.Str("node")), nil)
		if info.Status != 200 || info.Str("app") != "quicksy" {
			t.Fatalf("registration: %d %s", info.Status, info.Raw)
		}
		in := e.do("GET", "/v1/info", nil)
		apps, _ := in.Body["apps"].([]any)
		if in.Status != 200 || len(apps) != 1 {
			t.Fatalf("info: %d %s", in.Status, in.Raw)
		}
		if a := apps[0].(map[string]any); a["name"] != "quicksy" || a["jid"] != "quicksy@"+testJID {
			t.Fatalf("info apps: %s", in.Raw)
		}

		// Unregistering from one app leaves the other's registration alone.
		u := e.do("POST", "/v1/unregister", map[string]any{"app": "quicksy", "service": "fcm", "account": account, "device_id": deviceID})
		if u.Status != 204 {
			t.Fatalf("unregister: %d %s", u.Status, u.Raw)
		}
		expectProblem(t, push("quicksy", q.Str("node"), q.Str("secret")), 404, "not-found")
		if p := push("default", def.Str("node"), def.Str("secret")); p.Status != 200 {
			t.Fatalf("default app after quicksy's unregister: %d %s", p.Status, p.Raw)
		}
		reg, err := store.Lookup(t.Context(), def.Str("node"))
		if err != nil || reg.App != p2http.DefaultApp {
			t.Fatalf("default registration: %+v %v", reg, err)
		}
	})
}

// TestAppsCoalescedTrailingPush: a trailing push owed by coalescing goes out
// with the node's own app too.
func TestAppsCoalescedTrailingPush(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{apps: []string{"quicksy"}, coalesce: 200 * time.Millisecond})
	quicksy := e.AppFCM["quicksy"]
	q := e.do("POST", "/v1/register", map[string]any{
		"app": "quicksy", "service": "fcm", "account": account, "device_id": deviceID, "token": "quicksy-token",
	})
	for i := range 3 {
		p := e.do("POST", "/v1/push", map[string]any{"node": q.Str("node"), "secret": q.Str("secret")})
		if p.Status != 200 || (i > 0) != (p.Body["coalesced"] == true) {
			t.Fatalf("push %d: %d %s", i, p.Status, p.Raw)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(quicksy.Requests()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(quicksy.Requests()); n != 2 {
		t.Fatalf("quicksy's project got %d requests, want the first push and one trailing push", n)
	}
	if n := len(e.FCM.Requests()); n != 0 {
		t.Fatalf("the default project got %d requests", n)
	}
}

// Each app's credentials fail on their own: the default app's FCM project
// refusing them shows as degraded for the default app only, and the other
// app's successes do not hide it. A node of an app no longer served is 404.
func TestAppsHealth(t *testing.T) {
	store := dbtest.SQLite(t)
	e := newEnv(t, store, options{apps: []string{"quicksy"}})
	def := register(t, e, "fcm", fcmToken)
	q := e.do("POST", "/v1/register", map[string]any{
		"app": "quicksy", "service": "fcm", "account": account, "device_id": deviceID, "token": "quicksy-token",
	})
	push := func(r response) response {
		return e.do("POST", "/v1/push", map[string]any{"node": r.Str("node"), "secret": r.Str("secret")})
	}
	e.FCM.Always(&fake.Answer{Status: 403, Body: fake.FCMError(403, "PERMISSION_DENIED", "", "denied").Body})
	for range 2 {
		expectProblem(t, push(def), 502, "upstream-rejected")
		if p := push(q); p.Status != 200 {
			t.Fatalf("quicksy push while the default project refuses: %d %s", p.Status, p.Raw)
		}
	}
	r := e.do("GET", "/readyz", nil)
	apps, _ := r.Body["apps"].(map[string]any)
	if r.Body["services"].(map[string]any)["fcm"] != "degraded" || apps["quicksy"].(map[string]any)["fcm"] != "ok" {
		t.Fatalf("readyz: %s", r.Raw)
	}
	if n := strings.Count(e.logs.String(), "rejects our credentials or configuration"); n != 1 {
		t.Fatalf("credential failure logged %d times, want once", n)
	}
	if !strings.Contains(e.logs.String(), "app=default") {
		t.Fatalf("the credential failure does not name the app:\n%s", e.logs.String())
	}

	// The node of an app dropped from the configuration.
	now := time.Now().UTC()
	if _, _, err := store.Register(t.Context(), p2http.Registration{App: "retired", Service: p2http.FCM, Device: strings.Repeat("ab", 20),
		Domain: "example.org", Token: "t", Node: "retiredNode1", SecretKind: p2http.SecretDerived, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	expectProblem(t, e.do("POST", "/v1/push", map[string]any{"node": "retiredNode1", "secret": e.Keys.Secret("retiredNode1")}), 404, "not-found")
}
