package main

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/p2http/p2http/xmpp"
	"mellium.im/xmlstream"
	mellium "mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
)

// Timing of the link; variables so that tests can shorten them.
var (
	// minBackoff and maxBackoff bound the wait between connection attempts:
	// it starts at minBackoff and doubles up to maxBackoff. While the
	// component is away, ejabberd may bounce pushes with a cancel error and
	// delete registrations: come back fast.
	minBackoff = 100 * time.Millisecond
	maxBackoff = time.Second
	// connectTimeout bounds the TCP connection and the handshake.
	connectTimeout = 10 * time.Second
	// writeTimeout bounds sending one reply.
	writeTimeout = 10 * time.Second
	// drainGrace is how long a shutdown waits for the requests in flight
	// before cancelling their calls on p2http (they are then answered with a
	// wait error), and drainCancelled how long it waits after that.
	drainGrace     = 10 * time.Second
	drainCancelled = 2 * time.Second
	// closeTimeout is how long the server has to close its stream after ours.
	closeTimeout = 2 * time.Second
)

// maxInFlight bounds the requests handled at once on one connection; beyond
// it the reading of the stream waits (the server buffers).
const maxInFlight = 256

// link is the component's connection to the XMPP server: it connects,
// serves, and reconnects forever with backoff.
type link struct {
	jid    string
	secret string
	server string
	comp   *xmpp.Component
	log    *slog.Logger
	// connected, when set, is told when the link comes up and goes down.
	connected func(bool)
}

// run keeps the component connected until ctx ends. State changes are logged
// once each: connected, disconnected (with the reason), reconnecting, and a
// failing connection attempt once per distinct reason, not once per attempt.
func (l *link) setConnected(up bool) {
	if l.connected != nil {
		l.connected(up)
	}
}

func (l *link) run(ctx context.Context) {
	backoff := minBackoff
	lastFailure := ""
	for {
		sess, conn, err := l.connect(ctx)
		if ctx.Err() != nil {
			if sess != nil {
				conn.Close()
			}
			return
		}
		if err != nil {
			if reason := err.Error(); reason != lastFailure {
				l.log.Warn("cannot connect to the XMPP server; retrying", "server", l.server, "reason", reason,
					"retry_every", maxBackoff.String())
				lastFailure = reason
			}
		} else {
			lastFailure = ""
			backoff = minBackoff
			l.log.Info("connected to the XMPP server", "server", l.server, "jid", l.jid)
			l.setConnected(true)
			err := l.serve(ctx, sess, conn)
			l.setConnected(false)
			if ctx.Err() != nil {
				l.log.Info("disconnected from the XMPP server: shutting down")
				return
			}
			reason := "the server closed the stream"
			if err != nil {
				reason = err.Error()
			}
			l.log.Warn("disconnected from the XMPP server", "reason", reason)
			l.log.Info("reconnecting to the XMPP server", "server", l.server)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// connect dials the server and performs the XEP-0114 handshake through
// mellium's component package.
func (l *link) connect(ctx context.Context) (*mellium.Session, net.Conn, error) {
	addr, err := jid.Parse(l.jid)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	d := net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 3}}
	conn, err := d.DialContext(ctx, "tcp", l.server)
	if err != nil {
		return nil, nil, err
	}
	// A server that accepts the connection but never completes the
	// handshake must not hold us: close the connection when ctx ends.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sess, err := component.NewSession(ctx, addr, []byte(l.secret), conn)
	if !stop() {
		conn.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, nil, errors.New("handshake: " + err.Error())
	}
	if err != nil {
		conn.Close()
		return nil, nil, errors.New("handshake: " + err.Error())
	}
	return sess, conn, nil
}

// serve handles the stanzas of one connection until it drops or ctx ends.
// Each request is answered in its own goroutine (a push may take seconds;
// nothing waits behind it). A bad stanza gets a stanza error; only a broken
// stream (bad XML) ends the session.
func (l *link) serve(ctx context.Context, sess *mellium.Session, conn net.Conn) error {
	defer conn.Close()
	// Requests outlive ctx by the drain grace: they are cancelled only when
	// it passes.
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	out := &replier{sess: sess, log: l.log}
	slots := make(chan struct{}, maxInFlight)
	closing := make(chan struct{})

	handler := mellium.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		// mellium hands over the stanza's start token and the reader of the
		// rest; replay the start to read the whole stanza.
		st, err := xmpp.ReadStanza(xmlstream.MultiReader(xmlstream.Token(*start), t))
		if err != nil {
			return err // the XML stream itself is broken: nothing to answer
		}
		if !st.IsIQ() {
			return nil // messages and presences are not for us
		}
		select {
		case <-closing:
			// Shutting down: the component is stopped, Handle answers at
			// once without calling p2http.
			out.send(l.comp.Handle(reqCtx, st), st)
			return nil
		default:
		}
		select {
		case slots <- struct{}{}:
		case <-closing:
			out.send(l.comp.Handle(reqCtx, st), st)
			return nil
		}
		go func() {
			defer func() { <-slots }()
			out.send(l.comp.Handle(reqCtx, st), st)
		}()
		return nil
	})

	done := make(chan error, 1)
	go func() { done <- sess.Serve(handler) }()

	select {
	case err := <-done:
		// The link dropped. Requests in flight finish on their own; their
		// replies cannot be sent any more.
		out.close()
		return err
	case <-ctx.Done():
	}

	// Graceful shutdown: answer what is in flight, then close the stream.
	l.comp.Stop()
	close(closing)
	if held := drain(slots, 0, drainGrace); held < maxInFlight {
		cancelReqs()
		drain(slots, held, drainCancelled)
	}
	out.close()
	// mellium's SetCloseDeadline races with Serve (it replaces a context
	// Serve reads); a read deadline on the connection does the same.
	conn.SetReadDeadline(time.Now().Add(closeTimeout))
	sess.Close()
	select {
	case <-done:
	case <-time.After(closeTimeout + time.Second):
	}
	return nil
}

// drain waits until no request is in flight, by taking every slot as it
// frees up, for at most d. It returns how many slots it holds afterwards
// (all of them when nothing is in flight any more); the slots taken are
// kept, so nothing starts after a drain.
func drain(slots chan struct{}, held int, d time.Duration) int {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for held < cap(slots) {
		select {
		case slots <- struct{}{}:
			held++
		case <-deadline.C:
			return held
		}
	}
	return held
}

// replier sends replies on a session, and drops them once the stream is
// closed (nothing may follow </stream:stream>).
type replier struct {
	sess *mellium.Session
	log  *slog.Logger

	mu     sync.Mutex
	closed bool
}

func (r *replier) send(reply *xmpp.Reply, st *xmpp.Stanza) {
	if reply == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.log.Warn("reply dropped: the link to the XMPP server is closed", "id", st.ID())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if err := r.sess.Send(ctx, reply.TokenReader()); err != nil && !errors.Is(err, io.EOF) {
		r.log.Warn("reply not sent", "id", st.ID(), "reason", err.Error())
	}
}

func (r *replier) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
}
