// Package ratelimit keeps one token bucket per key (a sending domain, an
// account domain, an API token), on golang.org/x/time/rate, with a bounded
// number of keys so that memory stays flat whatever the callers send.
package ratelimit

import (
	"fmt"
	"math"
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

// Keyed is a set of token buckets, one per key.
type Keyed struct {
	rate    Rate
	maxKeys int
	now     func() time.Time

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

// DefaultMaxKeys bounds the buckets kept at once.
const DefaultMaxKeys = 100_000

// New returns buckets of rate r; nil when r is off.
func New(r Rate) *Keyed {
	if r.Off() {
		return nil
	}
	return &Keyed{rate: r, maxKeys: DefaultMaxKeys, now: time.Now, buckets: map[string]*rate.Limiter{}}
}

// Allow takes a token from key's bucket, or says how long until one is
// free. A nil *Keyed allows everything.
func (k *Keyed) Allow(key string) (bool, time.Duration) {
	if k == nil {
		return true, 0
	}
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	b := k.buckets[key]
	if b == nil {
		if len(k.buckets) >= k.maxKeys {
			k.sweep(now)
		}
		b = rate.NewLimiter(rate.Limit(k.rate.PerSecond), k.rate.Burst)
		k.buckets[key] = b
	}
	if b.AllowN(now, 1) {
		return true, 0
	}
	// Time until one token is back.
	wait := time.Duration((1 - b.TokensAt(now)) / k.rate.PerSecond * float64(time.Second))
	return false, max(wait, time.Millisecond)
}

// sweep forgets full buckets (they behave as new ones would) and, if every
// bucket is in use, half of them: a flood of distinct keys cannot grow
// memory without bound.
func (k *Keyed) sweep(now time.Time) {
	for key, b := range k.buckets {
		if b.TokensAt(now) >= float64(k.rate.Burst) {
			delete(k.buckets, key)
		}
	}
	if len(k.buckets) < k.maxKeys {
		return
	}
	n := 0
	for key := range k.buckets {
		if n >= k.maxKeys/2 {
			break
		}
		delete(k.buckets, key)
		n++
	}
}

// Len returns the number of buckets kept.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}
