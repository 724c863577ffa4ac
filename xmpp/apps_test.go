package xmpp_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/xmpp"
)

// toApp readdresses a stanza built for the component's own address to
// APP@component.
func toApp(raw, app string) string {
	return strings.Replace(raw, "to='push.example.org'", "to='"+app+"@push.example.org'", 1)
}

// TestApps: a phone registering at APP@component gets that address back as
// jid, a publish sent there goes out through that app's FCM project, and a
// publish never crosses apps; a local part naming no app is item-not-found.
func TestApps(t *testing.T) {
	e := newEnv(t, options{apps: []string{"quicksy"}})
	const appJID = "quicksy@push.example.org"

	r := e.send(toApp(conversationsRegister("reg-q", "register-push-fcm", fcmToken1, androidID), "quicksy"))
	expectResult(t, r, "reg-q", appJID, aliceFull)
	x := r.Child("command").Child("x")
	qNode, qSecret := x.Field("node"), x.Field("secret")
	if x.Field("jid") != appJID || !nodeRE.MatchString(qNode) || !secretRE.MatchString(qSecret) {
		t.Fatalf("register at %s:\n%s", appJID, r.Raw)
	}
	if reg, err := e.Store.Lookup(t.Context(), qNode); err != nil || reg.App != "quicksy" {
		t.Fatalf("stored %+v, %v", reg, err)
	}
	dNode, dSecret := e.register("reg-d", fcmToken2, androidID)
	if dNode == qNode {
		t.Fatal("two apps share a node")
	}

	// To the app's address: the app's own project.
	r = e.send(toApp(prosodyPublish(prosodyID, qNode, qSecret, messageBody), "quicksy"))
	expectResult(t, r, prosodyID, appJID, "example.com")
	if n, d := len(e.AppFCM["quicksy"].Requests()), len(e.FCM.Requests()); n != 1 || d != 0 {
		t.Fatalf("quicksy's project got %d requests, the default one %d", n, d)
	}
	if got := e.AppFCM["quicksy"].Tokens(); len(got) != 1 || got[0] != fcmToken1 {
		t.Fatalf("quicksy's project got %q", got)
	}

	// Crossing apps either way is item-not-found, and nothing is sent.
	expectError(t, e.send(prosodyPublish(prosodyID, qNode, qSecret, "")), prosodyID, compJID, "example.com", "cancel", "item-not-found")
	expectError(t, e.send(toApp(prosodyPublish(prosodyID, dNode, dSecret, ""), "quicksy")), prosodyID, appJID, "example.com", "cancel", "item-not-found")
	if n, d := len(e.AppFCM["quicksy"].Requests()), len(e.FCM.Requests()); n != 1 || d != 0 {
		t.Fatalf("crossed pushes were sent: quicksy %d, default %d", n, d)
	}

	// A local part that names no app.
	expectError(t, e.send(toApp(conversationsRegister("reg-x", "register-push-fcm", fcmToken1, androidID), "nosuchapp")),
		"reg-x", "nosuchapp@push.example.org", aliceFull, "cancel", "item-not-found")
	expectError(t, e.send(toApp(prosodyPublish(prosodyID, qNode, qSecret, ""), "nosuchapp")),
		prosodyID, "nosuchapp@push.example.org", "example.com", "cancel", "item-not-found")

	// Unregistering at the app's address removes that app's registration only.
	u := e.send(toApp(command("unreg-q", "node='unregister-push-fcm' action='execute'",
		"<x xmlns='jabber:x:data' type='submit'><field var='android-id'><value>"+androidID+"</value></field></x>"), "quicksy"))
	expectResult(t, u, "unreg-q", appJID, aliceFull)
	if _, err := e.Store.Lookup(t.Context(), qNode); err == nil {
		t.Fatal("quicksy's registration survived its unregister")
	}
	if _, err := e.Store.Lookup(t.Context(), dNode); err != nil {
		t.Fatalf("the default app's registration is gone: %v", err)
	}
	e.assertLogsClean(fcmToken1, qSecret, alice, messageBody)
}

// The app comes from the address a stanza was sent to: its local part,
// whatever its case or resource; an address of another domain, one that does
// not parse, and default@component (the default app lives at the bare
// address) name no app.
func TestAppAddresses(t *testing.T) {
	e := newEnv(t, options{apps: []string{"quicksy"}})
	reg := func(to string) *reply {
		raw := strings.Replace(conversationsRegister("r", "register-push-fcm", fcmToken1, androidID), "to='push.example.org'", "to='"+to+"'", 1)
		return e.send(raw)
	}
	for _, to := range []string{"Quicksy@push.example.org", "quicksy@push.example.org/some-resource"} {
		r := reg(to)
		expectResult(t, r, "r", to, aliceFull)
		if got := r.Child("command").Child("x").Field("jid"); got != "quicksy@push.example.org" {
			t.Fatalf("register at %s: jid %q", to, got)
		}
	}
	for _, to := range []string{"default@push.example.org", "quicksy@other.example.org", "@push.example.org"} {
		expectError(t, reg(to), "r", to, aliceFull, "cancel", "item-not-found")
	}
	if n := len(e.AppFCM["quicksy"].Requests()) + len(e.FCM.Requests()); n != 0 {
		t.Fatalf("%d pushes sent by registrations", n)
	}
}

// A p2http from before apps refuses an unknown "app" field with a 400,
// which XMPP servers take as permanent: p2xmpp leaves the field out unless
// p2http's info lists apps, and answers item-not-found for a further app
// itself.
func TestAppsWithP2HTTPBeforeApps(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/info" {
			io.WriteString(w, `{"jid":"push.example.org","services":["fcm"],"version":"0.1.0","dev_mode":false}`)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		if strings.Contains(string(b), `"app"`) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(400)
			io.WriteString(w, `{"type":"urn:p2http:problem:invalid-request","title":"Invalid request","status":400,"detail":"unknown field app"}`)
			return
		}
		if r.URL.Path == "/v1/push" {
			io.WriteString(w, `{"delivered":true,"coalesced":false,"service":"fcm","priority":"high"}`)
			return
		}
		w.WriteHeader(201)
		io.WriteString(w, `{"jid":"push.example.org","node":"eKxTS5n3bOe0","secret":"KK4+H5WMfpRG/2zCbuKq6wpX"}`)
	}))
	defer old.Close()
	c, err := api.NewClient(api.ClientConfig{BaseURL: old.URL})
	if err != nil {
		t.Fatal(err)
	}
	comp, err := xmpp.New(xmpp.Config{JID: compJID, Registrar: c, Pusher: c, Describer: c, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	send := func(raw string) *reply {
		return parseReply(t, comp.Handle(context.Background(), parseStanza(t, raw)).String())
	}
	expectResult(t, send(conversationsRegister("r1", "register-push-fcm", fcmToken1, androidID)), "r1", compJID, aliceFull)
	expectResult(t, send(prosodyPublish(prosodyID, "eKxTS5n3bOe0", "KK4+H5WMfpRG/2zCbuKq6wpX", "")), prosodyID, compJID, "example.com")
	expectError(t, send(toApp(conversationsRegister("r2", "register-push-fcm", fcmToken1, androidID), "quicksy")),
		"r2", "quicksy@push.example.org", aliceFull, "cancel", "item-not-found")
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 {
		t.Fatalf("p2http got %d calls, want the register and the push: %q", len(bodies), bodies)
	}
	for _, b := range bodies {
		if strings.Contains(b, `"app"`) {
			t.Fatalf("sent an app field to a p2http that knows none: %s", b)
		}
	}
}
