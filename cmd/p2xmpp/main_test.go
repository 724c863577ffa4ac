package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/apps"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/fcm"
	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/internal/testutil"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/stack"
)

const (
	compJID    = "push.example.org"
	compSecret = "component-secret-4711"
	apiToken   = "p2xmpp-api-token-0815"
	fcmToken   = "fGx3dKq1R0eT:APA91bHk3x_Example-Token_ZZZZ"
	androidID  = "a1b2c3d4e5f60718"
	aliceFull  = "alice@example.com/Conversations.Xj7q"
)

// p2httpServer is a real p2http over SQLite with a fake FCM behind the real
// FCM sender.
type p2httpServer struct {
	URL string
	FCM *fake.FCM
}

func startP2HTTP(t *testing.T, jid string) *p2httpServer {
	t.Helper()
	store := dbtest.SQLite(t)
	f := fake.NewFCM()
	t.Cleanup(f.Close)
	keys, err := keyring.New("test-server-key-0123456789abcdef0123")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := fcm.New(context.Background(), fcm.Config{CredentialsJSON: f.Credentials, Endpoint: f.Endpoint(), HTTPClient: f.Client})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(stack.New(stack.Config{JID: jid, Store: store, Database: store, Keyring: keys,
		Senders: apps.Given(map[p2http.Service]p2http.Sender{p2http.FCM: sender}, nil),
		Tokens:  []string{apiToken}, Version: "test", Logger: log}).Handler)
	t.Cleanup(srv.Close)
	return &p2httpServer{URL: srv.URL, FCM: f}
}

// running is p2xmpp's run in a goroutine.
type running struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan error
	Logs   *testutil.LogBuffer
}

// startP2XMPP runs p2xmpp against the component server and p2http, at
// debug level: the checks for leaked secrets then see every answered line.
func startP2XMPP(t *testing.T, server, apiURL, secret string) *running {
	t.Helper()
	env := map[string]string{
		"P2XMPP_JID":       compJID,
		"P2XMPP_SECRET":    secret,
		"P2XMPP_SERVER":    server,
		"P2XMPP_API":       apiURL,
		"P2XMPP_API_TOKEN": apiToken,
		"P2XMPP_LOG_LEVEL": "debug",
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: t, cancel: cancel, done: make(chan error, 1), Logs: &testutil.LogBuffer{}}
	go func() { r.done <- run(ctx, nil, func(k string) string { return env[k] }, r.Logs) }()
	t.Cleanup(func() { r.Stop(10 * time.Second) })
	return r
}

// Stop cancels run and waits for it to return, at most d.
func (r *running) Stop(d time.Duration) error {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(d):
		r.t.Fatalf("run did not return within %v after the shutdown", d)
		return nil
	}
}

// count counts the log lines holding msg.
func (r *running) count(msg string) int { return strings.Count(r.Logs.String(), msg) }

// assertLogsClean fails when the log holds any of the strings, or nothing at
// all.
func (r *running) assertLogsClean(secrets ...string) {
	r.t.Helper()
	testutil.AssertNoLeaks(r.t, "p2xmpp's log", r.Logs.String(), secrets...)
}

func registerStanza(id string) string {
	return fmt.Sprintf(`<iq type='set' to='push.example.org' id='%s' from='%s'><command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm' action='execute'><x xmlns='jabber:x:data' type='submit'><field var='token'><value>%s</value></field><field var='android-id'><value>%s</value></field></x></command></iq>`,
		id, aliceFull, fcmToken, androidID)
}

func publishStanza(id, node, secret string) string {
	return fmt.Sprintf(`<iq type='set' from='example.com' to='push.example.org' id='%s'>
 <pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='%s'><item>
  <notification xmlns='urn:xmpp:push:0'>
   <x xmlns='jabber:x:data' type='form'>
    <field type='hidden' var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>
    <field type='text-single' var='message-count'><value>1</value></field>
    <field type='text-single' var='pending-subscription-count'/>
    <field type='jid-single' var='last-message-sender'/>
    <field type='text-single' var='last-message-body'><value>New Message!</value></field>
   </x></notification></item></publish>
  <publish-options><x xmlns='jabber:x:data' type='submit'>
    <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>
    <field var='secret'><value>%s</value></field></x></publish-options>
 </pubsub></iq>`, id, node, secret)
}

