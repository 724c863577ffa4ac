package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2http/p2http/httpserver"
)

// p2xmpp closes an idle connection before p2http would: a server closing
// first races p2xmpp's next request on that connection, and a POST that
// meets a closing connection fails without a retry. The margin covers a
// request sent just as the client's timer is about to fire.
func TestTransportClosesIdleFirst(t *testing.T) {
	const margin = 10 * time.Second
	client := apiTransport().IdleConnTimeout
	server := httpserver.New(httpserver.Config{}).HTTP.IdleTimeout
	if client <= 0 || client > server-margin {
		t.Fatalf("p2xmpp keeps idle connections %v, p2http closes them after %v: the client must close first, by %v at least",
			client, server, margin)
	}
}

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
