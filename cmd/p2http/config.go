package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/p2http/p2http/httpserver"
	"github.com/p2http/p2http/internal/logconfig"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/ratelimit"
	"github.com/p2http/p2http/relay"
	"mellium.im/xmpp/jid"
)

// config is p2http's configuration: environment variables, each of which a
// flag of the same meaning may override (secrets have no flag: command lines
// are visible to every user of the machine).
type config struct {
	Listen      string
	DatabaseURL string
	JID         string
	APITokens   []string
	SecretKey   string
	// Mode is modeStored (a database) or modeStateless (nodes are sealed
	// registrations; no database).
	Mode string
	// PreviousKeys (P2_PREVIOUS_SECRET_KEYS) still open the nodes they
	// sealed, in the stateless mode.
	PreviousKeys []string
	// databaseSet records whether P2_DATABASE_URL was given.
	databaseSet bool
	Dev         bool
	LogFormat   string
	// LogLevel (P2_LOG_LEVEL) is the least severe level logged; request
	// lines are at debug.
	LogLevel slog.Level
	// Default is the default app, configured by the environment.
	Default appConfig
	// ConfigFile (P2_CONFIG) declares further apps; Apps holds them.
	ConfigFile string
	Apps       map[string]appConfig

	PushDeadline          time.Duration
	CoalesceWindow        time.Duration
	MaxInFlight           int
	LimitPushDomain       ratelimit.Rate
	LimitPushFailed       ratelimit.Rate
	LimitRegister         ratelimit.Rate
	LimitAPIToken         ratelimit.Rate
	AllowOpenRegistration bool
	TLSCert, TLSKey       string
	// Metrics (P2_METRICS), when set, is the host:port of a listener of
	// its own that serves /metrics; the main listener then serves none.
	Metrics string
	// MaxConns (P2_MAX_CONNS) and MaxConnsPerAddr (P2_MAX_CONNS_PER_ADDR)
	// cap the HTTP connections in total and per client address.
	MaxConns, MaxConnsPerAddr int
	// AllowedHosts (P2_ALLOWED_HOSTS) are names and IP addresses the Host
	// header may hold besides the loopback ones; see hostCheck.
	AllowedHosts []string
}

// The modes of P2_MODE.
const (
	modeStored    = "stored"
	modeStateless = "stateless"
)

// Defaults of the reliability settings, sized in docs/reliability.md.
const (
	defaultLimitPushDomain = "1000:20000"
	defaultLimitPushFailed = "100:2000"
	defaultLimitRegister   = "500:20000"
	defaultLimitAPIToken   = "2000:40000"
)

// maxFailKeys bounds the budgets of failed pushes kept at once, one per
// caller and claimed domain that failed lately (about 2 MiB when full). The
// pairs of real servers with stale nodes number in the thousands at most; a
// flood of made-up domains fills the rest, and the table then forgets the
// least spent budgets first (docs/reliability.md).
const maxFailKeys = 20_000

// minAPITokenLength is the shortest API token accepted (P2_API_TOKENS), in
// characters: a token guards registration, so a short one could be guessed.
const minAPITokenLength = 16

// configError names the variable at fault.
type configError struct {
	Var, Msg string
}

func (e *configError) Error() string { return "configuration: " + e.Var + ": " + e.Msg }

