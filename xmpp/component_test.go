package xmpp_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/ratelimit"
	"github.com/p2http/p2http/xmpp"
)

var (
	nodeRE   = regexp.MustCompile(`^[A-Za-z0-9+/]{12}$`)
	secretRE = regexp.MustCompile(`^[A-Za-z0-9+/]{24}$`)
)

// register runs Conversations' register command and returns node and
// secret, checking the whole reply.
func (e *env) register(id, token, android string) (node, secret string) {
	e.t.Helper()
	r := e.send(conversationsRegister(id, "register-push-fcm", token, android))
	expectResult(e.t, r, id, compJID, aliceFull)
	cmd := r.Child("command")
	x := cmd.Child("x")
	node, secret = x.Field("node"), x.Field("secret")
	if !nodeRE.MatchString(node) || !secretRE.MatchString(secret) {
		e.t.Fatalf("node %q / secret %q are not p2's shapes:\n%s", node, secret, r.Raw)
	}
	want := fmt.Sprintf(`<iq xmlns="jabber:component:accept" type="result" id="%s" from="push.example.org" to="%s">`+
		`<command xmlns="http://jabber.org/protocol/commands" node="register-push-fcm" sessionid="%s" status="completed">`+
		`<x xmlns="jabber:x:data" type="result">`+
		`<field var="jid" type="text-single"><value>push.example.org</value></field>`+
		`<field var="node" type="text-single"><value>%s</value></field>`+
		`<field var="secret" type="text-single"><value>%s</value></field>`+
		`</x></command></iq>`, id, aliceFull, cmd.Attr("sessionid"), node, secret)
	if r.Raw != want {
		e.t.Fatalf("register reply\n got %s\nwant %s", r.Raw, want)
	}
	if cmd.Attr("sessionid") == "" {
		e.t.Fatal("no sessionid")
	}
	return node, secret
}

