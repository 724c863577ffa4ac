// Package ratelimit keeps one token bucket per key (a sending domain, an
// account domain, an API token, a caller and the domain it claims), on
// golang.org/x/time/rate, with a bounded number of keys so that memory stays
// flat whatever the callers send.
package ratelimit

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a sustained rate per second and a burst.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Off reports whether r disables limiting.
func (r Rate) Off() bool { return r.PerSecond <= 0 }

// String formats r as ParseRate reads it.
func (r Rate) String() string {
	if r.Off() {
		return "0"
	}
	return strconv.FormatFloat(r.PerSecond, 'f', -1, 64) + ":" + strconv.Itoa(r.Burst)
}

// ParseRate reads "RATE:BURST" (per second), "RATE" (burst = 10 s worth),
// or "0"/"off" for no limit.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "0" || strings.EqualFold(s, "off") {
		return Rate{}, nil
	}
	perS, burstS, hasBurst := strings.Cut(s, ":")
	per, err := strconv.ParseFloat(perS, 64)
	if err != nil || per <= 0 || math.IsInf(per, 0) || math.IsNaN(per) {
		return Rate{}, fmt.Errorf("%q is not RATE:BURST with a positive rate per second", s)
	}
	burst := int(math.Ceil(per * 10))
	if hasBurst {
		burst, err = strconv.Atoi(burstS)
		if err != nil || burst < 1 {
			return Rate{}, fmt.Errorf("%q: the burst must be a whole number of at least 1", s)
		}
	}
	return Rate{PerSecond: per, Burst: burst}, nil
}

// Keyed is a set of token buckets, one per key. Keys are kept as 64-bit
// hashes under a seed drawn at start: a key costs the same memory whatever
// its length (a claimed domain can be a kilobyte), and two keys share a
// bucket only by a chance of about n²/2⁶⁵ for n keys, which a caller cannot
// steer without the seed.
type Keyed struct {
	rate    Rate
	maxKeys int
	now     func() time.Time
	seed    maphash.Seed

	mu      sync.Mutex
	buckets map[uint64]*rate.Limiter
}

// DefaultMaxKeys bounds the buckets kept at once.
const DefaultMaxKeys = 100_000

// MaxFailKeys bounds the budgets of failed pushes kept at once, one per
// caller and claimed domain that failed lately (about 2 MiB when full). The
// pairs of real servers with stale nodes number in the thousands at most; a
// flood of made-up domains fills the rest, and the table then forgets the
// least spent budgets first (docs/reliability.md).
const MaxFailKeys = 20_000

// New returns buckets of rate r, at most DefaultMaxKeys of them; nil when r
// is off.
func New(r Rate) *Keyed { return NewMaxKeys(r, DefaultMaxKeys) }

// NewMaxKeys returns buckets of rate r, at most maxKeys of them (at least
// 2); nil when r is off.
func NewMaxKeys(r Rate, maxKeys int) *Keyed {
	if r.Off() {
		return nil
	}
	return &Keyed{rate: r, maxKeys: max(maxKeys, 2), now: time.Now, seed: maphash.MakeSeed(),
		buckets: map[uint64]*rate.Limiter{}}
}

// Allow takes a token from key's bucket, or says how long until one is
// free. A nil *Keyed allows everything.
func (k *Keyed) Allow(key string) (bool, time.Duration) {
	if k == nil {
		return true, 0
	}
	h := maphash.String(k.seed, key)
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	b := k.bucket(h, now)
	if b.AllowN(now, 1) {
		return true, 0
	}
	return false, k.untilToken(b, now)
}

// Peek reports whether key's bucket holds a token, without taking it, or
// says how long until it does. A key without a bucket has a full one, and
// Peek creates none: with Charge, only the keys charged take room. A nil
// *Keyed allows everything.
func (k *Keyed) Peek(key string) (bool, time.Duration) {
	if k == nil {
		return true, 0
	}
	h := maphash.String(k.seed, key)
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	b := k.buckets[h]
	if b == nil || b.TokensAt(now) >= 1 {
		return true, 0
	}
	return false, k.untilToken(b, now)
}

// Charge takes one token from key's bucket, creating the bucket if needed.
// An empty bucket goes into debt, down to minus one burst, so that requests
// that passed Peek together are all paid for before the next is let
// through. A nil *Keyed does nothing.
func (k *Keyed) Charge(key string) {
	if k == nil {
		return
	}
	h := maphash.String(k.seed, key)
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	b := k.bucket(h, now)
	if b.TokensAt(now) > -float64(k.rate.Burst) {
		b.ReserveN(now, 1) // never cancelled: a debt when no token is left
	}
}

// bucket returns the bucket of hash h, making room for it first if the
// table is full. k.mu is held.
func (k *Keyed) bucket(h uint64, now time.Time) *rate.Limiter {
	b := k.buckets[h]
	if b == nil {
		if len(k.buckets) >= k.maxKeys {
			k.sweep(now)
		}
		b = rate.NewLimiter(rate.Limit(k.rate.PerSecond), k.rate.Burst)
		k.buckets[h] = b
	}
	return b
}

// untilToken is the time until b holds one token again, at least a
// millisecond.
func (k *Keyed) untilToken(b *rate.Limiter, now time.Time) time.Duration {
	wait := time.Duration((1 - b.TokensAt(now)) / k.rate.PerSecond * float64(time.Second))
	return max(wait, time.Millisecond)
}

// sweep forgets full buckets (they behave as new ones would) and, if that
// leaves more than half of the table in use, the fullest of the rest until
// half is: a flood of distinct keys cannot grow memory without bound, and
// the buckets it pushes out are the ones nearest to new, never the spent
// ones that are holding a caller back. k.mu is held.
func (k *Keyed) sweep(now time.Time) {
	type entry struct {
		h      uint64
		tokens float64
	}
	rest := make([]entry, 0, len(k.buckets))
	for h, b := range k.buckets {
		t := b.TokensAt(now)
		if t >= float64(k.rate.Burst) {
			delete(k.buckets, h)
			continue
		}
		rest = append(rest, entry{h, t})
	}
	if len(k.buckets) <= k.maxKeys/2 {
		return
	}
	slices.SortFunc(rest, func(a, b entry) int { return cmp.Compare(b.tokens, a.tokens) })
	for _, e := range rest[:len(rest)-k.maxKeys/2] {
		delete(k.buckets, e.h)
	}
}

// Len returns the number of buckets kept.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}
