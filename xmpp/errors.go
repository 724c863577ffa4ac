package xmpp

import (
	"encoding/xml"
	"fmt"
	"strings"
	"unicode"

	"github.com/p2http/p2http"
	"mellium.im/xmpp/stanza"
)

// This file is the one place where failures become stanza errors: by their
// error code, the domain's (as api.Client turns p2http's answers back into
// them) or p2xmpp's own, through one table.
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

// Codes of the failures only p2xmpp finds: the stanza's framing or
// p2xmpp's own state rather than the domain's meaning. They never come from
// p2http, and are answered through the same table as the domain's codes.
const (
	codeUnsupported     = "unsupported"      // an IQ p2xmpp does not serve
	codeTooLarge        = "too-large"        // a stanza beyond the limits of ReadStanza
	codeBadAction       = "bad-action"       // a command action other than execute, complete or cancel
	codeBadPayload      = "bad-payload"      // a command without its form or a required field
	codeMalformedAction = "malformed-action" // an action XEP-0050 does not define
	codeJIDMismatch     = "jid-mismatch"     // p2http's jid differs from the component's
	codeShuttingDown    = "shutting-down"    // p2xmpp is stopping
)

// condition is one row of the table.
type condition struct {
	typ  stanza.ErrorType
	cond stanza.Condition
	app  string // a XEP-0050 application condition, or ""
	text string // the text when the failure brings no message
	// own: the text is always the row's. The failure's message is then
	// about p2xmpp's own configuration or a bug, nothing the XMPP server
	// or the phone can act on.
	own bool
}

// table maps every error code, the domain's (p2http's error codes, as
// api.Client returns them) and p2xmpp's own above, to the stanza error
// answered. A code it lacks is answered as EINTERNAL.
var table = map[string]condition{
	p2http.EINVALID:       {stanza.Modify, stanza.BadRequest, "", "the request is malformed", false},
	p2http.ENOTCONFIGURED: {stanza.Modify, stanza.BadRequest, "", "the push service is not configured", false},
	p2http.EFORBIDDEN:     {stanza.Auth, stanza.Forbidden, "", "wrong secret", false},
	p2http.ENOTFOUND:      {stanza.Cancel, stanza.ItemNotFound, "", "no such node or registration", false},
	p2http.EGONE:          {stanza.Cancel, stanza.ItemNotFound, "", "the push service reported the token dead; register again", false},
	p2http.EUNAUTHORIZED:  {stanza.Wait, stanza.InternalServerError, "", "the push service is misconfigured; try again later", true},
	p2http.ERATELIMIT:     {stanza.Wait, stanza.ResourceConstraint, "", "too many requests; try again later", false},
	p2http.EUPSTREAM:      {stanza.Wait, stanza.InternalServerError, "", "the push service refused the app server's credentials; try again later", false},
	p2http.EUNAVAILABLE:   {stanza.Wait, stanza.RecipientUnavailable, "", "the push service is unavailable for now; try again later", false},
	p2http.ETIMEOUT:       {stanza.Wait, stanza.RemoteServerTimeout, "", "the push service did not answer in time; try again later", false},
	p2http.EINTERNAL:      {stanza.Wait, stanza.InternalServerError, "", "internal error; try again later", true},
	p2http.EUNREACHABLE:   {stanza.Wait, stanza.RemoteServerTimeout, "", "the push app server is unreachable; try again later", true},

	codeJIDMismatch:     {stanza.Wait, stanza.InternalServerError, "", "the push component is misconfigured; try again later", true},
	codeShuttingDown:    {stanza.Wait, stanza.RecipientUnavailable, "", "the push component is restarting; try again later", true},
	codeUnsupported:     {stanza.Cancel, stanza.ServiceUnavailable, "", "not served by the push component", false},
	codeTooLarge:        {stanza.Modify, stanza.PolicyViolation, "", "the stanza is too large", false},
	codeBadAction:       {stanza.Modify, stanza.BadRequest, "bad-action", "this command has a single stage: use execute or complete", false},
	codeBadPayload:      {stanza.Modify, stanza.BadRequest, "bad-payload", "the command form lacks a required field", false},
	codeMalformedAction: {stanza.Modify, stanza.BadRequest, "malformed-action", "unknown action", false},
}

// ErrJIDMismatch is the failure while p2http's jid differs from the
// component's: a phone would enable push towards the wrong address.
var ErrJIDMismatch error = &p2http.Error{Code: codeJIDMismatch, Message: "p2http's jid differs from the component's"}

// ErrShuttingDown answers requests that arrive while p2xmpp stops.
var ErrShuttingDown error = &p2http.Error{Code: codeShuttingDown, Message: "p2xmpp is shutting down"}

// fail returns a failure p2xmpp found itself, with the stanza error's text
// ("" for the table's).
func fail(code, text string) error { return &p2http.Error{Code: code, Message: text} }

// infoFailure is a failed Describe while checking p2http. Whatever p2http
// answered there, the request waiting for it gets a wait error: an answer
// about p2http's info says nothing about the user's registration. No answer
// at all stays EUNREACHABLE; anything else becomes EINTERNAL.
func infoFailure(err error) error {
	code := p2http.EINTERNAL
	if p2http.ErrorCode(err) == p2http.EUNREACHABLE {
		code = p2http.EUNREACHABLE
	}
	return &p2http.Error{Code: code, Err: fmt.Errorf("checking p2http's info: %w", err)}
}

// maxText bounds the <text/> of an error.
const maxText = 200

// ErrorFor returns the stanza error answering err, by its code
// (p2http.ErrorCode): failures it does not know are
// internal-server-error/wait. The text is the failure's message (p2http's
// detail, which never holds a token, a secret or a JID; cleaned and cut all
// the same), or the table's when there is none or the row keeps its own.
func ErrorFor(err error) StanzaError {
	c, ok := table[p2http.ErrorCode(err)]
	if !ok {
		c = table[p2http.EINTERNAL]
	}
	text := c.text
	if !c.own {
		if m := p2http.ErrorMessage(err); m != "" {
			text = m
		}
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
