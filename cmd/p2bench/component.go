package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// xmppComponent is a minimal XEP-0114 component connection for the load
// side: the load component that publishes, and the echo component that
// stands in for p2xmpp in the ceiling. It reads the stream with a small
// scanner that only finds the top-level elements and their attributes, and
// writes through one goroutine that batches what is queued, so that the
// load side spends little CPU per stanza and the comparison measures
// Prosody, p2xmpp and p2http.
type xmppComponent struct {
	domain string
	conn   net.Conn
	rd     stanzaReader

	mu      sync.Mutex
	pending []byte
	kick    chan struct{}
	done    chan struct{}
}

// dialComponent connects to Prosody's component port as domain.
func dialComponent(ctx context.Context, addr, domain, secret string) (*xmppComponent, error) {
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &xmppComponent{domain: domain, conn: conn, rd: stanzaReader{r: conn, buf: make([]byte, 64<<10)},
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.handshake(secret); err != nil {
		conn.Close()
		return nil, fmt.Errorf("component %s: %w", domain, err)
	}
	conn.SetDeadline(time.Time{})
	go c.writer()
	return c, nil
}

func (c *xmppComponent) handshake(secret string) error {
	_, err := fmt.Fprintf(c.conn, `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='%s'>`, xmlEscape(c.domain))
	if err != nil {
		return err
	}
	head, err := c.rd.streamHeader()
	if err != nil {
		return err
	}
	id := head.attr("id")
	if id == "" {
		return errors.New("the server's stream header has no id")
	}
	sum := sha1.Sum([]byte(id + secret))
	if _, err := fmt.Fprintf(c.conn, "<handshake>%s</handshake>", hex.EncodeToString(sum[:])); err != nil {
		return err
	}
	st, err := c.rd.next()
	if err != nil {
		return err
	}
	if st.name != "handshake" {
		return fmt.Errorf("handshake refused: %s", st.raw)
	}
	return nil
}

// send queues a stanza.
func (c *xmppComponent) send(b []byte) {
	c.mu.Lock()
	c.pending = append(c.pending, b...)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// writer writes what is queued, in as few writes as possible.
func (c *xmppComponent) writer() {
	var buf []byte
	for {
		select {
		case <-c.kick:
		case <-c.done:
			return
		}
		c.mu.Lock()
		buf, c.pending = c.pending, buf[:0]
		c.mu.Unlock()
		if _, err := c.conn.Write(buf); err != nil {
			// The reader sees the connection end and fails what waits.
			c.conn.Close()
			return
		}
	}
}

// close ends the stream and the connection.
func (c *xmppComponent) close() {
	select {
	case <-c.done:
		return
	default:
	}
	close(c.done)
	c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	c.conn.Write([]byte("</stream:stream>"))
	c.conn.Close()
}

// stanza is a top-level element of the stream: its name, the attributes of
// its start tag, and the whole element as read.
type stanza struct {
	name  string
	attrs []byte // the start tag's attributes, unparsed
	raw   []byte // the whole element; valid until the next read
}

// attr returns the value of attribute name of the start tag, unescaped
// for the five predefined entities.
func (s stanza) attr(name string) string {
	a := s.attrs
	for len(a) > 0 {
		eq := bytes.IndexByte(a, '=')
		if eq < 0 {
			return ""
		}
		key := string(bytes.TrimSpace(a[:eq]))
		rest := bytes.TrimLeft(a[eq+1:], " \t\r\n")
		if len(rest) == 0 || (rest[0] != '\'' && rest[0] != '"') {
			return ""
		}
		end := bytes.IndexByte(rest[1:], rest[0])
		if end < 0 {
			return ""
		}
		if key == name {
			return xmlUnescape(string(rest[1 : 1+end]))
		}
		a = rest[end+2:]
	}
	return ""
}

// stanzaReader splits an XMPP stream into top-level elements without
// building them: it tracks the nesting of tags only. It relies on what
// every XMPP server sends: well-formed XML without comments, CDATA or
// document type declarations inside the stream.
type stanzaReader struct {
	r        io.Reader
	buf      []byte
	off, end int
}

// fill reads more of the stream, growing the buffer when it is full.
func (s *stanzaReader) fill() error {
	if s.off > 0 {
		copy(s.buf, s.buf[s.off:s.end])
		s.end -= s.off
		s.off = 0
	}
	if s.end == len(s.buf) {
		if len(s.buf) >= 16<<20 {
			return errors.New("stanza larger than 16 MiB")
		}
		s.buf = append(s.buf, make([]byte, len(s.buf))...)
	}
	n, err := s.r.Read(s.buf[s.end:])
	s.end += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// streamHeader reads up to and including the server's stream header.
func (s *stanzaReader) streamHeader() (stanza, error) {
	for {
		b := s.buf[s.off:s.end]
		i := 0
		for {
			j := bytes.IndexByte(b[i:], '<')
			if j < 0 {
				break
			}
			i += j
			k := tagEnd(b[i:])
			if k < 0 {
				break
			}
			tag := b[i : i+k+1]
			i += k + 1
			if tag[1] == '?' || tag[1] == '!' {
				continue
			}
			st := parseStart(tag)
			s.off += i
			if st.name == "stream:error" || !strings.HasSuffix(st.name, "stream") {
				return st, fmt.Errorf("unexpected %s instead of a stream header", tag)
			}
			return st, nil
		}
		if err := s.fill(); err != nil {
			return stanza{}, err
		}
	}
}

// next returns the next top-level element of the stream; io.EOF when the
// server closed the stream.
func (s *stanzaReader) next() (stanza, error) {
	for {
		st, n, err := scanElement(s.buf[s.off:s.end])
		if err != nil {
			return stanza{}, err
		}
		if n > 0 {
			s.off += n
			return st, nil
		}
		if err := s.fill(); err != nil {
			return stanza{}, err
		}
	}
}

// scanElement finds the first complete top-level element in b and its
// length; n is 0 when b does not hold one yet.
func scanElement(b []byte) (st stanza, n int, err error) {
	depth, i, start := 0, 0, -1
	for {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return stanza{}, 0, nil
		}
		i += j
		k := tagEnd(b[i:])
		if k < 0 {
			return stanza{}, 0, nil
		}
		tag := b[i : i+k+1]
		switch {
		case len(tag) > 1 && tag[1] == '/':
			if depth == 0 {
				return stanza{}, 0, io.EOF // </stream:stream>
			}
			depth--
			if depth == 0 {
				st.raw = b[start : i+k+1]
				return st, i + k + 1, nil
			}
		case len(tag) > 1 && (tag[1] == '?' || tag[1] == '!'):
		default:
			if depth == 0 {
				st, start = parseStart(tag), i
			}
			if tag[len(tag)-2] == '/' {
				if depth == 0 {
					st.raw = tag
					return st, i + k + 1, nil
				}
			} else {
				depth++
			}
		}
		i += k + 1
	}
}

// tagEnd returns the index of the '>' closing the tag b starts with, or
// -1; quoted attribute values may hold '>'.
func tagEnd(b []byte) int {
	var quote byte
	for i := 1; i < len(b); i++ {
		c := b[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '>':
			return i
		}
	}
	return -1
}

// parseStart splits a start tag into its name and attributes.
func parseStart(tag []byte) stanza {
	body := bytes.TrimSuffix(bytes.TrimSuffix(tag[1:], []byte(">")), []byte("/"))
	name := body
	var attrs []byte
	if i := bytes.IndexAny(body, " \t\r\n"); i >= 0 {
		name, attrs = body[:i], body[i:]
	}
	return stanza{name: string(name), attrs: attrs}
}

var (
	escaper   = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", `"`, "&quot;")
	unescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&apos;", "'", "&quot;", `"`)
)

func xmlEscape(s string) string   { return escaper.Replace(s) }
func xmlUnescape(s string) string { return unescaper.Replace(s) }

// loadComponent publishes XEP-0357 pushes, as Prosody's mod_cloud_notify
// sends them, and matches the replies to the publishing worker by IQ id:
// 40 hex digits of the run, 8 of the worker, 16 of the sequence number.
type loadComponent struct {
	*xmppComponent
	to      string
	prefix  string
	waiters []chan stanza
}

// newLoadComponent connects the load component for up to workers
// publishes at once to the component to.
func newLoadComponent(ctx context.Context, addr, domain, secret, to string, workers int) (*loadComponent, error) {
	c, err := dialComponent(ctx, addr, domain, secret)
	if err != nil {
		return nil, err
	}
	p := make([]byte, 20)
	rand.Read(p)
	l := &loadComponent{xmppComponent: c, to: to, prefix: hex.EncodeToString(p), waiters: make([]chan stanza, workers)}
	for i := range l.waiters {
		l.waiters[i] = make(chan stanza, 4)
	}
	go l.read()
	return l, nil
}

// read hands each reply to the worker waiting for it.
func (l *loadComponent) read() {
	for {
		st, err := l.rd.next()
		if err != nil {
			for _, w := range l.waiters {
				close(w)
			}
			return
		}
		id := st.attr("id")
		if st.name != "iq" || len(id) != 64 || id[:40] != l.prefix {
			continue
		}
		w, err := strconv.ParseUint(id[40:48], 16, 32)
		if err != nil || int(w) >= len(l.waiters) {
			continue
		}
		reply := stanza{name: st.attr("type"), attrs: []byte(id)}
		if reply.name == "error" {
			reply.raw = append([]byte(nil), st.raw...)
		}
		select {
		case l.waiters[w] <- reply:
		default: // a stale reply nobody waits for any more
		}
	}
}

// publishTemplate is the publish of REFERENCE §3 (Prosody's
// mod_cloud_notify, with a message body), in jabber:component:accept.
const publishTemplate = `<iq type='set' from='%s' to='%s' id='%s'>` +
	`<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='%s'><item>` +
	`<notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='form'>` +
	`<field type='hidden' var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>` +
	`<field type='text-single' var='message-count'><value>1</value></field>` +
	`<field type='text-single' var='pending-subscription-count'/>` +
	`<field type='jid-single' var='last-message-sender'/>` +
	`<field type='text-single' var='last-message-body'><value>New Message!</value></field>` +
	`</x></notification></item></publish>` +
	`<publish-options><x xmlns='jabber:x:data' type='submit'>` +
	`<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>` +
	`<field var='secret'><value>%s</value></field></x></publish-options>` +
	`</pubsub></iq>`

var stanzaCondition = regexp.MustCompile(`<([a-z-]+) xmlns=['"]urn:ietf:params:xml:ns:xmpp-stanzas['"]`)

// publish sends one publish for node and waits for its reply: nil for a
// result, else an error whose kind is the stanza error's condition.
func (l *loadComponent) publish(ctx context.Context, worker int, seq uint64, node, secret string) error {
	id := fmt.Sprintf("%s%08x%016x", l.prefix, worker, seq)
	l.send(fmt.Appendf(nil, publishTemplate, l.domain, l.to, id, xmlEscape(node), xmlEscape(secret)))
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case reply, ok := <-l.waiters[worker]:
			if !ok {
				return errors.New("stream closed: the server ended the load component's stream")
			}
			if string(reply.attrs) != id {
				continue // the late reply of an earlier publish
			}
			if reply.name == "result" {
				return nil
			}
			cond := "unknown"
			if m := stanzaCondition.FindSubmatch(reply.raw); m != nil {
				cond = string(m[1])
			}
			return fmt.Errorf("stanza error %s: %s", cond, reply.raw)
		case <-timeout.C:
			return errors.New("timeout: no reply within 30 s")
		case <-ctx.Done():
			return fmt.Errorf("timeout: %w", ctx.Err())
		}
	}
}

// echoComponent answers every IQ get or set with an empty result at once:
// the ceiling's stand-in for p2xmpp.
type echoComponent struct {
	*xmppComponent
	stopped chan struct{}
}

func newEchoComponent(ctx context.Context, addr, domain, secret string) (*echoComponent, error) {
	c, err := dialComponent(ctx, addr, domain, secret)
	if err != nil {
		return nil, err
	}
	e := &echoComponent{xmppComponent: c, stopped: make(chan struct{})}
	go e.serve()
	return e, nil
}

func (e *echoComponent) serve() {
	defer close(e.stopped)
	var out []byte
	for {
		st, err := e.rd.next()
		if err != nil {
			return
		}
		if st.name != "iq" {
			continue
		}
		if t := st.attr("type"); t != "get" && t != "set" {
			continue
		}
		out = fmt.Appendf(out[:0], `<iq type='result' from='%s' to='%s' id='%s'/>`,
			xmlEscape(st.attr("to")), xmlEscape(st.attr("from")), xmlEscape(st.attr("id")))
		e.send(out)
	}
}

// stop closes the echo component's stream and waits until it is gone.
func (e *echoComponent) stop() {
	e.close()
	<-e.stopped
}
