package relay

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// sameAsUncached checks that c answers raw exactly as normalizeDomain does,
// on a miss and on the hit after it.
func sameAsUncached(t *testing.T, c *domainCache, raw string) {
	t.Helper()
	want, wantErr := normalizeDomain(raw)
	for _, pass := range []string{"first", "second"} {
		got, err := c.normalize(raw)
		if got != want || (err == nil) != (wantErr == nil) {
			t.Fatalf("%s look-up of %q: %q, %v; want %q, %v", pass, raw, got, err, want, wantErr)
		}
	}
}

func TestDomainCache(t *testing.T) {
	c := newDomainCache()
	for _, raw := range []string{
		"example.org", "Example.ORG", "EXAMPLE.org.", "bücher.example", "xn--bcher-kva.example",
		"[::1]", "127.0.0.1", ".", "0@..", "a..b", "alice@example.org", "example.org/res", "",
		strings.Repeat("a", 63) + ".example", strings.Repeat("a", 1100) + ".example", "\xff.example",
	} {
		sameAsUncached(t, c, raw)
	}
	if got, err := c.normalize("Example.ORG"); err != nil || got != "example.org" {
		t.Errorf("Example.ORG normalised to %q, %v; want example.org", got, err)
	}
	if _, err := c.normalize("alice@example.org"); err == nil {
		t.Error("a JID with a local part was taken for a domain")
	}
}

// More domains than slots: every look-up is still right, whichever
// domain a slot holds.
func TestDomainCacheCollisions(t *testing.T) {
	c := newDomainCache()
	var raws []string
	for i := range 4 * domainSlots {
		raws = append(raws, fmt.Sprintf("Host%d.Example", i))
	}
	for range 2 {
		for i, raw := range raws {
			got, err := c.normalize(raw)
			if want := fmt.Sprintf("host%d.example", i); err != nil || got != want {
				t.Fatalf("%q normalised to %q, %v; want %q", raw, got, err, want)
			}
		}
	}
	held := 0
	for i := range c.slots {
		if c.slots[i].Load() != nil {
			held++
		}
	}
	if held == 0 || held > domainSlots {
		t.Errorf("%d slots hold a domain", held)
	}
}

func TestDomainCacheConcurrent(t *testing.T) {
	c := newDomainCache()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				n := (i*7 + g) % 600
				raw := fmt.Sprintf("XMPP%d.example.ORG", n)
				got, err := c.normalize(raw)
				if want := fmt.Sprintf("xmpp%d.example.org", n); err != nil || got != want {
					t.Errorf("%q normalised to %q, %v; want %q", raw, got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzDomainCache: the cache answers any input as normalizeDomain does.
func FuzzDomainCache(f *testing.F) {
	for _, s := range []string{"example.org", "Example.ORG.", "ä.example", ".", "0@..", "a@b", "b/c", "[::1]"} {
		f.Add(s)
	}
	c := newDomainCache()
	f.Fuzz(func(t *testing.T, raw string) {
		sameAsUncached(t, c, raw)
	})
}

// A push names its XMPP server's domain: normalised once, then found.
func BenchmarkPushDomain(b *testing.B) {
	b.Run("cached", func(b *testing.B) {
		c := newDomainCache()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.normalize("chat.example.org"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := normalizeDomain("chat.example.org"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
