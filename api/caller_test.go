package api

import (
	"context"
	"net/http/httptest"
	"testing"
)

// The caller a failed push is charged to: the API token it authenticated
// with, else its address, an IPv6 address by its /64.
func TestCallerOf(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.7:4711":                       "192.0.2.7",
		"[::ffff:192.0.2.7]:4711":              "192.0.2.7",
		"[2001:db8:1:2:aaaa::1]:4711":          "2001:db8:1:2::/64",
		"[2001:db8:1:2:bbbb:cccc:dddd:1]:4711": "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:4711":               "2001:db8:1:3::/64",
		"[fe80::1%eth0]:4711":                  "fe80::/64",
		"@":                                    "@", // a Unix socket: whatever the server says
	} {
		r := httptest.NewRequest("POST", "/v1/push", nil)
		r.RemoteAddr = remote
		if got := callerOf(r); got != want {
			t.Errorf("callerOf(RemoteAddr %q) = %q, want %q", remote, got, want)
		}
	}
	r := httptest.NewRequest("POST", "/v1/push", nil)
	info := &requestInfo{id: "x"}
	r = r.WithContext(context.WithValue(r.Context(), requestInfoKey, info))
	if got := callerOf(r); got != "192.0.2.1" { // httptest's RemoteAddr
		t.Errorf("without a token: %q, want the address", got)
	}
	info.token = 2 // the second token
	if got := callerOf(r); got != "token 1" {
		t.Errorf("with the second token: %q, want %q", got, "token 1")
	}
}
