package api_test

import (
	"strings"
	"testing"

	"github.com/p2http/p2http/api"
)

// The Host check applies on a loopback listener without tokens, and
// wherever names are listed; the names listed are names or addresses.
func TestHostsToCheck(t *testing.T) {
	for _, c := range []struct {
		listen  string
		tokens  bool
		allowed []string
		want    string
	}{
		{"127.0.0.1:8080", false, nil, "localhost,127.0.0.1,::1,127.0.0.1"},
		{"localhost:8080", false, []string{"p2.lan"}, "localhost,127.0.0.1,::1,localhost,p2.lan"},
		{"127.0.0.1:8080", true, nil, ""},
		{"0.0.0.0:8080", false, nil, ""},
		{":8080", true, []string{"push.example.org"}, "localhost,127.0.0.1,::1,push.example.org"},
	} {
		if got := strings.Join(api.HostsToCheck(c.listen, c.tokens, c.allowed), ","); got != c.want {
			t.Errorf("%s tokens %v %v: %q, want %q", c.listen, c.tokens, c.allowed, got, c.want)
		}
	}
	for _, good := range []string{"p2.internal", "P2.example.org.", "10.0.0.1", "[::2]", "::2", "a_b"} {
		if err := api.CheckHostName(good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
	for _, bad := range []string{"p2.internal:8080", "http://p2", "*.example.org", "p2..internal", "", "a b"} {
		if err := api.CheckHostName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if !api.Loopback("localhost") || !api.Loopback("::1") || !api.Loopback("127.0.0.2") || api.Loopback("0.0.0.0") || api.Loopback("") {
		t.Error("Loopback")
	}
}
