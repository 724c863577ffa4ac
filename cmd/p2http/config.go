package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/p2http/p2http/admin"
	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/apps"
	"github.com/p2http/p2http/httpserver"
	"github.com/p2http/p2http/internal/envflag"
	"github.com/p2http/p2http/internal/logconfig"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/ratelimit"
	"github.com/p2http/p2http/relay"
)

// config is p2http's configuration: what settings declares, parsed, and
// what validate checks of it.
type config struct {
	Listen, DatabaseURL, JID, Mode, LogFormat, Metrics string
	SecretKey, ConfigFile, TLSCert, TLSKey             string
	APITokens, PreviousKeys, AllowedHosts              []string
	Dev, AllowOpenRegistration                         bool
	LogLevel                                           slog.Level
	PushDeadline, CoalesceWindow, Retention            time.Duration
	MaxInFlight, MaxConns, MaxConnsPerAddr             int
	LimitPushDomain, LimitPushFailed                   ratelimit.Rate
	LimitRegister, LimitAPIToken                       ratelimit.Rate
	// Default is the default app's settings; appEnv names their
	// variables (envName). Apps are the further apps of P2_CONFIG.
	Default apps.Config
	appEnv  map[string]string
	Apps    map[string]apps.Config
	// databaseSet records whether P2_DATABASE_URL was given, databaseFrom
	// how: P2_DATABASE_URL or the flag, for the errors to name it.
	databaseSet  bool
	databaseFrom string
}

// The modes of P2_MODE.
const (
	modeStored    = "stored"
	modeStateless = "stateless"
)

// minAPITokenLength is the shortest API token accepted (P2_API_TOKENS), in
// characters: a token guards registration, so a short one could be guessed.
const minAPITokenLength = 16

// configError names the variable at fault.
type configError = envflag.Error

