package xmppdoctor

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/checkup"
	"github.com/p2http/p2http/internal/testutil"
	"github.com/p2http/p2http/mock"
)

// The server ends of XEP-0114 no real server here can be brought to play
// on demand: Prosody's refusal of a second connection for a component
// (component_conflict_resolve "kick_new", its default), a listener that
// never answers, one that closes at once, and a server routing a request
// to the component while the doctor holds it.

const streamErrors = "urn:ietf:params:xml:ns:xmpp-streams"

// fakeServer listens on loopback and runs serve on every connection.
func fakeServer(t *testing.T, serve func(c net.Conn, dec *xml.Decoder)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				serve(c, xml.NewDecoder(c))
			}()
		}
	}()
	return ln.Addr().String()
}

// element is one element read by the fake server.
type element struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Inner   string     `xml:",innerxml"`
}

func (e *element) attr(name string) string {
	for _, a := range e.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// next reads the next start element: the stream header when decode is
// false, else the whole element. The end of the component's stream is
// io.EOF: fakeServer then closes the connection.
func next(dec *xml.Decoder, decode bool) (*element, error) {
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if ee, ok := tok.(xml.EndElement); ok && ee.Name.Local == "stream" {
			return nil, io.EOF
		}
		if se, ok := tok.(xml.StartElement); ok {
			e := &element{XMLName: se.Name, Attrs: se.Attr}
			if decode {
				err = dec.DecodeElement(e, &se)
			}
			return e, err
		}
	}
}

// accept reads the component's stream header, answers with stream id id,
// checks the handshake against secret and answers it; it reports whether
// the component is in.
func accept(c net.Conn, dec *xml.Decoder, secret string) bool {
	if _, err := next(dec, false); err != nil {
		return false
	}
	fmt.Fprintf(c, `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='s1' from='%s'>`, compJID)
	hs, err := next(dec, true)
	if err != nil || hs.XMLName.Local != "handshake" {
		return false
	}
	sum := sha1.Sum([]byte("s1" + compSecret))
	if strings.TrimSpace(hs.Inner) != hex.EncodeToString(sum[:]) {
		fmt.Fprintf(c, `<stream:error><not-authorized xmlns='%s'/></stream:error></stream:stream>`, streamErrors)
		return false
	}
	fmt.Fprint(c, `<handshake/>`)
	return true
}

// fakeConfig is a configuration whose p2http is never called: the mocks
// have no functions.
func fakeConfig(server string) Config {
	return Config{JID: compJID, Secret: compSecret, Server: server, API: "http://127.0.0.1:1",
		Registrar: &mock.Registrar{}, Pusher: &mock.Pusher{}, Describer: &mock.Describer{}, Timeout: time.Second}
}

func TestSecondConnectionRefused(t *testing.T) {
	// Prosody's default: the secret is checked, then a second connection
	// for a connected component is refused with conflict.
	conflict := fakeServer(t, func(c net.Conn, dec *xml.Decoder) {
		next(dec, false)
		fmt.Fprintf(c, `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='s1' from='%s'>`, compJID)
		next(dec, true)
		fmt.Fprintf(c, `<stream:error><conflict xmlns='%s'/><text xmlns='%s'>Component already connected</text></stream:error></stream:stream>`, streamErrors, streamErrors)
	})
	cfg := fakeConfig(conflict)
	cfg.Account = "alice@example.org"
	r := newReport()
	checkXMPP(context.Background(), cfg, r)
	expect(t, r, CheckHandshake, checkup.Warn, "accepted the component secret, but another connection holds push.example.org", "Component already connected",
		"fix:", "stop p2xmpp")
	expect(t, r, CheckDisco, checkup.Warn, "not checked: another connection holds the component")
	expect(t, r, CheckAccount, checkup.Warn, "not checked")
	if !r.OK {
		t.Fatalf("a held component failed the report:\n%s", text(r))
	}
}

func TestListenerFailures(t *testing.T) {
	silent := fakeServer(t, func(c net.Conn, dec *xml.Decoder) { next(dec, true) })
	closing := fakeServer(t, func(c net.Conn, dec *xml.Decoder) {})
	refused := testutil.FreeAddr(t)
	for _, tc := range []struct {
		server string
		holds  []string
	}{
		{silent, []string{"did not complete the XEP-0114 handshake within 1s"}},
		{closing, []string{"closed the connection during the XEP-0114 handshake"}},
		{refused, []string{"nothing listens at " + refused, "connection refused", "fix:", "P2XMPP_SERVER"}},
		{"nonexistent.invalid:5347", []string{"cannot connect to nonexistent.invalid:5347"}},
	} {
		r := newReport()
		began := time.Now()
		checkXMPP(context.Background(), fakeConfig(tc.server), r)
		expect(t, r, CheckHandshake, checkup.Fail, tc.holds...)
		if d := time.Since(began); d > 3*time.Second {
			t.Errorf("%s: the check took %v", tc.server, d)
		}
	}
}

// While the doctor holds the component, what the server routes to it is
// answered as p2xmpp answers it; a probe that gets no answer fails its
// check when the time is up.
func TestAnswersWhatArrives(t *testing.T) {
	got := make(chan *element, 8)
	addr := fakeServer(t, func(c net.Conn, dec *xml.Decoder) {
		if !accept(c, dec, compSecret) {
			return
		}
		fmt.Fprintf(c, `<iq type='get' id='ping-1' from='example.org' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>`, compJID)
		for {
			e, err := next(dec, true)
			if err != nil {
				return
			}
			got <- e
		}
	})
	r := newReport()
	checkXMPP(context.Background(), fakeConfig(addr), r)
	expect(t, r, CheckHandshake, checkup.OK)
	expect(t, r, CheckDisco, checkup.Fail, "a disco#info sent to push.example.org through the XMPP server got no answer within 1s")

	var pong *element
	probes := 0
	for len(got) > 0 {
		e := <-got
		switch {
		case e.attr("id") == "ping-1":
			pong = e
		case strings.HasPrefix(e.attr("id"), "doctor-") && strings.Contains(e.Inner, "disco#info"):
			probes++
			if e.attr("from") != compJID+"/"+doctorResource || e.attr("to") != compJID || e.attr("type") != "get" {
				t.Errorf("probe %v", e.Attrs)
			}
		}
	}
	if pong == nil || pong.attr("type") != "result" || pong.attr("from") != compJID || pong.attr("to") != "example.org" {
		t.Fatalf("the ping was answered %+v", pong)
	}
	// Sent again every resend, with a new id each time.
	if probes < 2 {
		t.Fatalf("%d probes sent in 1s", probes)
	}
}

// A link replaced while a check runs (Prosody's kick_old, when the running
// p2xmpp reconnects) leaves the check unfinished, a warning.
func TestLinkReplaced(t *testing.T) {
	addr := fakeServer(t, func(c net.Conn, dec *xml.Decoder) {
		if !accept(c, dec, compSecret) {
			return
		}
		next(dec, true)
		fmt.Fprintf(c, `<stream:error><conflict xmlns='%s'/><text xmlns='%s'>Replaced by a new connection</text></stream:error></stream:stream>`, streamErrors, streamErrors)
	})
	r := newReport()
	checkXMPP(context.Background(), fakeConfig(addr), r)
	expect(t, r, CheckHandshake, checkup.OK)
	expect(t, r, CheckDisco, checkup.Warn, "not finished", "a running p2xmpp took the component back", "fix:", "stop p2xmpp")
}
