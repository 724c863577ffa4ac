package main

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/testutil"
)

// compServer is the server side of XEP-0114, as Prosody and ejabberd speak
// it: it accepts a connection, reads the component's stream header, sends
// its own with a stream id, checks <handshake/> = hex(sha1(id + secret)) and
// answers <handshake/>, or a not-authorized stream error and a closed
// stream. Then the test exchanges stanzas over the connection.
type compServer struct {
	t      *testing.T
	jid    string
	secret string

	mu       sync.Mutex
	ln       net.Listener
	addr     string
	attempts atomic.Int64 // handshakes tried
	conns    chan *compConn
}

func newCompServer(t *testing.T, jid, secret string) *compServer {
	t.Helper()
	s := &compServer{t: t, jid: jid, secret: secret, conns: make(chan *compConn, 16)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.listen(ln)
	t.Cleanup(s.Stop)
	return s
}

func (s *compServer) listen(ln net.Listener) {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.handshake(c)
		}
	}()
}

// Stop closes the listener: connection attempts are refused.
func (s *compServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
}

// Start listens again on the same address.
func (s *compServer) Start() {
	s.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("listen again on %s: %v", s.addr, err)
	}
	s.listen(ln)
}

var streamCount atomic.Int64

func (s *compServer) handshake(c net.Conn) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	dec := xml.NewDecoder(c)
	start, err := nextStart(dec)
	if err != nil || start.Name != (xml.Name{Space: "http://etherx.jabber.org/streams", Local: "stream"}) {
		c.Close()
		return
	}
	ns, to := "", ""
	for _, a := range start.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			ns = a.Value
		case a.Name.Space == "" && a.Name.Local == "to":
			to = a.Value
		}
	}
	id := fmt.Sprintf("stream-%d", streamCount.Add(1))
	fmt.Fprintf(c, `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='%s' from='%s'>`, id, s.jid)
	if ns != "jabber:component:accept" || to != s.jid {
		fmt.Fprint(c, `<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`)
		c.Close()
		return
	}
	hs, err := nextStart(dec)
	if err != nil || hs.Name.Local != "handshake" {
		c.Close()
		return
	}
	var digest string
	if err := dec.DecodeElement(&digest, &hs); err != nil {
		c.Close()
		return
	}
	s.attempts.Add(1)
	sum := sha1.Sum([]byte(id + s.secret))
	if digest != hex.EncodeToString(sum[:]) {
		fmt.Fprint(c, `<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Invalid handshake</text></stream:error></stream:stream>`)
		c.Close()
		return
	}
	fmt.Fprint(c, `<handshake/>`)
	c.SetDeadline(time.Time{})
	s.conns <- &compConn{t: s.t, c: c, dec: dec}
}

// Accept waits for the next connection that passed the handshake.
func (s *compServer) Accept(d time.Duration) *compConn {
	s.t.Helper()
	select {
	case c := <-s.conns:
		s.t.Cleanup(func() { c.c.Close() })
		return c
	case <-time.After(d):
		s.t.Fatalf("no component connected within %v", d)
		return nil
	}
}

func nextStart(dec *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := dec.Token()
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.EndElement:
			return xml.StartElement{}, errEndOfStream
		}
	}
}

var errEndOfStream = errors.New("the component closed its stream")

// compConn is one authenticated component connection, server side.
type compConn struct {
	t   *testing.T
	c   net.Conn
	dec *xml.Decoder
}

// Send writes a stanza as the server routes it to the component.
func (c *compConn) Send(raw string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, raw); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// Read returns the next stanza the component sent.
func (c *compConn) Read(d time.Duration) *stanza {
	c.t.Helper()
	st, err := c.read(d)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return st
}

func (c *compConn) read(d time.Duration) (*stanza, error) {
	c.c.SetReadDeadline(time.Now().Add(d))
	start, err := nextStart(c.dec)
	if err != nil {
		return nil, err
	}
	st := &stanza{}
	if err := c.dec.DecodeElement(&st.Node, &start); err != nil {
		return nil, err
	}
	b, _ := xml.Marshal(st.Node)
	st.Raw = string(b)
	return st, nil
}

// ExpectClosed waits for the component's </stream:stream>.
func (c *compConn) ExpectClosed(d time.Duration) {
	c.t.Helper()
	st, err := c.read(d)
	if err != errEndOfStream {
		c.t.Fatalf("stream not closed by the component: %v %v", st, err)
	}
}

// stanza is a stanza the component sent, with its XML.
type stanza struct {
	testutil.Node
	Raw string
}

// expectReply checks the addressing and type of a reply.
func expectReply(t *testing.T, st *stanza, typ, id, from, to string) {
	t.Helper()
	if st.XMLName != (xml.Name{Space: "jabber:component:accept", Local: "iq"}) || st.Attr("type") != typ ||
		st.Attr("id") != id || st.Attr("from") != from || st.Attr("to") != to {
		t.Fatalf("want %s id=%q from=%q to=%q, got:\n%s", typ, id, from, to, st.Raw)
	}
}

// expectCondition checks an error reply's type and condition.
func expectCondition(t *testing.T, st *stanza, typ, cond string) {
	t.Helper()
	e := st.Child("error")
	if e.Attr("type") != typ || len(e.Nodes) == 0 || e.Nodes[0].XMLName.Local != cond {
		t.Fatalf("want %s/%s, got:\n%s", typ, cond, st.Raw)
	}
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
