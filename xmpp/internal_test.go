package xmpp

import (
	"encoding/xml"
	"strings"
	"testing"

	"mellium.im/xmpp/stanza"
)

// Every outcome has a row, and the rows answered with a type other than
// wait are exactly the permanent conditions.
func TestTable(t *testing.T) {
	permanent := map[outcome]bool{
		outBadRequest: true, outForbidden: true, outNotFound: true, outGone: true,
		outUnsupported: true, outTooLarge: true, outBadAction: true, outBadPayload: true, outMalformedCmd: true,
	}
	all := []outcome{outBadRequest, outForbidden, outNotFound, outGone, outUnauthorized, outRateLimited,
		outUpstream, outUnavailable, outTimeout, outServerError, outUnreachable, outJIDMismatch, outShutdown,
		outUnsupported, outTooLarge, outBadAction, outBadPayload, outMalformedCmd}
	if len(all) != len(table) {
		t.Fatalf("%d outcomes listed, %d in the table", len(all), len(table))
	}
	for _, o := range all {
		c, ok := table[o]
		if !ok {
			t.Fatalf("%s has no row", o)
		}
		if (c.typ != stanza.Wait) != permanent[o] {
			t.Errorf("%s is answered %s", o, c.typ)
		}
		if c.text == "" {
			t.Errorf("%s has no text", o)
		}
	}
	for status := 100; status < 600; status++ {
		for _, typ := range []string{"", "urn:p2http:problem:invalid-request", "urn:p2http:problem:forbidden",
			"urn:p2http:problem:not-found", "urn:p2http:problem:token-dead", "urn:p2http:problem:service-not-configured"} {
			e := ErrorFor(&HTTPError{Status: status, Type: typ})
			if e.Type != stanza.Wait && status != 400 && status != 403 && status != 404 && status != 410 {
				t.Errorf("HTTP %d %s: %s", status, typ, e)
			}
			if status >= 500 && e.Type != stanza.Wait {
				t.Errorf("HTTP %d: %s", status, e)
			}
		}
	}
}

func TestCleanText(t *testing.T) {
	if got := cleanText("a\x00b\nc"); got != "a b c" {
		t.Errorf("%q", got)
	}
	long := cleanText(strings.Repeat("é", 300))
	if len(long) > maxText+len("…") || !strings.HasSuffix(long, "…") || strings.ContainsRune(long, '\uFFFD') {
		t.Errorf("%q", long)
	}
}

// parseRaw reads raw as it arrives in a jabber:component:accept stream.
func parseRaw(raw []byte) (*Stanza, error) {
	d := xml.NewDecoder(strings.NewReader(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>` + string(raw)))
	if _, err := d.Token(); err != nil {
		return nil, err
	}
	return ReadStanza(d)
}
