// Package relay is where a push goes: it turns registrations into stored
// targets with a node and a secret, and a push into a resolved target handed
// to the Sender of its service. It holds the rules p2 and Conversations rely
// on; it knows nothing of HTTP, SQL or XMPP. A Relay implements the
// domain's services, p2http.Registrar, p2http.Pusher and p2http.Describer.
package relay

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/keyring"
	"mellium.im/xmpp/jid"
)

// Config assembles a Relay.
type Config struct {
	// JID is the XMPP address of the push component, returned at registration.
	JID string
	// Store stores registrations. When it is also a p2http.Keeper (the
	// stored mode), unregistrations and dead tokens remove registrations
	// and what became of each push is recorded (the push log); when not
	// (the stateless mode), there is nothing to remove or record.
	Store   p2http.Store
	Keyring *keyring.Keyring
	// Resolver turns node and secret into a target; nil means StoreResolver
	// over Store and Keyring.
	Resolver p2http.Resolver
	// Senders deliver the default app's pushes per service; a service
	// without one is not configured.
	Senders map[p2http.Service]p2http.Sender
	// Apps holds the senders of the further apps this instance serves, by
	// app name (see p2http.App.Valid). A phone registers with one app at
	// APP@JID, and its pushes only ever go out with that app's credentials.
	Apps   map[string]map[p2http.Service]p2http.Sender
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// PushDeadline bounds one push from look-up to the provider's answer,
	// retries included; zero means DefaultPushDeadline.
	PushDeadline time.Duration
	// RetryBackoff is the first wait before retrying a temporary failure;
	// it doubles up to two seconds. Zero means 100 ms.
	RetryBackoff time.Duration
	// MaxInFlight bounds the pushes being handled at once; beyond it a push
	// is refused at once with EUNAVAILABLE. Zero means DefaultMaxInFlight.
	MaxInFlight int
	// CoalesceWindow: while a push for a node is in flight or was sent this
	// recently, further pushes for it merge into one trailing push. Zero
	// turns coalescing off.
	CoalesceWindow time.Duration
	// PushLogEvery is how often what became of the pushes is written to
	// the store (for the nodes whose record is due: see pushLog), together;
	// zero writes each push at once.
	PushLogEvery time.Duration
	// Observer is told about pushes and provider calls; nil means nobody.
	Observer Observer
	// PushLimit limits pushes per domain (the domain of the registration
	// that node and secret resolved to) and RegisterLimit registrations per
	// account domain; nil means no limit.
	PushLimit, RegisterLimit p2http.Limiter
	// FailLimit limits failed pushes (unknown node, wrong secret, another
	// domain) per caller and claimed domain: while the budget of a
	// request's pair is spent, the request is refused before its node is
	// looked up. Nil means no limit.
	FailLimit FailureLimiter
}

// Observer is told how pushes and provider calls went, for metrics.
type Observer interface {
	// PushFinished reports one push: its app and service (those of the
	// registration its node resolved to; before that, the app the request
	// named, as it named it or "", and no service), whether it was
	// coalesced, its error, its duration.
	PushFinished(app p2http.App, service p2http.Service, coalesced bool, err error, d time.Duration)
	// Sent reports one call to a push service with app's credentials.
	Sent(app p2http.App, service p2http.Service, err error, d time.Duration)
	// Retried reports a retry of a temporary failure.
	Retried(app p2http.App, service p2http.Service)
}

type noObserver struct{}

func (noObserver) PushFinished(p2http.App, p2http.Service, bool, error, time.Duration) {}
func (noObserver) Sent(p2http.App, p2http.Service, error, time.Duration)               {}
func (noObserver) Retried(p2http.App, p2http.Service)                                  {}

// FailureLimiter is a budget per key that only failures spend: a request
// asks first whether its key's budget is spent, and is charged only once
// it has failed. Callers whose requests succeed never spend it.
type FailureLimiter interface {
	// Peek reports whether key's budget has room, without spending it, or
	// says how long until it has.
	Peek(key string) (ok bool, retryAfter time.Duration)
	// Charge spends one unit of key's budget.
	Charge(key string)
}

// Defaults.
const (
	DefaultMaxInFlight    = 4096
	DefaultCoalesceWindow = time.Second
	maxBackoff            = 2 * time.Second
)

// DefaultPushDeadline sits under p2xmpp's HTTP timeout, itself under
// ejabberd's 32 s wait for an answer.
const DefaultPushDeadline = 10 * time.Second

