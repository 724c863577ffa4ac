package main

import (
	"net"
	"net/http"
	"time"

	"github.com/p2http/p2http/httpserver"
)

// apiTransport returns the transport of p2xmpp's calls on p2http. Each
// request in flight holds a connection of its own (HTTP/1.1, or HTTP/2
// when P2XMPP_API is https), and a link has up to maxInFlight of them.
// net/http keeps only two idle connections per host by default: under load
// every other answer closed its connection and the next request dialled a
// new one (a fifth of p2xmpp's CPU went to dialling, and p2http's to
// accepting). Keeping as many idle connections as there can be requests in
// flight lets a busy component reuse them all.
func apiTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConns = 2 * maxInFlight // a link being replaced overlaps its successor
	t.MaxIdleConnsPerHost = maxInFlight
	// Under p2http's IdleTimeout (120 s), so that p2xmpp, not p2http,
	// closes an idle connection: no request is ever sent on a connection
	// the server is closing (TestTransportClosesIdleFirst).
	t.IdleConnTimeout = httpserver.ClientIdleTimeout
	return t
}
