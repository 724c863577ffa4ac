package xmppdoctor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"mellium.im/xmlstream"
	mellium "mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/p2http/p2http/internal/checkup"
	"github.com/p2http/p2http/xmpp"
)

// resend is how often a probe without an answer is sent again, with a new
// id, until Config.Timeout: when another p2xmpp shares the component
// (ejabberd balances a component's stanzas over its connections), an answer
// may reach the other connection instead of the doctor's.
const resend = 500 * time.Millisecond

// doctorResource is the resource of the address the doctor asks the
// component from. Not the component's bare address: a stanza from it
// arrives with no from (mellium drops a from equal to the session's own
// address), and the component answers nothing without a from.
const doctorResource = "p2xmpp-doctor"

// commandNodes are the XEP-0050 commands Conversations and p2 use, which the
// component's commands node must list.
var commandNodes = []string{"register-push-fcm", "register-push-apns", "unregister-push-fcm", "unregister-push-apns"}

// checkXMPP connects to the XMPP server as the component, then checks the
// component's discovery and, with an account, the route from the account's
// server.
func checkXMPP(ctx context.Context, cfg Config, r *checkup.Report) {
	self, _ := jid.Parse(cfg.JID)
	var domain string
	var badAccount *checkup.Check
	if cfg.Account != "" {
		d, err := accountDomain(cfg.Account)
		if err != nil {
			badAccount = &checkup.Check{ID: CheckAccount, Status: checkup.Fail, Message: "--account is not an address such as user@example.org",
				Fix: "give --account an account (or just the domain) of the server whose users should be pushed"}
		}
		domain = d
	}

	l, err := connect(ctx, cfg, self)
	if err != nil {
		hc := handshakeFailure(cfg, self, err)
		r.Add(hc)
		why := "the XMPP server did not accept the component (see the handshake check)"
		fix := "fix the handshake first"
		if hc.Status == checkup.Warn {
			why = "another connection holds the component (see the handshake check)"
			fix = "stop p2xmpp while the doctor runs, then run it again"
		}
		r.Add(checkup.Check{ID: CheckDisco, Status: checkup.Warn, Message: "not checked: " + why, Fix: fix})
		switch {
		case badAccount != nil:
			r.Add(*badAccount)
		case domain != "":
			r.Add(checkup.Check{ID: CheckAccount, Status: checkup.Warn, Message: "not checked: " + why, Fix: fix})
		}
		return
	}
	defer l.close()
	r.Add(checkup.Check{ID: CheckHandshake, Status: checkup.OK,
		Message: fmt.Sprintf("the XMPP server at %s accepted the component %s and its secret", cfg.Server, self)})
	r.Add(l.checkDisco(ctx))
	switch {
	case badAccount != nil:
		r.Add(*badAccount)
	case domain != "":
		r.Add(l.checkAccount(ctx, domain))
	}
}

// accountDomain returns the domain of an account (or of a domain).
func accountDomain(account string) (string, error) {
	j, err := jid.Parse(strings.TrimSpace(account))
	if err != nil || j.Domainpart() == "" || j.Resourcepart() != "" && j.Localpart() == "" {
		return "", errors.New("not an account")
	}
	return j.Domainpart(), nil
}

// link is the doctor's component connection: it sends the probes, hands
// their answers back, and answers whatever else arrives with the real
// component.
type link struct {
	sess    *mellium.Session
	conn    net.Conn
	comp    *xmpp.Component
	self    jid.JID
	timeout time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	waiting map[string]chan *iqReply
	closing bool // set by close: requests are then answered in line

	served   chan struct{} // closed when Serve has returned
	serveErr error         // Serve's error, set before served is closed
	inflight sync.WaitGroup
}

