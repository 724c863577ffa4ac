package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// Many requests in flight, again and again: the connections of the first
// round are kept and reused, none is dialled per request.
func TestAPITransportReusesConnections(t *testing.T) {
	var conns atomic.Int64
	release := make(chan struct{})
	var arrived sync.WaitGroup
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		<-release
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	hc := &http.Client{Transport: apiTransport()}
	const inFlight = 64
	for round := range 3 {
		arrived.Add(inFlight)
		var done sync.WaitGroup
		for range inFlight {
			done.Go(func() {
				res, err := hc.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			})
		}
		arrived.Wait() // all in flight at once
		for range inFlight {
			release <- struct{}{}
		}
		done.Wait()
		if n := conns.Load(); n != inFlight {
			t.Fatalf("round %d: %d connections for %d requests in flight", round, n, inFlight)
		}
	}
}
