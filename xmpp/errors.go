package xmpp

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"mellium.im/xmpp/stanza"
)

// This file is the one place where outcomes become stanza errors.
//
// Only permanent conditions caused by the user's registration (unknown node,
// wrong secret, dead token) or by the request itself get a type other than
// wait: ejabberd deletes a push registration at the first such error, Prosody
// after push_max_errors of them. Whatever is temporary, or our own fault, is
// type wait, and the XMPP server keeps the registration.

// StanzaError is an XMPP stanza error (RFC 6120 §8.3) as p2xmpp answers it.
type StanzaError struct {
	Type      stanza.ErrorType
	Condition stanza.Condition
	// Text is a short explanation for people; it never holds a token, a
	// secret, a message body or a JID.
	Text string
	// App is an application-specific condition, such as XEP-0050's
	// {http://jabber.org/protocol/commands bad-action}; zero when none.
	App xml.Name
}

// Error implements error.
func (e StanzaError) Error() string {
	s := string(e.Type) + "/" + string(e.Condition)
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// element renders the <error/> element.
func (e StanzaError) element() *out {
	o := el("", "error", "type", string(e.Type))
	o.add(el(NSStanzas, string(e.Condition)))
	if e.Text != "" {
		t := el(NSStanzas, "text").withText(e.Text)
		t.attr = append(t.attr, xml.Attr{Name: xml.Name{Space: nsXML, Local: "lang"}, Value: "en"})
		o.add(t)
	}
	if e.App.Local != "" {
		o.add(el(e.App.Space, e.App.Local))
	}
	return o
}

// outcome is a kind of failure, whoever found it.
type outcome string

// The outcomes, with where they come from.
const (
	outBadRequest   outcome = "bad-request"      // HTTP 400; a malformed command or form
	outForbidden    outcome = "forbidden"        // HTTP 403 (wrong secret); a publish without node or secret (as p2)
	outNotFound     outcome = "not-found"        // HTTP 404 (unknown node or registration); an unknown command or disco node
	outGone         outcome = "gone"             // HTTP 410: the token was reported dead, the registration removed
	outUnauthorized outcome = "unauthorized"     // HTTP 401: p2http refused our own API token (misconfiguration)
	outRateLimited  outcome = "rate-limited"     // HTTP 429
	outUpstream     outcome = "upstream"         // HTTP 502: the push service refused p2http's credentials
	outUnavailable  outcome = "unavailable"      // HTTP 503: push service or database unavailable for now
	outTimeout      outcome = "timeout"          // HTTP 504: the push service did not answer in time
	outServerError  outcome = "server-error"     // any other 5xx or unexpected answer; a bug of ours
	outUnreachable  outcome = "unreachable"      // p2http refused the connection or did not answer in time
	outJIDMismatch  outcome = "jid-mismatch"     // p2http's jid differs from ours
	outShutdown     outcome = "shutting-down"    // p2xmpp is stopping
	outUnsupported  outcome = "unsupported"      // an IQ p2xmpp does not serve
	outTooLarge     outcome = "too-large"        // a stanza beyond the limits of ReadStanza
	outBadAction    outcome = "bad-action"       // a command action other than execute, complete or cancel
	outBadPayload   outcome = "bad-payload"      // a command without its form or a required field
	outMalformedCmd outcome = "malformed-action" // an action XEP-0050 does not define
)

// condition is one row of the table.
type condition struct {
	typ  stanza.ErrorType
	cond stanza.Condition
	app  string // a XEP-0050 application condition, or ""
	text string // the text when the failure brings none
}

// table maps every outcome to the stanza error answered.
var table = map[outcome]condition{
	outBadRequest:   {stanza.Modify, stanza.BadRequest, "", "the request is malformed"},
	outForbidden:    {stanza.Auth, stanza.Forbidden, "", "wrong secret"},
	outNotFound:     {stanza.Cancel, stanza.ItemNotFound, "", "no such node or registration"},
	outGone:         {stanza.Cancel, stanza.ItemNotFound, "", "the push service reported the token dead; register again"},
	outUnauthorized: {stanza.Wait, stanza.InternalServerError, "", "the push service is misconfigured; try again later"},
	outRateLimited:  {stanza.Wait, stanza.ResourceConstraint, "", "too many requests; try again later"},
	outUpstream:     {stanza.Wait, stanza.InternalServerError, "", "the push service refused the app server's credentials; try again later"},
	outUnavailable:  {stanza.Wait, stanza.RecipientUnavailable, "", "the push service is unavailable for now; try again later"},
	outTimeout:      {stanza.Wait, stanza.RemoteServerTimeout, "", "the push service did not answer in time; try again later"},
	outServerError:  {stanza.Wait, stanza.InternalServerError, "", "internal error; try again later"},
	outUnreachable:  {stanza.Wait, stanza.RemoteServerTimeout, "", "the push app server is unreachable; try again later"},
	outJIDMismatch:  {stanza.Wait, stanza.InternalServerError, "", "the push component is misconfigured; try again later"},
	outShutdown:     {stanza.Wait, stanza.RecipientUnavailable, "", "the push component is restarting; try again later"},
	outUnsupported:  {stanza.Cancel, stanza.ServiceUnavailable, "", "not served by the push component"},
	outTooLarge:     {stanza.Modify, stanza.PolicyViolation, "", "the stanza is too large"},
	outBadAction:    {stanza.Modify, stanza.BadRequest, "bad-action", "this command has a single stage: use execute or complete"},
	outBadPayload:   {stanza.Modify, stanza.BadRequest, "bad-payload", "the command form lacks a required field"},
	outMalformedCmd: {stanza.Modify, stanza.BadRequest, "malformed-action", "unknown action"},
}

// statusOutcomes maps p2http's HTTP statuses. The permanent ones apply only
// when the answer is p2http's own problem document of the matching type
// (problemTypes): a 404 from a misrouted proxy must not delete registrations.
var statusOutcomes = map[int]outcome{
	400: outBadRequest,
	401: outUnauthorized,
	403: outForbidden,
	404: outNotFound,
	410: outGone,
	429: outRateLimited,
	502: outUpstream,
	503: outUnavailable,
	504: outTimeout,
}

// problemTypes lists, for the statuses answered with a non-wait error, the
// p2http problem types that make them permanent.
var problemTypes = map[int][]string{
	400: {"urn:p2http:problem:invalid-request", "urn:p2http:problem:service-not-configured"},
	403: {"urn:p2http:problem:forbidden"},
	404: {"urn:p2http:problem:not-found"},
	410: {"urn:p2http:problem:token-dead"},
}

// httpOutcome classifies an answer of p2http.
func httpOutcome(e *HTTPError) outcome {
	o, ok := statusOutcomes[e.Status]
	if !ok {
		return outServerError // any other 5xx, 413, 405…: our fault, temporary for the user
	}
	if types, permanent := problemTypes[e.Status]; permanent {
		for _, t := range types {
			if e.Type == t {
				return o
			}
		}
		return outServerError
	}
	return o
}

// ErrJIDMismatch is the failure while p2http's jid differs from the
// component's: a phone would enable push towards the wrong address.
var ErrJIDMismatch = errors.New("p2http's jid differs from the component's")

// ErrShuttingDown answers requests that arrive while p2xmpp stops.
var ErrShuttingDown = errors.New("p2xmpp is shutting down")

// HTTPError is an answer of p2http other than success.
type HTTPError struct {
	Status int
	// Type is the problem type (urn:p2http:problem:…), "" when the answer was
	// not p2http's problem document.
	Type   string
	Title  string
	Detail string
	// RequestID is p2http's id of the request, for its log.
	RequestID  string
	RetryAfter time.Duration
}

// Error implements error.
func (e *HTTPError) Error() string {
	s := fmt.Sprintf("p2http answered %d", e.Status)
	if e.Type != "" {
		s += " " + strings.TrimPrefix(e.Type, "urn:p2http:problem:")
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// UnreachableError is a call on p2http that got no answer: the connection was
// refused or broke, or the HTTP timeout passed.
type UnreachableError struct {
	Err error
}

// Error implements error.
func (e *UnreachableError) Error() string { return "p2http unreachable: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *UnreachableError) Unwrap() error { return e.Err }

// infoError is a failed GET /v1/info. Whatever p2http answered there, the
// request waiting for it is answered with a wait error: an answer of the
// info endpoint says nothing about the user's registration.
type infoError struct {
	err error
}

// Error implements error.
func (e *infoError) Error() string { return "checking p2http's info: " + e.err.Error() }

// Unwrap returns the cause.
func (e *infoError) Unwrap() error { return e.err }

// requestError is a problem p2xmpp found in the request itself.
type requestError struct {
	outcome outcome
	text    string // "" for the table's
}

// Error implements error.
func (e *requestError) Error() string {
	if e.text != "" {
		return string(e.outcome) + ": " + e.text
	}
	return string(e.outcome)
}

func reqErr(o outcome, text string) error { return &requestError{outcome: o, text: text} }

// outcomeOf classifies any failure; unknown ones are server errors (wait).
func outcomeOf(err error) (outcome, string) {
	var (
		re *requestError
		he *HTTPError
		ue *UnreachableError
		ie *infoError
	)
	switch {
	case errors.As(err, &ie):
		if errors.As(ie.err, &ue) {
			return outUnreachable, ""
		}
		return outServerError, "" // never a non-wait error, whatever the info endpoint said
	case errors.As(err, &re):
		return re.outcome, re.text
	case errors.As(err, &he):
		o := httpOutcome(he)
		text := ""
		if o != outServerError && o != outUnauthorized {
			// p2http's detail never holds a token, a secret or a JID; it is
			// cleaned and cut all the same.
			text = he.Detail
		}
		return o, text
	case errors.As(err, &ue):
		return outUnreachable, ""
	case errors.Is(err, ErrJIDMismatch):
		return outJIDMismatch, ""
	case errors.Is(err, ErrShuttingDown):
		return outShutdown, ""
	}
	return outServerError, ""
}

// maxText bounds the <text/> of an error.
const maxText = 200

// ErrorFor returns the stanza error answering err. Failures it does not
// know are internal-server-error/wait.
func ErrorFor(err error) StanzaError {
	o, text := outcomeOf(err)
	c := table[o]
	if text == "" {
		text = c.text
	}
	e := StanzaError{Type: c.typ, Condition: c.cond, Text: cleanText(text)}
	if c.app != "" {
		e.App = xml.Name{Space: NSCommands, Local: c.app}
	}
	return e
}

// cleanText drops control characters and cuts s to maxText bytes on a rune
// boundary.
func cleanText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) <= maxText {
		return s
	}
	cut := maxText
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