// Relay registers phones and relays pushes to them.
type Relay struct {
	cfg      Config
	keeper   p2http.Keeper // nil: the store keeps nothing
	inflight chan struct{}
	health   *health
	coalesce *coalescer
	pushLog  *pushLog
	domains  *domainCache
}

// New returns a Relay for cfg.
func New(cfg Config) *Relay {
	if cfg.Resolver == nil {
		cfg.Resolver = &StoreResolver{Store: cfg.Store, Keyring: cfg.Keyring}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PushDeadline <= 0 {
		cfg.PushDeadline = DefaultPushDeadline
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 100 * time.Millisecond
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	r := &Relay{cfg: cfg, inflight: make(chan struct{}, cfg.MaxInFlight), health: newHealth(cfg.Logger), domains: newDomainCache()}
	r.keeper, _ = cfg.Store.(p2http.Keeper)
	r.coalesce = newCoalescer(cfg.CoalesceWindow, r.trailing)
	if r.keeper != nil {
		r.pushLog = newPushLog(r.keeper, cfg.PushLogEvery, cfg.Now, cfg.Logger)
	}
	return r
}

var (
	_ p2http.Registrar = (*Relay)(nil)
	_ p2http.Pusher    = (*Relay)(nil)
	_ p2http.Describer = (*Relay)(nil)
)

// Describe implements p2http.Describer: the component's address, and the
// services that have senders, for the default app and each further one.
func (r *Relay) Describe(ctx context.Context) (p2http.Info, error) {
	info := p2http.Info{JID: r.cfg.JID, Services: r.services(p2http.DefaultApp), Apps: []p2http.AppInfo{}}
	names := make([]p2http.App, 0, len(r.cfg.Apps))
	for name := range r.cfg.Apps {
		names = append(names, p2http.App(name))
	}
	slices.Sort(names)
	for _, name := range names {
		info.Apps = append(info.Apps, p2http.AppInfo{Name: name, JID: r.appJID(name), Services: r.services(name)})
	}
	return info, nil
}

// services lists the services app's pushes can be delivered through, in
// the order of p2http.Services.
func (r *Relay) services(app p2http.App) []p2http.Service {
	out := []p2http.Service{}
	for _, s := range p2http.Services {
		if r.configured(app, s) {
			out = append(out, s)
		}
	}
	return out
}

// appJID returns the address phones of app register with: the component's
// own for the default app, APP@component for the others.
func (r *Relay) appJID(app p2http.App) string {
	if app.IsDefault() {
		return r.cfg.JID
	}
	return string(app) + "@" + r.cfg.JID
}

// configured reports whether pushes for s can be delivered for app.
func (r *Relay) configured(app p2http.App, s p2http.Service) bool {
	senders, _ := r.senders(app)
	return senders[s] != nil
}

// senders returns the senders of app ("" is the default app) and whether
// the app exists.
func (r *Relay) senders(app p2http.App) (map[p2http.Service]p2http.Sender, bool) {
	if app.IsDefault() {
		return r.cfg.Senders, true
	}
	s, ok := r.cfg.Apps[string(app)]
	return s, ok
}

// senderFor returns the sender a target's push goes out with: its own app's,
// never another's.
func (r *Relay) senderFor(t p2http.Target) p2http.Sender {
	senders, _ := r.senders(t.App)
	return senders[t.Service]
}

// app checks that name ("" is the default app) is an app of this instance
// and returns its stored name.
func (r *Relay) app(name p2http.App) (p2http.App, error) {
	app := name.OrDefault()
	if _, ok := r.senders(app); !ok {
		return "", &p2http.Error{Code: p2http.ENOTFOUND, Field: "app", Message: "this server serves no app of that name"}
	}
	return app, nil
}

// Register implements p2http.Registrar: it stores the phone's token under
// the device hash of its account and device id, and returns the node and
// secret its XMPP server must use. Registering again keeps node and secret
// and replaces the token.
//
// The request is checked field by field, in its order: the app and the
// service, which only this instance can judge, then the account (a bare
// JID, normalised), then the rest of req.Validate.
func (r *Relay) Register(ctx context.Context, req p2http.RegisterRequest) (p2http.Registered, error) {
	app, err := r.app(req.App)
	if err != nil {
		return p2http.Registered{}, err
	}
	if err := r.checkService(app, req.Service); err != nil {
		return p2http.Registered{}, err
	}
	account, err := NormalizeAccount(req.Account)
	if err != nil {
		return p2http.Registered{}, err
	}
	if err := req.Validate(); err != nil {
		return p2http.Registered{}, err
	}
	if err := r.allow(r.cfg.RegisterLimit, "registration", account.Domainpart()); err != nil {
		return p2http.Registered{}, err
	}
	now := r.cfg.Now().UTC()
	reg := p2http.Registration{
		App:        app,
		Service:    req.Service,
		Device:     p2http.DeviceHash(account.String(), req.DeviceID),
		Domain:     account.Domainpart(),
		Token:      req.Token,
		SecretKind: p2http.SecretDerived,
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	for attempt := 0; ; attempt++ {
		reg.Node = p2http.NewNode()
		stored, created, err := r.cfg.Store.Register(ctx, reg)
		if errors.Is(err, p2http.ErrNodeTaken) && attempt < 3 {
			continue // a fresh random node; 72 bits make this all but impossible
		}
		if err != nil {
			return p2http.Registered{}, err
		}
		secret, err := secretOf(r.cfg.Keyring, stored)
		if err != nil {
			return p2http.Registered{}, err
		}
		return p2http.Registered{JID: r.appJID(app), Node: stored.Node, Secret: secret, Created: created}, nil
	}
}

// Unregister implements p2http.Registrar: it removes the registration of
// the account's device with the app; ENOTFOUND when there is none. With a
// store that keeps nothing there is nothing to remove, and a valid request
// is done. The request is checked in field order, as Register's is.
func (r *Relay) Unregister(ctx context.Context, req p2http.UnregisterRequest) error {
	app, err := r.app(req.App)
	if err != nil {
		return err
	}
	if err := req.Service.Validate(); err != nil {
		return err
	}
	account, err := NormalizeAccount(req.Account)
	if err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	if r.keeper == nil {
		return nil // the node stays valid until the phone's XMPP server forgets it
	}
	err = r.keeper.Unregister(ctx, app, req.Service, p2http.DeviceHash(account.String(), req.DeviceID))
	if p2http.ErrorCode(err) == p2http.ENOTFOUND {
		return p2http.Errorf(p2http.ENOTFOUND, "no registration for this service, account and device")
	}
	return err
}

// Lookup implements p2http.Registrar: the registration holding node, as
// the store has it (a sealed node opened), with the pushes this instance
// made to it and has not written yet; ENOTFOUND when none does.
func (r *Relay) Lookup(ctx context.Context, node string) (p2http.Registration, error) {
	switch {
	case node == "":
		return p2http.Registration{}, p2http.Invalid("node", "node is required")
	case len(node) > p2http.MaxNodeLength:
		return p2http.Registration{}, p2http.Invalid("node", "node is longer than %d bytes", p2http.MaxNodeLength)
	}
	reg, err := r.cfg.Store.Lookup(ctx, node)
	if err == nil && r.pushLog != nil {
		r.pushLog.merge(&reg)
	}
	return reg, err
}

// Push implements p2http.Pusher: it wakes the phone behind req.Node. A
// token the push service reports dead removes its registration (unless the
// phone registered again since) and yields EGONE.
func (r *Relay) Push(ctx context.Context, req p2http.PushRequest) (res p2http.PushResult, err error) {
	start := time.Now()
	var target p2http.Target // once resolved
	defer func() {
		app := req.App
		if target.Service != "" {
			app = target.App
		}
		r.cfg.Observer.PushFinished(app, target.Service, res.Coalesced, err, time.Since(start))
	}()
	// A node or secret longer than any handed out is refused as input
	// (openapi.yaml's limits), not looked up and answered 404.
	if err := req.Validate(); err != nil {
		return p2http.PushResult{}, err
	}
	if req.Domain != "" {
		d, err := r.domains.normalize(req.Domain)
		if err != nil {
			return p2http.PushResult{}, p2http.Invalid("domain", "domain must be a domain name such as example.org")
		}
		req.Domain = d
	}
	if req.App != "" {
		app, err := r.app(req.App)
		if err != nil {
			return p2http.PushResult{}, err
		}
		req.App = app
	}
	// Who sends and which domain they claim: until node and secret are
	// checked, that pair is all that is known, and failures are charged to
	// it alone, so that nobody's garbage spends another's budget.
	failKey := req.Caller + "\x00" + req.Domain
	if ok, retry := r.failLimit().Peek(failKey); !ok {
		return p2http.PushResult{}, &p2http.Error{Code: p2http.ERATELIMIT, RetryAfter: retry,
			Message: "too many failed pushes from this caller for this domain; slow down"}
	}
	release, err := r.acquire()
	if err != nil {
		return p2http.PushResult{}, err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PushDeadline)
	defer cancel()

	target, err = r.cfg.Resolver.Resolve(ctx, req)
	if err == nil && req.App != "" && req.App != target.App {
		// Sent to another app's address: as unknown there as a missing node.
		err = p2http.Errorf(p2http.ENOTFOUND, "no registration for this node")
	}
	if err != nil {
		if code := p2http.ErrorCode(err); code == p2http.ENOTFOUND || code == p2http.EFORBIDDEN {
			r.failLimit().Charge(failKey)
		}
		return p2http.PushResult{}, err
	}
	// From here on the push is one of the registration's, whatever becomes
	// of it.
	defer func() { r.recordPush(ctx, target, 1, res.Coalesced, err) }()
	// Node and secret hold: the push is charged to the domain of the
	// registration, the same whether the request named it or not.
	if err := r.allow(r.cfg.PushLimit, "push", target.Domain); err != nil {
		return p2http.PushResult{}, err
	}
	senders, ok := r.senders(target.App)
	if !ok {
		// Registered with an app this instance no longer serves: as
		// unknown as a missing node, so that the XMPP server drops it.
		return p2http.PushResult{}, p2http.Errorf(p2http.ENOTFOUND, "no registration for this node")
	}
	sender := senders[target.Service]
	if sender == nil {
		// Registered while the service was configured: our fault, not the phone's.
		return p2http.PushResult{}, &p2http.Error{Code: p2http.EUPSTREAM, RetryAfter: time.Minute,
			Message: "push service " + string(target.Service) + " is not configured on this server"}
	}
	w := p2http.Wakeup{Token: target.Token, Device: target.Device, Important: req.Important}
	res = p2http.PushResult{Service: target.Service, Priority: p2http.PriorityOf(w)}
	// Coalescing keys on a node whose secret was checked: nobody can hold
	// back another's pushes by knowing a node alone.
	if !r.coalesce.begin(target, req.Important) {
		res.Coalesced = true
		return res, nil
	}
	err = r.send(ctx, sender, target, w)
	r.coalesce.done(target.Node, err)
	if err != nil {
		return p2http.PushResult{Service: target.Service}, err
	}
	return res, nil
}

// send delivers w, retrying temporary failures with backoff and jitter
// within ctx's deadline, and records the outcome.
func (r *Relay) send(ctx context.Context, sender p2http.Sender, t p2http.Target, w p2http.Wakeup) error {
	backoff := r.cfg.RetryBackoff
	for {
		start := time.Now()
		err := sender.Send(ctx, w)
		r.cfg.Observer.Sent(t.App, t.Service, err, time.Since(start))
		r.health.record(ctx, t.App, t.Service, err)
		if err == nil {
			return nil
		}
		code := p2http.ErrorCode(err)
		if code != p2http.EUNAVAILABLE && code != p2http.ETIMEOUT {
			return r.failed(ctx, t, err) // permanent: never retried
		}
		if ctx.Err() != nil {
			return timedOut(err)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		if ra := p2http.RetryAfter(err); ra > wait {
			wait = ra
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			// No time left for another try: say when one makes sense.
			return &p2http.Error{Code: code, Message: p2http.ErrorMessage(err), Err: err,
				RetryAfter: max(p2http.RetryAfter(err), time.Second)}
		}
		r.cfg.Logger.DebugContext(ctx, "retrying push", "service", t.Service, "code", code, "wait", wait)
		r.cfg.Observer.Retried(t.App, t.Service)
		select {
		case <-ctx.Done():
			return timedOut(err)
		case <-time.After(wait):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func timedOut(err error) error {
	return &p2http.Error{Code: p2http.ETIMEOUT, RetryAfter: time.Second, Err: err,
		Message: "the push service did not answer within the push deadline"}
}

// allow asks a limiter about key and turns a refusal into ERATELIMIT.
func (r *Relay) allow(l p2http.Limiter, what, key string) error {
	if l == nil {
		return nil
	}
	if ok, retry := l.Allow(key); !ok {
		return &p2http.Error{Code: p2http.ERATELIMIT, RetryAfter: retry,
			Message: "too many " + what + " requests for this domain; slow down"}
	}
	return nil
}

// failLimit is the failure budget, one that never refuses when none is
// configured.
func (r *Relay) failLimit() FailureLimiter {
	if r.cfg.FailLimit == nil {
		return noFailLimit{}
	}
	return r.cfg.FailLimit
}

type noFailLimit struct{}

func (noFailLimit) Peek(string) (bool, time.Duration) { return true, 0 }
func (noFailLimit) Charge(string)                     {}

// acquire takes one of the in-flight push slots, or refuses at once.
func (r *Relay) acquire() (release func(), err error) {
	select {
	case r.inflight <- struct{}{}:
		return func() { <-r.inflight }, nil
	default:
		return nil, &p2http.Error{Code: p2http.EUNAVAILABLE, RetryAfter: time.Second,
			Message: "too many pushes in flight; try again shortly"}
	}
}

// recordPush records what became of a push to t (pushes is 1, or 0 for a
// trailing push, whose pushes were counted as coalesced), where the store
// keeps registrations. A push whose token was reported dead removed the
// registration, and its history with it.
func (r *Relay) recordPush(ctx context.Context, t p2http.Target, pushes int64, coalesced bool, err error) {
	if r.pushLog == nil || p2http.ErrorCode(err) == p2http.EGONE {
		return
	}
	switch {
	case err != nil:
		r.pushLog.record(ctx, t, pushes, p2http.PushFailed, p2http.FailureReason(err))
	case coalesced:
		r.pushLog.record(ctx, t, pushes, p2http.PushCoalesced, "")
	default:
		r.pushLog.record(ctx, t, pushes, p2http.PushDelivered, "")
	}
}

// failed handles a delivery error: a dead token removes its registration.
func (r *Relay) failed(ctx context.Context, t p2http.Target, err error) error {
	var dead *p2http.DeadTokenError
	if !errors.As(err, &dead) {
		return err
	}
	// Remove only a row nobody renewed since we read it, and for APNs only
	// when the token died after the phone last registered.
	before := t.UpdatedAt.Add(time.Microsecond)
	if !dead.Since.IsZero() {
		if !dead.Since.After(t.UpdatedAt) {
			r.cfg.Logger.InfoContext(ctx, "dead-token report older than the registration; kept",
				"service", t.Service, "reason", dead.Reason)
			return &p2http.Error{Code: p2http.EUNAVAILABLE, RetryAfter: time.Minute, Err: err,
				Message: "the push service refused a token that was renewed since; try again later"}
		}
		if dead.Since.Before(before) {
			before = dead.Since
		}
	}
	removed := true // a store that keeps nothing has nothing left to remove
	if r.keeper != nil {
		var rerr error
		if removed, rerr = r.keeper.RemoveDead(ctx, t.Node, before); rerr != nil {
			return rerr
		}
	}
	r.cfg.Logger.InfoContext(ctx, "token reported dead", "service", t.Service, "reason", dead.Reason, "removed", removed)
	if !removed {
		return &p2http.Error{Code: p2http.EUNAVAILABLE, RetryAfter: time.Second, Err: err,
			Message: "the registration changed while pushing; try again"}
	}
	return err
}

// checkService checks that s is a service, and one app can deliver
// through.
func (r *Relay) checkService(app p2http.App, s p2http.Service) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if !r.configured(app, s) {
		return &p2http.Error{Code: p2http.ENOTCONFIGURED, Field: "service",
			Message: "push service " + string(s) + " is not configured on this server"}
	}
	return nil
}

// secretOf returns the secret of a registration: derived from its node, or
// its kept secret opened.
func secretOf(k *keyring.Keyring, reg p2http.Registration) (string, error) {
	if reg.SecretKind == p2http.SecretKept {
		s, err := k.Open(reg.Node, reg.SecretEnc)
		if err != nil {
			return "", &p2http.Error{Code: p2http.EINTERNAL, Message: "a kept secret does not open with the server key", Err: err}
		}
		return s, nil
	}
	return k.Secret(reg.Node), nil
}

// NormalizeAccount parses a bare JID with a localpart and normalises it as
// XMPP servers do (PRECIS case-mapped localpart, lowercase domain), after
// p2http.ValidateAccount's checks.
func NormalizeAccount(account string) (jid.JID, error) {
	if err := p2http.ValidateAccount(account); err != nil {
		return jid.JID{}, err
	}
	j, err := parseStable(account)
	if err != nil {
		return jid.JID{}, p2http.Invalid("account", "account is not a valid JID")
	}
	if j.Localpart() == "" || j.Domainpart() == "" || j.Resourcepart() != "" {
		return jid.JID{}, p2http.Invalid("account", "account must be a bare JID such as alice@example.org")
	}
	return j, nil
}

// parseStable parses a JID and insists that its normal form parses to
// itself: mellium accepts some odd domains ("0@.." becomes "0@.") whose
// normal form is not a JID at all.
func parseStable(s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, err
	}
	again, err := jid.Parse(j.String())
	if err != nil || !again.Equal(j) || j.Domainpart() == "" {
		return jid.JID{}, errors.New("JID without a stable normal form")
	}
	return j, nil
}
