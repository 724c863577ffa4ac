package checkup

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	r := New("p2xmpp doctor")
	r.Add(Check{ID: "handshake", Status: Fail, Message: "refused\nthe  secret", Fix: "set P2XMPP_SECRET"})
	r.Add(Check{ID: "fcm-auth", App: "default", Status: OK, Message: "an access token."})
	r.Add(Check{ID: "disco", Status: Warn, Message: "not checked.", Fix: "fix the handshake first"})
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := "fail  handshake: refused the secret. Fix: set P2XMPP_SECRET\n" +
		"ok    fcm-auth [default]: an access token.\n" +
		"warn  disco: not checked. Fix: fix the handshake first\n" +
		"p2xmpp doctor: 1 ok, 1 warn, 1 fail\n"
	if b.String() != want {
		t.Fatalf("text:\n%s\nwant:\n%s", b.String(), want)
	}
	var fe *FailedError
	if err := r.Write(&bytes.Buffer{}, false); !errors.As(err, &fe) || fe.Failed != 1 || err.Error() != "doctor: 1 check failed" {
		t.Fatalf("Write = %v", err)
	}

	b.Reset()
	ok := New("p2http doctor")
	ok.Add(Check{ID: "listener", Status: Warn, Message: "m", Fix: "f"})
	if err := ok.Write(&b, false); err != nil || !ok.OK || !strings.HasSuffix(b.String(), "\np2http doctor: 0 ok, 1 warn, 0 fail\n") {
		t.Fatalf("a warning alone: %v, ok %v\n%s", err, ok.OK, b.String())
	}
}

// The JSON: ok, counts, and each check with app only when set and fix only
// on warn and fail; the command is not in it.
func TestJSON(t *testing.T) {
	r := New("p2http doctor")
	r.Add(Check{ID: "fcm-auth", App: "default", Status: Fail, Message: "refused", Fix: "a new key"})
	r.Add(Check{ID: "database", Status: OK, Message: "answers"})
	r.Add(Check{ID: "tls", Status: Warn, Message: "plain HTTP", Fix: "set P2_TLS_CERT"})
	r.Add(Check{ID: "x", Status: "bogus", Message: "m"})
	var b bytes.Buffer
	if err := r.Write(&b, true); err == nil || err.Error() != "doctor: 2 checks failed" {
		t.Fatalf("Write = %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"ok":     false,
		"counts": map[string]any{"ok": 1.0, "warn": 1.0, "fail": 2.0},
		"checks": []any{
			map[string]any{"check": "fcm-auth", "app": "default", "status": "fail", "message": "refused", "fix": "a new key"},
			map[string]any{"check": "database", "status": "ok", "message": "answers"},
			map[string]any{"check": "tls", "status": "warn", "message": "plain HTTP", "fix": "set P2_TLS_CERT"},
			map[string]any{"check": "x", "status": "bogus", "message": "m"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("JSON %s\nwant %v", b.String(), want)
	}

	b.Reset()
	if err := New("p2xmpp doctor").WriteJSON(&b); err != nil || strings.Join(strings.Fields(b.String()), "") !=
		`{"ok":true,"counts":{"ok":0,"warn":0,"fail":0},"checks":[]}` {
		t.Fatalf("empty report: %v %s", err, b.String())
	}
}
