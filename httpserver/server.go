// Package httpserver is p2http's public edge: net/http's server with the
// bounds that keep its memory and its log in check whatever clients do. It
// caps the request head, the time a client may take to send a request and
// to stay idle, the HTTP/2 streams per connection, and the connections in
// total and per client address; and it counts every per-connection error
// (failed TLS handshakes above all) while logging each kind at most once
// per interval. docs/reliability.md lists the attacks it answers.
package httpserver

import (
	"context"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// The server's bounds. The clients are p2xmpp and XMPP servers' HTTP hooks
// (contrib/prosody), which send a request of a few hundred bytes at once
// and wait for the answer; none of them needs more room or more time.
const (
	// MaxHeaderBytes caps a request's head (request line and headers).
	// net/http adds 4 KiB of slack, so a head of up to 8 KiB passes and a
	// larger one gets 431. Go's default is 1 MiB, which let 300 connections
	// take 320 MiB.
	MaxHeaderBytes = 4 << 10
	// ReadHeaderTimeout is the time a client has to send a request's head
	// from its first byte, and the TLS handshake's.
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout is the time a client has to send a whole request, head
	// and body (bodies are JSON of at most 64 KiB, usually under 300 bytes).
	ReadTimeout = 10 * time.Second
	// WriteTimeout bounds a request from the end of its head to the end of
	// its answer: it must cover the push deadline (P2_PUSH_DEADLINE, 10 s).
	WriteTimeout = 60 * time.Second
	// IdleTimeout is how long a kept-alive connection may wait for its
	// next request. It must stay above ClientIdleTimeout.
	IdleTimeout = 120 * time.Second
	// ClientIdleTimeout is how long p2http's own clients (p2xmpp) keep an
	// idle connection. Under IdleTimeout, so that the client, not the
	// server, closes an idle connection: a server that closed first would
	// race the client's next request, and a POST that meets a closing
	// connection is not retried. cmd/p2xmpp's TestTransportClosesIdleFirst
	// holds p2xmpp's transport to it.
	ClientIdleTimeout = IdleTimeout - 30*time.Second
	// MaxConcurrentStreams caps the requests in flight on one HTTP/2
	// connection (Go's default is 250). A client that wants more opens
	// another connection, which the connection caps then count.
	MaxConcurrentStreams = 32
	// maxStreamBuffer and maxConnBuffer cap the request bodies an HTTP/2
	// connection may send ahead of the handlers (flow control windows; Go's
	// default is 1 MiB for each).
	maxStreamBuffer = 64 << 10
	maxConnBuffer   = 256 << 10
)

// Defaults of the connection caps (P2_MAX_CONNS, P2_MAX_CONNS_PER_ADDR),
// sized in docs/reliability.md.
const (
	// DefaultMaxConns caps the connections in total.
	DefaultMaxConns = 4096
	// DefaultMaxConnsPerAddr caps the connections of one client address:
	// room for p2xmpp's 512 (two links of 256 while one replaces the
	// other) twice over, and a quarter of the total, so that one address
	// cannot take every place.
	DefaultMaxConnsPerAddr = 1024
	// DefaultErrorLogEvery is how often each kind of per-connection error
	// is logged at most.
	DefaultErrorLogEvery = time.Minute
)

// Observer is told about the connections the server refuses and the
// per-connection errors it meets; the metrics package implements it.
type Observer interface {
	// ConnRefused counts one connection closed for being over a cap:
	// RefusedPerAddress or RefusedTotal.
	ConnRefused(reason string)
	// ConnError counts one per-connection error: ErrTLSHandshake,
	// ErrHTTP2 or ErrOther.
	ConnError(kind string)
}

// Config assembles a Server.
type Config struct {
	// Handler answers the requests (the API).
	Handler http.Handler
	// Logger receives the per-connection errors, throttled.
	Logger *slog.Logger
	// Observer, when set, counts refused connections and errors.
	Observer Observer
	// MaxConns and MaxConnsPerAddr cap the connections; 0 means the
	// default.
	MaxConns, MaxConnsPerAddr int
	// ErrorLogEvery is how often each kind of per-connection error is
	// logged at most; 0 means DefaultErrorLogEvery.
	ErrorLogEvery time.Duration
}

// Server is net/http's server with p2http's bounds.
type Server struct {
	// HTTP is the underlying server; its fields are set by New.
	HTTP *http.Server
	cfg  Config
	errs *errorLog
	ln   atomic.Pointer[Listener]
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxConnsPerAddr <= 0 {
		cfg.MaxConnsPerAddr = DefaultMaxConnsPerAddr
	}
	if cfg.ErrorLogEvery <= 0 {
		cfg.ErrorLogEvery = DefaultErrorLogEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var countErr func(string)
	if cfg.Observer != nil {
		countErr = cfg.Observer.ConnError
	}
	s := &Server{cfg: cfg, errs: newErrorLog(cfg.Logger, cfg.ErrorLogEvery, countErr)}
	s.HTTP = &http.Server{
		Handler:           cfg.Handler,
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          MaxConcurrentStreams,
			MaxReceiveBufferPerStream:     maxStreamBuffer,
			MaxReceiveBufferPerConnection: maxConnBuffer,
		},
		ErrorLog: log.New(s.errs, "", 0),
	}
	return s
}

// Serve accepts connections on ln within the caps until Shutdown, over TLS
// when certFile is set; it returns http.ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener, certFile, keyFile string) error {
	var refused func(string)
	if s.cfg.Observer != nil {
		refused = s.cfg.Observer.ConnRefused
	}
	capped := NewListener(ln, s.cfg.MaxConns, s.cfg.MaxConnsPerAddr, refused)
	s.ln.Store(capped)
	if certFile != "" {
		return s.HTTP.ServeTLS(capped, certFile, keyFile)
	}
	return s.HTTP.Serve(capped)
}

// OpenConns is the number of connections held now.
func (s *Server) OpenConns() int {
	if ln := s.ln.Load(); ln != nil {
		return ln.Open()
	}
	return 0
}

// Shutdown stops accepting, waits for the requests in flight as
// http.Server.Shutdown does, and logs the errors still only counted.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.HTTP.Shutdown(ctx)
	s.errs.close()
	return err
}