const pingStanza = `<iq type='get' from='example.com' to='push.example.org' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>`

// register runs a registration over c and returns node and secret.
func register(t *testing.T, c *compConn, id string) (node, secret string) {
	t.Helper()
	c.Send(registerStanza(id))
	r := c.Read(5 * time.Second)
	expectReply(t, r, "result", id, compJID, aliceFull)
	cmd := r.Child("command")
	x := cmd.Child("x")
	if cmd.Attr("status") != "completed" || x.Attr("type") != "result" || x.Field("jid") != compJID ||
		len(x.Field("node")) != 12 || len(x.Field("secret")) != 24 {
		t.Fatalf("register reply:\n%s", r.Raw)
	}
	return x.Field("node"), x.Field("secret")
}

func TestRoundTripOverTheWire(t *testing.T) {
	p2 := startP2HTTP(t, compJID)
	srv := newCompServer(t, compJID, compSecret)
	r := startP2XMPP(t, srv.addr, p2.URL, compSecret)
	c := srv.Accept(5 * time.Second)

	c.Send(fmt.Sprintf(pingStanza, "ping-1"))
	expectReply(t, c.Read(5*time.Second), "result", "ping-1", compJID, "example.com")

	node, secret := register(t, c, "reg-1")
	// An ejabberd-style id, with '/', '=' and '-', comes back verbatim.
	id := "rr-NGE1ZDJmNzQ/YjI=-1712345678-871/x=="
	c.Send(publishStanza(id, node, secret))
	expectReply(t, c.Read(5*time.Second), "result", id, compJID, "example.com")
	msgs := p2.FCM.Requests()
	if len(msgs) != 1 {
		t.Fatalf("FCM got %d requests", len(msgs))
	}
	if m := msgs[0].FCMMessage(); m.Token != fcmToken || m.Data.Account != p2http.DeviceHash("alice@example.com", androidID) {
		t.Fatalf("FCM message %s", msgs[0].Body)
	}

	// Messages and presences get no answer; the next IQ does.
	c.Send(`<message from='bob@example.com/r' to='push.example.org' id='m1'><body>hi</body></message><presence from='bob@example.com/r' to='push.example.org'/>`)
	c.Send(fmt.Sprintf(pingStanza, "ping-2"))
	expectReply(t, c.Read(5*time.Second), "result", "ping-2", compJID, "example.com")

	if err := r.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.ExpectClosed(5 * time.Second)
	if r.count("connected to the XMPP server") != 1 {
		t.Fatalf("log:\n%s", r.Logs)
	}
	// P2XMPP_LOG_LEVEL=debug reached the logger: each of the four IQs has
	// its line.
	if n := r.count("msg=answered"); n != 4 {
		t.Fatalf("%d answered lines, want 4:\n%s", n, r.Logs)
	}
	r.assertLogsClean(compSecret, apiToken, fcmToken, secret, "alice@example.com", "New Message!")
}

func TestWrongSecret(t *testing.T) {
	srv := newCompServer(t, compJID, "the-server's-secret")
	r := startP2XMPP(t, srv.addr, "http://127.0.0.1:1", compSecret)
	start := time.Now()
	for srv.attempts.Load() < 4 {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%d handshakes in 5 s: the backoff exceeds 1 s", srv.attempts.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := r.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if n := r.count("cannot connect to the XMPP server"); n != 1 {
		t.Fatalf("the failure was logged %d times, want once:\n%s", n, r.Logs)
	}
	if !strings.Contains(r.Logs.String(), "not-authorized") {
		t.Fatalf("the log does not say why:\n%s", r.Logs)
	}
	r.assertLogsClean(compSecret, "the-server's-secret")
}

