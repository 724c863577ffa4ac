package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/internal/xmppserver"
)

// TestProsodyHTTPHook runs contrib/prosody/mod_p2http_push in the real
// Prosody of the end-to-end tests, with p2http behind it and no p2xmpp at
// all: every push must travel over HTTP. A recording HTTP proxy between
// Prosody and p2http keeps the exact requests the module sent.
func TestProsodyHTTPHook(t *testing.T) {
	const androidID = "hook0123456789ab"
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s, rec := hookStart(t, "")

	// Alice's phone registers with p2http's REST API (p2xmpp would do this
	// for an ad-hoc command), enables push at Prosody and goes offline.
	reg := hookRegister(t, s.api, hookAPIToken, androidID, "fcm-token-hook")
	alice := s.srv.Dial(ctx, t, "alice", "alice-pw")
	s.enablePush(ctx, alice, reg)
	alice.Close(t)

	// 1. A message wakes the phone, at high priority, through POST /v1/push.
	s.message(ctx, "hook secret words")
	msgs := hookWaitFCM(t, s, 1)
	m := msgs[0].FCMMessage()
	if m.Token != "fcm-token-hook" || m.Data.Account != p2http.DeviceHash("alice@example.org", androidID) {
		t.Fatalf("FCM message %s is not for alice's phone", msgs[0].Body)
	}
	if m.Android.Priority != "high" {
		t.Fatalf("a message with a body was not pushed at high priority: %s", msgs[0].Body)
	}
	pushes := rec.waitPushes(t, 1)
	hookCheckPush(t, pushes[0], reg, hookAPIToken, true)
	if n := hookSettle(t, s, rec); n != 1 {
		t.Fatalf("p2http logged %d /v1/push requests, want 1", n)
	}
	waitServerLog(t, s.srv, "Push was blocked by event handler: delivered to p2http over HTTP")

	// A message without a body (a chat state) is pushed at normal priority.
	hookSend(ctx, s, `<message type='chat' to='alice@example.org'><active xmlns='http://jabber.org/protocol/chatstates'/></message>`)
	msgs = hookWaitFCM(t, s, 2)
	if p := msgs[1].FCMMessage().Android.Priority; p != "normal" {
		t.Fatalf("a bodiless message was pushed at priority %v: %s", p, msgs[1].Body)
	}
	hookCheckPush(t, rec.waitPushes(t, 2)[1], reg, hookAPIToken, false)

	// 2. Temporary answers do not count against the registration: p2http's
	// own 503 and 429, a proxy's HTML 404 page, and p2http not answering at
	// all (stopped). After each, and after p2http is back, the next message
	// is pushed.
	temporary := []struct {
		name, answer, log string
	}{
		{"503 unavailable", hookProblem(503, "unavailable"), "p2http answered 503 unavailable"},
		{"429 rate-limited", hookProblem(429, "rate-limited"), "p2http answered 429 rate-limited"},
		{"a proxy's 404 page", "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found", "p2http answered 404 for"},
		{"a proxy's 502", "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", "p2http answered 502 for"},
		{"no answer in time", hookHang, "p2http did not answer within 5s"},
	}
	for i, c := range temporary {
		rec.answerNext(c.answer)
		s.message(ctx, "while p2http answers "+c.name)
		rec.waitPushes(t, 3+i)
		waitServerLog(t, s.srv, c.log)
	}
	s.p2http.stop()
	s.message(ctx, "while p2http is stopped")
	waitServerLog(t, s.srv, "p2http unreachable for identifier")
	if strings.Contains(s.srv.Logs(), "Disabling push notifications") {
		t.Fatalf("a temporary error removed the registration:\n%s", tail(s.srv.Logs(), 40))
	}
	s.p2http.start()
	s.waitHTTP()
	s.message(ctx, "p2http is back")
	hookWaitFCM(t, s, 3)
	if !strings.Contains(hookStoredSettings(t, s.srv, "alice"), reg.node) {
		t.Fatalf("alice's push settings lost the registration:\n%s", hookStoredSettings(t, s.srv, "alice"))
	}

	// 3. FCM reports the token dead: p2http answers 410 and the module
	// removes the registration from alice's push settings.
	s.fcm.Next(fake.FCMError(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."))
	s.message(ctx, "to a dead token")
	hookWaitFCM(t, s, 4)
	waitServerLog(t, s.srv, "Disabling push notifications for identifier '"+pushJID+"<"+reg.node+"' (410 token-dead)")
	if res := hookLookup(t, s.api, hookAPIToken, reg.node); res != http.StatusNotFound {
		t.Fatalf("p2http's registration after UNREGISTERED: %d, want 404", res)
	}
	if settings := hookStoredSettings(t, s.srv, "alice"); strings.Contains(settings, reg.node) {
		t.Fatalf("alice's stored push settings still hold the dead registration:\n%s", settings)
	}
	hookAssertNoPush(ctx, s, rec, "after the token died")

	// 4. The registration is unknown to p2http (the phone unregistered
	// there): 404 not-found removes it from alice's push settings too.
	reg2 := hookRegister(t, s.api, hookAPIToken, androidID, "fcm-token-hook-2")
	if reg2.node == reg.node {
		t.Fatalf("a registration after a dead token kept its node")
	}
	alice = s.srv.Dial(ctx, t, "alice", "alice-pw")
	s.enablePush(ctx, alice, reg2)
	alice.Close(t)
	s.message(ctx, "to the second registration")
	msgs = hookWaitFCM(t, s, 5)
	if msgs[4].FCMMessage().Token != "fcm-token-hook-2" {
		t.Fatalf("push after re-registration went to %s", msgs[4].Body)
	}
	hookUnregister(t, s.api, hookAPIToken, androidID)
	s.message(ctx, "to an unregistered phone")
	waitServerLog(t, s.srv, "Disabling push notifications for identifier '"+pushJID+"<"+reg2.node+"' (404 not-found)")
	hookAssertNoPush(ctx, s, rec, "after p2http forgot the node")

	// 5. A wrong secret (403) counts against push_max_errors, as a
	// forbidden/auth error reply does over XMPP; the limit is 1 here.
	reg3 := hookRegister(t, s.api, hookAPIToken, androidID, "fcm-token-hook-3")
	alice = s.srv.Dial(ctx, t, "alice", "alice-pw")
	s.enablePush(ctx, alice, reg3)
	alice.Close(t)
	rec.answerNext(hookProblem(403, "forbidden"))
	s.message(ctx, "with a wrong secret")
	waitServerLog(t, s.srv, "Disabling push notifications for identifier '"+pushJID+"<"+reg3.node+"' (403 forbidden)")
	hookAssertNoPush(ctx, s, rec, "after push_max_errors")

	// 6. A registration without a secret cannot go through POST /v1/push:
	// mod_cloud_notify publishes it over XMPP as before. No component is
	// connected, so Prosody itself answers the publish with a wait error.
	alice = s.srv.Dial(ctx, t, "alice", "alice-pw")
	if typ, reply := alice.SendIQ(ctx, `<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='`+pushJID+`' node='no-secret-node'/></iq>`); typ != "result" {
		t.Fatalf("enable without publish options: %s %s", typ, reply)
	}
	alice.Close(t)
	recorded := len(rec.requests())
	s.message(ctx, "to a registration without a secret")
	waitServerLog(t, s.srv, "Registration '"+pushJID+"<no-secret-node' has no node or no secret: left to mod_cloud_notify")
	waitServerLog(t, s.srv, "Component unavailable> for identifier '"+pushJID+"<no-secret-node'")
	if n := len(rec.requests()); n != recorded {
		t.Fatalf("a registration without a secret was pushed over HTTP")
	}

	// Nothing of a message, its sender, or the phone's secret and token
	// reached p2http's log; nothing of a message reached p2http at all.
	for _, secret := range []string{"fcm-token-hook", reg.secret, reg2.secret, reg3.secret, "secret words", "alice@", "bob@", androidID, hookAPIToken} {
		if strings.Contains(s.p2http.Logs(), secret) {
			t.Errorf("p2http logged %q", secret)
		}
	}
	for _, secret := range []string{reg.secret, reg2.secret, reg3.secret, hookAPIToken, "fcm-token-hook"} {
		if strings.Contains(s.srv.Logs(), secret) {
			t.Errorf("Prosody logged %q", secret)
		}
	}
	for _, r := range rec.requests() {
		for _, secret := range []string{"secret words", "while p2http", "bob", "alice", "to a dead token"} {
			if strings.Contains(string(r.body), secret) {
				t.Errorf("the module sent %q to p2http: %s", secret, r.body)
			}
		}
	}
}

// hookAPIToken is p2http's API token, which the module is configured with.
const hookAPIToken = "hook-api-token-0123456789"

// hookStart starts p2http with a fake FCM, the recording proxy in front of
// it, and Prosody with mod_p2http_push pointed at the proxy; alice and bob
// have accounts. No p2xmpp runs. hostConfig is added to the virtual host.
func hookStart(t *testing.T, hostConfig string) (*stack, *hookRecorder) {
	t.Helper()
	return hookStartApps(t, hostConfig, nil)
}

// hookStartApps is hookStart with further apps in p2http (P2_CONFIG, each
// with its own fake FCM project), whose APP@component addresses the module
// handles too.
func hookStartApps(t *testing.T, hostConfig string, apps []string) (*stack, *hookRecorder) {
	t.Helper()
	// p2http as in newStack, but with API tokens: the module sends its
	// configured bearer token, which p2http then checks.
	s := &stack{t: t, fcm: fake.NewFCM(), appFCM: map[string]*fake.FCM{}}
	t.Cleanup(s.fcm.Close)
	dir := t.TempDir()
	ca, creds := filepath.Join(dir, "fcm-ca.pem"), filepath.Join(dir, "fcm.json")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.fcm.Server.Certificate().Raw}), 0o600)
	os.WriteFile(creds, s.fcm.Credentials, 0o600)
	port := freePort(t)
	s.api = fmt.Sprintf("http://127.0.0.1:%d", port)
	env := map[string]string{
		"P2_LISTEN": fmt.Sprintf("127.0.0.1:%d", port), "P2_DATABASE_URL": "sqlite:" + filepath.Join(dir, "p2.db"),
		"P2_JID": pushJID, "P2_FCM_CREDENTIALS": creds, "P2_FCM_ENDPOINT": s.fcm.Endpoint(), "SSL_CERT_FILE": ca,
		"P2_LOG_FORMAT": "json", "P2_COALESCE_WINDOW": "0", "P2_API_TOKENS": hookAPIToken,
		"P2_LOG_LEVEL": "debug", // pushRequests counts the request lines
	}
	pushJIDs := fmt.Sprintf("%q", pushJID)
	if len(apps) > 0 {
		env["P2_CONFIG"] = s.startApps(dir, apps)
	}
	for _, app := range apps {
		pushJIDs += fmt.Sprintf(", %q", app+"@"+pushJID)
	}
	s.p2http = startProc(t, "p2http", bins.p2http, env)
	s.waitHTTP()

	rec := hookStartRecorder(t, fmt.Sprintf("127.0.0.1:%d", port))

	plugins, err := filepath.Abs("../contrib/prosody")
	if err != nil {
		t.Fatal(err)
	}
	// PushMaxErrors 1: a single error counted against the registration would
	// remove it, so the temporary errors below prove they are not counted.
	s.srv = xmppserver.StartProsody(t, xmppserver.Options{
		Domain: "example.org", Component: pushJID, ComponentSecret: compSecret, PushMaxErrors: 1,
		ExtraPluginPaths: []string{plugins},
		ExtraModules:     []string{"p2http_push"},
		ExtraHostConfig: fmt.Sprintf("\tp2http_push_url = %q\n\tp2http_push_jid = { %s }\n\tp2http_push_token = %q\n\tp2http_push_timeout = 5\n%s",
			"http://"+rec.addr(), pushJIDs, hookAPIToken, hostConfig),
	})
	waitServerLog(t, s.srv, " go to http://"+rec.addr()+"/v1/push")
	s.srv.Register(t, "alice", "alice-pw")
	s.srv.Register(t, "bob", "bob-pw")
	return s, rec
}

