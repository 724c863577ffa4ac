package xmpp

import (
	"context"
	"encoding/xml"
	"errors"
	"log/slog"
	"os/exec"
	"strings"
	"testing"

	"github.com/p2http/p2http"
	"mellium.im/xmpp/stanza"
)

// Every code, the domain's and p2xmpp's own, has a row, and the rows
// answered with a type other than wait are exactly the permanent
// conditions.
func TestTable(t *testing.T) {
	permanent := map[string]bool{
		p2http.EINVALID: true, p2http.ENOTCONFIGURED: true, p2http.EFORBIDDEN: true, p2http.ENOTFOUND: true, p2http.EGONE: true,
		codeUnsupported: true, codeTooLarge: true, codeBadAction: true, codeBadPayload: true, codeMalformedAction: true,
	}
	all := []string{p2http.EINVALID, p2http.EUNAUTHORIZED, p2http.EFORBIDDEN, p2http.ENOTFOUND, p2http.EGONE,
		p2http.ENOTCONFIGURED, p2http.ERATELIMIT, p2http.EUNAVAILABLE, p2http.EUPSTREAM, p2http.ETIMEOUT,
		p2http.EINTERNAL, p2http.EUNREACHABLE,
		codeUnsupported, codeTooLarge, codeBadAction, codeBadPayload, codeMalformedAction, codeJIDMismatch, codeShuttingDown}
	if len(all) != len(table) {
		t.Fatalf("%d codes listed, %d in the table", len(all), len(table))
	}
	for _, code := range all {
		c, ok := table[code]
		if !ok {
			t.Fatalf("%s has no row", code)
		}
		if (c.typ != stanza.Wait) != permanent[code] {
			t.Errorf("%s is answered %s", code, c.typ)
		}
		if c.text == "" {
			t.Errorf("%s has no text", code)
		}
	}
	// A failure of no known code is internal-server-error/wait, with the
	// table's text: its message may be anything.
	for _, err := range []error{errors.New("boom"), p2http.Errorf("no-such-code", "x"), p2http.Errorf(p2http.EINTERNAL, "a bug")} {
		e := ErrorFor(err)
		if e.Type != stanza.Wait || e.Condition != stanza.InternalServerError || e.Text != table[p2http.EINTERNAL].text {
			t.Errorf("%v: %s", err, e)
		}
	}
}

// The translation alone, over a fake of p2http's services: each domain code
// a push fails with becomes its stanza error, with the failure's message as
// its text unless the row keeps its own. (The rows of docs/p2xmpp.md's
// table, through api.Client and a real p2http, are in errors_test.go and
// component_test.go.)
func TestDomainCodes(t *testing.T) {
	tests := []struct {
		code      string
		typ       stanza.ErrorType
		cond      stanza.Condition
		ownText   bool
		unreached bool // marks p2http down
	}{
		{p2http.EINVALID, stanza.Modify, stanza.BadRequest, false, false},
		{p2http.ENOTCONFIGURED, stanza.Modify, stanza.BadRequest, false, false},
		{p2http.EFORBIDDEN, stanza.Auth, stanza.Forbidden, false, false},
		{p2http.ENOTFOUND, stanza.Cancel, stanza.ItemNotFound, false, false},
		{p2http.EGONE, stanza.Cancel, stanza.ItemNotFound, false, false},
		{p2http.EUNAUTHORIZED, stanza.Wait, stanza.InternalServerError, true, false},
		{p2http.ERATELIMIT, stanza.Wait, stanza.ResourceConstraint, false, false},
		{p2http.EUPSTREAM, stanza.Wait, stanza.InternalServerError, false, false},
		{p2http.EUNAVAILABLE, stanza.Wait, stanza.RecipientUnavailable, false, false},
		{p2http.ETIMEOUT, stanza.Wait, stanza.RemoteServerTimeout, false, false},
		{p2http.EINTERNAL, stanza.Wait, stanza.InternalServerError, true, false},
		{p2http.EUNREACHABLE, stanza.Wait, stanza.RemoteServerTimeout, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			logs := &strings.Builder{}
			rec := &recorder{err: &p2http.Error{Code: tt.code, Message: "what p2http said"}}
			c, err := New(Config{JID: "push.example.org", Registrar: rec, Pusher: rec, Describer: rec,
				Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			st, err := parseRaw([]byte(publishSeeds[0]))
			if err != nil {
				t.Fatal(err)
			}
			raw := c.Handle(context.Background(), st).String()
			want := `<error type="` + string(tt.typ) + `"><` + string(tt.cond) + ` xmlns="` + NSStanzas + `"`
			if !strings.Contains(raw, want) {
				t.Fatalf("reply lacks %s:\n%s", want, raw)
			}
			if got := strings.Contains(raw, ">what p2http said<"); got == tt.ownText {
				t.Errorf("p2http's message as the text: %v, want %v:\n%s", got, !tt.ownText, raw)
			}
			if got := strings.Contains(logs.String(), "p2http is unreachable"); got != tt.unreached {
				t.Errorf("p2http marked down: %v, want %v:\n%s", got, tt.unreached, logs)
			}
		})
	}
}

// xmpp/ reaches p2http only through the root interfaces: neither net/http
// nor the generated client (nor api/, which holds both) is linked in.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != "github.com/p2http/p2http/xmpp" {
		t.Fatalf("go list -deps does not end with xmpp itself:\n%s", out)
	}
	for _, dep := range deps {
		switch dep {
		case "net/http", "github.com/p2http/p2http/api", "github.com/p2http/p2http/api/client":
			t.Errorf("xmpp depends on %s", dep)
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
