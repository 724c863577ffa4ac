// Package mock holds in-memory implementations of the domain's services
// (p2http.Registrar, p2http.Pusher, p2http.Describer), as WTF Dial's mock
// package does: each method calls the function field of its name, which a
// test sets to check the domain call a translation made and to choose the
// answer. They let the tests of api/ and xmpp/ that check only translation
// (JSON or stanzas to domain calls and back) run without a database, a
// relay or fake push services; the whole stack is tested in relay/, the
// store suites and e2e/.
package mock

import (
	"context"

	"github.com/p2http/p2http"
)

var (
	_ p2http.Registrar = (*Registrar)(nil)
	_ p2http.Pusher    = (*Pusher)(nil)
	_ p2http.Describer = (*Describer)(nil)
)

// Registrar is a p2http.Registrar whose methods call its fields.
type Registrar struct {
	RegisterFn   func(ctx context.Context, req p2http.RegisterRequest) (p2http.Registered, error)
	UnregisterFn func(ctx context.Context, req p2http.UnregisterRequest) error
	LookupFn     func(ctx context.Context, node string) (p2http.Registration, error)
}

// Register calls RegisterFn.
func (r *Registrar) Register(ctx context.Context, req p2http.RegisterRequest) (p2http.Registered, error) {
	return r.RegisterFn(ctx, req)
}

// Unregister calls UnregisterFn.
func (r *Registrar) Unregister(ctx context.Context, req p2http.UnregisterRequest) error {
	return r.UnregisterFn(ctx, req)
}

// Lookup calls LookupFn.
func (r *Registrar) Lookup(ctx context.Context, node string) (p2http.Registration, error) {
	return r.LookupFn(ctx, node)
}

// Pusher is a p2http.Pusher whose Push calls PushFn.
type Pusher struct {
	PushFn func(ctx context.Context, req p2http.PushRequest) (p2http.PushResult, error)
}

// Push calls PushFn.
func (p *Pusher) Push(ctx context.Context, req p2http.PushRequest) (p2http.PushResult, error) {
	return p.PushFn(ctx, req)
}

// Describer is a p2http.Describer whose Describe calls DescribeFn.
type Describer struct {
	DescribeFn func(ctx context.Context) (p2http.Info, error)
}

// Describe calls DescribeFn.
func (d *Describer) Describe(ctx context.Context) (p2http.Info, error) { return d.DescribeFn(ctx) }

// Info is a DescribeFn answering info.
func Info(info p2http.Info) func(context.Context) (p2http.Info, error) {
	return func(context.Context) (p2http.Info, error) { return info, nil }
}
