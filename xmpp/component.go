package xmpp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2http/p2http"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Config configures a Component.
type Config struct {
	// JID is the component's address (P2XMPP_JID): a domain JID such as
	// push.example.org. Register replies hand it to phones.
	JID string
	// Registrar, Pusher and Describer are p2http's services; an api.Client
	// is all three, over HTTP. Their failures are answered by their error
	// codes (ErrorFor), and EUNREACHABLE marks p2http as down.
	Registrar p2http.Registrar
	Pusher    p2http.Pusher
	Describer p2http.Describer
	// Logger receives one line per answered request (at debug for a
	// result, info for an error, warn for a wait error) and the changes of
	// p2http's state; nil means slog.Default(). Nothing logged holds a
	// token, a secret, a message body or a user's JID.
	Logger *slog.Logger
	// Observe, when set, is told about every answered request: its kind
	// (one of Kinds) and its failure, nil for a result (ErrorFor gives the
	// stanza error answered).
	Observe func(kind string, err error)
}

// Component translates stanzas addressed to the push component into calls on
// p2http's services and builds the replies. It holds no state beyond whether
// p2http was last seen reachable with the same jid, and is safe for
// concurrent use.
type Component struct {
	jid       jid.JID
	registrar p2http.Registrar
	pusher    p2http.Pusher
	describer p2http.Describer
	log       *slog.Logger
	answered  func(kind string, err error)

	stopping atomic.Bool

	mu       sync.Mutex
	state    apiState
	checking *check
}

// apiState is what p2xmpp last saw of p2http.
type apiState int

const (
	apiUnknown  apiState = iota // not checked yet
	apiOK                       // reachable, same jid
	apiDown                     // unreachable, or answering its info with an error
	apiMismatch                 // reachable, another jid
)

// check is one Describe in flight, shared by the requests waiting for it.
type check struct {
	done chan struct{}
	err  error
}

// New returns a Component for cfg.
func New(cfg Config) (*Component, error) {
	j, err := jid.Parse(cfg.JID)
	if err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
		return nil, fmt.Errorf("%q is not a domain JID such as push.example.org", cfg.JID)
	}
	if cfg.Registrar == nil || cfg.Pusher == nil || cfg.Describer == nil {
		return nil, errors.New("xmpp: Config.Registrar, Pusher or Describer is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Observe == nil {
		cfg.Observe = func(string, error) {}
	}
	return &Component{jid: j, registrar: cfg.Registrar, pusher: cfg.Pusher, describer: cfg.Describer,
		log: cfg.Logger, answered: cfg.Observe}, nil
}

// JID returns the component's address, normalised.
func (c *Component) JID() string { return c.jid.String() }

// Stop makes the component answer every later request that needs p2http
// with a wait error, for a graceful shutdown; requests already running
// finish. Discovery and ping are still answered.
func (c *Component) Stop() { c.stopping.Store(true) }

// Handle answers one stanza. It returns nil when no reply is due: messages,
// presences, IQ results and errors, and IQs without id or sender (a reply
// could not be addressed). Every IQ get or set gets a reply, a stanza error
// when anything fails; Handle never fails itself. ctx bounds the calls on
// p2http (each is also bounded by api.Client's own timeout).
func (c *Component) Handle(ctx context.Context, st *Stanza) *Reply {
	if st == nil || !st.IsIQ() {
		return nil
	}
	switch st.Type() {
	case "result", "error":
		return nil
	}
	if st.ID() == "" || st.From() == "" {
		c.log.Warn("ignored an IQ without id or from")
		return nil
	}
	began := time.Now()
	kind, payload, err := c.serve(ctx, st)
	var reply *Reply
	outcome := "result"
	// A result is logged at debug: at push rates one line per stanza would
	// flood the journal, and the metrics count them. Errors at info, wait
	// errors (p2http or a push service in trouble) at warn.
	level := slog.LevelDebug
	if err != nil {
		se := ErrorFor(err)
		reply = errorReply(st, c.jid.String(), se)
		outcome = string(se.Type) + "/" + string(se.Condition)
		level = slog.LevelInfo
		if se.Type == stanza.Wait {
			level = slog.LevelWarn
		}
	} else {
		reply = resultReply(st, c.jid.String(), payload)
	}
	// Checked first, so that a line not logged costs no allocation.
	if c.log.Enabled(ctx, level) {
		attrs := []slog.Attr{slog.String("id", st.ID()), slog.String("request", kind), slog.String("outcome", outcome)}
		if err != nil {
			// What the failure tells of its answer (api.ResponseError:
			// http_status, request_id), inlined into the line.
			var lv slog.LogValuer
			if errors.As(err, &lv) {
				attrs = append(attrs, slog.Any("", lv))
			}
			attrs = append(attrs, slog.String("reason", err.Error()))
		}
		attrs = append(attrs, slog.Duration("took", time.Since(began).Round(time.Millisecond)))
		c.log.LogAttrs(ctx, level, "answered", attrs...)
	}
	c.answered(kind, err)
	return reply
}