// loadConfig reads the environment through getenv, then the flags in args.
func loadConfig(args []string, getenv func(string) string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("p2http", flag.ContinueOnError)
	var errs []error
	str := func(p *string, name, env, def, usage string) {
		v := getenv(env)
		if v == "" {
			v = def
		}
		fs.StringVar(p, name, v, usage+" ("+env+")")
	}
	boolean := func(p *bool, name, env, usage string) {
		v := false
		if s := getenv(env); s != "" {
			b, err := strconv.ParseBool(s)
			if err != nil {
				errs = append(errs, &configError{env, fmt.Sprintf("%q is not a boolean (use true or false)", s)})
			}
			v = b
		}
		fs.BoolVar(p, name, v, usage+" ("+env+")")
	}
	str(&c.Listen, "listen", "P2_LISTEN", "127.0.0.1:8080", "HTTP listen address")
	str(&c.DatabaseURL, "database-url", "P2_DATABASE_URL", "sqlite:p2.db", "sqlite:PATH or postgres://…")
	str(&c.Mode, "mode", "P2_MODE", modeStored, "stored (a database keeps registrations) or stateless (no database; see docs/stateless.md)")
	str(&c.JID, "jid", "P2_JID", "push.localhost", "XMPP address of the push component")
	boolean(&c.Dev, "dev", "P2_DEV", "log pushes for unconfigured services instead of refusing them")
	str(&c.LogFormat, "log-format", "P2_LOG_FORMAT", "text", "log format: text or json")
	var logLevel string
	str(&logLevel, "log-level", "P2_LOG_LEVEL", "info", "least severe level logged: debug, info, warn or error (one line per request at debug)")
	d := &c.Default
	str(&d.FCM.Credentials, "fcm-credentials", "P2_FCM_CREDENTIALS", "", "Firebase service-account JSON file")
	str(&d.FCM.Endpoint, "fcm-endpoint", "P2_FCM_ENDPOINT", "", "base URL of the FCM HTTP v1 API")
	str(&d.APNs.Key, "apns-key", "P2_APNS_KEY", "", "APNs token-auth key (.p8 file)")
	str(&d.APNs.KeyID, "apns-key-id", "P2_APNS_KEY_ID", "", "APNs key id")
	str(&d.APNs.TeamID, "apns-team-id", "P2_APNS_TEAM_ID", "", "APNs team id")
	str(&d.APNs.Cert, "apns-cert", "P2_APNS_CERT", "", "APNs client certificate (PEM file)")
	str(&d.APNs.CertKey, "apns-cert-key", "P2_APNS_CERT_KEY", "", "private key of the APNs certificate (PEM file)")
	str(&d.APNs.Topic, "apns-topic", "P2_APNS_TOPIC", "", "the app's bundle id")
	boolean(&d.APNs.Sandbox, "apns-sandbox", "P2_APNS_SANDBOX", "use Apple's development endpoint")
	str(&d.APNs.Endpoint, "apns-endpoint", "P2_APNS_ENDPOINT", "", "APNs base URL override")
	str(&c.ConfigFile, "config", "P2_CONFIG", "", "YAML file declaring further apps (see docs/apps.md)")
	duration := func(p *time.Duration, name, env string, def time.Duration, usage string) {
		v := def
		if s := getenv(env); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				errs = append(errs, &configError{env, fmt.Sprintf("%q is not a duration such as 10s or 500ms", s)})
			}
			v = d
		}
		fs.DurationVar(p, name, v, usage+" ("+env+")")
	}
	integer := func(p *int, name, env string, def int, usage string) {
		v := def
		if s := getenv(env); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				errs = append(errs, &configError{env, fmt.Sprintf("%q is not a whole number of at least 1", s)})
			}
			v = n
		}
		fs.IntVar(p, name, v, usage+" ("+env+")")
	}
	var limits [4]string
	str(&limits[0], "limit-push-domain", "P2_LIMIT_PUSH_DOMAIN", defaultLimitPushDomain, "pushes per second per domain of the registration pushed, RATE:BURST or 0")
	str(&limits[1], "limit-register-domain", "P2_LIMIT_REGISTER_DOMAIN", defaultLimitRegister, "registrations per second per account domain, RATE:BURST or 0")
	str(&limits[2], "limit-api-token", "P2_LIMIT_API_TOKEN", defaultLimitAPIToken, "requests per second per API token, RATE:BURST or 0")
	str(&limits[3], "limit-push-failed", "P2_LIMIT_PUSH_FAILED", defaultLimitPushFailed, "failed pushes (unknown node, wrong secret or domain) per second per caller (API token, else address) and claimed domain, RATE:BURST or 0")
	duration(&c.PushDeadline, "push-deadline", "P2_PUSH_DEADLINE", relay.DefaultPushDeadline, "deadline of one push, retries included")
	duration(&c.CoalesceWindow, "coalesce-window", "P2_COALESCE_WINDOW", relay.DefaultCoalesceWindow, "merge pushes for one node within this window; 0 turns it off")
	integer(&c.MaxInFlight, "max-inflight", "P2_MAX_INFLIGHT", relay.DefaultMaxInFlight, "pushes handled at once; more are refused with 503")
	integer(&c.MaxConns, "max-conns", "P2_MAX_CONNS", httpserver.DefaultMaxConns, "HTTP connections held at once; more are closed at once")
	integer(&c.MaxConnsPerAddr, "max-conns-per-addr", "P2_MAX_CONNS_PER_ADDR", httpserver.DefaultMaxConnsPerAddr,
		"HTTP connections held at once from one client address (IPv6: one /64); behind a proxy, set it to P2_MAX_CONNS")
	boolean(&c.AllowOpenRegistration, "allow-open-registration", "P2_ALLOW_OPEN_REGISTRATION", "allow a non-loopback listener without P2_API_TOKENS")
	str(&c.TLSCert, "tls-cert", "P2_TLS_CERT", "", "serve HTTPS with this certificate (PEM)")
	str(&c.TLSKey, "tls-key", "P2_TLS_KEY", "", "private key of P2_TLS_CERT (PEM)")
	str(&c.Metrics, "metrics", "P2_METRICS", "", "serve /metrics at http://ADDR/metrics only, e.g. 127.0.0.1:9106; empty = on the main listener")
	var allowedHosts string
	str(&allowedHosts, "allowed-hosts", "P2_ALLOWED_HOSTS", "", "comma-separated names the Host header may hold besides localhost, 127.0.0.1, [::1] "+
		"and the listen host (any port); others are answered 421")
	c.SecretKey = getenv("P2_SECRET_KEY")
	c.databaseSet = getenv("P2_DATABASE_URL") != ""
	for _, k := range strings.Split(getenv("P2_PREVIOUS_SECRET_KEYS"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			c.PreviousKeys = append(c.PreviousKeys, k)
		}
	}
	for _, t := range strings.Split(getenv("P2_API_TOKENS"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			c.APITokens = append(c.APITokens, t)
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "database-url" {
			c.databaseSet = true
		}
	})
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, h := range strings.Split(allowedHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			if err := checkHostName(h); err != nil {
				errs = append(errs, &configError{"P2_ALLOWED_HOSTS", fmt.Sprintf("%q %s", h, err)})
			}
			c.AllowedHosts = append(c.AllowedHosts, h)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	level, err := logconfig.ParseLevel(logLevel)
	if err != nil {
		return nil, &configError{"P2_LOG_LEVEL", err.Error()}
	}
	c.LogLevel = level
	for i, env := range []string{"P2_LIMIT_PUSH_DOMAIN", "P2_LIMIT_REGISTER_DOMAIN", "P2_LIMIT_API_TOKEN", "P2_LIMIT_PUSH_FAILED"} {
		r, err := ratelimit.ParseRate(limits[i])
		if err != nil {
			return nil, &configError{env, err.Error()}
		}
		*[]*ratelimit.Rate{&c.LimitPushDomain, &c.LimitRegister, &c.LimitAPIToken, &c.LimitPushFailed}[i] = r
	}
	if c.ConfigFile != "" {
		apps, err := loadAppsFile(c.ConfigFile)
		if err != nil {
			return nil, err
		}
		c.Apps = apps
	}
	return c, c.validate()
}

