// Package p2http holds the domain of the push app server: registrations and
// their one rule, the apps and push services they belong to, the wake-ups
// sent to phones, the error codes every layer shares, the domain's services
// with their requests and results (Registrar, Pusher, Describer), and the
// few interfaces the other packages meet at (Store, Keeper, Sender,
// Resolver, Limiter).
//
// It imports nothing beyond the standard library. Storage lives in db/ and
// sealed/, delivery in fcm/ and apns/, the services in relay/, the HTTP API
// over them in api/, and cmd/ wires them together.
package p2http

import "time"

// Service is a push service a phone can be woken through.
type Service string

// The push services p2http speaks to.
const (
	FCM  Service = "fcm"
	APNs Service = "apns"
)

// Services lists every known service, in a stable order.
var Services = []Service{FCM, APNs}

// Valid reports whether s names a known service.
func (s Service) Valid() bool { return s == FCM || s == APNs }

// Validate returns an EINVALID *Error about the request field "service"
// when s names no known service.
func (s Service) Validate() error {
	if !s.Valid() {
		return Invalid("service", "service must be fcm or apns")
	}
	return nil
}

// Limiter is a rate limit per key (ratelimit/ implements it): the relay
// limits pushes and registrations per domain, the API requests per token.
type Limiter interface {
	// Allow takes one token for key, or says how long until one is free.
	Allow(key string) (ok bool, retryAfter time.Duration)
}
