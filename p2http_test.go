package p2http_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/p2http/p2http"
)

// The device hash must equal what p2 and Conversations compute:
// sha1(bareJID + "\u0000" + deviceID) in lowercase hex.
func TestDeviceHashMatchesP2(t *testing.T) {
	for _, c := range []struct{ jid, dev, want string }{
		// sha1("alice@example.org\x00abc") computed independently with coreutils.
		{"alice@example.org", "abc", "9494e420fbb9904db29c5734607449745c6bf726"},
		{"", "", "5ba93c9db0cff93f52b521d7420e43f6eda2784f"}, // sha1("\x00")
	} {
		if got := p2http.DeviceHash(c.jid, c.dev); got != c.want {
			t.Errorf("DeviceHash(%q,%q) = %s, want %s", c.jid, c.dev, got, c.want)
		}
	}
}

func TestErrorCode(t *testing.T) {
	wrapped := fmt.Errorf("ctx: %w", p2http.Errorf(p2http.ENOTFOUND, "no such node"))
	if got := p2http.ErrorCode(wrapped); got != p2http.ENOTFOUND {
		t.Fatalf("code = %q", got)
	}
	if got := p2http.ErrorCode(&p2http.DeadTokenError{Reason: "UNREGISTERED"}); got != p2http.EGONE {
		t.Fatalf("dead token code = %q", got)
	}
	if got := p2http.ErrorCode(errors.New("boom")); got != p2http.EINTERNAL {
		t.Fatalf("plain error code = %q", got)
	}
	if got := p2http.ErrorMessage(errors.New("secret stuff")); got != "internal error" {
		t.Fatalf("plain error message leaked: %q", got)
	}
	if p2http.ErrorCode(nil) != "" {
		t.Fatal("nil error has a code")
	}
}

// An empty app is the default app, and only app names that are valid,
// normalised JID localparts are valid.
func TestApp(t *testing.T) {
	for _, c := range []struct {
		app     p2http.App
		want    p2http.App
		isDef   bool
		isValid bool
	}{
		{"", p2http.DefaultApp, true, false},
		{p2http.DefaultApp, p2http.DefaultApp, true, true},
		{"quicksy", "quicksy", false, true},
		{"a.b-c_d9", "a.b-c_d9", false, true},
		{"-a", "-a", false, false},
		{"Quicksy", "Quicksy", false, false},
		{p2http.App(strings.Repeat("a", 63)), p2http.App(strings.Repeat("a", 63)), false, true},
		{p2http.App(strings.Repeat("a", 64)), p2http.App(strings.Repeat("a", 64)), false, false},
	} {
		if got := c.app.OrDefault(); got != c.want {
			t.Errorf("App(%q).OrDefault() = %q, want %q", c.app, got, c.want)
		}
		if got := c.app.IsDefault(); got != c.isDef {
			t.Errorf("App(%q).IsDefault() = %v", c.app, got)
		}
		if got := c.app.Valid(); got != c.isValid {
			t.Errorf("App(%q).Valid() = %v", c.app, got)
		}
	}
}
