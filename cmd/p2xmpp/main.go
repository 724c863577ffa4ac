// Command p2xmpp is the XEP-0114 component that connects p2http to an XMPP
// server (Prosody, ejabberd): phones register over XMPP ad-hoc commands and
// servers publish XEP-0357 pushes to it; it turns both into calls on
// p2http's REST API and maps the answers back to stanzas. It keeps no state.
//
// Configuration, from the environment (a flag of the same meaning overrides
// each variable but the secrets):
//
//	P2XMPP_JID         the component's JID, such as push.example.org (required; -jid)
//	P2XMPP_SECRET      the component secret (required; environment only)
//	P2XMPP_SERVER      the XMPP server's component listener (127.0.0.1:5347; -server)
//	P2XMPP_API         p2http's base URL (http://127.0.0.1:8080; -api)
//	P2XMPP_API_TOKEN   bearer token for p2http (environment only)
//	P2XMPP_LOG_FORMAT  text or json (text; -log-format)
//	P2XMPP_LOG_LEVEL   debug, info, warn or error (info; -log-level); each
//	                   answered request is logged at debug, a failed one at
//	                   info (warn for a wait error)
//	P2XMPP_METRICS     serve Prometheus metrics at http://ADDR/metrics (off; -metrics)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/internal/logconfig"
	"github.com/p2http/p2http/xmpp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "p2xmpp:", err)
		os.Exit(1)
	}
}

// run connects to the XMPP server and serves until ctx ends, reconnecting
// whenever the link drops. It returns an error only for a configuration it
// cannot run with; a shutdown through ctx returns nil.
func run(ctx context.Context, args []string, getenv func(string) string, logOut io.Writer) error {
	cfg, err := loadConfig(args, getenv, logOut)
	if err != nil {
		return err
	}
	log := logconfig.New(logOut, cfg.LogFormat, cfg.LogLevel)

	p2, err := api.NewClient(api.ClientConfig{BaseURL: cfg.API, Token: cfg.APIToken, Transport: apiTransport()})
	if err != nil {
		return &configError{"P2XMPP_API", err.Error()}
	}
	mx := newMetrics()
	if cfg.Metrics != "" {
		if err := mx.serve(ctx, cfg.Metrics, log); err != nil {
			return &configError{"P2XMPP_METRICS", err.Error()}
		}
	}
	comp, err := xmpp.New(xmpp.Config{JID: cfg.JID, Registrar: p2, Pusher: p2, Describer: p2, Logger: log, Observe: mx.observe})
	if err != nil {
		return &configError{"P2XMPP_JID", err.Error()}
	}
	log.Info("p2xmpp starting", "jid", comp.JID(), "server", cfg.Server, "api", cfg.API)
	// Learn p2http's state (and log a jid mismatch) at once, without
	// delaying the XMPP link: the component must be connected whether or
	// not p2http answers.
	go comp.Check(ctx)

	l := &link{
		jid:    comp.JID(),
		secret: cfg.Secret,
		server: cfg.Server,
		comp:   comp,
		log:    log,

		connected: mx.setConnected,
	}
	l.run(ctx)
	log.Info("p2xmpp stopped")
	return nil
}
