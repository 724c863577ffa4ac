package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"

	"mellium.im/xmpp/jid"

	"github.com/p2http/p2http/internal/logconfig"
)

// config is p2xmpp's configuration: environment variables, each of which a
// flag of the same meaning may override, except the secrets, which have no
// flag (command lines are visible to every user of the machine).
type config struct {
	JID       string
	Secret    string
	Server    string
	API       string
	APIToken  string
	LogFormat string
	// LogLevel (P2XMPP_LOG_LEVEL) is the least severe level logged;
	// answered requests are logged at debug, failed ones at info or warn.
	LogLevel slog.Level
	Metrics  string
}

// configError names the variable at fault.
type configError struct {
	Var, Msg string
}

// Error implements error.
func (e *configError) Error() string { return "configuration: " + e.Var + ": " + e.Msg }

// loadConfig reads the environment through getenv, then the flags in args;
// flag errors and -h print the usage to usage.
func loadConfig(args []string, getenv func(string) string, usage io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("p2xmpp", flag.ContinueOnError)
	fs.SetOutput(usage)
	str := func(p *string, name, env, def, usage string) {
		v := getenv(env)
		if v == "" {
			v = def
		}
		fs.StringVar(p, name, v, usage+" ("+env+")")
	}
	str(&c.JID, "jid", "P2XMPP_JID", "", "the component's JID, such as push.example.org (required)")
	str(&c.Server, "server", "P2XMPP_SERVER", "127.0.0.1:5347", "the XMPP server's component listener, host:port")
	str(&c.API, "api", "P2XMPP_API", "http://127.0.0.1:8080", "p2http's base URL")
	str(&c.LogFormat, "log-format", "P2XMPP_LOG_FORMAT", "text", "log format: text or json")
	var logLevel string
	str(&logLevel, "log-level", "P2XMPP_LOG_LEVEL", "info", "least severe level logged: debug, info, warn or error (answered requests: results at debug, errors at info or warn)")
	str(&c.Metrics, "metrics", "P2XMPP_METRICS", "", "serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9107; empty = off")
	c.Secret = getenv("P2XMPP_SECRET")
	c.APIToken = getenv("P2XMPP_API_TOKEN")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: p2xmpp [flags]\n\nThe secrets come from the environment only: P2XMPP_SECRET (required), P2XMPP_API_TOKEN.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	level, err := logconfig.ParseLevel(logLevel)
	if err != nil {
		return nil, &configError{"P2XMPP_LOG_LEVEL", err.Error()}
	}
	c.LogLevel = level
	return c, c.validate()
}

func (c *config) validate() error {
	if c.JID == "" {
		return &configError{"P2XMPP_JID", "is required (the component's JID, such as push.example.org)"}
	}
	if j, err := jid.Parse(c.JID); err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
		return &configError{"P2XMPP_JID", fmt.Sprintf("%q is not a domain JID such as push.example.org", c.JID)}
	}
	if c.Secret == "" {
		return &configError{"P2XMPP_SECRET", "is required (the component secret configured at the XMPP server)"}
	}
	host, port, err := net.SplitHostPort(c.Server)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		return &configError{"P2XMPP_SERVER", fmt.Sprintf("%q is not host:port", c.Server)}
	}
	if u, err := url.Parse(c.API); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &configError{"P2XMPP_API", fmt.Sprintf("%q is not an http(s) URL", c.API)}
	}
	if c.Metrics != "" {
		if _, _, err := net.SplitHostPort(c.Metrics); err != nil {
			return &configError{"P2XMPP_METRICS", fmt.Sprintf("%q is not host:port", c.Metrics)}
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return &configError{"P2XMPP_LOG_FORMAT", "must be text or json"}
	}
	return nil
}