// settings declares every variable p2http reads, each once — its name,
// flag, default, parser and meaning — to fill c. p2http -h, the parsing
// and the README's configuration table (TestREADMEConfigurationTable)
// all come from it.
func settings(c *config) *envflag.Set {
	d := &c.Default
	c.appEnv = map[string]string{}
	// app declares a setting of the default app, field being its name in
	// the P2_CONFIG file.
	app := func(field string, v *envflag.Var) *envflag.Var {
		c.appEnv[field] = v.Name
		return v
	}
	rate := func(p *ratelimit.Rate) func(string) error {
		return func(s string) (err error) {
			*p, err = ratelimit.ParseRate(s)
			return err
		}
	}
	set := &envflag.Set{Name: "p2http", Vars: []*envflag.Var{
		envflag.String(&c.Listen, "P2_LISTEN", "listen", "127.0.0.1:8080", "HTTP listen address"),
		envflag.String(&c.Mode, "P2_MODE", "mode", modeStored, "stored (a database keeps registrations) or stateless (no database; see docs/stateless.md)"),
		envflag.String(&c.DatabaseURL, "P2_DATABASE_URL", "database-url", "sqlite:p2.db", "sqlite:PATH or postgres://…"),
		envflag.String(&c.JID, "P2_JID", "jid", "push.localhost", "XMPP address of the push component"),
		envflag.List(&c.APITokens, "P2_API_TOKENS", "", "comma-separated bearer tokens that register, unregister, the look-up and /metrics require", nil),
		envflag.String(&c.SecretKey, "P2_SECRET_KEY", "", "", "the server key secrets are derived from").Doc("a key file beside a SQLite database"),
		envflag.List(&c.PreviousKeys, "P2_PREVIOUS_SECRET_KEYS", "", "stateless mode: comma-separated former server keys whose nodes still open", nil),
		envflag.Bool(&c.Dev, "P2_DEV", "dev", "log pushes for unconfigured services instead of refusing them"),
		envflag.String(&c.LogFormat, "P2_LOG_FORMAT", "log-format", "text", "log format: text or json"),
		envflag.Func("P2_LOG_LEVEL", "log-level", "info", "least severe level logged: debug, info, warn or error (one line per request at debug)",
			func(s string) (err error) {
				c.LogLevel, err = logconfig.ParseLevel(s)
				return err
			}),
		app("fcm.credentials", envflag.String(&d.FCM.Credentials, "P2_FCM_CREDENTIALS", "fcm-credentials", "", "Firebase service-account JSON file")),
		app("fcm.endpoint", envflag.String(&d.FCM.Endpoint, "P2_FCM_ENDPOINT", "fcm-endpoint", "", "base URL of the FCM HTTP v1 API").
			Doc("Google's `https://fcm.googleapis.com/v1`")),
		app("apns.key", envflag.String(&d.APNs.Key, "P2_APNS_KEY", "apns-key", "", "APNs token-auth key (.p8 file)")),
		app("apns.key_id", envflag.String(&d.APNs.KeyID, "P2_APNS_KEY_ID", "apns-key-id", "", "APNs key id")),
		app("apns.team_id", envflag.String(&d.APNs.TeamID, "P2_APNS_TEAM_ID", "apns-team-id", "", "APNs team id")),
		app("apns.cert", envflag.String(&d.APNs.Cert, "P2_APNS_CERT", "apns-cert", "", "APNs client certificate (PEM file)")),
		app("apns.cert_key", envflag.String(&d.APNs.CertKey, "P2_APNS_CERT_KEY", "apns-cert-key", "", "private key of the APNs certificate (PEM file)")),
		app("apns.topic", envflag.String(&d.APNs.Topic, "P2_APNS_TOPIC", "apns-topic", "", "the app's bundle id")),
		app("apns.sandbox", envflag.Bool(&d.APNs.Sandbox, "P2_APNS_SANDBOX", "apns-sandbox", "use Apple's development endpoint")),
		app("apns.endpoint", envflag.String(&d.APNs.Endpoint, "P2_APNS_ENDPOINT", "apns-endpoint", "", "APNs base URL override").Doc("Apple's")),
		envflag.Func("P2_CONFIG", "config", "", "YAML file declaring further apps (see docs/apps.md)", func(s string) (err error) {
			if c.ConfigFile = s; s != "" {
				c.Apps, err = apps.LoadFile(s)
			}
			return err
		}),
		envflag.Duration(&c.PushDeadline, "P2_PUSH_DEADLINE", "push-deadline", relay.DefaultPushDeadline, "deadline of one push, retries included"),
		envflag.Duration(&c.CoalesceWindow, "P2_COALESCE_WINDOW", "coalesce-window", relay.DefaultCoalesceWindow, "merge pushes for one node within this window; 0 turns it off"),
		envflag.Int(&c.MaxInFlight, "P2_MAX_INFLIGHT", "max-inflight", relay.DefaultMaxInFlight, "pushes handled at once; more are refused with 503"),
		// The limits' defaults are sized in docs/reliability.md.
		envflag.Func("P2_LIMIT_PUSH_DOMAIN", "limit-push-domain", "1000:20000", "pushes per second per domain of the registration pushed, RATE:BURST or 0", rate(&c.LimitPushDomain)),
		envflag.Func("P2_LIMIT_PUSH_FAILED", "limit-push-failed", "100:2000", "failed pushes (unknown node, wrong secret or domain) per second per caller (API token, else address) and claimed domain, RATE:BURST or 0", rate(&c.LimitPushFailed)),
		envflag.Func("P2_LIMIT_REGISTER_DOMAIN", "limit-register-domain", "500:20000", "registrations per second per account domain, RATE:BURST or 0", rate(&c.LimitRegister)),
		envflag.Func("P2_LIMIT_API_TOKEN", "limit-api-token", "2000:40000", "requests per second per API token, RATE:BURST or 0", rate(&c.LimitAPIToken)),
		envflag.Int(&c.MaxConns, "P2_MAX_CONNS", "max-conns", httpserver.DefaultMaxConns, "HTTP connections held at once; more are closed at once"),
		envflag.Int(&c.MaxConnsPerAddr, "P2_MAX_CONNS_PER_ADDR", "max-conns-per-addr", httpserver.DefaultMaxConnsPerAddr,
			"HTTP connections held at once from one client address (IPv6: one /64); behind a proxy, set it to P2_MAX_CONNS"),
		envflag.Bool(&c.AllowOpenRegistration, "P2_ALLOW_OPEN_REGISTRATION", "allow-open-registration", "allow a non-loopback listener without P2_API_TOKENS"),
		envflag.List(&c.AllowedHosts, "P2_ALLOWED_HOSTS", "allowed-hosts", "comma-separated names the Host header may hold besides localhost, "+
			"127.0.0.1, [::1] and the listen host (any port); others are answered 421", api.CheckHostName),
		envflag.String(&c.TLSCert, "P2_TLS_CERT", "tls-cert", "", "serve HTTPS with this certificate (PEM)"),
		envflag.String(&c.TLSKey, "P2_TLS_KEY", "tls-key", "", "private key of P2_TLS_CERT (PEM)"),
		envflag.String(&c.Metrics, "P2_METRICS", "metrics", "", "serve /metrics at http://ADDR/metrics only, e.g. 127.0.0.1:9106; empty = on the main listener").
			Doc("none: on the main listener"),
		envflag.Func("P2_RETENTION", "retention", "", "while serving, purge once a day the registrations not seen for this long, such as 180d (at least 1d); empty, 0 or off = never",
			func(s string) (err error) {
				c.Retention, err = admin.ParseRetention(s)
				return err
			}).Doc("off"),
		envflag.External("GOMEMLIMIT", "34 MiB, rising while garbage collection would take over a quarter of the CPU",
			"the Go runtime's soft memory limit, 34 MiB by default and rising while collections are expensive; off turns it off"),
	}}
	set.Usage = func(w io.Writer, flags func()) {
		fmt.Fprintln(w, "Usage of p2http:")
		flags()
		fmt.Fprintln(w, "\n"+set.Secrets())
		fmt.Fprintln(w, set.Externals())
	}
	return set
}

