// Package prosody_test checks mod_p2http_push.lua, the Prosody module beside
// it, against the rest of the repository.
package prosody_test

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"mellium.im/xmpp/stanza"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/xmpp"
)

// luaRow is one row of the module's table: the status p2http answers the
// problem type with, and what the module does then.
type luaRow struct {
	status int
	action string // remove, count or keep
}

// The module's table of problem types (it keeps its own, in Lua) has every
// problem type of openapi.yaml and no other, each with the status
// openapi.yaml gives it, and the action that follows from the stanza error
// p2xmpp answers the same answer with: cancel removes the registration at
// once (as ejabberd does; the module's README), modify or auth counts it
// against push_max_errors (as Prosody counts a non-wait error), and wait
// keeps it.
func TestLuaProblemTable(t *testing.T) {
	lua := luaProblems(t)
	spec := specProblems(t)
	for _, typ := range slices.Sorted(maps.Keys(spec)) {
		row, ok := lua[typ]
		if !ok {
			t.Errorf("%s (%d) is in openapi.yaml, not in the module's table", typ, spec[typ])
			continue
		}
		if row.status != spec[typ] {
			t.Errorf("%s: the module has status %d, openapi.yaml %d", typ, row.status, spec[typ])
		}
		if want := p2xmppAction(t, typ, spec[typ]); row.action != want {
			t.Errorf("%s (%d): the module does %q, p2xmpp's stanza error means %q", typ, row.status, row.action, want)
		}
	}
	for _, typ := range slices.Sorted(maps.Keys(lua)) {
		if _, ok := spec[typ]; !ok {
			t.Errorf("%s is in the module's table, not in openapi.yaml", typ)
		}
	}
}

var (
	luaTable = regexp.MustCompile(`(?s)\nlocal problems = \{\n(.*?)\n\};\n`)
	luaEntry = regexp.MustCompile(`^\s*\["([a-z-]+)"\]\s*=\s*\{\s*(\d{3})\s*,\s*"([a-z]+)"\s*\};?\s*$`)
)

// luaProblems parses the table problems of mod_p2http_push.lua: its problem
// types, without the prefix, with their rows.
func luaProblems(t *testing.T) map[string]luaRow {
	t.Helper()
	src, err := os.ReadFile("mod_p2http_push.lua")
	if err != nil {
		t.Fatal(err)
	}
	m := luaTable.FindSubmatch(src)
	if m == nil {
		t.Fatal("mod_p2http_push.lua holds no table `local problems = { … };`")
	}
	rows := map[string]luaRow{}
	for _, line := range strings.Split(string(m[1]), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		e := luaEntry.FindStringSubmatch(line)
		if e == nil {
			t.Fatalf("a line of the module's table this test cannot read: %q", line)
		}
		if _, dup := rows[e[1]]; dup {
			t.Errorf("%s is twice in the module's table", e[1])
		}
		status, _ := strconv.Atoi(e[2])
		switch e[3] {
		case "remove", "count", "keep":
		default:
			t.Errorf("%s: unknown action %q", e[1], e[3])
		}
		rows[e[1]] = luaRow{status: status, action: e[3]}
	}
	if len(rows) == 0 {
		t.Fatal("the module's table is empty")
	}
	return rows
}

// specProblems returns openapi.yaml's problem types (the Problem schema's
// enum), without the prefix, each with the status of the responses that
// answer it.
func specProblems(t *testing.T) map[string]int {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(p2http.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	problem := doc.Components.Schemas["Problem"]
	if problem == nil || problem.Value.Properties["type"] == nil {
		t.Fatal("openapi.yaml has no Problem schema with a type")
	}
	types := map[string]int{}
	for _, v := range problem.Value.Properties["type"].Value.Enum {
		typ, _ := v.(string)
		name, ok := strings.CutPrefix(typ, api.ProblemTypePrefix)
		if !ok {
			t.Fatalf("problem type %v lacks the prefix %s", v, api.ProblemTypePrefix)
		}
		types[name] = 0
	}
	// Each problem response narrows the Problem schema to its types and
	// its status (allOf: Problem, {type: enum, status: enum}).
	for name, res := range doc.Components.Responses {
		mt := res.Value.Content.Get("application/problem+json")
		if mt == nil || mt.Schema == nil {
			continue
		}
		var typs []any
		var statuses []any
		for _, s := range mt.Schema.Value.AllOf {
			if p := s.Value.Properties["type"]; p != nil {
				typs = p.Value.Enum
			}
			if p := s.Value.Properties["status"]; p != nil {
				statuses = p.Value.Enum
			}
		}
		if len(typs) == 0 || len(statuses) != 1 {
			t.Fatalf("response %s does not narrow the problem to its types and one status", name)
		}
		status := int(statuses[0].(float64))
		for _, v := range typs {
			typ := strings.TrimPrefix(v.(string), api.ProblemTypePrefix)
			if old, ok := types[typ]; !ok {
				t.Errorf("response %s answers %s, not a type of the Problem schema", name, typ)
			} else if old != 0 && old != status {
				t.Errorf("%s is answered with status %d and %d", typ, old, status)
			}
			types[typ] = status
		}
	}
	// The Problem schema's table gives every type its status, those no
	// response declares included (method-not-allowed: no operation is
	// answered 405, the methods a path lacks are).
	table := map[string]int{}
	for _, m := range specTableRow.FindAllStringSubmatch(problem.Value.Description, -1) {
		table[m[1]], _ = strconv.Atoi(m[2])
	}
	for typ, status := range types {
		switch {
		case table[typ] == 0:
			t.Errorf("%s is not in the table of the Problem schema's description", typ)
		case status == 0:
			types[typ] = table[typ]
		case status != table[typ]:
			t.Errorf("%s: the responses answer it with status %d, the table of the Problem schema says %d", typ, status, table[typ])
		}
	}
	return types
}

// specTableRow is a row of the table in the Problem schema's description.
var specTableRow = regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(api.ProblemTypePrefix) + "([a-z-]+)` \\| (\\d{3}) \\|")

// p2xmppAction returns what an XMPP server does with the stanza error p2xmpp
// answers a push with when p2http answers status with a problem document of
// type typ: through api.Client, as p2xmpp reaches p2http, and xmpp's table.
func p2xmppAction(t *testing.T, typ string, status int) string {
	t.Helper()
	c, err := api.NewClient(api.ClientConfig{BaseURL: "http://p2http.invalid", Transport: answer(func(r *http.Request) *http.Response {
		body := fmt.Sprintf(`{"type":%q,"title":"t","status":%d}`, api.ProblemTypePrefix+typ, status)
		return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/problem+json"}},
			Body: io.NopCloser(strings.NewReader(body)), Request: r}
	})})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Push(t.Context(), p2http.PushRequest{Node: "n", Secret: "s"})
	if err == nil {
		t.Fatalf("%s (%d): the push succeeded", typ, status)
	}
	switch e := xmpp.ErrorFor(err); e.Type {
	case stanza.Cancel:
		return "remove"
	case stanza.Modify, stanza.Auth:
		return "count"
	case stanza.Wait:
		return "keep"
	default:
		t.Fatalf("%s (%d): stanza error %s", typ, status, e)
		return ""
	}
}

// answer is an http.RoundTripper that answers every request with f.
type answer func(*http.Request) *http.Response

// RoundTrip implements http.RoundTripper.
func (f answer) RoundTrip(r *http.Request) (*http.Response, error) { return f(r), nil }
