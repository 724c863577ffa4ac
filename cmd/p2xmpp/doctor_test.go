package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/checkup"
	"github.com/p2http/p2http/internal/xmppserver"
)

func TestDoctorFlags(t *testing.T) {
	var o doctorOptions
	rest, err := parseDoctorFlags([]string{"--account", "alice@example.org", "-server", "xmpp.internal:5347", "--json",
		"-timeout=3s", "--api=http://p2http.internal:8080", "-log-level", "debug"}, &o, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.account != "alice@example.org" || !o.json || o.timeout != 3*time.Second {
		t.Fatalf("options %+v", o)
	}
	if want := []string{"-server", "xmpp.internal:5347", "--api=http://p2http.internal:8080", "-log-level", "debug"}; !reflect.DeepEqual(rest, want) {
		t.Fatalf("p2xmpp's flags %q, want %q", rest, want)
	}

	var help bytes.Buffer
	if _, err := parseDoctorFlags([]string{"-json", "-h"}, &o, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, s := range []string{"Usage: p2xmpp doctor", "-account", "-timeout", "P2XMPP_SECRET", "-server"} {
		if !strings.Contains(help.String(), s) {
			t.Errorf("doctor -h does not say %q:\n%s", s, help.String())
		}
	}
	if _, err := parseDoctorFlags([]string{"-timeout", "0s"}, &o, &help); err == nil {
		t.Fatal("a zero timeout was accepted")
	}
	// An account given without --account is refused without being echoed.
	_, err = parseDoctorFlags([]string{"-server", "xmpp.internal:5347", "alice@example.org"}, &o, &help)
	if err == nil || strings.Contains(err.Error(), "alice") || !strings.Contains(err.Error(), "--account") {
		t.Fatalf("a stray argument: %v", err)
	}
}

// An environment p2xmpp would refuse is the failed config check.
func TestDoctorConfigRefused(t *testing.T) {
	var out bytes.Buffer
	env := map[string]string{"P2XMPP_JID": compJID}
	err := doctor(context.Background(), []string{"--json"}, func(k string) string { return env[k] }, &out, &bytes.Buffer{})
	var fe *checkup.FailedError
	if !errors.As(err, &fe) || fe.Failed != 1 {
		t.Fatalf("doctor: %v", err)
	}
	var r checkup.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.OK || r.Counts.Fail != 1 || len(r.Checks) != 1 || r.Checks[0].ID != "config" || r.Checks[0].Status != checkup.Fail ||
		!strings.Contains(r.Checks[0].Message, "P2XMPP_SECRET") || r.Checks[0].Fix == "" {
		t.Fatalf("report %+v", r)
	}
}

// `p2xmpp doctor`, as the command reads its environment, against a real
// Prosody and a real p2http: it passes (text and JSON), and fails with a
// wrong secret, naming the secret.
func TestDoctorProsody(t *testing.T) {
	srv := xmppserver.StartProsody(t, xmppserver.Options{Domain: "example.org", Component: compJID, ComponentSecret: compSecret})
	p2 := startP2HTTP(t, compJID)
	env := map[string]string{
		"P2XMPP_JID": compJID, "P2XMPP_SECRET": compSecret, "P2XMPP_SERVER": srv.ComponentAddr,
		"P2XMPP_API": p2.URL, "P2XMPP_API_TOKEN": apiToken,
	}
	getenv := func(k string) string { return env[k] }
	ctx := context.Background()

	var out, logs bytes.Buffer
	if err := doctor(ctx, []string{"--account", "alice@example.org"}, getenv, &out, &logs); err != nil {
		t.Fatalf("doctor: %v\n%s\n%s", err, out.String(), logs.String())
	}
	// One line per check, "STATUS  CHECK: MESSAGE", as p2http doctor
	// prints them, then the counts naming the command.
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var names []string
	for _, l := range lines[:len(lines)-1] {
		f := strings.Fields(l)
		if f[0] != "ok" || !strings.HasSuffix(f[1], ":") {
			t.Errorf("not ok: %s", l)
		}
		names = append(names, strings.TrimSuffix(f[1], ":"))
	}
	if strings.Join(names, " ") != "config handshake disco account-route p2http api-token" || lines[len(lines)-1] != "p2xmpp doctor: 6 ok, 0 warn, 0 fail" {
		t.Fatalf("output:\n%s", out.String())
	}

	out.Reset()
	if err := doctor(ctx, []string{"--json", "-timeout", "5s"}, getenv, &out, &logs); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out.String())
	}
	var r checkup.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil || !r.OK || len(r.Checks) != 5 || r.Counts.OK != 5 {
		t.Fatalf("doctor --json (%v):\n%s", err, out.String())
	}

	env["P2XMPP_SECRET"] = "not-the-component-secret"
	out.Reset()
	var fe *checkup.FailedError
	if err := doctor(ctx, nil, getenv, &out, &logs); !errors.As(err, &fe) || fe.Failed != 1 {
		t.Fatalf("doctor with a wrong secret: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "fail  handshake: ") || !strings.Contains(out.String(), "refused the component secret") ||
		!strings.Contains(out.String(), ". Fix: set P2XMPP_SECRET") || !strings.HasSuffix(out.String(), "\np2xmpp doctor: 3 ok, 1 warn, 1 fail\n") {
		t.Fatalf("output:\n%s", out.String())
	}
	if s := out.String() + logs.String(); strings.Contains(s, "alice") || strings.Contains(s, compSecret) ||
		strings.Contains(s, "not-the-component-secret") || strings.Contains(s, apiToken) {
		t.Fatalf("the output or the log holds the account, a secret or the token:\n%s", s)
	}
}