// connect dials the server and performs the XEP-0114 handshake, then
// serves the link.
func connect(ctx context.Context, cfg Config, self jid.JID) (*link, error) {
	comp, err := xmpp.New(xmpp.Config{JID: cfg.JID, Registrar: cfg.Registrar, Pusher: cfg.Pusher, Describer: cfg.Describer, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(hctx, "tcp", cfg.Server)
	if err != nil {
		return nil, &dialError{err: err, timedOut: hctx.Err() != nil}
	}
	// A server that accepts the connection but never completes the
	// handshake must not hold us.
	stop := context.AfterFunc(hctx, func() { conn.Close() })
	// component.NewSession, remembering the namespace of the server's
	// stream: a client or server listener answers with its own.
	var serverNS string
	negotiate := component.Negotiator(self, []byte(cfg.Secret), false)
	sess, err := mellium.NewSession(hctx, self, self, conn, 0,
		func(ctx context.Context, in, out *stream.Info, s *mellium.Session, data any) (mellium.SessionState, io.ReadWriter, any, error) {
			mask, rw, data, err := negotiate(ctx, in, out, s, data)
			serverNS = in.XMLNS
			return mask, rw, data, err
		})
	if !stop() {
		conn.Close()
		return nil, &handshakeError{timedOut: true, serverNS: serverNS}
	}
	if err != nil {
		conn.Close()
		return nil, &handshakeError{err: err, serverNS: serverNS}
	}
	l := &link{sess: sess, conn: conn, comp: comp, self: self, timeout: cfg.Timeout, log: cfg.Logger,
		waiting: map[string]chan *iqReply{}, served: make(chan struct{})}
	go func() {
		l.serveErr = sess.Serve(mellium.HandlerFunc(l.handle))
		close(l.served)
	}()
	return l, nil
}

// dialError is a failed TCP connection.
type dialError struct {
	err      error
	timedOut bool
}

func (e *dialError) Error() string { return e.err.Error() }

func (e *dialError) Unwrap() error { return e.err }

// handshakeError is a failed XEP-0114 handshake.
type handshakeError struct {
	err      error
	timedOut bool
	// serverNS is the namespace of the server's stream, "" when none came.
	serverNS string
}

func (e *handshakeError) Unwrap() error { return e.err }

func (e *handshakeError) Error() string {
	if e.timedOut {
		return "no answer to the handshake"
	}
	return e.err.Error()
}

// secretFix is what to do about a refused secret.
const secretFix = "set P2XMPP_SECRET to the secret the XMPP server holds for the component: Prosody's component_secret in its Component section, ejabberd's password under the ejabberd_service listener's hosts"

// handshakeFailure is the handshake check for a connection that failed. A
// refused secret is named as such; a domain the server does not know, a
// closed port and a port that is not a component listener each as
// themselves. Another connection holding the component is a warning: the
// server accepted the secret before refusing a second connection.
func handshakeFailure(cfg Config, self jid.JID, err error) checkup.Check {
	c := checkup.Check{ID: CheckHandshake, Status: checkup.Fail}
	serverFix := "set P2XMPP_SERVER to the XMPP server's component listener, host:port (Prosody: component_ports; ejabberd: the port of the ejabberd_service listener)"
	var de *dialError
	var he *handshakeError
	var se stream.Error
	switch {
	case errors.As(err, &de) && errors.Is(de.err, syscall.ECONNREFUSED):
		c.Message = fmt.Sprintf("nothing listens at %s (P2XMPP_SERVER): connection refused", cfg.Server)
		c.Fix = "start the XMPP server, or " + serverFix
	case errors.As(err, &de) && de.timedOut:
		c.Message = fmt.Sprintf("no connection to %s (P2XMPP_SERVER) within %s: a firewall, or the wrong host", cfg.Server, cfg.Timeout)
		c.Fix = serverFix
	case errors.As(err, &de):
		c.Message = fmt.Sprintf("cannot connect to %s (P2XMPP_SERVER): %v", cfg.Server, cause(de.err))
		c.Fix = serverFix
	case errors.As(err, &he) && he.serverNS != "" && he.serverNS != xmpp.NSComponent:
		c.Message = fmt.Sprintf("%s is not an XMPP component listener: it answered with a %s stream (the client or server port?)", cfg.Server, he.serverNS)
		c.Fix = serverFix
	case errors.As(err, &he) && he.timedOut:
		c.Message = fmt.Sprintf("%s accepted the connection but did not complete the XEP-0114 handshake within %s: not an XMPP component listener?", cfg.Server, cfg.Timeout)
		c.Fix = serverFix
	case errors.As(err, &se) && se.Err == "not-authorized":
		// ejabberd answers a component name its listener does not hold
		// as it answers a wrong secret; Prosody says host-unknown.
		c.Message = fmt.Sprintf("the XMPP server at %s refused the component secret: it answered the XEP-0114 handshake for %s with %s, so P2XMPP_SECRET is not the secret the server holds for %s",
			cfg.Server, self, condText(se), self)
		if textOf(se) == "" {
			c.Message += fmt.Sprintf(" (ejabberd answers the same when its ejabberd_service listener has no component %s)", self)
		}
		c.Fix = secretFix
	case errors.As(err, &se) && se.Err == "host-unknown":
		c.Message = fmt.Sprintf("the XMPP server at %s has no component %s: it answered %s", cfg.Server, self, condText(se))
		c.Fix = fmt.Sprintf(`set P2XMPP_JID to the component the server declares, or declare %s: Prosody: Component "%s" with component_secret; ejabberd: %s under the ejabberd_service listener's hosts`, self, self, self)
	case errors.As(err, &se) && se.Err == "conflict" && strings.Contains(textOf(se), "local domain"):
		c.Message = fmt.Sprintf("%s is one of the XMPP server's own virtual hosts, not a component: it answered %s", self, condText(se))
		c.Fix = "give the component an address of its own, such as push." + self.Domainpart() + ", in P2XMPP_JID, P2_JID and the server's component configuration"
	case errors.As(err, &se) && se.Err == "conflict":
		c.Status = checkup.Warn
		c.Message = fmt.Sprintf("the XMPP server at %s accepted the component secret, but another connection holds %s (a running p2xmpp?): it refused a second one with %s",
			cfg.Server, self, condText(se))
		c.Fix = "stop p2xmpp while the doctor runs to check the rest through the server"
	case errors.As(err, &se) && (se.Err == "invalid-namespace" || se.Err == "unsupported-stanza-type" || se.Err == "not-well-formed"):
		c.Message = fmt.Sprintf("%s is not an XMPP component listener: it answered the component's stream with %s (the client port?)", cfg.Server, condText(se))
		c.Fix = serverFix
	case errors.As(err, &se):
		c.Message = fmt.Sprintf("the XMPP server at %s refused the component %s: it answered %s", cfg.Server, self, condText(se))
		c.Fix = "see the XMPP server's log for the component connection"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
		c.Message = fmt.Sprintf("%s closed the connection during the XEP-0114 handshake: not an XMPP component listener (a TLS port?)", cfg.Server)
		c.Fix = serverFix
	default:
		c.Message = fmt.Sprintf("the XEP-0114 handshake with %s failed: %v", cfg.Server, err)
		c.Fix = serverFix
	}
	return c
}

// textOf is a stream error's text, "" when it has none.
func textOf(se stream.Error) string {
	var parts []string
	for _, t := range se.Text {
		if v := strings.TrimSpace(t.Value); v != "" {
			parts = append(parts, v)
		}
	}
	return strings.Join(parts, "; ")
}

// condText is se's condition and text, for a detail: `not-authorized
// ("text")`.
func condText(se stream.Error) string {
	if t := textOf(se); t != "" {
		return fmt.Sprintf("%s (%q)", se.Err, t)
	}
	return se.Err
}

// iqReply is what the doctor reads of the answer to a probe.
type iqReply struct {
	Type  string      `xml:"type,attr"`
	From  string      `xml:"from,attr"`
	Info  *discoInfo  `xml:"http://jabber.org/protocol/disco#info query"`
	Items *discoItems `xml:"http://jabber.org/protocol/disco#items query"`
	Error *iqError    `xml:"error"`
}

type discoInfo struct {
	Identities []identity `xml:"identity"`
	Features   []feature  `xml:"feature"`
}

type identity struct {
	Category string `xml:"category,attr"`
	Type     string `xml:"type,attr"`
}

type feature struct {
	Var string `xml:"var,attr"`
}

type discoItems struct {
	Items []item `xml:"item"`
}

type item struct {
	JID  string `xml:"jid,attr"`
	Node string `xml:"node,attr"`
}

type iqError struct {
	Type     string `xml:"type,attr"`
	Children []struct {
		XMLName xml.Name
		Text    string `xml:",chardata"`
	} `xml:",any"`
}

// condition returns the error's defined condition and its text.
func (e *iqError) condition() (cond, text string) {
	for _, c := range e.Children {
		if c.XMLName.Space != xmpp.NSStanzas {
			continue
		}
		if c.XMLName.Local == "text" {
			text = strings.TrimSpace(c.Text)
		} else if cond == "" {
			cond = c.XMLName.Local
		}
	}
	return cond, text
}

// describe is "type/condition (text)".
func (e *iqError) describe() string {
	cond, text := e.condition()
	s := e.Type + "/" + cond
	if text != "" {
		s += fmt.Sprintf(" (%q)", text)
	}
	return s
}

// handle reads one stanza of the link: the answer to a probe goes to the
// probe, any other IQ to the component, as p2xmpp answers it.
func (l *link) handle(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	r := xmlstream.MultiReader(xmlstream.Token(*start), t)
	if start.Name.Local == "iq" {
		typ, id := attrValue(start, "type"), attrValue(start, "id")
		l.mu.Lock()
		ch := l.waiting[id]
		l.mu.Unlock()
		if ch != nil && (typ == "result" || typ == "error") {
			var rep iqReply
			if err := xml.NewTokenDecoder(r).Decode(&rep); err != nil {
				return err
			}
			select {
			case ch <- &rep:
			default: // an answer to an earlier copy came first
			}
			return nil
		}
	}
	st, err := xmpp.ReadStanza(r)
	if err != nil {
		return err
	}
	if !st.IsIQ() {
		return nil
	}
	// Something the server routed to the component while the doctor holds
	// it (a push, a registration): answered as p2xmpp would.
	answer := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*l.timeout)
		defer cancel()
		if reply := l.comp.Handle(ctx, st); reply != nil {
			if err := l.sess.Send(ctx, reply.TokenReader()); err != nil {
				l.log.Warn("reply not sent", "id", st.ID(), "reason", err.Error())
			}
		}
	}
	// Once close waits for the requests in flight, no more may join them
	// (sync.WaitGroup's rule): a late one is answered here, before Serve
	// reads on, and close waits for Serve.
	l.mu.Lock()
	closing := l.closing
	if !closing {
		l.inflight.Add(1)
	}
	l.mu.Unlock()
	if closing {
		answer()
		return nil
	}
	go func() {
		defer l.inflight.Done()
		answer()
	}()
	return nil
}

