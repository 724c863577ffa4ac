package metrics

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Listen serves h at GET /metrics on a listener of its own at addr
// (P2_METRICS), and nothing else: no API, no token. It returns once the
// listener is open; stop closes it.
func Listen(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h) // and HEAD: a GET pattern matches it
	// A scrape is one small request: short deadlines and small headers.
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics listener stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return func() {
		srv.Close()
		<-done
	}, nil
}