// serve dispatches st by its payload and returns the kind of request (for
// the log), the result payload, or the failure.
func (c *Component) serve(ctx context.Context, st *Stanza) (kind string, payload *out, err error) {
	if st.TooLarge() {
		return "too-large", nil, fail(codeTooLarge, "")
	}
	if t := st.Type(); t != "get" && t != "set" {
		return "unknown-type", nil, fail(p2http.EINVALID, "unknown IQ type")
	}
	p := st.payload()
	get := st.Type() == "get"
	switch {
	case p == nil:
		return "empty", nil, fail(p2http.EINVALID, "an IQ get or set holds one payload element")
	case p.is(NSPing, "ping") && get:
		return "ping", nil, nil
	case p.is(NSDiscoInfo, "query") && get:
		payload, err = c.discoInfo(p.attrValue("node"))
		return "disco#info", payload, err
	case p.is(NSDiscoItem, "query") && get:
		payload, err = c.discoItems(p.attrValue("node"))
		return "disco#items", payload, err
	case p.is(NSCommands, "command"):
		payload, err = c.command(ctx, st)
		return "command", payload, err
	case p.is(NSPubSub, "pubsub"):
		return "publish", nil, c.publish(ctx, st)
	}
	return "unsupported", nil, fail(codeUnsupported, "")
}

// command runs an ad-hoc command.
func (c *Component) command(ctx context.Context, st *Stanza) (*out, error) {
	cmd, err := parseCommand(st)
	if err != nil {
		return nil, err
	}
	if cmd.cancel {
		return commandReply(cmd, "canceled"), nil
	}
	if err := c.ready(ctx); err != nil {
		return nil, err
	}
	app, err := c.appOf(st)
	if err != nil {
		return nil, err
	}
	if !cmd.register {
		err := c.registrar.Unregister(ctx, p2http.UnregisterRequest{App: app, Service: cmd.service, Account: cmd.account, DeviceID: cmd.deviceID})
		c.observe(err)
		if err != nil {
			return nil, err
		}
		return commandReply(cmd, "completed"), nil
	}
	reg, err := c.registrar.Register(ctx, p2http.RegisterRequest{App: app, Service: cmd.service, Account: cmd.account, DeviceID: cmd.deviceID, Token: cmd.token})
	c.observe(err)
	if err != nil {
		return nil, err
	}
	want := c.appJID(app)
	if got, err := jid.Parse(reg.JID); err != nil || !got.Equal(want) {
		c.setState(apiMismatch, reg.JID)
		return nil, ErrJIDMismatch
	}
	return commandReply(cmd, "completed").add(registeredForm(want.String(), reg.Node, reg.Secret)), nil
}

// publish relays a XEP-0357 publish.
func (c *Component) publish(ctx context.Context, st *Stanza) error {
	req, err := parsePublish(st)
	if err != nil {
		return err
	}
	if err := c.ready(ctx); err != nil {
		return err
	}
	if req.App, err = c.appOf(st); err != nil {
		return err
	}
	_, err = c.pusher.Push(ctx, req)
	c.observe(err)
	return err
}