func TestRegisterThenPushFromProsody(t *testing.T) {
	e := newEnv(t, options{})
	ctx := context.Background()
	node, secret := e.register("reg-1", fcmToken1, androidID)

	reg, err := e.Store.Lookup(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	device := p2http.DeviceHash(alice, androidID)
	if reg.Device != device || reg.Domain != "example.com" || reg.Token != fcmToken1 || reg.Service != p2http.FCM {
		t.Fatalf("stored %+v", reg)
	}

	r := e.send(prosodyPublish(prosodyID, node, secret, messageBody))
	expectResult(t, r, prosodyID, compJID, "example.com")
	if want := `<iq xmlns="jabber:component:accept" type="result" id="` + prosodyID + `" from="push.example.org" to="example.com"></iq>`; r.Raw != want {
		t.Fatalf("push reply\n got %s\nwant %s", r.Raw, want)
	}
	msgs := e.FCM.Sent()
	if len(msgs) != 1 {
		t.Fatalf("FCM got %d messages, want 1", len(msgs))
	}
	// Sent decodes strictly: a notification block or a second data key
	// would leave the message empty.
	m := msgs[0]
	if m.Token != fcmToken1 || m.Data.Account != device ||
		m.Android.CollapseKey != device[:6] || m.Android.Priority != "high" {
		t.Fatalf("FCM message %+v", m)
	}
	for _, req := range e.FCM.Requests() {
		for _, leak := range []string{messageBody, "bob@example.com", alice} {
			if strings.Contains(string(req.Body), leak) {
				t.Fatalf("FCM request holds %q: %s", leak, req.Body)
			}
		}
	}

	// Conversations registers again with a fresh token: same node and
	// secret, the next push goes to the new token, at normal priority when
	// the summary has no body.
	node2, secret2 := e.register("reg-2", fcmToken2, androidID)
	if node2 != node || secret2 != secret {
		t.Fatalf("re-registration changed node/secret: %s/%s -> %s/%s", node, secret, node2, secret2)
	}
	expectResult(t, e.send(prosodyPublish(prosodyID+"2", node, secret, "")), prosodyID+"2", compJID, "example.com")
	msgs = e.FCM.Sent()
	if len(msgs) != 2 || msgs[1].Token != fcmToken2 || msgs[1].Android.Priority != "normal" {
		t.Fatalf("second push: %+v", msgs)
	}
	e.assertLogsClean(fcmToken1, fcmToken2, secret, messageBody, alice, "bob@example.com", androidID, device)
	if !strings.Contains(e.Logs.String(), "id="+prosodyID) {
		t.Fatalf("the answered stanza id is not logged:\n%s", e.Logs)
	}
}

// TestPublishShapes checks the translation of each server's publish into a
// PushRequest: node, secret, the publishing domain and whether it is
// important. TestRegisterThenPushFromProsody and e2e/ follow the
// importance to the priority FCM gets.
func TestPublishShapes(t *testing.T) {
	e, m := newMockEnv(t)
	var (
		mu   sync.Mutex
		reqs []p2http.PushRequest
	)
	m.PushFn = func(_ context.Context, req p2http.PushRequest) (p2http.PushResult, error) {
		mu.Lock()
		defer mu.Unlock()
		reqs = append(reqs, req)
		return p2http.PushResult{Service: p2http.FCM, Priority: p2http.PriorityHigh}, nil
	}
	node, secret := mockNode, mockSecret
	tests := []struct {
		name      string
		stanza    string
		id, from  string
		important bool
	}{
		{"prosody with body", prosodyPublish(prosodyID, node, secret, "New Message!"), prosodyID, "example.com", true},
		{"prosody empty body", prosodyPublish(prosodyID, node, secret, ""), prosodyID, "example.com", false},
		{"prosody blank body", prosodyPublish(prosodyID, node, secret, "  \n "), prosodyID, "example.com", false},
		{"prosody fields without values", prosodyNotification(prosodyID, node, secret,
			`<x xmlns='jabber:x:data' type='form'><field type='hidden' var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>`+
				`<field type='text-single' var='message-count'/><field type='jid-single' var='last-message-sender'/>`+
				`<field type='text-single' var='last-message-body'/></x>`), prosodyID, "example.com", false},
		{"prosody long body", prosodyPublish(prosodyID, node, secret, strings.Repeat("long message ", 10000)), prosodyID, "example.com", true},
		{"prosody encrypted", prosodyNotification(prosodyID, node, secret,
			`<encrypted xmlns='tigase:push:encrypt:0' iv='cGxhaW4gaXY='>ZW5jcnlwdGVkIHBheWxvYWQ=</encrypted>`), prosodyID, "example.com", false},
		{"prosody encrypted voip", prosodyNotification(prosodyID, node, secret,
			`<encrypted xmlns='tigase:push:encrypt:0' iv='cGxhaW4gaXY=' type='voip'>ZW5jcnlwdGVkIHBheWxvYWQ=</encrypted>`), prosodyID, "example.com", true},
		{"prosody priority tag high", prosodyNotification(prosodyID, node, secret,
			`<encrypted xmlns='tigase:push:encrypt:0' iv='cGxhaW4gaXY='>ZW5j</encrypted><priority xmlns='tigase:push:priority:0'>high</priority>`), prosodyID, "example.com", true},
		{"prosody priority tag normal", prosodyNotification(prosodyID, node, secret,
			`<priority xmlns='tigase:push:priority:0'>normal</priority>`), prosodyID, "example.com", false},
		{"ejabberd with body", ejabberdPublish(ejabberdID, "example.com", node, secret, "New message"), ejabberdID, "example.com", true},
		{"ejabberd without summary", ejabberdPublish(ejabberdID, "example.com", node, secret, ""), ejabberdID, "example.com", false},
		{"ejabberd from the user's bare JID", ejabberdPublish(ejabberdID, alice, node, secret, ""), ejabberdID, alice, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			before := len(reqs)
			mu.Unlock()
			expectResult(t, e.send(tt.stanza), tt.id, compJID, tt.from)
			mu.Lock()
			defer mu.Unlock()
			if len(reqs) != before+1 {
				t.Fatalf("%d pushes, want 1", len(reqs)-before)
			}
			got := reqs[len(reqs)-1]
			// A publish from the user's bare JID claims the JID's domain.
			domain := tt.from
			if i := strings.IndexByte(domain, '@'); i >= 0 {
				domain = domain[i+1:]
			}
			if got.Node != node || got.Secret != secret || got.Domain != domain || got.Important != tt.important {
				t.Fatalf("push request %+v, want node %s, domain %s, important %v", got, node, domain, tt.important)
			}
		})
	}
	e.assertLogsClean("New Message!", "long message", secret, "ZW5jcnlwdGVkIHBheWxvYWQ")
}

