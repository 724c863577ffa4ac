package xmpp_test

import (
	"context"
	"encoding/xml"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/apns"
	"github.com/p2http/p2http/apps"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/fcm"
	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/internal/testutil"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/mock"
	"github.com/p2http/p2http/ratelimit"
	"github.com/p2http/p2http/stack"
	"github.com/p2http/p2http/xmpp"
)

const (
	compJID   = "push.example.org"
	apiToken  = "p2xmpp-test-api-token-0123456789"
	serverKey = "test-server-key-0123456789abcdef0123"
)

// env is a real p2http (API, relay, SQLite store, keyring, the real FCM and
// APNs senders talking to fake FCM and APNs servers) on a real TCP port, and
// a Component calling it over HTTP with the generated client.
type env struct {
	t       *testing.T
	Comp    *xmpp.Component
	FCM     *fake.FCM
	APNs    *fake.APNs
	AppFCM  map[string]*fake.FCM // the fake FCM project of each further app
	Store   *db.DB
	Logs    *testutil.LogBuffer // p2xmpp's log
	APILogs *testutil.LogBuffer // p2http's log

	handler http.Handler
	addr    string
	mu      sync.Mutex
	srv     *http.Server
}

type options struct {
	p2httpJID    string         // the jid p2http is configured with; default compJID
	token        string         // the token p2xmpp sends; default apiToken
	pushDeadline time.Duration  // p2http's push deadline; default relay's
	timeout      time.Duration  // p2xmpp's HTTP timeout; default api.Client's
	pushLimit    ratelimit.Rate // p2http's push rate limit per domain
	apps         []string       // further apps, each with FCM in its own fake project
}

