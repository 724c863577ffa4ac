package fcm

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Bursts of requests beyond the streams of the open connections: the
// default client dials a few connections at a time, and the pool grows to
// about what the load needs instead of one connection per waiting request.
func TestDefaultClientBoundsDialling(t *testing.T) {
	const streams, burst = 10, 300
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		io.WriteString(w, "{}")
	}))
	srv.EnableHTTP2 = true
	srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: streams}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	hc := defaultHTTPClient()
	tr := hc.Transport.(*http.Transport)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	for range 3 {
		var wg sync.WaitGroup
		for range burst {
			wg.Go(func() {
				res, err := hc.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				if res.ProtoMajor != 2 {
					t.Errorf("protocol %s, want HTTP/2", res.Proto)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			})
		}
		wg.Wait()
	}
	// 30 connections carry a burst; without the bound each round dialled
	// about one connection per request (over 900 in all).
	if n := conns.Load(); n > 2*burst/streams {
		t.Fatalf("%d connections for bursts of %d requests at %d streams per connection", n, burst, streams)
	}
	t.Logf("%d connections", conns.Load())
}
