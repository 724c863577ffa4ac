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
// Each check yields one Check: ok, warn or fail, what was found, and what to
// do. Nothing a check reports holds the component secret, the API token or an
// account's JID: of the account the administrator names, only its domain is
// used and shown.
package xmppdoctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/p2http/p2http"
)

// Status is a check's outcome.
type Status string

// The outcomes of a check. Only Fail makes a Report fail.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Names of the checks, as Report lists them.
const (
	CheckConfig    = "config"        // the settings parse and agree
	CheckHandshake = "handshake"     // the XMPP server accepts the component: domain and secret
	CheckDisco     = "disco"         // the component answers disco#info and the commands' disco#items
	CheckAccount   = "account-route" // the account's server answers the component (--account)
	CheckP2HTTP    = "p2http"        // p2http answers GET /v1/info with the component's jid
	CheckAPIToken  = "api-token"     // p2http accepts P2XMPP_API_TOKEN (or needs none)
)

// Check is the outcome of one check.
type Check struct {
	// Name is one of the Check* names.
	Name string `json:"name"`
	// Status is ok, warn or fail.
	Status Status `json:"status"`
	// Detail says what was found.
	Detail string `json:"detail"`
	// Fix says what to do about a warn or a fail; "" for ok.
	Fix string `json:"fix"`
}

// Report is the outcome of every check, in the order they ran.
type Report struct {
	Checks []Check `json:"checks"`
	// OK is false when any check failed.
	OK bool `json:"ok"`
}

// NewReport returns a Report of checks.
func NewReport(checks ...Check) *Report {
	r := &Report{Checks: []Check{}, OK: true}
	for _, c := range checks {
		r.Add(c)
	}
	return r
}

// Add appends c.
func (r *Report) Add(c Check) {
	r.Checks = append(r.Checks, c)
	if c.Status == Fail {
		r.OK = false
	}
}

// count returns how many checks have status s.
func (r *Report) count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// WriteText writes one line per check — its status, its name, what was
// found and, after "fix:", what to do — then a summary line.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range r.Checks {
		line := c.Detail
		if c.Fix != "" {
			line += " — fix: " + c.Fix
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Status, c.Name, oneLine(line))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fails, warns := r.count(Fail), r.count(Warn)
	var err error
	switch {
	case fails > 0 && warns > 0:
		_, err = fmt.Fprintf(w, "p2xmpp doctor: %d of %d checks failed, %d warned\n", fails, len(r.Checks), warns)
	case fails > 0:
		_, err = fmt.Fprintf(w, "p2xmpp doctor: %d of %d checks failed\n", fails, len(r.Checks))
	case warns > 0:
		_, err = fmt.Fprintf(w, "p2xmpp doctor: no check failed, %d warned\n", warns)
	default:
		_, err = fmt.Fprintf(w, "p2xmpp doctor: all %d checks passed\n", len(r.Checks))
	}
	return err
}

// WriteJSON writes the report as one JSON document:
// {"checks":[{"name":…,"status":"ok|warn|fail","detail":…,"fix":…}],"ok":bool}.
func (r *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// oneLine keeps a detail on its line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

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
func Run(ctx context.Context, cfg Config) *Report {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := NewReport(Check{Name: CheckConfig, Status: OK,
		Detail: fmt.Sprintf("P2XMPP_JID %s, P2XMPP_SERVER %s, P2XMPP_API %s", cfg.JID, cfg.Server, cfg.API)})
	checkXMPP(ctx, cfg, r)
	reachable := checkP2HTTP(ctx, cfg, r)
	checkAPIToken(ctx, cfg, r, reachable)
	return r
}

// ConfigFailed is the report of a configuration p2xmpp refuses: err names
// the variable at fault. Nothing else is checked.
func ConfigFailed(err error) *Report {
	return NewReport(Check{Name: CheckConfig, Status: Fail, Detail: strings.ReplaceAll(err.Error(), "\n", "; "),
		Fix: "correct the variable named (p2xmpp -h and docs/p2xmpp.md describe each)"})
}