func TestPublishRefused(t *testing.T) {
	e := newEnv(t, options{})
	node, secret := e.register("reg", fcmToken1, androidID)
	other := base64.StdEncoding.EncodeToString([]byte("unknown9!"))
	tests := []struct {
		name      string
		stanza    string
		from      string
		typ, cond string
	}{
		{"wrong secret", prosodyPublish(prosodyID, node, "KK4+H5WMfpRG/2zCbuKq6wpX", ""), "example.com", "auth", "forbidden"},
		{"unknown node", prosodyPublish(prosodyID, other, secret, ""), "example.com", "cancel", "item-not-found"},
		{"node of another domain", ejabberdPublish(prosodyID, "example.net", node, secret, ""), "example.net", "cancel", "item-not-found"},
		{"type get", strings.Replace(prosodyPublish(prosodyID, node, secret, ""), "type='set'", "type='get'", 1), "example.com", "modify", "bad-request"},
		{"no node", strings.Replace(prosodyPublish(prosodyID, node, secret, ""), "node='"+node+"'", "", 1), "example.com", "auth", "forbidden"},
		{"blank node", prosodyPublish(prosodyID, " ", secret, ""), "example.com", "auth", "forbidden"},
		{"no secret", prosodyNotification(prosodyID, node, "", ""), "example.com", "auth", "forbidden"},
		{"no publish-options", `<iq type='set' from='example.com' to='push.example.org' id='` + prosodyID + `'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='` + node + `'><item/></publish></pubsub></iq>`, "example.com", "auth", "forbidden"},
		{"not a publish", `<iq type='set' from='example.com' to='push.example.org' id='` + prosodyID + `'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='x' jid='example.com'/></pubsub></iq>`, "example.com", "auth", "forbidden"},
		{"node too long", prosodyPublish(prosodyID, strings.Repeat("A", p2http.MaxNodeLength+1), secret, ""), "example.com", "modify", "bad-request"},
		{"secret too long", prosodyPublish(prosodyID, node, strings.Repeat("s", 20000), ""), "example.com", "modify", "bad-request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectError(t, e.send(tt.stanza), prosodyID, compJID, tt.from, tt.typ, tt.cond)
		})
	}
	if n := len(e.FCM.Sent()); n != 0 {
		t.Fatalf("FCM got %d messages", n)
	}
	// The registration survived all of it.
	expectResult(t, e.send(prosodyPublish(prosodyID, node, secret, "")), prosodyID, compJID, "example.com")
}

