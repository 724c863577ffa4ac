package e2e

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/p2http/p2http/internal/xmppserver"
)

// The guide's reader: markers, quoting blocks with their qualifiers, and
// the blocks that are prose.
func TestTroubleshootingGuideParse(t *testing.T) {
	cases, err := parseGuide(strings.Join([]string{
		"# Guide",
		"```sh",
		"curl http://127.0.0.1:8080/readyz",
		"```",
		"### One",
		"<!-- case: one -->",
		"```log p2http",
		"time=… level=INFO msg=x",
		"```",
		"```yaml",
		"not: quoted",
		"```",
		"### Two",
		"<!-- case: two -->",
		"```xml phone ejabberd",
		"<iq>",
		"  <error/>",
		"</iq>",
		"```",
		"```log prosody 0.12",
		"a\tb   c",
		"…",
		"",
		"```",
	}, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 2 || cases[0].name != "one" || cases[1].name != "two" {
		t.Fatalf("cases %+v", cases)
	}
	if b := cases[0].blocks; len(b) != 1 || b[0].lang != "log" || b[0].source != "p2http" || b[0].server != "" {
		t.Errorf("case one's blocks %+v", b)
	}
	b := cases[1].blocks
	if len(b) != 2 || b[0].source != "phone" || b[0].server != xmppserver.Ejabberd || b[0].version != "" ||
		b[1].source != "prosody" || b[1].server != xmppserver.Prosody || b[1].version != "0.12" {
		t.Fatalf("case two's blocks %+v", b)
	}
	if q := b[0].quotes(); len(q) != 1 || q[0] != "<iq><error/></iq>" {
		t.Errorf("an XML block quotes %q, want its lines joined", q)
	}
	if q := b[1].quotes(); len(q) != 1 || q[0] != "a b c" {
		t.Errorf("a log block quotes %q, want its lines squeezed, without blank ones or a lone …", q)
	}

	for _, bad := range []string{
		"```log p2http\nx\n```\n<!-- case: late -->",          // quoted before any case
		"<!-- case: one -->\n```log p2http ejabberd2\nx\n```", // an unknown qualifier
		"<!-- case: Not A Name -->",                           // a malformed marker
		"<!-- case: one -->\n```log p2http\nx",                // an open block
	} {
		if _, err := parseGuide(bad); err == nil {
			t.Errorf("parseGuide(%q) succeeded", bad)
		}
	}
}

// A quote matches a whole line, blanks squeezed, with … for any text.
func TestTroubleshootingQuoteMatch(t *testing.T) {
	text := "Dec 07 04:38:21 example.org:cloud_notify\tinfo\tGot error <cancel:item-not-found:x> for identifier 'push.example.org<abc': error count for this identifier is now at 1\nsecond line\n"
	for q, want := range map[string]bool{
		"… example.org:cloud_notify info Got error <cancel:item-not-found:…> for identifier '…': error count for this identifier is now at 1": true,
		"… example.org:cloud_notify info Got error <cancel:item-not-found:…> for identifier '…': error count for this identifier is now at 2": false,
		"Got error <cancel:item-not-found:x>": false, // not the whole line
		"second line":                         true,
		"second …":                            true,
		"…line":                               true,
		"second line.":                        false,
	} {
		if got := findQuote(q, text); got != want {
			t.Errorf("findQuote(%q) = %v, want %v", q, got, want)
		}
	}
}

// The phone's stanzas as the client hands them over (Go's encoder,
// namespaces repeated, the top element not ended) read as one canonical
// line.
func TestTroubleshootingCanonicalXML(t *testing.T) {
	raw := `<iq xmlns="jabber:client" xml:lang="en" type="error" id="1" from="push.example.org"><error xmlns="jabber:client" type="wait">` +
		`<remote-server-timeout xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></remote-server-timeout>` +
		`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xmlns:_xml="http://www.w3.org/XML/1998/namespace" _xml:lang="en">a &amp; "b"</text></error>`
	want := `<iq from="push.example.org" id="1" type="error" xml:lang="en"><error type="wait">` +
		`<remote-server-timeout xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>` +
		`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xml:lang="en">a &amp; &quot;b&quot;</text></error></iq>`
	for _, in := range []string{raw, raw + "</iq>"} {
		got, err := canonicalXML(in)
		if err != nil || got != want {
			t.Errorf("canonicalXML(%s)\n = %s, %v\nwant %s", in, got, err, want)
		}
	}
	if _, err := canonicalXML(`<iq><error>`); err == nil {
		t.Error("canonicalXML of a stanza cut inside a child succeeded")
	}
}

// Every link of the guide to one of its own headings names one, as GitHub
// makes anchors of headings.
func TestTroubleshootingGuideLinks(t *testing.T) {
	text, err := os.ReadFile(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, l := range strings.Split(string(text), "\n") {
		if h, ok := strings.CutPrefix(strings.TrimLeft(l, "#"), " "); ok && strings.HasPrefix(l, "#") {
			anchors[githubAnchor(h)] = true
		}
	}
	links := regexp.MustCompile(`\]\(#([^)]+)\)`).FindAllStringSubmatch(string(text), -1)
	if len(links) < 10 {
		t.Fatalf("only %d links to headings", len(links))
	}
	for _, m := range links {
		if !anchors[m[1]] {
			t.Errorf("link to #%s, which no heading makes", m[1])
		}
	}
}

// githubAnchor is the anchor GitHub makes of a heading: lower case, the
// punctuation dropped but for '-' and '_', spaces as '-'.
func githubAnchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