// hookSend has bob send a raw stanza.
func hookSend(ctx context.Context, s *stack, raw string) {
	s.t.Helper()
	bob := s.srv.Dial(ctx, s.t, "bob", "bob-pw")
	bob.Send(ctx, s.t, raw)
	bob.Close(s.t)
}

// hookAssertNoPush has bob send a message and checks that neither p2http nor
// the recorder nor FCM saw a push for it.
func hookAssertNoPush(ctx context.Context, s *stack, rec *hookRecorder, when string) {
	s.t.Helper()
	pushes, recorded, sent := hookSettle(s.t, s, rec), len(rec.requests()), len(s.fcm.Requests())
	s.message(ctx, "a message "+when)
	time.Sleep(2 * time.Second)
	if s.pushRequests() != pushes || len(rec.requests()) != recorded || len(s.fcm.Requests()) != sent {
		s.t.Fatalf("Prosody kept pushing %s: %d→%d /v1/push requests", when, recorded, len(rec.requests()))
	}
}

// hookSettle waits until p2http has logged every push the recorder passed
// on to it (p2http logs a request after answering it) and returns their
// number.
func hookSettle(t *testing.T, s *stack, rec *hookRecorder) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		want, idle := rec.forwardedCount()
		n := s.pushRequests()
		if idle && n == want {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("p2http logged %d /v1/push requests, the recorder passed on %d:\n%s", n, want, s.p2http.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hookWaitFCM waits until the fake FCM has received n send requests.
func hookWaitFCM(t *testing.T, s *stack, n int) []fake.Request {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var msgs []fake.Request
		for _, r := range s.fcm.Requests() {
			if strings.HasSuffix(r.Path, "/messages:send") {
				msgs = append(msgs, r)
			}
		}
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("fake FCM got %d messages, want %d\np2http:\n%s\nprosody:\n%s", len(msgs), n, s.p2http.Logs(), tail(s.srv.Logs(), 60))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hookCheckPush checks one request of the module: POST /v1/push with
// exactly node, secret, domain and important, and the bearer token.
func hookCheckPush(t *testing.T, r hookRequest, reg registration, token string, important bool) {
	t.Helper()
	if r.method != http.MethodPost || r.path != "/v1/push" {
		t.Fatalf("the module sent %s %s, want POST /v1/push", r.method, r.path)
	}
	if got := r.header.Get("Authorization"); got != "Bearer "+token {
		t.Fatalf("the module sent Authorization %q, want the configured bearer token", got)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("the module sent Content-Type %q", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("the module sent %q: %v", r.body, err)
	}
	want := map[string]any{"node": reg.node, "secret": reg.secret, "domain": "example.org", "important": important}
	if len(body) != len(want) {
		t.Fatalf("the module sent %s, want exactly the fields node, secret, domain, important", r.body)
	}
	for k, v := range want {
		if body[k] != v {
			t.Fatalf("the module sent %s=%v, want %v (%s)", k, body[k], v, r.body)
		}
	}
}

// hookProblem is a raw HTTP answer with a p2http problem document.
func hookProblem(status int, typ string) string {
	body := fmt.Sprintf(`{"type":"urn:p2http:problem:%s","title":"test","status":%d}`, typ, status)
	return fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\nRetry-After: 1\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}

// hookRegister registers alice's phone with p2http directly.
func hookRegister(t *testing.T, api, token, androidID, fcmToken string) registration {
	t.Helper()
	res := hookCall(t, api+"/v1/register", token, fmt.Sprintf(`{"service":"fcm","account":"alice@example.org","device_id":%q,"token":%q}`, androidID, fcmToken))
	defer res.Body.Close()
	var r struct{ JID, Node, Secret string }
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil || (res.StatusCode != 200 && res.StatusCode != 201) {
		t.Fatalf("register: %d %v", res.StatusCode, err)
	}
	if r.JID != pushJID || r.Node == "" || r.Secret == "" {
		t.Fatalf("register answered %+v", r)
	}
	return registration{jid: r.JID, node: r.Node, secret: r.Secret}
}

func hookUnregister(t *testing.T, api, token, androidID string) {
	t.Helper()
	res := hookCall(t, api+"/v1/unregister", token, fmt.Sprintf(`{"service":"fcm","account":"alice@example.org","device_id":%q}`, androidID))
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("unregister: %d", res.StatusCode)
	}
}

func hookCall(t *testing.T, u, token, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func hookLookup(t *testing.T, api, token, node string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, api+"/v1/registration?node="+url.QueryEscape(node), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// hookStoredSettings returns mod_cloud_notify's stored push settings of a
// user (Prosody's internal storage, a Lua file), "" when there are none.
func hookStoredSettings(t *testing.T, srv *xmppserver.Server, user string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(srv.Dir, "data", strings.ReplaceAll(url.PathEscape(srv.Domain), ".", "%2e"), "cloud_notify", user+".dat"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// hookRecorder is an HTTP proxy in front of p2http that keeps every
// request the module sends, as it arrived. When p2http does not answer it
// closes the connection without an answer, as a stopped service would look
// to the module. answerNext makes it answer the next request itself.
type hookRecorder struct {
	srv     *httptest.Server
	backend string
	client  *http.Client
	mu      sync.Mutex
	reqs    []hookRequest
	canned  []string
	// forwarded counts the requests p2http answered; passing, those
	// waiting for its answer.
	forwarded, passing int
}

type hookRequest struct {
	method, path string
	header       http.Header
	body         []byte
}

func hookStartRecorder(t *testing.T, backend string) *hookRecorder {
	t.Helper()
	r := &hookRecorder{backend: backend, client: &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true},
		Timeout:   20 * time.Second,
	}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// hookHang, given to answerNext, makes the recorder never answer.
const hookHang = "hang"

func (r *hookRecorder) addr() string { return r.srv.Listener.Addr().String() }

func (r *hookRecorder) answerNext(raw string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.canned = append(r.canned, raw)
}

func (r *hookRecorder) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, hookRequest{req.Method, req.URL.Path, req.Header.Clone(), body})
	var canned string
	if len(r.canned) > 0 {
		canned, r.canned = r.canned[0], r.canned[1:]
	} else {
		r.passing++ // counted with the request, so that no one sees it idle
	}
	r.mu.Unlock()

	if canned != "" {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		if canned == hookHang {
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			io.Copy(io.Discard, buf) // until the module gives up and closes
			return
		}
		io.WriteString(conn, canned)
		return
	}
	out, _ := http.NewRequest(req.Method, "http://"+r.backend+req.URL.RequestURI(), bytes.NewReader(body))
	out.Header = req.Header.Clone()
	res, err := r.client.Do(out)
	r.mu.Lock()
	r.passing--
	if err == nil {
		r.forwarded++
	}
	r.mu.Unlock()
	if err != nil {
		// p2http is down: close without an answer.
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	defer res.Body.Close()
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(res.StatusCode)
	io.Copy(w, res.Body)
}

// forwardedCount is the number of requests p2http answered, and whether
// none is waiting for its answer.
func (r *hookRecorder) forwardedCount() (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.forwarded, r.passing == 0
}

func (r *hookRecorder) requests() []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookRequest(nil), r.reqs...)
}

// waitPushes waits until n requests went through and returns them.
func (r *hookRecorder) waitPushes(t *testing.T, n int) []hookRequest {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if reqs := r.requests(); len(reqs) >= n {
			return reqs
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hookRecorder saw %d requests, want %d", len(r.requests()), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestProsodyHTTPHookSmacks covers the path most pushes of Conversations
// take: the phone's session hibernates (XEP-0198) instead of ending, a
// message is queued in it, and mod_cloud_notify pushes from the smacks
// queue. The module must push over HTTP and then give the session back its
// normal smacks timeout, as mod_cloud_notify does after an XMPP push.
func TestProsodyHTTPHookSmacks(t *testing.T) {
	const androidID = "hooksmacks012345"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A short smacks timeout, against mod_cloud_notify's 72 hours of
	// extended hibernation until the first push.
	s, rec := hookStart(t, "\tsmacks_hibernation_time = 3\n")
	reg := hookRegister(t, s.api, hookAPIToken, androidID, "fcm-token-smacks")

	phone := hookDialSmacks(t, s.srv, "alice", "alice-pw")
	phone.enablePush(t, reg)
	phone.drop()
	waitServerLog(t, s.srv, "Session going into hibernation")
	if n := len(rec.requests()); n != 0 {
		t.Fatalf("hibernation with nothing unacked pushed %d times", n)
	}

	s.message(ctx, "while alice hibernates")
	msgs := hookWaitFCM(t, s, 1)
	m := msgs[0].FCMMessage()
	if m.Token != "fcm-token-smacks" || m.Android.Priority != "high" {
		t.Fatalf("FCM message %s, want a high-priority push to fcm-token-smacks", msgs[0].Body)
	}
	hookCheckPush(t, rec.waitPushes(t, 1)[0], reg, hookAPIToken, true)
	waitServerLog(t, s.srv, "Push was blocked by event handler: delivered to p2http over HTTP")
	pushedAt := time.Now()
	// The first push ended the extended hibernation: the session dies after
	// smacks_hibernation_time, not after push_max_hibernation_timeout.
	waitServerLog(t, s.srv, "Destroying session for hibernating too long")
	if d := time.Since(pushedAt); d > 20*time.Second {
		t.Fatalf("the hibernating session lived %v after the first push", d)
	}
}

// hookSmacksClient is a raw XMPP client that enables stream management with
// resumption, so that Prosody hibernates its session when the connection
// drops.
type hookSmacksClient struct {
	conn net.Conn
	br   *bufio.Reader
	dec  *xml.Decoder
	t    *testing.T
}

type hookElement struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Inner   string     `xml:",innerxml"`
}

func (e hookElement) attr(name string) string {
	for _, a := range e.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func hookDialSmacks(t *testing.T, srv *xmppserver.Server, user, password string) *hookSmacksClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", srv.C2SAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &hookSmacksClient{conn: conn, br: bufio.NewReader(conn), t: t}
	c.open(srv.Domain)
	c.expect("features")
	c.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password)) + `</auth>`)
	c.expect("success")
	c.open(srv.Domain)
	c.expect("features")
	c.write(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>phone</resource></bind></iq>`)
	if e := c.expect("iq"); e.attr("type") != "result" {
		t.Fatalf("bind: %s", e.Inner)
	}
	c.write(`<enable xmlns='urn:xmpp:sm:3' resume='true'/>`)
	if e := c.expect("enabled"); e.attr("resume") != "true" && e.attr("resume") != "1" {
		t.Fatalf("stream management enabled without resumption: %+v", e)
	}
	return c
}

// enablePush enables push and acknowledges the answer, so that nothing is
// left unacked when the connection drops.
func (c *hookSmacksClient) enablePush(t *testing.T, r registration) {
	t.Helper()
	c.write(`<iq type='set' id='push1'><enable xmlns='urn:xmpp:push:0' jid='` + r.jid + `' node='` + r.node + `'>` +
		`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>` +
		`<field var='secret'><value>` + r.secret + `</value></field></x></enable></iq>`)
	if e := c.expect("iq"); e.attr("type") != "result" || e.attr("id") != "push1" {
		t.Fatalf("enable: %+v", e)
	}
	c.write(`<a xmlns='urn:xmpp:sm:3' h='1'/>`)
}

// drop closes the TCP connection without closing the stream, as a phone
// losing its network does.
func (c *hookSmacksClient) drop() { c.conn.Close() }

func (c *hookSmacksClient) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

// open (re)starts the stream and reads the server's stream header.
func (c *hookSmacksClient) open(domain string) {
	c.t.Helper()
	c.write(`<?xml version='1.0'?><stream:stream to='` + domain + `' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`)
	c.dec = xml.NewDecoder(c.br)
	for {
		tok, err := c.dec.Token()
		if err != nil {
			c.t.Fatalf("reading the stream header: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "stream" {
			return
		}
	}
}

// expect reads the next top-level element, skipping ack requests, and
// fails unless it is called name.
func (c *hookSmacksClient) expect(name string) hookElement {
	c.t.Helper()
	for {
		tok, err := c.dec.Token()
		if err != nil {
			c.t.Fatalf("waiting for <%s>: %v", name, err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		var e hookElement
		if err := c.dec.DecodeElement(&e, &se); err != nil {
			c.t.Fatalf("reading <%s>: %v", se.Name.Local, err)
		}
		if e.XMLName.Local == "r" {
			continue
		}
		if e.XMLName.Local != name {
			c.t.Fatalf("got <%s>%s, want <%s>", e.XMLName.Local, e.Inner, name)
		}
		return e
	}
}

// TestProsodyHTTPHookApps: a registration enabled with an app's address
// (here written with an upper-case letter, as a client might) is pushed over
// HTTP with that app, normalised, and reaches that app's FCM project only;
// the bare address's registration is sent without app and reaches the
// default project.
func TestProsodyHTTPHookApps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, rec := hookStartApps(t, "", []string{"quicksy"})
	res := hookCall(t, s.api+"/v1/register", hookAPIToken,
		`{"app":"quicksy","service":"fcm","account":"alice@example.org","device_id":"hook-q","token":"quicksy-hook-token"}`)
	var q struct{ JID, Node, Secret string }
	if err := json.NewDecoder(res.Body).Decode(&q); err != nil || res.StatusCode != 201 || q.JID != "quicksy@"+pushJID {
		t.Fatalf("register with quicksy: %d %+v %v", res.StatusCode, q, err)
	}
	res.Body.Close()
	def := hookRegister(t, s.api, hookAPIToken, "hook-d", "default-hook-token")
	alice := s.srv.Dial(ctx, t, "alice", "alice-pw")
	s.enablePush(ctx, alice, registration{jid: "Quicksy@" + pushJID, node: q.Node, secret: q.Secret})
	s.enablePush(ctx, alice, def)
	alice.Close(t)

	s.message(ctx, "wake both")
	pushes := rec.waitPushes(t, 2)
	apps := map[string]bool{}
	for _, p := range pushes {
		var body map[string]any
		if err := json.Unmarshal(p.body, &body); err != nil {
			t.Fatal(err)
		}
		app, _ := body["app"].(string)
		apps[app] = true
		if body["node"] == def.node && app != "" {
			t.Fatalf("the bare address's push carried app %q", app)
		}
		if body["node"] == q.Node && app != "quicksy" {
			t.Fatalf("the app address's push carried app %q, want quicksy", app)
		}
	}
	if !apps["quicksy"] || !apps[""] {
		t.Fatalf("pushes %v, want one for quicksy and one without app", apps)
	}
	qm := s.waitProject(s.appFCM["quicksy"], 1, 20*time.Second)
	dm := s.waitFCM(1, 20*time.Second)
	if len(qm) != 1 || len(dm) != 1 ||
		qm[0].FCMMessage().Token != "quicksy-hook-token" ||
		dm[0].FCMMessage().Token != "default-hook-token" {
		t.Fatalf("quicksy's project got %d, the default one %d messages", len(qm), len(dm))
	}
}
