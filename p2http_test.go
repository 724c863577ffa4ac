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

// FuzzValidateToken: a token is accepted only within the documented limits.
func FuzzValidateToken(f *testing.F) {
	for _, s := range []string{"fcm-token:APA91b", "0a1B", "a b", "", "\u00e9", strings.Repeat("a", 4097)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		for _, svc := range p2http.Services {
			if p2http.ValidateToken(svc, token) != nil {
				continue
			}
			if token == "" || len(token) > p2http.MaxTokenLength || strings.ContainsAny(token, " \t\r\n") {
				t.Fatalf("%s token %q accepted", svc, token)
			}
			for _, c := range []byte(token) {
				if c <= ' ' || c > '~' || svc == p2http.APNs && !strings.ContainsRune("0123456789abcdefABCDEF", rune(c)) {
					t.Fatalf("%s token %q accepted with byte %q", svc, token, c)
				}
			}
		}
	})
}

// Registration.Validate is the one rule for a stored registration: an
// empty app and secret kind are their defaults, every other field must be
// well formed, and no message holds a value.
func TestRegistrationValidate(t *testing.T) {
	good := p2http.Registration{
		Service: p2http.FCM, Device: p2http.DeviceHash("alice@example.org", "d"), Domain: "example.org",
		Token: "fcm-token", Node: p2http.NewNode(),
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid registration: %v", err)
	}
	for name, change := range map[string]func(*p2http.Registration){
		"named default app": func(r *p2http.Registration) { r.App = p2http.DefaultApp },
		"further app":       func(r *p2http.Registration) { r.App = "quicksy" },
		"derived secret":    func(r *p2http.Registration) { r.SecretKind = p2http.SecretDerived },
		"kept secret":       func(r *p2http.Registration) { r.SecretKind, r.SecretEnc = p2http.SecretKept, []byte("sealed") },
		"apns":              func(r *p2http.Registration) { r.Service, r.Token = p2http.APNs, "0a1B" },
		"longest node":      func(r *p2http.Registration) { r.Node = strings.Repeat("n", p2http.MaxNodeLength) },
	} {
		r := good
		change(&r)
		if err := r.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, change := range map[string]func(*p2http.Registration){
		"app":               func(r *p2http.Registration) { r.App = "Quicksy" },
		"huge app":          func(r *p2http.Registration) { r.App = p2http.App(strings.Repeat("a", 1000)) },
		"service":           func(r *p2http.Registration) { r.Service = "gcm" },
		"short device":      func(r *p2http.Registration) { r.Device = r.Device[:39] },
		"upper device":      func(r *p2http.Registration) { r.Device = strings.ToUpper(r.Device) },
		"empty domain":      func(r *p2http.Registration) { r.Domain = "" },
		"empty token":       func(r *p2http.Registration) { r.Token = "" },
		"token with space":  func(r *p2http.Registration) { r.Token = "to ken" },
		"non-hex apns":      func(r *p2http.Registration) { r.Service = p2http.APNs },
		"empty node":        func(r *p2http.Registration) { r.Node = "" },
		"long node":         func(r *p2http.Registration) { r.Node = strings.Repeat("n", p2http.MaxNodeLength+1) },
		"derived with enc":  func(r *p2http.Registration) { r.SecretEnc = []byte("x") },
		"kept without enc":  func(r *p2http.Registration) { r.SecretKind = p2http.SecretKept },
		"other secret kind": func(r *p2http.Registration) { r.SecretKind = "plain" },
	} {
		r := good
		change(&r)
		err := r.Validate()
		if p2http.ErrorCode(err) != p2http.EINVALID {
			t.Errorf("%s: %v, want %s", name, err, p2http.EINVALID)
			continue
		}
		if msg := p2http.ErrorMessage(err); strings.Contains(msg, r.Token) && r.Token != "" || strings.Contains(msg, r.Domain) && r.Domain != "" {
			t.Errorf("%s: message %q holds a value", name, msg)
		}
	}
}

// The requests' Validate name the field at fault, in the order of the
// fields, and accept what the limits allow.
func TestRequestValidate(t *testing.T) {
	reg := p2http.RegisterRequest{Service: p2http.FCM, Account: "alice@example.org", DeviceID: "android-1", Token: "fcm-token"}
	if err := reg.Validate(); err != nil {
		t.Fatalf("valid register request: %v", err)
	}
	for want, change := range map[string]func(*p2http.RegisterRequest){
		"service":   func(r *p2http.RegisterRequest) { r.Service, r.Account = "gcm", "" },
		"account":   func(r *p2http.RegisterRequest) { r.Account, r.DeviceID = "", "" },
		"device_id": func(r *p2http.RegisterRequest) { r.DeviceID, r.Token = "a\nb", "" },
		"token":     func(r *p2http.RegisterRequest) { r.Service = p2http.APNs },
	} {
		r := reg
		change(&r)
		if err := r.Validate(); p2http.ErrorCode(err) != p2http.EINVALID || p2http.ErrorField(err) != want {
			t.Errorf("%+v: %v, want an invalid %s", r, err, want)
		}
	}
	long := reg
	long.Account = strings.Repeat("a", p2http.MaxAccountLength+1)
	if p2http.ErrorField(long.Validate()) != "account" {
		t.Error("an over-long account passes")
	}
	long = reg
	long.DeviceID = strings.Repeat("d", p2http.MaxDeviceIDLength+1)
	if p2http.ErrorField(long.Validate()) != "device_id" {
		t.Error("an over-long device id passes")
	}

	unreg := p2http.UnregisterRequest{Service: p2http.APNs, Account: "alice@example.org", DeviceID: "iphone"}
	if err := unreg.Validate(); err != nil {
		t.Fatalf("valid unregister request: %v", err)
	}
	unreg.DeviceID = ""
	if p2http.ErrorField(unreg.Validate()) != "device_id" {
		t.Error("an unregister request without device id passes")
	}

	push := p2http.PushRequest{Node: "eKxTS5n3bOe0", Secret: "KK4+H5WMfpRG/2zCbuKq6wpX"}
	if err := push.Validate(); err != nil {
		t.Fatalf("valid push request: %v", err)
	}
	for want, change := range map[string]func(*p2http.PushRequest){
		"node":   func(r *p2http.PushRequest) { r.Node, r.Secret = "", "" },
		"secret": func(r *p2http.PushRequest) { r.Secret = "" },
		"node ":  func(r *p2http.PushRequest) { r.Node = strings.Repeat("n", p2http.MaxNodeLength+1) },
		"secret ": func(r *p2http.PushRequest) {
			r.Secret = strings.Repeat("s", p2http.MaxSecretLength+1)
		},
	} {
		r := push
		change(&r)
		if err := r.Validate(); p2http.ErrorCode(err) != p2http.EINVALID || p2http.ErrorField(err) != strings.TrimSpace(want) {
			t.Errorf("%q: %v, want an invalid %s", want, err, want)
		}
	}
}
