package httpserver

import (
	"log/slog"
	"strings"
	"sync"
	"time"
)

// The kinds of per-connection error, the values of Observer.ConnError.
const (
	// ErrTLSHandshake: a client that did not complete the TLS handshake
	// (a scanner, plain HTTP on the TLS port, a closed connection).
	ErrTLSHandshake = "tls_handshake"
	// ErrHTTP2: an HTTP/2 connection that broke the protocol or went away
	// in the middle of it.
	ErrHTTP2 = "http2"
	// ErrOther: anything else net/http logs about a connection.
	ErrOther = "other"
)

// maxErrorLine bounds the length of a logged error.
const maxErrorLine = 300

// errorLog is the writer behind http.Server.ErrorLog. net/http writes one
// line per failed connection, and a client can fail thousands of
// connections a second: every line is counted, but each kind is logged at
// most once per interval. The first error after a quiet interval is logged
// at once; the ones after it within the interval are only counted, and
// when the interval ends one line gives their number and the last of them.
type errorLog struct {
	log   *slog.Logger
	every time.Duration
	count func(kind string)

	mu     sync.Mutex
	kinds  map[string]*errorWindow
	closed bool
}

// errorWindow is one kind's interval.
type errorWindow struct {
	timer      *time.Timer // running while the interval is open
	suppressed int
	last       string
}

func newErrorLog(log *slog.Logger, every time.Duration, count func(kind string)) *errorLog {
	return &errorLog{log: log, every: every, count: count, kinds: map[string]*errorWindow{}}
}

// Write takes one line of net/http's error log.
func (e *errorLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if len(msg) > maxErrorLine {
		msg = strings.ToValidUTF8(msg[:maxErrorLine], "") + "…"
	}
	kind := classify(msg)
	if e.count != nil {
		e.count(kind)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.kinds[kind]
	if w == nil {
		w = &errorWindow{}
		e.kinds[kind] = w
	}
	switch {
	case e.closed:
	case w.timer == nil:
		e.log.Warn("http connection error", "kind", kind, "error", msg)
		w.timer = time.AfterFunc(e.every, func() { e.endInterval(kind) })
	default:
		w.suppressed++
		w.last = msg
	}
	return len(p), nil
}

// endInterval logs the errors of kind counted in the interval that ended,
// and opens the next one if there were any.
func (e *errorLog) endInterval(kind string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.kinds[kind]
	if w.suppressed == 0 || e.closed {
		w.timer = nil
		return
	}
	e.report(kind, w)
	w.timer.Reset(e.every)
}

// report logs the suppressed errors of one kind; e.mu is held.
func (e *errorLog) report(kind string, w *errorWindow) {
	e.log.Warn("http connection errors not logged one by one", "kind", kind, "suppressed", w.suppressed,
		"interval", e.every.String(), "last", w.last)
	w.suppressed, w.last = 0, ""
}

// close logs what is still counted and stops the intervals.
func (e *errorLog) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	for kind, w := range e.kinds {
		if w.timer != nil {
			w.timer.Stop()
			w.timer = nil
		}
		if w.suppressed > 0 {
			e.report(kind, w)
		}
	}
}

// classify tells the kind of one line of net/http's error log.
func classify(msg string) string {
	switch {
	case strings.Contains(msg, "TLS handshake error"):
		return ErrTLSHandshake
	case strings.HasPrefix(msg, "http2:"):
		return ErrHTTP2
	}
	return ErrOther
}
