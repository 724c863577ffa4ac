package xmppserver_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/p2http/p2http/internal/xmppserver"
)

const (
	domain     = "example.org"
	pushJID    = "push.example.org"
	compSecret = "s3cret"
	pushNode   = "eKxTS5n3bOe0"
	pushSecret = "KK4+H5WMfpRG/2zCbuKq6wpX"
)

func TestProsody(t *testing.T) {
	testServer(t, func(t *testing.T) *xmppserver.Server {
		return xmppserver.StartProsody(t, xmppserver.Options{
			Domain: domain, Component: pushJID, ComponentSecret: compSecret, PushMaxErrors: 1,
		})
	})
}

func TestEjabberd(t *testing.T) {
	testServer(t, func(t *testing.T) *xmppserver.Server {
		return xmppserver.StartEjabberd(t, xmppserver.Options{
			Domain: domain, Component: pushJID, ComponentSecret: compSecret,
		})
	})
}

// TestTwoInstancesAtOnce runs two instances of each server at the same
// time, to show that ports and node names do not collide.
func TestTwoInstancesAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	for _, start := range []func(testing.TB, xmppserver.Options) *xmppserver.Server{xmppserver.StartProsody, xmppserver.StartEjabberd} {
		a := start(t, xmppserver.Options{})
		b := start(t, xmppserver.Options{})
		if a.C2SAddr == b.C2SAddr || a.ComponentAddr == b.ComponentAddr {
			t.Fatalf("%s: instances share ports: %+v %+v", a.Kind, a, b)
		}
		a.Register(t, "carol", "pw")
		b.Register(t, "carol", "pw")
	}
}

