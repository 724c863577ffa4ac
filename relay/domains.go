package relay

import (
	"errors"
	"hash/maphash"
	"strings"
	"sync/atomic"
)

// domainSlots is the size of a domainCache: far more than the XMPP servers
// that push to one app server at once, and at most 256 × 2 KiB of memory
// (a domain is at most 1,023 bytes, and its normal form no longer).
const domainSlots = 256

// errNotDomain is what normalizeDomain says of anything but a domain.
var errNotDomain = errors.New("not a domain name")

// domainCache remembers the normal forms of the domains pushes name. A
// push's domain is the XMPP server that sent it, so a few domains make up
// nearly all pushes, and normalising one (PRECIS and IDNA, twice, to check
// that the normal form is stable) was 2 % of a push's CPU and a quarter of
// a kilobyte of garbage. The table is direct-mapped: a domain has one
// slot, chosen by its hash, and a miss replaces whatever the slot held.
// Only domains that normalised are kept, and each as its exact input, so
// a hit returns what normalizeDomain would. Safe for concurrent use.
type domainCache struct {
	seed  maphash.Seed
	slots [domainSlots]atomic.Pointer[domainEntry]
}

// domainEntry is a domain as a push named it and its normal form.
type domainEntry struct{ raw, norm string }

func newDomainCache() *domainCache { return &domainCache{seed: maphash.MakeSeed()} }

// normalize returns normalizeDomain(raw), from the cache when it can.
func (c *domainCache) normalize(raw string) (string, error) {
	slot := &c.slots[maphash.String(c.seed, raw)%domainSlots]
	if e := slot.Load(); e != nil && e.raw == raw {
		return e.norm, nil
	}
	norm, err := normalizeDomain(raw)
	if err != nil {
		return "", err
	}
	// A copy, so that the entry keeps no larger string alive.
	slot.Store(&domainEntry{raw: strings.Clone(raw), norm: norm})
	return norm, nil
}

// normalizeDomain returns the normal form of a domain name, and
// errNotDomain for anything else: a JID with a local or resource part, or
// one whose normal form is empty ("." normalises to nothing, which would
// skip the per-domain rate limit).
func normalizeDomain(raw string) (string, error) {
	d, err := parseStable(raw)
	if err != nil || d.Localpart() != "" || d.Resourcepart() != "" || d.Domainpart() == "" {
		return "", errNotDomain
	}
	return d.Domainpart(), nil
}
