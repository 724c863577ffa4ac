// Package api is p2http's JSON REST API: a chi router whose handlers decode
// and validate a request, call the domain's services (p2http.Registrar,
// p2http.Pusher, p2http.Describer), and encode the answer. Every error
// leaves as application/problem+json (RFC 9457); the table mapping domain
// error codes to HTTP statuses is in problem.go, and nowhere else.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/p2http/p2http"
)

// DefaultMaxBodyBytes bounds request bodies when Config.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 64 << 10

// Database is what the API asks of the database for readiness.
type Database interface {
	Ping(ctx context.Context) error
	MigrationVersion(ctx context.Context) (version uint, dirty bool, err error)
}

// Config assembles the API.
type Config struct {
	// Registrar serves /v1/register, /v1/unregister and
	// /v1/registration, Pusher /v1/push and Describer /v1/info; a
	// relay.Relay is all three.
	Registrar p2http.Registrar
	Pusher    p2http.Pusher
	Describer p2http.Describer
	// Database is checked by /readyz; nil when the mode keeps no database.
	Database Database
	// Tokens are the accepted bearer tokens (P2_API_TOKENS); when empty,
	// registration needs none.
	Tokens []string
	// TokenLimit limits the requests of each API token; nil means none.
	TokenLimit p2http.Limiter
	// ServiceStates reports each service's state for /readyz: "ok",
	// "not-configured", "dev-log" or "degraded".
	ServiceStates func() map[p2http.Service]string
	// AppStates reports the service states of each further app for
	// /readyz, as ServiceStates does for the default app; nil for none.
	AppStates func() map[string]map[p2http.Service]string
	Version   string
	DevMode   bool
	// OpenAPI is the contract served at /openapi.yaml.
	OpenAPI []byte
	// Metrics, when set, is served at /metrics, behind a bearer token when
	// Tokens are set (nil when P2_METRICS serves it on a listener of its
	// own).
	Metrics http.Handler
	// ObserveRequest, when set, is told about every request: its route
	// pattern, method, status and duration.
	ObserveRequest func(route, method string, status int, d time.Duration)
	// AllowedHosts, when not empty, are the only names and IP addresses
	// the Host header may hold (with any port, in any case): every other
	// request is answered 421, so that a web page cannot reach the API
	// through DNS rebinding. IPv6 addresses may be given with or without
	// brackets. Empty means no check. cmd/p2http sets it for a loopback
	// listener without API tokens, and whenever P2_ALLOWED_HOSTS is set.
	AllowedHosts []string
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// Server is the HTTP API.
type Server struct {
	cfg    Config
	tokens [][sha256.Size]byte
	hosts  *hostSet // nil: any Host
	router chi.Router
}

// New returns the API handler for cfg.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg}
	for _, t := range cfg.Tokens {
		s.tokens = append(s.tokens, sha256.Sum256([]byte(t)))
	}
	if len(cfg.AllowedHosts) > 0 {
		s.hosts = newHostSet(cfg.AllowedHosts)
	}
	s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

func (s *Server) routes() {
	r := chi.NewRouter()
	r.Use(s.requestID, s.logRequests, s.recoverPanics)
	if s.hosts != nil {
		r.Use(s.checkHost) // before every route: a rebound page may read nothing
	}
	// Every GET route answers HEAD (RFC 9110, 9.3.2) by its GET handler;
	// net/http sends the GET's status and headers and drops the body.
	r.Use(middleware.GetHead)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.problem(w, r, p2http.Errorf(p2http.ENOTFOUND, "no such resource"))
	})
	r.MethodNotAllowed(s.methodNotAllowed)

	r.Get("/healthz", s.handleHealthz)
	r.Get("/readyz", s.handleReadyz)
	r.Get("/openapi.yaml", s.handleOpenAPI)
	s.docsRoutes(r) // GET /docs: openapi.yaml rendered by Redoc
	if s.cfg.Metrics != nil {
		r.With(s.requireToken).Method(http.MethodGet, "/metrics", s.cfg.Metrics)
	}
	// Full paths rather than r.Route("/v1", …): a mounted router's "/*"
	// makes chi copy every request once more to set that path value.
	r.Get("/v1/info", s.handleInfo)
	r.With(s.checkTokenIfSent).Post("/v1/push", s.handlePush)
	r.Group(func(r chi.Router) {
		r.Use(s.requireToken)
		r.Post("/v1/register", s.handleRegister)
		r.Post("/v1/unregister", s.handleUnregister)
		r.Get("/v1/registration", s.handleRegistration)
	})
	s.router = r
}

// token returns the index of the accepted bearer token the request carries,
// or -1, comparing against every token in constant time.
func (s *Server) token(r *http.Request) int {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return -1
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(h[len(prefix):])))
	found := -1
	for i := range s.tokens {
		if subtle.ConstantTimeCompare(sum[:], s.tokens[i][:]) == 1 {
			found = i
		}
	}
	return found
}

// authorize checks the bearer token (required or only when sent) and the
// token's rate limit, and writes the problem when it refuses.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, required bool) bool {
	if len(s.tokens) == 0 || !required && r.Header.Get("Authorization") == "" {
		return true
	}
	i := s.token(r)
	if i < 0 {
		msg := "a valid bearer token is required"
		if !required {
			msg = "the bearer token sent is not valid"
		}
		s.problem(w, r, p2http.Errorf(p2http.EUNAUTHORIZED, "%s", msg))
		return false
	}
	if info := requestInfoFrom(r); info != nil {
		info.token = i + 1 // the caller a failed push is charged to
	}
	if s.cfg.TokenLimit != nil {
		if ok, retry := s.cfg.TokenLimit.Allow(strconv.Itoa(i)); !ok {
			s.problem(w, r, &p2http.Error{Code: p2http.ERATELIMIT, RetryAfter: retry,
				Message: "too many requests for this API token; slow down"})
			return false
		}
	}
	return true
}

func (s *Server) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.authorize(w, r, true) {
			next.ServeHTTP(w, r)
		}
	})
}

// checkTokenIfSent lets a request without Authorization through (a push is
// authorised by node and secret), but refuses a wrong token that was sent.
func (s *Server) checkTokenIfSent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.authorize(w, r, false) {
			next.ServeHTTP(w, r)
		}
	})
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if s.router.Match(chi.NewRouteContext(), m, r.URL.Path) {
			allowed = append(allowed, m)
			if m == http.MethodGet {
				allowed = append(allowed, http.MethodHead) // middleware.GetHead
			}
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	s.problem(w, r, p2http.Errorf(codeMethodNotAllowed, "%s is not allowed here", r.Method))
}
