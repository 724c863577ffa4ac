package p2http

import (
	"errors"
	"fmt"
	"time"
)

// Error codes shared by every layer. The HTTP API maps each to a status and
// a problem type in one table (api/problem.go), and its Client maps p2http's
// problem types back to them; p2xmpp maps each to a stanza error in one
// table (xmpp/errors.go). Nothing else decides how a failure looks on the
// wire.
const (
	EINVALID       = "invalid"                // malformed or unacceptable input
	EUNAUTHORIZED  = "unauthorized"           // missing or wrong API token
	EFORBIDDEN     = "forbidden"              // wrong secret
	ENOTFOUND      = "not-found"              // unknown node or registration
	EGONE          = "token-dead"             // the push service reported the token dead
	ENOTCONFIGURED = "service-not-configured" // the push service has no credentials
	ERATELIMIT     = "rate-limited"           // too many requests for now
	EUNAVAILABLE   = "unavailable"            // provider or database unavailable for now
	EUPSTREAM      = "upstream-rejected"      // the provider refused our credentials or payload
	ETIMEOUT       = "timeout"                // the deadline passed
	EINTERNAL      = "internal"               // a bug or an unexpected failure
	EUNREACHABLE   = "unreachable"            // no answer over the network: refused, broken or timed out (api.Client)
)

// Error is a failure the domain knows how to describe. Message is safe to
// show to the caller: it never holds a token, a secret or a JID. It may be
// empty when the code says all the caller can be told (api.Client's
// EUNREACHABLE, for one); the cause is then in Err.
type Error struct {
	Code    string
	Message string
	// Field names the request field at fault, when there is one.
	Field string
	// RetryAfter, when set, tells the caller when trying again makes sense.
	RetryAfter time.Duration
	// Err is the underlying cause, for logs; it is not shown to callers.
	Err error
}

// Error implements error: the code, the message when there is one, and
// the cause when there is one.
func (e *Error) Error() string {
	s := e.Code
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error about one request field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrNodeTaken is returned by Store.Register when the proposed node belongs
// to another registration already; the caller draws a new node and retries.
var ErrNodeTaken = errors.New("node already taken")

// DeadTokenError reports that a push service will never deliver to a token
// again. Its code is EGONE.
type DeadTokenError struct {
	Reason string // the provider's reason, such as "UNREGISTERED"
	// Since is when the provider says the token stopped being valid (APNs'
	// timestamp); zero when it did not say.
	Since time.Time
}

// Error implements error.
func (e *DeadTokenError) Error() string { return "token reported dead: " + e.Reason }

// ErrorCode returns the code of err: the code of an *Error, EGONE for a
// *DeadTokenError, "" for nil and EINTERNAL for anything else.
func ErrorCode(err error) string {
	switch e := err.(type) {
	case nil:
		return ""
	case *Error: // the common case, without errors.As's allocation
		return e.Code
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var d *DeadTokenError
	if errors.As(err, &d) {
		return EGONE
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	var d *DeadTokenError
	if errors.As(err, &d) {
		return "the push service reported the token dead; the registration was removed"
	}
	return "internal error"
}

// ErrorField returns the request field err is about, or "".
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// RetryAfter returns the retry hint carried by err, or zero.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}