func attrValue(start *xml.StartElement, local string) string {
	for _, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// errLinkLost is a probe's failure when the link closed before its answer.
type errLinkLost struct{ err error }

func (e *errLinkLost) Error() string {
	var se stream.Error
	switch {
	case errors.As(e.err, &se) && se.Err == "conflict":
		return "another connection replaced the doctor's (conflict): a running p2xmpp took the component back"
	case e.err == nil:
		return "the XMPP server closed the link"
	}
	return "the link to the XMPP server was lost: " + e.err.Error()
}

// errNoAnswer is a probe's failure when no answer came in time.
var errNoAnswer = errors.New("no answer")

// probe sends an IQ get holding payload from from to to, again every resend
// with a new id, and returns the first answer, within the timeout.
func (l *link) probe(ctx context.Context, from, to jid.JID, payload func() xml.TokenReader) (*iqReply, time.Duration, error) {
	ch := make(chan *iqReply, 1)
	var ids []string
	defer func() {
		l.mu.Lock()
		for _, id := range ids {
			delete(l.waiting, id)
		}
		l.mu.Unlock()
	}()
	began := time.Now()
	send := func() error {
		id := "doctor-" + randomHex(8)
		l.mu.Lock()
		l.waiting[id] = ch
		l.mu.Unlock()
		ids = append(ids, id)
		sctx, cancel := context.WithTimeout(ctx, l.timeout)
		defer cancel()
		return l.sess.Send(sctx, stanza.IQ{ID: id, Type: stanza.GetIQ, From: from, To: to}.Wrap(payload()))
	}
	if err := send(); err != nil {
		return nil, 0, &errLinkLost{err: err}
	}
	deadline := time.NewTimer(l.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(resend)
	defer tick.Stop()
	for {
		select {
		case rep := <-ch:
			return rep, time.Since(began), nil
		case <-tick.C:
			if err := send(); err != nil {
				return nil, 0, &errLinkLost{err: err}
			}
		case <-deadline.C:
			return nil, 0, errNoAnswer
		case <-l.served:
			return nil, 0, &errLinkLost{err: l.serveErr}
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

// query returns a payload of an empty query element of namespace ns, on
// node when not "".
func query(ns, node string) func() xml.TokenReader {
	return func() xml.TokenReader {
		start := xml.StartElement{Name: xml.Name{Space: ns, Local: "query"}}
		if node != "" {
			start.Attr = []xml.Attr{{Name: xml.Name{Local: "node"}, Value: node}}
		}
		return xmlstream.Wrap(nil, start)
	}
}

// checkDisco asks the component, through the XMPP server, for its
// disco#info and the disco#items of its commands node, and checks them
// against what Conversations and XEP-0357/XEP-0050 expect: the identity
// pubsub/push, the features urn:xmpp:push:0 and commands, and the four
// commands.
func (l *link) checkDisco(ctx context.Context) checkup.Check {
	c := checkup.Check{ID: CheckDisco, Status: checkup.Fail}
	from, err := l.self.WithResource(doctorResource)
	if err != nil {
		c.Message = err.Error()
		c.Fix = "set P2XMPP_JID to the component's address, a domain such as push.example.org"
		return c
	}
	rep, took, err := l.probe(ctx, from, l.self, query(xmpp.NSDiscoInfo, ""))
	if err != nil {
		return l.probeFailure(c, err, fmt.Sprintf("a disco#info sent to %s through the XMPP server", l.self),
			"make sure the server routes the component's address to its component connection: no other program should connect as P2XMPP_JID")
	}
	if rep.Type != "result" || rep.Info == nil {
		c.Message = fmt.Sprintf("%s answered disco#info with %s: Conversations cannot discover the push service (as with p2, whose disco#info answered service-unavailable)",
			l.self, answerOf(rep))
		c.Fix = "make sure p2xmpp is what connects as P2XMPP_JID: another program answers for the component"
		return c
	}
	var missing []string
	hasIdentity := slices.ContainsFunc(rep.Info.Identities, func(i identity) bool {
		return i.Category == "pubsub" && i.Type == "push"
	})
	if !hasIdentity {
		missing = append(missing, "the identity pubsub/push")
	}
	for _, f := range []string{xmpp.NSPush, xmpp.NSCommands} {
		if !slices.ContainsFunc(rep.Info.Features, func(g feature) bool {
			return g.Var == f
		}) {
			missing = append(missing, "the feature "+f)
		}
	}
	if len(missing) > 0 {
		c.Message = fmt.Sprintf("%s's disco#info lacks %s", l.self, strings.Join(missing, " and "))
		c.Fix = "make sure p2xmpp is what connects as P2XMPP_JID: another program answers for the component"
		return c
	}
	rep, _, err = l.probe(ctx, from, l.self, query(xmpp.NSDiscoItem, xmpp.NSCommands))
	if err != nil {
		return l.probeFailure(c, err, fmt.Sprintf("a disco#items of %s's commands sent through the XMPP server", l.self),
			"make sure the server routes the component's address to its component connection")
	}
	if rep.Type != "result" || rep.Items == nil {
		c.Message = fmt.Sprintf("%s answered the disco#items of its commands node with %s", l.self, answerOf(rep))
		c.Fix = "make sure p2xmpp is what connects as P2XMPP_JID"
		return c
	}
	var lacking []string
	for _, node := range commandNodes {
		if !slices.ContainsFunc(rep.Items.Items, func(i item) bool {
			j, err := jid.Parse(i.JID)
			return i.Node == node && err == nil && j.Equal(l.self)
		}) {
			lacking = append(lacking, node)
		}
	}
	if len(lacking) > 0 {
		c.Message = fmt.Sprintf("%s's commands node does not list %s", l.self, strings.Join(lacking, ", "))
		c.Fix = "make sure p2xmpp is what connects as P2XMPP_JID"
		return c
	}
	return checkup.Check{ID: CheckDisco, Status: checkup.OK,
		Message: fmt.Sprintf("%s answered disco#info through the XMPP server in %s: identity pubsub/push, features %s and %s; its commands node lists %s",
			l.self, round(took), xmpp.NSPush, xmpp.NSCommands, strings.Join(commandNodes, ", "))}
}

// checkAccount sends a disco#info from the component to the account's
// domain: its answer travels the route a push takes, from the account's
// server to the component.
func (l *link) checkAccount(ctx context.Context, domain string) checkup.Check {
	c := checkup.Check{ID: CheckAccount, Status: checkup.Fail}
	to, err := jid.New("", domain, "")
	if err != nil {
		c.Message = "--account's domain is not a domain"
		c.Fix = "give --account an account such as user@example.org"
		return c
	}
	s2sFix := fmt.Sprintf("serve %s on this XMPP server, or let the two servers talk: enable s2s on both (Prosody: the s2s module; ejabberd: s2s_access) and make %s resolvable from %s's server (DNS SRV _xmpp-server._tcp, or an A record)",
		domain, l.self, domain)
	rep, took, err := l.probe(ctx, l.self, to, query(xmpp.NSDiscoInfo, ""))
	if err != nil {
		return l.probeFailure(c, err, fmt.Sprintf("a disco#info sent from %s to %s", l.self, domain), s2sFix)
	}
	if rep.Type == "result" {
		c.Status = checkup.OK
		c.Message = fmt.Sprintf("%s answered a disco#info from %s in %s: the account's server reaches the component",
			domain, l.self, round(took))
		return c
	}
	cond := ""
	if rep.Error != nil {
		cond, _ = rep.Error.condition()
	}
	c.Message = fmt.Sprintf("a disco#info from %s to %s was answered with %s: the account's server cannot reach the component, and its pushes would be lost",
		l.self, domain, answerOf(rep))
	switch cond {
	case "remote-server-not-found", "remote-server-timeout", "not-allowed", "forbidden":
		c.Fix = s2sFix
	default:
		c.Fix = "see the XMPP server's log for the route to " + domain
	}
	return c
}

// probeFailure completes c for a probe that got no answer.
func (l *link) probeFailure(c checkup.Check, err error, what, fix string) checkup.Check {
	var lost *errLinkLost
	switch {
	case errors.As(err, &lost):
		c.Status = checkup.Warn
		c.Message = fmt.Sprintf("not finished: %s got no answer: %v", what, lost)
		c.Fix = "stop p2xmpp while the doctor runs, then run it again"
	case errors.Is(err, errNoAnswer):
		c.Message = fmt.Sprintf("%s got no answer within %s", what, l.timeout)
		c.Fix = fix
	default:
		c.Message = fmt.Sprintf("%s failed: %v", what, err)
		c.Fix = fix
	}
	return c
}

// answerOf is "an error type/condition (text)" or "an IQ TYPE".
func answerOf(rep *iqReply) string {
	if rep.Type == "error" && rep.Error != nil {
		return "the error " + rep.Error.describe()
	}
	return "an IQ of type " + rep.Type + " without the expected query"
}

// close waits for the requests the component is answering, closes the
// stream and the connection.
func (l *link) close() {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	done := make(chan struct{})
	go func() {
		l.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * l.timeout):
	}
	// As in p2xmpp's link: a read deadline, not mellium's close deadline,
	// bounds the wait for the server's end of the stream.
	l.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	l.sess.Close()
	select {
	case <-l.served:
	case <-time.After(3 * time.Second):
	}
	l.conn.Close()
}

// round rounds d to the millisecond, for a detail.
func round(d time.Duration) string {
	if d < time.Millisecond {
		return "under 1ms"
	}
	return d.Round(time.Millisecond).String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
