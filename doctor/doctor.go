// Package doctor checks a p2http configuration end to end, as `p2http
// doctor` does: the settings; the database, its migrations and its server
// key; with --node, the registration and what became of its pushes; every
// app's FCM and APNs credentials, against Google and Apple, with nothing
// delivered to a phone; and how exposed the listener is. Each check ends
// ok, warn or fail, and every warn and fail says what to do
// (docs/operations.md lists them). The report is internal/checkup's, the
// one p2xmpp doctor gives too.
//
// cmd/p2http parses the settings with serve's own table and hands them
// over as a Config, so the checks look at what the service would run with.
// Nothing here writes: no database file, migration, key file or pin is
// created. Nothing printed holds a push token (a token given with --token
// is shown by its first characters), a secret, a key or a JID.
package doctor

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/apps"
	"github.com/p2http/p2http/internal/checkup"
	"github.com/p2http/p2http/internal/envflag"
)

// Command names the command in the report's last line.
const Command = "p2http doctor"

// The check ids: config, database, migrations, server-key, registration,
// push-history, push-services, fcm-auth, fcm-dry-run, apns-auth,
// apns-environment, apns-token, listener, api-tokens, tls, allowed-hosts and
// metrics (docs/operations.md describes each). A push check names its app
// (checkup.Check.App).

// Config is the configuration checked, as the service parsed it.
type Config struct {
	// Err is what the service's own validation of the settings said; nil
	// when they are valid. The service refuses to start with it.
	Err error
	// Parsed is false when the settings could not even be parsed: only
	// Err is set, and only the configuration is reported.
	Parsed bool
	// Mode is "stored" or "stateless".
	Mode string
	// DatabaseURL and SecretKey are P2_DATABASE_URL and P2_SECRET_KEY;
	// PreviousKeys is P2_PREVIOUS_SECRET_KEYS.
	DatabaseURL, SecretKey string
	PreviousKeys           []string
	// Default is the default app, whose fields DefaultName names; Apps are
	// the further apps of P2_CONFIG.
	Default     apps.Config
	DefaultName apps.Namer
	Apps        map[string]apps.Config
	// Dev is P2_DEV.
	Dev bool
	// Listen is P2_LISTEN; APITokens counts P2_API_TOKENS.
	Listen    string
	APITokens int
	// AllowedHosts is what the Host header may hold (api.HostsToCheck);
	// nil when it is not checked.
	AllowedHosts []string
	// TLSCert and TLSKey are P2_TLS_CERT and P2_TLS_KEY; Metrics is
	// P2_METRICS.
	TLSCert, TLSKey, Metrics string
	// HTTPClient reaches FCM, its token endpoint and APNs; nil means each
	// sender's own default client. Tests pass the fakes' client.
	HTTPClient *http.Client
	// Now is the clock certificates are judged by; nil means time.Now.
	Now func() time.Time
}

// DefaultTimeout bounds each check that reaches out (--timeout).
const DefaultTimeout = 20 * time.Second

// Options are the flags of `p2http doctor`.
type Options struct {
	// JSON prints the Report as JSON.
	JSON bool
	// Token is an FCM registration token to dry-run, of app App.
	Token, App string
	// Node is a registration's node: its app, service and token are
	// checked.
	Node string
	// Timeout bounds each check that reaches out.
	Timeout time.Duration
}

// Flags declares doctor's flags into fs.
func (o *Options) Flags(fs *flag.FlagSet) {
	fs.BoolVar(&o.JSON, "json", false, "print the result as JSON")
	fs.StringVar(&o.Token, "token", "", "an FCM registration token to check with a dry run (validate_only): nothing reaches the phone")
	fs.StringVar(&o.App, "app", "", "the app --token belongs to (default: the default app)")
	fs.StringVar(&o.Node, "node", "", "a registration's node: check its app, service and token, and report what became of its pushes")
	fs.DurationVar(&o.Timeout, "timeout", DefaultTimeout, "bound on each check that reaches a database, FCM or APNs")
}