// Check asks p2http for its jid now and records the outcome; the requests
// that need p2http do the same whenever it was not last seen reachable with
// the same jid. It returns nil when p2http answers with the component's jid,
// ErrJIDMismatch when with another, and otherwise the call's error, wrapped:
// requests failing on it are answered with a wait error, whatever it was.
func (c *Component) Check(ctx context.Context) error {
	c.mu.Lock()
	if c.checking != nil {
		ch := c.checking
		c.mu.Unlock()
		select {
		case <-ch.done:
			return ch.err
		case <-ctx.Done():
			return &p2http.Error{Code: p2http.EUNREACHABLE, Err: ctx.Err()}
		}
	}
	ch := &check{done: make(chan struct{})}
	c.checking = ch
	c.mu.Unlock()

	info, err := c.describer.Describe(ctx)
	switch {
	case err != nil:
		c.setState(apiDown, err.Error())
		err = infoFailure(err)
	case !c.sameJID(info.JID):
		err = ErrJIDMismatch
		c.setState(apiMismatch, info.JID)
	default:
		c.setState(apiOK, "")
	}

	c.mu.Lock()
	ch.err = err
	c.checking = nil
	c.mu.Unlock()
	close(ch.done)
	return err
}

// ready returns nil when p2http was last seen reachable with the same jid,
// and otherwise checks again.
func (c *Component) ready(ctx context.Context) error {
	if c.stopping.Load() {
		return ErrShuttingDown
	}
	c.mu.Lock()
	ok := c.state == apiOK
	c.mu.Unlock()
	if ok {
		return nil
	}
	return c.Check(ctx)
}

// observe notes a call that got no answer (EUNREACHABLE): p2http is
// checked again before the next request is served.
func (c *Component) observe(err error) {
	if p2http.ErrorCode(err) == p2http.EUNREACHABLE && !errors.Is(err, context.Canceled) {
		c.setState(apiDown, err.Error())
	}
}

// setState records p2http's state and logs a change once.
func (c *Component) setState(s apiState, detail string) {
	c.mu.Lock()
	old := c.state
	c.state = s
	c.mu.Unlock()
	if old == s {
		return
	}
	switch s {
	case apiOK:
		c.log.Info("p2http is reachable and serves this component's jid")
	case apiDown:
		c.log.Warn("p2http is unreachable or failing; answering requests with a wait error until it answers", "reason", detail)
	case apiMismatch:
		// Both are service addresses from the configuration, not users'.
		c.log.Error("p2http's jid (P2_JID) differs from this component's (P2XMPP_JID): answering every request with a wait error until they agree",
			"p2http_jid", detail, "component_jid", c.jid.String())
	}
}

// appOf returns the app a request is for: the local part of the address it
// was sent to, p2http.DefaultApp for the component's own address (or no
// address at all). Whether p2http serves that app is p2http's to say
// (item-not-found when not). An address that is not one of this component's
// is item-not-found too, and so is default@component: the default app's
// address is the component's own, and a reply must come from the address
// the phone registered at.
func (c *Component) appOf(st *Stanza) (p2http.App, error) {
	if st.To() == "" {
		return p2http.DefaultApp, nil
	}
	to, err := jid.Parse(st.To())
	switch {
	case err != nil || to.Domainpart() != c.jid.Domainpart():
		return "", fail(p2http.ENOTFOUND, "no app at this address")
	case to.Localpart() == "":
		return p2http.DefaultApp, nil
	case p2http.App(to.Localpart()) == p2http.DefaultApp:
		return "", fail(p2http.ENOTFOUND, "the default app is at the component's own address")
	}
	return p2http.App(to.Localpart()), nil
}

// appJID returns the address of app: the component's own for the default
// app, APP@component for the others.
func (c *Component) appJID(app p2http.App) jid.JID {
	if app.IsDefault() {
		return c.jid
	}
	j, err := c.jid.WithLocal(string(app))
	if err != nil {
		return c.jid // app came from a parsed local part: cannot happen
	}
	return j
}

// sameJID reports whether s is the component's address.
func (c *Component) sameJID(s string) bool {
	j, err := jid.Parse(s)
	return err == nil && j.Equal(c.jid)
}
