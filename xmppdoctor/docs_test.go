package xmppdoctor

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/p2http/p2http/internal/checkup"
	"github.com/p2http/p2http/internal/testutil"
	"github.com/p2http/p2http/internal/xmppserver"
)

// docsSection is the heading of docs/p2xmpp.md's section on the doctor.
const docsSection = "## Checking the set-up: `p2xmpp doctor`"

// docsBlocks returns the code blocks of the doctor's section of
// docs/p2xmpp.md whose fence names lang.
func docsBlocks(t *testing.T, lang string) []string {
	t.Helper()
	b, err := os.ReadFile("../docs/p2xmpp.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n"+docsSection+"\n")
	if !ok {
		t.Fatalf("docs/p2xmpp.md has no section %q", docsSection)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var blocks []string
	for _, part := range strings.Split(section, "```"+lang+"\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		blocks = append(blocks, block)
	}
	if len(blocks) == 0 {
		t.Fatalf("the doctor's section of docs/p2xmpp.md has no %s block", lang)
	}
	return blocks
}

var (
	docsAddr  = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	docsTime  = regexp.MustCompile(`\bin (under 1ms|[0-9.]+m?s)\b`)
	docsSpace = regexp.MustCompile(`\s+`)
)

// docsLine is a line of output without what differs between runs: the
// loopback ports, the times, the alignment.
func docsLine(s string) string {
	s = docsAddr.ReplaceAllString(s, "127.0.0.1:PORT")
	s = docsTime.ReplaceAllString(s, "in TIME")
	return strings.TrimSpace(docsSpace.ReplaceAllString(s, " "))
}

// Every line the docs show of the doctor's output is a line it prints, in
// the case the docs describe (up to ports and times): real Prosody and
// p2http, and the fake listeners for what they cannot be made to do.
func TestDocsExamples(t *testing.T) {
	srv := startServer(t, xmppserver.Prosody)
	p2 := startP2HTTP(t, compJID)
	closed := testutil.FreeAddr(t)
	// Prosody's default component_conflict_resolve: a second connection
	// is refused once its secret is checked.
	conflict := fakeServer(t, func(c net.Conn, dec *xml.Decoder) {
		next(dec, false)
		fmt.Fprintf(c, `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='s1' from='%s'>`, compJID)
		next(dec, true)
		fmt.Fprintf(c, `<stream:error><conflict xmlns='%s'/><text xmlns='%s'>Component already connected</text></stream:error></stream:stream>`, streamErrors, streamErrors)
	})
	// p2 issue 30: a component answering disco#info with
	// service-unavailable.
	p2Like := fakeServer(t, func(c net.Conn, dec *xml.Decoder) {
		if !accept(c, dec, compSecret) {
			return
		}
		for {
			e, err := next(dec, true)
			if err != nil {
				return
			}
			fmt.Fprintf(c, `<iq type='error' id='%s' from='%s' to='%s'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
				e.attr("id"), e.attr("to"), e.attr("from"))
		}
	})

	printed := map[string]bool{}
	printedJSON := map[string]bool{} // each run's report as JSON, compact, without ports and times
	for _, change := range []func(*Config){
		func(c *Config) { c.Account = "alice@example.org" },
		func(c *Config) { c.Secret = "not-the-secret" },
		func(c *Config) { c.JID = "other.example.org" },
		func(c *Config) { c.Server = srv.C2SAddr },
		func(c *Config) { c.Server = closed },
		func(c *Config) { c.Server = conflict },
		func(c *Config) { c.Server = p2Like },
		func(c *Config) { c.Account = "alice@elsewhere.test" },
		func(c *Config) { *c = configFor("http://"+closed, apiToken, srv) },
		func(c *Config) { *c = configFor(p2.URL, "not-the-api-token-0123", srv) },
		func(c *Config) { *c = configFor(p2.URL, "", srv) },
	} {
		cfg := p2.config(srv)
		change(&cfg)
		r := Run(context.Background(), cfg)
		for _, c := range r.Checks {
			if (c.Status == checkup.OK) != (c.Fix == "") {
				t.Errorf("a %s check with the fix %q:\n%s", c.Status, c.Fix, text(r))
			}
		}
		for _, l := range strings.Split(text(r), "\n") {
			printed[docsLine(l)] = true
		}
		var b bytes.Buffer
		if err := r.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		printedJSON[docsJSON(t, b.String())] = true
	}
	var b bytes.Buffer
	ConfigFailed(fmt.Errorf("configuration: P2XMPP_SECRET: is required (the component secret configured at the XMPP server)")).WriteText(&b)
	for _, l := range strings.Split(b.String(), "\n") {
		printed[docsLine(l)] = true
	}

	shown := 0
	for _, block := range docsBlocks(t, "text") {
		for _, l := range strings.Split(block, "\n") {
			if strings.TrimSpace(l) == "" {
				continue
			}
			shown++
			if !printed[docsLine(l)] {
				t.Errorf("docs/p2xmpp.md shows a line the doctor does not print:\n%s", l)
			}
		}
	}
	if shown < 12 {
		t.Errorf("the docs show %d lines of the doctor's output", shown)
	}
	if t.Failed() {
		var all []string
		for l := range printed {
			all = append(all, l)
		}
		slices.Sort(all)
		t.Fatalf("the lines printed:\n%s", strings.Join(all, "\n"))
	}

	// The JSON example is the report of one of the runs, whole.
	for _, block := range docsBlocks(t, "json") {
		if js := docsJSON(t, block); !printedJSON[js] {
			var all []string
			for js := range printedJSON {
				all = append(all, js)
			}
			t.Errorf("docs/p2xmpp.md's JSON example is not the report of a run:\n%s\nthe reports:\n%s", js, strings.Join(all, "\n"))
		}
	}
}

// docsJSON is a report in JSON, compact and without what differs between
// runs; it fails the test unless s is exactly one report, its counts those
// of its checks.
func docsJSON(t *testing.T, s string) string {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.DisallowUnknownFields()
	var r checkup.Report
	if err := d.Decode(&r); err != nil || d.More() || len(r.Checks) == 0 {
		t.Fatalf("not a report (%v):\n%s", err, s)
	}
	counted := checkup.New(Command)
	for _, c := range r.Checks {
		counted.Add(c)
	}
	if counted.OK != r.OK || counted.Counts != r.Counts {
		t.Errorf("a report whose ok and counts are not its checks':\n%s", s)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return docsAddr.ReplaceAllString(docsTime.ReplaceAllString(string(b), "in TIME"), "127.0.0.1:PORT")
}
