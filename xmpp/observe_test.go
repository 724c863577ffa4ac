package xmpp

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/p2http/p2http"
)

// Kinds lists every kind of request Observe reports, and StanzaErrors
// every stanza error answered: the metrics export them from the start.
func TestKindsAndStanzaErrors(t *testing.T) {
	const from = ` from='example.com' to='push.example.org'`
	stanzas := map[string]string{
		"publish":      publishSeeds[0],
		"command":      commandSeeds[0],
		"ping":         `<iq type='get'` + from + ` id='p'><ping xmlns='urn:xmpp:ping'/></iq>`,
		"disco#info":   `<iq type='get'` + from + ` id='i'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
		"disco#items":  `<iq type='get'` + from + ` id='t'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`,
		"unsupported":  `<iq type='get'` + from + ` id='u'><vCard xmlns='vcard-temp'/></iq>`,
		"too-large":    `<iq type='get'` + from + ` id='l'>` + strings.Repeat("<a/>", MaxElements) + `</iq>`,
		"unknown-type": `<iq type='other'` + from + ` id='o'><ping xmlns='urn:xmpp:ping'/></iq>`,
		"empty":        `<iq type='get'` + from + ` id='e'/>`,
	}
	var seen []string
	var failures []error
	c, err := New(Config{JID: "push.example.org", Registrar: &recorder{}, Pusher: &recorder{}, Describer: &recorder{},
		Logger: slog.New(slog.DiscardHandler), Observe: func(kind string, err error) {
			seen = append(seen, kind)
			if err != nil {
				failures = append(failures, err)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	for kind, raw := range stanzas {
		st, err := parseRaw([]byte(raw + "<next/>"))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		before := len(seen)
		if c.Handle(context.Background(), st) == nil || len(seen) != before+1 || seen[before] != kind {
			t.Errorf("%s: observed as %v", kind, seen[before:])
		}
	}
	slices.Sort(seen)
	kinds := slices.Sorted(slices.Values(Kinds))
	if !slices.Equal(seen, kinds) {
		t.Errorf("observed kinds %v, Kinds %v", seen, kinds)
	}

	errs := StanzaErrors()
	for _, err := range append(failures, p2http.Errorf(p2http.EUNREACHABLE, ""), ErrJIDMismatch, ErrShuttingDown) {
		e := ErrorFor(err)
		if !slices.Contains(errs, StanzaError{Type: e.Type, Condition: e.Condition}) {
			t.Errorf("%v is answered %s/%s, not in StanzaErrors", err, e.Type, e.Condition)
		}
	}
	if len(errs) < 8 {
		t.Errorf("StanzaErrors: %v", errs)
	}
}
