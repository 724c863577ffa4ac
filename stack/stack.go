// Package stack is p2http's one assembly: from a store, the server key,
// the senders and the settings, New builds the relay and the API handler
// over it, with the rate limits, the observer, and what /readyz says of
// each app's services. cmd/p2http's Main serves what it builds behind
// httpserver; the tests that need the whole service build it the same way.
// Outside their own packages, relay.New and api.New are called here only.
package stack

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/apps"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/ratelimit"
	"github.com/p2http/p2http/relay"
)

// Config is what the stack is built from. Zero durations and counts mean
// relay's and api's defaults; a zero Rate means no limit.
type Config struct {
	// JID is the push component's address (P2_JID).
	JID string
	// Store keeps the registrations. Resolver, when not nil, turns nodes
	// and secrets into targets in its place (the stateless mode's sealed
	// store).
	Store    p2http.Store
	Resolver p2http.Resolver
	// Database is what /readyz checks; nil when the mode keeps no
	// database.
	Database api.Database
	// Keyring derives the secrets from the server key.
	Keyring *keyring.Keyring
	// Senders are every app's senders and their configured states
	// (apps.Build, or apps.Given in tests).
	Senders *apps.Senders

	// PushDeadline, CoalesceWindow, MaxInFlight, RetryBackoff and
	// PushLogEvery are relay.Config's.
	PushDeadline, CoalesceWindow, RetryBackoff, PushLogEvery time.Duration
	MaxInFlight                                              int
	// LimitPushDomain limits pushes per domain of the registration,
	// LimitPushFailed failed pushes per caller and claimed domain,
	// LimitRegister registrations per account domain and LimitAPIToken
	// requests per API token.
	LimitPushDomain, LimitPushFailed, LimitRegister, LimitAPIToken ratelimit.Rate

	// Tokens are the accepted bearer tokens (P2_API_TOKENS); none means
	// registration needs none.
	Tokens []string
	// AllowedHosts are api.Config.AllowedHosts: the names the Host header
	// may hold, or none for no check.
	AllowedHosts []string
	// Version is what /healthz and /readyz report; DevMode says that
	// unconfigured services log instead of sending.
	Version string
	DevMode bool
	// Metrics, when set, is served at /metrics (nil when P2_METRICS serves
	// it on a listener of its own).
	Metrics http.Handler
	// Observer is told about pushes, provider calls and requests; nil
	// means nobody.
	Observer Observer
	Logger   *slog.Logger
}

// Observer is told about pushes and provider calls (relay.Observer) and
// about every API request: metrics.Metrics.
type Observer interface {
	relay.Observer
	// Request reports one request: its route pattern, method, status and
	// duration.
	Request(route, method string, status int, d time.Duration)
}

// Stack is the service built: the relay and the API handler over it.
type Stack struct {
	// Relay implements the domain's services.
	Relay *relay.Relay
	// Handler is the HTTP API over Relay.
	Handler *api.Server

	defaultStates func() map[p2http.Service]string
	appStates     func() map[string]map[p2http.Service]string
}

// New builds the relay over cfg's store and senders, and the API over it.
func New(cfg Config) *Stack {
	rc := relay.Config{
		JID: cfg.JID, Store: cfg.Store, Resolver: cfg.Resolver, Keyring: cfg.Keyring,
		Senders: cfg.Senders.Default, Apps: cfg.Senders.Apps, Logger: cfg.Logger,
		PushDeadline: cfg.PushDeadline, CoalesceWindow: cfg.CoalesceWindow, MaxInFlight: cfg.MaxInFlight,
		RetryBackoff: cfg.RetryBackoff, PushLogEvery: cfg.PushLogEvery,
		PushLimit: ratelimit.New(cfg.LimitPushDomain), RegisterLimit: ratelimit.New(cfg.LimitRegister),
		FailLimit: ratelimit.NewMaxKeys(cfg.LimitPushFailed, ratelimit.MaxFailKeys),
	}
	ac := api.Config{
		Database: cfg.Database, Tokens: cfg.Tokens, TokenLimit: ratelimit.New(cfg.LimitAPIToken),
		Version: cfg.Version, DevMode: cfg.DevMode, OpenAPI: p2http.OpenAPI, Logger: cfg.Logger,
		Metrics: cfg.Metrics, AllowedHosts: cfg.AllowedHosts,
	}
	if cfg.Observer != nil {
		rc.Observer, ac.ObserveRequest = cfg.Observer, cfg.Observer.Request
	}
	r := relay.New(rc)
	ac.Registrar, ac.Pusher, ac.Describer = r, r, r
	ac.ServiceStates, ac.AppStates = cfg.Senders.ServiceStates(r.AppDegraded), cfg.Senders.AppStates(r.AppDegraded)
	return &Stack{Relay: r, Handler: api.New(ac), defaultStates: ac.ServiceStates, appStates: ac.AppStates}
}

// Ready reports whether /readyz answers 200 (api.Server.Ready).
func (s *Stack) Ready(ctx context.Context) bool { return s.Handler.Ready(ctx) }

// ServiceStates returns what /readyz says of the services of every app, the
// default app's included, by app: apps.States.
func (s *Stack) ServiceStates() map[p2http.App]map[p2http.Service]string {
	apps := s.appStates()
	out := make(map[p2http.App]map[p2http.Service]string, 1+len(apps))
	out[p2http.DefaultApp] = s.defaultStates()
	for name, st := range apps {
		out[p2http.App(name)] = st
	}
	return out
}

// Close sends what coalescing still owes and stops the relay's background
// work, within ctx: relay.Relay.Close.
func (s *Stack) Close(ctx context.Context) error { return s.Relay.Close(ctx) }
