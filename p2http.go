// Package p2http holds the domain of the push app server: registrations,
// the push services they belong to, the wake-ups sent to phones, the error
// codes every layer shares, and the few interfaces the other packages meet at.
//
// It imports nothing beyond the standard library. Storage lives in db/,
// delivery in fcm/ and apns/, the HTTP API in api/, the orchestration of a
// push in relay/, and cmd/ wires them together.
package p2http

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
