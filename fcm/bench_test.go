package fcm_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/fcm"
	"github.com/p2http/p2http/internal/benchfake"
)

// BenchmarkSend measures one wake-up sent to the
// benchmark's fake FCM over HTTP/2 and TLS, 32 in flight: the request
// building, the access token, the HTTP/2 stream, the answer's mapping.
func BenchmarkSend(b *testing.B) {
	f, err := benchfake.NewFCM(1000)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s, err := fcm.New(context.Background(), fcm.Config{CredentialsJSON: f.Credentials, Endpoint: f.Endpoint(), HTTPClient: f.Client()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Send(ctx, p2http.Wakeup{Token: benchfake.Token(0), Device: device}); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1) % 1000)
			if err := s.Send(ctx, p2http.Wakeup{Token: benchfake.Token(i), Device: device, Important: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
