// Package xmppdoctor checks p2xmpp's configuration end to end, as
// `p2xmpp doctor` shows it: whether the XMPP server accepts the component
// (its domain and secret), whether the component answers service discovery
// through the server as Conversations expects, whether an account's server
// can reach the component, and whether p2http is reachable, serves the
// component's address and accepts its API token.
//
// The checks through the XMPP server are made over a component link of the
// doctor's own, with the real translation (xmpp.Component) answering what
// arrives on it: the doctor's own discovery requests, and anything the
// server routes to it meanwhile (pushes, registrations) exactly as p2xmpp
// would, so that running the doctor next to a p2xmpp that shares the
// component (ejabberd, or Prosody's component_conflict_resolve = "kick_old")
// loses nothing.
//
// Each check yields one line of the report both doctors give
// (internal/checkup): ok, warn or fail, what was found, and what to do.
// Nothing a check reports holds the component secret, the API token or an
// account's JID: of the account the administrator names, only its domain is
// used and shown.
package xmppdoctor

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/internal/checkup"
)

// The ids of the checks, in the order they run.
const (
	CheckConfig    = "config"        // the settings parse and agree
	CheckHandshake = "handshake"     // the XMPP server accepts the component: domain and secret
	CheckDisco     = "disco"         // the component answers disco#info and the commands' disco#items
	CheckAccount   = "account-route" // the account's server answers the component (--account)
	CheckP2HTTP    = "p2http"        // p2http answers GET /v1/info with the component's jid
	CheckAPIToken  = "api-token"     // p2http accepts P2XMPP_API_TOKEN (or needs none)
)

// Command names the command in the report's last line.
const Command = "p2xmpp doctor"

// newReport returns a report of checks.
func newReport(checks ...checkup.Check) *checkup.Report {
	r := checkup.New(Command)
	for _, c := range checks {
		r.Add(c)
	}
	return r
}

// DefaultTimeout bounds each exchange with the XMPP server or p2http when
// Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Config is what the doctor checks: p2xmpp's settings, and the services it
// reaches p2http through.
type Config struct {
	// JID, Secret and Server are P2XMPP_JID, P2XMPP_SECRET and
	// P2XMPP_SERVER.
	JID, Secret, Server string
	// API is P2XMPP_API, p2http's base URL, for the report's words.
	API string
	// APIToken tells whether P2XMPP_API_TOKEN is set; the token itself is
	// in the services.
	APIToken bool
	// Registrar, Pusher and Describer are p2http's services, as p2xmpp
	// reaches them (api.Client).
	Registrar p2http.Registrar
	Pusher    p2http.Pusher
	Describer p2http.Describer
	// Account, when set, is an account (user@domain) or a domain whose
	// server must reach the component: only its domain is used or shown.
	Account string
	// Timeout bounds each exchange; zero means DefaultTimeout.
	Timeout time.Duration
	// Logger receives what the component logs while the doctor holds the
	// link (requests the server routes to it meanwhile); nil discards it.
	Logger *slog.Logger
}

// Run runs the checks, in order, and returns their report. cfg is what
// p2xmpp would run with: the configuration check is ok (ConfigFailed
// reports a configuration p2xmpp refuses).
func Run(ctx context.Context, cfg Config) *checkup.Report {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := newReport(checkup.Check{ID: CheckConfig, Status: checkup.OK,
		Message: fmt.Sprintf("P2XMPP_JID %s, P2XMPP_SERVER %s, P2XMPP_API %s", cfg.JID, cfg.Server, cfg.API)})
	checkXMPP(ctx, cfg, r)
	reachable := checkP2HTTP(ctx, cfg, r)
	checkAPIToken(ctx, cfg, r, reachable)
	return r
}

// ConfigFailed is the report of a configuration p2xmpp refuses: err names
// the variable at fault. Nothing else is checked.
func ConfigFailed(err error) *checkup.Report {
	return newReport(checkup.Check{ID: CheckConfig, Status: checkup.Fail, Message: strings.ReplaceAll(err.Error(), "\n", "; "),
		Fix: "correct the variable named (p2xmpp -h and docs/p2xmpp.md describe each)"})
}