func testServer(t *testing.T, start func(*testing.T) *xmppserver.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	began := time.Now()
	srv := start(t)
	t.Logf("%s started in %v (ports accepting after %v); c2s %s, component %s",
		srv.Kind, time.Since(began).Round(time.Millisecond), srv.StartDuration().Round(time.Millisecond), srv.C2SAddr, srv.ComponentAddr)

	began = time.Now()
	srv.Register(t, "alice", "alice-pw")
	srv.Register(t, "bob", "bob-pw")
	t.Logf("registered two users in %v", time.Since(began).Round(time.Millisecond))

	// (1) The component handshake.
	comp := dialComponent(ctx, t, srv)

	// (2) A client's IQ reaches the component, and the component's reply
	// reaches the client.
	alice := srv.Dial(ctx, t, "alice", "alice-pw")
	typ, reply := alice.SendIQ(ctx, `<iq type='get' to='`+pushJID+`'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	if typ != "result" || !strings.Contains(reply, "urn:xmpp:push:0") {
		t.Fatalf("disco#info to the component: %s %s", typ, reply)
	}
	iq := comp.next(ctx, t)
	if iq.Type != "get" || !strings.HasPrefix(iq.From, "alice@"+domain+"/") || !strings.Contains(iq.Raw, "disco#info") {
		t.Fatalf("component got %+v", iq)
	}

	// (3) The push path: alice enables push and goes offline, bob writes.
	typ, reply = alice.SendIQ(ctx, `<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='`+pushJID+`' node='`+pushNode+`'>`+
		`<x xmlns='jabber:x:data' type='submit'>`+
		`<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>`+
		`<field var='secret'><value>`+pushSecret+`</value></field></x></enable></iq>`)
	if typ != "result" {
		t.Fatalf("enable push: %s %s", typ, reply)
	}
	alice.Close(t)

	bob := srv.Dial(ctx, t, "bob", "bob-pw")
	bob.Send(ctx, t, `<message type='chat' to='alice@`+domain+`'><body>hello 1</body></message>`)
	push := comp.nextPush(ctx, t)
	t.Logf("%s push stanza, as received on the component stream:\n%s", srv.Kind, push.Raw)
	checkPush(t, push, srv)
	bob.Close(t)

	// (4) Restart the server: the component reconnects, and the push
	// registration survives.
	began = time.Now()
	srv.Stop(t)
	stopped := time.Since(began)
	comp.waitClosed(ctx, t)
	began = time.Now()
	srv.Start(t)
	t.Logf("%s stopped in %v, restarted in %v", srv.Kind, stopped.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	comp = dialComponent(ctx, t, srv)

	// (5) How the server treats error replies: "wait" keeps the
	// registration, "cancel" drops it (at once for ejabberd; after
	// push_max_errors = 1 for Prosody).
	bob = srv.Dial(ctx, t, "bob", "bob-pw")
	comp.setReply(&stanza.Error{Type: stanza.Wait, Condition: stanza.RecipientUnavailable})
	bob.Send(ctx, t, `<message type='chat' to='alice@`+domain+`'><body>hello 2</body></message>`)
	push = comp.nextPush(ctx, t)
	checkPush(t, push, srv)
	waitLog(ctx, t, srv, map[xmppserver.Kind]string{
		xmppserver.Prosody:  "NOT increasing error count",
		xmppserver.Ejabberd: "rejected notification for alice@" + domain + " (" + pushNode + ") temporarily",
	}[srv.Kind])

	comp.setReply(&stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
	bob.Send(ctx, t, `<message type='chat' to='alice@`+domain+`'><body>hello 3</body></message>`)
	push = comp.nextPush(ctx, t)
	checkPush(t, push, srv)
	waitLog(ctx, t, srv, map[xmppserver.Kind]string{
		xmppserver.Prosody:  "Disabling push notifications for identifier",
		xmppserver.Ejabberd: "disabling push",
	}[srv.Kind])

	comp.setReply(nil)
	bob.Send(ctx, t, `<message type='chat' to='alice@`+domain+`'><body>hello 4</body></message>`)
	if iq, ok := comp.nextWithin(3 * time.Second); ok {
		t.Fatalf("push after the registration was dropped: %s", iq.Raw)
	}
	bob.Close(t)
	logErrorLines(t, srv)
}

func checkPush(t *testing.T, push receivedIQ, srv *xmppserver.Server) {
	t.Helper()
	var p struct {
		Publish struct {
			Node string `xml:"node,attr"`
		} `xml:"pubsub>publish"`
		Options []field `xml:"pubsub>publish-options>x>field"`
	}
	if err := xml.Unmarshal([]byte(push.Raw), &p); err != nil {
		t.Fatalf("decoding push: %v", err)
	}
	opts := map[string]string{}
	for _, f := range p.Options {
		opts[f.Var] = f.Value
	}
	if push.Type != "set" || push.From != srv.Domain || push.To != srv.Component ||
		p.Publish.Node != pushNode || opts["secret"] != pushSecret ||
		opts["FORM_TYPE"] != "http://jabber.org/protocol/pubsub#publish-options" {
		t.Fatalf("unexpected push: %s", push.Raw)
	}
}

type field struct {
	Var   string `xml:"var,attr"`
	Value string `xml:"value"`
}

func waitLog(ctx context.Context, t *testing.T, srv *xmppserver.Server, substr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for !strings.Contains(srv.Logs(), substr) {
		select {
		case <-ctx.Done():
			t.Fatalf("%q not in the %s log", substr, srv.Kind)
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, l := range strings.Split(srv.Logs(), "\n") {
		if strings.Contains(l, substr) {
			t.Logf("%s log: %s", srv.Kind, l)
		}
	}
}

func logErrorLines(t *testing.T, srv *xmppserver.Server) {
	re := regexp.MustCompile(`(?i)\b(error|warn(ing)?|critical)\b`)
	var n int
	for _, l := range strings.Split(srv.Logs(), "\n") {
		if re.MatchString(l) && n < 30 {
			t.Logf("%s log (warning/error): %s", srv.Kind, l)
			n++
		}
	}
}

// teeConn records everything read from the connection.
type teeConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *teeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.buf.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *teeConn) received() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

type receivedIQ struct {
	Type, ID, From, To string
	// Raw is the stanza as the server sent it (exact bytes).
	Raw string
}

// testComponent is a minimal XEP-0114 component: it records the IQs it gets
// and answers each get/set with an empty result, or with the error set by
// setReply.
type testComponent struct {
	conn   *teeConn
	sess   *xmpp.Session
	iqs    chan receivedIQ
	closed chan error

	mu    sync.Mutex
	reply *stanza.Error
}

func dialComponent(ctx context.Context, t *testing.T, srv *xmppserver.Server) *testComponent {
	t.Helper()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", srv.ComponentAddr)
	if err != nil {
		t.Fatal(err)
	}
	conn := &teeConn{Conn: raw}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sess, err := component.NewSession(hctx, jid.MustParse(srv.Component), []byte(srv.ComponentSecret), conn)
	if err != nil {
		t.Fatalf("component handshake with %s: %v\nreceived: %s", srv.Kind, err, conn.received())
	}
	t.Logf("component handshake with %s succeeded", srv.Kind)
	c := &testComponent{conn: conn, sess: sess, iqs: make(chan receivedIQ, 16), closed: make(chan error, 1)}
	go func() { c.closed <- sess.Serve(c) }()
	t.Cleanup(func() {
		_ = sess.Close()
		_ = raw.Close()
	})
	return c
}

func (c *testComponent) setReply(e *stanza.Error) {
	c.mu.Lock()
	c.reply = e
	c.mu.Unlock()
}

// HandleXMPP implements xmpp.Handler. It never returns an error: that would
// end Serve and drop the connection.
func (c *testComponent) HandleXMPP(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if start.Name.Local != "iq" {
		return nil
	}
	// Drain the stanza so that the raw bytes are all in the buffer.
	if _, err := xmlstream.Copy(xmlstream.Discard(), r); err != nil {
		return nil
	}
	iq, err := stanza.NewIQ(*start)
	if err != nil {
		return nil
	}
	got := receivedIQ{Type: string(iq.Type), ID: iq.ID, From: iq.From.String(), To: iq.To.String()}
	got.Raw = findStanza(c.conn.received(), iq.ID)
	if iq.Type != stanza.GetIQ && iq.Type != stanza.SetIQ {
		c.iqs <- got
		return nil
	}

	c.mu.Lock()
	e := c.reply
	c.mu.Unlock()
	resp := stanza.IQ{ID: iq.ID, From: iq.To, To: iq.From, Type: stanza.ResultIQ}
	var payload xml.TokenReader
	switch {
	case e != nil && strings.Contains(got.Raw, "pubsub"):
		resp.Type = stanza.ErrorIQ
		payload = e.TokenReader()
	case strings.Contains(got.Raw, "disco#info"):
		payload = xmlstream.Wrap(xmlstream.MultiReader(
			xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "identity"}, Attr: []xml.Attr{
				{Name: xml.Name{Local: "category"}, Value: "pubsub"}, {Name: xml.Name{Local: "type"}, Value: "push"}}}),
			xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "feature"}, Attr: []xml.Attr{
				{Name: xml.Name{Local: "var"}, Value: "urn:xmpp:push:0"}}}),
		), xml.StartElement{Name: xml.Name{Space: "http://jabber.org/protocol/disco#info", Local: "query"}})
	}
	_, _ = xmlstream.Copy(r, resp.Wrap(payload))
	c.iqs <- got
	return nil
}

// findStanza returns the last <iq …> element in s whose id is id.
func findStanza(s, id string) string {
	for _, q := range []string{`id='` + id + `'`, `id="` + id + `"`} {
		i := strings.LastIndex(s, q)
		if i < 0 {
			continue
		}
		b := strings.LastIndex(s[:i], "<iq")
		e := strings.Index(s[i:], "</iq>")
		if b < 0 {
			continue
		}
		if e < 0 {
			// <iq …/>
			if e = strings.Index(s[i:], "/>"); e < 0 {
				continue
			}
			return s[b : i+e+2]
		}
		return s[b : i+e+len("</iq>")]
	}
	return ""
}

func (c *testComponent) next(ctx context.Context, t *testing.T) receivedIQ {
	t.Helper()
	select {
	case iq := <-c.iqs:
		return iq
	case err := <-c.closed:
		t.Fatalf("component connection ended: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatalf("component received nothing in 15 s")
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	return receivedIQ{}
}

func (c *testComponent) nextPush(ctx context.Context, t *testing.T) receivedIQ {
	t.Helper()
	for {
		iq := c.next(ctx, t)
		if strings.Contains(iq.Raw, "pubsub") {
			return iq
		}
		t.Logf("component: ignoring %s", iq.Raw)
	}
}

func (c *testComponent) nextWithin(d time.Duration) (receivedIQ, bool) {
	select {
	case iq := <-c.iqs:
		return iq, true
	case <-time.After(d):
		return receivedIQ{}, false
	}
}

func (c *testComponent) waitClosed(ctx context.Context, t *testing.T) {
	t.Helper()
	select {
	case err := <-c.closed:
		t.Logf("component connection ended with the server: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("component connection still open 10 s after the server stopped")
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
}

// LuaQuote escapes what would end or break a Lua string literal in
// Prosody's configuration.
func TestLuaQuote(t *testing.T) {
	for in, want := range map[string]string{
		"example.org":     `"example.org"`,
		`a"b\c`:           `"a\"b\\c"`,
		"line\nbreak\x7f": `"line\010break\127"`,
		"":                `""`,
	} {
		if got := xmppserver.LuaQuote(in); got != want {
			t.Errorf("LuaQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
