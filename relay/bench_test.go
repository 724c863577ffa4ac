package relay_test

import (
	"testing"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/relay"
)

// The account is normalised at every registration (PRECIS, IDNA).
func BenchmarkNormalizeAccount(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := relay.NormalizeAccount("Alice@Example.ORG"); err != nil {
			b.Fatal(err)
		}
	}
}

// The device hash is computed at every registration and unregistration.
func BenchmarkDeviceHash(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		p2http.DeviceHash("alice@example.org", "c0ffee1234567890")
	}
}
