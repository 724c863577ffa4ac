package xmppdoctor

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/p2http/p2http/internal/checkup"
)

// The report is the one p2http doctor gives (internal/checkup), its last
// line naming p2xmpp doctor: a refused configuration, as text and JSON.
func TestConfigFailedReport(t *testing.T) {
	r := ConfigFailed(errors.New("configuration: P2XMPP_SECRET: is required\nP2XMPP_JID: is required"))
	var b bytes.Buffer
	var fe *checkup.FailedError
	if err := r.Write(&b, false); !errors.As(err, &fe) || fe.Failed != 1 {
		t.Fatalf("Write = %v", err)
	}
	want := "fail  config: configuration: P2XMPP_SECRET: is required; P2XMPP_JID: is required. " +
		"Fix: correct the variable named (p2xmpp -h and docs/p2xmpp.md describe each)\n" +
		"p2xmpp doctor: 0 ok, 0 warn, 1 fail\n"
	if b.String() != want {
		t.Fatalf("text:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(&b)
	d.DisallowUnknownFields()
	var got checkup.Report
	if err := d.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.OK || got.Counts != (checkup.Counts{Fail: 1}) || len(got.Checks) != 1 || got.Checks[0].ID != CheckConfig || got.Checks[0].App != "" {
		t.Fatalf("JSON %+v", got)
	}
}