func newEnv(t *testing.T, opt options) *env {
	t.Helper()
	if opt.p2httpJID == "" {
		opt.p2httpJID = compJID
	}
	if opt.token == "" {
		opt.token = apiToken
	}
	e := &env{t: t, Store: dbtest.SQLite(t), Logs: &testutil.LogBuffer{}, APILogs: &testutil.LogBuffer{}}
	e.FCM = fake.NewFCM()
	t.Cleanup(e.FCM.Close)
	e.APNs = fake.NewAPNs()
	t.Cleanup(e.APNs.Close)
	keys, err := keyring.New(serverKey)
	if err != nil {
		t.Fatal(err)
	}
	apiLog := slog.New(slog.NewTextHandler(e.APILogs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f, err := fcm.New(context.Background(), fcm.Config{CredentialsJSON: e.FCM.Credentials, Endpoint: e.FCM.Endpoint(), HTTPClient: e.FCM.Client})
	if err != nil {
		t.Fatal(err)
	}
	a, err := apns.New(apns.Config{Endpoint: e.APNs.Endpoint(), Topic: e.APNs.Topic, SigningKey: e.APNs.SigningKey,
		KeyID: e.APNs.KeyID, TeamID: e.APNs.TeamID, HTTPClient: e.APNs.Client})
	if err != nil {
		t.Fatal(err)
	}
	senders := map[p2http.Service]p2http.Sender{p2http.FCM: f, p2http.APNs: a}
	e.AppFCM = map[string]*fake.FCM{}
	appSenders := map[string]map[p2http.Service]p2http.Sender{}
	for _, app := range opt.apps {
		af := fake.NewFCMProject("p2http-" + app)
		t.Cleanup(af.Close)
		s, err := fcm.New(context.Background(), fcm.Config{CredentialsJSON: af.Credentials, Endpoint: af.Endpoint(), HTTPClient: af.Client})
		if err != nil {
			t.Fatal(err)
		}
		e.AppFCM[app] = af
		appSenders[app] = map[p2http.Service]p2http.Sender{p2http.FCM: s}
	}
	e.handler = stack.New(stack.Config{JID: opt.p2httpJID, Store: e.Store, Database: e.Store, Keyring: keys,
		Senders: apps.Given(senders, appSenders), PushDeadline: opt.pushDeadline, LimitPushDomain: opt.pushLimit,
		Tokens: []string{apiToken}, Version: "test", Logger: apiLog}).Handler
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	e.serve(ln)
	t.Cleanup(e.StopAPI)

	p2, err := api.NewClient(api.ClientConfig{BaseURL: "http://" + e.addr, Token: opt.token, Timeout: opt.timeout})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.Comp, err = xmpp.New(xmpp.Config{JID: compJID, Registrar: p2, Pusher: p2, Describer: p2, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// mockServices are in-memory services (package mock) for a Component:
// they register every device at mockNode and mockSecret, push anything,
// and describe an instance at compJID serving FCM and APNs. A test may
// replace any function.
type mockServices struct {
	mock.Registrar
	mock.Pusher
	mock.Describer
}

// The node and secret mockServices register every device at.
const (
	mockNode   = "eKxTS5n3bOe0"
	mockSecret = "KK4+H5WMfpRG/2zCbuKq6wpX"
)

// newMockEnv is a Component over mockServices, for the tests that check
// only the translation between stanzas and domain calls: no p2http, no
// database, no push services.
func newMockEnv(t *testing.T) (*env, *mockServices) {
	t.Helper()
	m := &mockServices{
		Registrar: mock.Registrar{
			RegisterFn: func(context.Context, p2http.RegisterRequest) (p2http.Registered, error) {
				return p2http.Registered{JID: compJID, Node: mockNode, Secret: mockSecret, Created: true}, nil
			},
			UnregisterFn: func(context.Context, p2http.UnregisterRequest) error { return nil },
			LookupFn: func(context.Context, string) (p2http.Registration, error) {
				return p2http.Registration{}, p2http.Errorf(p2http.ENOTFOUND, "no registration holds this node")
			},
		},
		Pusher: mock.Pusher{PushFn: func(context.Context, p2http.PushRequest) (p2http.PushResult, error) {
			return p2http.PushResult{Service: p2http.FCM, Priority: p2http.PriorityHigh}, nil
		}},
		Describer: mock.Describer{DescribeFn: mock.Info(p2http.Info{JID: compJID, Services: p2http.Services})},
	}
	e := &env{t: t, Logs: &testutil.LogBuffer{}, APILogs: &testutil.LogBuffer{}}
	log := slog.New(slog.NewTextHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	e.Comp, err = xmpp.New(xmpp.Config{JID: compJID, Registrar: &m.Registrar, Pusher: &m.Pusher, Describer: &m.Describer, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return e, m
}

func (e *env) serve(ln net.Listener) {
	srv := &http.Server{Handler: e.handler}
	e.mu.Lock()
	e.srv = srv
	e.mu.Unlock()
	go srv.Serve(ln)
}

// StopAPI stops p2http: its port refuses connections.
func (e *env) StopAPI() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv != nil {
		e.srv.Close()
		e.srv = nil
	}
}

// StartAPI starts p2http again on the same port.
func (e *env) StartAPI() {
	e.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", e.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		e.t.Fatalf("restart p2http on %s: %v", e.addr, err)
	}
	e.serve(ln)
}

// send hands the stanza, as a server writes it on the component stream, to
// the Component and returns the reply (nil when none).
func (e *env) send(raw string) *reply {
	e.t.Helper()
	st := parseStanza(e.t, raw)
	r := e.Comp.Handle(context.Background(), st)
	if r == nil {
		return nil
	}
	return parseReply(e.t, r.String())
}

// parseStanza reads raw as it arrives over a XEP-0114 link: inside a
// jabber:component:accept stream.
func parseStanza(t testing.TB, raw string) *xmpp.Stanza {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(streamHeader + raw))
	if _, err := d.Token(); err != nil {
		t.Fatal(err)
	}
	st, err := xmpp.ReadStanza(d)
	if err != nil {
		t.Fatalf("ReadStanza: %v\n%s", err, raw)
	}
	return st
}

const streamHeader = `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' from='push.example.org' id='s1'>`

// reply is a parsed reply, with its XML.
type reply struct {
	testutil.Node
	Raw string
}

func parseReply(t testing.TB, raw string) *reply {
	t.Helper()
	n, err := testutil.ParseNode(raw)
	if err != nil {
		t.Fatalf("reply is not XML: %v\n%s", err, raw)
	}
	return &reply{Node: n, Raw: raw}
}

// expectResult checks a result addressed back to the request.
func expectResult(t testing.TB, r *reply, id, from, to string) {
	t.Helper()
	if r == nil {
		t.Fatal("no reply")
	}
	if r.XMLName != (xml.Name{Space: xmpp.NSComponent, Local: "iq"}) || r.Attr("type") != "result" {
		t.Fatalf("not a result IQ:\n%s", r.Raw)
	}
	expectAddressed(t, r, id, from, to)
}

func expectAddressed(t testing.TB, r *reply, id, from, to string) {
	t.Helper()
	if r.Attr("id") != id || r.Attr("from") != from || r.Attr("to") != to {
		t.Fatalf("reply id=%q from=%q to=%q, want %q %q %q", r.Attr("id"), r.Attr("from"), r.Attr("to"), id, from, to)
	}
}

// expectError checks an error reply: addressing, type and condition.
func expectError(t testing.TB, r *reply, id, from, to, typ, cond string) {
	t.Helper()
	if r == nil {
		t.Fatalf("no reply, want %s/%s", typ, cond)
	}
	if r.Attr("type") != "error" {
		t.Fatalf("reply is not an error, want %s/%s:\n%s", typ, cond, r.Raw)
	}
	expectAddressed(t, r, id, from, to)
	e := r.Child("error")
	if got := e.Attr("type"); got != typ {
		t.Fatalf("error type %q, want %q:\n%s", got, typ, r.Raw)
	}
	if len(e.Nodes) == 0 || e.Nodes[0].XMLName != (xml.Name{Space: xmpp.NSStanzas, Local: cond}) {
		t.Fatalf("error condition is not %s:\n%s", cond, r.Raw)
	}
	if text := e.Child("text"); text.Text == "" {
		t.Fatalf("error without text:\n%s", r.Raw)
	}
}

// assertLogsClean fails when p2xmpp's log holds any of the strings, or
// nothing at all.
func (e *env) assertLogsClean(secrets ...string) {
	e.t.Helper()
	testutil.AssertNoLeaks(e.t, "p2xmpp's log", e.Logs.String(), secrets...)
}
