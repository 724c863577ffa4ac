package xmppdoctor

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestReportText(t *testing.T) {
	r := NewReport(
		Check{Name: "handshake", Status: Fail, Detail: "refused\nthe secret", Fix: "set P2XMPP_SECRET"},
		Check{Name: "p2http", Status: OK, Detail: "serves push.example.org"},
		Check{Name: "disco", Status: Warn, Detail: "not checked", Fix: "fix the handshake first"},
	)
	if r.OK {
		t.Fatal("a report with a failed check is ok")
	}
	want := "fail  handshake  refused the secret — fix: set P2XMPP_SECRET\n" +
		"ok    p2http     serves push.example.org\n" +
		"warn  disco      not checked — fix: fix the handshake first\n" +
		"p2xmpp doctor: 1 of 3 checks failed, 1 warned\n"
	if got := text(r); got != want {
		t.Fatalf("text:\n%s\nwant:\n%s", got, want)
	}
	if got := text(NewReport(Check{Name: "p2http", Status: Warn, Detail: "d", Fix: "f"})); !strings.HasSuffix(got, "p2xmpp doctor: no check failed, 1 warned\n") {
		t.Fatalf("text:\n%s", got)
	}
	if got := text(NewReport(Check{Name: "p2http", Status: OK, Detail: "d"})); !strings.HasSuffix(got, "p2xmpp doctor: all 1 checks passed\n") {
		t.Fatalf("text:\n%s", got)
	}
}

// The JSON has the shape p2http doctor's has:
// {"checks":[{"name","status","detail","fix"}],"ok":bool}, fix "" for ok.
func TestReportJSON(t *testing.T) {
	for _, r := range []*Report{
		NewReport(Check{Name: "handshake", Status: Fail, Detail: "refused", Fix: "set P2XMPP_SECRET"},
			Check{Name: "p2http", Status: OK, Detail: "serves"}),
		NewReport(),
	} {
		var b bytes.Buffer
		if err := r.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		checks := []any{}
		for _, c := range r.Checks {
			checks = append(checks, map[string]any{"name": c.Name, "status": string(c.Status), "detail": c.Detail, "fix": c.Fix})
		}
		want := map[string]any{"checks": checks, "ok": r.OK}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("JSON %s, want %v", b.String(), want)
		}
	}
}