// envName names a field of the default app: its environment variable.
func (c *config) envName(field string) string { return c.appEnv[field] }

// parseConfig reads the environment through getenv, then the flags in
// args, as settings declares them; -h and flag errors print the usage to
// w.
func parseConfig(args []string, getenv func(string) string, w io.Writer) (*config, error) {
	c := &config{}
	vars := settings(c)
	if err := vars.Parse(args, getenv, w); err != nil {
		return nil, err
	}
	c.databaseSet = vars.Given("P2_DATABASE_URL")
	c.databaseFrom = vars.Source("P2_DATABASE_URL")
	// An error about a setting the command line gave names its flag.
	return c, vars.Blame(c.validate())
}

// validate checks the values parsed, alone and together.
func (c *config) validate() error {
	bad := func(name, format string, a ...any) error {
		return &configError{Var: name, Msg: fmt.Sprintf(format, a...)}
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return bad("P2_LISTEN", "%q is not host:port", c.Listen)
	}
	if !api.Loopback(host) && len(c.APITokens) == 0 && !c.AllowOpenRegistration {
		return bad("P2_LISTEN", "%q is reachable from other machines but P2_API_TOKENS is not set: "+
			"anyone could register; set P2_API_TOKENS, or P2_ALLOW_OPEN_REGISTRATION=1 if that is what you want", c.Listen)
	}
	for i, t := range c.APITokens {
		if len(t) < minAPITokenLength {
			// The error names the token by position: it is a secret.
			return bad("P2_API_TOKENS", "token %d of %d is shorter than %d characters; "+
				"generate one with head -c 24 /dev/urandom | base64", i+1, len(c.APITokens), minAPITokenLength)
		}
	}
	if c.Metrics != "" {
		if _, _, err := net.SplitHostPort(c.Metrics); err != nil {
			return bad("P2_METRICS", "%q is not host:port", c.Metrics)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return bad("P2_TLS_CERT", "P2_TLS_CERT and P2_TLS_KEY go together")
	}
	if c.MaxConnsPerAddr > c.MaxConns {
		return bad("P2_MAX_CONNS_PER_ADDR", "%d is more than P2_MAX_CONNS (%d)", c.MaxConnsPerAddr, c.MaxConns)
	}
	if c.PushDeadline <= 0 {
		return bad("P2_PUSH_DEADLINE", "must be positive")
	}
	if j, err := jid.Parse(c.JID); err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
		return bad("P2_JID", "%q is not a domain JID such as push.example.org", c.JID)
	}
	if !strings.HasPrefix(c.DatabaseURL, "sqlite:") && !strings.HasPrefix(c.DatabaseURL, "postgres://") &&
		!strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return bad("P2_DATABASE_URL", "must be sqlite:PATH or postgres://…")
	}
	if c.SecretKey != "" && len(c.SecretKey) < keyring.MinKeyLength {
		return bad("P2_SECRET_KEY", "must be at least %d characters long", keyring.MinKeyLength)
	}
	switch c.Mode {
	case modeStored:
		if len(c.PreviousKeys) > 0 {
			return bad("P2_PREVIOUS_SECRET_KEYS", "is only used in the stateless mode: "+
				"in the stored mode every secret is derived with P2_SECRET_KEY, which therefore cannot change")
		}
	case modeStateless:
		if c.SecretKey == "" {
			return bad("P2_SECRET_KEY", "is required in the stateless mode: it seals every node, and every instance must share it")
		}
		if c.databaseSet {
			return bad("P2_DATABASE_URL", "is not used in the stateless mode, which keeps no database: unset it, or set P2_MODE=stored")
		}
		if c.Retention > 0 {
			return bad("P2_RETENTION", "the stateless mode keeps no registrations to purge: unset it")
		}
		for i, k := range c.PreviousKeys {
			if len(k) < keyring.MinKeyLength {
				return bad("P2_PREVIOUS_SECRET_KEYS", "key %d must be at least %d characters long", i+1, keyring.MinKeyLength)
			}
			if k == c.SecretKey {
				return bad("P2_PREVIOUS_SECRET_KEYS", "key %d is P2_SECRET_KEY itself", i+1)
			}
		}
	default:
		return bad("P2_MODE", "%q is neither stored nor stateless", c.Mode)
	}
	if c.SecretKey == "" && !strings.HasPrefix(c.DatabaseURL, "sqlite:") {
		return bad("P2_SECRET_KEY", "is required with PostgreSQL (every instance must share one key)")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return bad("P2_LOG_FORMAT", "must be text or json")
	}
	return c.Default.Validate(c.envName)
}

// hostCheck returns the names and addresses the Host header may hold
// (api.Config.AllowedHosts), or nil for no check: api.HostsToCheck.
func (c *config) hostCheck() []string {
	return api.HostsToCheck(c.Listen, len(c.APITokens) > 0, c.AllowedHosts)
}
