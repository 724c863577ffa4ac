package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/p2http/p2http"
)

type ctxKey int

const requestInfoKey ctxKey = iota

// RequestIDHeader carries the request id in both directions.
const RequestIDHeader = "X-Request-ID"

// requestInfo is what the middleware keeps about one request in its
// context: its id, the API token it authenticated with, and the cause of a
// 5xx answer, which problem records for logRequests to put in the request's
// one line.
type requestInfo struct {
	id string
	// token is the index of the API token the request authenticated with,
	// plus one; 0 when it sent none.
	token int
	// code and err are the domain error a 5xx problem was answered for.
	code string
	err  error
}

func requestInfoFrom(r *http.Request) *requestInfo {
	info, _ := r.Context().Value(requestInfoKey).(*requestInfo)
	return info
}

func requestIDFrom(r *http.Request) string {
	if info := requestInfoFrom(r); info != nil {
		return info.id
	}
	return ""
}

// callerOf identifies who sent r, for the domain's budget of failed
// pushes: the API token it authenticated with, else its address. An IPv6
// address counts by its /64, which one subscriber usually holds whole, so
// that drawing addresses from it gives no fresh budget. The result is a key
// in memory, never logged.
func callerOf(r *http.Request) string {
	if info := requestInfoFrom(r); info != nil && info.token > 0 {
		return "token " + strconv.Itoa(info.token-1)
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}

// requestID keeps a caller's request id when it is short and plain, else
// draws one, and returns it in the response.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !plainID(id) {
			var b [8]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestInfoKey, &requestInfo{id: id})))
	})
}

func plainID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// logRequests writes one line per request: the route pattern rather than
// the path (a query may hold a node), never a body or header. The line is at
// debug when the status is below 500: at push rates one line per request
// would flood the journal, and /metrics counts requests by route and status.
// A 5xx is logged at warn, with its cause when problem recorded one (at
// error for a 500, an internal error).
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "(unmatched)"
		}
		if s.cfg.ObserveRequest != nil {
			s.cfg.ObserveRequest(route, r.Method, ww.Status(), time.Since(start))
		}
		status := ww.Status()
		level := slog.LevelDebug
		switch {
		case status == http.StatusInternalServerError:
			level = slog.LevelError
		case status >= 500:
			level = slog.LevelWarn
		}
		ctx := r.Context()
		// Checked first, so that a line not logged costs no allocation.
		if !s.cfg.Logger.Enabled(ctx, level) {
			return
		}
		var id, code string
		var cause error
		if info := requestInfoFrom(r); info != nil {
			id, code, cause = info.id, info.code, info.err
		}
		var buf [8]slog.Attr // on the stack: LogAttrs copies the attributes
		attrs := buf[:0]
		attrs = append(attrs, slog.String("request_id", id), slog.String("method", r.Method), slog.String("route", route),
			slog.Int("status", status), slog.Int("bytes", ww.BytesWritten()),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
		if cause != nil {
			attrs = append(attrs, slog.String("code", code), slog.Any("err", cause))
		}
		s.cfg.Logger.LogAttrs(ctx, level, "request", attrs...)
	})
}

// recoverPanics turns a panic into a logged 500 problem instead of a
// dropped connection.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.cfg.Logger.ErrorContext(r.Context(), "panic", "value", v, "stack", string(debug.Stack()), "request_id", requestIDFrom(r))
				s.problem(w, r, &p2http.Error{Code: p2http.EINTERNAL, Message: "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}
