package relay

import (
	"context"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/keyring"
)

// StoreResolver resolves a push by looking its node up in a Store and
// checking the secret against the derived or kept one, in constant time.
type StoreResolver struct {
	Store   p2http.Store
	Keyring *keyring.Keyring
}

// Resolve implements p2http.Resolver.
func (s *StoreResolver) Resolve(ctx context.Context, req p2http.PushRequest) (p2http.Target, error) {
	reg, err := s.Store.Lookup(ctx, req.Node)
	if p2http.ErrorCode(err) == p2http.ENOTFOUND || err == nil && req.Domain != "" && reg.Domain != req.Domain {
		// A node of another domain is as unknown as a missing one, as in p2.
		return p2http.Target{}, p2http.Errorf(p2http.ENOTFOUND, "no registration for this node")
	}
	if err != nil {
		return p2http.Target{}, err
	}
	want, err := secretOf(s.Keyring, reg)
	if err != nil || !keyring.Equal(want, req.Secret) {
		return p2http.Target{}, p2http.Errorf(p2http.EFORBIDDEN, "wrong secret for this node")
	}
	return reg.Target(), nil
}
