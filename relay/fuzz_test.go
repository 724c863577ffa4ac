package relay_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/relay"
)

// FuzzNormalizeAccount: any input is refused or normalised to a bare JID
// that normalises to itself, and the device hash is always 40 hex digits.
func FuzzNormalizeAccount(f *testing.F) {
	for _, s := range []string{"alice@example.org", "Alice@EXAMPLE.org.", "ÄÖÜ@ä.example", "a@b/c", "@b", "a@", "a@[::1]",
		"a@127.0.0.1", "a\u0000b@c", strings.Repeat("a", 1100) + "@b", "\xff@b", "a@b@c", "a@xn--mnchen-3ya.de"} {
		f.Add(s, "android-id")
	}
	f.Fuzz(func(t *testing.T, account, deviceID string) {
		j, err := relay.NormalizeAccount(account)
		if err != nil {
			if p2http.ErrorCode(err) != p2http.EINVALID || p2http.ErrorField(err) != "account" {
				t.Fatalf("NormalizeAccount(%q): %v is not an invalid-account error", account, err)
			}
			return
		}
		bare := j.String()
		if j.Resourcepart() != "" || j.Localpart() == "" || !utf8.ValidString(bare) {
			t.Fatalf("NormalizeAccount(%q) = %q", account, bare)
		}
		again, err := relay.NormalizeAccount(bare)
		if err != nil || again.String() != bare {
			t.Fatalf("normalising %q again gave %q, %v", bare, again.String(), err)
		}
		if h := p2http.DeviceHash(bare, deviceID); len(h) != 40 || strings.Trim(h, "0123456789abcdef") != "" {
			t.Fatalf("device hash %q", h)
		}
	})
}