func TestReconnect(t *testing.T) {
	p2 := startP2HTTP(t, compJID)
	srv := newCompServer(t, compJID, compSecret)
	r := startP2XMPP(t, srv.addr, p2.URL, compSecret)
	c := srv.Accept(5 * time.Second)
	node, secret := register(t, c, "reg-1")

	// The server drops the connection: p2xmpp is back within the backoff.
	c.c.Close()
	dropped := time.Now()
	c = srv.Accept(5 * time.Second)
	if d := time.Since(dropped); d > 1500*time.Millisecond {
		t.Fatalf("reconnected after %v", d)
	}
	c.Send(publishStanza("p1", node, secret))
	expectReply(t, c.Read(5*time.Second), "result", "p1", compJID, "example.com")

	// The server closes its stream (a restart): same.
	c.Send(`</stream:stream>`)
	c = srv.Accept(5 * time.Second)

	// The server is away for a while, then back.
	srv.Stop()
	c.c.Close()
	time.Sleep(2500 * time.Millisecond)
	back := time.Now()
	srv.Start()
	c = srv.Accept(5 * time.Second)
	if d := time.Since(back); d > 1500*time.Millisecond {
		t.Fatalf("reconnected %v after the server came back", d)
	}
	c.Send(publishStanza("p2", node, secret))
	expectReply(t, c.Read(5*time.Second), "result", "p2", compJID, "example.com")

	logs := r.Logs.String()
	for msg, want := range map[string]int{
		`msg="connected to the XMPP server"`:      4,
		`msg="disconnected from the XMPP server"`: 3,
		`msg="reconnecting to the XMPP server"`:   3,
		// Several refused attempts while the server was away: one line.
		`msg="cannot connect to the XMPP server; retrying"`: 1,
	} {
		if n := strings.Count(logs, msg); n != want {
			t.Errorf("%s logged %d times, want %d", msg, n, want)
		}
	}
	if t.Failed() {
		t.Log(logs)
	}
}

// p2xmpp connects and stays connected while p2http is down, answering wait.
func TestWithoutP2HTTP(t *testing.T) {
	dead := "http://" + testutil.FreeAddr(t)
	srv := newCompServer(t, compJID, compSecret)
	r := startP2XMPP(t, srv.addr, dead, compSecret)
	c := srv.Accept(5 * time.Second)
	for i := range 3 {
		id := fmt.Sprint("p", i)
		c.Send(publishStanza(id, "eKxTS5n3bOe0", "KK4+H5WMfpRG/2zCbuKq6wpX"))
		st := c.Read(5 * time.Second)
		expectReply(t, st, "error", id, compJID, "example.com")
		expectCondition(t, st, "wait", "remote-server-timeout")
	}
	c.Send(registerStanza("reg"))
	st := c.Read(5 * time.Second)
	expectReply(t, st, "error", "reg", compJID, aliceFull)
	expectCondition(t, st, "wait", "remote-server-timeout")
	c.Send(fmt.Sprintf(pingStanza, "ping"))
	expectReply(t, c.Read(5*time.Second), "result", "ping", compJID, "example.com")
	if srv.attempts.Load() != 1 {
		t.Fatalf("%d connections; p2xmpp must stay connected", srv.attempts.Load())
	}
	if n := r.count("p2http is unreachable"); n != 1 {
		t.Fatalf("unreachable logged %d times:\n%s", n, r.Logs)
	}
}

// p2http answers with another jid: every request gets a wait error.
func TestJIDMismatchOverTheWire(t *testing.T) {
	p2 := startP2HTTP(t, "p2.example.net")
	srv := newCompServer(t, compJID, compSecret)
	r := startP2XMPP(t, srv.addr, p2.URL, compSecret)
	c := srv.Accept(5 * time.Second)
	c.Send(registerStanza("reg"))
	st := c.Read(5 * time.Second)
	expectReply(t, st, "error", "reg", compJID, aliceFull)
	expectCondition(t, st, "wait", "internal-server-error")
	if n := r.count("differs from this component"); n != 1 {
		t.Fatalf("mismatch logged %d times:\n%s", n, r.Logs)
	}
}

// A slow push does not hold up the stanzas behind it.
func TestSlowPushDoesNotBlock(t *testing.T) {
	p2 := startP2HTTP(t, compJID)
	srv := newCompServer(t, compJID, compSecret)
	startP2XMPP(t, srv.addr, p2.URL, compSecret)
	c := srv.Accept(5 * time.Second)
	node, secret := register(t, c, "reg")
	p2.FCM.SetLatency(1500 * time.Millisecond)
	c.Send(publishStanza("slow", node, secret))
	c.Send(fmt.Sprintf(pingStanza, "ping"))
	start := time.Now()
	expectReply(t, c.Read(5*time.Second), "result", "ping", compJID, "example.com")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the ping waited %v behind the push", d)
	}
	expectReply(t, c.Read(5*time.Second), "result", "slow", compJID, "example.com")
}

