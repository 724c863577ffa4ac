package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"

	"mellium.im/xmpp/jid"

	"github.com/p2http/p2http/internal/envflag"
	"github.com/p2http/p2http/internal/logconfig"
)

// config is p2xmpp's configuration: what settings declares, parsed, and
// what validate checks of it.
type config struct {
	JID, Secret, Server, API, APIToken, LogFormat, Metrics string
	LogLevel                                               slog.Level
}

// configError names the variable at fault.
type configError = envflag.Error

// settings declares every variable p2xmpp reads, each once — its name,
// flag, default, parser and meaning — to fill c. p2xmpp -h, the parsing
// and the table of docs/p2xmpp.md (TestDocsSettingsTable) all come from
// it. The secrets have no flag: command lines are visible to every user
// of the machine.
func settings(c *config) *envflag.Set {
	set := &envflag.Set{Name: "p2xmpp", Vars: []*envflag.Var{
		envflag.String(&c.JID, "P2XMPP_JID", "jid", "", "the component's JID, such as push.example.org (required)").Required(),
		envflag.String(&c.Secret, "P2XMPP_SECRET", "", "", "the component secret configured at the XMPP server").Required(),
		envflag.String(&c.Server, "P2XMPP_SERVER", "server", "127.0.0.1:5347", "the XMPP server's component listener, host:port"),
		envflag.String(&c.API, "P2XMPP_API", "api", "http://127.0.0.1:8080", "p2http's base URL"),
		envflag.String(&c.APIToken, "P2XMPP_API_TOKEN", "", "", "a bearer token of p2http's P2_API_TOKENS"),
		envflag.String(&c.LogFormat, "P2XMPP_LOG_FORMAT", "log-format", "text", "log format: text or json"),
		envflag.Func("P2XMPP_LOG_LEVEL", "log-level", "info", "least severe level logged: debug, info, warn or error "+
			"(answered requests: results at debug, errors at info or warn)", func(s string) (err error) {
			c.LogLevel, err = logconfig.ParseLevel(s)
			return err
		}),
		envflag.String(&c.Metrics, "P2XMPP_METRICS", "metrics", "", "serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9107; empty = off").Doc("off"),
	}}
	set.Usage = func(w io.Writer, flags func()) {
		fmt.Fprintln(w, "Usage of p2xmpp:")
		flags()
		fmt.Fprintln(w, "\n"+set.Secrets())
	}
	return set
}

// loadConfig reads the environment through getenv, then the flags in args,
// as settings declares them; flag errors and -h print the usage to usage.
func loadConfig(args []string, getenv func(string) string, usage io.Writer) (*config, error) {
	c := &config{}
	vars := settings(c)
	if err := vars.Parse(args, getenv, usage); err != nil {
		return nil, err
	}
	// An error about a setting the command line gave names its flag.
	return c, vars.Blame(c.validate())
}

// validate checks the values parsed, alone and together.
func (c *config) validate() error {
	if c.JID == "" {
		return &configError{Var: "P2XMPP_JID", Msg: "is required (the component's JID, such as push.example.org)"}
	}
	if j, err := jid.Parse(c.JID); err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
		return &configError{Var: "P2XMPP_JID", Msg: fmt.Sprintf("%q is not a domain JID such as push.example.org", c.JID)}
	}
	if c.Secret == "" {
		return &configError{Var: "P2XMPP_SECRET", Msg: "is required (the component secret configured at the XMPP server)"}
	}
	host, port, err := net.SplitHostPort(c.Server)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		return &configError{Var: "P2XMPP_SERVER", Msg: fmt.Sprintf("%q is not host:port", c.Server)}
	}
	if u, err := url.Parse(c.API); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &configError{Var: "P2XMPP_API", Msg: fmt.Sprintf("%q is not an http(s) URL", c.API)}
	}
	if c.Metrics != "" {
		if _, _, err := net.SplitHostPort(c.Metrics); err != nil {
			return &configError{Var: "P2XMPP_METRICS", Msg: fmt.Sprintf("%q is not host:port", c.Metrics)}
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return &configError{Var: "P2XMPP_LOG_FORMAT", Msg: "must be text or json"}
	}
	return nil
}
