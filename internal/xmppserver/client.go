package xmppserver

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// Client is a real XMPP client logged in to a Server, playing a phone or a
// contact in end-to-end tests.
type Client struct {
	sess   *xmpp.Session
	served chan error
}

// Dial logs in as user (on Domain, or "name@domain" for a domain of
// Options.ExtraDomains) over plain TCP with SASL PLAIN and binds a resource
// of the server's choice. The session ends at test cleanup.
func (srv *Server) Dial(ctx context.Context, t testing.TB, user, password string) *Client {
	t.Helper()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", srv.C2SAddr)
	if err != nil {
		t.Fatal(err)
	}
	name, domain := srv.split(user)
	addr := jid.MustParse(name + "@" + domain)
	nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The Secure state bit tells mellium not to negotiate StartTLS and to
	// offer SASL on a plain connection (it is loopback).
	sess, err := xmpp.NewSession(nctx, addr.Domain(), addr, conn, xmpp.Secure,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
				xmpp.SASL("", password, sasl.Plain),
				xmpp.BindResource(),
			}}
		}))
	if err != nil {
		_ = conn.Close()
		t.Fatalf("logging in as %s on %s: %v", addr, srv.Kind, err)
	}
	c := &Client{sess: sess, served: make(chan error, 1)}
	go func() { c.served <- sess.Serve(nil) }()
	t.Cleanup(func() {
		_ = sess.Close()
		_ = conn.Close()
	})
	return c
}

// SendIQ sends an IQ written as XML (in jabber:client) and returns the
// reply's type and XML.
func (c *Client) SendIQ(ctx context.Context, raw string) (typ, reply string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.sess.SendIQ(ctx, parseXML(raw))
	if err != nil {
		return "send error", err.Error()
	}
	defer resp.Close()
	var b strings.Builder
	enc := xml.NewEncoder(&b)
	for {
		tok, err := resp.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "read error", err.Error()
		}
		if se, ok := tok.(xml.StartElement); ok && typ == "" {
			for _, a := range se.Attr {
				if a.Name.Local == "type" {
					typ = a.Value
				}
			}
		}
		_ = enc.EncodeToken(xml.CopyToken(tok))
	}
	_ = enc.Flush()
	return typ, b.String()
}

// Send sends a stanza written as XML (in jabber:client).
func (c *Client) Send(ctx context.Context, t testing.TB, raw string) {
	t.Helper()
	if err := c.sess.Send(ctx, parseXML(raw)); err != nil {
		t.Fatalf("sending %s: %v", raw, err)
	}
}

// JID returns the client's full JID.
func (c *Client) JID() jid.JID { return c.sess.LocalAddr() }

// Close ends the stream and waits until the server has closed its side, so
// that the server no longer counts the session.
func (c *Client) Close(t testing.TB) {
	t.Helper()
	_ = c.sess.Close()
	select {
	case <-c.served:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not close the client stream")
	}
	_ = c.sess.Conn().Close()
}

// parseXML turns XML text into tokens in the jabber:client namespace, with
// the xmlns attributes dropped (the encoder writes them from the names).
func parseXML(raw string) xml.TokenReader {
	d := xml.NewDecoder(strings.NewReader(raw))
	d.DefaultSpace = "jabber:client"
	return xmlstream.ReaderFunc(func() (xml.Token, error) {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			attrs := se.Attr[:0]
			for _, a := range se.Attr {
				if a.Name.Local == "xmlns" && a.Name.Space == "" {
					continue
				}
				attrs = append(attrs, a)
			}
			se.Attr = attrs
			return se, nil
		}
		return tok, nil
	})
}