func (c *config) validate() error {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return &configError{"P2_LISTEN", fmt.Sprintf("%q is not host:port", c.Listen)}
	}
	if !loopback(host) && len(c.APITokens) == 0 && !c.AllowOpenRegistration {
		return &configError{"P2_LISTEN", fmt.Sprintf("%q is reachable from other machines but P2_API_TOKENS is not set: "+
			"anyone could register; set P2_API_TOKENS, or P2_ALLOW_OPEN_REGISTRATION=1 if that is what you want", c.Listen)}
	}
	for i, t := range c.APITokens {
		if len(t) < minAPITokenLength {
			// The error names the token by position: it is a secret.
			return &configError{"P2_API_TOKENS", fmt.Sprintf("token %d of %d is shorter than %d characters; "+
				"generate one with head -c 24 /dev/urandom | base64", i+1, len(c.APITokens), minAPITokenLength)}
		}
	}
	if c.Metrics != "" {
		if _, _, err := net.SplitHostPort(c.Metrics); err != nil {
			return &configError{"P2_METRICS", fmt.Sprintf("%q is not host:port", c.Metrics)}
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return &configError{"P2_TLS_CERT", "P2_TLS_CERT and P2_TLS_KEY go together"}
	}
	if c.MaxConnsPerAddr > c.MaxConns {
		return &configError{"P2_MAX_CONNS_PER_ADDR", fmt.Sprintf("%d is more than P2_MAX_CONNS (%d)", c.MaxConnsPerAddr, c.MaxConns)}
	}
	if c.PushDeadline <= 0 {
		return &configError{"P2_PUSH_DEADLINE", "must be positive"}
	}
	if j, err := jid.Parse(c.JID); err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
		return &configError{"P2_JID", fmt.Sprintf("%q is not a domain JID such as push.example.org", c.JID)}
	}
	if !strings.HasPrefix(c.DatabaseURL, "sqlite:") && !strings.HasPrefix(c.DatabaseURL, "postgres://") &&
		!strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return &configError{"P2_DATABASE_URL", "must be sqlite:PATH or postgres://…"}
	}
	if c.SecretKey != "" && len(c.SecretKey) < keyring.MinKeyLength {
		return &configError{"P2_SECRET_KEY", fmt.Sprintf("must be at least %d characters long", keyring.MinKeyLength)}
	}
	switch c.Mode {
	case modeStored:
		if len(c.PreviousKeys) > 0 {
			return &configError{"P2_PREVIOUS_SECRET_KEYS", "is only used in the stateless mode: " +
				"in the stored mode every secret is derived with P2_SECRET_KEY, which therefore cannot change"}
		}
	case modeStateless:
		if c.SecretKey == "" {
			return &configError{"P2_SECRET_KEY", "is required in the stateless mode: it seals every node, and every instance must share it"}
		}
		if c.databaseSet {
			return &configError{"P2_DATABASE_URL", "is not used in the stateless mode, which keeps no database: unset it, or set P2_MODE=stored"}
		}
		for i, k := range c.PreviousKeys {
			if len(k) < keyring.MinKeyLength {
				return &configError{"P2_PREVIOUS_SECRET_KEYS", fmt.Sprintf("key %d must be at least %d characters long", i+1, keyring.MinKeyLength)}
			}
			if k == c.SecretKey {
				return &configError{"P2_PREVIOUS_SECRET_KEYS", fmt.Sprintf("key %d is P2_SECRET_KEY itself", i+1)}
			}
		}
	default:
		return &configError{"P2_MODE", fmt.Sprintf("%q is neither stored nor stateless", c.Mode)}
	}
	if c.SecretKey == "" && !strings.HasPrefix(c.DatabaseURL, "sqlite:") {
		return &configError{"P2_SECRET_KEY", "is required with PostgreSQL (every instance must share one key)"}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return &configError{"P2_LOG_FORMAT", "must be text or json"}
	}
	return c.Default.validate(envName)
}