// Bad stanzas get a stanza error and leave the connection up.
func TestBadStanzasKeepTheLink(t *testing.T) {
	p2 := startP2HTTP(t, compJID)
	srv := newCompServer(t, compJID, compSecret)
	startP2XMPP(t, srv.addr, p2.URL, compSecret)
	c := srv.Accept(5 * time.Second)
	tests := []struct {
		stanza, id, to, typ, cond string
	}{
		{`<iq type='set' from='alice@example.com/r' to='push.example.org' id='big'><command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm'><x xmlns='jabber:x:data'>` +
			strings.Repeat(`<field var='f'><value>`+strings.Repeat("v", 2000)+`</value></field>`, 400) + `</x></command></iq>`, "big", "alice@example.com/r", "modify", "policy-violation"},
		{`<iq type='set' from='alice@example.com/r' to='push.example.org' id='noform'><command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm'/></iq>`, "noform", "alice@example.com/r", "modify", "bad-request"},
		{`<iq type='set' from='@@' to='push.example.org' id='badjid'><command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm'><x xmlns='jabber:x:data'><field var='token'><value>t</value></field><field var='android-id'><value>a</value></field></x></command></iq>`, "badjid", "@@", "modify", "bad-request"},
		{`<iq type='get' from='example.com' to='push.example.org' id='nopayload'/>`, "nopayload", "example.com", "modify", "bad-request"},
		{`<iq type='set' from='example.com' to='push.example.org' id='nonode'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish><item/></publish></pubsub></iq>`, "nonode", "example.com", "auth", "forbidden"},
		{`<iq type='get' from='example.com' to='push.example.org' id='vcard'><vCard xmlns='vcard-temp'/></iq>`, "vcard", "example.com", "cancel", "service-unavailable"},
	}
	for _, tt := range tests {
		c.Send(tt.stanza)
		st := c.Read(5 * time.Second)
		expectReply(t, st, "error", tt.id, compJID, tt.to)
		expectCondition(t, st, tt.typ, tt.cond)
	}
	c.Send(`<iq type='get' to='push.example.org' id='nofrom'><ping xmlns='urn:xmpp:ping'/></iq>`)
	c.Send(fmt.Sprintf(pingStanza, "ping"))
	expectReply(t, c.Read(5*time.Second), "result", "ping", compJID, "example.com")
	if srv.attempts.Load() != 1 {
		t.Fatalf("%d connections: a bad stanza dropped the link", srv.attempts.Load())
	}
}

