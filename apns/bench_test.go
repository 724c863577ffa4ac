package apns_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/apns"
)

// BenchmarkSend: one wake-up to an APNs stand-in over HTTP/2 and TLS that
// answers 200 at once, with token authentication and a client timeout as
// the default client has, 32 in flight; the stand-in's own work included.
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("apns-id", "EC1BF194-B3B2-424A-89A9-5A918A6E6B5B")
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	_, pemKey := p8(b)
	s, err := apns.New(apns.Config{
		Endpoint: srv.URL, Topic: topic, SigningKey: pemKey, KeyID: keyID, TeamID: teamID,
		HTTPClient: &http.Client{Transport: srv.Client().Transport, Timeout: 30 * time.Second},
	})
	if err != nil {
		b.Fatal(err)
	}
	w := p2http.Wakeup{Token: token, Device: device}
	if err := s.Send(context.Background(), w); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(16) // 32 goroutines on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Send(context.Background(), w); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