// hostCheck returns the names and addresses the Host header may hold
// (api.Config.AllowedHosts), or nil for no check. On a loopback listener
// without API tokens they are localhost, 127.0.0.1, ::1, the listen host
// and P2_ALLOWED_HOSTS: there a web page in a browser on the same machine
// could otherwise reach the open API through DNS rebinding. Elsewhere the
// names clients use are the operator's to know: the check applies only
// when P2_ALLOWED_HOSTS lists them. (With tokens, a rebound page can call
// no registration endpoint, and a push needs a node's secret.)
func (c *config) hostCheck() []string {
	host, _, _ := net.SplitHostPort(c.Listen)
	if len(c.AllowedHosts) == 0 && (!loopback(host) || len(c.APITokens) > 0) {
		return nil
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		hosts = append(hosts, host)
	}
	return append(hosts, c.AllowedHosts...)
}

// checkHostName accepts a DNS name (letters, digits, '-' and '_' in labels
// of at most 63 characters, an optional final dot) or an IP address, IPv6
// with or without brackets; never a port, a scheme or a wildcard.
func checkHostName(h string) error {
	if ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); ip != nil {
		return nil
	}
	name := strings.TrimSuffix(h, ".")
	if name == "" || len(name) > 253 {
		return errors.New("is not a host name")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("is not a host name")
		}
		for _, ch := range label {
			if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_') {
				return errors.New("is not a host name: give names and addresses only, without scheme or port (any port is accepted)")
			}
		}
	}
	return nil
}

// loopback reports whether host only accepts connections from this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