func TestDeadToken(t *testing.T) {
	e := newEnv(t, options{})
	node, secret := e.register("reg", fcmToken1, androidID)
	e.FCM.Next(fake.FCMError(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."))
	expectError(t, e.send(ejabberdPublish(ejabberdID, "example.com", node, secret, "")), ejabberdID, compJID, "example.com", "cancel", "item-not-found")
	if _, err := e.Store.Lookup(context.Background(), node); p2http.ErrorCode(err) != p2http.ENOTFOUND {
		t.Fatalf("registration still there after UNREGISTERED: %v", err)
	}
	expectError(t, e.send(ejabberdPublish(ejabberdID, "example.com", node, secret, "")), ejabberdID, compJID, "example.com", "cancel", "item-not-found")
}

// Every temporary failure of FCM or p2http is answered with type wait, and
// the registration stays. p2http retries within its push deadline (1 s
// here) before it gives up.
func TestTransientFailuresAreWait(t *testing.T) {
	e := newEnv(t, options{pushDeadline: time.Second})
	node, secret := e.register("reg", fcmToken1, androidID)
	retry := map[string]string{"Retry-After": "300"}
	tests := []struct {
		name   string
		answer fake.Answer
		cond   string
	}{
		{"FCM 500 (p2http 503)", fake.FCMError(500, "INTERNAL", "INTERNAL", "Internal error encountered."), "recipient-unavailable"},
		{"FCM 503 (p2http 503)", withHeader(fake.FCMError(503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."), retry), "recipient-unavailable"},
		{"FCM 429 (p2http 503)", withHeader(fake.FCMError(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded."), retry), "recipient-unavailable"},
		{"FCM refuses our credentials (p2http 502)", fake.FCMError(401, "UNAUTHENTICATED", "", "Request had invalid authentication credentials."), "internal-server-error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.FCM.Always(&tt.answer)
			defer e.FCM.Always(nil)
			expectError(t, e.send(prosodyPublish(prosodyID, node, secret, "x")), prosodyID, compJID, "example.com", "wait", tt.cond)
			if _, err := e.Store.Lookup(context.Background(), node); err != nil {
				t.Fatalf("registration gone: %v", err)
			}
		})
	}
	expectResult(t, e.send(prosodyPublish(prosodyID, node, secret, "x")), prosodyID, compJID, "example.com")
}

// p2http's rate limit per sending domain: 429, resource-constraint, wait.
func TestRateLimited(t *testing.T) {
	e := newEnv(t, options{pushLimit: ratelimit.Rate{PerSecond: 0.001, Burst: 1}})
	node, secret := e.register("reg", fcmToken1, androidID)
	expectResult(t, e.send(prosodyPublish(prosodyID, node, secret, "x")), prosodyID, compJID, "example.com")
	expectError(t, e.send(prosodyPublish(prosodyID, node, secret, "x")), prosodyID, compJID, "example.com", "wait", "resource-constraint")
}

func withHeader(a fake.Answer, h map[string]string) fake.Answer {
	a.Header = h
	return a
}

// p2http's push deadline passes while FCM is slow: 504, remote-server-timeout.
func TestPushDeadline(t *testing.T) {
	e := newEnv(t, options{pushDeadline: 300 * time.Millisecond})
	node, secret := e.register("reg", fcmToken1, androidID)
	e.FCM.SetLatency(3 * time.Second)
	expectError(t, e.send(prosodyPublish(prosodyID, node, secret, "x")), prosodyID, compJID, "example.com", "wait", "remote-server-timeout")
}

// p2xmpp's own HTTP timeout passes: remote-server-timeout, wait.
func TestHTTPTimeout(t *testing.T) {
	e := newEnv(t, options{timeout: time.Second})
	node, secret := e.register("reg", fcmToken1, androidID)
	e.FCM.SetLatency(3 * time.Second)
	start := time.Now()
	expectError(t, e.send(prosodyPublish(prosodyID, node, secret, "x")), prosodyID, compJID, "example.com", "wait", "remote-server-timeout")
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Fatalf("answered after %v, the timeout is 1 s", d)
	}
}

func TestAPITokenRefused(t *testing.T) {
	e := newEnv(t, options{token: "not-the-api-token"})
	expectError(t, e.send(conversationsRegister("reg", "register-push-fcm", fcmToken1, androidID)), "reg", compJID, aliceFull, "wait", "internal-server-error")
	expectError(t, e.send(prosodyPublish(prosodyID, "eKxTS5n3bOe0", "KK4+H5WMfpRG/2zCbuKq6wpX", "")), prosodyID, compJID, "example.com", "wait", "internal-server-error")
	e.assertLogsClean("not-the-api-token")
}

func TestP2HTTPStopped(t *testing.T) {
	e := newEnv(t, options{})
	node, secret := e.register("reg", fcmToken1, androidID)
	e.StopAPI()
	for i := 0; i < 3; i++ {
		expectError(t, e.send(prosodyPublish(prosodyID, node, secret, "x")), prosodyID, compJID, "example.com", "wait", "remote-server-timeout")
	}
	expectError(t, e.send(conversationsRegister("reg2", "register-push-fcm", fcmToken2, androidID)), "reg2", compJID, aliceFull, "wait", "remote-server-timeout")
	expectError(t, e.send(command("un", "node='unregister-push-fcm'", form("android-id", androidID))), "un", compJID, aliceFull, "wait", "remote-server-timeout")
	// Discovery and ping do not need p2http.
	expectResult(t, e.send(`<iq type='get' from='example.com' to='push.example.org' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>`), "ping", compJID, "example.com")

	e.StartAPI()
	expectResult(t, e.send(prosodyPublish(prosodyID, node, secret, "x")), prosodyID, compJID, "example.com")
	if n := len(e.FCM.Sent()); n != 1 {
		t.Fatalf("FCM got %d messages, want 1", n)
	}
	logs := e.Logs.String()
	if n := strings.Count(logs, "p2http is unreachable"); n != 1 {
		t.Fatalf("unreachable logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs, "p2http is reachable") {
		t.Fatalf("recovery not logged:\n%s", logs)
	}
}

func TestJIDMismatch(t *testing.T) {
	e := newEnv(t, options{p2httpJID: "p2.example.net"})
	for i := 0; i < 3; i++ {
		id := fmt.Sprint("reg", i)
		expectError(t, e.send(conversationsRegister(id, "register-push-fcm", fcmToken1, androidID)), id, compJID, aliceFull, "wait", "internal-server-error")
	}
	expectError(t, e.send(prosodyPublish(prosodyID, "eKxTS5n3bOe0", "KK4+H5WMfpRG/2zCbuKq6wpX", "")), prosodyID, compJID, "example.com", "wait", "internal-server-error")
	expectResult(t, e.send(`<iq type='get' from='example.com' to='push.example.org' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`), "d", compJID, "example.com")
	if err := e.Comp.Check(context.Background()); err != xmpp.ErrJIDMismatch {
		t.Fatalf("Check: %v", err)
	}
	logs := e.Logs.String()
	if n := strings.Count(logs, "differs from this component"); n != 1 {
		t.Fatalf("mismatch logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs, "p2.example.net") {
		t.Fatalf("the mismatch does not say which jid p2http has:\n%s", logs)
	}
	if n, err := e.Store.CountRegistrations(context.Background()); err != nil || n[p2http.FCM] != 0 {
		t.Fatalf("%v registrations stored while the jids differ (%v)", n, err)
	}
}

func TestCommands(t *testing.T) {
	e := newEnv(t, options{})
	ctx := context.Background()
	full := form("token", fcmToken1, "android-id", androidID)
	tests := []struct {
		name      string
		stanza    string
		typ, cond string // "" for success
		app       string // XEP-0050 application condition
		status    string // the command's status on success
	}{
		{"suffix case-insensitive", command("c", "node='register-push-FCM' action='execute'", full), "", "", "", "completed"},
		{"action complete", command("c", "node='register-push-fcm' action='complete'", full), "", "", "", "completed"},
		{"no action", command("c", "node='register-push-fcm'", full), "", "", "", "completed"},
		{"muc accepted and ignored", command("c", "node='register-push-fcm' action='execute'", form("token", fcmToken1, "android-id", androidID, "muc", "room@conference.example.com")), "", "", "", "completed"},
		{"form type and FORM_TYPE not checked", command("c", "node='register-push-fcm'", `<x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE' type='hidden'><value>urn:example:other</value></field><field var='token'><value>`+fcmToken1+`</value></field><field var='android-id'><value>`+androidID+`</value></field></x>`), "", "", "", "completed"},
		{"cancel", command("c", "node='register-push-fcm' action='cancel'", ""), "", "", "", "canceled"},
		{"unknown service", command("c", "node='register-push-gcm' action='execute'", full), "cancel", "item-not-found", "", ""},
		{"unknown command", command("c", "node='list-registrations' action='execute'", full), "cancel", "item-not-found", "", ""},
		{"prefix is case-sensitive", command("c", "node='Register-Push-fcm' action='execute'", full), "cancel", "item-not-found", "", ""},
		{"action next", command("c", "node='register-push-fcm' action='next'", full), "modify", "bad-request", "bad-action", ""},
		{"action prev", command("c", "node='register-push-fcm' action='prev'", full), "modify", "bad-request", "bad-action", ""},
		{"unknown action", command("c", "node='register-push-fcm' action='jump'", full), "modify", "bad-request", "malformed-action", ""},
		{"no form", command("c", "node='register-push-fcm' action='execute'", ""), "modify", "bad-request", "bad-payload", ""},
		{"form of another namespace", command("c", "node='register-push-fcm' action='execute'", `<x xmlns='urn:example:x'><field var='token'><value>t</value></field></x>`), "modify", "bad-request", "bad-payload", ""},
		{"no token", command("c", "node='register-push-fcm'", form("android-id", androidID)), "modify", "bad-request", "bad-payload", ""},
		{"blank token", command("c", "node='register-push-fcm'", form("token", "  ", "android-id", androidID)), "modify", "bad-request", "bad-payload", ""},
		{"no device id", command("c", "node='register-push-fcm'", form("token", fcmToken1)), "modify", "bad-request", "bad-payload", ""},
		{"field without value", command("c", "node='register-push-fcm'", `<x xmlns='jabber:x:data' type='submit'><field var='token'/><field var='android-id'><value>x</value></field></x>`), "modify", "bad-request", "bad-payload", ""},
		{"token refused by p2http (400)", command("c", "node='register-push-fcm'", form("token", "has spaces in it", "android-id", androidID)), "modify", "bad-request", "", ""},
		{"token too long", command("c", "node='register-push-fcm'", form("token", strings.Repeat("t", 5000), "android-id", androidID)), "modify", "bad-request", "", ""},
		{"device id too long", command("c", "node='register-push-fcm'", form("token", fcmToken1, "android-id", strings.Repeat("d", 300))), "modify", "bad-request", "", ""},
		{"type get", strings.Replace(command("c", "node='register-push-fcm'", full), "type='set'", "type='get'", 1), "modify", "bad-request", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.send(tt.stanza)
			if tt.typ != "" {
				expectError(t, r, "c", compJID, aliceFull, tt.typ, tt.cond)
				app := r.Child("error").Child(tt.app)
				if tt.app != "" && app.XMLName.Space != xmpp.NSCommands {
					t.Fatalf("no %s condition:\n%s", tt.app, r.Raw)
				}
				return
			}
			expectResult(t, r, "c", compJID, aliceFull)
			if got := r.Child("command").Attr("status"); got != tt.status {
				t.Fatalf("status %q, want %q:\n%s", got, tt.status, r.Raw)
			}
		})
	}
	// Registered by the successful cases above (one device: one row), never
	// by the failed ones or the cancelled one.
	if n, err := e.Store.CountRegistrations(ctx); err != nil || n[p2http.FCM] != 1 {
		t.Fatalf("registrations %v (%v), want 1", n, err)
	}
}

func TestDeviceIDBeforeAndroidID(t *testing.T) {
	e := newEnv(t, options{})
	r := e.send(command("c", "node='register-push-fcm' action='execute'", form("token", fcmToken1, "android-id", androidID, "device-id", "dev-42")))
	expectResult(t, r, "c", compJID, aliceFull)
	reg, err := e.Store.Lookup(context.Background(), r.Child("command").Child("x").Field("node"))
	if err != nil {
		t.Fatal(err)
	}
	if reg.Device != p2http.DeviceHash(alice, "dev-42") {
		t.Fatal("the device hash does not use device-id")
	}
}

func TestSessionIDEchoed(t *testing.T) {
	e, _ := newMockEnv(t)
	r := e.send(command("c", "node='register-push-fcm' action='complete' sessionid='sess-1'", form("token", fcmToken1, "android-id", androidID)))
	expectResult(t, r, "c", compJID, aliceFull)
	if got := r.Child("command").Attr("sessionid"); got != "sess-1" {
		t.Fatalf("sessionid %q", got)
	}
}

func TestUnregister(t *testing.T) {
	e := newEnv(t, options{})
	node, secret := e.register("reg", fcmToken1, androidID)
	r := e.send(command("u1", "node='unregister-push-fcm' action='execute'", form("android-id", androidID)))
	expectResult(t, r, "u1", compJID, aliceFull)
	if want := fmt.Sprintf(`<iq xmlns="jabber:component:accept" type="result" id="u1" from="push.example.org" to="%s">`+
		`<command xmlns="http://jabber.org/protocol/commands" node="unregister-push-fcm" sessionid="%s" status="completed"></command></iq>`,
		aliceFull, r.Child("command").Attr("sessionid")); r.Raw != want {
		t.Fatalf("unregister reply\n got %s\nwant %s", r.Raw, want)
	}
	expectError(t, e.send(prosodyPublish(prosodyID, node, secret, "")), prosodyID, compJID, "example.com", "cancel", "item-not-found")
	// Nothing left to remove: item-not-found, as p2.
	expectError(t, e.send(command("u2", "node='unregister-push-fcm'", form("android-id", androidID))), "u2", compJID, aliceFull, "cancel", "item-not-found")
	// Unregistering needs no token but a device id.
	expectError(t, e.send(command("u3", "node='unregister-push-fcm'", form("token", fcmToken1))), "u3", compJID, aliceFull, "modify", "bad-request")
}

func TestAPNs(t *testing.T) {
	e := newEnv(t, options{})
	r := e.send(command("a", "node='register-push-apns' action='execute'", form("token", apnsToken, "device-id", "ios-device-1")))
	expectResult(t, r, "a", compJID, aliceFull)
	x := r.Child("command").Child("x")
	if x.Field("jid") != compJID {
		t.Fatalf("jid %q", x.Field("jid"))
	}
	expectResult(t, e.send(prosodyPublish(prosodyID, x.Field("node"), x.Field("secret"), "New Message!")), prosodyID, compJID, "example.com")
	reqs := e.APNs.Requests()
	if len(reqs) != 1 || !strings.HasSuffix(reqs[0].Path, "/"+apnsToken) {
		t.Fatalf("APNs requests: %+v", reqs)
	}
	expectResult(t, e.send(command("b", "node='unregister-push-apns'", form("device-id", "ios-device-1"))), "b", compJID, aliceFull)
}

func TestDiscoAndPing(t *testing.T) {
	e, _ := newMockEnv(t)
	tests := []struct {
		name, stanza, want string
	}{
		{"disco#info", `<iq type='get' from='alice@example.com/res' to='push.example.org' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
			`<iq xmlns="jabber:component:accept" type="result" id="d1" from="push.example.org" to="alice@example.com/res"><query xmlns="http://jabber.org/protocol/disco#info">` +
				`<identity category="pubsub" type="push" name="p2http"></identity>` +
				`<feature var="urn:xmpp:push:0"></feature><feature var="http://jabber.org/protocol/commands"></feature>` +
				`<feature var="http://jabber.org/protocol/disco#info"></feature><feature var="http://jabber.org/protocol/disco#items"></feature>` +
				`<feature var="urn:xmpp:ping"></feature></query></iq>`},
		{"disco#items on the commands node", `<iq type='get' from='alice@example.com/res' to='push.example.org' id='d2'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>`,
			`<iq xmlns="jabber:component:accept" type="result" id="d2" from="push.example.org" to="alice@example.com/res"><query xmlns="http://jabber.org/protocol/disco#items" node="http://jabber.org/protocol/commands">` +
				`<item jid="push.example.org" node="register-push-fcm" name="Register for push through FCM"></item>` +
				`<item jid="push.example.org" node="register-push-apns" name="Register for push through APNs"></item>` +
				`<item jid="push.example.org" node="unregister-push-fcm" name="Unregister from push through FCM"></item>` +
				`<item jid="push.example.org" node="unregister-push-apns" name="Unregister from push through APNs"></item></query></iq>`},
		{"disco#info on a command", `<iq type='get' from='alice@example.com/res' to='push.example.org' id='d3'><query xmlns='http://jabber.org/protocol/disco#info' node='register-push-fcm'/></iq>`,
			`<iq xmlns="jabber:component:accept" type="result" id="d3" from="push.example.org" to="alice@example.com/res"><query xmlns="http://jabber.org/protocol/disco#info" node="register-push-fcm">` +
				`<identity category="automation" type="command-node" name="Register for push through FCM"></identity>` +
				`<feature var="http://jabber.org/protocol/commands"></feature><feature var="jabber:x:data"></feature></query></iq>`},
		{"disco#items on the component", `<iq type='get' from='alice@example.com/res' to='push.example.org' id='d4'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`,
			`<iq xmlns="jabber:component:accept" type="result" id="d4" from="push.example.org" to="alice@example.com/res"><query xmlns="http://jabber.org/protocol/disco#items"></query></iq>`},
		{"ping", `<iq type='get' from='example.com' to='push.example.org' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`,
			`<iq xmlns="jabber:component:accept" type="result" id="p1" from="push.example.org" to="example.com"></iq>`},
		{"from is exactly the request's to", `<iq type='get' from='example.com' to='Push.Example.ORG' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>`,
			`<iq xmlns="jabber:component:accept" type="result" id="p2" from="Push.Example.ORG" to="example.com"></iq>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.send(tt.stanza)
			if r == nil || r.Raw != tt.want {
				t.Fatalf("\n got %v\nwant %s", r, tt.want)
			}
		})
	}
}

func TestOtherStanzas(t *testing.T) {
	e, _ := newMockEnv(t)
	errs := []struct {
		name, stanza, typ, cond string
	}{
		{"vcard", `<iq type='get' from='alice@example.com/r' to='push.example.org' id='x'><vCard xmlns='vcard-temp'/></iq>`, "cancel", "service-unavailable"},
		{"unknown set", `<iq type='set' from='alice@example.com/r' to='push.example.org' id='x'><query xmlns='jabber:iq:register'/></iq>`, "cancel", "service-unavailable"},
		{"ping set", `<iq type='set' from='alice@example.com/r' to='push.example.org' id='x'><ping xmlns='urn:xmpp:ping'/></iq>`, "cancel", "service-unavailable"},
		{"disco set", `<iq type='set' from='alice@example.com/r' to='push.example.org' id='x'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, "cancel", "service-unavailable"},
		{"disco#info unknown node", `<iq type='get' from='alice@example.com/r' to='push.example.org' id='x'><query xmlns='http://jabber.org/protocol/disco#info' node='nope'/></iq>`, "cancel", "item-not-found"},
		{"no payload", `<iq type='get' from='alice@example.com/r' to='push.example.org' id='x'/>`, "modify", "bad-request"},
		{"text only", `<iq type='get' from='alice@example.com/r' to='push.example.org' id='x'>hello</iq>`, "modify", "bad-request"},
		{"unknown type", `<iq type='query' from='alice@example.com/r' to='push.example.org' id='x'><ping xmlns='urn:xmpp:ping'/></iq>`, "modify", "bad-request"},
		{"too many elements", `<iq type='set' from='alice@example.com/r' to='push.example.org' id='x'><command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm'><x xmlns='jabber:x:data'>` +
			strings.Repeat(`<field var='f'><value>v</value></field>`, 300) + `</x></command></iq>`, "modify", "policy-violation"},
		{"too deep", `<iq type='set' from='alice@example.com/r' to='push.example.org' id='x'>` + strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40) + `</iq>`, "modify", "policy-violation"},
		{"command from an invalid JID", strings.Replace(command("x", "node='register-push-fcm'", form("token", "t", "android-id", "a")), aliceFull, "@@", 1), "modify", "bad-request"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			r := e.send(tt.stanza)
			from := "alice@example.com/r"
			if strings.Contains(tt.stanza, "from='@@'") {
				from = "@@"
			}
			expectError(t, r, "x", compJID, from, tt.typ, tt.cond)
		})
	}
	none := []struct{ name, stanza string }{
		{"result", `<iq type='result' from='example.com' to='push.example.org' id='r'/>`},
		{"error", `<iq type='error' from='example.com' to='push.example.org' id='r'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`},
		{"message", `<message from='alice@example.com/r' to='push.example.org' id='m'><body>hi</body></message>`},
		{"presence", `<presence from='alice@example.com/r' to='push.example.org'/>`},
		{"iq without id", `<iq type='get' from='example.com' to='push.example.org'><ping xmlns='urn:xmpp:ping'/></iq>`},
		{"iq without from", `<iq type='get' to='push.example.org' id='x'><ping xmlns='urn:xmpp:ping'/></iq>`},
		{"not a stanza", `<foo xmlns='urn:example'/>`},
	}
	for _, tt := range none {
		t.Run(tt.name, func(t *testing.T) {
			if r := e.send(tt.stanza); r != nil {
				t.Fatalf("unexpected reply %s", r.Raw)
			}
		})
	}
}

// Requests are served concurrently, as p2xmpp does.
func TestConcurrentPushes(t *testing.T) {
	e := newEnv(t, options{})
	node, secret := e.register("reg", fcmToken1, androidID)
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("push-", i)
			st := parseStanza(t, prosodyPublish(id, node, secret, "x"))
			r := e.Comp.Handle(context.Background(), st)
			if r == nil || !strings.Contains(r.String(), `type="result"`) {
				t.Errorf("push %d: %v", i, r)
			}
		}()
	}
	wg.Wait()
	if n := len(e.FCM.Sent()); n != 40 {
		t.Fatalf("FCM got %d messages", n)
	}
}

func TestStop(t *testing.T) {
	e, _ := newMockEnv(t)
	node, secret := e.register("reg", fcmToken1, androidID)
	e.Comp.Stop()
	expectError(t, e.send(prosodyPublish(prosodyID, node, secret, "x")), prosodyID, compJID, "example.com", "wait", "recipient-unavailable")
	expectResult(t, e.send(`<iq type='get' from='example.com' to='push.example.org' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`), "p", compJID, "example.com")
}