// A shutdown answers the requests in flight before closing the stream.
func TestGracefulShutdown(t *testing.T) {
	p2 := startP2HTTP(t, compJID)
	srv := newCompServer(t, compJID, compSecret)
	r := startP2XMPP(t, srv.addr, p2.URL, compSecret)
	c := srv.Accept(5 * time.Second)
	node, secret := register(t, c, "reg")
	p2.FCM.SetLatency(time.Second)
	c.Send(publishStanza("inflight", node, secret))
	time.Sleep(200 * time.Millisecond)
	stopped := make(chan error, 1)
	go func() { stopped <- r.Stop(15 * time.Second) }()
	expectReply(t, c.Read(5*time.Second), "result", "inflight", compJID, "example.com")
	c.ExpectClosed(5 * time.Second)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

func TestConfig(t *testing.T) {
	base := map[string]string{"P2XMPP_JID": compJID, "P2XMPP_SECRET": "s"}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string // the variable named, "" for success
		check   func(*config) bool
	}{
		{"defaults", nil, nil, "", func(c *config) bool {
			return c.Server == "127.0.0.1:5347" && c.API == "http://127.0.0.1:8080" && c.APIToken == "" && c.LogFormat == "text" &&
				c.LogLevel == slog.LevelInfo
		}},
		{"environment", map[string]string{"P2XMPP_SERVER": "xmpp.example.org:5275", "P2XMPP_API": "https://p2.example.org", "P2XMPP_API_TOKEN": "tok"}, nil, "", func(c *config) bool {
			return c.Server == "xmpp.example.org:5275" && c.API == "https://p2.example.org" && c.APIToken == "tok"
		}},
		{"flags override", map[string]string{"P2XMPP_SERVER": "a:1"}, []string{"-server", "b:2", "-jid", "p.example.net", "-api", "http://h:9"}, "", func(c *config) bool {
			return c.Server == "b:2" && c.JID == "p.example.net" && c.API == "http://h:9"
		}},
		{"no jid", map[string]string{"P2XMPP_JID": ""}, nil, "P2XMPP_JID", nil},
		{"user jid", map[string]string{"P2XMPP_JID": "alice@example.org"}, nil, "P2XMPP_JID", nil},
		{"no secret", map[string]string{"P2XMPP_SECRET": ""}, nil, "P2XMPP_SECRET", nil},
		{"bad server", map[string]string{"P2XMPP_SERVER": "localhost"}, nil, "P2XMPP_SERVER", nil},
		{"bad port", map[string]string{"P2XMPP_SERVER": "localhost:99999"}, nil, "P2XMPP_SERVER", nil},
		{"bad api", map[string]string{"P2XMPP_API": "127.0.0.1:8080"}, nil, "P2XMPP_API", nil},
		{"bad log format", map[string]string{"P2XMPP_LOG_FORMAT": "xml"}, nil, "P2XMPP_LOG_FORMAT", nil},
		{"log level debug", map[string]string{"P2XMPP_LOG_LEVEL": "DEBUG"}, nil, "", func(c *config) bool { return c.LogLevel == slog.LevelDebug }},
		{"log level warn", map[string]string{"P2XMPP_LOG_LEVEL": "warn"}, nil, "", func(c *config) bool { return c.LogLevel == slog.LevelWarn }},
		{"log level error", map[string]string{"P2XMPP_LOG_LEVEL": "Error"}, nil, "", func(c *config) bool { return c.LogLevel == slog.LevelError }},
		{"log level flag", map[string]string{"P2XMPP_LOG_LEVEL": "error"}, []string{"-log-level", "info"}, "", func(c *config) bool { return c.LogLevel == slog.LevelInfo }},
		{"bad log level", map[string]string{"P2XMPP_LOG_LEVEL": "verbose"}, nil, "P2XMPP_LOG_LEVEL", nil},
		{"bad log level flag", nil, []string{"-log-level", "warning"}, "configuration: -log-level:", nil},
		{"bad server flag", map[string]string{"P2XMPP_SERVER": "a:1"}, []string{"-server", "localhost"}, "configuration: -server:", nil},
		{"no secret flag", nil, []string{"-secret", "x"}, "-secret", nil},
		{"stray argument", nil, []string{"-jid", "push.example.org", "extra"}, "unexpected argument 3", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := loadConfig(tt.args, func(k string) string { return env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Fatalf("%+v", c)
			}
		})
	}
	// run refuses an invalid configuration at once.
	err := run(context.Background(), nil, func(string) string { return "" }, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "P2XMPP_JID") {
		t.Fatalf("run: %v", err)
	}
}

// A shutdown does not wait for ever: past the grace, the calls on p2http are
// cancelled and their requests answered with a wait error.
func TestShutdownCancelsSlowRequests(t *testing.T) {
	defer func(g time.Duration) { drainGrace = g }(drainGrace)
	drainGrace = 300 * time.Millisecond
	p2 := startP2HTTP(t, compJID)
	srv := newCompServer(t, compJID, compSecret)
	r := startP2XMPP(t, srv.addr, p2.URL, compSecret)
	c := srv.Accept(5 * time.Second)
	node, secret := register(t, c, "reg")
	p2.FCM.SetLatency(5 * time.Second)
	c.Send(publishStanza("slow", node, secret))
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- r.Stop(15 * time.Second) }()
	st := c.Read(5 * time.Second)
	expectReply(t, st, "error", "slow", compJID, "example.com")
	if e := st.Child("error"); e.Attr("type") != "wait" {
		t.Fatalf("not a wait error:\n%s", st.Raw)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("answered %v after the shutdown began", d)
	}
	c.ExpectClosed(5 * time.Second)
	c.Send(`</stream:stream>`) // as a server answers
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
}
