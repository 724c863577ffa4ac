package p2http

import (
	"context"
	"time"
)

// Wakeup is the content-free message sent to one phone.
type Wakeup struct {
	Token     string
	Device    string // the p2 device hash, sent as "account"
	Important bool   // a message body arrived: wake the phone at high priority
}

// Priority names the urgency a wake-up was sent with.
type Priority string

// The priorities, mapped by each sender to its own terms.
const (
	PriorityHigh   Priority = "high"
	PriorityNormal Priority = "normal"
)

// PriorityOf returns the priority a wake-up is sent with.
func PriorityOf(w Wakeup) Priority {
	if w.Important {
		return PriorityHigh
	}
	return PriorityNormal
}

// Sender delivers wake-ups through one push service. Send returns nil when
// the service accepted the message, a *DeadTokenError when the token will
// never work again, and otherwise an *Error whose code says whether to try
// again later (EUNAVAILABLE, ETIMEOUT) or fix the configuration (EUPSTREAM).
type Sender interface {
	Send(ctx context.Context, w Wakeup) error
}

// Target is where a push goes: everything a Sender needs, and what is needed
// to clean up after a dead token.
type Target struct {
	App     App
	Service Service
	// Domain is the registered account's domain: the domain a push to the
	// node is charged to, whatever the request claimed.
	Domain    string
	Node      string
	Device    string
	Token     string
	UpdatedAt time.Time
	// PushHistory is the node's history as the store had it when the push
	// was resolved: what decides when its next pushes are worth writing.
	// Empty when not known (the stateless mode).
	PushHistory
}

// PushTimePrecision is how often, at most, the pushes of a node whose
// pushes keep the same outcome are written to its registration. Every
// record writes a new version of the registration's row, and with one per
// push (a busy phone is pushed dozens of times an hour) these writes were
// most of the database's writes and WAL; the history only feeds GET
// /v1/registration, stats and retention, which counts in days.
const PushTimePrecision = time.Hour

// Pusher wakes the phone behind a node: the domain's push service.
// relay.Relay implements it; api serves it over HTTP. A token the provider
// reports dead removes its registration and yields EGONE; other failures
// are *Error values: EINVALID for a request Validate refuses (or a domain
// that is no domain name), ENOTFOUND for an unknown node (or one of another
// domain or app), EFORBIDDEN for a wrong secret, ERATELIMIT, and the
// provider's EUNAVAILABLE, EUPSTREAM or ETIMEOUT.
type Pusher interface {
	Push(ctx context.Context, req PushRequest) (PushResult, error)
}

// PushRequest is an XMPP server's request to wake the phone behind a node.
type PushRequest struct {
	Node   string
	Secret string
	// Domain is the publishing server's domain; when set, the node must have
	// been registered by an account of that domain. It is a claim until node
	// and secret are checked: rate limits charge the registration's domain.
	Domain string
	// App, when set, is the app the push was addressed to (the default app
	// is DefaultApp); a node of another app is then unknown.
	App       App
	Important bool
	// Caller identifies who sent the request, as the transport that
	// received it knows them: the API token it authenticated with, else its
	// network address. A push that fails (unknown node, wrong secret,
	// another domain) is charged to Caller and Domain together. Empty when
	// the transport cannot tell; it is never logged.
	Caller string
}

// Validate checks that req names a node and a secret within their limits
// (MaxNodeLength, MaxSecretLength): no longer one was ever handed out. It
// returns an EINVALID *Error naming the field at fault. Domain and App are
// the Pusher's to check: a domain is normalised, an app served or not.
func (req PushRequest) Validate() error {
	switch {
	case req.Node == "":
		return Invalid("node", "node is required")
	case req.Secret == "":
		return Invalid("secret", "secret is required")
	case len(req.Node) > MaxNodeLength:
		return Invalid("node", "node is longer than %d bytes", MaxNodeLength)
	case len(req.Secret) > MaxSecretLength:
		return Invalid("secret", "secret is longer than %d bytes", MaxSecretLength)
	}
	return nil
}

// PushResult is what became of a push that did not fail.
type PushResult struct {
	Service  Service
	Priority Priority
	// Coalesced is true when the push was merged into a trailing push for
	// the same node, sent once the coalescing window has passed.
	Coalesced bool
}

// Resolver turns node and secret into a delivery target. The stored mode
// looks the node up in a Store; a stateless mode can open a sealed node.
// It returns ENOTFOUND for an unknown node (or one of another domain) and
// EFORBIDDEN for a wrong secret.
type Resolver interface {
	Resolve(ctx context.Context, req PushRequest) (Target, error)
}