// Validate checks the options before anything is reached.
func (o *Options) Validate() error {
	switch {
	case o.Token != "" && o.Node != "":
		return errors.New("doctor: give --token or --node, not both")
	case o.App != "" && o.Token == "":
		return errors.New("doctor: --app names the app of --token; a --node's app is the registration's")
	case o.App != "" && !p2http.App(o.App).Valid():
		return fmt.Errorf("doctor: --app %q is not an app name", o.App)
	case o.Timeout <= 0:
		return errors.New("doctor: --timeout must be positive")
	}
	return nil
}

// Run runs the checks of cfg (Diagnose) and writes the report to w, as
// text or, with o.JSON, as JSON. It returns a *checkup.FailedError when a
// check failed.
func Run(ctx context.Context, cfg Config, o Options, w io.Writer) error {
	return Diagnose(ctx, cfg, o).Write(w, o.JSON)
}

// doctor runs the checks of one Diagnose.
type doctor struct {
	cfg    Config
	o      Options
	now    func() time.Time
	report *checkup.Report
}

// add records a check.
func (d *doctor) add(c checkup.Check) { d.report.Add(c) }

func (d *doctor) ok(id, app, msg string) {
	d.add(checkup.Check{ID: id, App: app, Status: checkup.OK, Message: msg})
}

func (d *doctor) warn(id, app, msg, fix string) {
	d.add(checkup.Check{ID: id, App: app, Status: checkup.Warn, Message: msg, Fix: fix})
}

func (d *doctor) fail(id, app, msg, fix string) {
	d.add(checkup.Check{ID: id, App: app, Status: checkup.Fail, Message: msg, Fix: fix})
}

// bounded returns ctx bounded by the check timeout.
func (d *doctor) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.o.Timeout)
}

// Diagnose runs every check of cfg and returns the report. Checks that
// need one that failed (the migrations need the database) are left out.
func Diagnose(ctx context.Context, cfg Config, o Options) *checkup.Report {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	d := &doctor{cfg: cfg, o: o, now: cfg.Now, report: checkup.New(Command)}
	if d.now == nil {
		d.now = time.Now
	}
	d.checkConfig()
	if cfg.Parsed {
		reg := d.checkStore(ctx)
		d.checkPush(ctx, reg)
		d.checkExposure()
	}
	return d.report
}

// checkConfig reports the service's validation of the settings.
func (d *doctor) checkConfig() {
	cfg := d.cfg
	if cfg.Err != nil {
		fix := "correct the setting named; the README's configuration table and `p2http serve -h` describe each"
		var ee *envflag.Error
		if errors.As(cfg.Err, &ee) {
			fix = "correct " + ee.Var + "; the README's configuration table and `p2http serve -h` describe each setting"
		}
		d.fail("config", "", "the service would refuse to start: "+cfg.Err.Error(), fix)
		return
	}
	n := len(cfg.Apps) + 1
	d.ok("config", "", fmt.Sprintf("valid: %s mode, %d app%s", cfg.Mode, n, plural(n)))
}

// plural is "s" unless n is 1.
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// tokenName names the token checked in messages, never by its value:
// the one of --token or of the registration of --node.
func (d *doctor) tokenName() string {
	if d.o.Node != "" {
		return "the registration's token"
	}
	return "the token of --token"
}

// explain is the text of a sender's or a store's error: its message and
// cause, without the code; a setting's error names the setting.
func explain(err error) string {
	var ee *envflag.Error
	if errors.As(err, &ee) {
		return ee.Var + ": " + ee.Msg
	}
	var e *p2http.Error
	if errors.As(err, &e) {
		s := e.Message
		if e.Err != nil {
			s += ": " + e.Err.Error()
		}
		return s
	}
	return err.Error()
}

// cause is the cause a sender's error carries, such as the status FCM
// answered, or the whole error when it carries none.
func cause(err error) string {
	var e *p2http.Error
	if errors.As(err, &e) && e.Err != nil {
		return e.Err.Error()
	}
	return explain(err)
}

// serviceName is how a service is written in messages.
func serviceName(s p2http.Service) string {
	switch s {
	case p2http.FCM:
		return "FCM"
	case p2http.APNs:
		return "APNs"
	}
	return string(s)
}
